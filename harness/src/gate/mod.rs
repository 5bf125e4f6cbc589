//! `harness gate`: compares a candidate matrix with a baseline, cell by cell, for a
//! release gate. A regression: a cell's outcome got worse (pass to fail, pass to a
//! waived deviation, a cell that no longer runs), detection or recovery of a fault got
//! slower beyond the tolerance, more duplicates, longer zombie or unowned windows, or a
//! deviation that now has to waive something it did not. Two matrices are comparable only
//! on the same broker, cells, scenario settings and budgets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::check::Outcome;
use crate::history::{read_history, Event, RunInfo};
use crate::matrix::{CellResult, Figures};

/// How much worse a figure may get before it is a regression: the larger of an absolute
/// and a relative allowance (run-to-run noise on a shared machine is large).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Tolerance {
    pub ms: u64,
    pub pct: u64,
    pub duplicates: u64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            ms: 3000,
            pct: 50,
            duplicates: 200,
        }
    }
}

impl Tolerance {
    fn allows(&self, baseline: u64, candidate: u64, absolute: u64) -> bool {
        candidate <= baseline + absolute.max(baseline * self.pct / 100)
    }
}

/// One difference in one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub cell: String,
    pub what: String,
    pub baseline: String,
    pub candidate: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateReport {
    pub baseline: PathBuf,
    pub candidate: PathBuf,
    pub comparable: bool,
    /// Why not, when they are not comparable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub tolerance: Tolerance,
    pub regressions: Vec<Change>,
    pub improvements: Vec<Change>,
    pub cells: usize,
}

impl GateReport {
    /// 0: no regression, 1: a regression, 2: not comparable.
    pub fn exit_code(&self) -> u8 {
        if !self.comparable {
            2
        } else if self.regressions.is_empty() {
            0
        } else {
            1
        }
    }
}

/// One matrix directory, read back.
struct Matrix {
    dir: PathBuf,
    cells: BTreeMap<(String, String), CellResult>,
}

impl Matrix {
    fn load(dir: &Path) -> Result<Matrix> {
        let file = dir.join("matrix.json");
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "cannot read {}: is {} a matrix report directory?",
                file.display(),
                dir.display()
            )
        })?;
        let cells: Vec<CellResult> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a matrix.json", file.display()))?;
        Ok(Matrix {
            dir: dir.to_path_buf(),
            cells: cells
                .into_iter()
                .map(|c| ((c.fault.clone(), c.protocol.to_string()), c))
                .collect(),
        })
    }

    /// A cell's directory inside this matrix (not the path recorded when it ran: the
    /// directory may have moved, e.g. downloaded as a CI artifact).
    fn cell_dir(&self, (fault, protocol): &(String, String)) -> PathBuf {
        self.dir.join(fault).join(protocol)
    }

    /// The run information a cell's history starts with, if it ran.
    fn info(&self, key: &(String, String)) -> Option<RunInfo> {
        let records = read_history(&self.cell_dir(key).join("history.jsonl")).ok()?;
        records.into_iter().find_map(|r| match r.event {
            Event::RunStarted(info) => Some(*info),
            _ => None,
        })
    }
}

pub fn compare(baseline: &Path, candidate: &Path, tolerance: Tolerance) -> Result<GateReport> {
    let base = Matrix::load(baseline)?;
    let cand = Matrix::load(candidate)?;
    let mut report = GateReport {
        baseline: baseline.to_path_buf(),
        candidate: candidate.to_path_buf(),
        comparable: true,
        reason: None,
        tolerance,
        regressions: Vec::new(),
        improvements: Vec::new(),
        cells: cand.cells.len(),
    };
    if let Some(why) = incomparable(&base, &cand) {
        report.comparable = false;
        report.reason = Some(why);
        return Ok(report);
    }
    for (key, c) in &cand.cells {
        let b = &base.cells[key];
        let cell = format!("{} / {}", key.0, key.1);
        diff_cell(&cell, b, c, &tolerance, &mut report);
    }
    Ok(report)
}

/// Why two matrices cannot be compared, if they cannot.
fn incomparable(base: &Matrix, cand: &Matrix) -> Option<String> {
    let brokers =
        |m: &Matrix| -> BTreeSet<String> { m.cells.values().map(|c| c.broker.clone()).collect() };
    if brokers(base) != brokers(cand) {
        return Some(format!(
            "different brokers: baseline {:?}, candidate {:?}",
            brokers(base),
            brokers(cand)
        ));
    }
    let keys = |m: &Matrix| -> BTreeSet<(String, String)> { m.cells.keys().cloned().collect() };
    if keys(base) != keys(cand) {
        let only = |a: &Matrix, b: &Matrix| -> Vec<String> {
            keys(a)
                .difference(&keys(b))
                .map(|(f, p)| format!("{f}/{p}"))
                .collect()
        };
        return Some(format!(
            "different cells: only in the baseline {:?}, only in the candidate {:?}",
            only(base, cand),
            only(cand, base)
        ));
    }
    for key in cand.cells.keys() {
        let (Some(b), Some(c)) = (base.info(key), cand.info(key)) else {
            continue;
        };
        let cell = format!("{}/{}", key.0, key.1);
        if (b.topic.as_str(), b.partitions, &b.consumer, b.rate_per_sec)
            != (c.topic.as_str(), c.partitions, &c.consumer, c.rate_per_sec)
        {
            return Some(format!(
                "the scenario of {cell} differs (topic, partitions, consumer settings or rate)"
            ));
        }
        if b.budgets != c.budgets {
            return Some(format!(
                "the budgets of {cell} differ: {:?} vs {:?}",
                b.budgets, c.budgets
            ));
        }
    }
    None
}

fn rank(o: Outcome) -> u8 {
    match o {
        Outcome::Pass => 0,
        Outcome::KnownDeviation | Outcome::ClientFinding => 1,
        Outcome::Fail => 2,
        Outcome::Skipped => 3,
    }
}

fn diff_cell(cell: &str, b: &CellResult, c: &CellResult, tol: &Tolerance, out: &mut GateReport) {
    let mut change = |regression: bool, what: &str, base: String, cand: String| {
        let ch = Change {
            cell: cell.to_owned(),
            what: what.to_owned(),
            baseline: base,
            candidate: cand,
        };
        if regression {
            out.regressions.push(ch);
        } else {
            out.improvements.push(ch);
        }
    };
    match (b.outcome, c.outcome) {
        (x, y) if x == y => {}
        (Outcome::Skipped, _) => change(
            false,
            "now runs",
            b.outcome.to_string(),
            c.outcome.to_string(),
        ),
        (_, Outcome::Skipped) => change(
            true,
            "no longer runs",
            b.outcome.to_string(),
            format!("skipped: {}", c.reason),
        ),
        (x, y) => {
            let worse = rank(y) > rank(x);
            let cand = if worse && !c.reason.is_empty() {
                format!("{y}: {}", c.reason.chars().take(300).collect::<String>())
            } else {
                y.to_string()
            };
            change(worse, "outcome", x.to_string(), cand);
        }
    }
    let (Some(fb), Some(fc)) = (&b.figures, &c.figures) else {
        return;
    };
    for (what, bm, cm) in [
        ("detection", &fb.detection_ms, &fc.detection_ms),
        ("recovery", &fb.recovery_ms, &fc.recovery_ms),
    ] {
        for (fault, &cv) in cm {
            let Some(&bv) = bm.get(fault) else { continue };
            let label = format!("{what} of {fault}");
            if !tol.allows(bv, cv, tol.ms) {
                change(true, &label, format!("{bv} ms"), format!("{cv} ms"));
            } else if !tol.allows(cv, bv, tol.ms) {
                change(false, &label, format!("{bv} ms"), format!("{cv} ms"));
            }
        }
        // A fault that recovered in the baseline and not in the candidate.
        for fault in bm.keys().filter(|f| !cm.contains_key(*f)) {
            change(
                true,
                &format!("{what} of {fault}"),
                format!("{} ms", bm[fault]),
                "never".into(),
            );
        }
    }
    figure(
        cell,
        "duplicates",
        fb.duplicates,
        fc.duplicates,
        tol.duplicates,
        tol,
        out,
    );
    figure(
        cell,
        "unexplained duplicates",
        fb.duplicates_unexplained,
        fc.duplicates_unexplained,
        0,
        &Tolerance { pct: 0, ..*tol },
        out,
    );
    figure(
        cell,
        "longest zombie window (ms)",
        fb.max_zombie_ms,
        fc.max_zombie_ms,
        tol.ms,
        tol,
        out,
    );
    figure(
        cell,
        "longest unowned partition (ms)",
        fb.max_unowned_ms,
        fc.max_unowned_ms,
        tol.ms,
        tol,
        out,
    );
    deviations(cell, fb, fc, out);
}

/// A figure that must not grow beyond the tolerance.
fn figure(
    cell: &str,
    what: &str,
    b: u64,
    c: u64,
    absolute: u64,
    tol: &Tolerance,
    out: &mut GateReport,
) {
    let ch = Change {
        cell: cell.to_owned(),
        what: what.to_owned(),
        baseline: b.to_string(),
        candidate: c.to_string(),
    };
    if !tol.allows(b, c, absolute) {
        out.regressions.push(ch);
    } else if !tol.allows(c, b, absolute) {
        out.improvements.push(ch);
    }
}

/// Deviations that now waive something (a regression: something broke that the
/// baseline did not need excusing) or went stale (an improvement).
fn deviations(cell: &str, fb: &Figures, fc: &Figures, out: &mut GateReport) {
    for d in fc.waived_by.iter().filter(|d| !fb.waived_by.contains(d)) {
        out.regressions.push(Change {
            cell: cell.to_owned(),
            what: "newly waived by a deviation".into(),
            baseline: "-".into(),
            candidate: d.clone(),
        });
    }
    for d in fb.waived_by.iter().filter(|d| fc.stale.contains(d)) {
        out.improvements.push(Change {
            cell: cell.to_owned(),
            what: "deviation no longer needed (stale)".into(),
            baseline: d.clone(),
            candidate: "-".into(),
        });
    }
}

/// The gate's verdict as markdown (for a CI job summary).
pub fn markdown(r: &GateReport) -> String {
    let mut s = String::from("## Release gate\n\n");
    let _ = writeln!(
        s,
        "Baseline `{}`, candidate `{}`; tolerance {} ms or {}% (duplicates: {}).\n",
        r.baseline.display(),
        r.candidate.display(),
        r.tolerance.ms,
        r.tolerance.pct,
        r.tolerance.duplicates
    );
    if !r.comparable {
        let _ = writeln!(
            s,
            "**Not comparable**: {}\n",
            r.reason.as_deref().unwrap_or("?")
        );
        return s;
    }
    let _ = writeln!(
        s,
        "**{}**: {} regressions, {} improvements over {} cells.\n",
        if r.regressions.is_empty() {
            "PASS"
        } else {
            "REGRESSION"
        },
        r.regressions.len(),
        r.improvements.len(),
        r.cells
    );
    for (title, list) in [
        ("Regressions", &r.regressions),
        ("Improvements", &r.improvements),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "### {title}\n\n| cell | what | baseline | candidate |\n|---|---|---|---|"
        );
        for c in list {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                c.cell,
                c.what,
                c.baseline.replace('|', "\\|"),
                c.candidate.replace('|', "\\|")
            );
        }
        s.push('\n');
    }
    s
}

/// Writes gate.json and gate.md into `out`; when `out` is the candidate matrix, its
/// index.html gets the gate's verdict below the table.
pub fn write(out: &Path, r: &GateReport) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join("gate.json"),
        serde_json::to_string_pretty(r)? + "\n",
    )
    .context("cannot write gate.json")?;
    std::fs::write(out.join("gate.md"), markdown(r)).context("cannot write gate.md")?;
    if same_dir(out, &r.candidate) {
        // In the order the matrix ran them, as its own index.html has them.
        let text = std::fs::read_to_string(r.candidate.join("matrix.json"))
            .context("cannot read the candidate's matrix.json")?;
        let cells: Vec<CellResult> = serde_json::from_str(&text)?;
        crate::matrix::write_index(out, &cells, Some(&markdown(r)))?;
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
