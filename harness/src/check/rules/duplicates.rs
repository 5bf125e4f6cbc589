//! Rule 2, duplicates explained. Every re-delivered offset must be explained by the
//! handover it followed:
//! - a clean handover (a revocation or a clean close whose last commit attempt covered
//!   what the owner processed, and succeeded) allows none;
//! - an abrupt one (a crash, a loss, an expiry, the old owner still processing as a
//!   zombie) allows exactly what the old owner processed past the committed position:
//!   the next owner re-reads it;
//! - a clean one whose last commit attempt failed allows what that attempt tried to
//!   commit, not more: what the owner processed after it and never tried to commit is
//!   the client's doing (a client that skips its commit on revocation).
//!
//! Re-deliveries inside one ownership (a rewind, an offset delivered twice in one
//! batch) and records of a partition the member did not hold are never explained.

use rangemap::{RangeInclusiveMap, RangeInclusiveSet};

use super::{intersect, show, size};
use crate::check::model::{Model, Ownership, ZombieWindow};
use crate::check::verdict::{CheckResult, Metrics, Violation};
use crate::history::{Ms, Rule, TopicPartition, ViolationKind};

pub fn check(model: &Model, metrics: &mut Metrics) -> CheckResult {
    let mut violations = Vec::new();
    let mut tally = Tally::default();
    for (tp, log) in &model.partitions {
        // Who first delivered each offset, and when: a re-delivery is blamed on whichever
        // of the two deliveries came second in time.
        let mut seen: RangeInclusiveMap<i64, Delivery> = RangeInclusiveMap::new();
        // What an abrupt handover allowed and no owner has re-processed yet stays allowed
        // across later handovers: an owner that took over and handed on cleanly before
        // reaching it left it uncommitted.
        let mut carried: RangeInclusiveSet<i64> = RangeInclusiveSet::new();
        let mut prev: Option<&Ownership> = None;
        for &i in &log.owners {
            let o = &model.ownerships[i];
            // A zombie's deliveries after its excused window are its own fault.
            let overstayed_after = model
                .zombies
                .iter()
                .filter(|z| z.old == i)
                .map(legit_until)
                .min();
            let mut allowance = carried.clone();
            if let Some(p) = prev {
                for r in handover_allowance(model, p, o).iter() {
                    allowance.insert(r.clone());
                }
            }
            for b in &o.batches {
                tally.consumed += b.count;
                let this = Delivery {
                    member: o.member.clone(),
                    ts: b.ts,
                    illegitimate: overstayed_after.is_some_and(|t| b.ts > t),
                };
                for &(a, z) in &b.ranges {
                    let dup = overlap(&seen, a, z);
                    let explained = intersect(&dup, &allowance);
                    let mut unexplained = dup.clone();
                    for r in explained.iter() {
                        unexplained.remove(r.clone());
                        // An allowance is spent once: a second re-delivery is a rewind.
                        allowance.remove(r.clone());
                    }
                    tally.total += size(&dup);
                    tally.explained += size(&explained);
                    violations.extend(blame(model, tp, &seen, &unexplained, &this, ""));
                    insert_new(&mut seen, a, z, &this);
                }
            }
            carried = allowance;
            prev = Some(o);
        }
        // Records of a partition the member did not hold: never explained.
        for s in &log.stray {
            tally.consumed += s.batch.count;
            let this = Delivery {
                member: s.member.clone(),
                ts: s.batch.ts,
                illegitimate: true,
            };
            for &(a, z) in &s.batch.ranges {
                let dup = overlap(&seen, a, z);
                tally.total += size(&dup);
                violations.extend(blame(
                    model,
                    tp,
                    &seen,
                    &dup,
                    &this,
                    " (a member that did not hold the partition)",
                ));
                insert_new(&mut seen, a, z, &this);
            }
        }
    }
    let unexplained = tally.total - tally.explained;
    metrics.records_consumed = tally.consumed;
    metrics.duplicates = tally.total;
    metrics.duplicates_explained = tally.explained;
    metrics.duplicates_unexplained = unexplained;
    CheckResult::new(
        Rule::DuplicatesExplained,
        violations,
        format!(
            "{} duplicates, {} explained by abrupt handovers, 0 unexplained",
            tally.total, tally.explained
        ),
    )
}

#[derive(Default)]
struct Tally {
    consumed: u64,
    total: u64,
    explained: u64,
}

/// One delivery of some offsets: to whom, when, and whether the member had any right
/// to it (not a zombie past its window, not a partition it did not hold).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delivery {
    member: String,
    ts: Ms,
    illegitimate: bool,
}

/// The offsets of `a..=z` delivered before.
fn overlap(seen: &RangeInclusiveMap<i64, Delivery>, a: i64, z: i64) -> RangeInclusiveSet<i64> {
    let mut out = RangeInclusiveSet::new();
    for (r, _) in seen.overlapping(&(a..=z)) {
        out.insert(*r.start().max(&a)..=*r.end().min(&z));
    }
    out
}

/// Records `a..=z` as delivered by `d`, keeping earlier first deliveries.
fn insert_new(seen: &mut RangeInclusiveMap<i64, Delivery>, a: i64, z: i64, d: &Delivery) {
    let mut fresh = RangeInclusiveSet::new();
    fresh.insert(a..=z);
    for (r, _) in seen.overlapping(&(a..=z)) {
        fresh.remove(r.clone());
    }
    for r in fresh.iter() {
        seen.insert(r.clone(), d.clone());
    }
}

/// Violations for `offsets`, delivered by `this` after earlier deliveries in `seen`:
/// each blamed on whichever delivery came second in time.
fn blame(
    model: &Model,
    tp: &TopicPartition,
    seen: &RangeInclusiveMap<i64, Delivery>,
    offsets: &RangeInclusiveSet<i64>,
    this: &Delivery,
    why: &str,
) -> Vec<Violation> {
    let mut by_pair: Vec<(Delivery, Delivery, RangeInclusiveSet<i64>)> = Vec::new();
    for r in offsets.iter() {
        for (s, first) in seen.overlapping(r) {
            let part = *s.start().max(r.start())..=*s.end().min(r.end());
            // Blame the delivery the member had no right to; else the later one (the
            // ownership order puts a zombie's later batches first).
            let this_second = match (first.illegitimate, this.illegitimate) {
                (true, false) => false,
                (false, true) => true,
                _ => first.ts <= this.ts,
            };
            let (earlier, later) = if this_second {
                (first.clone(), this.clone())
            } else {
                (this.clone(), first.clone())
            };
            match by_pair
                .iter_mut()
                .find(|(e, l, _)| *e == earlier && *l == later)
            {
                Some((_, _, set)) => set.insert(part),
                None => {
                    let mut set = RangeInclusiveSet::new();
                    set.insert(part);
                    by_pair.push((earlier, later, set));
                }
            }
        }
    }
    by_pair
        .into_iter()
        .map(|(earlier, later, set)| {
            let n = size(&set);
            Violation::new(
                ViolationKind::Unexplained,
                format!(
                    "{tp}: {n} re-delivered to {} at {} with no handover to explain it (offsets {}, also delivered to {} at {}){why}",
                    later.member,
                    later.ts,
                    show(&set),
                    earlier.member,
                    earlier.ts
                ),
            )
            .tp(tp)
            .member(&later.member)
            .size(n)
            .at(later.ts)
            .fault(model.fault_at(later.ts))
        })
        .collect()
}

/// What `next` may re-process after `prev` let go of the partition: nothing after a
/// clean handover; after an abrupt one, what `prev` processed (within its zombie
/// window, if it was one) past the committed position `next` could start from.
fn handover_allowance(model: &Model, prev: &Ownership, next: &Ownership) -> RangeInclusiveSet<i64> {
    let mut set = RangeInclusiveSet::new();
    let zombie = model.zombies.iter().find(|z| {
        std::ptr::eq(&model.ownerships[z.old], prev) && std::ptr::eq(&model.ownerships[z.new], next)
    });
    let abrupt = prev.end_reason.is_abrupt() || zombie.is_some();
    // After a clean end, only what the failed attempt covered (its offset is the next
    // position to read) is excused.
    let attempted = if abrupt {
        i64::MAX
    } else {
        match last_failed_attempt(model, prev) {
            Some(offset) => offset - 1,
            None => return set,
        }
    };
    // A zombie's processing counts up to the end of its excused window only.
    let cutoff = zombie.map_or(Ms::MAX, legit_until);
    let Some(processed) = prev
        .batches
        .iter()
        .filter(|b| b.ts <= cutoff)
        .map(|b| b.max)
        .max()
        .map(|p| p.min(attempted))
    else {
        return set;
    };
    // The committed position when `next` took over: the last commit reported before
    // `prev` let go and before `next` started. A zombie's successor commits while the
    // zombie still holds the partition; those do not shrink what the successor re-read.
    let end_at = prev.end_at.unwrap_or(usize::MAX);
    let committed = model
        .commits_of(&prev.tp)
        .filter(|c| c.success && c.at < end_at && c.at < next.start_at)
        .last()
        .map_or_else(|| model.log_start(&prev.tp), |c| c.offset);
    if committed <= processed {
        set.insert(committed..=processed);
    }
    set
}

/// The end of the part of a zombie window that a fault explains.
fn legit_until(z: &ZombieWindow) -> Ms {
    z.deadline.map_or(z.start, |d| d.min(z.end))
}

/// The offset of the last commit attempt of `o`'s partition by `o`'s process, before
/// `o` ended, if that attempt failed.
fn last_failed_attempt(model: &Model, o: &Ownership) -> Option<i64> {
    let end_at = o.end_at.unwrap_or(usize::MAX);
    model
        .commits_of(&o.tp)
        .filter(|c| {
            c.member == o.member && c.process == o.process && c.at > o.start_at && c.at < end_at
        })
        .last()
        .filter(|c| !c.success)
        .map(|c| c.offset)
}
