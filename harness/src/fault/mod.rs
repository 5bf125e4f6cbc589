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
use crate::history::{Event, Fault, FaultKind, Recorder, Waited};
use crate::network::{Network, COORDINATOR_APIS};
use crate::proxy::{api, Rule};
use crate::scenario::{Scenario, Scheduled, Step};

/// Deadlines for the harness's own bookkeeping (not the system under test's budgets).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
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
    /// The schedule's zero: scheduled steps run at offsets from here.
    started: Instant,
    label: String,
    /// Heals of scheduled faults still in force, due at their instant.
    pending: Vec<Pending>,
}

/// A scheduled fault's end, waiting for its time.
struct Pending {
    due: tokio::time::Instant,
    id: String,
    kind: FaultKind,
    heal: Heal,
}

/// How a lasting fault ends.
enum Heal {
    /// SIGCONT a paused member (unless it has died meanwhile).
    Resume(String),
    /// The driver ends its own stall; only the heal is recorded.
    StallOver,
    Broker(i32, BrokerFault),
    Network(crate::network::Injected),
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

/// One fault being injected: its id and kind, recorded when it starts and heals.
struct Injection<'r> {
    recorder: &'r Recorder,
    id: String,
    kind: FaultKind,
}

impl Injection<'_> {
    fn inject(&self, target: Option<&str>) {
        self.recorder.record(
            None,
            Event::FaultInjected(Fault {
                id: self.id.clone(),
                kind: self.kind,
                target: target.map(str::to_owned),
            }),
        );
    }

    fn heal(&self) {
        self.recorder.record(
            None,
            Event::FaultHealed {
                id: self.id.clone(),
            },
        );
    }
}

type Outcome = Result<StepOutcome>;

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
            pending: Vec::new(),
        }
    }

    pub fn progress(&self, what: &str) {
        eprintln!(
            "[{}] {:>5.1}s {what}",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Applies one step of a scenario (`index` is 1-based, for messages). A scheduled
    /// step waits for its time, healing earlier scheduled faults as they come due, and a
    /// lasting fault it injects heals in the background; an unscheduled step first lets
    /// every scheduled fault heal, then runs in line.
    pub async fn apply_scheduled(&mut self, index: usize, s: &Scheduled) -> Outcome {
        match s.at_ms {
            Some(at) => {
                let due = tokio::time::Instant::from_std(self.started + Duration::from_millis(at));
                self.sleep_until(due).await?;
                self.run_step(index, &s.step, true).await
            }
            None => {
                self.heal_all().await?;
                self.run_step(index, &s.step, false).await
            }
        }
    }

    /// Applies one step in line (`index` is 1-based, for messages).
    pub async fn apply(&mut self, index: usize, step: &Step) -> Outcome {
        self.run_step(index, step, false).await
    }

    async fn run_step(&mut self, index: usize, step: &Step, background: bool) -> Outcome {
        let kind = match step {
            Step::Start(names) => return self.start(names).await,
            Step::AwaitBalanced(names) => return self.await_balanced(index, names).await,
            fault => fault
                .fault_kind(self.scenario.consumer.session_timeout_ms)
                .expect("every other step is a fault"),
        };
        // A member that died on its own (a client crash) cannot take a fault: the run
        // ends here, drained and checked, and members_alive names the death.
        if let Some(why) = self.died_before(&format!("step {index} ({kind})"), &step.targets()) {
            return Ok(StepOutcome::Stalled(why));
        }
        self.faults += 1;
        let f = &Injection {
            recorder: self.recorder,
            id: format!("f{}", self.faults),
            kind,
        };
        match step {
            Step::Start(_) | Step::AwaitBalanced(_) => unreachable!("handled above"),
            Step::Crash(name) => self.crash(f, name),
            Step::Join(name) => self.join(f, name).await,
            Step::Leave(name) => self.leave(f, std::slice::from_ref(name)).await,
            Step::ScaleDown(names) => self.leave(f, names).await,
            Step::Restart(name) => self.restart_step(f, name).await,
            Step::RollingBounce(names) => self.rolling_bounce(f, index, names).await,
            Step::Pause { member, ms } => self.pause(f, member, *ms, background).await,
            Step::LongPoll { member, ms } => self.long_poll(f, member, *ms, background).await,
            Step::BrokerBounce { broker, ms } => {
                let fault = (*broker, BrokerFault::Down);
                self.broker_fault(f, fault, *ms, background).await
            }
            Step::BrokerPause { broker, ms } => {
                let fault = (*broker, BrokerFault::Pause);
                self.broker_fault(f, fault, *ms, background).await
            }
            Step::CoordinatorMove { broker } => self.coordinator_move(f, *broker),
            Step::Partition { member, ms } => {
                let rules = [Rule::blackhole().client_id(member)];
                self.network_fault(f, Some(member), &rules, (*ms, background))
                    .await
            }
            Step::HeartbeatDrop { member, ms } => {
                let heartbeat = if self.flags.group_protocol == "consumer" {
                    api::CONSUMER_GROUP_HEARTBEAT
                } else {
                    api::HEARTBEAT
                };
                // Held, not dropped: a network never drops one request out of a TCP
                // stream, and clients that match responses by order break on that.
                let rules = [Rule::stall_from(heartbeat).client_id(member)];
                self.network_fault(f, Some(member), &rules, (*ms, background))
                    .await
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
                self.network_fault(f, None, &rules, (*ms, background)).await
            }
            Step::AddPartitions { partitions } => self.add_partitions(f, *partitions),
            Step::Subscribe { member, topics } => self.subscribe(f, member, topics).await,
        }
    }

    fn crash(&self, f: &Injection<'_>, name: &str) -> Outcome {
        f.inject(Some(name));
        self.member(name)?.kill()?;
        self.progress(&format!("crashed {name} (SIGKILL)"));
        Ok(StepOutcome::Done)
    }

    async fn join(&mut self, f: &Injection<'_>, name: &String) -> Outcome {
        f.inject(Some(name));
        let outcome = self.start(std::slice::from_ref(name)).await?;
        self.progress(&format!("{name} joined"));
        Ok(outcome)
    }

    /// `leave` and `scale-down`: SIGTERM (commit, close) of one member or several at
    /// once.
    async fn leave(&mut self, f: &Injection<'_>, names: &[String]) -> Outcome {
        f.inject(Some(&names.join(",")));
        self.stop(names).await?;
        self.progress(&format!("{} left (SIGTERM)", names.join(", ")));
        Ok(StepOutcome::Done)
    }

    async fn restart_step(&mut self, f: &Injection<'_>, name: &str) -> Outcome {
        f.inject(Some(name));
        let outcome = self.restart(name).await?;
        f.heal();
        self.progress(&format!("restarted {name}"));
        Ok(outcome)
    }

    async fn rolling_bounce(
        &mut self,
        f: &Injection<'_>,
        index: usize,
        names: &[String],
    ) -> Outcome {
        f.inject(None);
        for name in names {
            let restarted = self.restart(name).await?;
            if restarted != StepOutcome::Done {
                return Ok(restarted);
            }
            let all = self.running();
            let settled = self.await_balanced(index, &all).await?;
            if settled != StepOutcome::Done {
                return Ok(settled);
            }
        }
        f.heal();
        self.progress(&format!("bounced {}", names.join(", ")));
        Ok(StepOutcome::Done)
    }

    async fn pause(
        &mut self,
        f: &Injection<'_>,
        member: &str,
        ms: u64,
        background: bool,
    ) -> Outcome {
        f.inject(Some(member));
        self.member(member)?.pause()?;
        self.progress(&format!("paused {member} for {ms} ms"));
        self.last(f, ms, Heal::Resume(member.to_owned()), background)
            .await
    }

    async fn long_poll(
        &mut self,
        f: &Injection<'_>,
        member: &str,
        ms: u64,
        background: bool,
    ) -> Outcome {
        if let Some(why) = self.lacks_capability(member, "stall", FaultKind::LongPoll) {
            return Ok(StepOutcome::Skipped(why));
        }
        f.inject(Some(member));
        let cmd = serde_json::json!({"cmd": "stall", "ms": ms});
        if let Some(why) = self.command(member, &cmd, f).await? {
            return Ok(StepOutcome::Stalled(why));
        }
        self.progress(&format!("{member} stalls for {ms} ms"));
        self.last(f, ms, Heal::StallOver, background).await
    }

    /// A lasting fault injected by `f` ends after `ms`: in the background (a scheduled
    /// step), or here, while other scheduled faults heal as they come due.
    async fn last(&mut self, f: &Injection<'_>, ms: u64, heal: Heal, background: bool) -> Outcome {
        let pending = Pending {
            due: tokio::time::Instant::now() + Duration::from_millis(ms),
            id: f.id.clone(),
            kind: f.kind,
            heal,
        };
        if background {
            self.pending.push(pending);
            return Ok(StepOutcome::Done);
        }
        self.sleep_until(pending.due).await?;
        self.heal(pending, true).await?;
        Ok(StepOutcome::Done)
    }

    /// Sleeps until `deadline`, healing scheduled faults as they come due.
    async fn sleep_until(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        loop {
            let next = self.pending.iter().map(|p| p.due).min();
            match next {
                Some(due) if due <= deadline => {
                    tokio::time::sleep_until(due).await;
                    self.heal_due().await?;
                }
                _ => {
                    tokio::time::sleep_until(deadline).await;
                    return Ok(());
                }
            }
        }
    }

    /// Heals every scheduled fault whose time has come, in order of their time.
    async fn heal_due(&mut self) -> Result<()> {
        let now = tokio::time::Instant::now();
        self.pending.sort_by_key(|p| p.due);
        while self.pending.first().is_some_and(|p| p.due <= now) {
            let p = self.pending.remove(0);
            self.heal(p, false).await?;
        }
        Ok(())
    }

    /// Lets every scheduled fault run its course and heal.
    pub async fn heal_all(&mut self) -> Result<()> {
        while let Some(due) = self.pending.iter().map(|p| p.due).min() {
            tokio::time::sleep_until(due).await;
            self.heal_due().await?;
        }
        Ok(())
    }

    /// Ends a lasting fault and records its heal. `strict`: a network fault that touched
    /// no frame is an error (a driver that ignores its client.id); a scheduled one may
    /// legitimately touch none (its member was already gone).
    async fn heal(&mut self, p: Pending, strict: bool) -> Result<()> {
        match p.heal {
            Heal::Resume(member) => {
                // A member crashed while paused has nothing to resume.
                if let Ok(m) = self.member(&member) {
                    if m.has_exited().is_none() {
                        m.resume()?;
                    }
                }
            }
            Heal::StallOver => {}
            Heal::Broker(broker, fault) => match fault {
                BrokerFault::Down => self.cluster.broker_up(broker),
                BrokerFault::Pause => self.cluster.resume_broker(broker),
            }
            .map_err(anyhow::Error::new)?,
            Heal::Network(injected) => {
                let hits = self.network.frames_hit(&injected);
                self.network.heal(injected);
                if hits == 0 && strict {
                    bail!(
                        "the network fault {} matched no frame: the member's connections do not carry the client.id the harness set",
                        p.kind
                    );
                }
            }
        }
        self.recorder
            .record(None, Event::FaultHealed { id: p.id.clone() });
        self.progress(&format!("{} {} healed", p.id, p.kind));
        Ok(())
    }

    fn coordinator_move(&self, f: &Injection<'_>, broker: i32) -> Outcome {
        if let Err(e) = self.cluster.move_coordinator(&self.scenario.group, broker) {
            return Ok(StepOutcome::Skipped(e.to_string()));
        }
        f.inject(Some(&format!("broker-{broker}")));
        self.progress(&format!("coordinator moved to broker {broker}"));
        Ok(StepOutcome::Done)
    }

    fn add_partitions(&self, f: &Injection<'_>, partitions: i32) -> Outcome {
        let topic = &self.scenario.topic;
        if let Err(e) = self.cluster.add_partitions(topic, partitions) {
            return Ok(StepOutcome::Skipped(e.to_string()));
        }
        f.inject(None);
        self.progress(&format!("{topic} grown to {partitions} partitions"));
        Ok(StepOutcome::Done)
    }

    async fn subscribe(&self, f: &Injection<'_>, member: &str, topics: &[String]) -> Outcome {
        if let Some(why) = self.lacks_capability(member, "subscribe", FaultKind::SubscriptionChange)
        {
            return Ok(StepOutcome::Skipped(why));
        }
        f.inject(Some(member));
        let cmd = serde_json::json!({"cmd": "subscribe", "topics": topics});
        if let Some(why) = self.command(member, &cmd, f).await? {
            return Ok(StepOutcome::Stalled(why));
        }
        self.progress(&format!("{member} subscribed to {}", topics.join(", ")));
        Ok(StepOutcome::Done)
    }

    /// Why a fault cannot run on `member`'s driver, when it lacks `capability`.
    fn lacks_capability(&self, member: &str, capability: &str, fault: FaultKind) -> Option<String> {
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

    /// Takes a broker down or pauses it for `ms`, then brings it back; skipped when this
    /// cluster cannot (nothing is injected). Failing to bring it back is an error.
    async fn broker_fault(
        &mut self,
        f: &Injection<'_>,
        (broker, fault): (i32, BrokerFault),
        ms: u64,
        background: bool,
    ) -> Outcome {
        let started = match fault {
            BrokerFault::Down => self.cluster.broker_down(broker),
            BrokerFault::Pause => self.cluster.pause_broker(broker),
        };
        if let Err(unsupported) = started {
            return Ok(StepOutcome::Skipped(unsupported.to_string()));
        }
        f.inject(Some(&format!("broker-{broker}")));
        self.progress(&format!("broker {broker} {fault:?} for {ms} ms"));
        self.last(f, ms, Heal::Broker(broker, fault), background)
            .await
    }

    /// Installs `rules` on every proxy for `ms`, then removes them; skipped when this
    /// network cannot inject them (no proxies).
    async fn network_fault(
        &mut self,
        f: &Injection<'_>,
        target: Option<&str>,
        rules: &[Rule],
        (ms, background): (u64, bool),
    ) -> Outcome {
        let injected = match self.network.inject(rules) {
            Ok(injected) => injected,
            Err(Unsupported(why)) => return Ok(StepOutcome::Skipped(why)),
        };
        f.inject(target);
        self.progress(&format!(
            "{} for {ms} ms on {}",
            f.kind,
            target.unwrap_or("every member")
        ));
        self.last(f, ms, Heal::Network(injected), background).await
    }

    /// Members whose process is still running, in name order.
    pub fn running(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| m.has_exited().is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Why `what` cannot happen, when one of its `targets` exited on its own.
    fn died_before(&self, what: &str, targets: &[String]) -> Option<String> {
        self.recorder.view(|v| {
            v.died_among(targets).map(|(m, e)| {
                format!(
                    "{what} cannot happen: {m} exited on its own ({})",
                    e.status()
                )
            })
        })
    }

    /// Sends a driver command for fault `f`. A driver that died meanwhile (its stdin is
    /// a broken pipe) is not the harness's error: the answer is why the run ends there.
    async fn command(
        &self,
        member: &str,
        cmd: &serde_json::Value,
        f: &Injection<'_>,
    ) -> Result<Option<String>> {
        let m = self.member(member)?;
        let Err(e) = m.command(cmd).await else {
            return Ok(None);
        };
        // The exit is recorded by the member's watcher: give it a moment to land.
        let _ = tokio::time::timeout(Duration::from_secs(5), m.wait()).await;
        match self.died_before(&format!("{} ({})", f.id, f.kind), &[member.to_owned()]) {
            Some(why) => Ok(Some(why)),
            None => Err(e.context(format!("cannot send {cmd} to {member}"))),
        }
    }

    pub fn member(&self, name: &str) -> Result<&Member> {
        self.members
            .get(name)
            .with_context(|| format!("no member {name}"))
    }

    /// Waits until exactly `names` share the partitions evenly and consume. Ends at once,
    /// stalled, when one of them died: the group cannot settle over a dead member.
    async fn await_balanced(&self, index: usize, names: &[String]) -> Outcome {
        let sc = self.scenario;
        let timeout = Duration::from_millis(sc.await_timeout_ms);
        let since = crate::history::now_ms();
        let waited = self
            .recorder
            .wait_for(timeout, |v| {
                v.balanced_over(names, &sc.topic, sc.partitions, since)
                    || v.died_among(names).is_some()
                    || v.unsupported.is_some()
            })
            .await?;
        // A driver may find out only now that it cannot run this here (a broker that
        // serves no version of an API it needs).
        if let Some((member, reason)) = self.recorder.view(|v| v.unsupported.clone()) {
            return Ok(StepOutcome::Skipped(format!(
                "{member}'s driver cannot run this: {reason}"
            )));
        }
        let what = format!("step {index} (await_balanced {})", names.join(","));
        if let Some(why) = self.died_before(&what, names) {
            return Ok(StepOutcome::Stalled(why));
        }
        match waited {
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

    /// Starts members and waits for each one's `startup_complete`; skipped when a driver
    /// says it cannot run the protocol.
    async fn start(&mut self, names: &[String]) -> Outcome {
        for n in names {
            let spec = self.spec(n)?;
            let member =
                Member::spawn(self.driver, &spec, self.members_dir, self.recorder.clone())?;
            self.members.insert(n.clone(), member);
        }
        if let Some(why) = await_startup(self.recorder, names, self.members_dir).await? {
            return Ok(StepOutcome::Skipped(why));
        }
        self.progress(&format!("started {}", names.join(", ")));
        Ok(StepOutcome::Done)
    }

    /// SIGTERM, then waits for the processes to end; those still running past the
    /// deadline are killed and returned. A paused member is resumed first, or it could
    /// not act on the signal.
    pub async fn terminate(&self, names: &[String]) -> Result<Vec<String>> {
        for n in names {
            let m = self.member(n)?;
            if m.has_exited().is_none() {
                m.resume()?;
            }
            m.terminate()?;
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

    /// A clean stop as a fault step: a member that ignores SIGTERM fails the step. In a
    /// chaos schedule another fault may be holding the member's connections, so it is
    /// killed and the schedule goes on.
    async fn stop(&mut self, names: &[String]) -> Result<()> {
        if let Some(n) = self.terminate(names).await?.first() {
            if !self.scenario.chaos {
                bail!("{n} did not shut down within {SHUTDOWN_TIMEOUT:?} of SIGTERM");
            }
            self.progress(&format!(
                "{n} did not shut down within {SHUTDOWN_TIMEOUT:?} of SIGTERM: killed"
            ));
        }
        Ok(())
    }

    async fn restart(&mut self, name: &str) -> Outcome {
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

/// Waits for `startup_complete` from each member. A driver that says it cannot honour
/// its flags gives its reason (the run is skipped); one that exits first is an error
/// quoting the end of its stderr.
async fn await_startup(
    recorder: &Recorder,
    names: &[String],
    log_dir: &Path,
) -> Result<Option<String>> {
    let outcome = recorder
        .wait_for(STARTUP_TIMEOUT, |v| {
            names.iter().all(|n| v.started_now(n))
                || names.iter().any(|n| v.exited.contains_key(n))
                || v.unsupported.is_some()
        })
        .await?;
    if let Some((member, reason)) = recorder.view(|v| v.unsupported.clone()) {
        return Ok(Some(format!("{member}'s driver cannot run this: {reason}")));
    }
    let exited: Vec<(String, crate::history::Exit)> = recorder.view(|v| {
        names
            .iter()
            .filter(|n| !v.started_now(n))
            .filter_map(|n| v.exited.get(n).map(|e| (n.clone(), e.clone())))
            .collect()
    });
    if let Some((name, exit)) = exited.into_iter().next() {
        let log = log_dir.join(format!("{name}.stderr.log"));
        bail!(
            "driver for {name} exited at startup ({}) before startup_complete; last lines of {}:\n{}",
            exit.status(),
            log.display(),
            crate::client::tail(&log, 10).join("\n")
        );
    }
    if let Waited::TimedOut(_) = outcome {
        bail!(
            "members {} did not report startup_complete within {STARTUP_TIMEOUT:?}",
            names.join(", ")
        );
    }
    Ok(None)
}

/// The two ways a broker fault takes a broker out of service.
#[derive(Debug, Clone, Copy)]
enum BrokerFault {
    /// Stopped (refuses connections; a real broker is killed) until brought up.
    Down,
    /// Frozen with its connections open until resumed.
    Pause,
}
