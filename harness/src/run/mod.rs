//! One run of one scenario: start the cluster, the producer and the members, execute the
//! steps, drain, shut down cleanly, then check the history and write the reports.

mod recorder;
mod view;

pub use recorder::{Recorder, Waited};
pub use view::{ExitStatus, GroupView};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::check::{self, Verdict};
use crate::client::{protocol_flags, DriverCommand};
use crate::cluster::{self, ClusterOptions, Unsupported};
use crate::fault::{Executor, StepOutcome, Targets, SHUTDOWN_TIMEOUT};
use crate::history::{read_history, Budget, Event, Expectations, HistoryWriter, RunInfo};
use crate::network::Network;
use crate::produce::Producer;
use crate::report;
use crate::scenario::{cell_expectations, known_deviations, Budgets, Scenario};

pub struct RunConfig {
    pub scenario: Scenario,
    pub protocol: String,
    pub broker: String,
    pub report_dir: PathBuf,
    /// `None`: the reference driver.
    pub driver: Option<DriverCommand>,
    pub seed: u64,
    pub budgets: Budgets,
    /// The command line that replays this run.
    pub replay: String,
}

/// Runs the scenario and returns the checked verdict. `Err` means the run could not be
/// carried out (exit code 2); a verdict that failed is `Ok` (exit code 1).
pub async fn run(cfg: RunConfig) -> Result<Verdict> {
    let started = Instant::now();
    let sc = &cfg.scenario;
    protocol_flags(&cfg.protocol)?;
    let budgets =
        cfg.budgets
            .resolve(&cfg.broker, &cfg.protocol, sc.fault_kinds(), &sc.consumer)?;
    let driver = match &cfg.driver {
        Some(d) => d.clone(),
        None => DriverCommand::reference()?,
    };
    let members_dir = cfg.report_dir.join("members");
    std::fs::create_dir_all(&members_dir)
        .with_context(|| format!("cannot create {}", members_dir.display()))?;
    let history_path = cfg.report_dir.join("history.jsonl");
    let recorder = Arc::new(Recorder::new(HistoryWriter::create(&history_path)?));

    // Whatever happens, the history ends with why the run ended: even when this future
    // is dropped half-way (Ctrl-C, SIGTERM), the guard records it.
    let mut finish = FinishGuard(Some(recorder.clone()));
    let outcome = match drive(&cfg, &driver, budgets, &recorder, &members_dir).await {
        Ok(outcome) => outcome,
        Err(e) => {
            finish.finish(format!("error: {e:#}"));
            return Err(e);
        }
    };
    finish.finish(outcome);
    eprintln!(
        "[{} {}] {:>5.1}s done; checking",
        sc.name,
        cfg.protocol,
        started.elapsed().as_secs_f64()
    );

    let records = read_history(&history_path)?;
    let verdict = check::check(&records);
    report::write(&cfg.report_dir, &verdict)?;
    Ok(verdict)
}

/// Records `run_finished` exactly once: with the outcome, or as interrupted if the run
/// is dropped before it has one.
struct FinishGuard(Option<Arc<Recorder>>);

impl FinishGuard {
    fn finish(&mut self, outcome: String) {
        if let Some(r) = self.0.take() {
            r.record(None, Event::RunFinished { outcome });
        }
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.finish("interrupted: the run was stopped before it finished".into());
    }
}

/// Drives the scenario from broker start to clean shutdown; returns the run's outcome
/// ("completed", or why it stalled).
async fn drive(
    cfg: &RunConfig,
    driver: &DriverCommand,
    budgets: BTreeMap<String, Budget>,
    recorder: &Arc<Recorder>,
    members_dir: &Path,
) -> Result<String> {
    let started = Instant::now();
    let sc = &cfg.scenario;
    let flags = protocol_flags(&cfg.protocol)?;
    let progress = |what: &str| {
        eprintln!(
            "[{} {}] {:>5.1}s {what}",
            sc.name,
            cfg.protocol,
            started.elapsed().as_secs_f64()
        )
    };

    let run_started = Event::RunStarted(Box::new(RunInfo {
        scenario: sc.name.clone(),
        protocol: cfg.protocol.clone(),
        broker: cfg.broker.clone(),
        seed: cfg.seed,
        topic: sc.topic.clone(),
        partitions: sc.partitions,
        group: sc.group.clone(),
        consumer: sc.consumer.clone(),
        budgets,
        expectations: Expectations {
            final_balanced_over: sc.final_balanced_over.clone(),
        },
        replay: cfg.replay.clone(),
        cell_expectations: cell_expectations(&cfg.protocol, sc.fault_kinds())?,
        known_deviations: known_deviations(&cfg.broker, &cfg.protocol, sc.fault_kinds())?,
    }));
    // A protocol the broker does not implement: reported skipped, with the reason.
    if let Some(why) = cluster::lacks_protocol(&cfg.broker, &cfg.protocol) {
        recorder.record(None, run_started);
        progress(&format!("skipped: {why}"));
        return Ok(format!("skipped: {why}"));
    }
    let started_cluster = cluster::start(
        &cfg.broker,
        &ClusterOptions {
            brokers: 3,
            initial_rebalance_delay_ms: 1000,
            consumer_session_timeout_ms: sc.consumer.session_timeout_ms as i32,
            consumer_heartbeat_interval_ms: sc.consumer.heartbeat_interval_ms as i32,
            log_dir: Some(cfg.report_dir.clone()),
        },
    );
    let cluster = match started_cluster {
        Ok(c) => c,
        // A broker this machine cannot run (an image absent and not pullable): the run
        // is reported skipped, with a history that says why.
        Err(e) if e.downcast_ref::<Unsupported>().is_some() => {
            recorder.record(None, run_started);
            progress(&format!("skipped: {e:#}"));
            return Ok(format!("skipped: {e:#}"));
        }
        Err(e) => return Err(e),
    };
    // The network first: a broker process starts advertising its proxy.
    let network = Network::front(cluster.as_ref()).await?;
    cluster.create_topic(&sc.topic, sc.partitions)?;
    for topic in sc.other_topics() {
        cluster.create_topic(topic, sc.partitions)?;
    }
    recorder.record(None, run_started);
    progress(&format!(
        "broker {} up at {}, clients through proxies {}",
        cfg.broker,
        cluster.bootstrap_servers(),
        network.bootstrap_servers()
    ));

    let producer = Producer::start(
        &network.bootstrap_servers(),
        &sc.topic,
        sc.partitions,
        sc.rate_per_sec,
        recorder.clone(),
    )?;
    let label = format!("{} {}", sc.name, cfg.protocol);
    let mut exec = Executor::new(
        sc,
        Targets {
            cluster: cluster.as_ref(),
            network: &network,
            recorder,
            driver,
            flags,
            members_dir,
        },
        label,
    );

    // A step that stalls or is skipped ends the steps but not the run: the history still
    // gets drained and checked, and the verdict says where the group got stuck.
    let mut ended: Option<String> = None;
    for (i, step) in sc.steps.iter().enumerate() {
        match exec.apply(i + 1, step).await? {
            StepOutcome::Done => {}
            StepOutcome::Stalled(why) => {
                ended = Some(format!("stalled: {why}"));
                break;
            }
            StepOutcome::Skipped(why) => {
                exec.progress(&format!("skipped: {why}"));
                ended = Some(format!("skipped: {why}"));
                break;
            }
        }
    }

    // Stop production and let the group drain what was acked.
    tokio::task::spawn_blocking(move || producer.stop()).await??;
    exec.progress("production stopped; draining");
    let await_timeout = Duration::from_millis(sc.await_timeout_ms);
    // A skipped fault leaves a healthy group: drain it so the checks see every record.
    let drain = ended.as_deref().is_none_or(|e| e.starts_with("skipped: "));
    if drain {
        if let Waited::TimedOut(state) = recorder.wait_for(await_timeout, |v| v.drained()).await? {
            ended = Some(format!(
                "stalled: the group did not drain within {} ms: {state}",
                sc.await_timeout_ms
            ));
        }
    } else {
        // A stalled group still drains what it owns, so the loss check can tell records
        // stranded on unowned partitions from records an owner skipped.
        recorder
            .wait_for(await_timeout, |v| v.drained_where_owned())
            .await?;
    }

    // Clean shutdown of every member still running.
    if let Some(n) = exec.terminate(&exec.running()).await?.first() {
        ended.get_or_insert(format!(
            "stalled: {n} did not shut down within {SHUTDOWN_TIMEOUT:?} of SIGTERM"
        ));
    }
    if let Some(msg) = recorder.broken() {
        bail!("{msg}");
    }
    Ok(ended.unwrap_or_else(|| "completed".to_owned()))
}
