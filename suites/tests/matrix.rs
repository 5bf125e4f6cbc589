//! The protocol x fault matrix on the embedded broker, one test per cell:
//! `cargo nextest run -E 'binary(matrix)'`. The PR tier (profiles `default` and `ci`)
//! runs the eager-range and consumer columns; the `nightly` profile runs every cell.
//!
//! A cell must pass, unless fixtures/known-deviations.toml lists deviations or client
//! findings for it: then it may also read known-deviation or client-finding (they are
//! timing-dependent, so a cell may pass), and every violation must be waived, within the
//! deviation's bounds. A fault the mock cannot
//! inject (partition-increase: no CreatePartitions; broker-pause: no way to freeze a
//! mock broker) must be reported skipped, never passed.

use harness::check::Outcome;
use harness::history::Rule;
use harness::scenario::{known_deviations, Scenario};
use suites::run_builtin;

fn cell(fault: &str, protocol: &str) {
    let test = format!("matrix_{fault}_{protocol}");
    let kinds = Scenario::builtin(fault).expect("scenario").fault_kinds();
    let deviations = known_deviations("mock", protocol.parse().expect("protocol"), kinds)
        .expect("known deviations");
    let (v, dir) = run_builtin(fault, protocol, None, &test);
    let summary = harness::report::summary(&v);
    // Faults the mock cannot inject, and the reason its skip must give.
    let unsupported = match fault {
        "partition-increase" => Some("CreatePartitions"),
        "broker-pause" => Some("cannot pause a broker"),
        _ => None,
    };
    let allowed: &[Outcome] = if unsupported.is_some() {
        &[Outcome::Skipped]
    } else if deviations.is_empty() {
        &[Outcome::Pass]
    } else {
        &[
            Outcome::Pass,
            Outcome::KnownDeviation,
            Outcome::ClientFinding,
        ]
    };
    assert!(
        allowed.contains(&v.outcome),
        "{fault} under {protocol}: {:?}, expected one of {allowed:?}; reports in {}:\n{summary}",
        v.outcome,
        dir.display()
    );
    // Records never consumed or re-delivered without a handover fail every cell, unless
    // a client finding waives stranded partitions (a client that never rejoins).
    for rule in [Rule::NoLoss, Rule::DuplicatesExplained] {
        let unwaived = v.check(rule).map_or(0, |c| c.unwaived().count());
        assert_eq!(unwaived, 0, "{rule}:\n{summary}");
    }
    for c in v.checks.iter().filter(|c| !c.passed) {
        assert!(
            c.known_deviation.is_some(),
            "{} failed outright:\n{summary}",
            c.name
        );
    }
    if let Some(reason) = unsupported {
        let why = v.skipped.as_deref().unwrap_or_default();
        assert!(why.contains(reason), "skipped for {why}");
    }
}

/// One module per protocol (a column), one test per fault scenario (a row).
macro_rules! column {
    ($module:ident, $protocol:literal) => {
        mod $module {
            use super::cell;

            #[test]
            fn crash() {
                cell("crash", $protocol);
            }
            #[test]
            fn leave() {
                cell("leave", $protocol);
            }
            #[test]
            fn join() {
                cell("join", $protocol);
            }
            #[test]
            fn scale_down() {
                cell("scale-down", $protocol);
            }
            #[test]
            fn restart() {
                cell("restart", $protocol);
            }
            #[test]
            fn rolling_bounce() {
                cell("rolling-bounce", $protocol);
            }
            #[test]
            fn pause_short() {
                cell("pause-short", $protocol);
            }
            #[test]
            fn pause_long() {
                cell("pause-long", $protocol);
            }
            #[test]
            fn long_poll() {
                cell("long-poll", $protocol);
            }
            #[test]
            fn broker_bounce() {
                cell("broker-bounce", $protocol);
            }
            #[test]
            fn broker_kill() {
                cell("broker-kill", $protocol);
            }
            #[test]
            fn broker_pause() {
                cell("broker-pause", $protocol);
            }
            #[test]
            fn coordinator_move() {
                cell("coordinator-move", $protocol);
            }
            #[test]
            fn partition() {
                cell("partition", $protocol);
            }
            #[test]
            fn heartbeat_drop() {
                cell("heartbeat-drop", $protocol);
            }
            #[test]
            fn coordinator_latency() {
                cell("coordinator-latency", $protocol);
            }
            #[test]
            fn partition_increase() {
                cell("partition-increase", $protocol);
            }
            #[test]
            fn subscription_change() {
                cell("subscription-change", $protocol);
            }
        }
    };
}

column!(eager_range, "eager-range");
column!(eager_roundrobin, "eager-roundrobin");
column!(cooperative_sticky, "cooperative-sticky");
column!(static_eager, "static-eager");
column!(static_cooperative, "static-cooperative");
column!(consumer, "consumer");

/// Every catalogue scenario is a row above: a new scenario needs its tests.
#[test]
fn every_fault_scenario_has_a_row() {
    let src = include_str!("matrix.rs");
    for f in harness::matrix::default_faults() {
        assert!(
            src.contains(&format!("cell(\"{f}\", $protocol)")),
            "no matrix row for {f}"
        );
    }
}
