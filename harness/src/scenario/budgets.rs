//! Latency budgets from fixtures/budgets.toml, keyed by (broker, protocol, fault) and
//! resolved against the scenario's consumer settings before a run starts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::history::{Budget, ConsumerSettings};

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

    /// The budget of each fault kind for this broker and protocol.
    pub fn resolve<'a>(
        &self,
        broker: &str,
        protocol: &str,
        faults: impl IntoIterator<Item = &'a str>,
        consumer: &ConsumerSettings,
    ) -> Result<BTreeMap<String, Budget>> {
        let mut out = BTreeMap::new();
        for fault in faults {
            // The most specific entry: the broker spec (`process:tansu`), then its
            // software (`tansu`), then any broker ("*"); within each, this protocol's
            // entry, then every protocol's ("*").
            let software = crate::cluster::software(broker);
            let spec = [broker, software, "*"].iter().find_map(|b| {
                let by_protocol = self.0.get(*b)?;
                [protocol, "*"]
                    .iter()
                    .find_map(|p| by_protocol.get(*p).and_then(|f| f.get(fault)))
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
                fault.to_owned(),
                Budget {
                    detection_min_ms,
                    detection_max_ms: spec.detection_max_ms,
                    recovery_max_ms: spec.recovery_max_ms,
                    reaction: spec.reaction,
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
            .resolve("mock", "eager-range", ["crash", "join"], &c)
            .unwrap();
        assert_eq!(b["crash"].detection_min_ms, 4500);
        assert_eq!(b["join"].detection_min_ms, 0);
        let e = Budgets::builtin()
            .resolve("mock", "eager-range", ["teleport"], &c)
            .unwrap_err();
        assert!(e.to_string().contains("[mock.eager-range.teleport]"), "{e}");
    }
}
