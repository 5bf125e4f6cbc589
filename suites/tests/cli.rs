//! The `harness` command line as users meet it: exit codes (0 pass, 1 violation, 2 could
//! not run), clear errors for bad input, foreign drivers, no leaked processes.

use std::process::{Command, Output};

use suites::{bin, report_dir, workspace};

fn harness(args: &[&str]) -> Output {
    Command::new(bin("harness"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run harness")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_cannot_run(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit 2, stderr:\n{err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
}

#[test]
fn unknown_scenario_protocol_and_broker_are_named() {
    assert_cannot_run(
        &harness(&["run", "--scenario", "nope"]),
        "unknown scenario 'nope': built-in scenarios are seed, driver-check, crash, leave",
    );
    assert_cannot_run(
        &harness(&["run", "--protocol", "sticky"]),
        "unknown protocol 'sticky'",
    );
    assert_cannot_run(
        &harness(&["run", "--broker", "kafka9"]),
        "unknown broker 'kafka9'",
    );
    // Chaos judges liveness only: a budgets file would be silently ignored.
    assert_cannot_run(
        &harness(&["chaos", "--runs", "1", "--budgets", "fixtures/budgets.toml"]),
        "--budgets does not apply to chaos",
    );
}

#[test]
fn a_malformed_scenario_file_names_the_line() {
    let dir = report_dir("malformed_scenario");
    let file = dir.join("bad.toml");
    let seed = std::fs::read_to_string(workspace().join("fixtures/scenarios/seed.toml")).unwrap();
    std::fs::write(
        &file,
        seed.replace("partitions = 6", "partitions = \"six\""),
    )
    .unwrap();
    let o = harness(&["run", "--scenario-file", file.to_str().unwrap()]);
    assert_cannot_run(&o, "line 8, column 14");
    std::fs::write(&file, seed.replace("crash = \"C2\"", "crash = \"C7\"")).unwrap();
    assert_cannot_run(
        &harness(&["run", "--scenario-file", file.to_str().unwrap()]),
        "line 26: step 3: crash of C7, which is not running",
    );
}

/// Drivers still alive whose command line mentions `needle`.
fn survivors(needle: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-af", needle])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep"))
        .map(str::to_owned)
        .collect()
}

/// `harness run` of the seed under eager-range with a driver from the workspace.
fn run_with_driver(test: &str, driver: &str) -> (Output, std::path::PathBuf) {
    let dir = report_dir(test);
    let driver = workspace().join(driver);
    let o = harness(&[
        "run",
        "--scenario",
        "seed",
        "--protocol",
        "eager-range",
        "--report-dir",
        dir.to_str().unwrap(),
        "--driver",
        driver.to_str().unwrap(),
    ]);
    (o, dir)
}

#[test]
fn a_driver_printing_garbage_is_quoted_and_nothing_is_left_running() {
    let (o, dir) = run_with_driver(
        "garbage_driver",
        "fixtures/clients/broken/prints-garbage.sh",
    );
    assert_cannot_run(&o, "printed a line that breaks the driver protocol");
    assert_cannot_run(&o, "\"Starting consumer v1.2 ...\"");
    assert!(
        survivors("prints-garbage.sh").is_empty(),
        "leaked: {:?}",
        survivors("prints-garbage.sh")
    );
    // The history survives the failed run and says why it ended.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        history.contains("\"name\":\"run_finished\",\"outcome\":\"error: driver"),
        "{history}"
    );
}

#[test]
fn a_driver_that_exits_at_startup_shows_its_stderr() {
    let (o, _) = run_with_driver(
        "exiting_driver",
        "fixtures/clients/broken/exits-at-startup.sh",
    );
    assert_cannot_run(&o, "exited at startup (exit code 3)");
    assert_cannot_run(&o, "fatal: cannot load consumer.properties");
}

#[test]
fn check_rejects_unreadable_histories() {
    assert_cannot_run(
        &harness(&["check", "/nonexistent/history.jsonl"]),
        "cannot read history",
    );
    let dir = report_dir("unreadable_history");
    let file = dir.join("history.jsonl");
    std::fs::write(
        &file,
        "{\"seq\":0,\"ts\":1,\"name\":\"production_stopped\"}\nnot json\n{}\n",
    )
    .unwrap();
    assert_cannot_run(
        &harness(&["check", file.to_str().unwrap()]),
        "history.jsonl:2: not a history record",
    );
}

#[test]
fn check_exits_1_on_a_violation_and_writes_reports() {
    // A run that acked records nobody consumed: a loss.
    let dir = report_dir("violation_history");
    let file = dir.join("history.jsonl");
    let lines = [
        r#"{"seq":0,"ts":1,"name":"run_started","scenario":"hand","protocol":"eager-range","broker":"mock","seed":7,"topic":"t","partitions":1,"group":"g","consumer":{"session_timeout_ms":6000,"heartbeat_interval_ms":1000,"max_poll_interval_ms":10000},"budgets":{},"replay":"-"}"#,
        r#"{"seq":1,"ts":2,"member":"C1","name":"partitions_assigned","partitions":[{"topic":"t","partition":0}]}"#,
        r#"{"seq":2,"ts":3,"name":"records_acked","partitions":[{"topic":"t","partition":0,"count":10,"minOffset":0,"maxOffset":9}]}"#,
        r#"{"seq":3,"ts":4,"member":"C1","name":"records_consumed","count":5,"partitions":[{"topic":"t","partition":0,"count":5,"minOffset":0,"maxOffset":4}]}"#,
        r#"{"seq":4,"ts":5,"name":"production_stopped"}"#,
        r#"{"seq":5,"ts":6,"name":"run_finished","outcome":"completed"}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let o = harness(&[
        "check",
        file.to_str().unwrap(),
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("t-0: 5 acked records never consumed (offsets 5..=9)"),
        "{stdout}"
    );
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["passed"], false);
    assert_eq!(verdict["metrics"]["lost"], 5);
}

/// A second client, on another library (confluent-kafka for Python), gated through
/// `--driver` exactly as a team would gate its own.
#[test]
fn a_foreign_driver_passes_the_seed_scenario() {
    let probe = Command::new("python3")
        .args(["-c", "import confluent_kafka"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "this test needs Python's confluent-kafka: pip install confluent-kafka (.ci/run does)"
    );
    let dir = report_dir("foreign_driver");
    let driver = workspace()
        .join("fixtures/clients/python-confluent/run")
        .display()
        .to_string();
    let o = harness(&[
        "run",
        "--scenario",
        "seed",
        "--protocol",
        "cooperative-sticky",
        "--report-dir",
        dir.to_str().unwrap(),
        "--driver",
        &driver,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        stderr(&o)
    );
    assert!(
        stdout.contains("seed / cooperative-sticky / mock: PASSED"),
        "{stdout}"
    );
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("verdict.json")).unwrap()).unwrap();
    assert_eq!(verdict["metrics"]["lost"], 0);
    assert!(
        verdict["replay"].as_str().unwrap().contains("--driver"),
        "{verdict}"
    );
}

/// A small matrix: the table, matrix.json with one entry per cell and its report, a
/// skipped cell for what the mock cannot do, and exit 1 as soon as one cell fails (here
/// a join held to an impossible 1 ms detection budget).
#[test]
fn the_matrix_writes_matrix_json_and_fails_on_a_failing_cell() {
    let dir = report_dir("matrix_cli");
    let budgets = dir.join("budgets.toml");
    std::fs::write(
        &budgets,
        "[mock.\"*\".pause-short]\ndetection_min = \"none\"\nreaction = false\ndetection_max_ms = 9000\nrecovery_max_ms = 6000\n\
         [mock.\"*\".join]\ndetection_min = \"none\"\ndetection_max_ms = 1\nrecovery_max_ms = 60000\n\
         [mock.\"*\".partition-increase]\ndetection_min = \"none\"\ndetection_max_ms = 9000\nrecovery_max_ms = 9000\n",
    )
    .unwrap();
    let out = dir.join("out");
    let o = harness(&[
        "matrix",
        "--protocols",
        "eager-range",
        "--faults",
        "pause-short,partition-increase,join",
        "--budgets",
        budgets.to_str().unwrap(),
        "--report-dir",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", stderr(&o));
    assert!(stdout.contains("| pause-short"), "{stdout}");
    assert!(
        stdout.contains("3 cells: 1 pass, 0 known deviation, 0 client finding, 1 skipped, 1 FAIL"),
        "{stdout}"
    );
    let cells: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("matrix.json")).unwrap()).unwrap();
    let outcome = |fault: &str| {
        cells
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["fault"] == fault)
            .unwrap_or_else(|| panic!("no {fault} cell in {cells}"))
            .clone()
    };
    assert_eq!(outcome("pause-short")["outcome"], "pass");
    assert_eq!(outcome("partition-increase")["outcome"], "skipped");
    let join = outcome("join");
    assert_eq!(join["outcome"], "fail");
    assert!(
        join["reason"].as_str().unwrap().contains("detection took"),
        "{join}"
    );
    let report = std::path::PathBuf::from(join["report"].as_str().unwrap());
    assert!(report.join("verdict.json").is_file(), "{report:?}");
    assert!(report.join("history.jsonl").is_file(), "{report:?}");
    // index.html links every cell's report by a path relative to it, and each one exists.
    let index = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    for fault in ["pause-short", "partition-increase", "join"] {
        let link = format!("{fault}/eager-range/report.html");
        assert!(index.contains(&link), "index.html lacks {link}");
        assert!(out.join(&link).is_file(), "{link} is not written");
    }
}

/// `harness driver-check` on a driver with a planted bug lists what breaks, with the
/// evidence, and exits 1; on the reference driver it exits 0.
#[test]
fn driver_check_lists_how_a_driver_breaks_the_protocol() {
    let dir = report_dir("driver_check_bug");
    let driver = format!(
        "{} --bug gap-in-batch",
        bin("verifiable-consumer").display()
    );
    let o = harness(&[
        "driver-check",
        "--driver",
        &driver,
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", stderr(&o));
    assert!(stdout.contains("problem(s)"), "{stdout}");
    assert!(stdout.contains("inside one batch"), "{stdout}");
    assert!(dir.join("history.jsonl").is_file());

    let dir = report_dir("driver_check_clean");
    let o = harness(&[
        "driver-check",
        "--driver",
        bin("verifiable-consumer").to_str().unwrap(),
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", stderr(&o));
    assert!(stdout.contains("keeps the driver protocol"), "{stdout}");
}

/// A member that dies on its own (exit code 1, a client exception on stderr) is named in
/// the verdict with its exit code and the end of its stderr, and the run does not wait
/// out its deadline for a group that can no longer settle.
#[test]
fn a_member_that_dies_is_named_at_once() {
    let dir = report_dir("member_dies");
    let driver = format!(
        "{} {} 4",
        workspace()
            .join("fixtures/clients/broken/dies-mid-run.sh")
            .display(),
        bin("verifiable-consumer").display()
    );
    let o = harness(&[
        "run",
        "--scenario",
        "seed",
        "--protocol",
        "eager-range",
        "--report-dir",
        dir.to_str().unwrap(),
        "--driver",
        &driver,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", stderr(&o));
    assert!(stdout.contains("members_alive"), "{stdout}");
    let verdict: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("verdict.json")).unwrap()).unwrap();
    let died: Vec<&serde_json::Value> = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "members_alive")
        .flat_map(|c| c["violations"].as_array().unwrap())
        .collect();
    assert!(!died.is_empty(), "{verdict}");
    let message = died[0]["message"].as_str().unwrap();
    assert!(message.contains("exit code 1"), "{message}");
    assert!(message.contains("simulated client failure"), "{message}");
    // The wait ended when the members died, not at its 60 s deadline: measured on the
    // history's own clock, from the first death to the end of production.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let ts = |name: &str| {
        history
            .lines()
            .filter(|l| l.contains(&format!("\"name\":\"{name}\"")))
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["ts"].as_u64())
            .min()
            .unwrap()
    };
    let waited = ts("production_stopped") - ts("member_exited");
    assert!(waited < 20_000, "waited {waited} ms after the first death");
}
