//! The bug zoo: each client bug the reference driver can plant (`verifiable-consumer
//! --bug NAME`, see its `Bug` enum) is run on the embedded broker in a scenario where it
//! shows, and the verdict must fail with the violation that names it. An oracle that
//! lets one through fails here.

use harness::check::Outcome;
use harness::history::{Rule, ViolationKind};
use suites::{bin, run_builtin};

/// Runs `scenario` under eager-range with the reference driver planting `bug`, and
/// asserts the verdict fails with an unwaived `rule`/`kind` violation.
fn caught(bug: &str, scenario: &str, rule: Rule, kind: ViolationKind) {
    let driver = format!("{} --bug {bug}", bin("verifiable-consumer").display());
    let test = format!("bug_{}", bug.replace('-', "_"));
    let (v, dir) = run_builtin(scenario, "eager-range", Some(&driver), &test);
    let summary = harness::report::summary(&v);
    assert_eq!(
        v.outcome,
        Outcome::Fail,
        "--bug {bug} passed the oracle; reports in {}:\n{summary}",
        dir.display()
    );
    let found = v
        .check(rule)
        .is_some_and(|c| c.unwaived().any(|x| x.kind == kind));
    assert!(
        found,
        "--bug {bug}: no unwaived {rule}/{kind} violation; reports in {}:\n{summary}",
        dir.display()
    );
}

#[test]
fn drop_batch_is_caught_as_a_skip() {
    caught("drop-batch", "seed", Rule::Order, ViolationKind::Skip);
}

#[test]
fn commit_ahead_is_caught_as_a_commit_beyond_processed() {
    caught(
        "commit-ahead",
        "seed",
        Rule::Commits,
        ViolationKind::BeyondProcessed,
    );
}

#[test]
fn no_revoke_commit_is_caught_as_unexplained_duplicates() {
    caught(
        "no-revoke-commit",
        "seed",
        Rule::DuplicatesExplained,
        ViolationKind::Unexplained,
    );
}

#[test]
fn zombie_after_lost_is_caught_as_stray_records() {
    caught(
        "zombie-after-lost",
        "heartbeat-drop",
        Rule::SingleOwnership,
        ViolationKind::Stray,
    );
}

#[test]
fn stale_commit_is_caught_as_a_commit_by_a_non_owner() {
    caught(
        "stale-commit",
        "seed",
        Rule::Commits,
        ViolationKind::NotOwner,
    );
}

#[test]
fn skip_close_commit_is_caught_as_unexplained_duplicates() {
    caught(
        "skip-close-commit",
        "leave",
        Rule::DuplicatesExplained,
        ViolationKind::Unexplained,
    );
}

#[test]
fn replay_batch_is_caught_as_unexplained_duplicates() {
    caught(
        "replay-batch",
        "seed",
        Rule::DuplicatesExplained,
        ViolationKind::Unexplained,
    );
}

#[test]
fn gap_in_batch_is_caught_with_per_record_offsets() {
    caught(
        "gap-in-batch",
        "seed",
        Rule::Order,
        ViolationKind::GapInBatch,
    );
}

/// Not planted: a crash in librdkafka itself that `harness chaos --seed 1` found (run 9)
/// and that is shrunk by hand to three faults in fixtures/findings/. The member's death
/// must be the failing check, naming the assertion from its stderr, and the run must end
/// at once rather than error out on the dead driver. When librdkafka fixes it this test
/// fails: then the finding moves to README's fixed list.
#[test]
fn librdkafka_resubscribe_abort_is_named_by_members_alive() {
    let scenario = harness::scenario::Scenario::load(
        &suites::workspace().join("fixtures/findings/librdkafka-resubscribe-abort.toml"),
    )
    .expect("the finding's scenario loads");
    let dir = suites::report_dir("librdkafka_resubscribe_abort");
    let cfg = harness::run::RunConfig {
        scenario,
        protocol: "cooperative-sticky".parse().unwrap(),
        broker: "mock".to_owned(),
        report_dir: dir.clone(),
        driver: None,
        seed: 1,
        budgets: harness::scenario::Budgets::builtin(),
        replay: "cargo nextest run -E 'test(librdkafka_resubscribe_abort)'".to_owned(),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let v = rt
        .block_on(harness::run::run(cfg))
        .unwrap_or_else(|e| panic!("the run could not be carried out: {e:#}"));
    let summary = harness::report::summary(&v);
    assert_eq!(v.outcome, Outcome::Fail, "{summary}");
    let death = v
        .check(Rule::MembersAlive)
        .and_then(|c| c.unwaived().find(|x| x.kind == ViolationKind::MemberDied))
        .unwrap_or_else(|| panic!("no member death in {}:\n{summary}", dir.display()));
    assert!(
        death.message.contains("rd_kafka_cgrp_modify_subscription"),
        "{}",
        death.message
    );
}
