//! Rule 3, single ownership: no two live members hold a partition at once.
//!
//! A member the group expelled while it was paused, cut off, stalled, or during a
//! broker fault may go on processing until it finds out: a zombie window, reported with
//! its length. It ends at the latest when the member reports the partition lost or
//! revoked, or at its fault's heal plus the session timeout; anything beyond is a
//! violation, and so is any overlap no fault explains. Records of a partition the member
//! does not hold (after it reported it lost or revoked) are a violation, whatever the
//! faults.

use crate::check::model::Model;
use crate::check::verdict::{CheckResult, Metrics, Violation};
use crate::history::{Rule, ViolationKind};

pub fn check(model: &Model, metrics: &mut Metrics) -> CheckResult {
    let mut violations = Vec::new();
    let mut max_zombie = 0u64;
    for z in &model.zombies {
        let (old, new) = (&model.ownerships[z.old], &model.ownerships[z.new]);
        max_zombie = max_zombie.max(z.excused_ms());
        let excess = z.excess_ms();
        if excess == 0 {
            continue;
        }
        let fault = z.fault.map(|i| &model.faults[i].fault);
        let (kind, message) = match z.deadline {
            Some(deadline) => (
                ViolationKind::ZombieOverstay,
                format!(
                    "{} went on holding {} for {excess} ms past its zombie window (expelled under {} {}, which healed; it had until {deadline}, and {} owned the partition from {})",
                    old.member,
                    z.tp,
                    fault.map_or("?", |f| f.id.as_str()),
                    fault.map_or("?", |f| f.kind.as_str()),
                    new.member,
                    z.start
                ),
            ),
            None => (
                ViolationKind::DoubleOwner,
                format!(
                    "{} held by {} and {} at once for {excess} ms (from {})",
                    z.tp, old.member, new.member, z.start
                ),
            ),
        };
        violations.push(
            Violation::new(kind, message)
                .tp(&z.tp)
                .member(&old.member)
                .size(excess)
                .at(z.start)
                .fault(fault.or_else(|| model.fault_at(z.start))),
        );
    }
    for (tp, log) in &model.partitions {
        for s in &log.stray {
            let b = &s.batch;
            violations.push(
                Violation::new(
                    ViolationKind::Stray,
                    format!(
                        "{} consumed {tp} offsets {}..={} at {} without holding it",
                        s.member, b.min, b.max, b.ts
                    ),
                )
                .tp(tp)
                .member(&s.member)
                .size(b.count)
                .at(b.ts)
                .fault(model.fault_at(b.ts)),
            );
        }
    }
    metrics.max_zombie_ms = max_zombie;
    CheckResult::new(
        Rule::SingleOwnership,
        violations,
        format!("no partition held by two live members; longest zombie window {max_zombie} ms"),
    )
}
