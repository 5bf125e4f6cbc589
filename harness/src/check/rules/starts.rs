//! Where a new ownership may start consuming, shared by the order and commits rules.
//!
//! Kafka promises that a member assigned a partition starts at the group's committed
//! position. What that position was is not always in the history:
//! - a commit reported before the assignment is the position unless a later one
//!   landed; one reported after the assignment but before the first batch may have
//!   landed before the new owner read it;
//! - with no commit at all, the log's start (reset policy `earliest`);
//! - a previous owner that died, lost the partition or was cut off (a zombie) may have
//!   had a commit in flight that landed unreported: it can only have committed a
//!   position it reached, i.e. the end of one of its batches (a batch boundary), not
//!   any offset in between;
//! - a failed commit that was not a definite rejection (a timeout, a lost connection)
//!   may have landed too;
//! - a member assigned a partition again, with no other member owning it in between,
//!   may go on from its own position (the Java client keeps the fetch position of a
//!   partition across rebalances), provided it processed everything below it.

use std::collections::BTreeSet;

use rangemap::RangeInclusiveSet;

use crate::check::model::{Model, Ownership};

/// The start positions allowed for ownership `o`, whose first batch is at `first_at`,
/// and the committed position a careful reader would name (for messages).
pub struct Starts {
    pub allowed: BTreeSet<i64>,
    pub committed: i64,
}

pub fn allowed(model: &Model, o: &Ownership, first_at: usize) -> Starts {
    let tp = &o.tp;
    let mut allowed = BTreeSet::new();
    let successes: Vec<_> = model
        .commits_of(tp)
        .filter(|c| c.success && c.at < first_at)
        .collect();
    let before: Vec<_> = successes.iter().filter(|c| c.at < o.start_at).collect();
    let latest = before.last().map(|c| (c.offset, c.at));
    let committed = latest.map_or_else(|| model.log_start(tp), |(offset, _)| offset);
    allowed.insert(committed);
    // A late-reported commit may still be the newest that landed.
    if let Some(max) = before.iter().map(|c| c.offset).max() {
        allowed.insert(max);
    }
    // Reported between the assignment and the first batch: it may have landed first.
    allowed.extend(
        successes
            .iter()
            .filter(|c| c.at >= o.start_at)
            .map(|c| c.offset),
    );
    let since = latest.map_or(0, |(_, at)| at);
    // Failed commits that may have landed all the same.
    allowed.extend(
        model
            .commits_of(tp)
            .filter(|c| c.indeterminate() && c.at > since && c.at < first_at)
            .map(|c| c.offset),
    );
    // Unobserved commits of owners that died, lost the partition or were cut off: the
    // end of any batch they processed after the last reported commit.
    for q in model.ownerships_of(tp) {
        if std::ptr::eq(q, o) || q.start_at >= o.start_at {
            continue;
        }
        let overlapped = q.end_at.is_none_or(|e| e > o.start_at);
        let abrupt = q.end_reason.is_abrupt() || overlapped;
        if !abrupt || q.end_at.is_some_and(|e| e < since) {
            continue;
        }
        allowed.extend(
            q.batches
                .iter()
                .filter(|b| b.at > since && b.at < first_at)
                .map(|b| b.end()),
        );
    }
    if let Some(pos) = own_position(model, o, committed, first_at) {
        allowed.insert(pos);
    }
    Starts { allowed, committed }
}

/// The member's own position from its previous ownership of the partition (same
/// process), when nobody else owned it in between and everything from the committed
/// position up to it was delivered.
fn own_position(model: &Model, o: &Ownership, committed: i64, first_at: usize) -> Option<i64> {
    let owners: Vec<&Ownership> = model
        .ownerships_of(&o.tp)
        .filter(|q| q.start_at < o.start_at)
        .collect();
    // Its own ownerships right before this one (a partition revoked and given back
    // several times in a row), most recent first: the last batch among them is where
    // its position stands.
    let pos = owners
        .iter()
        .rev()
        .take_while(|q| q.member == o.member && q.process == o.process && q.end_at.is_some())
        .find_map(|q| q.batches.last())?
        .end();
    let mut delivered = RangeInclusiveSet::new();
    for q in &owners {
        for b in q.batches.iter().filter(|b| b.at < first_at) {
            for &(a, z) in &b.ranges {
                delivered.insert(a..=z);
            }
        }
    }
    let complete = pos <= committed || delivered.gaps(&(committed..=pos - 1)).next().is_none();
    complete.then_some(pos)
}
