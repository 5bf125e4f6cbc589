//! The reference driver: a consumer on rdkafka speaking the driver protocol (Kafka's
//! VerifiableConsumer flags and JSON events, see DESIGN.md).
//!
//! Discipline: poll a batch, report it (`records_consumed`), commitSync, repeat; in the
//! revoke callback report and commit the batch in hand, then `partitions_revoked`.
//! SIGTERM: commit, close (which revokes), `shutdown_complete`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(
    name = "verifiable-consumer",
    about = "Reference driver for the harness (driver protocol)"
)]
struct Args {
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long = "group-id")]
    group_id: String,
    #[arg(long = "group-instance-id")]
    group_instance_id: Option<String>,
    #[arg(long = "group-protocol", default_value = "classic")]
    group_protocol: String,
    /// A librdkafka assignor name or a Kafka assignor class name.
    #[arg(long = "assignment-strategy")]
    assignment_strategy: Option<String>,
    #[arg(long = "group-remote-assignor")]
    group_remote_assignor: Option<String>,
    #[arg(long = "session-timeout")]
    session_timeout: Option<u64>,
    #[arg(long = "enable-autocommit")]
    enable_autocommit: bool,
    #[arg(long = "reset-policy", default_value = "earliest")]
    reset_policy: String,
    /// Java-style properties file with extra consumer settings.
    #[arg(long = "consumer.config")]
    consumer_config: Option<std::path::PathBuf>,
    #[arg(long = "max-messages", default_value_t = -1)]
    max_messages: i64,
    #[arg(long)]
    verbose: bool,
}

/// Maps Kafka's assignor class names to librdkafka's names.
fn assignor(name: &str) -> &str {
    match name.rsplit('.').next().unwrap_or(name) {
        "RangeAssignor" => "range",
        "RoundRobinAssignor" => "roundrobin",
        "CooperativeStickyAssignor" => "cooperative-sticky",
        _ => name,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes one event line to stdout, stamped and flushed.
fn emit(name: &str, mut fields: Value) {
    let obj = fields.as_object_mut().expect("event fields are an object");
    obj.insert("timestamp".into(), json!(now_ms()));
    obj.insert("name".into(), json!(name));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{fields}");
    let _ = out.flush();
}

fn partitions_json(tpl: &TopicPartitionList) -> Value {
    Value::Array(
        tpl.elements()
            .iter()
            .map(|e| json!({"topic": e.topic(), "partition": e.partition()}))
            .collect(),
    )
}

/// Records consumed since the last report, per (topic, partition): (min, max, count).
#[derive(Default)]
struct Batch {
    ranges: BTreeMap<(String, i32), (i64, i64, u64)>,
}

struct DriverContext {
    batch: Mutex<Batch>,
    autocommit: bool,
}

impl ClientContext for DriverContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!("librdkafka {level:?} {fac}: {log_message}");
    }
}

impl DriverContext {
    /// Reports the batch in hand and, unless the assignment was lost, commits it.
    fn finish_batch(&self, consumer: &BaseConsumer<DriverContext>, commit: bool) {
        let ranges = std::mem::take(&mut self.batch.lock().expect("batch lock").ranges);
        if ranges.is_empty() {
            return;
        }
        let count: u64 = ranges.values().map(|r| r.2).sum();
        let parts: Vec<Value> = ranges
            .iter()
            .map(|((t, p), (lo, hi, n))| json!({"topic": t, "partition": p, "count": n, "minOffset": lo, "maxOffset": hi}))
            .collect();
        emit(
            "records_consumed",
            json!({"count": count, "partitions": parts}),
        );
        if !commit || self.autocommit {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), (_, hi, _)) in &ranges {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(hi + 1));
        }
        let offsets: Vec<Value> = ranges
            .iter()
            .map(|((t, p), (_, hi, _))| json!({"topic": t, "partition": p, "offset": hi + 1}))
            .collect();
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => emit(
                "offsets_committed",
                json!({"offsets": offsets, "success": true}),
            ),
            Err(e) => emit(
                "offsets_committed",
                json!({"offsets": offsets, "success": false, "error": e.to_string()}),
            ),
        }
    }
}

impl ConsumerContext for DriverContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let lost = consumer.assignment_lost();
            self.finish_batch(consumer, !lost);
            let name = if lost {
                "partitions_lost"
            } else {
                "partitions_revoked"
            };
            emit(name, json!({"partitions": partitions_json(tpl)}));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => emit(
                "partitions_assigned",
                json!({"partitions": partitions_json(tpl)}),
            ),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => eprintln!("rebalance error: {e}"),
        }
    }
}

enum Command {
    Stall(u64),
    Subscribe(Vec<String>),
}

/// Reads `{"cmd":...}` lines from stdin until it closes. The harness holds stdin open
/// for the member's life, so end of input means the harness is gone (even killed with
/// SIGKILL): shut down cleanly rather than run on as an orphan.
fn read_commands(tx: mpsc::Sender<Command>, terminate: Arc<AtomicBool>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            eprintln!("ignoring stdin line that is not JSON: {line}");
            continue;
        };
        let cmd = match v["cmd"].as_str() {
            Some("stall") => v["ms"].as_u64().map(Command::Stall),
            Some("subscribe") => v["topics"].as_array().map(|a| {
                Command::Subscribe(
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                )
            }),
            _ => None,
        };
        match cmd {
            Some(c) => {
                if tx.send(c).is_err() {
                    break;
                }
            }
            None => eprintln!("ignoring unknown command: {line}"),
        }
    }
    terminate.store(true, Ordering::Relaxed);
}

fn load_properties(path: &std::path::Path, config: &mut ClientConfig) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("{}: not key=value: {line}", path.display()))?;
        config.set(k.trim(), v.trim());
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let terminate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminate.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, terminate.clone())?;

    let classic = args.group_protocol == "classic";
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap_server)
        .set("group.id", &args.group_id)
        .set("group.protocol", &args.group_protocol)
        .set("enable.auto.commit", args.enable_autocommit.to_string())
        .set("auto.offset.reset", &args.reset_policy)
        .set("enable.partition.eof", "false");
    if let Some(id) = &args.group_instance_id {
        config.set("group.instance.id", id);
    }
    if classic {
        if let Some(s) = &args.assignment_strategy {
            config.set("partition.assignment.strategy", assignor(s));
        }
        if let Some(ms) = args.session_timeout {
            config.set("session.timeout.ms", ms.to_string());
        }
    } else if let Some(a) = &args.group_remote_assignor {
        config.set("group.remote.assignor", a);
    }
    if let Some(path) = &args.consumer_config {
        load_properties(path, &mut config)?;
    }
    let context = DriverContext {
        batch: Mutex::new(Batch::default()),
        autocommit: args.enable_autocommit,
    };
    let consumer: BaseConsumer<DriverContext> = config
        .create_with_context(context)
        .context("cannot create the consumer")?;
    consumer
        .subscribe(&[&args.topic])
        .context("cannot subscribe")?;

    let (tx, commands) = mpsc::channel();
    let stdin_closed = terminate.clone();
    std::thread::spawn(move || read_commands(tx, stdin_closed));
    emit(
        "startup_complete",
        json!({"capabilities": ["stall", "subscribe"]}),
    );

    let mut consumed: i64 = 0;
    while !terminate.load(Ordering::Relaxed) {
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                // Stop polling while "processing": heartbeats go on, max.poll.interval.ms runs out.
                Command::Stall(ms) => {
                    let until = Instant::now() + Duration::from_millis(ms);
                    while Instant::now() < until && !terminate.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
                Command::Subscribe(topics) => {
                    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
                    if let Err(e) = consumer.subscribe(&refs) {
                        eprintln!("subscribe failed: {e}");
                    }
                }
            }
        }
        let mut polled = consumer.poll(Duration::from_millis(100));
        let mut in_batch = 0;
        while let Some(result) = polled {
            match result {
                Ok(msg) => {
                    let mut batch = consumer.context().batch.lock().expect("batch lock");
                    let e = batch
                        .ranges
                        .entry((msg.topic().to_owned(), msg.partition()))
                        .or_insert((msg.offset(), msg.offset(), 0));
                    e.0 = e.0.min(msg.offset());
                    e.1 = e.1.max(msg.offset());
                    e.2 += 1;
                    in_batch += 1;
                    consumed += 1;
                }
                Err(e) => eprintln!("consume error: {e}"),
            }
            if in_batch >= 500 || (args.max_messages >= 0 && consumed >= args.max_messages) {
                break;
            }
            polled = consumer.poll(Duration::ZERO);
        }
        consumer.context().finish_batch(&consumer, true);
        if args.max_messages >= 0 && consumed >= args.max_messages {
            break;
        }
    }
    // Closing revokes the assignment through the callback above, which commits.
    drop(consumer);
    emit("shutdown_complete", json!({}));
    Ok(())
}
