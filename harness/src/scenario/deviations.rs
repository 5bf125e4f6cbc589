//! Known deviations from fixtures/known-deviations.toml, resolved per run so the history
//! carries them and an offline re-check reaches the same verdict.

use anyhow::Result;
use serde::Deserialize;

use crate::history::KnownDeviation;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    deviation: Vec<KnownDeviation>,
}

const SHIPPED: &str = include_str!("../../../fixtures/known-deviations.toml");

/// The shipped deviations that apply to a run of `protocol` on `broker` injecting `faults`.
pub fn known_deviations<'a>(
    broker: &str,
    protocol: &str,
    faults: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<KnownDeviation>> {
    let file: File = toml::from_str(SHIPPED)
        .map_err(|e| anyhow::anyhow!("fixtures/known-deviations.toml: {e}"))?;
    let faults: Vec<&str> = faults.into_iter().collect();
    Ok(file
        .deviation
        .into_iter()
        .filter(|d| {
            (d.broker == broker || d.broker == crate::cluster::software(broker))
                && d.protocols.iter().any(|p| p == protocol)
                && d.faults.iter().any(|f| faults.contains(&f.as_str()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_deviations_parse_and_select_by_cell() {
        let d = known_deviations("mock", "consumer", ["crash", "join"]).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].check, "protocol");
        assert!(known_deviations("mock", "eager-range", ["crash"])
            .unwrap()
            .is_empty());
    }
}
