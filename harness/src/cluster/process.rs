//! A broker binary run as a child process: `process:tansu` (Tansu 0.6.0 from crates.io,
//! memory storage, one broker). The broker takes the address it advertises only as a
//! startup flag, so it starts when the network tells it which proxy to advertise (or,
//! with no proxy, on first use, advertising its own listener).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

use super::{Cluster, ClusterOptions, Unsupported};

/// How to install the broker when it is missing.
pub const TANSU_INSTALL: &str = "cargo install tansu@0.6.0 --locked --features dynostore";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Tansu numbers its only node 0... the harness calls it broker 1, as on the mock.
const BROKER: i32 = 1;

pub struct TansuProcess {
    binary: PathBuf,
    listener: SocketAddr,
    log: PathBuf,
    child: Mutex<Option<Child>>,
}

/// The tansu binary: $TANSU_BIN, else `tansu` on PATH, else ~/.cargo/bin/tansu.
pub fn tansu_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("TANSU_BIN={} is not a file", p.display());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("tansu"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    let cargo_bin = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/tansu"));
    on_path
        .or(cargo_bin.filter(|p| p.is_file()))
        .with_context(|| {
            format!("broker process:tansu needs the tansu binary (0.6.0), which is not installed: run `{TANSU_INSTALL}` or set TANSU_BIN")
        })
}

impl TansuProcess {
    pub fn start(opts: &ClusterOptions) -> Result<Self> {
        let binary = tansu_binary()?;
        // A free loopback port: bound, then released for the broker to take.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("cannot find a free loopback port for tansu")?;
        let log = opts
            .log_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .join("broker-tansu.log");
        Ok(TansuProcess {
            binary,
            listener,
            log,
            child: Mutex::new(None),
        })
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the broker advertising `advertised`, and waits until it answers metadata.
    fn spawn(&self, advertised: SocketAddr) -> Result<()> {
        let mut child = self.child();
        if child.is_some() {
            bail!("tansu is already running");
        }
        let log = std::fs::File::create(&self.log)
            .with_context(|| format!("cannot create {}", self.log.display()))?;
        let spawned = Command::new(&self.binary)
            .args([
                "broker",
                "--cluster-id",
                "harness",
                "--listener-url",
                &format!("tcp://{}", self.listener),
                "--advertised-listener-url",
                &format!("tcp://{advertised}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so the harness can always take it down whole.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        *child = Some(spawned);
        drop(child);
        self.await_ready()
    }

    fn ensure_started(&self) -> Result<()> {
        if self.child().is_none() {
            self.spawn(self.listener)?;
        }
        Ok(())
    }

    /// Waits until the broker answers a metadata request; a broker that exits first is
    /// an error quoting its log.
    fn await_ready(&self) -> Result<()> {
        let client: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", self.listener.to_string())
            .set("log_level", "0")
            .create()?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "tansu exited at startup ({status}); end of {}:\n{}",
                    self.log.display(),
                    tail(&self.log)
                );
            }
            if client
                .client()
                .fetch_metadata(None, Duration::from_millis(500))
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "tansu did not answer metadata on {} within {READY_TIMEOUT:?}; end of {}:\n{}",
                    self.listener,
                    self.log.display(),
                    tail(&self.log)
                );
            }
        }
    }

    fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        ClientConfig::new()
            .set("bootstrap.servers", self.listener.to_string())
            .set("log_level", "3")
            .create()
            .context("cannot create an admin client for tansu")
    }
}

/// Waits for an admin future from synchronous code, inside the harness's runtime or not.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => tokio::task::block_in_place(|| h.block_on(f)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for one admin call")
            .block_on(f),
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Cluster for TansuProcess {
    fn name(&self) -> &str {
        "process:tansu"
    }

    fn bootstrap_servers(&self) -> String {
        self.listener.to_string()
    }

    fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.ensure_started()?;
        let admin = self.admin()?;
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = block_on(admin.create_topics([&new], &opts))
            .with_context(|| format!("tansu: cannot create topic {topic}"))?;
        for r in results {
            if let Err((t, e)) = r {
                bail!("tansu refused to create topic {t}: {e}");
            }
        }
        Ok(())
    }

    fn listeners(&self) -> Vec<(i32, SocketAddr)> {
        vec![(BROKER, self.listener)]
    }

    fn can_advertise(&self) -> bool {
        true
    }

    fn advertise(&self, broker: i32, addr: SocketAddr) -> Result<()> {
        if broker != BROKER {
            bail!("tansu has no broker {broker}");
        }
        self.spawn(addr)
    }

    fn add_partitions(&self, topic: &str, partitions: i32) -> Result<(), Unsupported> {
        let admin = self.admin().map_err(|e| Unsupported(format!("{e:#}")))?;
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let grow = NewPartitions::new(topic, partitions as usize);
        match block_on(admin.create_partitions([&grow], &opts)) {
            Ok(results) => match results.into_iter().find_map(|r| r.err()) {
                None => Ok(()),
                Some((t, e)) => Err(Unsupported(format!(
                    "tansu refused to grow {t} to {partitions} partitions: {e}"
                ))),
            },
            Err(e) => Err(Unsupported(format!(
                "tansu cannot grow {topic} to {partitions} partitions: {e}"
            ))),
        }
    }

    fn broker_down(&self, _broker: i32) -> Result<(), Unsupported> {
        Err(Unsupported(
            "process:tansu keeps its data in memory, so a restarted broker would come back empty: broker-bounce needs persistent storage".into(),
        ))
    }
}

impl Drop for TansuProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child().take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}
