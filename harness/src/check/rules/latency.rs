//! Rule 6, latency: per fault, detection (fault -> first group reaction) inside a
//! two-sided window, recovery (fault -> every partition owned and consumed again) within
//! budget; also per-partition unowned time, partitions moved, and stop-the-world members.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::model::{Assignment, FaultWindow, Model};
use crate::check::verdict::{CheckResult, FaultMetrics, Metrics};
use crate::history::{Ms, TopicPartition};

pub fn check(model: &Model, metrics: &mut Metrics) -> CheckResult {
    let mut violations = Vec::new();
    for f in &model.faults {
        let fm = measure(model, f);
        let budget = model
            .info
            .as_ref()
            .and_then(|i| i.budgets.get(&f.fault.kind));
        let label = format!("{} {}", f.fault.id, f.fault.kind);
        match budget {
            None => violations.push(format!(
                "{label}: no budget for fault kind '{}'",
                f.fault.kind
            )),
            Some(b) => {
                match fm.detection_ms {
                    // A fault the group must ride out: reacting is judged by the
                    // protocol table (rebalances_max), not here.
                    _ if !b.reaction => {}
                    None => violations.push(format!("{label}: the group never reacted")),
                    Some(d) if d < b.detection_min_ms => violations.push(format!(
                        "{label}: group reacted after {d} ms, before the earliest allowed {} ms (a premature rebalance)",
                        b.detection_min_ms
                    )),
                    Some(d) if d > b.detection_max_ms => violations.push(format!(
                        "{label}: detection took {d} ms, budget {} ms",
                        b.detection_max_ms
                    )),
                    Some(_) => {}
                }
                match fm.recovery_ms {
                    None => violations.push(format!(
                        "{label}: some partition was never owned and consumed again"
                    )),
                    Some(r) if r > b.recovery_max_ms => violations.push(format!(
                        "{label}: recovery took {r} ms, budget {} ms",
                        b.recovery_max_ms
                    )),
                    Some(_) => {}
                }
            }
        }
        metrics.faults.push(fm);
    }
    metrics.detection_ms = metrics.faults.first().and_then(|f| f.detection_ms);
    metrics.recovery_ms = metrics.faults.first().and_then(|f| f.recovery_ms);
    metrics.max_unowned_ms = max_unowned(model);
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
        "latency",
        violations,
        if summary.is_empty() {
            "no faults injected".into()
        } else {
            format!("within budget: {}", summary.join("; "))
        },
    )
}

fn measure(model: &Model, f: &FaultWindow) -> FaultMetrics {
    let (start, end) = (f.start, f.window_end);
    let in_window = |t: Ms| f.contains(t);
    let target = f.fault.target.as_deref();

    // First group reaction: any assignment change after the fault. A target giving up
    // its own partitions (a leaver's revocation on close) is the fault, not a reaction.
    let targets: Vec<&str> = target.map(|t| t.split(',').collect()).unwrap_or_default();
    let mut reactions: Vec<Ms> = model
        .ownerships
        .iter()
        .flat_map(|o| {
            let mut v = vec![o.start];
            let own_end = targets.contains(&o.member.as_str());
            if let (Some(e), r, false) = (o.end, o.end_reason, own_end) {
                if matches!(
                    r,
                    crate::check::model::EndReason::Revoked | crate::check::model::EndReason::Lost
                ) {
                    v.push(e);
                }
            }
            v
        })
        .filter(|&t| in_window(t))
        .collect();
    reactions.extend(
        model
            .assignments
            .iter()
            .map(|a| a.ts)
            .filter(|&t| in_window(t)),
    );
    let detection_ms = reactions.into_iter().min().map(|t| t - start);

    // Recovery: each partition's last (re)assignment in the window, then its first batch.
    let mut recovery = Some(0u64);
    let mut moved = 0;
    for tp in &model.partitions {
        let before = model
            .owner_at(tp, start.saturating_sub(1))
            .map(|o| o.member.clone());
        let after = model.owner_at(tp, end).map(|o| o.member.clone());
        if before != after {
            moved += 1;
        }
        let last_start = model
            .ownerships_of(tp)
            .filter(|o| in_window(o.start))
            .max_by_key(|o| o.start);
        let r = match last_start {
            Some(o) => o.batches.first().map(|b| b.ts.saturating_sub(start)),
            // Never moved: recovered only if its owner stayed alive and consuming.
            None => match model.owner_at(tp, end) {
                Some(o) if o.start <= start => Some(0),
                _ => None,
            },
        };
        recovery = match (recovery, r) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }

    // Members that gave up everything they held at the fault (stop-the-world).
    let mut held: BTreeMap<&str, BTreeSet<&TopicPartition>> = BTreeMap::new();
    for o in model
        .ownerships
        .iter()
        .filter(|o| o.covers(start, model.horizon + 1))
    {
        held.entry(o.member.as_str()).or_default().insert(&o.tp);
    }
    let stop_the_world = held
        .iter()
        .filter(|(m, tps)| {
            Some(**m) != target
                && !tps.is_empty()
                && tps.iter().all(|tp| {
                    model.ownerships.iter().any(|o| {
                        o.member == **m
                            && &&o.tp == tp
                            && o.covers(start, model.horizon + 1)
                            && o.end.is_some_and(in_window)
                    })
                })
        })
        .map(|(m, _)| m.to_string())
        .collect();

    FaultMetrics {
        id: f.fault.id.clone(),
        kind: f.fault.kind.clone(),
        target: f.fault.target.clone(),
        detection_ms,
        recovery_ms: recovery,
        partitions_moved: moved,
        stop_the_world_members: stop_the_world,
    }
}

/// Longest stretch any partition spent with no owner, from its first assignment until
/// production stopped.
fn max_unowned(model: &Model) -> u64 {
    let end = model.production_stopped.unwrap_or(model.horizon);
    let mut worst = 0;
    for tp in &model.partitions {
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
