use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::{ClientInfo, FaultKind, Protocol, Rule, TopicPartition, ViolationKind};

/// The fault a violation happened under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRef {
    pub id: String,
    pub kind: FaultKind,
}

/// One broken promise, as data: which rule, what kind, under which fault, on which
/// partition, by which member, and how big (records, milliseconds or rounds: the kind
/// says which). Known deviations are matched on these fields, never on the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: Rule,
    pub kind: ViolationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<FaultRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tp: Option<TopicPartition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub size: u64,
    /// When it happened (ms since the epoch), for the report's timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    pub message: String,
    /// The known deviation or client finding that waives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived_by: Option<String>,
}

impl Violation {
    pub fn new(kind: ViolationKind, message: impl Into<String>) -> Violation {
        Violation {
            rule: kind.rule(),
            kind,
            fault: None,
            tp: None,
            member: None,
            size: 1,
            at: None,
            message: message.into(),
            waived_by: None,
        }
    }

    pub fn tp(mut self, tp: &TopicPartition) -> Self {
        self.tp = Some(tp.clone());
        self
    }

    pub fn member(mut self, member: &str) -> Self {
        self.member = Some(member.to_owned());
        self
    }

    pub fn size(mut self, size: u64) -> Self {
        self.size = size;
        self
    }

    pub fn at(mut self, t: u64) -> Self {
        self.at = Some(t);
        self
    }

    pub fn fault(mut self, f: Option<&crate::history::Fault>) -> Self {
        self.fault = f.map(|f| FaultRef {
            id: f.id.clone(),
            kind: f.kind,
        });
        self
    }
}

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: Rule,
    /// No violation at all (a waived violation is still a failure of the rule).
    pub passed: bool,
    pub detail: String,
    /// Set when every violation is waived: the deviations' ids and reasons. Reported as
    /// such, never as a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_deviation: Option<String>,
    /// Every violation found (the detail shows the first ten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

impl CheckResult {
    pub fn new(name: Rule, violations: Vec<Violation>, ok_detail: String) -> Self {
        let passed = violations.is_empty();
        let detail = if passed {
            ok_detail
        } else {
            let shown: Vec<&str> = violations
                .iter()
                .take(10)
                .map(|v| v.message.as_str())
                .collect();
            let more = violations.len().saturating_sub(shown.len());
            let mut d = shown.join("; ");
            if more > 0 {
                d.push_str(&format!("; and {more} more"));
            }
            d
        };
        CheckResult {
            name,
            passed,
            detail,
            known_deviation: None,
            violations,
        }
    }

    /// Violations no deviation waives.
    pub fn unwaived(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.waived_by.is_none())
    }
}

/// Latency and movement measured for one fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultMetrics {
    pub id: String,
    pub kind: FaultKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When it was injected and healed (ms since the epoch).
    #[serde(default)]
    pub start: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healed: Option<u64>,
    /// Fault -> first group reaction (an assignment, revocation or loss).
    pub detection_ms: Option<u64>,
    /// Fault -> every partition owned and consumed again.
    pub recovery_ms: Option<u64>,
    pub partitions_moved: usize,
    /// Members (other than the target) that revoked their whole assignment.
    pub stop_the_world_members: Vec<String>,
    /// Rebalance rounds in the fault's window.
    #[serde(default)]
    pub rebalances: usize,
    /// Longest zombie window this fault explains.
    #[serde(default)]
    pub zombie_ms: u64,
    /// Records acked but not yet consumed when the fault hit, summed over partitions.
    #[serde(default)]
    pub lag_at_fault: u64,
    /// Worst scheduling delay of the harness during the fault's window.
    #[serde(default)]
    pub starvation_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    pub records_acked: u64,
    pub records_consumed: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub duplicates_explained: u64,
    pub duplicates_unexplained: u64,
    pub rebalances: usize,
    /// Detection and recovery of the scenario's first fault (all faults: `faults`).
    pub detection_ms: Option<u64>,
    pub recovery_ms: Option<u64>,
    pub max_unowned_ms: u64,
    pub max_zombie_ms: u64,
    /// The worst lateness of the harness's own timers during the run: a starved machine.
    #[serde(default)]
    pub max_scheduling_delay_ms: u64,
    pub final_assignment: BTreeMap<String, Vec<i32>>,
    pub faults: Vec<FaultMetrics>,
}

/// A verdict's overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    /// Failed only where the broker is known to differ from Kafka.
    KnownDeviation,
    /// Failed only where the client under test has a recorded finding.
    ClientFinding,
    /// The run stopped at a fault the broker or driver cannot inject, or the driver
    /// cannot run the protocol; nothing it did observe broke a rule. Never a pass.
    Skipped,
    Fail,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::KnownDeviation => "known-deviation",
            Outcome::ClientFinding => "client-finding",
            Outcome::Skipped => "skipped",
            Outcome::Fail => "fail",
        }
    }

    /// How an outcome is shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASSED",
            Outcome::KnownDeviation => "KNOWN DEVIATION",
            Outcome::ClientFinding => "CLIENT FINDING",
            Outcome::Skipped => "SKIPPED",
            Outcome::Fail => "FAILED",
        }
    }

    /// Whether a run with this outcome exits 0: without `--strict` everything but a
    /// failure; with it, only a pass.
    pub fn exits_zero(self, strict: bool) -> bool {
        match self {
            Outcome::Pass => true,
            Outcome::Fail => false,
            _ => !strict,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// True only for a clean pass (a known deviation is not a pass).
    pub passed: bool,
    pub outcome: Outcome,
    /// Why the run was cut short or could not run, when it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub scenario: String,
    pub protocol: Option<Protocol>,
    pub broker: String,
    /// The clients the members announced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientInfo>,
    pub seed: u64,
    pub replay: String,
    pub checks: Vec<CheckResult>,
    pub metrics: Metrics,
    /// What the checker could not judge, or judged with less evidence than it wanted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Deviations that applied to this run but waived nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_deviations: Vec<String>,
}

impl Verdict {
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }

    pub fn check(&self, rule: Rule) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == rule)
    }

    /// Every violation, waived or not.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.checks.iter().flat_map(|c| c.violations.iter())
    }
}
