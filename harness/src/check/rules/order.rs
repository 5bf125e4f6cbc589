//! Rule 4, order: within one ownership, consumed offsets are contiguous and start at the
//! committed position (no skip, no rewind).
//!
//! One refinement: when an owner died (killed, or exited without revoking), a commit it
//! had in flight may have landed without ever being reported. Until a reported commit
//! replaces it, a later owner (the next, or one after handovers that committed nothing)
//! may start anywhere from the last reported commit up to just past what the dead owner
//! had processed; that start is never a skip, since nothing beyond it was lost.
//! The same holds for a zombie (a member paused, cut off or stalled by a fault) that
//! still held the partition when the next owner started: its commit may have landed
//! before it was expired and be reported only later (or never, if held by a partition).

use crate::check::model::{EndReason, Model};
use crate::check::verdict::CheckResult;

pub fn check(model: &Model) -> CheckResult {
    let mut violations = Vec::new();
    let mut checked = 0usize;
    for o in &model.ownerships {
        let Some(first) = o.batches.first() else {
            continue;
        };
        checked += 1;
        let name = format!("{}-{} under {}", o.tp.topic, o.tp.partition, o.member);
        // With no commit yet the group starts from the log's start (reset policy earliest).
        let log_start = model
            .acked
            .get(&o.tp)
            .and_then(|s| s.iter().next().map(|r| *r.start()))
            .unwrap_or(0);
        let expected = model.committed_before(&o.tp, first.at).unwrap_or(log_start);
        // A dead owner's unobserved commit stays the committed position until a reported
        // commit replaces it, across any handovers in between that committed nothing.
        let last_reported = model
            .commits
            .iter()
            .filter(|c| c.success && c.tp == o.tp && c.at < first.at)
            .map(|c| c.at)
            .max();
        let dead = model
            .ownerships_of(&o.tp)
            .filter(|p| {
                matches!(p.end_reason, EndReason::Killed | EndReason::Exited)
                    && p.end.is_some_and(|e| e <= o.start)
                    && p.end_at > last_reported
            })
            .flat_map(|p| p.batches.iter().map(|b| b.max + 1))
            .max();
        let zombie = model
            .ownerships_of(&o.tp)
            .filter(|p| {
                !std::ptr::eq(*p, o)
                    && p.start <= o.start
                    && p.end.is_none_or(|e| e >= o.start)
                    && model.zombie_fault_at(&p.member, o.start)
            })
            .flat_map(|p| p.batches.iter().filter(|b| b.at < first.at))
            .map(|b| b.max + 1)
            .max();
        let in_flight_limit = dead.max(zombie).unwrap_or(expected);
        if first.min < expected || first.min > in_flight_limit.max(expected) {
            let what = if first.min > expected {
                "skipped"
            } else {
                "rewound"
            };
            violations.push(format!(
                "{name}: started at {} but the committed position was {expected} ({what})",
                first.min
            ));
        }
        let mut next = None;
        for b in &o.batches {
            if b.count != (b.max - b.min + 1) as u64 {
                violations.push(format!(
                    "{name}: batch {}..={} holds {} records, so it skipped offsets",
                    b.min, b.max, b.count
                ));
            }
            if let Some(n) = next {
                if b.min != n {
                    let what = if b.min > n { "skipped" } else { "rewound" };
                    violations.push(format!(
                        "{name}: expected offset {n} next, got {} ({what})",
                        b.min
                    ));
                }
            }
            next = Some(b.max + 1);
        }
    }
    CheckResult::new(
        "order",
        violations,
        format!("{checked} ownerships consumed in order from the committed position"),
    )
}
