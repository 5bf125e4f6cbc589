//! Scenarios: what to start, which faults to inject when, and what the end state must
//! be. Loaded from TOML; the built-in catalogue is the TOML in fixtures/scenarios.

mod budgets;
mod deviations;
mod expectations;

pub use budgets::Budgets;
pub use deviations::known_deviations;
pub use expectations::cell_expectations;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::history::{ConsumerSettings, FaultKind, Protocol};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub rate_per_sec: u32,
    #[serde(default = "default_await_timeout")]
    pub await_timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_balanced_over: Option<Vec<String>>,
    /// The protocols this scenario is meant for (default: every one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<Protocol>>,
    /// A generated chaos schedule: faults overlap, so the oracle judges safety and
    /// eventual recovery, not each fault's budgets and cell expectations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chaos: bool,
    pub consumer: ConsumerSettings,
    pub steps: Vec<Scheduled>,
}

/// A step, possibly scheduled: with `at_ms` it runs that long after the run's members
/// were first started (waiting until then), and a fault that lasts heals in the
/// background, so scheduled faults may overlap. Without it, steps run one after the
/// other, each fault healing before the next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub at_ms: Option<u64>,
    pub step: Step,
}

/// A step is a table with one action key (`crash = "C2"`) and, if scheduled, `at_ms`.
/// Written by hand rather than with `#[serde(flatten)]`, which would accept unknown keys
/// silently and lose the name of an unknown action in its error.
impl<'de> Deserialize<'de> for Scheduled {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let at_ms = match table.remove("at_ms") {
            None => None,
            Some(toml::Value::Integer(n)) if n >= 0 => Some(n as u64),
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "at_ms must be a number of milliseconds, not {other}"
                )))
            }
        };
        if table.len() != 1 {
            let keys: Vec<&str> = table.keys().map(String::as_str).collect();
            return Err(D::Error::custom(format!(
                "a step has exactly one action (crash, pause, ...) and optionally at_ms; found {}",
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(", ")
                }
            )));
        }
        let step = Step::deserialize(toml::Value::Table(table)).map_err(D::Error::custom)?;
        Ok(Scheduled { at_ms, step })
    }
}

impl Serialize for Scheduled {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = match toml::Value::try_from(&self.step).map_err(S::Error::custom)? {
            toml::Value::Table(t) => t,
            _ => return Err(S::Error::custom("a step serializes to a table")),
        };
        if let Some(at) = self.at_ms {
            table.insert("at_ms".into(), toml::Value::Integer(at as i64));
        }
        table.serialize(s)
    }
}

impl From<Step> for Scheduled {
    fn from(step: Step) -> Self {
        Scheduled { at_ms: None, step }
    }
}

fn default_await_timeout() -> u64 {
    60_000
}

/// One step of a scenario, run in order. Steps that are faults are recorded as
/// `fault_injected` (and `fault_healed` where they end) in the history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start these members (not a fault: the group's initial membership).
    Start(Vec<String>),
    /// Wait until exactly these members hold every partition, evenly, and consume.
    AwaitBalanced(Vec<String>),
    /// `crash`: SIGKILL the member.
    Crash(String),
    /// `join`: start a new member (scale up).
    Join(String),
    /// `leave`: SIGTERM the member (clean shutdown: commit, close).
    Leave(String),
    /// `scale-down`: SIGTERM several members at once.
    ScaleDown(Vec<String>),
    /// `restart`: SIGTERM the member, then start it again under the same name (and the
    /// same group.instance.id under static membership).
    Restart(String),
    /// `rolling-bounce`: restart these members in turn, waiting for the group to settle
    /// over every running member after each.
    RollingBounce(Vec<String>),
    /// `pause-short` or `pause-long` (shorter or longer than the session timeout):
    /// SIGSTOP, then SIGCONT after `ms`.
    Pause { member: String, ms: u64 },
    /// `long-poll`: the member stops polling for `ms` while heartbeats go on (the
    /// driver's `stall` capability); past max.poll.interval.ms it is evicted.
    LongPoll { member: String, ms: u64 },
    /// `broker-bounce`: take a broker down for `ms`, then bring it back (the mock's
    /// broker refuses connections; a real broker is killed with SIGKILL and restarted).
    BrokerBounce { broker: i32, ms: u64 },
    /// `broker-pause`: freeze a broker for `ms` (SIGSTOP, docker pause): its connections
    /// stay open and nothing answers, then it resumes where it stopped.
    BrokerPause { broker: i32, ms: u64 },
    /// `coordinator-move`: move the group's coordinator to another broker.
    CoordinatorMove { broker: i32 },
    /// `partition`: cut the member off from every broker for `ms` (the proxies hold its
    /// bytes, connections stay open), then heal.
    Partition { member: String, ms: u64 },
    /// `heartbeat-drop`: for `ms`, the member's heartbeats (Heartbeat, or
    /// ConsumerGroupHeartbeat under KIP-848) do not reach the coordinator: the proxy
    /// holds the first one and everything behind it on that connection, in order (a
    /// stalled path; frames are never dropped out of a TCP stream), and delivers them
    /// on heal. The member's other connections get through.
    HeartbeatDrop { member: String, ms: u64 },
    /// `coordinator-latency`: delay every group request and response (the coordinator's
    /// APIs) by `latency_ms` ± `jitter_ms` for `ms`.
    CoordinatorLatency {
        ms: u64,
        latency_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// `partition-increase`: grow the topic to `partitions` partitions (admin API).
    AddPartitions { partitions: i32 },
    /// `subscription-change`: the member subscribes to `topics` instead (the driver's
    /// `subscribe` capability). Topics other than the scenario's are created empty.
    Subscribe { member: String, topics: Vec<String> },
}

impl Step {
    /// The running members this step acts on (a join starts its member, so none).
    pub fn targets(&self) -> Vec<String> {
        match self {
            Step::Crash(m) | Step::Leave(m) | Step::Restart(m) => vec![m.clone()],
            Step::ScaleDown(ms) | Step::RollingBounce(ms) => ms.clone(),
            Step::Pause { member, .. }
            | Step::LongPoll { member, .. }
            | Step::Partition { member, .. }
            | Step::HeartbeatDrop { member, .. }
            | Step::Subscribe { member, .. } => vec![member.clone()],
            _ => Vec::new(),
        }
    }

    /// The fault kind this step injects, if it is a fault. A pause is short or long
    /// relative to the session timeout.
    pub fn fault_kind(&self, session_timeout_ms: u64) -> Option<FaultKind> {
        Some(match self {
            Step::Start(_) | Step::AwaitBalanced(_) => return None,
            Step::Crash(_) => FaultKind::Crash,
            Step::Join(_) => FaultKind::Join,
            Step::Leave(_) => FaultKind::Leave,
            Step::ScaleDown(_) => FaultKind::ScaleDown,
            Step::Restart(_) => FaultKind::Restart,
            Step::RollingBounce(_) => FaultKind::RollingBounce,
            Step::Pause { ms, .. } if *ms < session_timeout_ms => FaultKind::PauseShort,
            Step::Pause { .. } => FaultKind::PauseLong,
            Step::LongPoll { .. } => FaultKind::LongPoll,
            Step::BrokerBounce { .. } => FaultKind::BrokerBounce,
            Step::BrokerPause { .. } => FaultKind::BrokerPause,
            Step::CoordinatorMove { .. } => FaultKind::CoordinatorMove,
            Step::Partition { .. } => FaultKind::Partition,
            Step::HeartbeatDrop { .. } => FaultKind::HeartbeatDrop,
            Step::CoordinatorLatency { .. } => FaultKind::CoordinatorLatency,
            Step::AddPartitions { .. } => FaultKind::PartitionIncrease,
            Step::Subscribe { .. } => FaultKind::SubscriptionChange,
        })
    }
}

/// The built-in catalogue, by name.
const CATALOGUE: &[(&str, &str)] = &[
    (
        "seed",
        include_str!("../../../fixtures/scenarios/seed.toml"),
    ),
    (
        "driver-check",
        include_str!("../../../fixtures/scenarios/driver-check.toml"),
    ),
    (
        "crash",
        include_str!("../../../fixtures/scenarios/crash.toml"),
    ),
    (
        "leave",
        include_str!("../../../fixtures/scenarios/leave.toml"),
    ),
    (
        "join",
        include_str!("../../../fixtures/scenarios/join.toml"),
    ),
    (
        "scale-down",
        include_str!("../../../fixtures/scenarios/scale-down.toml"),
    ),
    (
        "restart",
        include_str!("../../../fixtures/scenarios/restart.toml"),
    ),
    (
        "rolling-bounce",
        include_str!("../../../fixtures/scenarios/rolling-bounce.toml"),
    ),
    (
        "pause-short",
        include_str!("../../../fixtures/scenarios/pause-short.toml"),
    ),
    (
        "pause-long",
        include_str!("../../../fixtures/scenarios/pause-long.toml"),
    ),
    (
        "long-poll",
        include_str!("../../../fixtures/scenarios/long-poll.toml"),
    ),
    (
        "broker-bounce",
        include_str!("../../../fixtures/scenarios/broker-bounce.toml"),
    ),
    (
        "broker-kill",
        include_str!("../../../fixtures/scenarios/broker-kill.toml"),
    ),
    (
        "broker-pause",
        include_str!("../../../fixtures/scenarios/broker-pause.toml"),
    ),
    (
        "coordinator-move",
        include_str!("../../../fixtures/scenarios/coordinator-move.toml"),
    ),
    (
        "partition",
        include_str!("../../../fixtures/scenarios/partition.toml"),
    ),
    (
        "heartbeat-drop",
        include_str!("../../../fixtures/scenarios/heartbeat-drop.toml"),
    ),
    (
        "coordinator-latency",
        include_str!("../../../fixtures/scenarios/coordinator-latency.toml"),
    ),
    (
        "partition-increase",
        include_str!("../../../fixtures/scenarios/partition-increase.toml"),
    ),
    (
        "subscription-change",
        include_str!("../../../fixtures/scenarios/subscription-change.toml"),
    ),
];

pub fn catalogue() -> Vec<&'static str> {
    CATALOGUE.iter().map(|(n, _)| *n).collect()
}

impl Scenario {
    pub fn builtin(name: &str) -> Result<Scenario> {
        let Some((_, text)) = CATALOGUE.iter().find(|(n, _)| *n == name) else {
            bail!(
                "unknown scenario '{name}': built-in scenarios are {}",
                catalogue().join(", ")
            );
        };
        Scenario::parse(text, &format!("<built-in {name}>"))
    }

    pub fn load(path: &Path) -> Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        Scenario::parse(&text, &path.display().to_string())
    }

    /// The scenario as TOML that `parse` reads back (for chaos's `minimal.toml`).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).context("cannot write the scenario as TOML")
    }

    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if let Err(Invalid { key, step, message }) = s.validate() {
            let line = line_of(text, key, step)
                .map(|l| format!(" line {l}:"))
                .unwrap_or_default();
            bail!("{origin}: invalid scenario:{line} {message}");
        }
        Ok(s)
    }

    /// Members must exist before they are hit, not be started twice, and be alive when
    /// awaited.
    fn validate(&self) -> Result<(), Invalid> {
        if self.partitions < 1 {
            return Err(Invalid::key("partitions", "partitions must be at least 1"));
        }
        let c = &self.consumer;
        if c.heartbeat_interval_ms >= c.session_timeout_ms {
            return Err(Invalid::key(
                "consumer",
                "heartbeat_interval_ms must be below session_timeout_ms",
            ));
        }
        let alive = self.validate_steps()?;
        if let Some(fin) = &self.final_balanced_over {
            for m in fin {
                if !alive.contains(m.as_str()) {
                    return Err(Invalid::key(
                        "final_balanced_over",
                        format!("final_balanced_over names {m}, which is not running at the end"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the steps in order; returns the members running after the last one.
    fn validate_steps(&self) -> Result<BTreeSet<&str>, Invalid> {
        let mut alive: BTreeSet<&str> = BTreeSet::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut last_at = 0;
        for (i, Scheduled { at_ms, step }) in self.steps.iter().enumerate() {
            let at = format!("step {}", i + 1);
            let fail = |message: String| Invalid {
                key: "steps",
                step: Some(i),
                message: format!("{at}: {message}"),
            };
            if let Some(t) = *at_ms {
                if t < last_at {
                    return Err(fail(format!(
                        "scheduled at {t} ms, before the step before it ({last_at} ms)"
                    )));
                }
                last_at = t;
            }
            let running = |m: &str, alive: &BTreeSet<&str>, what: &str| -> Result<(), Invalid> {
                if alive.contains(m) {
                    Ok(())
                } else {
                    Err(fail(format!(
                        "{what} of {m}, which is not running at that point"
                    )))
                }
            };
            match step {
                Step::Start(ms) => {
                    for m in ms {
                        if !seen.insert(m) {
                            return Err(fail(format!("member {m} is started twice")));
                        }
                        alive.insert(m);
                    }
                }
                Step::Join(m) => {
                    if !seen.insert(m) {
                        return Err(fail(format!("member {m} joins but was already started")));
                    }
                    alive.insert(m);
                }
                Step::Crash(m) | Step::Leave(m) => {
                    running(
                        m,
                        &alive,
                        if matches!(step, Step::Crash(_)) {
                            "crash"
                        } else {
                            "leave"
                        },
                    )?;
                    alive.remove(m.as_str());
                }
                Step::ScaleDown(ms) => {
                    for m in ms {
                        running(m, &alive, "scale-down")?;
                        alive.remove(m.as_str());
                    }
                }
                Step::Restart(m) => running(m, &alive, "restart")?,
                Step::Pause { member, .. } => running(member, &alive, "pause")?,
                Step::LongPoll { member, ms } => {
                    running(member, &alive, "long-poll")?;
                    if *ms <= self.consumer.max_poll_interval_ms {
                        return Err(fail(format!(
                            "a long poll of {ms} ms does not exceed max_poll_interval_ms"
                        )));
                    }
                }
                Step::RollingBounce(ms) => {
                    for m in ms {
                        running(m, &alive, "rolling-bounce")?;
                    }
                }
                Step::Partition { member, .. } => running(member, &alive, "partition")?,
                Step::HeartbeatDrop { member, .. } => running(member, &alive, "heartbeat-drop")?,
                Step::Subscribe { member, topics } => {
                    running(member, &alive, "subscription change")?;
                    if topics.is_empty() {
                        return Err(fail("subscribe needs at least one topic".into()));
                    }
                }
                Step::AddPartitions { partitions } => {
                    if *partitions <= self.partitions {
                        return Err(fail(format!(
                            "add_partitions to {partitions} does not grow the topic's {} partitions",
                            self.partitions
                        )));
                    }
                }
                Step::BrokerBounce { .. }
                | Step::BrokerPause { .. }
                | Step::CoordinatorMove { .. }
                | Step::CoordinatorLatency { .. } => {}
                Step::AwaitBalanced(ms) => {
                    for m in ms {
                        if !alive.contains(m.as_str()) {
                            return Err(fail(format!(
                                "awaits {m}, which is not running at that point"
                            )));
                        }
                    }
                }
            }
        }
        Ok(alive)
    }

    /// Topics a step subscribes to besides the scenario's own: created empty at start.
    pub fn other_topics(&self) -> BTreeSet<&str> {
        self.steps
            .iter()
            .filter_map(|s| match &s.step {
                Step::Subscribe { topics, .. } => Some(topics),
                _ => None,
            })
            .flatten()
            .map(String::as_str)
            .filter(|t| *t != self.topic)
            .collect()
    }

    pub fn fault_kinds(&self) -> BTreeSet<FaultKind> {
        let session = self.consumer.session_timeout_ms;
        self.steps
            .iter()
            .filter_map(|s| s.step.fault_kind(session))
            .collect()
    }
}

/// What is wrong with a scenario, and where: a top-level key, or one of its steps.
struct Invalid {
    key: &'static str,
    step: Option<usize>,
    message: String,
}

impl Invalid {
    fn key(key: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            key,
            step: None,
            message: message.into(),
        }
    }
}

/// The 1-based line of a top-level key, or of the `step`-th entry of an array under it.
fn line_of(text: &str, key: &str, step: Option<usize>) -> Option<usize> {
    #[derive(Deserialize)]
    struct Spans {
        #[serde(default)]
        steps: Vec<toml::Spanned<toml::Value>>,
    }
    let offset = match step {
        Some(i) => {
            toml::from_str::<Spans>(text)
                .ok()?
                .steps
                .get(i)?
                .span()
                .start
        }
        None => {
            // A key's line: the first line that assigns it or opens its table.
            let n = text.lines().position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
                    || l.starts_with(&format!("[{key}]"))
            })?;
            return Some(n + 1);
        }
    };
    Some(text[..offset].matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_scenario_loads() {
        let s = Scenario::builtin("seed").unwrap();
        assert_eq!(s.partitions, 6);
        assert_eq!(s.steps[2].step, Step::Crash("C2".into()));
        assert_eq!(
            s.fault_kinds().into_iter().collect::<Vec<_>>(),
            vec![FaultKind::Crash, FaultKind::Join]
        );
    }

    #[test]
    fn scenarios_round_trip_through_toml_with_scheduled_steps() {
        for name in catalogue() {
            let s = Scenario::builtin(name).unwrap();
            let back = Scenario::parse(&s.to_toml().unwrap(), "round trip").unwrap();
            assert_eq!(back.steps, s.steps, "{name}");
        }
        let text = r#"
name = "scheduled"
topic = "events"
partitions = 2
group = "g"
rate_per_sec = 10
chaos = true
[consumer]
session_timeout_ms = 6000
heartbeat_interval_ms = 1000
max_poll_interval_ms = 10000
[[steps]]
start = ["C1", "C2"]
[[steps]]
at_ms = 8000
pause = { member = "C1", ms = 9000 }
[[steps]]
at_ms = 9000
crash = "C2"
[[steps]]
at_ms = 8500
join = "C3"
"#;
        let e = format!("{:#}", Scenario::parse(text, "x").unwrap_err());
        assert!(
            e.contains("step 4: scheduled at 8500 ms, before the step before it (9000 ms)"),
            "{e}"
        );
        let s = Scenario::parse(&text.replace("8500", "9500"), "x").unwrap();
        assert_eq!(s.steps[1].at_ms, Some(8000));
        assert!(s.chaos);
        let back = Scenario::parse(&s.to_toml().unwrap(), "round trip").unwrap();
        assert_eq!(back.steps, s.steps);
        let e = format!(
            "{:#}",
            Scenario::parse(&text.replace("at_ms = 9000", "at_sec = 9"), "x").unwrap_err()
        );
        assert!(e.contains("at_sec"), "{e}");
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        let seed = include_str!("../../../fixtures/scenarios/seed.toml");
        for name in catalogue() {
            Scenario::builtin(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
        let e = Scenario::builtin("nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown scenario 'nope'") && e.contains("seed"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            Scenario::parse(&seed.replace("crash = \"C2\"", "crash = \"C9\""), "x").unwrap_err()
        );
        assert!(e.contains("line 26: step 3: crash of C9"), "{e}");
        let e = format!(
            "{:#}",
            Scenario::parse(&seed.replace("join = \"C4\"", "join = \"C1\""), "x").unwrap_err()
        );
        assert!(e.contains("line 32: step 5: member C1 joins"), "{e}");
        let e = format!(
            "{:#}",
            Scenario::parse(&seed.replace("partitions = 6", "partitions = 0"), "x").unwrap_err()
        );
        assert!(e.contains("line 8: partitions must be at least 1"), "{e}");
        let e = format!(
            "{:#}",
            Scenario::parse(
                &seed.replace(
                    "rate_per_sec",
                    "protocols = [\"eager-range\", \"sticky\"]\nrate_per_sec"
                ),
                "x"
            )
            .unwrap_err()
        );
        assert!(
            e.contains("line 10") && e.contains("unknown variant `sticky`"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            Scenario::parse(
                &seed.replace(
                    "heartbeat_interval_ms = 1000",
                    "heartbeat_interval_ms = 7000"
                ),
                "x"
            )
            .unwrap_err()
        );
        assert!(
            e.contains("line 15: heartbeat_interval_ms must be below"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            Scenario::parse(&seed.replace("crash = \"C2\"", "explode = \"C2\""), "x").unwrap_err()
        );
        assert!(e.contains("explode"), "{e}");
        let e = format!(
            "{:#}",
            Scenario::parse(&seed.replace("partitions = 6", "partitions = \"six\""), "x")
                .unwrap_err()
        );
        assert!(e.contains("line"), "{e}");
    }
}
