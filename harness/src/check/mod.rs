//! The oracle: reads a history, applies the rules of DESIGN.md, returns a verdict.
//! It sees only the history, so any run can be re-checked offline.

pub mod model;
pub mod rules;
mod verdict;

pub use model::Model;
pub use verdict::{CheckResult, FaultMetrics, Metrics, Outcome, Verdict};

use crate::history::{KnownDeviation, Record};

pub fn check(records: &[Record]) -> Verdict {
    let model = Model::build(records);
    let mut metrics = Metrics::default();
    let mut checks = Vec::new();

    let mut completed = Vec::new();
    let skipped = model
        .run_outcome
        .as_deref()
        .and_then(|o| o.strip_prefix("skipped: "))
        .map(str::to_owned);
    match model.run_outcome.as_deref() {
        Some("completed") => {}
        Some(_) if skipped.is_some() => {}
        Some(other) => completed.push(format!("the run ended early: {other}")),
        None => completed.push("the history has no run_finished record: the run died".into()),
    }
    if model.info.is_none() {
        completed.push("the history has no run_started record".into());
    }
    // Skipped before anything ran (the broker could not start here): there is no
    // traffic for the rules to judge, so they are not reported as passes.
    let never_ran = skipped.is_some() && nothing_ran(&model);
    checks.push(CheckResult::new(
        "run_completed",
        completed,
        match &skipped {
            Some(why) if never_ran => format!("the run could not start here: {why}"),
            Some(why) => format!("the run stopped at a fault it cannot inject: {why}"),
            None => "the run completed".into(),
        },
    ));
    if !never_ran {
        checks.extend(rules::loss::check(&model, &mut metrics));
        checks.push(rules::duplicates::check(&model, &mut metrics));
        checks.push(rules::ownership::check(&model, &mut metrics));
        checks.push(rules::order::check(&model));
        checks.push(rules::commits::check(&model));
        checks.push(rules::latency::check(&model, &mut metrics));
        checks.push(rules::protocol::check(&model, &metrics.faults));
    }

    if let Some(fin) = &model.final_assignment {
        metrics.final_assignment = fin
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(m, p)| (m.clone(), p.iter().map(|tp| tp.partition).collect()))
            .collect();
    }

    let info = model.info.as_ref();
    let deviations = info
        .map(|i| i.known_deviations.as_slice())
        .unwrap_or_default();
    for c in checks.iter_mut().filter(|c| !c.passed) {
        c.known_deviation = covered_by(c, deviations);
    }
    let outcome = if skipped.is_some()
        && checks
            .iter()
            .all(|c| c.passed || c.known_deviation.is_some())
    {
        Outcome::Skipped
    } else if checks.iter().all(|c| c.passed) {
        Outcome::Pass
    } else if checks
        .iter()
        .all(|c| c.passed || c.known_deviation.is_some())
    {
        Outcome::KnownDeviation
    } else {
        Outcome::Fail
    };
    Verdict {
        passed: outcome == Outcome::Pass,
        outcome,
        skipped,
        scenario: info.map_or("?".into(), |i| i.scenario.clone()),
        protocol: info.map_or("?".into(), |i| i.protocol.clone()),
        broker: info.map_or("?".into(), |i| i.broker.clone()),
        seed: info.map_or(0, |i| i.seed),
        replay: info.map_or(String::new(), |i| i.replay.clone()),
        checks,
        metrics,
    }
}

/// Nothing was produced or consumed: a run skipped before its broker started.
fn nothing_ran(model: &Model) -> bool {
    model.production_stopped.is_none() && model.acked_count == 0 && model.ownerships.is_empty()
}

/// The deviation that explains every violation of a failed check, if one does.
fn covered_by(check: &CheckResult, deviations: &[KnownDeviation]) -> Option<String> {
    let relevant: Vec<&KnownDeviation> = deviations
        .iter()
        .filter(|d| d.check == check.name)
        .collect();
    let all_covered = !check.violations.is_empty()
        && check
            .violations
            .iter()
            .all(|v| relevant.iter().any(|d| v.contains(&d.matches)));
    all_covered.then(|| {
        let whys: Vec<String> = relevant
            .iter()
            .map(|d| format!("{}: {}", d.broker, d.why))
            .collect();
        whys.join("; ")
    })
}
