use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
    /// Set when every violation is covered by a known deviation: reported as such,
    /// never as a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_deviation: Option<String>,
    /// Every violation found (the detail shows the first ten).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
}

impl CheckResult {
    pub fn new(name: &str, violations: Vec<String>, ok_detail: String) -> Self {
        let passed = violations.is_empty();
        let detail = if passed {
            ok_detail
        } else {
            let shown: Vec<_> = violations.iter().take(10).cloned().collect();
            let more = violations.len().saturating_sub(shown.len());
            let mut d = shown.join("; ");
            if more > 0 {
                d.push_str(&format!("; and {more} more"));
            }
            d
        };
        CheckResult {
            name: name.to_owned(),
            passed,
            detail,
            known_deviation: None,
            violations,
        }
    }
}

/// Latency and movement measured for one fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultMetrics {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Fault -> first group reaction (an assignment, revocation or loss).
    pub detection_ms: Option<u64>,
    /// Fault -> every partition owned and consumed again.
    pub recovery_ms: Option<u64>,
    pub partitions_moved: usize,
    /// Members (other than the target) that revoked their whole assignment.
    pub stop_the_world_members: Vec<String>,
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
    pub final_assignment: BTreeMap<String, Vec<i32>>,
    pub faults: Vec<FaultMetrics>,
}

/// A verdict's overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    /// Failed only where the broker is known to differ from Kafka.
    KnownDeviation,
    /// The run stopped at a fault the broker or driver cannot inject; nothing it did
    /// observe broke a rule. Never a pass.
    Skipped,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// True only for a clean pass (a known deviation is not a pass).
    pub passed: bool,
    pub outcome: Outcome,
    /// Why the run was cut short, when a fault could not be injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub scenario: String,
    pub protocol: String,
    pub broker: String,
    pub seed: u64,
    pub replay: String,
    pub checks: Vec<CheckResult>,
    pub metrics: Metrics,
}

impl Verdict {
    pub fn failed_checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }
}
