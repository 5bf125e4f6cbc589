//! Rule 2, duplicates explained. Every re-delivered offset must be explained by the
//! handover it followed: after a revocation, nothing (the old owner committed in its
//! revoke callback); after a crash, expiry, loss or failed commit, exactly what the old
//! owner processed past its last successful commit.

use rangemap::RangeInclusiveSet;

use super::{intersect, show, size};
use crate::check::model::{Model, Ownership};
use crate::check::verdict::{CheckResult, Metrics};
use crate::history::Ms;

pub fn check(model: &Model, metrics: &mut Metrics) -> CheckResult {
    let mut violations = Vec::new();
    let (mut total, mut explained_total) = (0u64, 0u64);
    let mut consumed_total = 0u64;

    for tp in &model.partitions {
        let mut owners: Vec<&Ownership> = model.ownerships_of(tp).collect();
        owners.sort_by_key(|o| o.start);
        let mut seen: RangeInclusiveSet<i64> = RangeInclusiveSet::new();
        let mut prev: Option<&Ownership> = None;
        // What an abrupt handover allowed and no owner has re-processed yet stays allowed
        // across later handovers: an owner that took over and handed on (cleanly,
        // committing only what it processed) before reaching it left it uncommitted.
        let mut carried: RangeInclusiveSet<i64> = RangeInclusiveSet::new();
        for o in owners {
            let mut allowance = prev
                .map(|p| allowance(model, p, o.start))
                .unwrap_or_default();
            for r in carried.iter() {
                allowance.insert(r.clone());
            }
            for b in &o.batches {
                consumed_total += b.count;
                let mut batch = RangeInclusiveSet::new();
                batch.insert(b.min..=b.max);
                let dup = intersect(&batch, &seen);
                let explained = intersect(&dup, &allowance);
                let unexplained: RangeInclusiveSet<i64> = {
                    let mut u = dup.clone();
                    for r in explained.iter() {
                        u.remove(r.clone());
                    }
                    u
                };
                total += size(&dup);
                explained_total += size(&explained);
                // An allowance is spent once: a second re-delivery is a rewind.
                for r in explained.iter() {
                    allowance.remove(r.clone());
                }
                if !unexplained.is_empty() {
                    violations.push(format!(
                        "{}-{}: {} re-delivered to {} at {} with no handover to explain it (offsets {})",
                        tp.topic,
                        tp.partition,
                        size(&unexplained),
                        o.member,
                        b.ts,
                        show(&unexplained)
                    ));
                }
                seen.insert(b.min..=b.max);
            }
            carried = allowance;
            prev = Some(o);
        }
    }
    for s in &model.stray {
        consumed_total += s.batch.count;
    }
    let unexplained = total - explained_total;
    metrics.records_consumed = consumed_total;
    metrics.duplicates = total;
    metrics.duplicates_explained = explained_total;
    metrics.duplicates_unexplained = unexplained;
    CheckResult::new(
        "duplicates_explained",
        violations,
        format!(
            "{total} duplicates, {explained_total} explained by abrupt handovers, 0 unexplained"
        ),
    )
}

/// What the next owner, which took the partition at `taken`, may re-process after `prev`
/// let go of it.
fn allowance(model: &Model, prev: &Ownership, taken: Ms) -> RangeInclusiveSet<i64> {
    let mut set = RangeInclusiveSet::new();
    let end = prev.end_or(model.horizon);
    let failed_commit = model.commits.iter().any(|c| {
        !c.success
            && c.member == prev.member
            && c.tp == prev.tp
            && c.ts >= prev.start
            && c.ts <= end
    });
    if !(prev.end_reason.is_abrupt() || failed_commit) {
        return set;
    }
    let Some(processed) = prev.batches.iter().map(|b| b.max).max() else {
        return set;
    };
    // The position the next owner started from: the last commit before `prev` let go and
    // before the next owner took over. A zombie's successor commits while the zombie still
    // holds the partition; those commits do not shrink what the successor re-processed.
    let end_at = prev.end_at.unwrap_or(usize::MAX);
    let committed = model
        .commits
        .iter()
        .filter(|c| c.success && c.tp == prev.tp && c.at < end_at && c.ts <= taken)
        .map(|c| c.offset)
        .max()
        .unwrap_or(0);
    if committed <= processed {
        set.insert(committed..=processed);
    }
    set
}
