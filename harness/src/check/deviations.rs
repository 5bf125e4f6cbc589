//! Known deviations and client findings: each waives the violations it names (rule,
//! kind, fault kinds, partitions, size), and only while they stay within its bounds. A
//! deviation that would waive more than its bound waives nothing; one that waived
//! nothing is reported stale, so the file never outlives its evidence silently.

use std::collections::BTreeSet;

use super::model::Model;
use super::verdict::{CheckResult, Violation};
use crate::history::{ClientInfo, ClientKey, FaultKind, KnownDeviation};

/// What applying the deviations found beyond the waivers themselves.
#[derive(Debug, Default)]
pub struct Applied {
    /// Ids of deviations that applied to the run but waived nothing.
    pub stale: Vec<String>,
    /// Deviations that held back because they would have waived too much.
    pub notes: Vec<String>,
    /// Some waiver came from a client finding.
    pub client_finding: bool,
}

/// Marks the violations each applicable deviation waives, and each check whose
/// violations are all waived.
pub fn apply(model: &Model, checks: &mut [CheckResult]) -> Applied {
    let mut applied = Applied::default();
    let Some(info) = &model.info else {
        return applied;
    };
    let clients = model.clients();
    let injected: BTreeSet<FaultKind> = model.faults.iter().map(|f| f.fault.kind).collect();
    for (n, d) in info.known_deviations.iter().enumerate() {
        let id = if d.id.is_empty() {
            format!("deviation-{}", n + 1)
        } else {
            d.id.clone()
        };
        let broker_ok = d
            .broker
            .as_deref()
            .is_none_or(|b| b == info.broker || b == software(&info.broker));
        let client_ok = d.client.as_ref().is_none_or(|k| matches_any(k, &clients));
        let cell_ok =
            d.protocols.contains(&info.protocol) && d.faults.iter().any(|f| injected.contains(f));
        if !(broker_ok && client_ok && cell_ok) {
            continue;
        }
        let hits: Vec<(usize, usize)> = checks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name == d.rule)
            .flat_map(|(ci, c)| {
                c.violations
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.waived_by.is_none() && waives(d, v))
                    .map(move |(vi, _)| (ci, vi))
            })
            .collect();
        if hits.is_empty() {
            applied.stale.push(id);
            continue;
        }
        // The count bound is per injected fault: a chaos schedule of nine faults may
        // show a deviation after each of them, but never more often than a single
        // fault's cell did.
        if let Some(max) = d.max_count {
            let mut per_fault: std::collections::BTreeMap<Option<&str>, u64> = Default::default();
            for &(ci, vi) in &hits {
                let fault = checks[ci].violations[vi]
                    .fault
                    .as_ref()
                    .map(|f| f.id.as_str());
                *per_fault.entry(fault).or_default() += 1;
            }
            if let Some((fault, n)) = per_fault.into_iter().find(|(_, n)| *n > max) {
                applied.notes.push(format!(
                    "deviation {id} would waive {n} {} violations{}, more than its bound of {max} per fault: it waives none",
                    d.rule,
                    fault.map_or(String::new(), |f| format!(" after {f}")),
                ));
                continue;
            }
        }
        applied.client_finding |= d.is_client_finding();
        for (ci, vi) in hits {
            checks[ci].violations[vi].waived_by = Some(id.clone());
        }
    }
    for c in checks.iter_mut().filter(|c| !c.passed) {
        if c.unwaived().next().is_none() {
            let ids: BTreeSet<&str> = c
                .violations
                .iter()
                .filter_map(|v| v.waived_by.as_deref())
                .collect();
            let whys: Vec<String> = ids
                .iter()
                .map(|id| {
                    let why = info
                        .known_deviations
                        .iter()
                        .enumerate()
                        .find(|(n, d)| d.id == *id || format!("deviation-{}", n + 1) == *id)
                        .map_or("", |(_, d)| d.why.as_str());
                    format!("{id}: {why}")
                })
                .collect();
            c.known_deviation = Some(whys.join("; "));
        }
    }
    applied
}

/// Whether `d` waives `v` (its rule already matched).
fn waives(d: &KnownDeviation, v: &Violation) -> bool {
    if d.kind.is_some_and(|k| k != v.kind) {
        return false;
    }
    // Histories written before violations were data: the old text match.
    if let Some(text) = &d.matches {
        if !v.message.contains(text.as_str()) {
            return false;
        }
    } else if d.kind.is_none() {
        return false;
    }
    if let Some(f) = &v.fault {
        if !d.faults.contains(&f.kind) {
            return false;
        }
    }
    if !d.partitions.is_empty()
        && !v
            .tp
            .as_ref()
            .is_some_and(|tp| d.partitions.contains(&tp.partition))
    {
        return false;
    }
    d.max_size.is_none_or(|max| v.size <= max)
}

/// Whether any announced client answers to the key, within its version range.
pub fn matches_any(key: &ClientKey, clients: &[ClientInfo]) -> bool {
    clients.iter().any(|c| {
        c.identities().into_iter().any(|(name, version)| {
            name.eq_ignore_ascii_case(&key.name)
                && key
                    .versions
                    .as_deref()
                    .is_none_or(|range| version_in(version, range))
        })
    })
}

/// Whether `version` satisfies the semver requirement `range`; a version that is not
/// semver ("3.9", "2.12.1-RC1") is padded or trimmed first.
pub fn version_in(version: &str, range: &str) -> bool {
    let Ok(req) = semver::VersionReq::parse(range) else {
        return false;
    };
    let core: String = version
        .trim_start_matches('v')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts: Vec<&str> = core.split('.').filter(|p| !p.is_empty()).collect();
    parts.resize(3, "0");
    semver::Version::parse(&parts[..3].join(".")).is_ok_and(|v| req.matches(&v))
}

/// The broker software a spec runs: `process:tansu` and `container:tansu` are `tansu`.
fn software(spec: &str) -> &str {
    spec.rsplit_once(':').map_or(spec, |(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_ranges_leniently() {
        assert!(version_in("2.12.1", ">=2.12.0, <2.13.0"));
        assert!(!version_in("2.16.0", ">=2.12.0, <2.13.0"));
        assert!(version_in("3.9", "^3.9"));
        assert!(version_in("v1.22.1", "=1.22.1"));
        assert!(!version_in("2.12.1", "not a range"));
    }

    #[test]
    fn a_client_matches_by_its_own_name_or_its_library() {
        let c = ClientInfo {
            name: "python-confluent".into(),
            version: "2.16.1".into(),
            library: Some("librdkafka 2.12.1".into()),
        };
        let key = |name: &str, versions: Option<&str>| ClientKey {
            name: name.into(),
            versions: versions.map(str::to_owned),
        };
        let clients = [c];
        assert!(matches_any(&key("librdkafka", Some("~2.12")), &clients));
        assert!(matches_any(&key("python-confluent", None), &clients));
        assert!(!matches_any(&key("librdkafka", Some(">=2.13")), &clients));
        assert!(!matches_any(&key("java", None), &clients));
    }
}
