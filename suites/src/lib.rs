//! Shared helpers for the integration suites: run a scenario in process, locate the
//! workspace's binaries and fixtures.

use std::path::{Path, PathBuf};

use harness::check::Verdict;
use harness::client::DriverCommand;
use harness::run::{self, RunConfig};
use harness::scenario::{Budgets, Scenario};

/// The workspace root (fixtures/ lives there).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A binary built from this workspace (`harness`, `verifiable-consumer`). Test binaries
/// live in target/<profile>/deps, the workspace's binaries one level up.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not built next to {}: run `cargo build --bins` first",
                exe.display()
            )
        })
}

/// A fresh report directory for one test, kept under target/suite-reports for
/// inspection after a failure.
pub fn report_dir(test: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary inside a target dir");
    let dir = target.join("suite-reports").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create report dir");
    dir
}

/// Runs a built-in scenario on the embedded broker with the given driver (`None`: the
/// reference driver) and returns the verdict and its report directory.
pub fn run_builtin(
    scenario: &str,
    protocol: &str,
    driver: Option<&str>,
    test: &str,
) -> (Verdict, PathBuf) {
    let dir = report_dir(test);
    let cfg = RunConfig {
        scenario: Scenario::builtin(scenario).expect("built-in scenario"),
        protocol: protocol.parse().expect("a protocol"),
        broker: "mock".to_owned(),
        report_dir: dir.clone(),
        driver: driver.map(|d| DriverCommand::parse(d).expect("driver command")),
        seed: 1,
        budgets: Budgets::builtin(),
        replay: format!("cargo nextest run -E 'test({test})'"),
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let verdict = rt
        .block_on(run::run(cfg))
        .unwrap_or_else(|e| panic!("the run could not be carried out: {e:#}"));
    (verdict, dir)
}
