//! The protocol x fault conformance matrix: one run per cell (a fault scenario under a
//! protocol), cells in parallel (slots.rs decides how many), then matrix.json, the table
//! (matrix.md, with percentiles of detection and recovery per protocol) and junit.xml.

mod slots;

pub use slots::Jobs;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::check::{Outcome, Verdict};
use crate::client::DriverCommand;
use crate::history::Protocol;
use crate::run::{self, RunConfig};
use crate::scenario::{Budgets, Scenario};

/// What one cell came to. `reason` says why it is not a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub protocol: Protocol,
    pub fault: String,
    #[serde(default)]
    pub broker: String,
    pub outcome: Outcome,
    pub reason: String,
    /// The cell's report directory (history.jsonl, verdict.json, summary.md).
    pub report: PathBuf,
    pub wall_s: f64,
    /// What the gate compares, when the cell ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures: Option<Figures>,
}

/// A cell's figures, from its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Detection and recovery of each fault, by fault id.
    pub detection_ms: BTreeMap<String, u64>,
    pub recovery_ms: BTreeMap<String, u64>,
    pub lost: u64,
    pub duplicates: u64,
    pub duplicates_unexplained: u64,
    pub max_zombie_ms: u64,
    pub max_unowned_ms: u64,
    pub max_scheduling_delay_ms: u64,
    /// Deviations and findings that waived something, and those that went stale.
    pub waived_by: Vec<String>,
    pub stale: Vec<String>,
}

impl Figures {
    fn of(v: &Verdict) -> Figures {
        let m = &v.metrics;
        let mut waived_by: Vec<String> =
            v.violations().filter_map(|x| x.waived_by.clone()).collect();
        waived_by.sort();
        waived_by.dedup();
        Figures {
            detection_ms: m
                .faults
                .iter()
                .filter_map(|f| f.detection_ms.map(|d| (f.id.clone(), d)))
                .collect(),
            recovery_ms: m
                .faults
                .iter()
                .filter_map(|f| f.recovery_ms.map(|r| (f.id.clone(), r)))
                .collect(),
            lost: m.lost,
            duplicates: m.duplicates,
            duplicates_unexplained: m.duplicates_unexplained,
            max_zombie_ms: m.max_zombie_ms,
            max_unowned_ms: m.max_unowned_ms,
            max_scheduling_delay_ms: m.max_scheduling_delay_ms,
            waived_by,
            stale: v.stale_deviations.clone(),
        }
    }
}

pub struct MatrixConfig {
    pub broker: String,
    pub protocols: Vec<Protocol>,
    /// The rows: scenarios, each with how a replay line names it (`--scenario crash`,
    /// `--scenario-file my.toml`).
    pub rows: Vec<Row>,
    pub report_dir: PathBuf,
    pub jobs: Jobs,
    pub driver: Option<DriverCommand>,
    /// The `--driver` text, for replay lines.
    pub driver_arg: Option<String>,
    pub seed: u64,
    pub budgets: Budgets,
    /// Overrides every scenario's production rate.
    pub rate: Option<u32>,
}

/// One row of the matrix.
pub struct Row {
    pub scenario: Scenario,
    pub replay_flag: String,
}

impl Row {
    /// A built-in scenario, by name.
    pub fn builtin(name: &str) -> Result<Row> {
        Ok(Row {
            scenario: Scenario::builtin(name)?,
            replay_flag: format!("--scenario {name}"),
        })
    }
}

/// The matrix's rows by default: every catalogue scenario but the seed and the
/// driver-check session.
pub fn default_faults() -> Vec<String> {
    crate::scenario::catalogue()
        .into_iter()
        .filter(|n| !matches!(*n, "seed" | "driver-check"))
        .map(str::to_owned)
        .collect()
}

/// Runs every cell; the results come back in table order (fault, then protocol).
pub async fn run(cfg: MatrixConfig) -> Result<Vec<CellResult>> {
    let mut rows: Vec<(Scenario, &str)> = cfg
        .rows
        .iter()
        .map(|r| (r.scenario.clone(), r.replay_flag.as_str()))
        .collect();
    if let Some(rate) = cfg.rate {
        for (sc, _) in &mut rows {
            sc.rate_per_sec = rate;
        }
    }
    std::fs::create_dir_all(&cfg.report_dir)
        .with_context(|| format!("cannot create {}", cfg.report_dir.display()))?;
    let total = rows.len() * cfg.protocols.len();
    let slots = Arc::new(slots::Slots::new(cfg.jobs));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (sc, replay_flag) in &rows {
        for protocol in &cfg.protocols {
            let dir = cfg.report_dir.join(&sc.name).join(protocol.as_str());
            let mut replay = format!(
                "harness run {replay_flag} --protocol {protocol} --broker {} --seed {} --report-dir {}",
                cfg.broker,
                cfg.seed,
                dir.display()
            );
            if let Some(d) = &cfg.driver_arg {
                replay.push_str(&format!(" --driver {}", shell_words::quote(d)));
            }
            if let Some(rate) = cfg.rate {
                replay.push_str(&format!(" --rate {rate}"));
            }
            let run_cfg = RunConfig {
                scenario: sc.clone(),
                protocol: *protocol,
                broker: cfg.broker.clone(),
                report_dir: dir.clone(),
                driver: cfg.driver.clone(),
                seed: cfg.seed,
                budgets: cfg.budgets.clone(),
                replay,
            };
            let (slots, done) = (slots.clone(), done.clone());
            let (fault, protocol) = (sc.name.clone(), *protocol);
            let broker = cfg.broker.clone();
            tasks.push(tokio::spawn(async move {
                let slot = slots.acquire().await;
                let started = Instant::now();
                let cell = match crate::cluster::lacks_protocol(&run_cfg.broker, protocol) {
                    Some(why) => CellResult {
                        protocol,
                        fault,
                        broker,
                        outcome: Outcome::Skipped,
                        reason: why,
                        report: dir,
                        wall_s: 0.0,
                        figures: None,
                    },
                    None => cell_result(
                        (fault, protocol, broker),
                        dir,
                        started,
                        run::run(run_cfg).await,
                    ),
                };
                drop(slot);
                let delay = cell
                    .figures
                    .as_ref()
                    .map_or(0, |f| f.max_scheduling_delay_ms);
                slots.finished(delay);
                let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                eprintln!(
                    "[matrix {n}/{total}] {} / {}: {} ({:.1} s, {} at once){}",
                    cell.fault,
                    cell.protocol,
                    cell.outcome,
                    cell.wall_s,
                    slots.limit(),
                    if cell.reason.is_empty() {
                        String::new()
                    } else {
                        // The whole reason is in matrix.json; a line is enough here.
                        let short: String = cell.reason.chars().take(160).collect();
                        format!(": {short}")
                    }
                );
                anyhow::Ok(cell)
            }));
        }
    }
    let mut cells = Vec::new();
    for t in tasks {
        cells.push(t.await.context("a matrix cell panicked")??);
    }
    write(&cfg.report_dir, &cells)?;
    Ok(cells)
}

fn cell_result(
    (fault, protocol, broker): (String, Protocol, String),
    report: PathBuf,
    started: Instant,
    result: Result<Verdict>,
) -> CellResult {
    let figures = result.as_ref().ok().map(Figures::of);
    let (outcome, reason) = match result {
        Err(e) => (Outcome::Fail, format!("could not run: {e:#}")),
        Ok(v) => {
            let reason = match v.outcome {
                Outcome::Pass => String::new(),
                Outcome::Skipped => v.skipped.clone().unwrap_or_default(),
                Outcome::KnownDeviation | Outcome::ClientFinding => v
                    .failed_checks()
                    .map(|c| format!("{}: {}", c.name, c.known_deviation.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; "),
                Outcome::Fail => v
                    .failed_checks()
                    .filter(|c| c.known_deviation.is_none())
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            (v.outcome, reason)
        }
    };
    CellResult {
        protocol,
        fault,
        broker,
        outcome,
        reason,
        report,
        wall_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        figures,
    }
}

/// Writes matrix.json, matrix.md (the table and the percentiles), junit.xml and
/// index.html into `dir`.
pub fn write(dir: &Path, cells: &[CellResult]) -> Result<()> {
    write_index(dir, cells, None)?;
    let json = serde_json::to_string_pretty(cells)?;
    std::fs::write(dir.join("matrix.json"), json + "\n").context("cannot write matrix.json")?;
    let md = format!("{}\n{}", table(cells), percentiles(cells));
    std::fs::write(dir.join("matrix.md"), md).context("cannot write matrix.md")?;
    let cases: Vec<crate::report::junit::Case> = cells
        .iter()
        .map(|c| crate::report::junit::Case {
            name: format!("{} / {}", c.fault, c.protocol),
            classname: format!("matrix.{}", c.broker),
            time_s: c.wall_s,
            outcome: c.outcome,
            reason: c.reason.clone(),
            report: c.report.display().to_string(),
        })
        .collect();
    std::fs::write(
        dir.join("junit.xml"),
        crate::report::junit::render("matrix", &cases)?,
    )
    .context("cannot write junit.xml")?;
    Ok(())
}

/// Writes `dir`/index.html: the table, each cell linking its report.html, and below it
/// `gate_diff` when a release gate compared this matrix with a baseline.
pub fn write_index(dir: &Path, cells: &[CellResult], gate_diff: Option<&str>) -> Result<()> {
    let index: Vec<crate::report::IndexCell> = cells
        .iter()
        .map(|c| crate::report::IndexCell {
            fault: c.fault.clone(),
            protocol: c.protocol.to_string(),
            outcome: c.outcome,
            // Relative, so the directory still works when moved (a CI artifact).
            report: format!("{}/{}/report.html", c.fault, c.protocol),
            reason: c.reason.clone(),
        })
        .collect();
    std::fs::write(
        dir.join("index.html"),
        crate::report::index(&index, gate_diff),
    )
    .context("cannot write index.html")
}

/// Percentiles of detection and recovery per protocol over every fault of every cell
/// that ran (hdrhistogram), as a markdown table.
pub fn percentiles(cells: &[CellResult]) -> String {
    let mut protocols: Vec<Protocol> = cells.iter().map(|c| c.protocol).collect();
    protocols.dedup();
    protocols.sort();
    protocols.dedup();
    let mut s = String::from(
        "| protocol | faults | detection p50 / p90 / max | recovery p50 / p90 / max |\n|---|---|---|---|\n",
    );
    for p in protocols {
        let mut detection = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures");
        let mut recovery = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant figures");
        for f in cells
            .iter()
            .filter(|c| c.protocol == p)
            .filter_map(|c| c.figures.as_ref())
        {
            for d in f.detection_ms.values() {
                let _ = detection.record(*d);
            }
            for r in f.recovery_ms.values() {
                let _ = recovery.record(*r);
            }
        }
        let show = |h: &hdrhistogram::Histogram<u64>| {
            if h.is_empty() {
                "-".to_owned()
            } else {
                format!(
                    "{:.1} / {:.1} / {:.1} s",
                    h.value_at_quantile(0.5) as f64 / 1000.0,
                    h.value_at_quantile(0.9) as f64 / 1000.0,
                    h.max() as f64 / 1000.0
                )
            }
        };
        let _ = writeln!(
            s,
            "| {p} | {} | {} | {} |",
            recovery.len(),
            show(&detection),
            show(&recovery)
        );
    }
    s
}

/// Rows faults, columns protocols, in the order the cells came.
pub fn table(cells: &[CellResult]) -> String {
    let mut protocols: Vec<Protocol> = Vec::new();
    let mut faults: Vec<&str> = Vec::new();
    let mut by_cell: BTreeMap<(&str, Protocol), &CellResult> = BTreeMap::new();
    for c in cells {
        if !protocols.contains(&c.protocol) {
            protocols.push(c.protocol);
        }
        if !faults.contains(&c.fault.as_str()) {
            faults.push(&c.fault);
        }
        by_cell.insert((&c.fault, c.protocol), c);
    }
    let width = protocols
        .iter()
        .map(|p| p.as_str().len())
        .max()
        .unwrap_or(0)
        .max(15);
    let mut s = String::new();
    let _ = write!(s, "| {:<20} |", "fault");
    for p in &protocols {
        let _ = write!(s, " {:<width$} |", p.as_str());
    }
    let _ = write!(s, "\n|{}|", "-".repeat(22));
    for _ in &protocols {
        let _ = write!(s, "{}|", "-".repeat(width + 2));
    }
    s.push('\n');
    for f in &faults {
        let _ = write!(s, "| {f:<20} |");
        for p in &protocols {
            let label = by_cell.get(&(*f, *p)).map_or("-", |c| label(c.outcome));
            let _ = write!(s, " {label:<width$} |");
        }
        s.push('\n');
    }
    let count = |o: Outcome| cells.iter().filter(|c| c.outcome == o).count();
    let _ = writeln!(
        s,
        "\n{} cells: {} pass, {} known deviation, {} client finding, {} skipped, {} FAIL",
        cells.len(),
        count(Outcome::Pass),
        count(Outcome::KnownDeviation),
        count(Outcome::ClientFinding),
        count(Outcome::Skipped),
        count(Outcome::Fail)
    );
    s
}

/// How a cell's outcome reads in the table.
fn label(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Pass => "pass",
        Outcome::KnownDeviation => "known deviation",
        Outcome::ClientFinding => "client finding",
        Outcome::Skipped => "skipped",
        Outcome::Fail => "FAIL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(fault: &str, protocol: Protocol, outcome: Outcome) -> CellResult {
        CellResult {
            protocol,
            fault: fault.into(),
            broker: "mock".into(),
            outcome,
            reason: String::new(),
            report: PathBuf::from(format!("r/{fault}/{protocol}")),
            wall_s: 1.0,
            figures: Some(Figures {
                detection_ms: [("f1".to_owned(), 6000)].into(),
                recovery_ms: [("f1".to_owned(), 11000)].into(),
                ..Figures::default()
            }),
        }
    }

    #[test]
    fn percentiles_are_per_protocol() {
        let cells = [
            cell("crash", Protocol::EagerRange, Outcome::Pass),
            cell("join", Protocol::EagerRange, Outcome::Pass),
        ];
        let t = percentiles(&cells);
        assert!(
            t.contains("| eager-range | 2 | 6.0 / 6.0 / 6.0 s | 11.0 / 11.0 / 11.0 s |"),
            "{t}"
        );
    }

    #[test]
    fn the_table_has_a_row_per_fault_and_a_column_per_protocol() {
        use Protocol::{Consumer, EagerRange};
        let cells = [
            cell("crash", EagerRange, Outcome::Pass),
            cell("crash", Consumer, Outcome::KnownDeviation),
            cell("partition-increase", EagerRange, Outcome::Skipped),
            cell("partition-increase", Consumer, Outcome::Fail),
        ];
        let t = table(&cells);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("eager-range") && lines[0].contains("consumer"));
        assert!(lines[2].starts_with("| crash") && lines[2].contains("known deviation"));
        assert!(lines[3].contains("skipped") && lines[3].contains("FAIL"));
        assert!(
            t.contains("4 cells: 1 pass, 1 known deviation, 0 client finding, 1 skipped, 1 FAIL")
        );
    }
}
