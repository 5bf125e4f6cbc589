//! The drivers on group implementations other than librdkafka, gated exactly as a team
//! would gate its own client: the Apache Kafka Java client, aiokafka and Sarama (and the
//! confluent-kafka Python driver, on a newer librdkafka). Each must get through the seed
//! scenario on the embedded broker without a violation the oracle does not know as a
//! deviation or finding, announce itself, keep the driver protocol (`driver-check`), and
//! report a protocol its client lacks as skipped, with the reason.
//!
//! These need what .ci/run installs: Java 17 (the jars come from PyPI on first use),
//! Debian's golang-go and golang-github-shopify-sarama-dev, and aiokafka from PyPI.

use std::process::{Command, Output};

use serde_json::Value;
use suites::{bin, report_dir, workspace};

fn harness(args: &[&str]) -> Output {
    Command::new(bin("harness"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run harness")
}

fn driver(name: &str) -> String {
    workspace()
        .join(format!("fixtures/clients/{name}/run"))
        .display()
        .to_string()
}

/// `harness run` of `scenario` under `protocol` with a client's driver; the verdict.
fn run(client: &str, scenario: &str, protocol: &str) -> (Output, Value) {
    let dir = report_dir(&format!("client_{client}_{scenario}_{protocol}"));
    let o = harness(&[
        "run",
        "--scenario",
        scenario,
        "--protocol",
        protocol,
        "--driver",
        &driver(client),
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(dir.join("verdict.json")).unwrap_or_else(|e| {
        panic!(
            "{client}: no verdict ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o, serde_json::from_str(&text).unwrap())
}

/// The seed passes (or reads known-deviation / client-finding, never fail), and the
/// members announced the expected client.
fn seed_holds(client: &str, announced: &str) {
    let (o, v) = run(client, "seed", "eager-range");
    let outcome = v["outcome"].as_str().unwrap();
    assert!(
        matches!(outcome, "pass" | "known-deviation" | "client-finding"),
        "{client}: {outcome}\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(v["metrics"]["lost"], 0);
    assert_eq!(v["metrics"]["duplicates_unexplained"], 0);
    let names: Vec<&str> = v["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [announced], "{v:#}");
}

/// A protocol the client lacks is skipped with the client's own reason, never passed.
fn lacks(client: &str, protocol: &str, reason: &str) {
    let (o, v) = run(client, "seed", protocol);
    assert_eq!(v["outcome"], "skipped", "{v:#}");
    let why = v["skipped"].as_str().unwrap();
    assert!(
        why.contains(reason),
        "{client} {protocol}: skipped for {why:?}"
    );
    assert_eq!(o.status.code(), Some(0), "skipped exits 0 without --strict");
}

fn driver_check(client: &str) {
    let dir = report_dir(&format!("client_{client}_driver_check"));
    let o = harness(&[
        "driver-check",
        "--driver",
        &driver(client),
        "--report-dir",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{client}:\n{stdout}");
    assert!(stdout.contains("keeps the driver protocol"), "{stdout}");
}

#[test]
fn java_passes_the_seed() {
    seed_holds("java", "java");
}

#[test]
fn java_keeps_the_driver_protocol() {
    driver_check("java");
}

#[test]
fn java_kip848_is_skipped_on_the_mock_with_the_reason() {
    lacks("java", "consumer", "CONSUMER_GROUP_HEARTBEAT");
}

#[test]
fn aiokafka_passes_the_seed() {
    seed_holds("aiokafka", "aiokafka");
}

#[test]
fn aiokafka_keeps_the_driver_protocol() {
    driver_check("aiokafka");
}

#[test]
fn aiokafka_has_no_cooperative_protocol() {
    lacks("aiokafka", "cooperative-sticky", "aiokafka");
}

#[test]
fn sarama_passes_the_seed() {
    seed_holds("sarama", "sarama");
}

#[test]
fn sarama_keeps_the_driver_protocol() {
    driver_check("sarama");
}

#[test]
fn sarama_has_no_static_membership() {
    lacks("sarama", "static-eager", "no static membership");
}

#[test]
fn python_confluent_passes_the_seed() {
    seed_holds("python-confluent", "python-confluent");
}
