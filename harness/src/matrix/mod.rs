//! The protocol x fault conformance matrix: one run per cell (a fault scenario under a
//! protocol), cells in parallel up to `jobs`, then a table and matrix.json.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::check::{Outcome, Verdict};
use crate::client::DriverCommand;
use crate::run::{self, RunConfig};
use crate::scenario::{Budgets, Scenario};

/// What one cell came to. `reason` says why it is not a pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub protocol: String,
    pub fault: String,
    /// pass | fail | known-deviation | skipped
    pub outcome: String,
    pub reason: String,
    /// The cell's report directory (history.jsonl, verdict.json, summary.md).
    pub report: PathBuf,
    pub wall_s: f64,
}

pub struct MatrixConfig {
    pub broker: String,
    pub protocols: Vec<String>,
    /// Scenario names from the catalogue, one row each.
    pub faults: Vec<String>,
    pub report_dir: PathBuf,
    pub jobs: usize,
    pub driver: Option<DriverCommand>,
    /// The `--driver` text, for replay lines.
    pub driver_arg: Option<String>,
    pub seed: u64,
    pub budgets: Budgets,
}

/// The matrix's rows by default: every catalogue scenario but the seed.
pub fn default_faults() -> Vec<String> {
    crate::scenario::catalogue()
        .into_iter()
        .filter(|n| *n != "seed")
        .map(str::to_owned)
        .collect()
}

/// Runs every cell; the results come back in table order (fault, then protocol).
pub async fn run(cfg: MatrixConfig) -> Result<Vec<CellResult>> {
    let scenarios: Vec<Scenario> = cfg
        .faults
        .iter()
        .map(|f| Scenario::builtin(f))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(&cfg.report_dir)
        .with_context(|| format!("cannot create {}", cfg.report_dir.display()))?;
    let total = scenarios.len() * cfg.protocols.len();
    let slots = Arc::new(Semaphore::new(cfg.jobs.max(1)));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for sc in &scenarios {
        for protocol in &cfg.protocols {
            let dir = cfg.report_dir.join(&sc.name).join(protocol);
            let mut replay = format!(
                "harness run --scenario {} --protocol {protocol} --broker {} --seed {} --report-dir {}",
                sc.name,
                cfg.broker,
                cfg.seed,
                dir.display()
            );
            if let Some(d) = &cfg.driver_arg {
                replay.push_str(&format!(" --driver {}", shell_words::quote(d)));
            }
            let run_cfg = RunConfig {
                scenario: sc.clone(),
                protocol: protocol.clone(),
                broker: cfg.broker.clone(),
                report_dir: dir.clone(),
                driver: cfg.driver.clone(),
                seed: cfg.seed,
                budgets: cfg.budgets.clone(),
                replay,
            };
            let (slots, done) = (slots.clone(), done.clone());
            let (fault, protocol) = (sc.name.clone(), protocol.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire_owned().await?;
                let started = Instant::now();
                let cell = match crate::cluster::lacks_protocol(&run_cfg.broker, &protocol) {
                    Some(why) => CellResult {
                        protocol,
                        fault,
                        outcome: "skipped".into(),
                        reason: why,
                        report: dir,
                        wall_s: 0.0,
                    },
                    None => cell_result(fault, protocol, dir, started, run::run(run_cfg).await),
                };
                let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                eprintln!(
                    "[matrix {n}/{total}] {} / {}: {} ({:.1} s){}",
                    cell.fault,
                    cell.protocol,
                    cell.outcome,
                    cell.wall_s,
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
    fault: String,
    protocol: String,
    report: PathBuf,
    started: Instant,
    result: Result<Verdict>,
) -> CellResult {
    let (outcome, reason) = match result {
        Err(e) => ("fail", format!("could not run: {e:#}")),
        Ok(v) => match v.outcome {
            Outcome::Pass => ("pass", String::new()),
            Outcome::Skipped => ("skipped", v.skipped.clone().unwrap_or_default()),
            Outcome::KnownDeviation => (
                "known-deviation",
                v.failed_checks()
                    .map(|c| format!("{}: {}", c.name, c.known_deviation.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Outcome::Fail => (
                "fail",
                v.failed_checks()
                    .filter(|c| c.known_deviation.is_none())
                    .map(|c| format!("{}: {}", c.name, c.detail))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        },
    };
    CellResult {
        protocol,
        fault,
        outcome: outcome.to_owned(),
        reason,
        report,
        wall_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    }
}

/// Writes matrix.json and matrix.md (the table) into `dir`.
pub fn write(dir: &Path, cells: &[CellResult]) -> Result<()> {
    let json = serde_json::to_string_pretty(cells)?;
    std::fs::write(dir.join("matrix.json"), json + "\n").context("cannot write matrix.json")?;
    std::fs::write(dir.join("matrix.md"), table(cells)).context("cannot write matrix.md")?;
    Ok(())
}

/// Rows faults, columns protocols, in the order the cells came.
pub fn table(cells: &[CellResult]) -> String {
    let mut protocols: Vec<&str> = Vec::new();
    let mut faults: Vec<&str> = Vec::new();
    let mut by_cell: BTreeMap<(&str, &str), &CellResult> = BTreeMap::new();
    for c in cells {
        if !protocols.contains(&c.protocol.as_str()) {
            protocols.push(&c.protocol);
        }
        if !faults.contains(&c.fault.as_str()) {
            faults.push(&c.fault);
        }
        by_cell.insert((&c.fault, &c.protocol), c);
    }
    let width = protocols.iter().map(|p| p.len()).max().unwrap_or(0).max(15);
    let mut s = String::new();
    let _ = write!(s, "| {:<20} |", "fault");
    for p in &protocols {
        let _ = write!(s, " {p:<width$} |");
    }
    let _ = write!(s, "\n|{}|", "-".repeat(22));
    for _ in &protocols {
        let _ = write!(s, "{}|", "-".repeat(width + 2));
    }
    s.push('\n');
    for f in &faults {
        let _ = write!(s, "| {f:<20} |");
        for p in &protocols {
            let label = by_cell.get(&(*f, *p)).map_or("-", |c| label(&c.outcome));
            let _ = write!(s, " {label:<width$} |");
        }
        s.push('\n');
    }
    let count = |o: &str| cells.iter().filter(|c| c.outcome == o).count();
    let _ = writeln!(
        s,
        "\n{} cells: {} pass, {} known deviation, {} skipped, {} FAIL",
        cells.len(),
        count("pass"),
        count("known-deviation"),
        count("skipped"),
        count("fail")
    );
    s
}

fn label(outcome: &str) -> &'static str {
    match outcome {
        "pass" => "pass",
        "known-deviation" => "known deviation",
        "skipped" => "skipped",
        _ => "FAIL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(fault: &str, protocol: &str, outcome: &str) -> CellResult {
        CellResult {
            protocol: protocol.into(),
            fault: fault.into(),
            outcome: outcome.into(),
            reason: String::new(),
            report: PathBuf::from(format!("r/{fault}/{protocol}")),
            wall_s: 1.0,
        }
    }

    #[test]
    fn the_table_has_a_row_per_fault_and_a_column_per_protocol() {
        let cells = [
            cell("crash", "eager-range", "pass"),
            cell("crash", "consumer", "known-deviation"),
            cell("partition-increase", "eager-range", "skipped"),
            cell("partition-increase", "consumer", "fail"),
        ];
        let t = table(&cells);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("eager-range") && lines[0].contains("consumer"));
        assert!(lines[2].starts_with("| crash") && lines[2].contains("known deviation"));
        assert!(lines[3].contains("skipped") && lines[3].contains("FAIL"));
        assert!(t.contains("4 cells: 1 pass, 1 known deviation, 1 skipped, 1 FAIL"));
    }
}
