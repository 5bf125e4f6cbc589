//! Broker backends behind one trait. `mock` (librdkafka's mock cluster, in process) is
//! the embedded default; `process` and `container` backends plug in behind the same
//! trait. Clients only ever see `bootstrap_servers()`: the address the brokers
//! advertise, which is where the fault proxy will sit.

mod mock;
mod process;

pub use mock::MockCluster;
pub use process::{tansu_binary, TansuProcess, TANSU_INSTALL};

use std::net::SocketAddr;

use anyhow::{bail, Result};

/// A running set of brokers the harness can point clients at.
pub trait Cluster: Send + Sync {
    /// The broker spec this cluster was started from, e.g. `mock`.
    fn name(&self) -> &str;
    /// Comma-separated `host:port` list clients bootstrap from.
    fn bootstrap_servers(&self) -> String;
    /// Creates a topic; must complete before any consumer subscribes.
    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()>;

    /// Each broker's id and the address it listens on (where its proxy forwards to).
    fn listeners(&self) -> Vec<(i32, SocketAddr)> {
        Vec::new()
    }

    /// Whether the brokers can advertise another address (their proxies'); without it,
    /// clients connect directly and network faults are unavailable.
    fn can_advertise(&self) -> bool {
        false
    }

    /// Makes `broker` advertise `addr` in metadata (its proxy) instead of its listener.
    fn advertise(&self, broker: i32, addr: SocketAddr) -> Result<()> {
        let _ = (broker, addr);
        bail!("broker {} cannot advertise a proxy address", self.name())
    }

    /// Grows `topic` to `partitions` partitions.
    fn add_partitions(&self, topic: &str, partitions: i32) -> Result<(), Unsupported> {
        let _ = (topic, partitions);
        Err(Unsupported(format!(
            "broker {} cannot add partitions",
            self.name()
        )))
    }

    /// Stops a broker: it refuses connections until `broker_up`.
    fn broker_down(&self, broker: i32) -> Result<(), Unsupported> {
        let _ = broker;
        Err(Unsupported(format!(
            "broker {} cannot take a broker down",
            self.name()
        )))
    }

    fn broker_up(&self, broker: i32) -> Result<(), Unsupported> {
        let _ = broker;
        Err(Unsupported(format!(
            "broker {} cannot bring a broker up",
            self.name()
        )))
    }

    /// Makes `broker` the coordinator of `group`.
    fn move_coordinator(&self, group: &str, broker: i32) -> Result<(), Unsupported> {
        let _ = (group, broker);
        Err(Unsupported(format!(
            "broker {} cannot move a group coordinator",
            self.name()
        )))
    }
}

/// A fault this broker backend cannot inject: the cell is reported skipped, never passed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Settings a broker backend needs to host a scenario's group.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub brokers: i32,
    /// The delay before the first rebalance of an empty group (Kafka's
    /// group.initial.rebalance.delay.ms).
    pub initial_rebalance_delay_ms: i32,
    /// KIP-848 groups: the broker owns session timeout and heartbeat interval.
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
    /// Where a broker process writes its log (the run's report directory).
    pub log_dir: Option<std::path::PathBuf>,
}

/// Brokers the harness knows how to start, by `--broker` spec.
pub const BROKERS: &[&str] = &["mock", "process:tansu"];

/// Why `broker` cannot host `protocol`, if it cannot.
pub fn lacks_protocol(broker: &str, protocol: &str) -> Option<String> {
    (broker == "process:tansu" && protocol == "consumer").then(|| {
        "Tansu 0.6.0 does not implement the KIP-848 consumer protocol (ConsumerGroupHeartbeat)"
            .to_owned()
    })
}

pub fn start(spec: &str, opts: &ClusterOptions) -> Result<Box<dyn Cluster>> {
    match spec {
        "mock" => Ok(Box::new(MockCluster::start(opts)?)),
        "process:tansu" => Ok(Box::new(TansuProcess::start(opts)?)),
        other => bail!(
            "unknown broker '{other}': supported brokers are {}",
            BROKERS.join(", ")
        ),
    }
}
