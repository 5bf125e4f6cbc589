//! Reports of a checked run: verdict.json (machine-readable) and summary.md (for people).
//! The history itself is already in the same directory.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::check::{Outcome, Verdict};

pub fn write(dir: &Path, verdict: &Verdict) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(verdict)?;
    std::fs::write(dir.join("verdict.json"), json + "\n").context("cannot write verdict.json")?;
    std::fs::write(dir.join("summary.md"), summary(verdict)).context("cannot write summary.md")?;
    Ok(())
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{v} ms"))
}

pub fn summary(v: &Verdict) -> String {
    let mut s = String::new();
    let status = outcome_label(v.outcome);
    let _ = writeln!(
        s,
        "# {} / {} / {}: {status}\n",
        v.scenario, v.protocol, v.broker
    );
    let _ = writeln!(s, "Seed {}. Replay: `{}`\n", v.seed, v.replay);
    let _ = writeln!(s, "| check | result | detail |\n|---|---|---|");
    for c in &v.checks {
        let r = match (&c.known_deviation, c.passed) {
            (_, true) => "pass",
            (Some(_), false) => "known deviation",
            (None, false) => "FAIL",
        };
        let _ = writeln!(s, "| {} | {r} | {} |", c.name, c.detail.replace('|', "\\|"));
    }
    let m = &v.metrics;
    let _ = writeln!(s, "\n## Metrics\n");
    let _ = writeln!(
        s,
        "- records acked {}, consumed {}, lost {}\n- duplicates {} ({} explained, {} unexplained)\n- rebalances {}\n- longest unowned partition {} ms, longest zombie window {} ms",
        m.records_acked,
        m.records_consumed,
        m.lost,
        m.duplicates,
        m.duplicates_explained,
        m.duplicates_unexplained,
        m.rebalances,
        m.max_unowned_ms,
        m.max_zombie_ms
    );
    let fin: Vec<String> = m
        .final_assignment
        .iter()
        .map(|(k, p)| format!("{k}={p:?}"))
        .collect();
    let _ = writeln!(s, "- final assignment {}", fin.join(" "));
    if !m.faults.is_empty() {
        let _ = writeln!(
            s,
            "\n| fault | kind | target | detection | recovery | moved | stop-the-world |\n|---|---|---|---|---|---|---|"
        );
        for f in &m.faults {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.id,
                f.kind,
                f.target.as_deref().unwrap_or("-"),
                ms(f.detection_ms),
                ms(f.recovery_ms),
                f.partitions_moved,
                f.stop_the_world_members.join(", ")
            );
        }
    }
    s
}

/// How an outcome is shown to people.
pub fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASSED",
        Outcome::KnownDeviation => "KNOWN DEVIATION",
        Outcome::Skipped => "SKIPPED",
        Outcome::Fail => "FAILED",
    }
}
