//! Scenarios: what to start, which faults to inject when, and what the end state must
//! be. Loaded from TOML; the built-in catalogue is the TOML in fixtures/scenarios.

mod budgets;
mod deviations;

pub use budgets::Budgets;
pub use deviations::known_deviations;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::history::ConsumerSettings;

#[derive(Debug, Clone, Deserialize)]
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
    #[serde(default)]
    pub final_balanced_over: Option<Vec<String>>,
    pub consumer: ConsumerSettings,
    pub steps: Vec<Step>,
}

fn default_await_timeout() -> u64 {
    60_000
}

/// One step of a scenario, run in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Start these members (not a fault: the group's initial membership).
    Start(Vec<String>),
    /// Wait until exactly these members hold every partition, evenly, and consume.
    AwaitBalanced(Vec<String>),
    /// Fault `crash`: SIGKILL the member.
    Crash(String),
    /// Fault `join`: start a new member (scale up).
    Join(String),
}

impl Step {
    /// The fault kind this step injects, if it is a fault.
    pub fn fault_kind(&self) -> Option<&'static str> {
        match self {
            Step::Crash(_) => Some("crash"),
            Step::Join(_) => Some("join"),
            Step::Start(_) | Step::AwaitBalanced(_) => None,
        }
    }
}

/// The built-in catalogue, by name.
const CATALOGUE: &[(&str, &str)] = &[(
    "seed",
    include_str!("../../../fixtures/scenarios/seed.toml"),
)];

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

    pub fn parse(text: &str, origin: &str) -> Result<Scenario> {
        let s: Scenario = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        s.validate()
            .with_context(|| format!("{origin}: invalid scenario"))?;
        Ok(s)
    }

    /// Members must exist before they are hit, not be started twice, and be alive when
    /// awaited.
    fn validate(&self) -> Result<()> {
        if self.partitions < 1 {
            bail!("partitions must be at least 1");
        }
        let c = &self.consumer;
        if c.heartbeat_interval_ms >= c.session_timeout_ms {
            bail!("heartbeat_interval_ms must be below session_timeout_ms");
        }
        let mut alive: BTreeSet<&str> = BTreeSet::new();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("step {}", i + 1);
            match step {
                Step::Start(ms) => {
                    for m in ms {
                        if !seen.insert(m) {
                            bail!("{at}: member {m} is started twice");
                        }
                        alive.insert(m);
                    }
                }
                Step::Join(m) => {
                    if !seen.insert(m) {
                        bail!("{at}: member {m} joins but was already started");
                    }
                    alive.insert(m);
                }
                Step::Crash(m) => {
                    if !alive.remove(m.as_str()) {
                        bail!("{at}: crash of {m}, which is not running at that point");
                    }
                }
                Step::AwaitBalanced(ms) => {
                    for m in ms {
                        if !alive.contains(m.as_str()) {
                            bail!("{at}: awaits {m}, which is not running at that point");
                        }
                    }
                }
            }
        }
        if let Some(fin) = &self.final_balanced_over {
            for m in fin {
                if !alive.contains(m.as_str()) {
                    bail!("final_balanced_over names {m}, which is not running at the end");
                }
            }
        }
        Ok(())
    }

    pub fn fault_kinds(&self) -> BTreeSet<&'static str> {
        self.steps.iter().filter_map(Step::fault_kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_scenario_loads() {
        let s = Scenario::builtin("seed").unwrap();
        assert_eq!(s.partitions, 6);
        assert_eq!(s.steps[2], Step::Crash("C2".into()));
        assert_eq!(
            s.fault_kinds().into_iter().collect::<Vec<_>>(),
            vec!["crash", "join"]
        );
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        let seed = include_str!("../../../fixtures/scenarios/seed.toml");
        let e = Scenario::builtin("nope").unwrap_err().to_string();
        assert!(
            e.contains("unknown scenario 'nope'") && e.contains("seed"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            Scenario::parse(&seed.replace("crash = \"C2\"", "crash = \"C9\""), "x").unwrap_err()
        );
        assert!(e.contains("crash of C9"), "{e}");
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
