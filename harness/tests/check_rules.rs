//! The oracle's rules on small hand-written histories: for each rule a history that
//! passes and histories that break it. Every test asserts the exact set of failing
//! checks, then snapshots a compact projection of the verdict (check lines and metrics).

mod common;

use std::io::Write;

use common::{failing, kinds, names, projection, range, CHECKS, H};
use harness::check::Verdict;
use harness::history::{read_history, Event, HistoryWriter, Record, Rule, ViolationKind};
use insta::assert_json_snapshot;

/// Checks `h` and asserts that exactly `expected` checks fail.
fn verdict(h: &H, expected: &[&str]) -> Verdict {
    let v = h.check();
    let reported: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(reported, CHECKS, "the oracle reports every check, in order");
    assert_eq!(
        failing(&v),
        names(expected),
        "unexpected failing checks: {:#}",
        projection(&v)
    );
    assert_eq!(v.passed, expected.is_empty());
    v
}

fn detail<'a>(v: &'a Verdict, check: &str) -> &'a str {
    &v.checks
        .iter()
        .find(|c| c.name.as_str() == check)
        .unwrap()
        .detail
}

// ---------------------------------------------------------------- clean histories

/// One member, then a second joins: eager revokes everything (committing first), the
/// group reassigns and both consume from the committed positions.
fn clean_eager_join() -> H {
    let mut h = H::new("eager-range", 2);
    h.balanced_over(&["C1", "C2"])
        .started(1000, "C1")
        .assign(1100, "C1", &[0, 1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume_many(1300, "C1", &[(0, 0, 4), (1, 0, 4)])
        .commit_many(1310, "C1", &[(0, 5), (1, 5)])
        .fault(2000, "f1", "join", "C2")
        .started(2000, "C2")
        // Revoke callback: commit, then report the revocation.
        .commit_many(2500, "C1", &[(0, 5), (1, 5)])
        .revoke(2510, "C1", &[0, 1])
        .assign(2600, "C1", &[0])
        .assign(2600, "C2", &[1])
        .consume(2700, "C1", 0, 5, 9)
        .commit(2710, "C1", 0, 10)
        .consume(2720, "C2", 1, 5, 9)
        .commit(2730, "C2", 1, 10)
        .stop(3000)
        .finish(3100);
    h
}

#[test]
fn clean_eager_rebalance_passes() {
    let v = verdict(&clean_eager_join(), &[]);
    let f = &v.metrics.faults[0];
    assert_eq!(f.detection_ms, Some(510));
    assert_eq!(f.recovery_ms, Some(720));
    assert_eq!(f.stop_the_world_members, vec!["C1".to_string()]);
    assert_eq!(v.metrics.duplicates, 0);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn records_are_checked_in_timestamp_order_whatever_their_order_in_the_file() {
    let records = clean_eager_join().build();
    let mut shuffled = records.clone();
    shuffled.reverse();
    shuffled.swap(3, 7);
    assert_eq!(
        harness::check::check(&shuffled),
        harness::check::check(&records)
    );
    assert!(harness::check::check(&shuffled).passed);
}

/// C1 crashes with 5..=9 processed but not committed; C2 takes the partition after the
/// session timeout and re-delivers from the last commit: 5 duplicates, all explained.
#[test]
fn crash_with_uncommitted_tail_redelivered_is_explained() {
    let mut h = H::new("cooperative-sticky", 2);
    h.balanced_over(&["C2"])
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .ack_many(1200, &[(0, 0, 19), (1, 0, 19)])
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1300, "C2", 1, 0, 9)
        .commit(1320, "C2", 1, 10)
        .consume(1400, "C1", 0, 5, 9)
        .fault(10000, "f1", "crash", "C1")
        .exited(10001, "C1", true)
        .assign(16000, "C2", &[0])
        .consume(16100, "C2", 0, 5, 19)
        .commit(16110, "C2", 0, 20)
        .consume(16120, "C2", 1, 10, 19)
        .commit(16130, "C2", 1, 20)
        .stop(17000)
        .finish(17100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates, 5);
    assert_eq!(v.metrics.duplicates_explained, 5);
    assert_eq!(v.metrics.faults[0].detection_ms, Some(6000));
    // events-1 kept its owner, but C2 consumed nothing of it between the crash and
    // 16120: a partition whose owner stopped consuming recovers when it consumes again.
    assert_eq!(v.metrics.faults[0].recovery_ms, Some(6120));
    assert_json_snapshot!(projection(&v));
}

/// The same re-delivery after a clean revocation: the old owner had its chance to
/// commit (and no commit failed), so nothing may be re-delivered.
#[test]
fn redelivery_after_clean_revoke_is_unexplained() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .fault(2000, "f1", "join", "C2")
        .started(2000, "C2")
        // The revoke callback did not commit 10.
        .revoke(2500, "C1", &[0])
        .assign(2600, "C1", &[])
        .assign(2600, "C2", &[0])
        .consume(2700, "C2", 0, 5, 9)
        .commit(2710, "C2", 0, 10)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["duplicates_explained"]);
    assert_eq!(v.metrics.duplicates_unexplained, 5);
    assert!(detail(&v, "duplicates_explained").contains("offsets 5..=9"));
    assert_json_snapshot!(projection(&v));
}

/// A failed commit in the revoke callback: the handover is not clean, so what the old
/// owner processed past its last successful commit may be re-delivered.
#[test]
fn failed_commit_before_revoke_explains_redelivery() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .fault(2000, "f1", "join", "C2")
        .started(2000, "C2")
        .commit_failed(2490, "C1", 0, 10)
        .revoke(2500, "C1", &[0])
        .assign(2600, "C1", &[])
        .assign(2600, "C2", &[0])
        .consume(2700, "C2", 0, 5, 9)
        .commit(2710, "C2", 0, 10)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates_explained, 5);
    assert_json_snapshot!(projection(&v));
}

/// `partitions_lost` (session expiry) is an abrupt handover too.
#[test]
fn lost_partition_handover_explains_redelivery() {
    let mut h = H::new("cooperative-sticky", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .lost(8000, "C1", &[0])
        .assign(8100, "C2", &[0])
        .consume(8200, "C2", 0, 5, 9)
        .commit(8210, "C2", 0, 10)
        .stop(9000)
        .finish(9100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates_explained, 5);
    assert_json_snapshot!(projection(&v));
}

/// C1 crashes with 5..=9 uncommitted; C2 re-delivers only 5..=6, commits 7 and hands
/// the partition over cleanly; C3 re-delivers 7..=9. Those were never committed: the
/// crash still explains them.
#[test]
fn crash_tail_redelivered_across_a_later_clean_handover_is_explained() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .started(1000, "C3")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .assign(1100, "C3", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .fault(10000, "f1", "crash", "C1")
        .exited(10001, "C1", true)
        .assign(16000, "C2", &[0])
        .assign(16000, "C3", &[])
        .consume(16100, "C2", 0, 5, 6)
        .commit(16110, "C2", 0, 7)
        .fault(17000, "f2", "join", "C4")
        .started(17000, "C4")
        .commit(17100, "C2", 0, 7)
        .revoke(17110, "C2", &[0])
        .assign(17200, "C2", &[])
        .assign(17200, "C3", &[0])
        .assign(17200, "C4", &[])
        .consume(17300, "C3", 0, 7, 19)
        .commit(17310, "C3", 0, 20)
        .stop(18000)
        .finish(18100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates, 5);
    assert_eq!(v.metrics.duplicates_explained, 5);
    assert_json_snapshot!(projection(&v));
}

/// After a crash the partition goes to C2, which is revoked (a late member joins)
/// before it consumed anything; C3 re-delivers the crashed member's tail.
#[test]
fn crash_tail_redelivered_after_an_owner_that_consumed_nothing_is_explained() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .fault(10000, "f1", "crash", "C1")
        .exited(10001, "C1", true)
        .assign(16000, "C2", &[0])
        .started(16050, "C3")
        .commit(16100, "C2", 0, 5)
        .revoke(16110, "C2", &[0])
        .assign(16200, "C2", &[])
        .assign(16200, "C3", &[0])
        .consume(16300, "C3", 0, 5, 19)
        .commit(16310, "C3", 0, 20)
        .stop(17000)
        .finish(17100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates_explained, 5);
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- no loss

#[test]
fn acked_offsets_never_consumed_are_lost() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 6)
        .commit(1310, "C1", 0, 7)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["no_loss"]);
    assert_eq!(v.metrics.lost, 3);
    assert!(detail(&v, "no_loss").contains("offsets 7..=9"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn records_on_a_partition_nobody_owns_are_lost_and_marked_stranded() {
    // C1 gives up events-1 and nobody takes it (a stalled group): its tail is lost and
    // marked stranded; the tail C1 skipped on events-0, which it still owns, is not.
    let mut h = H::new("eager-range", 2);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0, 1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume_many(1300, "C1", &[(0, 0, 6), (1, 0, 4)])
        .commit_many(1310, "C1", &[(0, 7), (1, 5)])
        .revoke(1400, "C1", &[1])
        .stop(2000)
        .finish(2100);
    let v = h.check();
    let no_loss = detail(&v, "no_loss");
    assert!(
        no_loss.contains("events-1: 5 acked records never consumed (offsets 5..=9); stranded"),
        "{no_loss}"
    );
    assert!(no_loss.contains("events-0: 3 acked records never consumed (offsets 7..=9)"));
    assert!(!no_loss.contains("(offsets 7..=9); stranded"), "{no_loss}");
    assert_eq!(v.metrics.lost, 8);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_run_that_never_stopped_production_fails_no_loss() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .finish(2100);
    let v = verdict(&h, &["no_loss"]);
    assert_eq!(v.metrics.lost, 0);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn holes_in_acked_offsets_fail_acks_contiguous() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 4)
        .ack(1201, 0, 10, 14)
        .consume(1300, "C1", 0, 0, 14)
        .commit(1310, "C1", 0, 15)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["acks_contiguous"]);
    assert!(detail(&v, "acks_contiguous").contains("holes at 5..=9"));
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- single ownership

#[test]
fn two_members_holding_a_partition_at_once_is_a_violation() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .assign(2000, "C2", &[0])
        .consume(2100, "C2", 0, 5, 9)
        .commit(2110, "C2", 0, 10)
        .revoke(3000, "C1", &[0])
        .stop(3500)
        .finish(3600);
    let v = verdict(&h, &["single_ownership"]);
    assert!(detail(&v, "single_ownership").contains("held by C1 and C2 at once for 1000 ms"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn consuming_a_partition_without_holding_it_is_a_violation() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .revoke(2000, "C1", &[0])
        .assign(2100, "C2", &[0])
        .consume(2200, "C2", 0, 5, 9)
        .commit(2210, "C2", 0, 10)
        .consume(2300, "C1", 0, 5, 9)
        .stop(3500)
        .finish(3600);
    // The stray records were delivered twice with no handover: duplicates too.
    let v = verdict(&h, &["single_ownership", "duplicates_explained"]);
    assert!(detail(&v, "single_ownership").contains("C1 consumed events-0 offsets 5..=9"));
    assert_json_snapshot!(projection(&v));
}

/// C1 is paused past the session timeout; C2 takes over and commits; C1 resumes,
/// processes one stale batch, its commit is fenced, and it learns it lost the
/// partition. The overlap is a zombie window, reported with its length.
#[test]
fn zombie_window_under_a_pause_long_fault_is_reported_not_failed() {
    let mut h = H::new("cooperative-sticky", 1);
    h.budget("pause-long", 3000, 12000, 20000)
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .fault(2000, "f1", "pause-long", "C1")
        .assign(8500, "C2", &[0])
        .consume(8600, "C2", 0, 5, 14)
        .commit(8610, "C2", 0, 15)
        .heal(12000, "f1")
        .consume(12001, "C1", 0, 10, 12)
        .commit_failed(12010, "C1", 0, 13)
        .lost(12020, "C1", &[0])
        .consume(12100, "C2", 0, 15, 19)
        .commit(12110, "C2", 0, 20)
        .stop(13000)
        .finish(13100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.max_zombie_ms, 3520);
    assert_eq!(v.metrics.duplicates, 8);
    assert_eq!(v.metrics.duplicates_explained, 8);
    assert_eq!(v.metrics.faults[0].detection_ms, Some(6500));
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- order

/// C1 commits 5 and processes up to 9, then is paused with its commit of 10 in flight:
/// the broker applies it, but C1 reports it only after it resumes. C2 rightly starts at
/// 10, past the last commit reported before it started.
fn zombie_with_a_commit_in_flight(next_start: i64) -> H {
    let mut h = H::new("eager-range", 1);
    h.budget("pause-long", 3000, 12000, 20000)
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .fault(1401, "f1", "pause-long", "C1")
        .assign(8500, "C2", &[0])
        .consume(8600, "C2", 0, next_start, 19)
        .commit(8610, "C2", 0, 20)
        .heal(12000, "f1")
        .commit(12001, "C1", 0, 10)
        .lost(12020, "C1", &[0])
        .stop(13000)
        .finish(13100);
    h
}

#[test]
fn a_zombies_commit_in_flight_lets_the_next_owner_start_past_the_reported_commit() {
    let v = verdict(&zombie_with_a_commit_in_flight(10), &[]);
    assert!(v.passed);
}

/// C2 is killed with its commit of 10 in flight (it lands, unreported). C1 takes over
/// from 10, but every commit of its fails (a rebalance is in progress) and it revokes;
/// when C1 gets the partition back it again starts from 10, the dead owner's commit.
#[test]
fn a_dead_owners_unreported_commit_holds_across_a_handover_that_committed_nothing() {
    let mut h = H::new("eager-range", 1);
    h.budget("crash", 0, 12000, 20000)
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C2", &[0])
        .assign(1100, "C1", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C2", 0, 0, 9)
        .fault(1301, "f1", "crash", "C2")
        .exited(1302, "C2", true)
        .assign(7000, "C1", &[0])
        .consume(7100, "C1", 0, 10, 12)
        .commit_failed(7110, "C1", 0, 13)
        .revoke(7200, "C1", &[0])
        .assign(9000, "C1", &[0])
        .consume(9100, "C1", 0, 10, 19)
        .commit(9110, "C1", 0, 20)
        .stop(10000)
        .finish(10100);
    let v = verdict(&h, &[]);
    assert!(v.passed);
}

#[test]
fn starting_past_what_the_zombie_processed_is_still_a_skip() {
    let v = verdict(&zombie_with_a_commit_in_flight(12), &["order", "no_loss"]);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn offsets_skipped_between_batches_break_order_and_are_lost() {
    // Skipping inside the only ownership necessarily leaves the skipped records
    // unconsumed, so no_loss fails with order.
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 7, 9)
        .commit(1410, "C1", 0, 10)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["no_loss", "order"]);
    assert!(detail(&v, "order").contains("expected offset 5 next, got 7 (skipped)"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_batch_holding_fewer_records_than_its_span_breaks_order() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume_ranges(1400, "C1", &[range(0, 5, 9, 3)])
        .commit(1410, "C1", 0, 10)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["order"]);
    assert!(detail(&v, "order").contains("batch 5..=9 holds 3 records"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_rewind_inside_one_ownership_breaks_order_and_duplicates() {
    // Re-reading 3..=4 inside one ownership is both a rewind and a duplicate no
    // handover explains.
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 3, 9)
        .commit(1410, "C1", 0, 10)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["order", "duplicates_explained"]);
    assert!(detail(&v, "order").contains("expected offset 5 next, got 3 (rewound)"));
    assert_eq!(v.metrics.duplicates_unexplained, 2);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_new_owner_starting_below_the_committed_position_rewinds() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 14)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .revoke(2000, "C1", &[0])
        .assign(2100, "C1", &[])
        .assign(2100, "C2", &[0])
        .consume(2200, "C2", 0, 8, 14)
        .commit(2210, "C2", 0, 15)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["order", "duplicates_explained"]);
    assert!(
        detail(&v, "order").contains("started at 8 but the committed position was 10 (rewound)")
    );
    assert_json_snapshot!(projection(&v));
}

/// The reference driver commits right after each batch, often within the same
/// millisecond; (ts, seq) orders them, so the commit is not taken as the position the
/// batch started from.
#[test]
fn a_commit_in_the_same_millisecond_as_the_first_batch_comes_after_it() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1300, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .commit(1400, "C1", 0, 10)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &[]);
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- commits

#[test]
fn a_commit_going_backwards_is_a_violation() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1400, "C1", 0, 5, 9)
        .commit(1410, "C1", 0, 10)
        .commit(1420, "C1", 0, 7)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["commits"]);
    assert!(detail(&v, "commits").contains("C1 committed events-0 at 7: backwards from 10"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_commit_beyond_the_processed_position_is_a_violation() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 8)
        .consume(1400, "C1", 0, 5, 9)
        .commit(1410, "C1", 0, 10)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["commits"]);
    assert!(detail(&v, "commits").contains("at 8: beyond its processed position 5"));
    assert_json_snapshot!(projection(&v));
}

/// A batch reported in the same millisecond but after the commit does not count as
/// processed when the commit was made.
#[test]
fn a_commit_ahead_of_a_batch_in_the_same_millisecond_is_beyond_processed() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .commit(1400, "C1", 0, 10)
        .consume(1400, "C1", 0, 5, 9)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["commits"]);
    assert!(detail(&v, "commits").contains("at 10: beyond its processed position 5"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_successful_commit_by_a_member_that_no_longer_holds_the_partition_is_a_violation() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .revoke(2000, "C1", &[0])
        .commit(2050, "C1", 0, 5)
        .assign(2100, "C1", &[])
        .assign(2100, "C2", &[0])
        .consume(2200, "C2", 0, 5, 9)
        .commit(2210, "C2", 0, 10)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["commits"]);
    assert!(detail(&v, "commits").contains("no longer held it"));
    assert_eq!(kinds(&v, Rule::Commits), [ViolationKind::NotOwner]);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_failed_commit_by_a_fenced_member_is_fine() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .revoke(2000, "C1", &[0])
        .commit_failed(2050, "C1", 0, 5)
        .assign(2100, "C1", &[])
        .assign(2100, "C2", &[0])
        .consume(2200, "C2", 0, 5, 9)
        .commit(2210, "C2", 0, 10)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &[]);
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- latency

/// Cooperative group C1 [0], C2 [1]; C1 crashes at 10000 and C2 is assigned its
/// partition at `reassigned`, consuming it first at `consumed`.
fn crash_handover(reassigned: u64, consumed: u64) -> H {
    let mut h = H::new("cooperative-sticky", 2);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1300, "C2", 1, 0, 4)
        .commit(1310, "C2", 1, 5)
        .fault(10000, "f1", "crash", "C1")
        .exited(10001, "C1", true)
        .assign(reassigned, "C2", &[0])
        .consume(reassigned + 50, "C2", 1, 5, 9)
        .commit(reassigned + 60, "C2", 1, 10)
        .consume(consumed, "C2", 0, 5, 9)
        .commit(consumed + 10, "C2", 0, 10)
        .stop(consumed + 1000)
        .finish(consumed + 1100);
    h
}

#[test]
fn a_crash_handled_within_budget_passes_latency() {
    let v = verdict(&crash_handover(16000, 16100), &[]);
    assert_eq!(v.metrics.detection_ms, Some(6000));
    assert_eq!(v.metrics.recovery_ms, Some(6100));
    assert_eq!(v.metrics.faults[0].partitions_moved, 1);
    assert_json_snapshot!(projection(&v));
}

/// The group reacted 1000 ms after the crash, before detection_min_ms (3000): with a
/// 6000 ms session timeout that is a premature rebalance.
#[test]
fn a_reaction_before_detection_min_is_premature() {
    let v = verdict(&crash_handover(11000, 11100), &["latency"]);
    assert!(detail(&v, "latency")
        .contains("group reacted after 1000 ms, before the earliest allowed 3000 ms"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_reaction_after_detection_max_is_late() {
    let v = verdict(&crash_handover(23000, 23100), &["latency"]);
    assert!(detail(&v, "latency").contains("detection took 13000 ms, budget 12000 ms"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn recovery_past_its_budget_is_late() {
    let v = verdict(&crash_handover(16000, 31000), &["latency"]);
    assert_eq!(v.metrics.detection_ms, Some(6000));
    assert!(detail(&v, "latency").contains("recovery took 21000 ms, budget 20000 ms"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_fault_kind_without_a_budget_fails_latency() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .fault(1250, "f1", "pause-short", "C1")
        .heal(1280, "f1")
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["latency"]);
    assert!(detail(&v, "latency").contains("no budget for fault kind 'pause-short'"));
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- protocol

/// Eager: C3 crashes; C1 revokes everything as it must, but C2 keeps its partitions
/// through the rebalance.
#[test]
fn an_eager_member_that_keeps_partitions_through_a_crash_breaks_the_protocol() {
    let mut h = H::new("eager-range", 6);
    h.started(1000, "C1")
        .started(1000, "C2")
        .started(1000, "C3")
        .assign(1100, "C1", &[0, 1])
        .assign(1100, "C2", &[2, 3])
        .assign(1100, "C3", &[4, 5])
        .ack_many(
            1200,
            &[
                (0, 0, 9),
                (1, 0, 9),
                (2, 0, 9),
                (3, 0, 9),
                (4, 0, 9),
                (5, 0, 9),
            ],
        )
        .consume_many(1300, "C1", &[(0, 0, 4), (1, 0, 4)])
        .commit_many(1310, "C1", &[(0, 5), (1, 5)])
        .consume_many(1300, "C2", &[(2, 0, 4), (3, 0, 4)])
        .commit_many(1310, "C2", &[(2, 5), (3, 5)])
        .consume_many(1300, "C3", &[(4, 0, 4), (5, 0, 4)])
        .commit_many(1310, "C3", &[(4, 5), (5, 5)])
        .fault(10000, "f1", "crash", "C3")
        .exited(10001, "C3", true)
        .commit_many(16000, "C1", &[(0, 5), (1, 5)])
        .revoke(16010, "C1", &[0, 1])
        .assign(16100, "C1", &[0, 1, 4])
        .assign(16100, "C2", &[2, 3, 5])
        .consume_many(16200, "C1", &[(0, 5, 9), (1, 5, 9), (4, 5, 9)])
        .commit_many(16210, "C1", &[(0, 10), (1, 10), (4, 10)])
        .consume_many(16200, "C2", &[(2, 5, 9), (3, 5, 9), (5, 5, 9)])
        .commit_many(16210, "C2", &[(2, 10), (3, 10), (5, 10)])
        .stop(17000)
        .finish(17100);
    let v = verdict(&h, &["protocol"]);
    assert!(detail(&v, "protocol").contains("every member revokes all, but C2 kept some"));
    assert_eq!(
        v.metrics.faults[0].stop_the_world_members,
        vec!["C1".to_string()]
    );
    assert_json_snapshot!(projection(&v));
}

/// Cooperative: C2 joins and C1 revokes both partitions, getting partition 0 straight
/// back. Only the partition that moves may be revoked.
#[test]
fn a_cooperative_member_that_revokes_a_partition_it_gets_back_breaks_the_protocol() {
    let mut h = H::new("cooperative-sticky", 2);
    h.balanced_over(&["C1", "C2"])
        .started(1000, "C1")
        .assign(1100, "C1", &[0, 1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume_many(1300, "C1", &[(0, 0, 4), (1, 0, 4)])
        .commit_many(1310, "C1", &[(0, 5), (1, 5)])
        .fault(2000, "f1", "join", "C2")
        .started(2000, "C2")
        .commit_many(2500, "C1", &[(0, 5), (1, 5)])
        .revoke(2510, "C1", &[0, 1])
        .assign(2600, "C1", &[0])
        .assign(2600, "C2", &[1])
        .consume(2700, "C1", 0, 5, 9)
        .commit(2710, "C1", 0, 10)
        .consume(2720, "C2", 1, 5, 9)
        .commit(2730, "C2", 1, 10)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["protocol"]);
    assert!(detail(&v, "protocol").contains("C1 revoked events-0 at 2510 and got it back at 2600"));
    assert_json_snapshot!(projection(&v));
}

/// The same join done right: only partition 1 is revoked and moves.
#[test]
fn a_cooperative_join_that_moves_only_what_it_must_passes() {
    let mut h = H::new("cooperative-sticky", 2);
    h.balanced_over(&["C1", "C2"])
        .started(1000, "C1")
        .assign(1100, "C1", &[0, 1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume_many(1300, "C1", &[(0, 0, 4), (1, 0, 4)])
        .commit_many(1310, "C1", &[(0, 5), (1, 5)])
        .fault(2000, "f1", "join", "C2")
        .started(2000, "C2")
        .commit_many(2500, "C1", &[(0, 5), (1, 5)])
        .revoke(2510, "C1", &[1])
        .assign(2600, "C1", &[])
        .assign(2600, "C2", &[1])
        .consume(2700, "C1", 0, 5, 9)
        .commit(2710, "C1", 0, 10)
        .consume(2720, "C2", 1, 5, 9)
        .commit(2730, "C2", 1, 10)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &[]);
    assert_eq!(
        v.metrics.faults[0].stop_the_world_members,
        Vec::<String>::new()
    );
    assert_eq!(v.metrics.faults[0].partitions_moved, 1);
    assert_json_snapshot!(projection(&v));
}

/// A survivor of a cooperative crash revokes a partition it held: only the crashed
/// member's partitions may move.
#[test]
fn a_cooperative_survivor_that_revokes_after_a_crash_breaks_the_protocol() {
    let h = survivor_revokes();
    let v = verdict(&h, &["protocol"]);
    assert!(detail(&v, "protocol").contains("survivor C2 revoked events-1"));
    assert_json_snapshot!(projection(&v));
}

/// The same history in a cell where the broker is known to move survivors' partitions:
/// reported as a known deviation, never as a pass.
#[test]
fn a_known_deviation_is_reported_as_such_and_not_as_a_pass() {
    let mut h = survivor_revokes();
    h.deviation("crash", ViolationKind::SurvivorRevoked);
    let v = h.check();
    assert_eq!(v.outcome, harness::check::Outcome::KnownDeviation);
    assert!(!v.passed);
    let c = v.check(Rule::Protocol).unwrap();
    assert!(
        !c.passed
            && c.known_deviation
                .as_deref()
                .unwrap()
                .contains("the broker differs")
    );
}

/// A deviation waives only the violations it names: anything else still fails.
#[test]
fn a_known_deviation_does_not_hide_other_violations() {
    let mut h = survivor_revokes();
    h.deviation("crash", ViolationKind::EagerKept);
    let v = h.check();
    assert_eq!(v.outcome, harness::check::Outcome::Fail);
    assert!(v.checks.iter().all(|c| c.known_deviation.is_none()));
    assert_eq!(v.stale_deviations, ["dev-1"], "it waived nothing: stale");
}

/// C3 crashes and survivor C2 gives up a partition it held: fails exactly `protocol`.
fn survivor_revokes() -> H {
    let mut h = H::new("cooperative-sticky", 3);
    h.started(1000, "C1")
        .started(1000, "C2")
        .started(1000, "C3")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .assign(1100, "C3", &[2])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9), (2, 0, 9)])
        .fault(10000, "f1", "crash", "C3")
        .exited(10001, "C3", true)
        .commit(16000, "C2", 1, 0)
        .revoke(16010, "C2", &[1])
        .assign(16100, "C1", &[1, 2])
        .assign(16100, "C2", &[])
        .consume_many(16200, "C1", &[(0, 0, 9), (1, 0, 9), (2, 0, 9)])
        .commit_many(16210, "C1", &[(0, 10), (1, 10), (2, 10)])
        .stop(17000)
        .finish(17100);
    h
}

#[test]
fn an_unbalanced_final_assignment_breaks_the_expectation() {
    let mut h = H::new("eager-range", 4);
    h.balanced_over(&["C1", "C2"])
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0, 1, 2])
        .assign(1100, "C2", &[3])
        .ack_many(1200, &[(0, 0, 4), (1, 0, 4), (2, 0, 4), (3, 0, 4)])
        .consume_many(1300, "C1", &[(0, 0, 4), (1, 0, 4), (2, 0, 4)])
        .commit_many(1310, "C1", &[(0, 5), (1, 5), (2, 5)])
        .consume(1300, "C2", 3, 0, 4)
        .commit(1310, "C2", 3, 5)
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["protocol"]);
    assert!(detail(&v, "protocol").contains("final assignment unbalanced: [3, 1]"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_final_assignment_missing_an_expected_member_breaks_the_expectation() {
    let mut h = H::new("eager-range", 2);
    h.balanced_over(&["C1", "C2"])
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0, 1])
        .assign(1100, "C2", &[])
        .ack_many(1200, &[(0, 0, 4), (1, 0, 4)])
        .consume_many(1300, "C1", &[(0, 0, 4), (1, 0, 4)])
        .commit_many(1310, "C1", &[(0, 5), (1, 5)])
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["protocol"]);
    assert!(detail(&v, "protocol").contains("final assignment held by {\"C1\"}"));
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- run completed

#[test]
fn a_history_without_run_finished_fails_run_completed() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .stop(2000);
    let v = verdict(&h, &["run_completed"]);
    assert!(detail(&v, "run_completed").contains("no run_finished record"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_run_that_ended_early_fails_run_completed() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .stop(2000)
        .event(
            2100,
            None,
            Event::RunFinished {
                outcome: "aborted".into(),
            },
        );
    let v = verdict(&h, &["run_completed"]);
    assert!(detail(&v, "run_completed").contains("the run ended early: aborted"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_run_whose_broker_could_not_start_is_skipped_with_no_rule_judged() {
    let mut h = H::new("eager-range", 1);
    h.event(
        100,
        None,
        Event::RunFinished {
            outcome: "skipped: image apache/kafka:4.1.1 is absent and cannot be pulled".into(),
        },
    );
    let v = h.check();
    assert_eq!(v.outcome, harness::check::Outcome::Skipped);
    assert!(!v.passed);
    let reported: Vec<&str> = v.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        reported,
        ["run_completed"],
        "no traffic, so no rule reports a pass"
    );
    assert!(detail(&v, "run_completed").contains("could not start here: image apache/kafka"));
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_skip_after_traffic_still_judges_every_rule() {
    // Same skip reason, but the group ran: loss in what it consumed must still fail.
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .stop(2000)
        .event(
            2100,
            None,
            Event::RunFinished {
                outcome: "skipped: broker mock cannot pause a broker".into(),
            },
        );
    let v = verdict(&h, &["no_loss"]);
    assert_eq!(v.outcome, harness::check::Outcome::Fail);
}

// ---------------------------------------------------------------- reading histories

fn jsonl(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

fn write_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
    f
}

#[test]
fn read_history_skips_a_torn_last_line() {
    let records = clean_eager_join().build();
    let (kept, torn) = records.split_at(records.len() - 1);
    let whole = serde_json::to_string(&torn[0]).unwrap();
    let text = jsonl(kept) + &whole[..whole.len() / 2];
    let f = write_file(&text);
    let read = read_history(f.path()).unwrap();
    assert_eq!(read, kept);
    // The history without its run_finished is checkable, and says the run died.
    let v = harness::check::check(&read);
    assert_eq!(failing(&v), names(&["run_completed"]));
}

#[test]
fn read_history_rejects_a_garbage_middle_line_naming_it() {
    let records = clean_eager_join().build();
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let text = format!(
        "{}\n{}\n{{\"seq\": 2, \"garbage\n{}\n",
        lines[0],
        lines[1],
        lines[2..].join("\n")
    );
    let f = write_file(&text);
    let err = read_history(f.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{}:3: not a history record", f.path().display())),
        "{err}"
    );
}

#[test]
fn read_history_rejects_a_bad_last_line_that_was_fully_written() {
    let records = clean_eager_join().build();
    let text = jsonl(&records) + "{\"seq\": 99, \"ts\": 5000, \"name\": \"no_such_event\"}\n";
    let f = write_file(&text);
    let err = read_history(f.path()).unwrap_err().to_string();
    let line = records.len() + 1;
    assert!(
        err.contains(&format!(
            "{}:{line}: not a history record",
            f.path().display()
        )),
        "{err}"
    );
}

#[test]
fn read_history_rejects_an_empty_history() {
    let f = write_file("\n");
    let err = read_history(f.path()).unwrap_err().to_string();
    assert!(err.contains("the history is empty"), "{err}");
}

#[test]
fn read_history_reads_back_what_the_writer_wrote() {
    let records = clean_eager_join().build();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut w = HistoryWriter::create(&path).unwrap();
    for r in &records {
        let written = w
            .append(r.ts, r.member.as_deref(), r.event.clone())
            .unwrap();
        assert_eq!(&written, r);
    }
    drop(w);
    assert_eq!(read_history(&path).unwrap(), records);
}
