//! `harness gate` on small matrix directories written by hand: two copies of one matrix
//! compare clean; a cell turned from pass to fail, slower recovery, more duplicates or a
//! newly needed deviation is a regression naming the cell; a different broker, cell set
//! or budget makes the two incomparable.

mod common;

use std::path::Path;

use common::H;
use harness::check::Outcome;
use harness::gate::{compare, markdown, Tolerance};
use harness::history::Protocol;
use harness::matrix::{CellResult, Figures};

fn figures(recovery_ms: u64, duplicates: u64) -> Figures {
    Figures {
        detection_ms: [("f1".to_owned(), 6000)].into(),
        recovery_ms: [("f1".to_owned(), recovery_ms)].into(),
        duplicates,
        ..Figures::default()
    }
}

fn cell(fault: &str, outcome: Outcome, figures: Figures) -> CellResult {
    CellResult {
        protocol: Protocol::EagerRange,
        fault: fault.into(),
        broker: "mock".into(),
        outcome,
        reason: if outcome == Outcome::Fail {
            "no_loss: events-0: 3 acked records never consumed".into()
        } else {
            String::new()
        },
        report: format!("somewhere/else/{fault}/eager-range").into(),
        wall_s: 10.0,
        figures: Some(figures),
    }
}

/// Writes a matrix directory: matrix.json, and a history per cell whose run_started
/// carries `partitions` and the default budgets.
fn matrix(dir: &Path, cells: &[CellResult], partitions: i32) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("matrix.json"),
        serde_json::to_string_pretty(cells).unwrap(),
    )
    .unwrap();
    for c in cells {
        let cell_dir = dir.join(&c.fault).join(c.protocol.as_str());
        std::fs::create_dir_all(&cell_dir).unwrap();
        let h = H::new("eager-range", partitions);
        let jsonl: String = h
            .build()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        std::fs::write(cell_dir.join("history.jsonl"), jsonl).unwrap();
    }
}

fn baseline() -> Vec<CellResult> {
    vec![
        cell("crash", Outcome::Pass, figures(11000, 800)),
        cell("join", Outcome::Pass, figures(5000, 0)),
        cell("leave", Outcome::KnownDeviation, figures(4000, 190)),
    ]
}

#[test]
fn two_copies_of_one_matrix_compare_clean() {
    let t = tempfile::tempdir().unwrap();
    matrix(&t.path().join("a"), &baseline(), 6);
    matrix(&t.path().join("b"), &baseline(), 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("b"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 0, "{}", markdown(&r));
    assert!(r.regressions.is_empty() && r.improvements.is_empty());
    assert!(markdown(&r).contains("**PASS**"));
}

#[test]
fn a_cell_turned_from_pass_to_fail_is_a_regression_naming_the_cell() {
    let t = tempfile::tempdir().unwrap();
    matrix(&t.path().join("a"), &baseline(), 6);
    let mut cand = baseline();
    cand[1] = cell("join", Outcome::Fail, figures(5000, 0));
    matrix(&t.path().join("b"), &cand, 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("b"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 1);
    assert_eq!(r.regressions.len(), 1, "{:?}", r.regressions);
    assert_eq!(r.regressions[0].cell, "join / eager-range");
    assert!(r.regressions[0].candidate.contains("never consumed"));
    // And back: an improvement, not a regression.
    let r = compare(
        &t.path().join("b"),
        &t.path().join("a"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 0);
    assert_eq!(r.improvements.len(), 1);
}

#[test]
fn slower_recovery_and_more_duplicates_beyond_tolerance_are_regressions() {
    let t = tempfile::tempdir().unwrap();
    matrix(&t.path().join("a"), &baseline(), 6);
    let mut cand = baseline();
    // 11 s -> 13 s is within 3 s; 11 s -> 21 s is not (one missed JoinGroup window).
    cand[0].figures = Some(figures(13000, 900));
    matrix(&t.path().join("b"), &cand, 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("b"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 0, "{}", markdown(&r));
    cand[0].figures = Some(figures(21000, 2000));
    matrix(&t.path().join("c"), &cand, 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("c"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 1);
    let what: Vec<&str> = r.regressions.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(what, ["recovery of f1", "duplicates"], "{}", markdown(&r));
}

#[test]
fn a_newly_needed_deviation_is_a_regression_and_a_stale_one_an_improvement() {
    let t = tempfile::tempdir().unwrap();
    let mut base = baseline();
    base[2].figures.as_mut().unwrap().waived_by = vec!["mock-commit-rejected-in-rebalance".into()];
    matrix(&t.path().join("a"), &base, 6);
    let mut cand = baseline();
    cand[2].figures.as_mut().unwrap().stale = vec!["mock-commit-rejected-in-rebalance".into()];
    cand[0].figures.as_mut().unwrap().waived_by = vec!["mock-kip848-non-sticky".into()];
    matrix(&t.path().join("b"), &cand, 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("b"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.regressions.len(), 1, "{}", markdown(&r));
    assert_eq!(r.regressions[0].what, "newly waived by a deviation");
    assert!(r.improvements.iter().any(|c| c.what.contains("stale")));
}

#[test]
fn different_brokers_cells_or_scenarios_are_not_comparable() {
    let t = tempfile::tempdir().unwrap();
    matrix(&t.path().join("a"), &baseline(), 6);
    let mut other_broker = baseline();
    for c in &mut other_broker {
        c.broker = "process:tansu".into();
    }
    matrix(&t.path().join("b"), &other_broker, 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("b"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 2);
    assert!(r.reason.as_deref().unwrap().contains("different brokers"));

    matrix(&t.path().join("c"), &baseline()[..2], 6);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("c"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 2);
    assert!(r.reason.as_deref().unwrap().contains("leave/eager-range"));

    matrix(&t.path().join("d"), &baseline(), 8);
    let r = compare(
        &t.path().join("a"),
        &t.path().join("d"),
        Tolerance::default(),
    )
    .unwrap();
    assert_eq!(r.exit_code(), 2);
    assert!(
        r.reason.as_deref().unwrap().contains("scenario"),
        "{:?}",
        r.reason
    );
}

#[test]
fn a_directory_that_is_not_a_matrix_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let e = compare(t.path(), t.path(), Tolerance::default()).unwrap_err();
    assert!(
        format!("{e:#}").contains("is not a matrix report directory")
            || format!("{e:#}").contains("a matrix report directory"),
        "{e:#}"
    );
}
