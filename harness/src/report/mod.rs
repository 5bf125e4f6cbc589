//! Reports of a checked run: verdict.json (machine-readable), summary.md (for people),
//! metrics.prom (OpenMetrics). The history itself is already in the same directory.

mod html;
pub mod junit;
pub mod metrics;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::check::{Model, Verdict};

pub use html::{index, page, IndexCell};

pub fn write(dir: &Path, verdict: &Verdict) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = serde_json::to_string_pretty(verdict)?;
    std::fs::write(dir.join("verdict.json"), json + "\n").context("cannot write verdict.json")?;
    std::fs::write(dir.join("summary.md"), summary(verdict)).context("cannot write summary.md")?;
    std::fs::write(dir.join("metrics.prom"), metrics::render(verdict))
        .context("cannot write metrics.prom")?;
    Ok(())
}

/// Writes `report.html`: the verdict drawn over the run's timeline (needs the model, so
/// only callers that have the history call it).
pub fn write_page(dir: &Path, verdict: &Verdict, model: &Model) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("report.html"), page(verdict, model))
        .context("cannot write report.html")
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| format!("{v} ms"))
}

pub fn summary(v: &Verdict) -> String {
    let mut s = String::new();
    let status = v.outcome.label();
    let protocol = v.protocol.map_or("?", |p| p.as_str());
    let _ = writeln!(
        s,
        "# {} / {protocol} / {}: {status}\n",
        v.scenario, v.broker
    );
    if !v.clients.is_empty() {
        let clients: Vec<String> = v.clients.iter().map(ToString::to_string).collect();
        let _ = writeln!(s, "Client: {}\n", clients.join(", "));
    }
    let _ = writeln!(s, "Seed {}. Replay: `{}`\n", v.seed, v.replay);
    let _ = writeln!(s, "| check | result | detail |\n|---|---|---|");
    for c in &v.checks {
        let r = match (&c.known_deviation, c.passed) {
            (_, true) => "pass",
            (Some(_), false) => "waived",
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
                f.kind.as_str(),
                f.target.as_deref().unwrap_or("-"),
                ms(f.detection_ms),
                ms(f.recovery_ms),
                f.partitions_moved,
                f.stop_the_world_members.join(", ")
            );
        }
    }
    let waived: Vec<String> = v
        .violations()
        .filter_map(|x| {
            x.waived_by.as_ref().map(|id| {
                format!(
                    "- {} / {}: {} (waived by `{id}`)",
                    x.rule, x.kind, x.message
                )
            })
        })
        .collect();
    if !waived.is_empty() {
        let _ = writeln!(s, "\n## Waived by known deviations and client findings\n");
        let _ = writeln!(s, "{}", waived.join("\n"));
    }
    if !v.stale_deviations.is_empty() {
        let _ = writeln!(
            s,
            "\n## Stale deviations\n\nThese applied to the run but waived nothing: {}",
            v.stale_deviations.join(", ")
        );
    }
    if !v.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &v.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}
