//! Rule 3, single ownership: no two live members hold a partition at once. A member the
//! group may have expired (paused, cut off, stalled) that still holds a partition is a
//! zombie: its window is reported with its length, not a violation.

use crate::check::model::Model;
use crate::check::verdict::{CheckResult, Metrics};

pub fn check(model: &Model, metrics: &mut Metrics) -> CheckResult {
    let mut violations = Vec::new();
    let mut max_zombie = 0u64;
    let horizon = model.horizon;
    for tp in &model.partitions {
        let owners: Vec<_> = model.ownerships_of(tp).collect();
        for (i, a) in owners.iter().enumerate() {
            for b in owners.iter().skip(i + 1) {
                let start = a.start.max(b.start);
                let end = a.end_or(horizon).min(b.end_or(horizon));
                if end <= start || a.member == b.member {
                    continue;
                }
                // The earlier owner is the one that should have let go.
                let old = if a.start <= b.start { a } else { b };
                let new = if a.start <= b.start { b } else { a };
                if model.zombie_fault_at(&old.member, start) {
                    max_zombie = max_zombie.max(end - start);
                } else {
                    violations.push(format!(
                        "{}-{} held by {} and {} at once for {} ms (from {start})",
                        tp.topic,
                        tp.partition,
                        old.member,
                        new.member,
                        end - start
                    ));
                }
            }
        }
    }
    for s in &model.stray {
        if model.zombie_fault_at(&s.member, s.batch.ts) {
            continue;
        }
        violations.push(format!(
            "{} consumed {}-{} offsets {}..={} at {} without holding it",
            s.member, s.tp.topic, s.tp.partition, s.batch.min, s.batch.max, s.batch.ts
        ));
    }
    metrics.max_zombie_ms = max_zombie;
    CheckResult::new(
        "single_ownership",
        violations,
        format!("no partition held by two live members; longest zombie window {max_zombie} ms"),
    )
}
