//! The protocol x fault table (fixtures/expectations.toml), resolved per run so the
//! history carries what each fault's window must show.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::history::CellExpectation;

const SHIPPED: &str = include_str!("../../../fixtures/expectations.toml");

/// fault -> (protocol-independent fields and per-protocol overrides).
type Table = BTreeMap<String, toml::Table>;

/// What each of `faults` must show under `protocol`.
pub fn cell_expectations<'a>(
    protocol: &str,
    faults: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, CellExpectation>> {
    let table: Table =
        toml::from_str(SHIPPED).map_err(|e| anyhow::anyhow!("fixtures/expectations.toml: {e}"))?;
    let mut out = BTreeMap::new();
    for fault in faults {
        let Some(entry) = table.get(fault) else {
            continue;
        };
        // Fields for every protocol, then this protocol's overrides.
        let mut merged: toml::Table = entry
            .iter()
            .filter(|(_, v)| !v.is_table())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(toml::Value::Table(over)) = entry.get(protocol) {
            merged.extend(over.clone());
        }
        let exp: CellExpectation = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| anyhow::anyhow!("fixtures/expectations.toml [{fault}]: {e}"))?;
        out.insert(fault.to_owned(), exp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_per_protocol() {
        let e = cell_expectations("static-eager", ["restart", "pause-short", "crash"]).unwrap();
        assert_eq!(e["restart"].rebalances_max, Some(0));
        assert!(e["restart"].same_assignment);
        assert_eq!(e["pause-short"].rebalances_max, Some(0));
        assert!(!e.contains_key("crash"));
        let e = cell_expectations("eager-range", ["restart"]).unwrap();
        assert_eq!(e["restart"].rebalances_max, Some(2));
        assert!(!e["restart"].same_assignment);
    }
}
