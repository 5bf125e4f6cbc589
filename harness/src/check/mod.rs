//! The oracle: reads a history, applies the rules (README, "What a verdict means"), returns a verdict.
//! It sees only the history, so any run can be re-checked offline.
//!
//! model.rs derives who owned what when; rules/ holds one module per rule, each turning
//! the model into violations (data: rule, kind, fault, partition, member, size);
//! deviations.rs waives what known deviations and client findings name, within bounds.

pub mod commit_errors;
pub mod deviations;
pub mod model;
pub mod rules;
mod verdict;

pub use model::Model;
pub use verdict::{CheckResult, FaultMetrics, FaultRef, Metrics, Outcome, Verdict, Violation};

use crate::history::Record;

pub fn check(records: &[Record]) -> Verdict {
    let model = Model::build(records);
    let mut metrics = Metrics::default();
    let mut notes = Vec::new();

    let completed = rules::completed::check(&model);
    // Skipped before anything ran (the broker could not start here, the driver cannot
    // run the protocol): there is no traffic to judge, so no rule reports a pass.
    let never_ran =
        completed.skipped.is_some() && (nothing_ran(&model) || model.unsupported.is_some());
    let mut checks = vec![completed.result];
    if !never_ran {
        checks.push(rules::members::check(&model));
        checks.extend(rules::loss::check(&model, &mut metrics));
        checks.push(rules::duplicates::check(&model, &mut metrics));
        checks.push(rules::ownership::check(&model, &mut metrics));
        checks.push(rules::order::check(&model));
        checks.push(rules::commits::check(&model));
        checks.push(rules::latency::check(&model, &mut metrics, &mut notes));
        checks.push(rules::protocol::check(&model, &metrics.faults));
    }
    if !never_ran && model.processes.iter().any(|p| p.inexact_batches) {
        let members: Vec<&str> = model
            .processes
            .iter()
            .filter(|p| p.inexact_batches)
            .map(|p| p.member.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        notes.push(format!(
            "{} reported batches without per-record `offsets`: gaps and re-deliveries inside a batch are not checked, only its span and count",
            members.join(", ")
        ));
    }
    if let Some(fin) = &model.final_assignment {
        metrics.final_assignment = fin
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(m, p)| (m.clone(), p.iter().map(|tp| tp.partition).collect()))
            .collect();
    }

    let applied = deviations::apply(&model, &mut checks);
    notes.extend(applied.notes);
    let outcome = outcome(&checks, completed.skipped.is_some(), applied.client_finding);
    let info = model.info.as_ref();
    Verdict {
        passed: outcome == Outcome::Pass,
        outcome,
        skipped: completed.skipped,
        scenario: info.map_or("?".into(), |i| i.scenario.clone()),
        protocol: info.map(|i| i.protocol),
        broker: info.map_or("?".into(), |i| i.broker.clone()),
        clients: model.clients(),
        seed: info.map_or(0, |i| i.seed),
        replay: info.map_or(String::new(), |i| i.replay.clone()),
        checks,
        metrics,
        notes,
        stale_deviations: applied.stale,
    }
}

fn outcome(checks: &[CheckResult], skipped: bool, client_finding: bool) -> Outcome {
    let all_waived = checks.iter().all(|c| c.unwaived().next().is_none());
    if skipped && all_waived {
        Outcome::Skipped
    } else if checks.iter().all(|c| c.passed) {
        Outcome::Pass
    } else if !all_waived {
        Outcome::Fail
    } else if client_finding {
        Outcome::ClientFinding
    } else {
        Outcome::KnownDeviation
    }
}

/// Nothing was produced or consumed: a run skipped before its broker started.
fn nothing_ran(model: &Model) -> bool {
    model.production_stopped.is_none() && model.acked_count == 0 && model.ownerships.is_empty()
}
