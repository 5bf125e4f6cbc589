use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch: the history's single time base.
pub type Ms = u64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// A contiguous run of offsets seen in one batch (consumed or acked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRange {
    pub topic: String,
    pub partition: i32,
    pub count: u64,
    #[serde(rename = "minOffset")]
    pub min_offset: i64,
    #[serde(rename = "maxOffset")]
    pub max_offset: i64,
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
    pub protocol: String,
    pub broker: String,
    pub seed: u64,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub consumer: ConsumerSettings,
    /// Budgets by fault kind (e.g. "crash", "join").
    pub budgets: BTreeMap<String, Budget>,
    #[serde(default)]
    pub expectations: Expectations,
    /// One line that replays this run.
    pub replay: String,
    /// What each fault's window must show (DESIGN.md's protocol x fault table).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cell_expectations: BTreeMap<String, CellExpectation>,
    /// Known broker deviations that apply to this run's cells.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_deviations: Vec<KnownDeviation>,
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

/// A cell where the broker is known to differ from Kafka (fixtures/known-deviations.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDeviation {
    pub broker: String,
    /// The protocols and faults of the cells it applies to.
    pub protocols: Vec<String>,
    pub faults: Vec<String>,
    /// The check whose violations it waives, and the text those violations contain.
    pub check: String,
    pub matches: String,
    pub observed: String,
    pub why: String,
}

/// One fault as injected: `kind` names the fault family, `target` the member it hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Every kind of event in a history. Driver events use the driver protocol's names and
/// fields (Kafka's VerifiableConsumer); the rest are written by the harness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Event {
    // --- driver protocol ---
    StartupComplete {
        #[serde(default)]
        capabilities: Vec<String>,
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
    /// The harness saw a member's process end; `killed` when the harness sent SIGKILL.
    MemberExited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
        killed: bool,
    },
    FaultInjected(Fault),
    FaultHealed {
        id: String,
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
            Event::RecordsAcked { .. } => "records_acked",
            Event::ProduceFailed { .. } => "produce_failed",
            Event::ProductionStopped {} => "production_stopped",
            Event::RunStarted(_) => "run_started",
            Event::MemberStarted { .. } => "member_started",
            Event::MemberExited { .. } => "member_exited",
            Event::FaultInjected(_) => "fault_injected",
            Event::FaultHealed { .. } => "fault_healed",
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
