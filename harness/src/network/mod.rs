//! The path between clients and brokers: one fault proxy in front of each broker, and
//! the brokers advertise the proxies, so every client connection (members and producer)
//! crosses a proxy. Network faults are proxy rules installed on every proxy at once.

use anyhow::{Context, Result};

use crate::cluster::{Cluster, Unsupported};
use crate::proxy::{api, Proxy, ProxyOptions, Rule, RuleId};

/// Group APIs: only the group coordinator serves them, so delaying these on every proxy
/// is latency on the path to the coordinator, whichever broker it is.
pub const COORDINATOR_APIS: &[i16] = &[
    api::FIND_COORDINATOR,
    api::JOIN_GROUP,
    api::SYNC_GROUP,
    api::HEARTBEAT,
    api::LEAVE_GROUP,
    api::OFFSET_COMMIT,
    api::OFFSET_FETCH,
    api::CONSUMER_GROUP_HEARTBEAT,
];

pub struct Network {
    /// `(broker id, proxy)`; empty when the brokers cannot advertise another address.
    proxies: Vec<(i32, Proxy)>,
    bootstrap: String,
    /// Why network faults are unavailable, when `proxies` is empty.
    unavailable: Option<String>,
}

/// Rules installed by [`Network::inject`], removed together by [`Network::heal`].
#[must_use = "a network fault stays in force until healed"]
pub struct Injected(Vec<(usize, RuleId)>);

impl Network {
    /// Starts a proxy for each broker and makes the broker advertise it; the backend's
    /// compatibility rules go on every proxy. A backend that cannot advertise another
    /// address is used directly, without network faults. `seed` seeds the proxies'
    /// latency jitter, so a replay draws the same delays.
    pub async fn front(cluster: &dyn Cluster, seed: u64) -> Result<Network> {
        let mut proxies = Vec::new();
        if cluster.can_advertise() {
            for (broker, listener) in cluster.listeners() {
                let options = ProxyOptions {
                    seed: Some(seed ^ (broker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    mock_responses: cluster.needs_response_fixes(),
                    ..ProxyOptions::default()
                };
                let proxy = Proxy::start_with(listener, options)
                    .await
                    .with_context(|| format!("cannot start the fault proxy for broker {broker}"))?;
                cluster.advertise(broker, proxy.addr())?;
                for rule in cluster.compat_rules() {
                    proxy.add_rule(rule);
                }
                proxies.push((broker, proxy));
            }
        }
        if proxies.is_empty() {
            return Ok(Network {
                proxies,
                bootstrap: cluster.bootstrap_servers(),
                unavailable: Some(format!(
                    "broker {} does not expose its listeners to a proxy",
                    cluster.name()
                )),
            });
        }
        let bootstrap = proxies
            .iter()
            .map(|(_, p)| p.addr().to_string())
            .collect::<Vec<_>>()
            .join(",");
        Ok(Network {
            proxies,
            bootstrap,
            unavailable: None,
        })
    }

    /// Where clients bootstrap from: the proxies when there are any.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap.clone()
    }

    /// Installs `rules` on every proxy. `Err` when this network has no proxies.
    pub fn inject(&self, rules: &[Rule]) -> Result<Injected, Unsupported> {
        if let Some(why) = &self.unavailable {
            return Err(Unsupported(format!("no network faults: {why}")));
        }
        let mut ids = Vec::new();
        for (i, (_, proxy)) in self.proxies.iter().enumerate() {
            for rule in rules {
                ids.push((i, proxy.add_rule(rule.clone())));
            }
        }
        Ok(Injected(ids))
    }

    /// Removes the rules of one injection; held frames are then delivered in order.
    pub fn heal(&self, injected: Injected) {
        for (i, id) in injected.0 {
            self.proxies[i].1.remove_rule(id);
        }
    }

    /// Frames the rules of `injected` acted on, summed over the proxies.
    pub fn frames_hit(&self, injected: &Injected) -> u64 {
        injected
            .0
            .iter()
            .filter_map(|(i, id)| self.proxies[*i].1.stats(*id))
            .map(|s| s.frames_matched)
            .sum()
    }
}
