//! Rule 5, commits. A successful commit:
//! - comes from a member that holds the partition when it commits (its own view), and
//!   that the group has not replaced: once another member owns the partition, a commit
//!   from the old owner must fail (fencing), unless it was sent before the handover;
//! - never goes backwards from the previous successful commit;
//! - never goes beyond what the member processed (or the position it started from).
//!
//! One refinement: a member paused or cut off by a fault may report a commit it sent
//! before the fault only after the fault heals, behind the next owner's commits. Such a
//! late report is not backwards if its offset is within what the member had processed
//! before the fault began.

use super::starts;
use crate::check::model::{Commit, Model, Ownership};
use crate::check::verdict::{CheckResult, Violation};
use crate::history::{Rule, ViolationKind};

pub fn check(model: &Model) -> CheckResult {
    let mut violations = Vec::new();
    let (mut ok, mut failed) = (0usize, 0usize);
    for tp in model.partitions.keys() {
        let mut previous: Option<&Commit> = None;
        for c in model.commits_of(tp) {
            if !c.success {
                failed += 1;
                continue;
            }
            ok += 1;
            let v = |kind, message: String| {
                Violation::new(
                    kind,
                    format!("{} committed {tp} at {}: {message}", c.member, c.offset),
                )
                .tp(tp)
                .member(&c.member)
                .at(c.ts)
                .fault(model.fault_at(c.ts))
            };
            let own = model
                .ownerships_of(tp)
                .filter(|o| o.member == c.member && o.process == c.process && o.start_at < c.at)
                .last();
            match own {
                None => violations.push(v(
                    ViolationKind::NotOwner,
                    "it never held the partition".into(),
                )),
                Some(o) if !o.holds_at(c.at) => violations.push(v(
                    ViolationKind::NotOwner,
                    format!(
                        "it had given the partition up at {} ({:?}) and no longer held it",
                        o.end.unwrap_or(0),
                        o.end_reason
                    ),
                )),
                Some(o) => {
                    if let Some(message) = fenced(model, o, c) {
                        violations.push(v(ViolationKind::Fenced, message));
                    }
                }
            }
            let late = reported_late(model, c);
            if let Some(prev) = previous {
                if c.offset < prev.offset && !late {
                    violations.push(
                        v(
                            ViolationKind::Backwards,
                            format!(
                                "backwards from {} ({} at {})",
                                prev.offset, prev.member, prev.ts
                            ),
                        )
                        .size((prev.offset - c.offset) as u64),
                    );
                }
            }
            let limit = limit(model, own, c, previous);
            if c.offset > limit {
                violations.push(
                    v(
                        ViolationKind::BeyondProcessed,
                        format!("beyond its processed position {limit}"),
                    )
                    .size((c.offset - limit) as u64),
                );
            }
            if !late {
                previous = Some(c);
            }
        }
    }
    CheckResult::new(
        Rule::Commits,
        violations,
        format!(
            "{ok} successful partition commits from their owners, monotonic and within processed positions; {failed} failed"
        ),
    )
}

/// Why `c`, a successful commit by the holder of ownership `o`, should have been
/// fenced: another member took the partition over before it, and `c` commits a
/// position `o` only reached after that.
fn fenced(model: &Model, o: &Ownership, c: &Commit) -> Option<String> {
    let n = model
        .ownerships_of(&o.tp)
        .find(|n| n.member != o.member && n.start_at > o.start_at && n.start_at < c.at)?;
    let reached = o.processed_before(n.start_at).map_or(i64::MIN, |m| m + 1);
    let committed = model
        .committed_before(&o.tp, n.start_at)
        .map_or(i64::MIN, |p| p.offset);
    (c.offset > reached.max(committed)).then(|| {
        format!(
            "{} had owned it since {}, so a commit of a position reached after that must fail",
            n.member, n.start
        )
    })
}

/// Whether `c` can be a commit sent before a fault that may have expelled its member
/// and reported after it: reported within the fault's zombie window (heal + session
/// timeout), by the ownership that held the partition when the fault began, of an
/// offset within what the member processed before the fault.
fn reported_late(model: &Model, c: &Commit) -> bool {
    let session = model.session_timeout_ms();
    let Some(own) = model
        .ownerships_of(&c.tp)
        .filter(|o| o.member == c.member && o.process == c.process && o.start_at < c.at)
        .last()
    else {
        return false;
    };
    model.faults.iter().any(|f| {
        let window = f.healed.unwrap_or(model.horizon) + session;
        f.may_expel(&c.member)
            && f.start <= c.ts
            && c.ts <= window
            && own.start <= f.start
            && own
                .batches
                .iter()
                .filter(|b| b.ts <= f.start)
                .map(|b| b.max + 1)
                .max()
                .is_some_and(|processed| c.offset <= processed)
    })
}

/// The highest position `c` may commit: past the last record its process processed,
/// the previous commit, or the position its ownership may have started from.
fn limit(model: &Model, own: Option<&Ownership>, c: &Commit, previous: Option<&Commit>) -> i64 {
    let processed = model
        .ownerships_of(&c.tp)
        .filter(|o| o.member == c.member && o.process == c.process)
        .filter_map(|o| o.processed_before(c.at))
        .max()
        .map_or(i64::MIN, |m| m + 1);
    let floor = previous.map_or(i64::MIN, |p| p.offset);
    let start = own
        .filter(|o| o.batches.first().is_none_or(|b| b.at > c.at))
        .map(|o| {
            let starts = starts::allowed(model, o, c.at);
            starts.allowed.last().copied().unwrap_or(i64::MIN)
        })
        .unwrap_or(i64::MIN);
    processed.max(floor).max(start).max(model.log_start(&c.tp))
}
