//! `metrics.prom`: a run's figures in the OpenMetrics text format, for the signals
//! operators alert on (rebalances, detection and recovery per fault, partitions per
//! member, lag when a fault hit, duplicates, loss) and for dashboards across runs.

use std::fmt::Write as _;

use crate::check::Verdict;

/// Histogram buckets for detection and recovery, in seconds.
const BUCKETS_S: &[f64] = &[0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0];

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The labels every series carries: which cell of which run.
fn run_labels(v: &Verdict) -> String {
    format!(
        "scenario=\"{}\",protocol=\"{}\",broker=\"{}\"",
        label(&v.scenario),
        v.protocol.map_or("?", |p| p.as_str()),
        label(&v.broker)
    )
}

pub fn render(v: &Verdict) -> String {
    let mut s = String::new();
    let run = run_labels(v);
    let m = &v.metrics;
    let counter = |s: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(s, "# TYPE {name} counter\n# HELP {name} {help}");
        let _ = writeln!(s, "{name}_total{{{run}}} {value}");
    };
    counter(
        &mut s,
        "harness_records_acked",
        "Records the producer had acked.",
        m.records_acked,
    );
    counter(
        &mut s,
        "harness_records_consumed",
        "Records the members reported consumed (re-deliveries included).",
        m.records_consumed,
    );
    counter(
        &mut s,
        "harness_records_lost",
        "Acked records never consumed.",
        m.lost,
    );
    let _ = writeln!(
        s,
        "# TYPE harness_duplicates counter\n# HELP harness_duplicates Re-delivered records, by whether a handover explains them."
    );
    let _ = writeln!(
        s,
        "harness_duplicates_total{{{run},explained=\"true\"}} {}",
        m.duplicates_explained
    );
    let _ = writeln!(
        s,
        "harness_duplicates_total{{{run},explained=\"false\"}} {}",
        m.duplicates_unexplained
    );
    counter(
        &mut s,
        "harness_rebalances",
        "Rebalance rounds in the run.",
        m.rebalances as u64,
    );

    let gauge = |s: &mut String, name: &str, help: &str| {
        let _ = writeln!(s, "# TYPE {name} gauge\n# HELP {name} {help}");
    };
    gauge(
        &mut s,
        "harness_unowned_max_seconds",
        "Longest stretch any partition had no owner.",
    );
    let _ = writeln!(
        s,
        "harness_unowned_max_seconds{{{run}}} {}",
        m.max_unowned_ms as f64 / 1000.0
    );
    gauge(
        &mut s,
        "harness_zombie_window_max_seconds",
        "Longest window an expelled member went on holding a partition.",
    );
    let _ = writeln!(
        s,
        "harness_zombie_window_max_seconds{{{run}}} {}",
        m.max_zombie_ms as f64 / 1000.0
    );
    gauge(
        &mut s,
        "harness_partitions_assigned",
        "Partitions each member held when production stopped.",
    );
    for (member, parts) in &m.final_assignment {
        let _ = writeln!(
            s,
            "harness_partitions_assigned{{{run},member=\"{}\"}} {}",
            label(member),
            parts.len()
        );
    }
    gauge(
        &mut s,
        "harness_lag_at_fault_records",
        "Records acked but not yet consumed when each fault hit.",
    );
    for f in &m.faults {
        let _ = writeln!(
            s,
            "harness_lag_at_fault_records{{{run},fault=\"{}\",kind=\"{}\"}} {}",
            label(&f.id),
            f.kind,
            f.lag_at_fault
        );
    }
    for (name, help, pick) in [
        (
            "harness_detection_seconds",
            "Fault to the group's first reaction.",
            (|f: &crate::check::FaultMetrics| f.detection_ms) as fn(&_) -> Option<u64>,
        ),
        (
            "harness_recovery_seconds",
            "Fault to every partition owned and consumed again.",
            |f: &crate::check::FaultMetrics| f.recovery_ms,
        ),
    ] {
        histogram(&mut s, name, help, &run, m.faults.iter().filter_map(pick));
    }
    let _ = writeln!(
        s,
        "# TYPE harness_violations gauge\n# HELP harness_violations Violations found, by rule, kind and whether a deviation waived them."
    );
    let mut by_kind = std::collections::BTreeMap::new();
    for x in v.violations() {
        *by_kind
            .entry((x.rule, x.kind, x.waived_by.is_some()))
            .or_insert(0u64) += 1;
    }
    for ((rule, kind, waived), n) in by_kind {
        let _ = writeln!(
            s,
            "harness_violations{{{run},rule=\"{rule}\",kind=\"{kind}\",waived=\"{waived}\"}} {n}"
        );
    }
    let _ = writeln!(
        s,
        "# TYPE harness_outcome info\n# HELP harness_outcome The verdict's outcome."
    );
    let _ = writeln!(
        s,
        "harness_outcome_info{{{run},outcome=\"{}\"}} 1",
        v.outcome
    );
    s.push_str("# EOF\n");
    s
}

/// One histogram of millisecond values, in seconds.
fn histogram(s: &mut String, name: &str, help: &str, run: &str, values: impl Iterator<Item = u64>) {
    let secs: Vec<f64> = values.map(|ms| ms as f64 / 1000.0).collect();
    let _ = writeln!(
        s,
        "# TYPE {name} histogram\n# HELP {name} {help}\n# UNIT {name} seconds"
    );
    for le in BUCKETS_S {
        let n = secs.iter().filter(|v| **v <= *le).count();
        let _ = writeln!(s, "{name}_bucket{{{run},le=\"{le}\"}} {n}");
    }
    let _ = writeln!(s, "{name}_bucket{{{run},le=\"+Inf\"}} {}", secs.len());
    let _ = writeln!(s, "{name}_count{{{run}}} {}", secs.len());
    let _ = writeln!(s, "{name}_sum{{{run}}} {}", secs.iter().sum::<f64>());
}
