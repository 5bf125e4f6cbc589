//! Known deviations (keyed by broker) and client findings (keyed by client) from
//! fixtures/known-deviations.toml, resolved per run so the history carries them and an
//! offline re-check reaches the same verdict. Client keys are matched by the checker
//! against the clients the members announce.

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::history::{FaultKind, KnownDeviation, Protocol};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    deviation: Vec<KnownDeviation>,
}

const SHIPPED: &str = include_str!("../../../fixtures/known-deviations.toml");

/// Every shipped deviation, validated: each names an id, a rule and a kind of that rule,
/// a broker or a client, and the cells it applies to.
pub fn all() -> Result<Vec<KnownDeviation>> {
    parse(SHIPPED, "fixtures/known-deviations.toml")
}

fn parse(text: &str, origin: &str) -> Result<Vec<KnownDeviation>> {
    let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let mut ids = std::collections::BTreeSet::new();
    for d in &file.deviation {
        let at = format!("{origin}: deviation {:?}", d.id);
        if d.id.is_empty() || !ids.insert(d.id.clone()) {
            bail!("{at}: every deviation needs a unique `id`");
        }
        let Some(kind) = d.kind else {
            bail!("{at}: name the `kind` of {} violation it waives", d.rule);
        };
        if kind.rule() != d.rule {
            bail!(
                "{at}: kind {kind} belongs to rule {}, not {}",
                kind.rule(),
                d.rule
            );
        }
        if d.matches.is_some() {
            bail!("{at}: `matches` (text) is only read from old histories; use `kind` and bounds");
        }
        if d.broker.is_none() && d.client.is_none() {
            bail!("{at}: key it by `broker`, `client` or both");
        }
        if d.protocols.is_empty() || d.faults.is_empty() {
            bail!("{at}: list the `protocols` and `faults` it applies to");
        }
        if let Some(range) = d.client.as_ref().and_then(|c| c.versions.as_deref()) {
            semver::VersionReq::parse(range)
                .map_err(|e| anyhow::anyhow!("{at}: client versions {range:?}: {e}"))?;
        }
        if d.observed.trim().is_empty() || d.why.trim().is_empty() {
            bail!("{at}: say what was `observed` and `why`");
        }
    }
    Ok(file.deviation)
}

/// The shipped deviations that may apply to a run of `protocol` on `broker` injecting
/// `faults` (those keyed by client are kept: the checker matches the clients).
pub fn known_deviations(
    broker: &str,
    protocol: Protocol,
    faults: impl IntoIterator<Item = FaultKind>,
) -> Result<Vec<KnownDeviation>> {
    let faults: Vec<FaultKind> = faults.into_iter().collect();
    let software = crate::cluster::software(broker);
    Ok(all()?
        .into_iter()
        .filter(|d| {
            d.broker
                .as_deref()
                .is_none_or(|b| b == broker || b == software)
                && d.protocols.contains(&protocol)
                && d.faults.iter().any(|f| faults.contains(f))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_deviations_parse_and_select_by_cell() {
        let all = all().unwrap();
        assert!(!all.is_empty());
        let d = known_deviations("mock", Protocol::Consumer, [FaultKind::Crash]).unwrap();
        assert!(d.iter().all(|d| d.protocols.contains(&Protocol::Consumer)));
        assert!(
            known_deviations("mock", Protocol::EagerRange, [FaultKind::PauseShort])
                .unwrap()
                .iter()
                .all(|d| d.broker.is_none())
        );
    }

    #[test]
    fn a_deviation_without_a_kind_or_key_is_refused() {
        let base = r#"
[[deviation]]
id = "x"
broker = "mock"
protocols = ["eager-range"]
faults = ["crash"]
rule = "protocol"
kind = "rebalances"
observed = "o"
why = "w"
"#;
        assert!(parse(base, "t").is_ok());
        let e = parse(&base.replace("kind = \"rebalances\"\n", ""), "t").unwrap_err();
        assert!(e.to_string().contains("name the `kind`"), "{e}");
        let e = parse(
            &base.replace("kind = \"rebalances\"", "kind = \"lost\""),
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("belongs to rule no_loss"), "{e}");
        let e = parse(&base.replace("broker = \"mock\"\n", ""), "t").unwrap_err();
        assert!(e.to_string().contains("key it by"), "{e}");
        let e = parse(
            &base.replace(
                "kind = \"rebalances\"",
                "kind = \"rebalances\"\nmatches = \"x\"",
            ),
            "t",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("only read from old histories"),
            "{e}"
        );
    }
}
