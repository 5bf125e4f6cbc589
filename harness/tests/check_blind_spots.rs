//! The oracle's former blind spots: each history below is a client bug or a broken
//! promise that an earlier checker let pass (the issue "An oracle with no blind spots"
//! lists them). Every test asserts the exact failing checks and the violation kinds,
//! then snapshots the verdict.

mod common;

use common::{failing, kinds, names, projection, H};
use harness::check::{Outcome, Verdict};
use harness::history::{Rule, ViolationKind};
use insta::assert_json_snapshot;

fn verdict(h: &H, expected: &[&str]) -> Verdict {
    let v = h.check();
    assert_eq!(
        failing(&v),
        names(expected),
        "unexpected failing checks: {:#}",
        projection(&v)
    );
    v
}

// ---------------------------------------------------------------- zombie windows end

/// C1's heartbeats are dropped; the group hands events-0 to C2 at 7500. The fault heals
/// at 10000, so C1 must find out by 16000 (heal + session timeout). A driver that keeps
/// reporting records of the partition for 20 s after the heal, while C2 owns it, was a
/// pass with `max_zombie_ms` 0: the zombie excuse began at the fault and never ended.
fn heartbeat_drop(lost_at: u64, keeps_going_until: u64) -> H {
    let mut h = H::new("eager-range", 1);
    h.budget("heartbeat-drop", 0, 20000, 30000)
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 999)
        .consume(1300, "C1", 0, 0, 99)
        .commit(1310, "C1", 0, 100)
        .fault(1500, "f1", "heartbeat-drop", "C1")
        .consume(2000, "C1", 0, 100, 149)
        .commit(2010, "C1", 0, 150)
        .assign(7500, "C2", &[0])
        .consume(7600, "C2", 0, 150, 300)
        .commit(7610, "C2", 0, 301)
        .heal(10000, "f1");
    // C1, cut off from the group but not from fetches, goes on in 1-second steps.
    let mut next = 150;
    let mut t = 8000;
    while t < keeps_going_until {
        h.consume(t, "C1", 0, next, next + 9);
        next += 10;
        t += 1000;
    }
    h.lost(lost_at, "C1", &[0])
        .consume(lost_at + 100, "C2", 0, 301, 999)
        .commit(lost_at + 110, "C2", 0, 1000)
        .stop(lost_at + 1000)
        .finish(lost_at + 1100);
    h
}

#[test]
fn a_zombie_that_finds_out_within_heal_plus_session_is_a_reported_window() {
    let v = verdict(&heartbeat_drop(11000, 11000), &[]);
    assert_eq!(v.metrics.max_zombie_ms, 3500);
    assert_eq!(v.metrics.faults[0].zombie_ms, 3500);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_zombie_that_goes_on_for_20_s_after_the_heal_is_caught() {
    let v = verdict(
        &heartbeat_drop(30000, 30000),
        &["single_ownership", "duplicates_explained"],
    );
    assert_eq!(
        kinds(&v, Rule::SingleOwnership),
        [ViolationKind::ZombieOverstay]
    );
    let overstay = &v.check(Rule::SingleOwnership).unwrap().violations[0];
    assert_eq!(overstay.size, 14000, "30000 - (10000 + 6000)");
    assert_eq!(overstay.member.as_deref(), Some("C1"));
    // What it processed after its window is not explained by the handover.
    assert!(v.metrics.duplicates_unexplained > 0);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn a_zombie_window_beyond_its_budget_fails_latency() {
    let mut h = heartbeat_drop(11000, 11000);
    h.zombie_budget("heartbeat-drop", 2000);
    let v = verdict(&h, &["latency"]);
    assert_eq!(kinds(&v, Rule::Latency), [ViolationKind::ZombieTooLong]);
}

/// zombie-after-lost: records of a partition the member already reported lost.
#[test]
fn records_reported_after_the_partition_was_lost_are_stray() {
    let mut h = heartbeat_drop(11000, 11000);
    h.consume(11050, "C1", 0, 250, 259);
    let v = verdict(&h, &["single_ownership", "duplicates_explained"]);
    assert_eq!(kinds(&v, Rule::SingleOwnership), [ViolationKind::Stray]);
    assert_json_snapshot!(projection(&v));
}

/// A successful commit from the zombie after C2 took over, of a position it only reached
/// after that: the broker should have fenced it.
#[test]
fn a_zombies_successful_commit_after_the_handover_was_not_fenced() {
    let mut h = heartbeat_drop(11000, 11000);
    h.commit(9500, "C1", 0, 170);
    let v = verdict(&h, &["commits"]);
    assert!(kinds(&v, Rule::Commits).contains(&ViolationKind::Fenced));
}

// ---------------------------------------------------------------- honest handovers

/// C1 processes 0..=9, commits 10 (fails, early), processes 10..=19 and commits 20 (ok),
/// then 20..=29 and is revoked without committing: the early failure does not excuse the
/// skipped commit at revocation.
#[test]
fn an_early_failed_commit_does_not_excuse_a_skipped_commit_at_revocation() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 39)
        .consume(1300, "C1", 0, 0, 9)
        .commit_failed(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 19)
        .commit(1410, "C1", 0, 20)
        .consume(1500, "C1", 0, 20, 29)
        .fault(2000, "f1", "join", "C3")
        .revoke(2100, "C1", &[0])
        .assign(2200, "C2", &[0])
        .assign(2200, "C1", &[])
        .consume(2300, "C2", 0, 20, 39)
        .commit(2310, "C2", 0, 40)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["duplicates_explained"]);
    assert_eq!(v.metrics.duplicates_unexplained, 10);
    assert_json_snapshot!(projection(&v));
}

/// The last attempt before revocation failed (commit 20, rejected in the rebalance),
/// but C1 went on to process 20..=29 and never tried to commit them: the failure
/// excuses 10..=19, what it covered; 20..=29 are the skipped revocation commit's doing
/// (`--bug no-revoke-commit` on a broker that rejects commits in a rebalance).
#[test]
fn a_failed_commit_excuses_what_it_covered_not_what_came_after() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 39)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 19)
        .commit_failed(1410, "C1", 0, 20)
        .consume(1500, "C1", 0, 20, 29)
        .fault(2000, "f1", "join", "C3")
        .revoke(2100, "C1", &[0])
        .assign(2200, "C2", &[0])
        .assign(2200, "C1", &[])
        .consume(2300, "C2", 0, 10, 39)
        .commit(2310, "C2", 0, 40)
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["duplicates_explained"]);
    assert_eq!(v.metrics.duplicates_explained, 10);
    assert_eq!(v.metrics.duplicates_unexplained, 10);
    assert_json_snapshot!(projection(&v));
}

/// A driver that shuts down cleanly (SIGTERM: shutdown_complete) without committing
/// what it processed: the next owner's re-delivery is unexplained.
#[test]
fn a_clean_close_that_did_not_commit_what_it_processed_is_not_excused() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 14)
        .fault(2000, "f1", "leave", "C1")
        .shutdown(2010, "C1")
        .exited(2020, "C1", false)
        .assign(2200, "C2", &[0])
        .consume(2300, "C2", 0, 10, 19)
        .commit(2310, "C2", 0, 20)
        .stop(3000)
        .finish(3100);
    h.budget("leave", 0, 5000, 5000);
    let v = verdict(&h, &["duplicates_explained"]);
    assert_eq!(v.metrics.duplicates_unexplained, 5);
    assert_json_snapshot!(projection(&v));
}

/// The same close after a crash-like end is excused: a process that ended without
/// `shutdown_complete` may not have committed.
#[test]
fn a_death_without_a_clean_close_explains_the_redelivery() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 19)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 14)
        .fault(2000, "f1", "crash", "C1")
        .exited(2010, "C1", true)
        .assign(8200, "C2", &[0])
        .consume(8300, "C2", 0, 10, 19)
        .commit(8310, "C2", 0, 20)
        .stop(9000)
        .finish(9100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates_explained, 5);
}

// ---------------------------------------------------------------- start windows

/// C1 processes 0..=9 and 10..=19 in two batches, commits only 10 (reported), and is
/// killed. A commit of 20 may have landed unreported, so C2 may start at 10 or 20, the
/// batch boundaries, but not at 15: no commit can have set that position.
fn dead_owner_then(next_start: i64) -> H {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 29)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 19)
        .fault(2000, "f1", "crash", "C1")
        .exited(2010, "C1", true)
        .assign(8200, "C2", &[0])
        .consume(8300, "C2", 0, next_start, 29)
        .commit(8310, "C2", 0, 30)
        .stop(9000)
        .finish(9100);
    h
}

#[test]
fn after_a_crash_the_next_owner_may_start_at_a_batch_boundary_only() {
    verdict(&dead_owner_then(10), &[]);
    verdict(&dead_owner_then(20), &[]);
    // C1 consumed 10..=19 itself, so nothing is lost: only the start is wrong.
    let v = verdict(&dead_owner_then(15), &["order"]);
    assert_eq!(kinds(&v, Rule::Order), [ViolationKind::Skip]);
    assert!(v
        .check(Rule::Order)
        .unwrap()
        .detail
        .contains("allowed starts 10, 20"));
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- per-record evidence

/// Offsets 10, 12, 12, 13: one lost, one delivered twice. By span and count (10..=13,
/// 4 records) it looks whole; with `offsets` the rules see both.
fn gap_in_batch(evidence: bool) -> H {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 13)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10);
    if evidence {
        h.deliver(1400, "C1", 0, &[(10, 10), (12, 13), (12, 12)]);
    } else {
        h.consume(1400, "C1", 0, 10, 13);
    }
    h.commit(1410, "C1", 0, 14).stop(2000).finish(2100);
    h
}

#[test]
fn a_gap_and_a_repeat_inside_one_batch_are_caught_with_offsets() {
    let v = verdict(
        &gap_in_batch(true),
        &["order", "no_loss", "duplicates_explained"],
    );
    assert_eq!(
        kinds(&v, Rule::Order),
        [ViolationKind::GapInBatch, ViolationKind::GapInBatch]
    );
    assert_eq!(v.metrics.lost, 1);
    assert_eq!(v.metrics.duplicates_unexplained, 1);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn without_offsets_the_verdict_says_gaps_inside_a_batch_are_not_checked() {
    let v = verdict(&gap_in_batch(false), &[]);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("C1 reported batches without per-record `offsets`")),
        "{:?}",
        v.notes
    );
}

// ---------------------------------------------------------------- protocol promises

/// Three eager members; `fault` hits C3 and C2 keeps its partition through the change.
fn eager_change_where_c2_keeps(fault: &str) -> H {
    let mut h = H::new("eager-range", 3);
    h.budget(fault, 0, 20000, 20000)
        .started(1000, "C1")
        .started(1000, "C2")
        .started(1000, "C3")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .assign(1100, "C3", &[2])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9), (2, 0, 9)])
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1300, "C2", 1, 0, 4)
        .commit(1310, "C2", 1, 5)
        .consume(1300, "C3", 2, 0, 4)
        .commit(1310, "C3", 2, 5)
        .fault(2000, "f1", fault, "C3")
        .commit(2050, "C3", 2, 5)
        .revoke(2060, "C3", &[2])
        .shutdown(2070, "C3")
        .exited(2080, "C3", false)
        .commit(2100, "C1", 0, 5)
        .revoke(2110, "C1", &[0])
        .assign(2200, "C1", &[0, 2])
        .consume_many(2300, "C1", &[(0, 5, 9), (2, 5, 9)])
        .commit_many(2310, "C1", &[(0, 10), (2, 10)])
        .consume(2300, "C2", 1, 5, 9)
        .commit(2310, "C2", 1, 10)
        .stop(3000)
        .finish(3100);
    h
}

#[test]
fn eager_members_revoke_everything_on_every_membership_change() {
    for fault in ["leave", "scale-down", "restart", "rolling-bounce"] {
        let mut h = eager_change_where_c2_keeps(fault);
        if fault == "rolling-bounce" {
            // A rolling bounce hits everyone; C2 is not restarted in this history.
            h = eager_change_where_c2_keeps("restart");
        }
        let v = verdict(&h, &["protocol"]);
        assert_eq!(
            kinds(&v, Rule::Protocol),
            [ViolationKind::EagerKept],
            "{fault}"
        );
    }
}

/// Cooperative: a leave must not take partitions from survivors.
#[test]
fn cooperative_survivors_keep_their_partitions_when_a_member_leaves() {
    let mut h = H::new("cooperative-sticky", 3);
    h.budget("leave", 0, 20000, 20000)
        .started(1000, "C1")
        .started(1000, "C2")
        .started(1000, "C3")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .assign(1100, "C3", &[2])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9), (2, 0, 9)])
        .fault(2000, "f1", "leave", "C3")
        .commit(2050, "C3", 2, 0)
        .revoke(2060, "C3", &[2])
        .shutdown(2070, "C3")
        .exited(2080, "C3", false)
        .commit(2100, "C2", 1, 0)
        .revoke(2110, "C2", &[1])
        .assign(2200, "C1", &[1, 2])
        .consume_many(2300, "C1", &[(0, 0, 9), (1, 0, 9), (2, 0, 9)])
        .commit_many(2310, "C1", &[(0, 10), (1, 10), (2, 10)])
        .stop(3000)
        .finish(3100);
    let v = verdict(&h, &["protocol"]);
    assert_eq!(kinds(&v, Rule::Protocol), [ViolationKind::SurvivorRevoked]);
    assert_json_snapshot!(projection(&v));
}

/// A full rebalance during a broker pause, with every member alive and none lost.
#[test]
fn a_rebalance_during_a_broker_pause_breaks_the_cell() {
    let mut h = H::new("eager-range", 2);
    h.budget("broker-pause", 0, 20000, 20000)
        .expect(
            "broker-pause",
            harness::history::CellExpectation {
                rebalances_max: Some(0),
                duplicates_max: None,
                same_assignment: true,
            },
        )
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1300, "C2", 1, 0, 4)
        .commit(1310, "C2", 1, 5)
        .fault(2000, "f1", "broker-pause", "broker-1")
        .commit(4000, "C1", 0, 5)
        .revoke(4010, "C1", &[0])
        .commit(4000, "C2", 1, 5)
        .revoke(4010, "C2", &[1])
        .assign(4100, "C1", &[1])
        .assign(4100, "C2", &[0])
        .heal(6000, "f1")
        .consume(6100, "C1", 1, 5, 9)
        .commit(6110, "C1", 1, 10)
        .consume(6100, "C2", 0, 5, 9)
        .commit(6110, "C2", 0, 10)
        .stop(7000)
        .finish(7100);
    let v = verdict(&h, &["protocol"]);
    let k = kinds(&v, Rule::Protocol);
    assert!(k.contains(&ViolationKind::Rebalances), "{k:?}");
    assert!(k.contains(&ViolationKind::AssignmentChanged), "{k:?}");
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- recovery

/// C2's partition never moves, but C2 is paused 9 s by the fault: its partition
/// recovers when C2 consumes again, not "at 0 ms".
#[test]
fn an_owner_that_stopped_consuming_recovers_when_it_consumes_again() {
    let mut h = H::new("eager-range", 2);
    h.budget("pause-short", 0, 20000, 5000)
        .ride_out("pause-short")
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .ack_many(1200, &[(0, 0, 19), (1, 0, 19)])
        .consume(1300, "C1", 0, 0, 4)
        .commit(1310, "C1", 0, 5)
        .consume(1300, "C2", 1, 0, 4)
        .commit(1310, "C2", 1, 5)
        .fault(2000, "f1", "pause-short", "C2")
        .consume(2100, "C1", 0, 5, 19)
        .commit(2110, "C1", 0, 20)
        .heal(11000, "f1")
        .consume(11100, "C2", 1, 5, 19)
        .commit(11110, "C2", 1, 20)
        .stop(12000)
        .finish(12100);
    let v = verdict(&h, &["latency"]);
    assert_eq!(v.metrics.faults[0].recovery_ms, Some(9100));
    assert_eq!(kinds(&v, Rule::Latency), [ViolationKind::LateRecovery]);
}

// ---------------------------------------------------------------- deviations

/// A deviation names rule and kind and waives within its bounds only.
#[test]
fn a_deviation_waives_only_within_its_bounds() {
    // Two unexplained... rather: the survivor revocation of check_rules, twice over.
    let base = || {
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
            .commit(16000, "C1", 0, 0)
            .revoke(16010, "C1", &[0])
            .assign(16100, "C1", &[1, 2])
            .assign(16100, "C2", &[0])
            .consume_many(16200, "C1", &[(1, 0, 9), (2, 0, 9)])
            .commit_many(16210, "C1", &[(1, 10), (2, 10)])
            .consume(16200, "C2", 0, 0, 9)
            .commit(16210, "C2", 0, 10)
            .stop(17000)
            .finish(17100);
        h
    };
    // Two survivor revocations; a bound of one waives none of them.
    let mut h = base();
    h.deviation("crash", ViolationKind::SurvivorRevoked)
        .max_count = Some(1);
    let v = h.check();
    assert_eq!(v.outcome, Outcome::Fail);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("more than its bound of 1")),
        "{:?}",
        v.notes
    );
    // A bound of two waives both: a known deviation, never a pass.
    let mut h = base();
    h.deviation("crash", ViolationKind::SurvivorRevoked)
        .max_count = Some(2);
    let v = h.check();
    assert_eq!(v.outcome, Outcome::KnownDeviation);
    assert!(v
        .violations()
        .all(|x| x.waived_by.as_deref() == Some("dev-1")));
    // Limited to another partition: waives nothing, and is reported stale.
    let mut h = base();
    h.deviation("crash", ViolationKind::SurvivorRevoked)
        .partitions = vec![2];
    let v = h.check();
    assert_eq!(v.outcome, Outcome::Fail);
    assert_eq!(v.stale_deviations, ["dev-1"]);
    // A size bound: these violations have size 1.
    let mut h = base();
    h.deviation("crash", ViolationKind::SurvivorRevoked)
        .max_size = Some(0);
    assert_eq!(h.check().outcome, Outcome::Fail);
}

/// The count bound holds per injected fault: two crashes, one survivor revocation
/// after each, are within a bound of one; the same two after one crash are not.
#[test]
fn a_deviations_count_bound_is_per_fault() {
    let history = |second_fault: bool| {
        let mut h = H::new("cooperative-sticky", 4);
        h.started(1000, "C1")
            .started(1000, "C2")
            .started(1000, "C3")
            .started(1000, "C4")
            .assign(1100, "C1", &[0])
            .assign(1100, "C2", &[1])
            .assign(1100, "C3", &[2])
            .assign(1100, "C4", &[3])
            .ack_many(1200, &[(0, 0, 9), (1, 0, 9), (2, 0, 9), (3, 0, 9)])
            .consume(1300, "C1", 0, 0, 9)
            .consume(1300, "C2", 1, 0, 9)
            .consume(1300, "C3", 2, 0, 9)
            .consume(1300, "C4", 3, 0, 9)
            .fault(10000, "f1", "crash", "C4")
            .exited(10001, "C4", true)
            // C1 gives up events-0 (the deviation) with it all committed, and takes the
            // crashed member's events-3 from the start.
            .commit(16000, "C1", 0, 10)
            .revoke(16010, "C1", &[0])
            .assign(16100, "C1", &[3])
            .assign(16100, "C2", &[0])
            .consume(16200, "C1", 3, 0, 9)
            .commit(16210, "C1", 3, 10);
        if second_fault {
            h.fault(30000, "f2", "crash", "C3")
                .exited(30001, "C3", true);
        } else {
            h.exited(30001, "C3", true);
        }
        h.commit(36000, "C2", 1, 10)
            .revoke(36010, "C2", &[1])
            .assign(36100, "C1", &[1, 2])
            .consume(36200, "C1", 2, 0, 9)
            .commit(36210, "C1", 2, 10)
            .stop(37000)
            .finish(37100);
        h.deviation("crash", ViolationKind::SurvivorRevoked)
            .max_count = Some(1);
        h
    };
    let v = history(true).check();
    assert_eq!(v.outcome, Outcome::KnownDeviation, "{:#}", projection(&v));
    assert_eq!(v.violations().count(), 2);
    let v = history(false).check();
    assert_eq!(v.outcome, Outcome::Fail, "{:#}", projection(&v));
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("more than its bound of 1 per fault")),
        "{:?}",
        v.notes
    );
}

/// A deviation for one broker is no excuse on another.
#[test]
fn a_deviation_keyed_by_another_broker_does_not_apply() {
    let mut h = eager_change_where_c2_keeps("leave");
    h.deviation("leave", ViolationKind::EagerKept).broker = Some("tansu".into());
    assert_eq!(h.check().outcome, Outcome::Fail);
}
