//! Brokers in Docker containers: `container:<preset>`. testcontainers starts them (from a
//! local image: the harness never lets it pull one it was not asked to); bollard does what
//! testcontainers lacks (kill -9, restart, listing by label, logs).
//!
//! Like `process:tansu`, a container starts once the network says which proxy address to
//! advertise. Its Kafka port is published on loopback only.
//!
//! Nothing leaks: each container carries the harness's pid and start time as labels and is
//! removed when the cluster drops (a run's success, failure, panic or Ctrl-C all drop
//! it). A harness killed with SIGKILL cannot clean up, so every container start first
//! reaps labelled containers whose owner is gone (`reap_orphans`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use testcontainers::bollard::query_parameters::{
    CreateImageOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StartContainerOptions,
};
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::{admin, await_metadata, block_on, lock, Cluster, ClusterOptions, Unsupported};

/// Labels every harness container carries.
pub const LABEL_OWNER_PID: &str = "org.harness.owner-pid";
pub const LABEL_OWNER_START: &str = "org.harness.owner-start";
pub const LABEL_BROKER: &str = "org.harness.broker";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a pull may take before the preset is reported unavailable.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);
/// Every preset runs one broker; the harness calls it broker 1, as on the mock.
const BROKER: i32 = 1;

/// How a preset's broker is told where it listens and what it advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Tansu,
    Kafka,
    Redpanda,
}

/// A broker image the harness knows how to configure.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    /// `repository:tag`.
    pub image: &'static str,
    /// Built on this machine by `harness images build <name>`; never pulled.
    pub local_only: bool,
    /// Whether the broker serves KIP-848 (ConsumerGroupHeartbeat).
    pub consumer_protocol: bool,
    pub about: &'static str,
    flavour: Flavour,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "tansu",
        image: "harness/tansu:0.6.0",
        local_only: true,
        consumer_protocol: false,
        about: "Tansu 0.6.0, SQLite storage; built offline by `harness images build tansu`",
        flavour: Flavour::Tansu,
    },
    Preset {
        name: "kafka-3.9",
        image: "apache/kafka:3.9.1",
        local_only: false,
        consumer_protocol: false,
        about: "Apache Kafka 3.9 in KRaft mode (classic protocol only)",
        flavour: Flavour::Kafka,
    },
    Preset {
        name: "kafka-4",
        image: "apache/kafka:4.1.1",
        local_only: false,
        consumer_protocol: true,
        about: "Apache Kafka 4.1 in KRaft mode, KIP-848 consumer protocol enabled",
        flavour: Flavour::Kafka,
    },
    Preset {
        name: "redpanda",
        image: "redpandadata/redpanda:v25.2.9",
        local_only: false,
        consumer_protocol: false,
        about: "Redpanda in dev-container mode",
        flavour: Flavour::Redpanda,
    },
];

/// The Kafka listener inside every preset's container.
const KAFKA_PORT: u16 = 9092;

impl Preset {
    pub fn named(name: &str) -> Option<&'static Preset> {
        PRESETS.iter().find(|p| p.name == name)
    }

    fn repository_and_tag(&self) -> (&'static str, &'static str) {
        self.image.rsplit_once(':').expect("presets name a tag")
    }

    /// The container's command, environment and working directory for a broker that
    /// advertises `advertised`.
    fn launch(&self, advertised: SocketAddr, opts: &ClusterOptions) -> Launch {
        let mut launch = Launch::default();
        match self.flavour {
            Flavour::Tansu => {
                launch.cmd = [
                    "broker",
                    "--cluster-id",
                    "harness",
                    "--listener-url",
                    &format!("tcp://0.0.0.0:{KAFKA_PORT}"),
                    "--advertised-listener-url",
                    &format!("tcp://{advertised}"),
                    "--storage-engine",
                    "sqlite://tansu.db",
                ]
                .map(str::to_owned)
                .to_vec();
                launch.working_dir = Some("/var/lib/tansu".into());
            }
            Flavour::Kafka => {
                let env = [
                    ("KAFKA_NODE_ID", "1".to_owned()),
                    ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
                    (
                        "KAFKA_LISTENERS",
                        format!("PLAINTEXT://0.0.0.0:{KAFKA_PORT},CONTROLLER://0.0.0.0:9093"),
                    ),
                    (
                        "KAFKA_ADVERTISED_LISTENERS",
                        format!("PLAINTEXT://{advertised}"),
                    ),
                    (
                        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into(),
                    ),
                    ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
                    ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093".into()),
                    ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
                    ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".into()),
                    ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
                    (
                        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS",
                        opts.initial_rebalance_delay_ms.to_string(),
                    ),
                    // KIP-848: the broker owns these; its minimums default far above
                    // the scenarios' seconds-scale timeouts.
                    (
                        "KAFKA_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS",
                        opts.consumer_session_timeout_ms.to_string(),
                    ),
                    (
                        "KAFKA_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
                        opts.consumer_session_timeout_ms.to_string(),
                    ),
                    (
                        "KAFKA_GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS",
                        opts.consumer_heartbeat_interval_ms.to_string(),
                    ),
                    (
                        "KAFKA_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
                        opts.consumer_heartbeat_interval_ms.to_string(),
                    ),
                ];
                launch.env = env.map(|(k, v)| (k.to_owned(), v)).to_vec();
            }
            Flavour::Redpanda => {
                launch.cmd = [
                    "redpanda",
                    "start",
                    "--mode",
                    "dev-container",
                    "--smp",
                    "1",
                    "--kafka-addr",
                    &format!("PLAINTEXT://0.0.0.0:{KAFKA_PORT}"),
                    "--advertise-kafka-addr",
                    &format!("PLAINTEXT://{advertised}"),
                    "--set",
                    &format!(
                        "redpanda.group_initial_rebalance_delay={}",
                        opts.initial_rebalance_delay_ms
                    ),
                ]
                .map(str::to_owned)
                .to_vec();
            }
        }
        launch
    }
}

#[derive(Default)]
struct Launch {
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: Option<String>,
}

/// The Docker engine, or an error saying it does not answer.
pub fn docker() -> Result<Docker> {
    let docker = Docker::connect_with_defaults().context("cannot reach the Docker engine")?;
    block_on(docker.ping()).context("the Docker engine does not answer (is dockerd running?)")?;
    Ok(docker)
}

/// Makes sure `preset`'s image is on this machine. A local-only image that is missing is
/// an error naming the command that builds it; a registry image that is missing and
/// cannot be pulled is `Unsupported` (the run is reported skipped, with the reason).
async fn ensure_image(docker: &Docker, preset: &Preset) -> Result<()> {
    if docker.inspect_image(preset.image).await.is_ok() {
        return Ok(());
    }
    if preset.local_only {
        bail!(
            "image {} is not on this machine: build it with `harness images build {}` (no registry is needed)",
            preset.image,
            preset.name
        );
    }
    let (repository, tag) = preset.repository_and_tag();
    let options = CreateImageOptions {
        from_image: Some(repository.to_owned()),
        tag: Some(tag.to_owned()),
        ..Default::default()
    };
    let pull = async {
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(step) = stream.next().await {
            step?;
        }
        Ok::<_, testcontainers::bollard::errors::Error>(())
    };
    let why = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {PULL_TIMEOUT:?}"),
    };
    Err(Unsupported(format!(
        "image {} is absent and cannot be pulled ({why})",
        preset.image
    ))
    .into())
}

/// This process's start time (clock ticks since boot, /proc/PID/stat field 22): with the
/// pid, it names the owner even after the pid is reused.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19).map(str::to_owned)
}

/// Removes harness containers whose owning process is gone (it was killed before it
/// could clean up). Returns their names.
pub async fn reap_orphans(docker: &Docker) -> Result<Vec<String>> {
    let filters = HashMap::from([("label".to_owned(), vec![LABEL_OWNER_PID.to_owned()])]);
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("cannot list harness containers")?;
    let mut reaped = Vec::new();
    for c in listed {
        let labels = c.labels.unwrap_or_default();
        let owner_alive = labels
            .get(LABEL_OWNER_PID)
            .and_then(|pid| pid.parse::<u32>().ok())
            .and_then(start_time)
            .is_some_and(|started| labels.get(LABEL_OWNER_START) == Some(&started));
        if owner_alive {
            continue;
        }
        let Some(id) = c.id else { continue };
        remove(docker, &id).await;
        reaped.extend(c.names.unwrap_or_default().into_iter().take(1));
    }
    Ok(reaped)
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    if let Err(e) = docker.remove_container(id, Some(options)).await {
        tracing::warn!("cannot remove container {id}: {e}");
    }
}

pub struct ContainerCluster {
    preset: &'static Preset,
    spec: String,
    docker: Docker,
    opts: ClusterOptions,
    /// The loopback port the broker's Kafka port is published on.
    listener: SocketAddr,
    container: Mutex<Option<ContainerAsync<GenericImage>>>,
}

impl ContainerCluster {
    pub fn start(preset: &'static Preset, opts: &ClusterOptions) -> Result<Self> {
        let docker = docker()?;
        let reaped = block_on(reap_orphans(&docker))?;
        if !reaped.is_empty() {
            tracing::warn!(
                "removed containers left by a killed harness: {}",
                reaped.join(", ")
            );
        }
        block_on(ensure_image(&docker, preset))?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("cannot find a free loopback port to publish the broker on")?;
        Ok(ContainerCluster {
            preset,
            spec: format!("container:{}", preset.name),
            docker,
            opts: opts.clone(),
            listener,
            container: Mutex::new(None),
        })
    }

    /// The running container's id, if it was started.
    pub fn container_id(&self) -> Option<String> {
        lock(&self.container).as_ref().map(|c| c.id().to_owned())
    }

    fn spawn(&self, advertised: SocketAddr) -> Result<()> {
        let mut slot = lock(&self.container);
        if slot.is_some() {
            bail!("{} is already running", self.spec);
        }
        let launch = self.preset.launch(advertised, &self.opts);
        let (repository, tag) = self.preset.repository_and_tag();
        let pid = std::process::id();
        let mut request = GenericImage::new(repository, tag)
            .with_exposed_port(KAFKA_PORT.tcp())
            .with_wait_for(WaitFor::Nothing)
            .with_mapped_port(self.listener.port(), KAFKA_PORT.tcp())
            // Published on loopback only: nothing outside this machine reaches it.
            .with_host_config_modifier(|host| {
                for binding in host.port_bindings.iter_mut().flat_map(|b| b.values_mut()) {
                    for b in binding.iter_mut().flatten() {
                        b.host_ip = Some(Ipv4Addr::LOCALHOST.to_string());
                    }
                }
            })
            .with_container_name(format!(
                "harness-{}-{pid}-{}",
                self.preset.name,
                self.listener.port()
            ))
            .with_label(LABEL_OWNER_PID, pid.to_string())
            .with_label(LABEL_OWNER_START, start_time(pid).unwrap_or_default())
            .with_label(LABEL_BROKER, self.spec.clone())
            .with_cmd(launch.cmd);
        for (k, v) in launch.env {
            request = request.with_env_var(k, v);
        }
        if let Some(dir) = launch.working_dir {
            request = request.with_working_dir(dir);
        }
        let container = block_on(request.start())
            .with_context(|| format!("cannot start {} ({})", self.spec, self.preset.image))?;
        let id = container.id().to_owned();
        *slot = Some(container);
        drop(slot);
        self.await_ready(&id)
    }

    fn await_ready(&self, id: &str) -> Result<()> {
        await_metadata(self.listener, READY_TIMEOUT, || {
            let state = block_on(self.docker.inspect_container(id, None))
                .ok()?
                .state?;
            (!state.running.unwrap_or(false)).then(|| {
                format!(
                    "container {id} stopped at startup (exit code {})",
                    state.exit_code.unwrap_or(-1)
                )
            })
        })
        .with_context(|| {
            format!(
                "{} did not come up; its log ends:\n{}",
                self.spec,
                self.logs(id, 15)
            )
        })
    }

    /// The container's output, its last `tail` lines (0: all of it).
    fn logs(&self, id: &str, tail: usize) -> String {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: if tail == 0 {
                "all".into()
            } else {
                tail.to_string()
            },
            ..Default::default()
        };
        block_on(async {
            let mut out = String::new();
            let mut stream = self.docker.logs(id, Some(options));
            while let Some(Ok(chunk)) = stream.next().await {
                out.push_str(&chunk.to_string());
            }
            out
        })
    }

    fn ensure_started(&self) -> Result<()> {
        if lock(&self.container).is_none() {
            self.spawn(self.listener)?;
        }
        Ok(())
    }

    fn running_id(&self, broker: i32) -> Result<String, Unsupported> {
        if broker != BROKER {
            return Err(Unsupported(format!(
                "{} runs one broker (1), not broker {broker}",
                self.spec
            )));
        }
        self.container_id()
            .ok_or_else(|| Unsupported(format!("{} is not running", self.spec)))
    }
}

impl Cluster for ContainerCluster {
    fn name(&self) -> &str {
        &self.spec
    }

    fn bootstrap_servers(&self) -> String {
        self.listener.to_string()
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.ensure_started()?;
        admin::create_topic(&self.bootstrap_servers(), &self.spec, topic, partitions)
    }

    fn listeners(&self) -> Vec<(i32, SocketAddr)> {
        vec![(BROKER, self.listener)]
    }

    fn can_advertise(&self) -> bool {
        true
    }

    fn advertise(&self, broker: i32, addr: SocketAddr) -> Result<()> {
        if broker != BROKER {
            bail!("{} has no broker {broker}", self.spec);
        }
        self.spawn(addr)
    }

    fn add_partitions(&self, topic: &str, partitions: i32) -> Result<(), Unsupported> {
        admin::add_partitions(&self.bootstrap_servers(), &self.spec, topic, partitions)
    }

    /// docker kill -s KILL: the container stops, its filesystem (and the broker's
    /// storage) stays for the restart.
    fn broker_down(&self, broker: i32) -> Result<(), Unsupported> {
        let id = self.running_id(broker)?;
        let options = KillContainerOptions {
            signal: "KILL".into(),
        };
        block_on(self.docker.kill_container(&id, Some(options)))
            .map_err(|e| Unsupported(format!("cannot kill {}: {e}", self.spec)))
    }

    fn broker_up(&self, broker: i32) -> Result<(), Unsupported> {
        let id = self.running_id(broker)?;
        block_on(
            self.docker
                .start_container(&id, None::<StartContainerOptions>),
        )
        .map_err(|e| Unsupported(format!("cannot restart {}: {e}", self.spec)))?;
        self.await_ready(&id)
            .map_err(|e| Unsupported(format!("{e:#}")))
    }

    fn pause_broker(&self, broker: i32) -> Result<(), Unsupported> {
        let id = self.running_id(broker)?;
        block_on(self.docker.pause_container(&id))
            .map_err(|e| Unsupported(format!("cannot pause {}: {e}", self.spec)))
    }

    fn resume_broker(&self, broker: i32) -> Result<(), Unsupported> {
        let id = self.running_id(broker)?;
        block_on(self.docker.unpause_container(&id))
            .map_err(|e| Unsupported(format!("cannot unpause {}: {e}", self.spec)))
    }
}

impl Drop for ContainerCluster {
    /// Keeps the broker's log with the run's reports, then removes the container.
    fn drop(&mut self) {
        let Some(container) = lock(&self.container).take() else {
            return;
        };
        let id = container.id().to_owned();
        if let Some(dir) = &self.opts.log_dir {
            let log: PathBuf = dir.join(format!("broker-{}.log", self.preset.name));
            if let Err(e) = std::fs::write(&log, self.logs(&id, 0)) {
                tracing::warn!("cannot write {}: {e}", log.display());
            }
        }
        block_on(async {
            if let Err(e) = container.rm().await {
                tracing::warn!("cannot remove container {id}: {e}");
            }
        });
    }
}
