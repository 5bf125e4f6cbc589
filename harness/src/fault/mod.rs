//! The fault executor: applies a scenario's steps to the running group. Every fault is
//! recorded in the history (`fault_injected`, and `fault_healed` where it ends) on the
//! same clock as the events it causes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client::{DriverCommand, Member, MemberSpec, ProtocolFlags};
use crate::cluster::{Cluster, Unsupported};
use crate::history::{Event, Fault};
use crate::network::{Network, COORDINATOR_APIS};
use crate::proxy::{api, Rule};
use crate::run::{Recorder, Waited};
use crate::scenario::{Scenario, Step};

/// Deadlines for the harness's own bookkeeping (not the system under test's budgets).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a step ended, when it did not fail outright.
#[derive(Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Done,
    /// The group did not reach the awaited state; the run drains, checks and reports.
    Stalled(String),
    /// The step needs what the driver or broker lacks: the cell is reported skipped.
    Skipped(String),
}

pub struct Executor<'a> {
    pub scenario: &'a Scenario,
    pub cluster: &'a dyn Cluster,
    pub network: &'a Network,
    pub recorder: &'a Arc<Recorder>,
    pub driver: &'a DriverCommand,
    pub flags: ProtocolFlags,
    pub members_dir: &'a Path,
    pub members: BTreeMap<String, Member>,
    faults: usize,
    started: Instant,
    label: String,
}

/// What the executor acts on: the brokers, the paths to them, and the members.
pub struct Targets<'a> {
    pub cluster: &'a dyn Cluster,
    pub network: &'a Network,
    pub recorder: &'a Arc<Recorder>,
    pub driver: &'a DriverCommand,
    pub flags: ProtocolFlags,
    pub members_dir: &'a Path,
}

impl<'a> Executor<'a> {
    pub fn new(scenario: &'a Scenario, targets: Targets<'a>, label: String) -> Self {
        let Targets {
            cluster,
            network,
            recorder,
            driver,
            flags,
            members_dir,
        } = targets;
        Self {
            scenario,
            cluster,
            network,
            recorder,
            driver,
            flags,
            members_dir,
            members: BTreeMap::new(),
            faults: 0,
            started: Instant::now(),
            label,
        }
    }

    pub fn progress(&self, what: &str) {
        eprintln!(
            "[{}] {:>5.1}s {what}",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Applies one step (`index` is 1-based, for messages).
    pub async fn apply(&mut self, index: usize, step: &Step) -> Result<StepOutcome> {
        let sc = self.scenario;
        let id = step.fault_kind(sc.consumer.session_timeout_ms).map(|kind| {
            self.faults += 1;
            (format!("f{}", self.faults), kind)
        });
        let inject = |target: Option<&str>| {
            if let Some((id, kind)) = &id {
                self.recorder.record(
                    None,
                    Event::FaultInjected(Fault {
                        id: id.clone(),
                        kind: (*kind).to_owned(),
                        target: target.map(str::to_owned),
                    }),
                );
            }
        };
        let heal = || {
            if let Some((id, _)) = &id {
                self.recorder
                    .record(None, Event::FaultHealed { id: id.clone() });
            }
        };
        match step {
            Step::Start(names) => {
                self.start(names).await?;
                self.progress(&format!("started {}", names.join(", ")));
            }
            Step::AwaitBalanced(names) => return self.await_balanced(index, names).await,
            Step::Crash(name) => {
                inject(Some(name));
                self.member(name)?.kill()?;
                self.progress(&format!("crashed {name} (SIGKILL)"));
            }
            Step::Join(name) => {
                inject(Some(name));
                self.start(std::slice::from_ref(name)).await?;
                self.progress(&format!("{name} joined"));
            }
            Step::Leave(name) => {
                inject(Some(name));
                self.stop(std::slice::from_ref(name)).await?;
                self.progress(&format!("{name} left (SIGTERM)"));
            }
            Step::ScaleDown(names) => {
                inject(Some(&names.join(",")));
                self.stop(names).await?;
                self.progress(&format!("scaled down {}", names.join(", ")));
            }
            Step::Restart(name) => {
                inject(Some(name));
                self.restart(name).await?;
                heal();
                self.progress(&format!("restarted {name}"));
            }
            Step::RollingBounce(names) => {
                inject(None);
                for name in names {
                    self.restart(name).await?;
                    let all = self.running();
                    if let StepOutcome::Stalled(why) = self.await_balanced(index, &all).await? {
                        return Ok(StepOutcome::Stalled(why));
                    }
                }
                heal();
                self.progress(&format!("bounced {}", names.join(", ")));
            }
            Step::Pause { member, ms } => {
                inject(Some(member));
                self.member(member)?.pause()?;
                // The fault's own duration: a schedule, not a wait for the system.
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                self.member(member)?.resume()?;
                heal();
                self.progress(&format!("paused {member} for {ms} ms"));
            }
            Step::LongPoll { member, ms } => {
                if let Some(why) = self.lacks_capability(member, "stall", "long-poll") {
                    return Ok(StepOutcome::Skipped(why));
                }
                inject(Some(member));
                self.member(member)?
                    .command(&serde_json::json!({"cmd": "stall", "ms": ms}))
                    .await?;
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                heal();
                self.progress(&format!("{member} stalled for {ms} ms"));
            }
            Step::BrokerBounce { broker, ms } => {
                let down = self
                    .broker_fault(*broker, *ms, BrokerFault::Down, || {
                        inject(Some(&format!("broker-{broker}")))
                    })
                    .await?;
                if let Err(unsupported) = down {
                    return Ok(StepOutcome::Skipped(unsupported.to_string()));
                }
                heal();
                self.progress(&format!("broker {broker} down for {ms} ms"));
            }
            Step::BrokerPause { broker, ms } => {
                let paused = self
                    .broker_fault(*broker, *ms, BrokerFault::Pause, || {
                        inject(Some(&format!("broker-{broker}")))
                    })
                    .await?;
                if let Err(unsupported) = paused {
                    return Ok(StepOutcome::Skipped(unsupported.to_string()));
                }
                heal();
                self.progress(&format!("broker {broker} paused for {ms} ms"));
            }
            Step::CoordinatorMove { broker } => {
                inject(Some(&format!("broker-{broker}")));
                if let Err(e) = self.cluster.move_coordinator(&sc.group, *broker) {
                    return Ok(StepOutcome::Skipped(e.to_string()));
                }
                self.progress(&format!("coordinator moved to broker {broker}"));
            }
            Step::Partition { member, ms } => {
                let rules = [Rule::blackhole().client_id(member)];
                let held = match self
                    .network_fault(&rules, *ms, || inject(Some(member)))
                    .await?
                {
                    Ok(frames) => frames,
                    Err(unsupported) => return Ok(StepOutcome::Skipped(unsupported.to_string())),
                };
                heal();
                self.progress(&format!(
                    "{member} cut off for {ms} ms ({held} frames held, delivered on heal)"
                ));
            }
            Step::HeartbeatDrop { member, ms } => {
                let heartbeat = if self.flags.group_protocol == "consumer" {
                    api::CONSUMER_GROUP_HEARTBEAT
                } else {
                    api::HEARTBEAT
                };
                let rules = [Rule::drop_api(heartbeat).client_id(member)];
                let dropped = match self
                    .network_fault(&rules, *ms, || inject(Some(member)))
                    .await?
                {
                    Ok(frames) => frames,
                    Err(unsupported) => return Ok(StepOutcome::Skipped(unsupported.to_string())),
                };
                heal();
                self.progress(&format!(
                    "{member}'s heartbeats dropped for {ms} ms ({dropped} dropped)"
                ));
            }
            Step::CoordinatorLatency {
                ms,
                latency_ms,
                jitter_ms,
            } => {
                let rules: Vec<Rule> = COORDINATOR_APIS
                    .iter()
                    .map(|&a| Rule::latency(*latency_ms, *jitter_ms).api_key(a))
                    .collect();
                let delayed = match self.network_fault(&rules, *ms, || inject(None)).await? {
                    Ok(frames) => frames,
                    Err(unsupported) => return Ok(StepOutcome::Skipped(unsupported.to_string())),
                };
                heal();
                self.progress(&format!(
                    "group requests delayed {latency_ms}±{jitter_ms} ms each way for {ms} ms ({delayed} frames)"
                ));
            }
            Step::AddPartitions { partitions } => {
                if let Err(e) = self.cluster.add_partitions(&sc.topic, *partitions) {
                    return Ok(StepOutcome::Skipped(e.to_string()));
                }
                inject(None);
                self.progress(&format!("{} grown to {partitions} partitions", sc.topic));
            }
            Step::Subscribe { member, topics } => {
                if let Some(why) = self.lacks_capability(member, "subscribe", "subscription-change")
                {
                    return Ok(StepOutcome::Skipped(why));
                }
                inject(Some(member));
                self.member(member)?
                    .command(&serde_json::json!({"cmd": "subscribe", "topics": topics}))
                    .await?;
                self.progress(&format!("{member} subscribed to {}", topics.join(", ")));
            }
        }
        Ok(StepOutcome::Done)
    }

    /// Why a fault cannot run on `member`'s driver, when it lacks `capability`.
    fn lacks_capability(&self, member: &str, capability: &str, fault: &str) -> Option<String> {
        let caps = self
            .recorder
            .view(|v| v.capabilities.get(member).cloned())
            .unwrap_or_default();
        (!caps.iter().any(|c| c == capability)).then(|| {
            format!(
                "{fault} needs the driver capability `{capability}`; {member}'s driver announced {caps:?}"
            )
        })
    }

    /// Takes `broker` down or pauses it for `ms`, then brings it back; or why this
    /// cluster cannot (nothing was injected). Failing to bring it back is an error.
    async fn broker_fault(
        &self,
        broker: i32,
        ms: u64,
        fault: BrokerFault,
        inject: impl FnOnce(),
    ) -> Result<Result<(), Unsupported>> {
        let started = match fault {
            BrokerFault::Down => self.cluster.broker_down(broker),
            BrokerFault::Pause => self.cluster.pause_broker(broker),
        };
        if let Err(unsupported) = started {
            return Ok(Err(unsupported));
        }
        inject();
        // The fault's own duration: a schedule, not a wait for the system.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        match fault {
            BrokerFault::Down => self.cluster.broker_up(broker),
            BrokerFault::Pause => self.cluster.resume_broker(broker),
        }
        .map_err(anyhow::Error::new)?;
        Ok(Ok(()))
    }

    /// Installs `rules` on every proxy for `ms`, then removes them; returns the frames
    /// they acted on, or why this network cannot inject them (no proxies). A fault that
    /// touched no frame did not happen (e.g. a driver that ignores its client.id): an
    /// error.
    async fn network_fault(
        &self,
        rules: &[Rule],
        ms: u64,
        inject: impl FnOnce(),
    ) -> Result<Result<u64, Unsupported>> {
        let injected = match self.network.inject(rules) {
            Ok(injected) => injected,
            Err(unsupported) => return Ok(Err(unsupported)),
        };
        inject();
        // The fault's own duration: a schedule, not a wait for the system.
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let hits = self.network.frames_hit(&injected);
        self.network.heal(injected);
        if hits == 0 {
            bail!(
                "the network fault {rules:?} matched no frame in {ms} ms: the member's connections do not carry the client.id the harness set"
            );
        }
        Ok(Ok(hits))
    }

    /// Members whose process is still running, in name order.
    pub fn running(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| m.has_exited().is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn member(&self, name: &str) -> Result<&Member> {
        self.members
            .get(name)
            .with_context(|| format!("no member {name}"))
    }

    async fn await_balanced(&self, index: usize, names: &[String]) -> Result<StepOutcome> {
        let sc = self.scenario;
        let timeout = Duration::from_millis(sc.await_timeout_ms);
        let since = crate::history::now_ms();
        match self
            .recorder
            .wait_for(timeout, |v| {
                v.balanced_over(names, &sc.topic, sc.partitions, since)
            })
            .await?
        {
            Waited::Done => {
                self.progress(&format!("balanced over {}", names.join(", ")));
                Ok(StepOutcome::Done)
            }
            Waited::TimedOut(state) => Ok(StepOutcome::Stalled(format!(
                "step {index} (await_balanced {}) did not happen within {} ms: {state}",
                names.join(","),
                sc.await_timeout_ms
            ))),
        }
    }

    /// Starts members and waits for each one's `startup_complete`.
    async fn start(&mut self, names: &[String]) -> Result<()> {
        for n in names {
            let spec = self.spec(n)?;
            let member =
                Member::spawn(self.driver, &spec, self.members_dir, self.recorder.clone())?;
            self.members.insert(n.clone(), member);
        }
        await_startup(self.recorder, names, self.members_dir).await
    }

    /// SIGTERM, then waits for the processes to end; those still running past the
    /// deadline are killed and returned.
    pub async fn terminate(&self, names: &[String]) -> Result<Vec<String>> {
        for n in names {
            self.member(n)?.terminate()?;
        }
        let mut stragglers = Vec::new();
        for n in names {
            let m = self.member(n)?;
            if tokio::time::timeout(SHUTDOWN_TIMEOUT, m.wait())
                .await
                .is_err()
            {
                m.kill()?;
                m.wait().await;
                stragglers.push(n.clone());
            }
        }
        Ok(stragglers)
    }

    /// A clean stop as a fault step: a member that ignores SIGTERM fails the step.
    async fn stop(&mut self, names: &[String]) -> Result<()> {
        if let Some(n) = self.terminate(names).await?.first() {
            bail!("{n} did not shut down within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
        }
        Ok(())
    }

    async fn restart(&mut self, name: &str) -> Result<()> {
        self.stop(&[name.to_owned()]).await?;
        self.start(&[name.to_owned()]).await
    }

    /// A member's command-line spec and its properties file: its client.id (so faults
    /// can target its connections) and the client-side timeouts. Under KIP-848 the
    /// broker owns the session timeout and heartbeat interval.
    fn spec(&self, name: &str) -> Result<MemberSpec> {
        let sc = self.scenario;
        let mut props = format!(
            "client.id={name}\nmax.poll.interval.ms={}\n",
            sc.consumer.max_poll_interval_ms
        );
        if self.flags.group_protocol == "classic" {
            props.push_str(&format!(
                "heartbeat.interval.ms={}\n",
                sc.consumer.heartbeat_interval_ms
            ));
        }
        let consumer_config: PathBuf = self.members_dir.join(format!("{name}.properties"));
        std::fs::write(&consumer_config, props)
            .with_context(|| format!("cannot write {}", consumer_config.display()))?;
        Ok(MemberSpec {
            name: name.to_owned(),
            bootstrap: self.network.bootstrap_servers(),
            topic: sc.topic.clone(),
            group: sc.group.clone(),
            protocol: self.flags.clone(),
            session_timeout_ms: sc.consumer.session_timeout_ms,
            consumer_config,
        })
    }
}

/// Waits for `startup_complete` from each member; a driver that exits first is an
/// error quoting the end of its stderr.
async fn await_startup(recorder: &Recorder, names: &[String], log_dir: &Path) -> Result<()> {
    let outcome = recorder
        .wait_for(STARTUP_TIMEOUT, |v| {
            names.iter().all(|n| v.started_now(n)) || names.iter().any(|n| v.exited.contains_key(n))
        })
        .await?;
    let exited: Vec<(String, crate::run::ExitStatus)> = recorder.view(|v| {
        names
            .iter()
            .filter(|n| !v.started_now(n))
            .filter_map(|n| v.exited.get(n).map(|e| (n.clone(), *e)))
            .collect()
    });
    if let Some((name, (code, signal))) = exited.into_iter().next() {
        let log = log_dir.join(format!("{name}.stderr.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text
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

/// The two ways a broker fault takes a broker out of service.
#[derive(Clone, Copy)]
enum BrokerFault {
    /// Stopped (refuses connections; a real broker is killed) until brought up.
    Down,
    /// Frozen with its connections open until resumed.
    Pause,
}
