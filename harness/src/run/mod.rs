//! One run of one scenario: start the cluster, the producer and the members, execute the
//! steps, drain, shut down cleanly, then check the history and write the reports.

mod ticker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::check::{self, Verdict};
use crate::client::{protocol_flags, DriverCommand};
use crate::cluster::{self, ClusterOptions, Unsupported};
use crate::fault::{Executor, StepOutcome, Targets, SHUTDOWN_TIMEOUT};
use crate::history::{
    read_history, Budget, Event, Expectations, FaultKind, HistoryWriter, Protocol, Recorder,
    RunInfo, Waited,
};
use crate::network::Network;
use crate::produce::Producer;
use crate::report;
use crate::scenario::{cell_expectations, known_deviations, Budgets, Scenario};

pub struct RunConfig {
    pub scenario: Scenario,
    pub protocol: Protocol,
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
    let budgets = if sc.chaos {
        Budgets::chaos(sc.fault_kinds())
    } else {
        cfg.budgets
            .resolve(&cfg.broker, cfg.protocol, sc.fault_kinds(), &sc.consumer)?
    };
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
    report::write_page(&cfg.report_dir, &verdict, &check::Model::build(&records))?;
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
/// ("completed", or why it stalled or was skipped).
async fn drive(
    cfg: &RunConfig,
    driver: &DriverCommand,
    budgets: BTreeMap<FaultKind, Budget>,
    recorder: &Arc<Recorder>,
    members_dir: &Path,
) -> Result<String> {
    let sc = &cfg.scenario;
    let bed = match Testbed::start(cfg, budgets, recorder).await? {
        Ok(bed) => bed,
        Err(skipped) => return Ok(skipped),
    };
    let label = format!("{} {}", sc.name, cfg.protocol);
    let mut exec = Executor::new(
        sc,
        Targets {
            cluster: bed.cluster.as_ref(),
            network: &bed.network,
            recorder,
            driver,
            flags: protocol_flags(cfg.protocol),
            members_dir,
        },
        label,
    );

    // A step that stalls or is skipped ends the steps but not the run: the history still
    // gets drained and checked, and the verdict says where the group got stuck.
    let mut ended: Option<String> = None;
    for (i, step) in sc.steps.iter().enumerate() {
        match exec.apply_scheduled(i + 1, step).await? {
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
    // Scheduled faults still in force run their course first.
    exec.heal_all().await?;
    bed.stop_production().await?;
    exec.progress("production stopped; draining");
    if let Some(stalled) = drain(recorder, sc, ended.as_deref()).await? {
        ended = Some(stalled);
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

/// Lets the group consume what was acked once production stopped. A healthy group (one
/// that completed, or stopped at a fault it cannot inject) must drain all of it; a
/// stalled one drains what it owns, so the loss check can tell records stranded on
/// unowned partitions from records an owner skipped. Returns a stall, if the drain was
/// one.
pub(crate) async fn drain(
    recorder: &Recorder,
    sc: &Scenario,
    ended: Option<&str>,
) -> Result<Option<String>> {
    let await_timeout = Duration::from_millis(sc.await_timeout_ms);
    let healthy = ended.is_none_or(|e| e.starts_with("skipped: "));
    // Nobody left to consume: the wait cannot succeed, so it ends at once.
    let waited = recorder
        .wait_for(await_timeout, |v| {
            v.running.is_empty()
                || if healthy {
                    v.drained()
                } else {
                    v.drained_where_owned()
                }
        })
        .await?;
    Ok(match waited {
        Waited::TimedOut(state) if healthy => Some(format!(
            "stalled: the group did not drain within {} ms: {state}",
            sc.await_timeout_ms
        )),
        _ => None,
    })
}

/// What every run stands on: the brokers, the proxies in front of them, the topics, the
/// producer, and the ticker that watches for a starved machine.
pub(crate) struct Testbed {
    pub cluster: Box<dyn crate::cluster::Cluster>,
    pub network: Network,
    /// Taken when production stops.
    producer: std::sync::Mutex<Option<Producer>>,
    _ticker: ticker::Ticker,
}

impl Testbed {
    /// Starts everything and records `run_started`. `Err(reason)` inside: the run is
    /// skipped (the broker lacks the protocol, or cannot run on this machine), with a
    /// history that says why.
    pub(crate) async fn start(
        cfg: &RunConfig,
        budgets: BTreeMap<FaultKind, Budget>,
        recorder: &Arc<Recorder>,
    ) -> Result<Result<Testbed, String>> {
        let started = Instant::now();
        let sc = &cfg.scenario;
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
            protocol: cfg.protocol,
            broker: cfg.broker.clone(),
            seed: cfg.seed,
            topic: sc.topic.clone(),
            partitions: sc.partitions,
            group: sc.group.clone(),
            consumer: sc.consumer.clone(),
            rate_per_sec: Some(sc.rate_per_sec),
            budgets,
            expectations: Expectations {
                final_balanced_over: sc.final_balanced_over.clone(),
            },
            replay: cfg.replay.clone(),
            // Overlapping chaos faults blur what each one's window must show.
            cell_expectations: if sc.chaos {
                BTreeMap::new()
            } else {
                cell_expectations(cfg.protocol, sc.fault_kinds())?
            },
            known_deviations: known_deviations(&cfg.broker, cfg.protocol, sc.fault_kinds())?,
            chaos: sc.chaos,
        }));
        // A protocol the broker does not implement: reported skipped, with the reason.
        if let Some(why) = cluster::lacks_protocol(&cfg.broker, cfg.protocol) {
            recorder.record(None, run_started);
            progress(&format!("skipped: {why}"));
            return Ok(Err(format!("skipped: {why}")));
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
            // A broker this machine cannot run (an image absent and not pullable).
            Err(e) if e.downcast_ref::<Unsupported>().is_some() => {
                recorder.record(None, run_started);
                progress(&format!("skipped: {e:#}"));
                return Ok(Err(format!("skipped: {e:#}")));
            }
            Err(e) => return Err(e),
        };
        // The network first: a broker process starts advertising its proxy.
        let network = Network::front(cluster.as_ref(), cfg.seed).await?;
        cluster.create_topic(&sc.topic, sc.partitions)?;
        for topic in sc.other_topics() {
            cluster.create_topic(topic, sc.partitions)?;
        }
        recorder.record(None, run_started);
        // Measures how late the harness's own timers run, so a starved machine is seen.
        let ticker = ticker::start(recorder.clone());
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
        Ok(Ok(Testbed {
            cluster,
            network,
            producer: std::sync::Mutex::new(Some(producer)),
            _ticker: ticker,
        }))
    }

    /// Stops sending and waits for every outstanding ack (`production_stopped`).
    pub(crate) async fn stop_production(&self) -> Result<()> {
        let producer = self
            .producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(p) = producer {
            tokio::task::spawn_blocking(move || p.stop()).await??;
        }
        Ok(())
    }
}
