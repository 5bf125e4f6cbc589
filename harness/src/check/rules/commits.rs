//! Rule 5, commits: never beyond the processed position, never backwards, and a member
//! that no longer holds a partition (fenced, revoked, expired) cannot commit it.
//!
//! One refinement: a member paused or cut off by a fault may report a commit it sent
//! before the fault only after the fault heals, behind the next owner's commits. Such a
//! late report is not backwards if its offset is within what the member had processed
//! before the fault began.

use std::collections::BTreeMap;

use crate::check::model::Model;
use crate::check::verdict::CheckResult;
use crate::history::TopicPartition;

pub fn check(model: &Model) -> CheckResult {
    let mut violations = Vec::new();
    let mut last: BTreeMap<&TopicPartition, i64> = BTreeMap::new();
    let mut ok = 0usize;
    for c in model.commits.iter().filter(|c| c.success) {
        let name = format!(
            "{} committed {}-{} at {}",
            c.member, c.tp.topic, c.tp.partition, c.offset
        );
        if !c.owner {
            violations.push(format!(
                "{name} at {} without holding the partition: a fenced commit succeeded",
                c.ts
            ));
        }
        if let Some(&prev) = last.get(&c.tp) {
            if c.offset < prev && !reported_late(model, c) {
                violations.push(format!("{name}: backwards from {prev}"));
            }
        }
        // Highest offset this member had processed from the partition by then.
        let processed = model
            .ownerships_of(&c.tp)
            .filter(|o| o.member == c.member)
            .flat_map(|o| o.batches.iter())
            .filter(|b| b.at < c.at)
            .map(|b| b.max + 1)
            .max();
        let floor = last.get(&c.tp).copied();
        let limit = processed.max(floor).unwrap_or(0);
        if c.offset > limit {
            violations.push(format!("{name}: beyond its processed position {limit}"));
        }
        last.insert(&c.tp, c.offset.max(floor.unwrap_or(i64::MIN)));
        ok += 1;
    }
    let failed = model.commits.iter().filter(|c| !c.success).count();
    CheckResult::new(
        "commits",
        violations,
        format!("{ok} successful partition commits monotonic and within processed positions; {failed} failed"),
    )
}

/// Whether `c` can be a commit sent before a zombie fault on its member and reported
/// after it: its offset is within what the member processed before the fault.
fn reported_late(model: &Model, c: &crate::check::model::Commit) -> bool {
    let Some(fault_start) = model
        .faults
        .iter()
        .filter(|f| {
            f.fault.target.as_deref() == Some(c.member.as_str())
                && crate::check::model::ZOMBIE_FAULTS.contains(&f.fault.kind.as_str())
                && f.start <= c.ts
        })
        .map(|f| f.start)
        .max()
    else {
        return false;
    };
    model
        .ownerships_of(&c.tp)
        .filter(|o| o.member == c.member)
        .flat_map(|o| o.batches.iter())
        .filter(|b| b.ts <= fault_start)
        .map(|b| b.max + 1)
        .max()
        .is_some_and(|processed| c.offset <= processed)
}
