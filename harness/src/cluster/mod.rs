//! Broker backends behind one trait. `mock` (librdkafka's mock cluster, in process) is
//! the embedded default; `process:tansu` runs a broker binary as a child process and
//! `container:<preset>` runs brokers in Docker. Clients only ever see
//! `bootstrap_servers()`: the address the brokers advertise, which is where the fault
//! proxy sits.

pub mod container;
mod mock;
mod process;

pub use container::{ContainerCluster, Preset, PRESETS};
pub use mock::MockCluster;
pub use process::{tansu_binary, TansuProcess, TANSU_INSTALL};

use std::net::SocketAddr;

use anyhow::{bail, Result};

use crate::history::Protocol;

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

    /// Whether the proxies must fix this broker's responses where they break the Kafka
    /// protocol (librdkafka's mock: see `proxy::compat`).
    fn needs_response_fixes(&self) -> bool {
        false
    }

    /// Proxy rules that make this broker behave as Kafka does for every client, installed
    /// on every proxy for the whole run (not faults: the history does not record them).
    fn compat_rules(&self) -> Vec<crate::proxy::Rule> {
        Vec::new()
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

    /// Freezes a broker (SIGSTOP, docker pause): connections stay open, nothing answers.
    fn pause_broker(&self, broker: i32) -> Result<(), Unsupported> {
        let _ = broker;
        Err(Unsupported(format!(
            "broker {} cannot pause a broker",
            self.name()
        )))
    }

    fn resume_broker(&self, broker: i32) -> Result<(), Unsupported> {
        let _ = broker;
        Err(Unsupported(format!(
            "broker {} cannot resume a broker",
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
pub fn brokers() -> Vec<String> {
    ["mock", "process:tansu"]
        .into_iter()
        .map(str::to_owned)
        .chain(PRESETS.iter().map(|p| format!("container:{}", p.name)))
        .collect()
}

/// The broker software a spec runs, whatever hosts it: `process:tansu` and
/// `container:tansu` are both `tansu`. Budgets and known deviations may be keyed by it.
pub fn software(spec: &str) -> &str {
    spec.rsplit_once(':').map_or(spec, |(_, software)| software)
}

/// Checks a `--broker` spec without starting anything.
pub fn check_spec(spec: &str) -> Result<()> {
    if brokers().iter().any(|b| b == spec) {
        return Ok(());
    }
    bail!(
        "unknown broker '{spec}': supported brokers are {}",
        brokers().join(", ")
    )
}

const TANSU_NO_KIP345: &str = "Tansu 0.6.0 does not implement static membership (KIP-345): a member with group.instance.id cycles through rebalances forever and never settles (fixtures/findings/tansu-0.6.0.md, section 4)";
const TANSU_NO_KIP848: &str =
    "Tansu 0.6.0 does not implement the KIP-848 consumer protocol (ConsumerGroupHeartbeat)";

/// Why `broker` cannot host `protocol`, if it cannot: the cell is reported skipped.
pub fn lacks_protocol(broker: &str, protocol: Protocol) -> Option<String> {
    if software(broker) == "tansu" && protocol.is_static() {
        return Some(TANSU_NO_KIP345.to_owned());
    }
    if !protocol.is_consumer() {
        return None;
    }
    if software(broker) == "tansu" {
        return Some(TANSU_NO_KIP848.to_owned());
    }
    let preset = broker.strip_prefix("container:").and_then(Preset::named)?;
    (!preset.consumer_protocol).then(|| {
        format!(
            "{} ({}) does not enable the KIP-848 consumer protocol",
            preset.name, preset.image
        )
    })
}

/// Starts the brokers named by `spec`. A broker that cannot run on this machine at all
/// (a preset whose image is absent and cannot be pulled) is an `Unsupported` error, so
/// the run is reported skipped; anything else that goes wrong is an ordinary error.
pub fn start(spec: &str, opts: &ClusterOptions) -> Result<Box<dyn Cluster>> {
    check_spec(spec)?;
    match spec {
        "mock" => Ok(Box::new(MockCluster::start(opts)?)),
        "process:tansu" => Ok(Box::new(TansuProcess::start(opts)?)),
        container => {
            let preset = container
                .strip_prefix("container:")
                .and_then(Preset::named)
                .expect("check_spec accepted it");
            Ok(Box::new(ContainerCluster::start(preset, opts)?))
        }
    }
}

/// A backend's state lock; a panic elsewhere must not stop Drop from killing a broker.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits for a future from the backends' synchronous methods, inside the harness's
/// runtime or not.
pub(crate) fn block_on<F>(f: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Builder, Handle, RuntimeFlavor};
    let own_runtime = |f: F| {
        Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for one call")
            .block_on(f)
    };
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(f))
        }
        // A current-thread runtime cannot block in place: wait on another thread.
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| own_runtime(f))
                .join()
                .expect("the waiting thread does not panic")
        }),
        Err(_) => own_runtime(f),
    }
}

/// Waits until a broker at `addr` answers a metadata request, polling `exited` for a
/// broker that died first (its message is the error).
pub(crate) fn await_metadata(
    addr: SocketAddr,
    timeout: std::time::Duration,
    exited: impl FnMut() -> Option<String>,
) -> Result<()> {
    // Called from async code on a runtime worker: hand the worker's queue to another
    // thread while this blocks, or the proxy task parked in its LIFO slot (which no
    // other worker may steal) cannot run, and a broker answering through it waits.
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| poll_metadata(addr, timeout, exited))
        }
        _ => poll_metadata(addr, timeout, exited),
    }
}

fn poll_metadata(
    addr: SocketAddr,
    timeout: std::time::Duration,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<()> {
    use rdkafka::producer::{BaseProducer, Producer};
    let client: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", addr.to_string())
        .set("log_level", "0")
        .create()?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(why) = exited() {
            bail!("{why}");
        }
        if client
            .client()
            .fetch_metadata(None, std::time::Duration::from_millis(500))
            .is_ok()
        {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("no metadata answer from {addr} within {timeout:?}");
        }
    }
}

/// Topic administration through Kafka's admin API, for the real brokers.
pub(crate) mod admin {
    use std::time::Duration;

    use anyhow::{bail, Context, Result};
    use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;

    use super::{block_on, Unsupported};

    fn client(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>> {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("log_level", "3")
            .create()
            .context("cannot create an admin client")
    }

    fn options() -> AdminOptions {
        AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
    }

    pub fn create_topic(bootstrap: &str, broker: &str, topic: &str, partitions: i32) -> Result<()> {
        let admin = client(bootstrap)?;
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let results = block_on(admin.create_topics([&new], &options()))
            .with_context(|| format!("{broker}: cannot create topic {topic}"))?;
        for r in results {
            if let Err((t, e)) = r {
                bail!("{broker} refused to create topic {t}: {e}");
            }
        }
        Ok(())
    }

    pub fn add_partitions(
        bootstrap: &str,
        broker: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<(), Unsupported> {
        let admin = client(bootstrap).map_err(|e| Unsupported(format!("{e:#}")))?;
        let grow = NewPartitions::new(topic, partitions as usize);
        match block_on(admin.create_partitions([&grow], &options())) {
            Ok(results) => match results.into_iter().find_map(|r| r.err()) {
                None => Ok(()),
                Some((t, e)) => Err(Unsupported(format!(
                    "{broker} refused to grow {t} to {partitions} partitions: {e}"
                ))),
            },
            Err(e) => Err(Unsupported(format!(
                "{broker} cannot grow {topic} to {partitions} partitions: {e}"
            ))),
        }
    }
}
