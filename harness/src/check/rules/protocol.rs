//! Rule 7, protocol expectations (DESIGN.md's protocol x fault table) and the scenario's
//! own promises (the final assignment).

use std::collections::BTreeSet;

use crate::check::model::{EndReason, FaultWindow, Model};
use crate::check::rules::latency::rebalance_rounds;
use crate::check::rules::{intersect, size};
use crate::check::verdict::{CheckResult, FaultMetrics};
use crate::history::CellExpectation;

/// Faults that change membership, after which the table says who must revoke what.
const MEMBERSHIP_FAULTS: &[&str] = &["crash", "join", "leave"];

/// `faults`: the latency rule's measurements, one per fault of `model`, in order.
pub fn check(model: &Model, faults: &[FaultMetrics]) -> CheckResult {
    let mut violations = Vec::new();
    let protocol = model
        .info
        .as_ref()
        .map(|i| i.protocol.as_str())
        .unwrap_or("");
    let eager = protocol.starts_with("eager") || protocol == "static-eager";
    let cooperative = protocol.contains("cooperative") || protocol == "consumer";

    for (f, fm) in model
        .faults
        .iter()
        .zip(faults)
        .filter(|(f, _)| MEMBERSHIP_FAULTS.contains(&f.fault.kind.as_str()))
    {
        let target = f.fault.target.as_deref();
        let holders: BTreeSet<&str> = model
            .ownerships
            .iter()
            .filter(|o| o.covers(f.start, model.horizon + 1) && Some(o.member.as_str()) != target)
            .map(|o| o.member.as_str())
            .collect();
        if eager {
            for m in holders {
                if !fm.stop_the_world_members.iter().any(|s| s == m) {
                    violations.push(format!(
                        "{} {}: under {protocol} every member revokes all, but {m} kept some",
                        f.fault.id, f.fault.kind
                    ));
                }
            }
        }
        if cooperative && f.fault.kind == "crash" {
            for o in model.ownerships.iter().filter(|o| {
                Some(o.member.as_str()) != target
                    && o.end_reason == EndReason::Revoked
                    && o.end.is_some_and(|e| f.contains(e))
            }) {
                violations.push(format!(
                    "{} crash: survivor {} revoked {}-{}; only orphaned partitions may move",
                    f.fault.id, o.member, o.tp.topic, o.tp.partition
                ));
            }
        }
    }

    for f in &model.faults {
        if let Some(e) = model
            .info
            .as_ref()
            .and_then(|i| i.cell_expectations.get(&f.fault.kind))
        {
            violations.extend(cell(model, f, e, protocol));
        }
    }

    if cooperative {
        // A cooperative member never revokes a partition it keeps: the next owner of a
        // revoked partition is someone else.
        for o in model
            .ownerships
            .iter()
            .filter(|o| o.end_reason == EndReason::Revoked)
        {
            let end = o.end.unwrap_or(0);
            let next = model
                .ownerships_of(&o.tp)
                .filter(|n| n.start >= end && !std::ptr::eq(*n, o))
                .min_by_key(|n| n.start);
            let shutting_down = model.production_stopped.is_some_and(|t| end >= t);
            if let Some(n) = next {
                if n.member == o.member && n.process == o.process && !shutting_down {
                    violations.push(format!(
                        "{} revoked {}-{} at {end} and got it back at {}: it revoked a partition it kept",
                        o.member, o.tp.topic, o.tp.partition, n.start
                    ));
                }
            }
        }
    }

    let expected = model
        .info
        .as_ref()
        .and_then(|i| i.expectations.final_balanced_over.clone());
    if let Some(expected) = expected {
        match &model.final_assignment {
            None => violations.push("no final assignment: production never stopped".into()),
            Some(fin) => {
                let holders: BTreeSet<&String> = fin
                    .iter()
                    .filter(|(_, p)| !p.is_empty())
                    .map(|(m, _)| m)
                    .collect();
                let want: BTreeSet<&String> = expected.iter().collect();
                if holders != want {
                    violations.push(format!(
                        "final assignment held by {holders:?}, expected {want:?}"
                    ));
                }
                let counts: Vec<usize> = expected
                    .iter()
                    .map(|m| fin.get(m).map_or(0, |p| p.len()))
                    .collect();
                let (lo, hi) = (counts.iter().min(), counts.iter().max());
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    if hi - lo > 1 {
                        violations.push(format!(
                            "final assignment unbalanced: {counts:?} partitions over {expected:?}"
                        ));
                    }
                }
                let assigned: usize = fin.values().map(|p| p.len()).sum();
                let distinct: BTreeSet<_> = fin.values().flatten().collect();
                if distinct.len() != model.partitions.len() || assigned != distinct.len() {
                    violations.push(format!(
                        "final assignment covers {} of {} partitions ({} assignments)",
                        distinct.len(),
                        model.partitions.len(),
                        assigned
                    ));
                }
            }
        }
    }
    CheckResult::new(
        "protocol",
        violations,
        format!("{protocol} expectations hold"),
    )
}

/// One cell of the protocol x fault table, judged within the fault's window.
fn cell(model: &Model, f: &FaultWindow, e: &CellExpectation, protocol: &str) -> Vec<String> {
    let mut v = Vec::new();
    let label = format!("{} {} under {protocol}", f.fault.id, f.fault.kind);
    let in_window = |t: u64| f.contains(t);
    if let Some(max) = e.rebalances_max {
        // Rounds the members already in the group went through (a restarted process's
        // own first assignment is its joining, not a rebalance of the others).
        let rounds = rebalance_rounds(
            model
                .assignments
                .iter()
                .filter(|a| in_window(a.ts) && !a.first_of_process),
        );
        if rounds > max {
            v.push(format!(
                "{label}: {rounds} rebalances, at most {max} allowed"
            ));
        }
    }
    if let Some(max) = e.duplicates_max {
        let dups = duplicates_in(model, f);
        if dups > max {
            v.push(format!(
                "{label}: {dups} records re-delivered, at most {max} allowed"
            ));
        }
    }
    if e.same_assignment {
        for tp in &model.partitions {
            let before = model
                .owner_at(tp, f.start.saturating_sub(1))
                .map(|o| &o.member);
            let after = model.owner_at(tp, f.window_end).map(|o| &o.member);
            if before != after {
                v.push(format!(
                    "{label}: {}-{} moved from {before:?} to {after:?}; the assignment must stay the same",
                    tp.topic, tp.partition
                ));
            }
        }
    }
    v
}

/// Records consumed in the fault's window that had been consumed before.
fn duplicates_in(model: &Model, f: &FaultWindow) -> u64 {
    let mut total = 0;
    for tp in &model.partitions {
        let mut batches: Vec<_> = model
            .ownerships_of(tp)
            .flat_map(|o| o.batches.iter())
            .collect();
        batches.extend(model.stray.iter().filter(|s| &s.tp == tp).map(|s| &s.batch));
        batches.sort_by_key(|b| b.at);
        let mut seen = rangemap::RangeInclusiveSet::new();
        for b in batches {
            let mut this = rangemap::RangeInclusiveSet::new();
            this.insert(b.min..=b.max);
            if b.ts > f.start && b.ts <= f.window_end {
                total += size(&intersect(&this, &seen));
            }
            seen.insert(b.min..=b.max);
        }
    }
    total
}
