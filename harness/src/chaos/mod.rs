//! `harness chaos`: runs generated fault schedules (schedule.rs) one after another; the
//! first that fails is shrunk to the smallest schedule that still fails the same way,
//! written as `minimal.toml`, a scenario `harness run --scenario-file` replays.
//!
//! Every random choice comes from the seed: run `i` draws its schedule from a generator
//! seeded by (seed, i) and runs with its own derived seed (proxy jitter), so the same
//! seed gives the same schedules and fault timings again.
//!
//! Shrinking walks proptest's value tree (fewer faults, shorter gaps and faults, fewer
//! members, a lower rate). A candidate counts as "still failing" only when two runs of
//! it both fail with a violation of the same rule and kind as the original, so a flaky
//! run cannot steer the shrink; the number of re-runs is bounded.

pub mod schedule;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};

use crate::check::{Outcome, Verdict};
use crate::client::DriverCommand;
use crate::history::{ConsumerSettings, Protocol, Rule, ViolationKind};
use crate::run::{self, RunConfig};
use crate::scenario::{Budgets, Scenario};

pub use schedule::Catalogue;

pub struct ChaosConfig {
    pub broker: String,
    pub protocols: Vec<Protocol>,
    pub driver: Option<DriverCommand>,
    /// The `--driver` text, for replay lines.
    pub driver_arg: Option<String>,
    /// Stop after this many runs, or after this long (whichever is given; both: first).
    pub runs: Option<usize>,
    pub duration: Option<Duration>,
    pub seed: u64,
    pub report_dir: PathBuf,
    /// A fixed production rate; `None`: drawn per schedule (100 to 1000 records/s).
    pub rate: Option<u32>,
    /// Re-runs the shrinker may spend; 0 disables shrinking.
    pub shrink_runs: usize,
    pub budgets: Budgets,
}

/// One chaos run, as chaos.json lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub index: usize,
    pub seed: u64,
    pub protocol: Protocol,
    pub faults: Vec<String>,
    pub outcome: Outcome,
    /// rule/kind of each unwaived violation (or why the run could not be carried out).
    pub failing: Vec<String>,
    pub report: PathBuf,
    pub scenario: PathBuf,
    pub wall_s: f64,
}

/// One candidate the shrinker tried.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub faults: usize,
    pub schedule: Vec<String>,
    /// Both runs failed the same way: the shrink went on from here.
    pub still_fails: bool,
    pub reports: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shrink {
    /// The rule/kind pairs a candidate must reproduce (one of them).
    pub signature: Vec<String>,
    pub original: PathBuf,
    pub minimal: PathBuf,
    pub faults_before: usize,
    pub faults_after: usize,
    pub reruns: usize,
    pub replay: String,
    pub trail: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub broker: String,
    pub protocols: Vec<Protocol>,
    pub runs: Vec<RunRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink: Option<Shrink>,
}

impl ChaosReport {
    /// The first run that failed, if one did.
    pub fn failed(&self) -> Option<&RunRecord> {
        self.runs.iter().find(|r| r.outcome == Outcome::Fail)
    }
}

/// The consumer settings every chaos schedule uses (those of the catalogue).
fn consumer() -> ConsumerSettings {
    ConsumerSettings {
        session_timeout_ms: 6000,
        heartbeat_interval_ms: 1000,
        max_poll_interval_ms: 10000,
    }
}

/// A generator for run `index` of `seed`: the same pair always gives the same schedule.
fn runner_for(seed: u64, index: usize) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    bytes[16..24].copy_from_slice(b"chaos-v1");
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Run `index`'s own seed, for everything random inside the run.
fn run_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (index as u64 + 1)
}

pub async fn run(cfg: ChaosConfig) -> Result<ChaosReport> {
    std::fs::create_dir_all(&cfg.report_dir)
        .with_context(|| format!("cannot create {}", cfg.report_dir.display()))?;
    let rates = match cfg.rate {
        Some(r) => vec![r],
        None => vec![100, 200, 500, 1000],
    };
    let strategy = schedule::scenarios(Catalogue::for_broker(&cfg.broker), rates, consumer());
    let mut report = ChaosReport {
        seed: cfg.seed,
        broker: cfg.broker.clone(),
        protocols: cfg.protocols.clone(),
        runs: Vec::new(),
        shrink: None,
    };
    let started = Instant::now();
    let total = cfg.runs.map_or("?".to_owned(), |n| n.to_string());
    for index in 0.. {
        if cfg.runs.is_some_and(|n| index >= n)
            || cfg.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        let mut gen = runner_for(cfg.seed, index);
        let mut tree = strategy
            .new_tree(&mut gen)
            .map_err(|e| anyhow::anyhow!("cannot generate a schedule: {e}"))?;
        let protocol = cfg.protocols[index % cfg.protocols.len()];
        let dir = cfg.report_dir.join(format!("runs/{index:03}-{protocol}"));
        let scenario = tree.current();
        let (record, verdict) = one_run(&cfg, index, protocol, &scenario, &dir).await?;
        eprintln!(
            "[chaos {}/{total}] seed {} {} {} faults: {} ({:.1} s){}",
            index + 1,
            record.seed,
            protocol,
            record.faults.len(),
            record.outcome,
            record.wall_s,
            if record.failing.is_empty() {
                String::new()
            } else {
                format!(": {}", record.failing.join(", "))
            }
        );
        let failed = record.outcome == Outcome::Fail;
        report.runs.push(record);
        write(&cfg.report_dir, &report)?;
        if failed {
            if cfg.shrink_runs > 0 {
                let signature = failing_kinds(verdict.as_ref());
                report.shrink = Some(shrink(&cfg, index, protocol, &mut tree, &signature).await?);
                write(&cfg.report_dir, &report)?;
            }
            break;
        }
    }
    Ok(report)
}

/// The rule/kind pairs of a verdict's unwaived violations.
fn failing_kinds(verdict: Option<&Verdict>) -> BTreeSet<(Rule, ViolationKind)> {
    verdict
        .map(|v| {
            v.checks
                .iter()
                .flat_map(|c| c.unwaived().map(|x| (x.rule, x.kind)))
                .collect()
        })
        .unwrap_or_default()
}

fn describe(sig: &BTreeSet<(Rule, ViolationKind)>) -> Vec<String> {
    sig.iter().map(|(r, k)| format!("{r}/{k}")).collect()
}

/// Runs one schedule; writes its scenario beside its reports. A run that could not be
/// carried out counts as a failure with its error as the reason.
async fn one_run(
    cfg: &ChaosConfig,
    index: usize,
    protocol: Protocol,
    scenario: &Scenario,
    dir: &Path,
) -> Result<(RunRecord, Option<Verdict>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let scenario_file = dir.join("scenario.toml");
    std::fs::write(&scenario_file, scenario.to_toml()?)
        .with_context(|| format!("cannot write {}", scenario_file.display()))?;
    let seed = run_seed(cfg.seed, index);
    let replay = replay_line(cfg, protocol, seed, &scenario_file, dir);
    let run_cfg = RunConfig {
        scenario: scenario.clone(),
        protocol,
        broker: cfg.broker.clone(),
        report_dir: dir.to_path_buf(),
        driver: cfg.driver.clone(),
        seed,
        budgets: cfg.budgets.clone(),
        replay,
    };
    let started = Instant::now();
    let result = run::run(run_cfg).await;
    let (outcome, failing, verdict) = match result {
        Ok(v) => (v.outcome, describe(&failing_kinds(Some(&v))), Some(v)),
        Err(e) => (Outcome::Fail, vec![format!("could not run: {e:#}")], None),
    };
    Ok((
        RunRecord {
            index,
            seed,
            protocol,
            faults: schedule::summary(scenario),
            outcome,
            failing,
            report: dir.to_path_buf(),
            scenario: scenario_file,
            wall_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        },
        verdict,
    ))
}

fn replay_line(
    cfg: &ChaosConfig,
    protocol: Protocol,
    seed: u64,
    scenario: &Path,
    dir: &Path,
) -> String {
    let mut line = format!(
        "harness run --scenario-file {} --protocol {protocol} --broker {} --seed {seed} --report-dir {}",
        scenario.display(),
        cfg.broker,
        dir.display()
    );
    if let Some(d) = &cfg.driver_arg {
        line.push_str(&format!(" --driver {}", shell_words::quote(d)));
    }
    line
}

/// Shrinks the failing schedule of run `index` (its value tree in `tree`).
async fn shrink(
    cfg: &ChaosConfig,
    index: usize,
    protocol: Protocol,
    tree: &mut impl ValueTree<Value = Scenario>,
    signature: &BTreeSet<(Rule, ViolationKind)>,
) -> Result<Shrink> {
    let original = tree.current();
    let original_file = cfg.report_dir.join("original.toml");
    std::fs::write(&original_file, original.to_toml()?)?;
    let mut best = original.clone();
    let mut trail = Vec::new();
    let mut reruns = 0;
    let mut candidate_no = 0;
    eprintln!(
        "[chaos] run {} failed ({}): shrinking its {} faults, at most {} re-runs",
        index + 1,
        describe(signature).join(", "),
        schedule::faults(&original),
        cfg.shrink_runs
    );
    // The first step is always a simplification of the failing original.
    let mut have_candidate = tree.simplify();
    while have_candidate && reruns < cfg.shrink_runs {
        let candidate = tree.current();
        candidate_no += 1;
        let mut reports = Vec::new();
        let mut fails = 0;
        // Twice, unless the first run already passes.
        for attempt in 0..2 {
            if reruns >= cfg.shrink_runs {
                break;
            }
            reruns += 1;
            let dir = cfg
                .report_dir
                .join(format!("shrink/{candidate_no:03}-{}", attempt + 1));
            let (_, verdict) = one_run(cfg, index, protocol, &candidate, &dir).await?;
            reports.push(dir);
            let reproduced = !failing_kinds(verdict.as_ref()).is_disjoint(signature);
            if !reproduced {
                break;
            }
            fails += 1;
        }
        let still_fails = fails == 2;
        eprintln!(
            "[chaos shrink {candidate_no}] {} faults: {} ({reruns}/{} re-runs)",
            schedule::faults(&candidate),
            if still_fails { "still fails" } else { "passes" },
            cfg.shrink_runs
        );
        trail.push(Attempt {
            faults: schedule::faults(&candidate),
            schedule: schedule::summary(&candidate),
            still_fails,
            reports,
        });
        if still_fails {
            best = candidate;
            have_candidate = tree.simplify();
        } else {
            have_candidate = tree.complicate();
        }
    }
    let minimal = cfg.report_dir.join("minimal.toml");
    std::fs::write(&minimal, best.to_toml()?)?;
    let replay = replay_line(
        cfg,
        protocol,
        run_seed(cfg.seed, index),
        &minimal,
        &cfg.report_dir.join("replay"),
    );
    eprintln!(
        "[chaos] minimal schedule: {} faults (from {}), written to {}\nreplay: {replay}",
        schedule::faults(&best),
        schedule::faults(&original),
        minimal.display()
    );
    Ok(Shrink {
        signature: describe(signature),
        original: original_file,
        minimal,
        faults_before: schedule::faults(&original),
        faults_after: schedule::faults(&best),
        reruns,
        replay,
        trail,
    })
}

/// Writes chaos.json (every run, and the shrink when there is one) and junit.xml (one
/// test case per run).
pub fn write(dir: &Path, report: &ChaosReport) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(dir.join("chaos.json"), json + "\n").context("cannot write chaos.json")?;
    let cases: Vec<crate::report::junit::Case> = report
        .runs
        .iter()
        .map(|r| crate::report::junit::Case {
            name: format!(
                "run {:03} {} ({} faults)",
                r.index + 1,
                r.protocol,
                r.faults.len()
            ),
            classname: format!("chaos.{}", report.broker),
            time_s: r.wall_s,
            outcome: r.outcome,
            reason: if r.failing.is_empty() {
                String::new()
            } else {
                format!(
                    "{}; schedule: {}",
                    r.failing.join(", "),
                    r.faults.join("; ")
                )
            },
            report: r.report.display().to_string(),
        })
        .collect();
    std::fs::write(
        dir.join("junit.xml"),
        crate::report::junit::render("chaos", &cases)?,
    )
    .context("cannot write junit.xml")
}
