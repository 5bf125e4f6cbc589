//! The run itself: it started, it finished, and no wait for the group ran out. A run
//! that stopped at a fault it cannot inject, or whose driver cannot run the protocol,
//! is *skipped*: never a pass, and not a failure of the client either.

use crate::check::model::Model;
use crate::check::verdict::{CheckResult, Violation};
use crate::history::{Rule, ViolationKind};

pub struct Completed {
    pub result: CheckResult,
    /// Why the run was skipped, if it was.
    pub skipped: Option<String>,
}

pub fn check(model: &Model) -> Completed {
    let mut violations = Vec::new();
    let outcome = model.run_outcome.as_deref();
    let skipped = outcome
        .and_then(|o| o.strip_prefix("skipped: "))
        .map(str::to_owned);
    match outcome {
        Some("completed") => {}
        Some(_) if skipped.is_some() => {}
        Some(o) if o.starts_with("stalled") => violations.push(Violation::new(
            ViolationKind::Stalled,
            format!("the run ended early: {o}"),
        )),
        Some(o) => violations.push(Violation::new(
            ViolationKind::EndedEarly,
            format!("the run ended early: {o}"),
        )),
        None => violations.push(Violation::new(
            ViolationKind::RunDied,
            "the history has no run_finished record: the run died",
        )),
    }
    if model.info.is_none() {
        violations.push(Violation::new(
            ViolationKind::NoRunStarted,
            "the history has no run_started record",
        ));
    }
    let never_ran =
        model.production_stopped.is_none() && model.acked_count == 0 && model.ownerships.is_empty();
    let detail = match &skipped {
        Some(why) if model.unsupported.is_some() => format!("the driver cannot run this: {why}"),
        Some(why) if never_ran => format!("the run could not start here: {why}"),
        Some(why) => format!("the run stopped at a fault it cannot inject: {why}"),
        None => "the run completed".into(),
    };
    Completed {
        result: CheckResult::new(Rule::RunCompleted, violations, detail),
        skipped,
    }
}
