//! `harness driver-check`: puts a driver through a short scripted session on the
//! embedded broker and lists every way its stream breaks the driver protocol
//! (docs/driver-protocol.md), so a client team can write a driver without reading the
//! harness's code.
//!
//! The session (fixtures/scenarios/driver-check.toml): C1 starts, then C2; both share
//! the partitions; C1 is stalled for a moment (if it announced `stall`) and must consume
//! again; C2 re-subscribes (if it announced `subscribe`) and must stay alive; C1 gets
//! SIGTERM and must close cleanly; C2 takes everything; production stops and C2 drains;
//! C2's stdin is closed and it must close cleanly too. Malformed lines are collected
//! rather than fatal, and the oracle then judges what the stream says.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::check::{self, Verdict};
use crate::client::{protocol_flags, DriverCommand};
use crate::fault::{Executor, StepOutcome, Targets, SHUTDOWN_TIMEOUT};
use crate::history::{read_history, Event, HistoryWriter, Protocol, Recorder, Rule, Waited};
use crate::report;
use crate::run::{drain, RunConfig, Testbed};
use crate::scenario::{Budgets, Scenario, Step};

pub struct Config {
    pub driver: DriverCommand,
    pub protocol: Protocol,
    pub report_dir: PathBuf,
}

/// What the session found.
pub struct Report {
    /// Each way the driver broke the protocol, with the evidence.
    pub problems: Vec<String>,
    /// What could not be checked, or is worth knowing.
    pub notes: Vec<String>,
    pub verdict: Option<Verdict>,
    /// The members got going (both started and shared the partitions): only then does
    /// the oracle's judgement of their stream mean something.
    started: bool,
}

/// Rules whose violations are the driver's stream contradicting itself or Kafka; the
/// others (latency, protocol promises) are about the group and the broker.
const STREAM_RULES: &[Rule] = &[
    Rule::MembersAlive,
    Rule::NoLoss,
    Rule::DuplicatesExplained,
    Rule::SingleOwnership,
    Rule::Order,
    Rule::Commits,
];

pub async fn run(cfg: Config) -> Result<Report> {
    let scenario = Scenario::builtin("driver-check")?;
    let run_cfg = RunConfig {
        scenario: scenario.clone(),
        protocol: cfg.protocol,
        broker: "mock".into(),
        report_dir: cfg.report_dir.clone(),
        driver: Some(cfg.driver.clone()),
        seed: 1,
        budgets: Budgets::builtin(),
        replay: format!(
            "harness driver-check --driver {} --protocol {}",
            shell_words::quote(&cfg.driver.display()),
            cfg.protocol
        ),
    };
    let members_dir = cfg.report_dir.join("members");
    std::fs::create_dir_all(&members_dir)
        .with_context(|| format!("cannot create {}", members_dir.display()))?;
    let history_path = cfg.report_dir.join("history.jsonl");
    let recorder = Arc::new(Recorder::lenient(HistoryWriter::create(&history_path)?));
    let budgets = run_cfg.budgets.resolve(
        "mock",
        cfg.protocol,
        scenario.fault_kinds(),
        &scenario.consumer,
    )?;
    let mut report = Report {
        problems: Vec::new(),
        notes: Vec::new(),
        verdict: None,
        started: false,
    };
    let outcome = match Testbed::start(&run_cfg, budgets, &recorder).await? {
        Err(skipped) => skipped,
        Ok(bed) => {
            let outcome = session(&run_cfg, &bed, &recorder, &members_dir, &mut report).await;
            match outcome {
                Ok(o) => o,
                Err(e) => {
                    report.problems.push(format!("{e:#}"));
                    format!("error: {e:#}")
                }
            }
        }
    };
    recorder.record(None, Event::RunFinished { outcome });
    for line in recorder.protocol_errors() {
        report.problems.push(line);
    }
    let records = read_history(&history_path)?;
    let verdict = check::check(&records);
    report::write(&cfg.report_dir, &verdict)?;
    judge(&verdict, &records, &mut report);
    report.verdict = Some(verdict);
    Ok(report)
}

/// The scripted session; returns the run's outcome for the history.
async fn session(
    cfg: &RunConfig,
    bed: &Testbed,
    recorder: &Arc<Recorder>,
    members_dir: &std::path::Path,
    report: &mut Report,
) -> Result<String> {
    let sc = &cfg.scenario;
    let driver = cfg
        .driver
        .clone()
        .expect("driver-check always has a driver");
    let mut exec = Executor::new(
        sc,
        Targets {
            cluster: bed.cluster.as_ref(),
            network: &bed.network,
            recorder,
            driver: &driver,
            flags: protocol_flags(cfg.protocol),
            members_dir,
        },
        format!("driver-check {}", cfg.protocol),
    );
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (i, step) in [
        Step::Start(names(&["C1"])),
        Step::Start(names(&["C2"])),
        Step::AwaitBalanced(names(&["C1", "C2"])),
    ]
    .iter()
    .enumerate()
    {
        match exec.apply(i + 1, step).await? {
            StepOutcome::Done => {}
            StepOutcome::Stalled(why) => {
                report.problems.push(format!(
                    "two members of this driver never shared the partitions: {why}"
                ));
                return Ok(format!("stalled: {why}"));
            }
            StepOutcome::Skipped(why) => return Ok(format!("skipped: {why}")),
        }
    }
    report.started = true;
    let capabilities = recorder.view(|v| v.capabilities.clone());
    let has = |m: &str, c: &str| {
        capabilities
            .get(m)
            .is_some_and(|cs| cs.iter().any(|x| x == c))
    };

    if has("C1", "stall") {
        let since = crate::history::now_ms() + 1500;
        exec.member("C1")?
            .command(&serde_json::json!({"cmd": "stall", "ms": 1500}))
            .await?;
        let consumed_again = recorder
            .wait_for(Duration::from_secs(20), |v| {
                v.assignment.get("C1").is_some_and(|tps| {
                    tps.iter()
                        .any(|tp| v.consumed.get(tp).is_some_and(|(t, _)| *t > since))
                })
            })
            .await?;
        if consumed_again != Waited::Done {
            report
                .problems
                .push("after a 1500 ms stall, C1 did not consume again within 20 s".into());
        }
    } else {
        report.notes.push(
            "no `stall` capability: the long-poll fault will be skipped for this driver".into(),
        );
    }
    if has("C2", "subscribe") {
        exec.member("C2")?
            .command(&serde_json::json!({"cmd": "subscribe", "topics": [sc.topic]}))
            .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        if recorder.view(|v| v.exited.contains_key("C2")) {
            report
                .problems
                .push("C2 exited after a subscribe command".into());
        }
    } else {
        report.notes.push(
            "no `subscribe` capability: the subscription-change fault will be skipped for this driver"
                .into(),
        );
    }

    // SIGTERM: commit, close, shutdown_complete, exit.
    let stragglers = exec.terminate(&names(&["C1"])).await?;
    if !stragglers.is_empty() {
        report.problems.push(format!(
            "C1 did not exit within {SHUTDOWN_TIMEOUT:?} of SIGTERM (it was killed)"
        ));
    }
    if let Waited::TimedOut(state) = balanced(recorder, sc, &["C2"]).await? {
        report
            .problems
            .push(format!("C2 did not take over C1's partitions: {state}"));
    }
    bed.stop_production().await?;
    if let Some(stall) = drain(recorder, sc, None).await? {
        report.problems.push(format!("C2 did not drain: {stall}"));
    }

    // End of stdin: the harness is gone; the driver must close as on SIGTERM.
    let c2 = exec.member("C2")?;
    c2.close_stdin().await;
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, c2.wait())
        .await
        .is_err()
    {
        c2.kill()?;
        c2.wait().await;
        report.problems.push(format!(
            "C2 did not exit within {SHUTDOWN_TIMEOUT:?} of its stdin closing (it was killed); a driver must shut down when the harness is gone"
        ));
    }
    Ok("completed".into())
}

/// Waits until exactly `members` share the partitions and consume.
async fn balanced(recorder: &Recorder, sc: &Scenario, members: &[&str]) -> Result<Waited> {
    let members: Vec<String> = members.iter().map(|s| s.to_string()).collect();
    let since = crate::history::now_ms();
    recorder
        .wait_for(Duration::from_millis(sc.await_timeout_ms), |v| {
            v.balanced_over(&members, &sc.topic, sc.partitions, since)
        })
        .await
}

/// Turns the history and its verdict into problems and notes.
fn judge(verdict: &Verdict, records: &[crate::history::Record], report: &mut Report) {
    for member in ["C1", "C2"] {
        let of = |name: &str| {
            records
                .iter()
                .filter(|r| r.member.as_deref() == Some(member) && r.event.name() == name)
                .count()
        };
        if of("member_started") == 0 {
            continue;
        }
        if of("startup_complete") == 0 && of("unsupported") == 0 {
            report
                .problems
                .push(format!("{member} never printed startup_complete"));
        }
        if of("shutdown_complete") == 0 && of("unsupported") == 0 {
            report.problems.push(format!(
                "{member} never printed shutdown_complete (on SIGTERM or stdin EOF)"
            ));
        }
        if of("records_consumed") == 0 && of("unsupported") == 0 {
            report
                .problems
                .push(format!("{member} never reported a records_consumed batch"));
        }
    }
    for r in records {
        if let Event::StartupComplete { client: None, .. } = &r.event {
            report.notes.push(format!(
                "{} did not say who it is (`client` in startup_complete): findings and deviations keyed by client will not apply to it",
                r.member.as_deref().unwrap_or("?")
            ));
        }
        if let Event::MemberExited {
            code: Some(code), ..
        } = &r.event
        {
            if *code != 0 {
                report.problems.push(format!(
                    "{} exited with code {code} (a clean shutdown exits 0)",
                    r.member.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    if !report.started {
        return;
    }
    for c in &verdict.checks {
        for v in c.unwaived() {
            if STREAM_RULES.contains(&c.name) {
                report.problems.push(format!("{}: {}", c.name, v.message));
            } else {
                report.notes.push(format!("{}: {}", c.name, v.message));
            }
        }
    }
    report.notes.extend(verdict.notes.iter().cloned());
    report.notes.dedup();
    if let Some(why) = &verdict.skipped {
        report.notes.push(format!("skipped: {why}"));
    }
}
