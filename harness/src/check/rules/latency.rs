//! Rule 6, latency: per fault, detection (fault -> first group reaction) inside a
//! two-sided window, recovery (fault -> every partition owned and consumed again, a
//! partition whose owner stopped consuming counting from the fault too) and the longest
//! zombie window within budget; also per-partition unowned time, partitions moved,
//! stop-the-world members and the lag when the fault hit.
//!
//! A budget missed by no more than the harness's own scheduling delay in that window
//! (the machine starved the run) is reported as a note, not blamed on the client.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::model::{Assignment, EndReason, FaultWindow, Model};
use crate::check::verdict::{CheckResult, FaultMetrics, Metrics, Violation};
use crate::history::{Budget, Ms, Rule, TopicPartition, ViolationKind};

pub fn check(model: &Model, metrics: &mut Metrics, notes: &mut Vec<String>) -> CheckResult {
    let mut violations = Vec::new();
    for (i, f) in model.faults.iter().enumerate() {
        let fm = measure(model, i, f);
        let budget = model
            .info
            .as_ref()
            .and_then(|info| info.budgets.get(&f.fault.kind));
        let label = format!("{} {}", f.fault.id, f.fault.kind);
        let v = |kind, message: String| {
            Violation::new(kind, format!("{label}: {message}"))
                .fault(Some(&f.fault))
                .at(f.start)
        };
        let Some(b) = budget else {
            violations.push(v(
                ViolationKind::NoBudget,
                format!("no budget for fault kind '{}'", f.fault.kind),
            ));
            metrics.faults.push(fm);
            continue;
        };
        for (kind, message, overrun) in judge(&fm, b) {
            if overrun > 0 && overrun <= fm.starvation_ms {
                notes.push(format!(
                    "{label}: {message}, missed by {overrun} ms while the harness itself ran up to {} ms late: the machine was starved, so this is not counted against the client",
                    fm.starvation_ms
                ));
            } else {
                violations.push(v(kind, message).size(overrun.max(1)));
            }
        }
        metrics.faults.push(fm);
    }
    metrics.detection_ms = metrics.faults.first().and_then(|f| f.detection_ms);
    metrics.recovery_ms = metrics.faults.first().and_then(|f| f.recovery_ms);
    metrics.max_unowned_ms = max_unowned(model);
    metrics.max_scheduling_delay_ms = model
        .scheduling_delays
        .iter()
        .map(|(_, d)| *d)
        .max()
        .unwrap_or(0);
    metrics.rebalances = rebalance_rounds(&model.assignments);

    let summary: Vec<String> = metrics
        .faults
        .iter()
        .map(|f| {
            format!(
                "{} {}: detection {} ms, recovery {} ms",
                f.id,
                f.kind,
                f.detection_ms.map_or("-".into(), |v| v.to_string()),
                f.recovery_ms.map_or("-".into(), |v| v.to_string())
            )
        })
        .collect();
    CheckResult::new(
        Rule::Latency,
        violations,
        if summary.is_empty() {
            "no faults injected".into()
        } else {
            format!("within budget: {}", summary.join("; "))
        },
    )
}

/// The budget's verdict on one fault's figures: (kind, message, overrun in ms).
fn judge(fm: &FaultMetrics, b: &Budget) -> Vec<(ViolationKind, String, u64)> {
    let mut out = Vec::new();
    match fm.detection_ms {
        // A fault the group must ride out: reacting is judged by the protocol table
        // (rebalances_max), not here.
        _ if !b.reaction => {}
        None => out.push((ViolationKind::NoReaction, "the group never reacted".into(), 0)),
        Some(d) if d < b.detection_min_ms => out.push((
            ViolationKind::Premature,
            format!(
                "group reacted after {d} ms, before the earliest allowed {} ms (a premature rebalance)",
                b.detection_min_ms
            ),
            0,
        )),
        Some(d) if d > b.detection_max_ms => out.push((
            ViolationKind::LateDetection,
            format!("detection took {d} ms, budget {} ms", b.detection_max_ms),
            d - b.detection_max_ms,
        )),
        Some(_) => {}
    }
    match fm.recovery_ms {
        None => out.push((
            ViolationKind::NotRecovered,
            "some partition was never owned and consumed again".into(),
            0,
        )),
        Some(r) if r > b.recovery_max_ms => out.push((
            ViolationKind::LateRecovery,
            format!("recovery took {r} ms, budget {} ms", b.recovery_max_ms),
            r - b.recovery_max_ms,
        )),
        Some(_) => {}
    }
    if let Some(max) = b.zombie_max_ms.filter(|&m| fm.zombie_ms > m) {
        out.push((
            ViolationKind::ZombieTooLong,
            format!(
                "a zombie window lasted {} ms, budget {max} ms",
                fm.zombie_ms
            ),
            fm.zombie_ms - max,
        ));
    }
    out
}

fn measure(model: &Model, index: usize, f: &FaultWindow) -> FaultMetrics {
    let targets = f.fault.members();
    // A join's clock starts when the joiner is ready (its consumer exists and is
    // subscribed): a JVM's or an interpreter's start-up is not the group's latency.
    let clock = joiner_ready(model, f, &targets).unwrap_or(f.start);
    let f = &FaultWindow {
        start: clock,
        ..f.clone()
    };
    let (start, end) = (f.start, f.window_end);
    let mut recovery = Some(0u64);
    let mut moved = 0;
    let mut lag = 0u64;
    for tp in model.partitions.keys() {
        let before = model
            .owner_at(tp, start.saturating_sub(1))
            .map(|o| &o.member);
        let after = model.owner_at(tp, end).map(|o| &o.member);
        if before != after {
            moved += 1;
        }
        let acked = model.acked_by(tp, start);
        lag += acked.saturating_sub(model.consumed_by(tp, start)).max(0) as u64;
        recovery = match (recovery, recovered(model, f, tp)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    FaultMetrics {
        id: f.fault.id.clone(),
        kind: f.fault.kind,
        target: f.fault.target.clone(),
        start,
        healed: f.healed,
        detection_ms: detection(model, f, &targets),
        recovery_ms: recovery,
        partitions_moved: moved,
        stop_the_world_members: stop_the_world(model, f, &targets),
        rebalances: rebalance_rounds(
            model
                .assignments
                .iter()
                .filter(|a| f.contains(a.ts) && !a.first_of_process),
        ),
        zombie_ms: model
            .zombies
            .iter()
            .filter(|z| z.fault == Some(index))
            .map(|z| z.excused_ms())
            .max()
            .unwrap_or(0),
        lag_at_fault: lag,
        starvation_ms: model.starvation(start, end),
    }
}

/// When the member a join fault started reported `startup_complete`, if after the fault.
fn joiner_ready(model: &Model, f: &FaultWindow, targets: &[&str]) -> Option<Ms> {
    if f.fault.kind != crate::history::FaultKind::Join {
        return None;
    }
    model
        .processes
        .iter()
        .filter(|p| targets.contains(&p.member.as_str()) && p.started >= f.start)
        .filter_map(|p| p.ready)
        .filter(|&t| t > f.start && t <= f.window_end)
        .min()
}

/// First group reaction: any assignment change after the fault. A target giving up its
/// own partitions (a leaver's revocation on close) is the fault, not a reaction.
fn detection(model: &Model, f: &FaultWindow, targets: &[&str]) -> Option<u64> {
    let ends = model.ownerships.iter().filter_map(|o| {
        let reacted = matches!(o.end_reason, EndReason::Revoked | EndReason::Lost)
            && !targets.contains(&o.member.as_str());
        o.end.filter(|_| reacted)
    });
    model
        .ownerships
        .iter()
        .map(|o| o.start)
        .chain(ends)
        .chain(model.assignments.iter().map(|a| a.ts))
        .filter(|&t| f.contains(t))
        .min()
        .map(|t| t - f.start)
}

/// When `tp` was owned and consumed again after the fault, in ms from the fault: the
/// first batch of its last new owner in the window, or, if it kept its owner, that
/// owner's first batch after the fault (an owner that stopped consuming has not
/// recovered until it consumes again). `None`: never, though there was more to read.
fn recovered(model: &Model, f: &FaultWindow, tp: &TopicPartition) -> Option<u64> {
    let (start, end) = (f.start, f.window_end);
    let owner = model
        .ownerships_of(tp)
        .filter(|o| f.contains(o.start))
        .max_by_key(|o| (o.start, o.start_at))
        .or_else(|| {
            model
                .owner_at(tp, start)
                .filter(|o| o.covers(end, model.horizon + 1))
        });
    let nothing_to_read = |from: i64| model.acked_by(tp, end) <= from;
    match owner {
        Some(o) => match o.batches.iter().find(|b| b.ts > start) {
            Some(b) => Some(b.ts - start),
            None => {
                let reached = o
                    .batches
                    .last()
                    .map_or(model.consumed_by(tp, start), |b| b.max);
                nothing_to_read(reached).then(|| o.start.max(start) - start)
            }
        },
        None => nothing_to_read(model.consumed_by(tp, end)).then_some(0),
    }
}

/// Members (other than the targets) that gave up everything they held at the fault
/// within its window.
fn stop_the_world(model: &Model, f: &FaultWindow, targets: &[&str]) -> Vec<String> {
    let mut held: BTreeMap<&str, Vec<&crate::check::model::Ownership>> = BTreeMap::new();
    for o in model
        .ownerships
        .iter()
        .filter(|o| o.covers(f.start, model.horizon + 1))
    {
        held.entry(o.member.as_str()).or_default().push(o);
    }
    held.into_iter()
        .filter(|(m, os)| {
            !targets.contains(m)
                && !os.is_empty()
                && os.iter().all(|o| o.end.is_some_and(|e| f.contains(e)))
        })
        .map(|(m, _)| m.to_owned())
        .collect()
}

/// Longest stretch any partition spent with no owner, from its first assignment until
/// production stopped.
fn max_unowned(model: &Model) -> u64 {
    let end = model.production_stopped.unwrap_or(model.horizon);
    let mut worst = 0;
    for tp in model.partitions.keys() {
        let mut spans: Vec<(Ms, Ms)> = model
            .ownerships_of(tp)
            .map(|o| (o.start, o.end_or(model.horizon)))
            .filter(|(s, _)| *s <= end)
            .collect();
        spans.sort();
        let Some(&(first, _)) = spans.first() else {
            continue;
        };
        let mut covered_to = first;
        for (s, e) in spans {
            if s > covered_to {
                worst = worst.max(s - covered_to);
            }
            covered_to = covered_to.max(e);
        }
        if covered_to < end {
            worst = worst.max(end - covered_to);
        }
    }
    worst
}

/// Counts rebalance rounds from `partitions_assigned` events: every member gets one
/// assignment per generation, so a member seen twice starts a new round.
pub fn rebalance_rounds<'a>(assignments: impl IntoIterator<Item = &'a Assignment>) -> usize {
    let mut rounds = 0;
    let mut in_round: BTreeSet<&str> = BTreeSet::new();
    for Assignment { member, .. } in assignments {
        if in_round.is_empty() || !in_round.insert(member) {
            rounds += 1;
            in_round.clear();
            in_round.insert(member);
        }
    }
    rounds
}
