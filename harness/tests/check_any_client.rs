//! Legal behaviour of clients that are not librdkafka, which an oracle tuned to
//! librdkafka reported as violations (issue "Verdicts that hold for any client"), and
//! the verdict's view of a member that dies. Each history is the shape a real client
//! produced; the rules must judge Kafka's promises, not one library's habits.

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

// ---------------------------------------------------------------- position retention

/// The false alarm the issue quotes: C1 processed up to 426 and its commit of 427 failed
/// with RebalanceInProgress; the eager rebalance gave events-0 back to C1, which went on
/// from its own position, as the Java consumer does (it keeps the fetch position of a
/// partition that stays assigned). No record was skipped by anyone.
fn retained(second_owner: &str, someone_in_between: bool) -> H {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 499)
        .consume(1300, "C1", 0, 0, 399)
        .commit(1310, "C1", 0, 400)
        .consume(1400, "C1", 0, 400, 426)
        .fault(2000, "f1", "join", "C3")
        .commit_failed(2100, "C1", 0, 427)
        .revoke(2110, "C1", &[0]);
    if someone_in_between {
        h.assign(2200, "C2", &[0])
            .revoke(2300, "C2", &[0])
            .assign(2400, second_owner, &[0]);
    } else {
        h.assign(2200, "C2", &[]).assign(2200, second_owner, &[0]);
    }
    h.consume(2500, second_owner, 0, 427, 499)
        .commit(2510, second_owner, 0, 500)
        .stop(3000)
        .finish(3100);
    h.budget("join", 0, 5000, 5000);
    h
}

#[test]
fn a_member_given_its_partition_back_may_resume_from_its_own_position() {
    let v = verdict(&retained("C1", false), &[]);
    assert_eq!(v.metrics.duplicates, 0);
    assert_json_snapshot!(projection(&v));
}

#[test]
fn another_member_may_not_start_at_the_previous_owners_position() {
    let v = verdict(&retained("C2", false), &["order"]);
    assert_eq!(kinds(&v, Rule::Order), [ViolationKind::Skip]);
    assert!(v
        .check(Rule::Order)
        .unwrap()
        .detail
        .contains("started at 427 but the committed position was 400"));
}

#[test]
fn own_position_does_not_survive_another_owner_in_between() {
    verdict(&retained("C1", true), &["order"]);
}

/// librdkafka's way: back to the committed position, re-processing what the failed
/// commit did not cover. Explained by that failed commit.
#[test]
fn a_member_given_its_partition_back_may_also_restart_from_the_commit() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 499)
        .consume(1300, "C1", 0, 0, 399)
        .commit(1310, "C1", 0, 400)
        .consume(1400, "C1", 0, 400, 426)
        .fault(2000, "f1", "join", "C3")
        .commit_failed(2100, "C1", 0, 427)
        .revoke(2110, "C1", &[0])
        .assign(2200, "C1", &[0])
        .consume(2500, "C1", 0, 400, 499)
        .commit(2510, "C1", 0, 500)
        .stop(3000)
        .finish(3100);
    h.budget("join", 0, 5000, 5000);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates_explained, 27);
}

// ---------------------------------------------------------------- indeterminate commits

/// C1's commit of 20 timed out (it may have landed), then C1 was revoked; C2 started at
/// 20 (it had landed) or at 10 (it had not). Both are legal; a definite rejection of 20
/// leaves only 10.
fn after_a_failed_commit(timed_out: bool, next_start: i64) -> H {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 29)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 19)
        .fault(2000, "f1", "join", "C3");
    if timed_out {
        h.commit_timed_out(2100, "C1", 0, 20);
    } else {
        h.commit_failed(2100, "C1", 0, 20);
    }
    h.revoke(2110, "C1", &[0])
        .assign(2200, "C2", &[0])
        .assign(2200, "C1", &[])
        .consume(2300, "C2", 0, next_start, 29)
        .commit(2310, "C2", 0, 30)
        .stop(3000)
        .finish(3100);
    h.budget("join", 0, 5000, 5000);
    h
}

#[test]
fn an_indeterminate_commit_may_have_landed_or_not() {
    verdict(&after_a_failed_commit(true, 20), &[]);
    let v = verdict(&after_a_failed_commit(true, 10), &[]);
    assert_eq!(v.metrics.duplicates_explained, 10);
}

#[test]
fn a_definite_rejection_did_not_land() {
    verdict(&after_a_failed_commit(false, 10), &[]);
    let v = verdict(&after_a_failed_commit(false, 20), &["order"]);
    assert_json_snapshot!(projection(&v));
}

// ---------------------------------------------------------------- lost vs revoked

/// aiokafka has no "lost" callback: a member whose session expired reports a revocation,
/// and its commit there fails (UnknownMemberId). The re-delivery is explained by that
/// failed commit, as it would be by a loss.
#[test]
fn a_loss_reported_as_a_revocation_with_a_failed_commit_is_explained() {
    let mut h = H::new("eager-range", 1);
    h.budget("pause-long", 0, 20000, 20000)
        .started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[])
        .ack(1200, 0, 0, 29)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1400, "C1", 0, 10, 19)
        .fault(1500, "f1", "pause-long", "C1")
        .assign(7600, "C2", &[0])
        .consume(7700, "C2", 0, 10, 29)
        .commit(7710, "C2", 0, 30)
        .heal(11500, "f1")
        .commit_error(11600, "C1", 0, 20, "UnknownMemberIdError")
        .revoke(11610, "C1", &[0])
        .stop(13000)
        .finish(13100);
    let v = verdict(&h, &[]);
    assert_eq!(v.metrics.duplicates_explained, 10);
}

/// A cooperative driver that prints its whole assignment in `partitions_assigned`
/// instead of what was added: ownership continues, nothing is reported.
#[test]
fn a_full_assignment_reported_under_a_cooperative_protocol_is_understood() {
    let mut h = H::new("cooperative-sticky", 2);
    h.budget("join", 0, 5000, 5000)
        .started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack_many(1200, &[(0, 0, 19), (1, 0, 19)])
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .fault(2000, "f1", "join", "C2")
        .started(2000, "C2")
        .assign(2100, "C1", &[0, 1])
        .consume_many(2200, "C1", &[(0, 10, 19), (1, 0, 19)])
        .commit_many(2210, "C1", &[(0, 20), (1, 20)])
        .stop(3000)
        .finish(3100);
    verdict(&h, &[]);
}

// ---------------------------------------------------------------- members that die

/// Two members died (a client exception); the verdict names each with its exit code and
/// the end of its stderr, under `members_alive`.
#[test]
fn a_member_that_dies_is_named_with_its_exit_code_and_stderr() {
    let mut h = H::new("eager-range", 2);
    h.started(1000, "C1")
        .started(1000, "C2")
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .consume(1300, "C2", 1, 0, 9)
        .commit(1310, "C2", 1, 10)
        .died(
            1400,
            "C2",
            1,
            &[
                "Exception in thread \"main\" org.apache.kafka.common.KafkaException: boom",
                "\tat Driver.main(Driver.java:42)",
            ],
        )
        .stop(2000)
        .finish(2100);
    let v = verdict(&h, &["members_alive"]);
    let died = &v.check(Rule::MembersAlive).unwrap().violations[0];
    assert_eq!(died.kind, ViolationKind::MemberDied);
    assert_eq!(died.member.as_deref(), Some("C2"));
    assert!(died.message.contains("exit code 1"), "{}", died.message);
    assert!(
        died.message.contains("KafkaException: boom"),
        "{}",
        died.message
    );
    assert_json_snapshot!(projection(&v));
}

/// Histories written before the harness recorded who asked for an exit are not judged.
#[test]
fn an_exit_from_an_old_history_is_not_judged() {
    let mut h = H::new("eager-range", 1);
    h.started(1000, "C1")
        .assign(1100, "C1", &[0])
        .ack(1200, 0, 0, 9)
        .consume(1300, "C1", 0, 0, 9)
        .commit(1310, "C1", 0, 10)
        .event(
            1400,
            Some("C1"),
            harness::history::Event::MemberExited {
                code: Some(1),
                signal: None,
                killed: false,
                requested: None,
                stderr_tail: Vec::new(),
            },
        )
        .stop(2000)
        .finish(2100);
    verdict(&h, &[]);
}

// ---------------------------------------------------------------- client findings

/// A violation waived by a finding keyed by the client's library: the cell reads
/// `client-finding` for librdkafka 2.12.1, and fails for any other client.
fn survivor_revokes_with(library: &str) -> H {
    let mut h = H::new("cooperative-sticky", 2);
    h.budget("leave", 0, 20000, 20000)
        .started(1000, "C1")
        .startup(1001, "C1", "driver", "1.0", library)
        .started(1000, "C2")
        .startup(1001, "C2", "driver", "1.0", library)
        .started(1000, "C3")
        .startup(1001, "C3", "driver", "1.0", library)
        .assign(1100, "C1", &[0])
        .assign(1100, "C2", &[1])
        .ack_many(1200, &[(0, 0, 9), (1, 0, 9)])
        .fault(2000, "f1", "leave", "C3")
        .shutdown(2010, "C3")
        .exited(2020, "C3", false)
        .commit(2100, "C2", 1, 0)
        .revoke(2110, "C2", &[1])
        .assign(2200, "C1", &[1])
        .consume_many(2300, "C1", &[(0, 0, 9), (1, 0, 9)])
        .commit_many(2310, "C1", &[(0, 10), (1, 10)])
        .stop(3000)
        .finish(3100);
    h.finding(
        "leave",
        ViolationKind::SurvivorRevoked,
        "librdkafka",
        Some(">=2.12.0, <2.13.0"),
    );
    h
}

#[test]
fn a_client_finding_applies_to_its_client_only() {
    let v = survivor_revokes_with("librdkafka 2.12.1").check();
    assert_eq!(v.outcome, Outcome::ClientFinding);
    assert_eq!(v.clients.len(), 1);
    let v = survivor_revokes_with("kafka-clients 3.9.1").check();
    assert_eq!(v.outcome, Outcome::Fail);
    let v = survivor_revokes_with("librdkafka 2.16.0").check();
    assert_eq!(v.outcome, Outcome::Fail);
}
