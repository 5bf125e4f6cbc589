//! One run of one scenario: start the cluster, the producer and the members, execute the
//! steps, drain, shut down cleanly, then check the history and write the reports.

mod recorder;
mod view;

pub use recorder::{Recorder, Waited};
pub use view::GroupView;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::check::{self, Verdict};
use crate::client::{protocol_flags, DriverCommand, Member, MemberSpec};
use crate::cluster::{self, ClusterOptions};
use crate::history::{read_history, Budget, Event, Expectations, Fault, HistoryWriter, RunInfo};
use crate::produce::Producer;
use crate::report;
use crate::scenario::{known_deviations, Budgets, Scenario, Step};

/// Deadlines for the harness's own bookkeeping (not the system under test's budgets).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

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

    // Whatever happens, the history ends with why the run ended.
    let outcome = match drive(&cfg, &driver, budgets, &recorder, &members_dir).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let outcome = format!("error: {e:#}");
            recorder.record(None, Event::RunFinished { outcome });
            return Err(e);
        }
    };
    recorder.record(None, Event::RunFinished { outcome });
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

    let cluster = cluster::start(
        &cfg.broker,
        &ClusterOptions {
            brokers: 3,
            initial_rebalance_delay_ms: 1000,
            consumer_session_timeout_ms: sc.consumer.session_timeout_ms as i32,
            consumer_heartbeat_interval_ms: sc.consumer.heartbeat_interval_ms as i32,
        },
    )?;
    cluster.create_topic(&sc.topic, sc.partitions)?;
    recorder.record(
        None,
        Event::RunStarted(RunInfo {
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
            known_deviations: known_deviations(&cfg.broker, &cfg.protocol, sc.fault_kinds())?,
        }),
    );
    progress(&format!(
        "broker {} up at {}",
        cfg.broker,
        cluster.bootstrap_servers()
    ));

    // Each member gets its own properties file: its client.id (so faults can target its
    // connections) and the client-side timeouts. Under KIP-848 the broker owns the
    // session timeout and heartbeat interval, so they are not client settings there.
    let spec = |name: &str| -> Result<MemberSpec> {
        let mut props = format!(
            "client.id={name}\nmax.poll.interval.ms={}\n",
            sc.consumer.max_poll_interval_ms
        );
        if flags.group_protocol == "classic" {
            props.push_str(&format!(
                "heartbeat.interval.ms={}\n",
                sc.consumer.heartbeat_interval_ms
            ));
        }
        let consumer_config = members_dir.join(format!("{name}.properties"));
        std::fs::write(&consumer_config, props)
            .with_context(|| format!("cannot write {}", consumer_config.display()))?;
        Ok(MemberSpec {
            name: name.to_owned(),
            bootstrap: cluster.bootstrap_servers(),
            topic: sc.topic.clone(),
            group: sc.group.clone(),
            protocol: flags.clone(),
            session_timeout_ms: sc.consumer.session_timeout_ms,
            consumer_config,
        })
    };

    let producer = Producer::start(
        &cluster.bootstrap_servers(),
        &sc.topic,
        sc.partitions,
        sc.rate_per_sec,
        recorder.clone(),
    )?;
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    let mut faults = 0;
    let await_timeout = Duration::from_millis(sc.await_timeout_ms);

    // Steps; a wait that times out ends the steps but not the run: the history still gets
    // drained and checked, and the verdict says where the group got stuck.
    let mut stalled: Option<String> = None;
    for (i, step) in sc.steps.iter().enumerate() {
        let fault_id = step.fault_kind().map(|_| {
            faults += 1;
            format!("f{faults}")
        });
        let inject = |kind: &str, target: &str| {
            recorder.record(
                None,
                Event::FaultInjected(Fault {
                    id: fault_id.clone().unwrap_or_default(),
                    kind: kind.to_owned(),
                    target: Some(target.to_owned()),
                }),
            )
        };
        match step {
            Step::Start(names) => {
                for n in names {
                    members.insert(
                        n.clone(),
                        Member::spawn(driver, &spec(n)?, members_dir, recorder.clone())?,
                    );
                }
                await_startup(recorder, names, members_dir).await?;
                progress(&format!("started {}", names.join(", ")));
            }
            Step::AwaitBalanced(names) => {
                let (topic, parts) = (sc.topic.clone(), sc.partitions);
                match recorder
                    .wait_for(await_timeout, |v| v.balanced_over(names, &topic, parts))
                    .await?
                {
                    Waited::Done => progress(&format!("balanced over {}", names.join(", "))),
                    Waited::TimedOut(state) => {
                        stalled = Some(format!(
                            "step {} (await_balanced {}) did not happen within {} ms: {state}",
                            i + 1,
                            names.join(","),
                            sc.await_timeout_ms
                        ));
                        break;
                    }
                }
            }
            Step::Crash(name) => {
                inject("crash", name);
                members[name].kill()?;
                progress(&format!("crashed {name} (SIGKILL)"));
            }
            Step::Join(name) => {
                inject("join", name);
                members.insert(
                    name.clone(),
                    Member::spawn(driver, &spec(name)?, members_dir, recorder.clone())?,
                );
                await_startup(recorder, std::slice::from_ref(name), members_dir).await?;
                progress(&format!("{name} joined"));
            }
        }
    }

    // Stop production and let the group drain what was acked.
    tokio::task::spawn_blocking(move || producer.stop()).await??;
    progress("production stopped; draining");
    if stalled.is_none() {
        if let Waited::TimedOut(state) = recorder.wait_for(await_timeout, |v| v.drained()).await? {
            stalled = Some(format!(
                "the group did not drain within {} ms: {state}",
                sc.await_timeout_ms
            ));
        }
    }

    // Clean shutdown of every member still running.
    let running: Vec<&Member> = members
        .values()
        .filter(|m| m.has_exited().is_none())
        .collect();
    for m in &running {
        m.terminate()?;
    }
    for m in &running {
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, m.wait())
            .await
            .is_err()
        {
            stalled.get_or_insert(format!(
                "{} did not shut down within {:?} of SIGTERM",
                m.name, SHUTDOWN_TIMEOUT
            ));
            m.kill()?;
            m.wait().await;
        }
    }
    if let Some(msg) = recorder.broken() {
        bail!("{msg}");
    }
    Ok(match stalled {
        None => "completed".to_owned(),
        Some(why) => format!("stalled: {why}"),
    })
}

/// Waits for `startup_complete` from each member; a driver that exits first is an
/// error quoting the end of its stderr.
async fn await_startup(
    recorder: &Recorder,
    names: &[String],
    log_dir: &std::path::Path,
) -> Result<()> {
    let outcome = recorder
        .wait_for(STARTUP_TIMEOUT, |v| {
            names.iter().all(|n| v.started.contains(n))
                || names.iter().any(|n| v.exited.contains_key(n))
        })
        .await?;
    let exited: Vec<(String, view::ExitStatus)> = recorder.view(|v| {
        names
            .iter()
            .filter(|n| !v.started.contains(*n))
            .filter_map(|n| v.exited.get(n).map(|e| (n.clone(), *e)))
            .collect()
    });
    if let Some((name, (code, signal))) = exited.into_iter().next() {
        let log = log_dir.join(format!("{name}.stderr.log"));
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "driver for {name} exited at startup ({}) before startup_complete; last lines of {}:\n{}",
            match (code, signal) {
                (Some(c), _) => format!("exit code {c}"),
                (_, Some(s)) => format!("signal {s}"),
                _ => "no status".to_owned(),
            },
            log.display(),
            tail.join("\n")
        );
    }
    if let Waited::TimedOut(_) = outcome {
        bail!(
            "members {} did not report startup_complete within {STARTUP_TIMEOUT:?}",
            names.join(", ")
        );
    }
    Ok(())
}
