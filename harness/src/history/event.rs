use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::kinds::{FaultKind, Protocol, Rule, ViolationKind};

/// Milliseconds since the Unix epoch: the history's single time base.
pub type Ms = u64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The records of one partition in one batch (consumed or acked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    pub topic: String,
    pub partition: i32,
    pub count: u64,
    #[serde(rename = "minOffset")]
    pub min_offset: i64,
    #[serde(rename = "maxOffset")]
    pub max_offset: i64,
    /// Driver extension: every offset delivered, as inclusive ranges in delivery order
    /// (`[[10,10],[12,13]]`; a re-delivery overlaps an earlier range). When present the
    /// rules use it instead of the span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<Vec<(i64, i64)>>,
}

impl PartitionRange {
    pub fn tp(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Consumer settings a run used; the checker derives its windows from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerSettings {
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub max_poll_interval_ms: u64,
}

/// Latency budget for one (broker, protocol, fault) cell, resolved at run time so the
/// history carries everything the checker needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Earliest acceptable first group reaction after the fault (two-sided window).
    pub detection_min_ms: u64,
    pub detection_max_ms: u64,
    pub recovery_max_ms: u64,
    /// False for faults the group must ride out without reacting (a short pause, a
    /// coordinator move): then no detection is expected at all.
    #[serde(default = "yes")]
    pub reaction: bool,
    /// Longest zombie window allowed (a member the group expelled still processing its
    /// old partitions), on top of the hard end at the fault's heal + session timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zombie_max_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

/// What the scenario promises beyond the protocol's own rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectations {
    /// When set: at the end of the run exactly these members hold partitions, evenly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_balanced_over: Option<Vec<String>>,
}

/// Everything the checker needs to know about the run, written as the first record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub scenario: String,
    pub protocol: Protocol,
    pub broker: String,
    pub seed: u64,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub consumer: ConsumerSettings,
    /// Records per second the producer aimed at (absent in older histories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_sec: Option<u32>,
    /// Budgets by fault kind.
    pub budgets: BTreeMap<FaultKind, Budget>,
    #[serde(default)]
    pub expectations: Expectations,
    /// One line that replays this run.
    pub replay: String,
    /// What each fault's window must show (the protocol x fault table, fixtures/expectations.toml).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cell_expectations: BTreeMap<FaultKind, CellExpectation>,
    /// Known deviations and client findings that may apply to this run. Those keyed by
    /// client apply only if a member announced a matching client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_deviations: Vec<KnownDeviation>,
    /// A generated chaos schedule: faults overlap, so each fault's window runs to the end
    /// of production (what is judged is that the group recovers at all).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chaos: bool,
}

/// One cell of the protocol x fault table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellExpectation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalances_max: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicates_max: Option<u64>,
    #[serde(default)]
    pub same_assignment: bool,
}

/// Who is under test, as a driver announces itself in `startup_complete`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientInfo {
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// The group implementation underneath, as "NAME VERSION" ("librdkafka 2.12.1").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub library: Option<String>,
}

impl ClientInfo {
    /// (name, version) pairs this client answers to: itself and its library.
    pub fn identities(&self) -> Vec<(&str, &str)> {
        let mut ids = vec![(self.name.as_str(), self.version.as_str())];
        if let Some(lib) = &self.library {
            let mut words = lib.split_whitespace();
            if let Some(name) = words.next() {
                ids.push((name, words.next().unwrap_or("")));
            }
        }
        ids
    }
}

impl std::fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)?;
        if let Some(lib) = &self.library {
            write!(f, " ({lib})")?;
        }
        Ok(())
    }
}

/// Which clients a deviation is about: a client or library name and a version range
/// (semver requirement, e.g. ">=2.12.0, <2.13.0"; absent: every version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKey {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<String>,
}

/// A place where a broker or a client is known to differ from Kafka's promises
/// (fixtures/known-deviations.toml). It waives violations of one rule and kind, within
/// its bounds, in runs of its broker and/or client under one of its protocols that
/// inject one of its faults. Keyed by broker it is a *known deviation*; keyed by client,
/// a *client finding*. Either way the cell is never reported as a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownDeviation {
    /// A short name, used when reporting what it waived or that it went stale.
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientKey>,
    pub protocols: Vec<Protocol>,
    /// The fault kinds whose violations it waives (a violation tied to no fault: any
    /// run injecting one of these).
    pub faults: Vec<FaultKind>,
    #[serde(alias = "check")]
    pub rule: Rule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ViolationKind>,
    /// Histories written before violations were data matched the text instead; kept so
    /// they re-check as they did. Not accepted in the fixtures file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
    /// Only violations on these partitions (absent: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<i32>,
    /// At most this many violations after any one injected fault; more and it waives
    /// none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// Only violations no larger than this (records, ms or rounds, by kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    pub observed: String,
    pub why: String,
}

impl KnownDeviation {
    /// A client finding (keyed by client) rather than a broker's known deviation.
    pub fn is_client_finding(&self) -> bool {
        self.client.is_some()
    }
}

/// One fault as injected: `kind` names the fault family, `target` the member(s) it hit
/// (comma-separated) or the broker (`broker-2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub id: String,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Fault {
    /// The members it hit (none for a broker or network-wide fault).
    pub fn members(&self) -> Vec<&str> {
        match &self.target {
            Some(t) if !t.starts_with("broker-") => t.split(',').collect(),
            _ => Vec::new(),
        }
    }
}

/// Every kind of event in a history. Driver events use the driver protocol's names and
/// fields (Kafka's VerifiableConsumer, docs/driver-protocol.md); the rest are written by
/// the harness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Event {
    // --- driver protocol ---
    StartupComplete {
        #[serde(default)]
        capabilities: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<ClientInfo>,
    },
    ShutdownComplete {},
    PartitionsAssigned {
        partitions: Vec<TopicPartition>,
    },
    PartitionsRevoked {
        partitions: Vec<TopicPartition>,
    },
    PartitionsLost {
        partitions: Vec<TopicPartition>,
    },
    RecordsConsumed {
        count: u64,
        partitions: Vec<PartitionRange>,
    },
    OffsetsCommitted {
        offsets: Vec<CommittedOffset>,
        success: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// For a failure: whether it certainly did not land (absent: classified from
        /// `error`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        definite: Option<bool>,
    },
    /// The driver cannot honour its flags (a protocol its client lacks): skipped.
    Unsupported {
        reason: String,
    },
    // --- producer ---
    RecordsAcked {
        partitions: Vec<PartitionRange>,
    },
    ProduceFailed {
        count: u64,
        error: String,
    },
    ProductionStopped {},
    // --- harness ---
    // Boxed: by far the largest event, written once per run.
    RunStarted(Box<RunInfo>),
    MemberStarted {
        pid: u32,
    },
    /// The harness saw a member's process end. `killed`: the harness sent SIGKILL.
    /// `requested`: the harness asked for the end (SIGKILL, SIGTERM, stdin closed);
    /// absent in histories written before it was recorded.
    MemberExited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        killed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested: Option<bool>,
        /// The last lines of the member's stderr, for an end nobody asked for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stderr_tail: Vec<String>,
    },
    FaultInjected(Fault),
    FaultHealed {
        id: String,
    },
    /// How late the harness's own ticker ran over the last second: a starved machine
    /// distorts every timing, and the latency rule says so instead of blaming the client.
    SchedulingDelay {
        max_ms: u64,
    },
    RunFinished {
        outcome: String,
    },
}

impl Event {
    /// Names a driver may emit; anything else on a driver's stdout is ignored.
    pub const DRIVER_EVENTS: &'static [&'static str] = &[
        "startup_complete",
        "shutdown_complete",
        "partitions_assigned",
        "partitions_revoked",
        "partitions_lost",
        "records_consumed",
        "offsets_committed",
        "unsupported",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Event::StartupComplete { .. } => "startup_complete",
            Event::ShutdownComplete {} => "shutdown_complete",
            Event::PartitionsAssigned { .. } => "partitions_assigned",
            Event::PartitionsRevoked { .. } => "partitions_revoked",
            Event::PartitionsLost { .. } => "partitions_lost",
            Event::RecordsConsumed { .. } => "records_consumed",
            Event::OffsetsCommitted { .. } => "offsets_committed",
            Event::Unsupported { .. } => "unsupported",
            Event::RecordsAcked { .. } => "records_acked",
            Event::ProduceFailed { .. } => "produce_failed",
            Event::ProductionStopped {} => "production_stopped",
            Event::RunStarted(_) => "run_started",
            Event::MemberStarted { .. } => "member_started",
            Event::MemberExited { .. } => "member_exited",
            Event::FaultInjected(_) => "fault_injected",
            Event::FaultHealed { .. } => "fault_healed",
            Event::SchedulingDelay { .. } => "scheduling_delay",
            Event::RunFinished { .. } => "run_finished",
        }
    }
}

/// One line of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    pub ts: Ms,
    /// The member the event came from or is about; absent for run-wide events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(flatten)]
    pub event: Event,
}
