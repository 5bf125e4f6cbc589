//! The protocol x fault table (fixtures/expectations.toml), resolved per run so the
//! history carries what each fault's window must show.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::history::{CellExpectation, FaultKind, Protocol};

const SHIPPED: &str = include_str!("../../../fixtures/expectations.toml");

/// fault -> (protocol-independent fields and per-protocol overrides).
type Table = BTreeMap<String, toml::Table>;

/// What each of `faults` must show under `protocol`.
pub fn cell_expectations(
    protocol: Protocol,
    faults: impl IntoIterator<Item = FaultKind>,
) -> Result<BTreeMap<FaultKind, CellExpectation>> {
    let table: Table =
        toml::from_str(SHIPPED).map_err(|e| anyhow::anyhow!("fixtures/expectations.toml: {e}"))?;
    let mut out = BTreeMap::new();
    for fault in faults {
        let Some(entry) = table.get(fault.as_str()) else {
            continue;
        };
        // Fields for every protocol, then this protocol's overrides.
        let mut merged: toml::Table = entry
            .iter()
            .filter(|(_, v)| !v.is_table())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(toml::Value::Table(over)) = entry.get(protocol.as_str()) {
            merged.extend(over.clone());
        }
        let exp: CellExpectation = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| anyhow::anyhow!("fixtures/expectations.toml [{fault}]: {e}"))?;
        out.insert(fault, exp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_protocol() {
        use FaultKind::*;
        let e = cell_expectations(Protocol::StaticEager, [Restart, PauseShort, Crash]).unwrap();
        assert_eq!(e[&Restart].rebalances_max, Some(0));
        assert!(e[&Restart].same_assignment);
        assert_eq!(e[&PauseShort].rebalances_max, Some(0));
        assert!(!e.contains_key(&Crash));
        let e = cell_expectations(Protocol::EagerRange, [Restart]).unwrap();
        assert_eq!(e[&Restart].rebalances_max, Some(2));
        assert!(!e[&Restart].same_assignment);
    }
}
