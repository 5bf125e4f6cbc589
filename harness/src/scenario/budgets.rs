//! Latency budgets from fixtures/budgets.toml, keyed by (broker, protocol, fault) and
//! resolved against the scenario's consumer settings before a run starts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::history::{Budget, ConsumerSettings, FaultKind, Protocol};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSpec {
    detection_min: DetectionFloor,
    #[serde(default)]
    tolerance_ms: u64,
    detection_max_ms: u64,
    recovery_max_ms: u64,
    /// False for faults the group must ride out without a rebalance.
    #[serde(default = "yes")]
    reaction: bool,
    /// Longest zombie window allowed under this fault.
    #[serde(default)]
    zombie_max_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DetectionFloor {
    /// The group must not react before the session timeout (minus tolerance).
    Session,
    /// Not before max.poll.interval.ms (minus tolerance): a long poll's eviction.
    #[serde(rename = "max_poll")]
    MaxPoll,
    /// Any reaction time is fine.
    None,
}

/// broker -> protocol -> fault -> budget.
#[derive(Debug, Clone)]
pub struct Budgets(BTreeMap<String, BTreeMap<String, BTreeMap<String, BudgetSpec>>>);

const DEFAULT: &str = include_str!("../../../fixtures/budgets.toml");

/// How long any chaos fault may take to recover from.
const CHAOS_RECOVERY_MS: u64 = 180_000;

impl Budgets {
    /// The budgets shipped in fixtures/budgets.toml.
    pub fn builtin() -> Budgets {
        Budgets::parse(DEFAULT, "fixtures/budgets.toml").expect("the shipped budgets.toml parses")
    }

    pub fn load(path: &Path) -> Result<Budgets> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read budgets {}", path.display()))?;
        Budgets::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Budgets> {
        Ok(Budgets(
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?,
        ))
    }

    /// Budgets for a chaos schedule: its faults overlap, so no fault's reaction or
    /// recovery can be timed on its own. What stays is liveness: the group recovers from
    /// each fault within three minutes.
    pub fn chaos(faults: impl IntoIterator<Item = FaultKind>) -> BTreeMap<FaultKind, Budget> {
        faults
            .into_iter()
            .map(|f| {
                let budget = Budget {
                    detection_min_ms: 0,
                    detection_max_ms: CHAOS_RECOVERY_MS,
                    recovery_max_ms: CHAOS_RECOVERY_MS,
                    reaction: false,
                    zombie_max_ms: None,
                };
                (f, budget)
            })
            .collect()
    }

    /// The budget of each fault kind for this broker and protocol.
    pub fn resolve(
        &self,
        broker: &str,
        protocol: Protocol,
        faults: impl IntoIterator<Item = FaultKind>,
        consumer: &ConsumerSettings,
    ) -> Result<BTreeMap<FaultKind, Budget>> {
        let mut out = BTreeMap::new();
        for fault in faults {
            // The most specific entry: the broker spec (`process:tansu`), then its
            // software (`tansu`), then any broker ("*"); within each, this protocol's
            // entry, then every protocol's ("*").
            let software = crate::cluster::software(broker);
            let spec = [broker, software, "*"].iter().find_map(|b| {
                let by_protocol = self.0.get(*b)?;
                [protocol.as_str(), "*"]
                    .iter()
                    .find_map(|p| by_protocol.get(*p).and_then(|f| f.get(fault.as_str())))
            });
            let Some(spec) = spec else {
                bail!("no budget for broker {broker}, protocol {protocol}, fault {fault}: add [{broker}.{protocol}.{fault}] to budgets.toml");
            };
            let detection_min_ms = match spec.detection_min {
                DetectionFloor::Session => consumer
                    .session_timeout_ms
                    .saturating_sub(spec.tolerance_ms),
                DetectionFloor::MaxPoll => consumer
                    .max_poll_interval_ms
                    .saturating_sub(spec.tolerance_ms),
                DetectionFloor::None => 0,
            };
            out.insert(
                fault,
                Budget {
                    detection_min_ms,
                    detection_max_ms: spec.detection_max_ms,
                    recovery_max_ms: spec.recovery_max_ms,
                    reaction: spec.reaction,
                    zombie_max_ms: spec.zombie_max_ms,
                },
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_resolve_against_the_session_timeout() {
        let c = ConsumerSettings {
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 1000,
            max_poll_interval_ms: 10000,
        };
        let b = Budgets::builtin()
            .resolve(
                "mock",
                Protocol::EagerRange,
                [FaultKind::Crash, FaultKind::Join],
                &c,
            )
            .unwrap();
        assert_eq!(b[&FaultKind::Crash].detection_min_ms, 4500);
        assert_eq!(b[&FaultKind::Join].detection_min_ms, 0);
        let empty = Budgets::parse("", "empty").unwrap();
        let e = empty
            .resolve("mock", Protocol::EagerRange, [FaultKind::Crash], &c)
            .unwrap_err();
        assert!(e.to_string().contains("[mock.eager-range.crash]"), "{e}");
    }
}
