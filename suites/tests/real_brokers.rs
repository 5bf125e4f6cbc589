//! Real brokers: Tansu as a child process (`process:tansu`) and in a container
//! (`container:tansu`, the image `harness images build tansu` makes offline), driven
//! through the `harness` binary as a user would.
//!
//! These need the tansu binary and, for containers, a Docker engine and the image. .ci/run
//! provides them and sets HARNESS_REAL_BROKERS=require, so there a missing piece fails;
//! elsewhere a test without them says so and returns. They run one at a time (nextest
//! group `real-brokers`).
//!
//! Leak-proofing: after success, failure, Ctrl-C, SIGTERM, SIGKILL and a panic, no broker
//! process, member process or container of the run is left.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use suites::{bin, report_dir};

/// Generous deadlines: these wait on events, never on fixed sleeps.
const EVENT_DEADLINE: Duration = Duration::from_secs(120);

/// Whether the pieces `broker` needs are here; `None` when they are, else why not.
fn missing(broker: &str) -> Option<String> {
    if let Err(e) = harness::cluster::tansu_binary() {
        return Some(format!("{e:#}"));
    }
    if broker.starts_with("container:") {
        let image = Command::new("docker")
            .args(["image", "inspect", "harness/tansu:0.6.0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !image.is_ok_and(|s| s.success()) {
            return Some(
                "no Docker engine or no harness/tansu:0.6.0 image (harness images build tansu)"
                    .into(),
            );
        }
    }
    None
}

/// True when the test may run; panics when CI requires real brokers and they are absent.
fn available(broker: &str) -> bool {
    match missing(broker) {
        None => true,
        Some(why) if std::env::var("HARNESS_REAL_BROKERS").as_deref() == Ok("require") => {
            panic!("HARNESS_REAL_BROKERS=require but {broker} cannot run: {why}")
        }
        Some(why) => {
            eprintln!("not run: {broker} is not available here: {why}");
            false
        }
    }
}

fn harness_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin("harness"));
    c.args(args).env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    harness_cmd(args).output().expect("run harness")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Processes holding a file open under `dir`, or running in it: every member's stderr log
/// and the broker's log and working directory live in the run's report directory.
fn processes_using(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let proc_dir = entry.path();
        let mut links: Vec<PathBuf> = std::fs::read_dir(proc_dir.join("fd"))
            .map(|fds| {
                fds.flatten()
                    .filter_map(|f| std::fs::read_link(f.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        links.extend(std::fs::read_link(proc_dir.join("cwd")).ok());
        if links.iter().any(|l| l.starts_with(&dir)) {
            let cmd = std::fs::read_to_string(proc_dir.join("cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

/// Containers the harness process `pid` started that still exist.
fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=org.harness.owner-pid={pid}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `cond` holds, polling; panics with `what` past the deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENT_DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn history_has(dir: &Path, event: &str) -> bool {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .is_ok_and(|h| h.contains(&format!("\"name\":\"{event}\"")))
}

/// Starts `harness run --scenario seed` in the background and waits until the group has
/// consumed something (so brokers and members are all up).
fn start_seed(broker: &str, dir: &Path) -> Child {
    let dir_s = dir.to_str().unwrap();
    let child = harness_cmd(&[
        "run",
        "--scenario",
        "seed",
        "--broker",
        broker,
        "--protocol",
        "cooperative-sticky",
        "--report-dir",
        dir_s,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn harness");
    wait_until("the group to consume", || {
        history_has(dir, "records_consumed")
    });
    child
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + EVENT_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        assert!(Instant::now() < deadline, "harness did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_nothing_left(dir: &Path, harness_pid: u32, broker: &str) {
    // The kernel delivers a death signal asynchronously: give it an event deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let procs = processes_using(dir);
        let containers = if broker.starts_with("container:") {
            containers_of(harness_pid)
        } else {
            Vec::new()
        };
        if procs.is_empty() && containers.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind by the run in {}: processes {procs:?}, containers {containers:?}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ------------------------------------------------------------- seed: pass or known deviation

/// `harness run --scenario seed` exits 0 (passed, or only known deviations) and writes
/// the same report files as on the mock, plus the broker's log.
fn seed_exits_0(broker: &str, protocol: &str, test: &str) {
    if !available(broker) {
        return;
    }
    let dir = report_dir(test);
    let out = run(&[
        "run",
        "--scenario",
        "seed",
        "--broker",
        broker,
        "--protocol",
        protocol,
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for f in ["history.jsonl", "verdict.json", "summary.md"] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    let verdict: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("verdict.json")).unwrap()).unwrap();
    assert!(
        verdict["outcome"] == "pass" || verdict["outcome"] == "known-deviation",
        "{verdict:#}"
    );
    assert_eq!(verdict["broker"], broker);
    let broker_log = if broker.starts_with("container:") {
        dir.join("broker-tansu.log")
    } else {
        dir.join("broker-tansu/broker.log")
    };
    assert!(
        broker_log.is_file(),
        "no broker log at {}",
        broker_log.display()
    );
}

mod process_tansu {
    use super::*;

    const BROKER: &str = "process:tansu";

    #[test]
    fn seed_cooperative_sticky_exits_0() {
        seed_exits_0(BROKER, "cooperative-sticky", "real_process_seed_coop");
    }

    #[test]
    fn seed_eager_range_exits_0() {
        seed_exits_0(BROKER, "eager-range", "real_process_seed_eager");
    }

    #[test]
    fn ctrl_c_leaves_no_broker_or_member() {
        if !available(BROKER) {
            return;
        }
        let dir = report_dir("real_process_ctrl_c");
        let mut child = start_seed(BROKER, &dir);
        nix_kill(child.id(), "INT");
        assert_eq!(
            wait_exit(&mut child),
            Some(2),
            "an interrupted run could not finish"
        );
        assert_nothing_left(&dir, child.id(), BROKER);
        assert!(
            history_has(&dir, "run_finished"),
            "the history is kept, with how it ended"
        );
    }

    #[test]
    fn sigkill_of_the_harness_takes_broker_and_members_with_it() {
        if !available(BROKER) {
            return;
        }
        let dir = report_dir("real_process_sigkill");
        let mut child = start_seed(BROKER, &dir);
        assert!(
            !processes_using(&dir).is_empty(),
            "the run has processes to lose"
        );
        child.kill().expect("SIGKILL harness");
        child.wait().expect("reap harness");
        // Broker: PR_SET_PDEATHSIG; members: their stdin closes.
        assert_nothing_left(&dir, child.id(), BROKER);
    }

    #[test]
    fn a_panic_kills_the_broker() {
        if !available(BROKER) {
            return;
        }
        let dir = report_dir("real_process_panic");
        let pid = panic_with_cluster(BROKER, &dir);
        assert!(pid > 0);
        assert_nothing_left(&dir, std::process::id(), BROKER);
    }

    /// A later Tansu build without SQLite (`fixtures/brokers/tansu-510f3e2/fetch`, which
    /// .ci/run runs) runs on memory storage: it passes the seed, and a broker kill, which
    /// would bring it back empty, is skipped with that reason rather than run or passed.
    #[test]
    fn a_tansu_build_without_sqlite_runs_on_memory_and_skips_kills() {
        let later = suites::workspace().join("target/brokers/tansu-510f3e2/tansu");
        if !later.is_file() {
            let why =
                "no target/brokers/tansu-510f3e2/tansu (fixtures/brokers/tansu-510f3e2/fetch)";
            if std::env::var("HARNESS_REAL_BROKERS").as_deref() == Ok("require") {
                panic!("HARNESS_REAL_BROKERS=require but {why}");
            }
            eprintln!("not run: {why}");
            return;
        }
        let verdict = |scenario: &str, test: &str| {
            let dir = report_dir(test);
            let out = harness_cmd(&[
                "run",
                "--scenario",
                scenario,
                "--protocol",
                "cooperative-sticky",
                "--broker",
                BROKER,
                "--report-dir",
                dir.to_str().unwrap(),
            ])
            .env("TANSU_BIN", &later)
            .output()
            .expect("run harness");
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join("verdict.json")).expect("verdict.json"),
            )
            .expect("a verdict");
            let log = std::fs::read_to_string(dir.join("broker-tansu/broker.log")).unwrap();
            assert!(
                log.contains("memory://tansu/"),
                "not on memory storage:\n{log}"
            );
            v
        };
        let seed = verdict("seed", "real_later_tansu_seed");
        assert!(
            matches!(seed["outcome"].as_str(), Some("pass" | "known-deviation")),
            "{seed:#}"
        );
        let kill = verdict("broker-kill", "real_later_tansu_kill");
        assert_eq!(kill["outcome"], "skipped", "{kill:#}");
        let why = kill["skipped"].as_str().unwrap();
        assert!(why.contains("no SQLite storage"), "skipped for {why:?}");
    }
}

mod container_tansu {
    use super::*;

    const BROKER: &str = "container:tansu";

    #[test]
    fn seed_cooperative_sticky_exits_0() {
        seed_exits_0(BROKER, "cooperative-sticky", "real_container_seed_coop");
    }

    #[test]
    fn sigterm_removes_the_container() {
        if !available(BROKER) {
            return;
        }
        let dir = report_dir("real_container_sigterm");
        let mut child = start_seed(BROKER, &dir);
        assert_eq!(
            containers_of(child.id()).len(),
            1,
            "one broker container while running"
        );
        nix_kill(child.id(), "TERM");
        assert_eq!(wait_exit(&mut child), Some(2));
        assert_nothing_left(&dir, child.id(), BROKER);
        assert!(
            dir.join("broker-tansu.log").is_file(),
            "the broker's log is kept"
        );
    }

    #[test]
    fn sigkill_leaves_a_container_the_next_start_reaps() {
        if !available(BROKER) {
            return;
        }
        let dir = report_dir("real_container_sigkill");
        let mut child = start_seed(BROKER, &dir);
        child.kill().expect("SIGKILL harness");
        child.wait().expect("reap harness");
        let orphans = containers_of(child.id());
        assert_eq!(
            orphans.len(),
            1,
            "SIGKILL runs no cleanup: the container is orphaned"
        );
        let reaped = tokio::runtime::Runtime::new().unwrap().block_on(async {
            let docker = harness::cluster::container::docker().unwrap();
            harness::cluster::container::reap_orphans(&docker)
                .await
                .unwrap()
        });
        assert!(
            reaped
                .iter()
                .any(|r| r.trim_start_matches('/') == orphans[0]),
            "reaped {reaped:?}, orphan {orphans:?}"
        );
        assert_nothing_left(&dir, child.id(), BROKER);
    }

    #[test]
    fn a_panic_removes_the_container() {
        if !available(BROKER) {
            return;
        }
        let dir = report_dir("real_container_panic");
        panic_with_cluster(BROKER, &dir);
        assert_nothing_left(&dir, std::process::id(), BROKER);
    }
}

/// A preset whose image is absent and cannot be pulled is reported skipped, with the
/// reason, and exits 0 like any skipped cell; nothing of the run is judged.
#[test]
fn a_registry_preset_without_its_image_is_skipped_with_the_reason() {
    let image = "apache/kafka:4.1.1";
    let docker_has_it = Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if docker_has_it {
        eprintln!("not run: {image} is on this machine");
        return;
    }
    let dir = report_dir("real_kafka_skipped");
    let out = run(&[
        "run",
        "--scenario",
        "seed",
        "--broker",
        "container:kafka-4",
        "--protocol",
        "consumer",
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    let all = text(&out);
    if all.contains("Docker engine") {
        // No engine at all: that is an error (exit 2) naming it, not a skip.
        assert_eq!(out.status.code(), Some(2), "{all}");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("skipped"), "{all}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains(
            "could not start here: image apache/kafka:4.1.1 is absent and cannot be pulled"
        ),
        "{summary}"
    );
}

fn nix_kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Starts `broker` in this process, lets it come up, then panics while holding it;
/// returns the broker's listener port once the panic has unwound.
fn panic_with_cluster(broker: &str, dir: &Path) -> u16 {
    let opts = harness::cluster::ClusterOptions {
        brokers: 1,
        initial_rebalance_delay_ms: 0,
        consumer_session_timeout_ms: 6000,
        consumer_heartbeat_interval_ms: 1000,
        log_dir: Some(dir.to_path_buf()),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let cluster = harness::cluster::start(broker, &opts).expect("start the broker");
            cluster.create_topic("events", 1).expect("create a topic");
            let port: u16 = cluster
                .bootstrap_servers()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            tx.send(port).unwrap();
            assert!(!processes_using(dir).is_empty() || broker.starts_with("container:"));
            panic!("a bug in the harness while the broker runs");
        })
    }));
    assert!(unwound.is_err(), "the closure panicked");
    rx.recv().expect("the broker came up before the panic")
}
