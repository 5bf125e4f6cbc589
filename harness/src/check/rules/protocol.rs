//! Rule 7, protocol expectations: what each membership change must look like under the
//! protocol, the protocol x fault table's per-cell promises
//! (fixtures/expectations.toml), and the scenario's own promise about the final
//! assignment.
//!
//! - eager: every member holding partitions revokes them all at every membership change
//!   (crash, join, leave, scale-down, restart, rolling bounce), except a static member's
//!   quick restart, which is no membership change at all;
//! - cooperative (and KIP-848): when members leave, survivors revoke nothing; when one
//!   joins or comes back, survivors revoke only what moves to it; nobody revokes a
//!   partition it gets straight back;
//! - a broker fault moves no partition and starts no rebalance, unless the group really
//!   lost a member (one reported its partitions lost, or died).
//!
//! In a chaos schedule faults overlap, so only the promises that hold whatever the faults
//! are judged: nobody revokes what it gets straight back, and the final assignment.

use std::collections::BTreeSet;

use super::{intersect, size};
use crate::check::model::{EndReason, FaultWindow, Model};
use crate::check::verdict::{CheckResult, FaultMetrics, Violation};
use crate::history::{CellExpectation, FaultKind, Protocol, Rule, ViolationKind};

/// `faults`: the latency rule's measurements, one per fault of `model`, in order.
pub fn check(model: &Model, faults: &[FaultMetrics]) -> CheckResult {
    let Some(info) = &model.info else {
        return CheckResult::new(Rule::Protocol, Vec::new(), "no run information".into());
    };
    let protocol = info.protocol;
    let mut violations = Vec::new();
    // Overlapping chaos faults share one window, so who must revoke what for which
    // membership change cannot be told apart: only the promises that hold whatever the
    // faults (nobody revokes what it gets straight back, the final assignment) apply.
    let per_fault = if info.chaos { &[][..] } else { faults };
    for (f, fm) in model.faults.iter().zip(per_fault) {
        let v = |kind, message: String| {
            Violation::new(
                kind,
                format!(
                    "{} {} under {protocol}: {message}",
                    f.fault.id, f.fault.kind
                ),
            )
            .fault(Some(&f.fault))
            .at(f.start)
        };
        if protocol.is_eager() {
            violations.extend(eager_membership(model, f, fm, protocol, &v));
        } else {
            violations.extend(cooperative_membership(model, f, &v));
        }
        if let Some(e) = info.cell_expectations.get(&f.fault.kind) {
            violations.extend(cell(model, f, fm, e, &v));
        }
    }
    if protocol.is_cooperative() {
        violations.extend(revoked_and_kept(model));
    }
    violations.extend(final_assignment(model));
    CheckResult::new(
        Rule::Protocol,
        violations,
        format!("{protocol} expectations hold"),
    )
}

/// Eager: every member holding partitions at a membership change revokes them all.
fn eager_membership(
    model: &Model,
    f: &FaultWindow,
    fm: &FaultMetrics,
    protocol: Protocol,
    v: &impl Fn(ViolationKind, String) -> Violation,
) -> Vec<Violation> {
    let kind = f.fault.kind;
    let quick_static =
        protocol.is_static() && matches!(kind, FaultKind::Restart | FaultKind::RollingBounce);
    if !kind.changes_membership() || quick_static {
        return Vec::new();
    }
    let targets = f.fault.members();
    holders_at(model, f.start)
        .into_iter()
        .filter(|m| !targets.contains(m) && !fm.stop_the_world_members.iter().any(|s| s == m))
        .map(|m| {
            v(
                ViolationKind::EagerKept,
                format!("every member revokes all, but {m} kept some"),
            )
            .member(m)
        })
        .collect()
}

/// Cooperative: survivors give up only what must move.
fn cooperative_membership(
    model: &Model,
    f: &FaultWindow,
    v: &impl Fn(ViolationKind, String) -> Violation,
) -> Vec<Violation> {
    let kind = f.fault.kind;
    let targets = f.fault.members();
    let arriving = matches!(kind, FaultKind::Join | FaultKind::Restart);
    if !(kind.removes_target() || arriving) {
        return Vec::new();
    }
    model
        .ownerships
        .iter()
        .filter(|o| {
            !targets.contains(&o.member.as_str())
                && o.end_reason == EndReason::Revoked
                && o.end.is_some_and(|e| f.contains(e))
        })
        .filter(|o| {
            // Joining or returning members take partitions from survivors; those may
            // move, to them.
            let to = model
                .owner_at(&o.tp, f.window_end)
                .map(|n| n.member.as_str());
            !(arriving && to.is_some_and(|m| targets.contains(&m)))
        })
        .map(|o| {
            let why = if arriving {
                "only partitions that move to the arriving member may be revoked"
            } else {
                "only the leavers' partitions may move"
            };
            v(
                ViolationKind::SurvivorRevoked,
                format!("survivor {} revoked {}; {why}", o.member, o.tp),
            )
            .member(&o.member)
            .tp(&o.tp)
        })
        .collect()
}

/// Members holding a partition at time `t`.
fn holders_at(model: &Model, t: u64) -> BTreeSet<&str> {
    model
        .ownerships
        .iter()
        .filter(|o| o.covers(t, model.horizon + 1))
        .map(|o| o.member.as_str())
        .collect()
}

/// One cell of the protocol x fault table, judged within the fault's window.
fn cell(
    model: &Model,
    f: &FaultWindow,
    fm: &FaultMetrics,
    e: &CellExpectation,
    v: &impl Fn(ViolationKind, String) -> Violation,
) -> Vec<Violation> {
    let mut out = Vec::new();
    // A broker fault may move partitions only if the group really lost a member.
    let lost_a_member = f.fault.kind.hits_brokers() && group_lost_a_member(model, f);
    if let Some(max) = e
        .rebalances_max
        .filter(|&m| fm.rebalances > m && !lost_a_member)
    {
        out.push(
            v(
                ViolationKind::Rebalances,
                format!("{} rebalances, at most {max} allowed", fm.rebalances),
            )
            .size(fm.rebalances as u64),
        );
    }
    if let Some(max) = e.duplicates_max {
        let dups = duplicates_in(model, f);
        if dups > max {
            out.push(
                v(
                    ViolationKind::Duplicates,
                    format!("{dups} records re-delivered, at most {max} allowed"),
                )
                .size(dups),
            );
        }
    }
    if e.same_assignment && !lost_a_member {
        for tp in model.partitions.keys() {
            let before = model
                .owner_at(tp, f.start.saturating_sub(1))
                .map(|o| &o.member);
            let after = model.owner_at(tp, f.window_end).map(|o| &o.member);
            if before != after {
                out.push(
                    v(
                        ViolationKind::AssignmentChanged,
                        format!("{tp} moved from {before:?} to {after:?}; the assignment must stay the same"),
                    )
                    .tp(tp),
                );
            }
        }
    }
    out
}

/// Some member reported its partitions lost, or died, within the fault's window.
fn group_lost_a_member(model: &Model, f: &FaultWindow) -> bool {
    let lost = model
        .ownerships
        .iter()
        .any(|o| o.end_reason == EndReason::Lost && o.end.is_some_and(|e| f.contains(e)));
    let died = model.processes.iter().any(|p| {
        p.exit
            .as_ref()
            .is_some_and(|x| x.requested == Some(false) && f.contains(x.ts))
    });
    lost || died
}

/// A cooperative member never revokes a partition it keeps: the next owner of a revoked
/// partition is someone else (or the member's next process, after a restart).
fn revoked_and_kept(model: &Model) -> Vec<Violation> {
    let mut out = Vec::new();
    for (tp, log) in &model.partitions {
        let owners: Vec<_> = log.owners.iter().map(|&i| &model.ownerships[i]).collect();
        for (k, o) in owners.iter().enumerate() {
            if o.end_reason != EndReason::Revoked {
                continue;
            }
            let end = o.end.unwrap_or(0);
            let shutting_down = model.production_stopped.is_some_and(|t| end >= t);
            let next = owners[k + 1..].iter().find(|n| n.start >= end);
            if let Some(n) = next {
                if n.member == o.member && n.process == o.process && !shutting_down {
                    out.push(
                        Violation::new(
                            ViolationKind::RevokedKept,
                            format!(
                                "{} revoked {tp} at {end} and got it back at {}: it revoked a partition it kept",
                                o.member, n.start
                            ),
                        )
                        .tp(tp)
                        .member(&o.member)
                        .at(end)
                        .fault(model.fault_at(end)),
                    );
                }
            }
        }
    }
    out
}

/// The scenario's promise: the final assignment covers every partition once, evenly
/// over exactly the expected members.
fn final_assignment(model: &Model) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(expected) = model
        .info
        .as_ref()
        .and_then(|i| i.expectations.final_balanced_over.clone())
    else {
        return out;
    };
    let v = |message: String| {
        Violation::new(ViolationKind::FinalAssignment, message)
            .fault(model.fault_at(model.production_stopped.unwrap_or(model.horizon)))
    };
    let Some(fin) = &model.final_assignment else {
        out.push(v("no final assignment: production never stopped".into()));
        return out;
    };
    let holders: BTreeSet<&String> = fin
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(m, _)| m)
        .collect();
    let want: BTreeSet<&String> = expected.iter().collect();
    if holders != want {
        out.push(v(format!(
            "final assignment held by {holders:?}, expected {want:?}"
        )));
    }
    let counts: Vec<usize> = expected
        .iter()
        .map(|m| fin.get(m).map_or(0, |p| p.len()))
        .collect();
    if let (Some(lo), Some(hi)) = (counts.iter().min(), counts.iter().max()) {
        if hi - lo > 1 {
            out.push(v(format!(
                "final assignment unbalanced: {counts:?} partitions over {expected:?}"
            )));
        }
    }
    // The scenario's topic, grown partitions included (a subscription change may have
    // left other topics in the model).
    let topic = model.info.as_ref().map_or("", |i| i.topic.as_str());
    let on_topic = |tp: &&crate::history::TopicPartition| tp.topic == topic;
    let assigned = fin.values().flatten().filter(on_topic).count();
    let distinct: BTreeSet<_> = fin.values().flatten().filter(on_topic).collect();
    let total = model.partitions.keys().filter(on_topic).count();
    if distinct.len() != total || assigned != distinct.len() {
        out.push(v(format!(
            "final assignment covers {} of {total} partitions ({assigned} assignments)",
            distinct.len()
        )));
    }
    out
}

/// Records consumed in the fault's window that had been consumed before.
fn duplicates_in(model: &Model, f: &FaultWindow) -> u64 {
    let mut total = 0;
    for (tp, log) in &model.partitions {
        let mut batches: Vec<_> = model
            .ownerships_of(tp)
            .flat_map(|o| o.batches.iter())
            .chain(log.stray.iter().map(|s| &s.batch))
            .collect();
        batches.sort_by_key(|b| b.at);
        let mut seen = rangemap::RangeInclusiveSet::new();
        for b in batches {
            for &(a, z) in &b.ranges {
                let mut this = rangemap::RangeInclusiveSet::new();
                this.insert(a..=z);
                if f.contains(b.ts) {
                    total += size(&intersect(&this, &seen));
                }
                seen.insert(a..=z);
            }
        }
    }
    total
}
