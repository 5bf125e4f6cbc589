//! The reference driver: a consumer on rdkafka speaking the driver protocol
//! (docs/driver-protocol.md: Kafka's VerifiableConsumer flags and JSON events).
//!
//! Discipline: poll a batch, report it (`records_consumed`, with per-record `offsets`),
//! commitSync, repeat; in the revoke callback report and commit the batch in hand, then
//! `partitions_revoked`; in the lost callback report it without committing. SIGTERM or
//! stdin EOF: close (which revokes, committing), `shutdown_complete`.
//!
//! `--bug NAME` plants a client bug, so tests can prove the oracle catches it (off by
//! default; see `Bug`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(
    name = "verifiable-consumer",
    about = "Reference driver for the harness (docs/driver-protocol.md)"
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
    /// Plant a client bug (repeat or comma-separate): the oracle must catch each.
    #[arg(long, value_enum, value_delimiter = ',')]
    bug: Vec<Bug>,
}

/// Client bugs the driver can plant. Each misbehaves on every `BUG_EVERY`-th batch (or
/// at every chance, for those tied to rebalances), so a short run shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Bug {
    /// A batch is committed but never reported processed.
    DropBatch,
    /// Commits 10 offsets past what it processed.
    CommitAhead,
    /// Commits only every tenth batch, and never in the revoke callback.
    NoRevokeCommit,
    /// Goes on reporting records of partitions it reported lost.
    ZombieAfterLost,
    /// Commits the old positions of partitions revoked from it.
    StaleCommit,
    /// Commits only every tenth batch, and not when it closes on SIGTERM.
    SkipCloseCommit,
    /// Reports a batch twice.
    ReplayBatch,
    /// Inside one batch, delivers one offset twice and skips another.
    GapInBatch,
}

/// How often the batch-level bugs strike.
const BUG_EVERY: u64 = 20;
/// How long a zombie-after-lost driver keeps reporting a lost partition.
const ZOMBIE_FOR: Duration = Duration::from_secs(5);

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

type Tp = (String, i32);

/// The offsets of one partition delivered since the last report, as inclusive ranges
/// in delivery order.
#[derive(Default, Clone)]
struct Delivered {
    ranges: Vec<(i64, i64)>,
    count: u64,
}

impl Delivered {
    fn push(&mut self, offset: i64) {
        match self.ranges.last_mut() {
            Some(r) if r.1 + 1 == offset => r.1 = offset,
            _ => self.ranges.push((offset, offset)),
        }
        self.count += 1;
    }
    fn min(&self) -> i64 {
        self.ranges.iter().map(|r| r.0).min().unwrap_or(0)
    }
    fn max(&self) -> i64 {
        self.ranges.iter().map(|r| r.1).max().unwrap_or(0)
    }
    /// The position after the batch: the last delivered offset + 1.
    fn end(&self) -> i64 {
        self.ranges.last().map_or(0, |r| r.1 + 1)
    }
}

struct DriverContext {
    batch: Mutex<BTreeMap<Tp, Delivered>>,
    autocommit: bool,
    bugs: BTreeSet<Bug>,
    /// Batches reported so far (the bugs strike on some of them).
    batches: AtomicU64,
    /// gap-in-batch is due (a 20th batch came) but no batch since held three records of
    /// one partition: it strikes on the next one that does.
    gap_due: AtomicBool,
    /// Set once SIGTERM or stdin EOF asked for a clean shutdown.
    closing: Arc<AtomicBool>,
    /// Bug state: positions of partitions revoked from it (stale-commit) and of
    /// partitions it lost (zombie-after-lost).
    revoked: Mutex<BTreeMap<Tp, i64>>,
    lost: Mutex<BTreeMap<Tp, (i64, Instant)>>,
}

impl ClientContext for DriverContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        eprintln!("librdkafka {level:?} {fac}: {log_message}");
    }
}

impl DriverContext {
    fn bug(&self, b: Bug) -> bool {
        self.bugs.contains(&b)
    }

    /// gap-in-batch is due and the batch in hand cannot show it yet (no partition with
    /// three records): the main loop keeps polling into the same batch.
    fn gap_wants_more(&self) -> bool {
        if !self.bug(Bug::GapInBatch) || !self.gap_due.load(Ordering::SeqCst) {
            return false;
        }
        let batch = self.batch.lock().expect("batch lock");
        let held: usize = batch.values().map(|d| d.count as usize).sum();
        held < 500 && !batch.values().any(|d| d.count >= 3)
    }

    /// Reports the batch in hand and, when `commit`, commits it.
    fn finish_batch(&self, consumer: &BaseConsumer<DriverContext>, commit: bool) {
        let batch = std::mem::take(&mut *self.batch.lock().expect("batch lock"));
        if batch.is_empty() {
            return;
        }
        let n = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
        let strikes = n % BUG_EVERY == 0;
        let mut reported = batch.clone();
        if strikes {
            self.gap_due.store(true, Ordering::SeqCst);
        }
        if self.bug(Bug::GapInBatch) && self.gap_due.load(Ordering::SeqCst) {
            // One offset delivered twice, the one before it never: count and span as
            // before, so only per-record evidence shows it. Small batches (a slow rate
            // over many partitions) defer it to the next batch that can show it.
            if let Some(d) = reported.values_mut().find(|d| d.count >= 3) {
                let (lo, hi) = (d.min(), d.max());
                d.ranges = vec![(lo, hi - 2), (hi, hi), (hi, hi)];
                self.gap_due.store(false, Ordering::SeqCst);
            }
        }
        if !(strikes && self.bug(Bug::DropBatch)) {
            report(&reported);
            if strikes && self.bug(Bug::ReplayBatch) {
                report(&reported);
            }
        }
        let rare = self.bug(Bug::NoRevokeCommit) || self.bug(Bug::SkipCloseCommit);
        if !commit || self.autocommit || (rare && n % 10 != 0) {
            return;
        }
        let ahead = if strikes && self.bug(Bug::CommitAhead) {
            10
        } else {
            0
        };
        let mut positions: Vec<(Tp, i64)> = batch
            .iter()
            .map(|(tp, d)| (tp.clone(), d.end() + ahead))
            .collect();
        if self.bug(Bug::StaleCommit) {
            let revoked = self.revoked.lock().expect("revoked lock");
            positions.extend(revoked.iter().map(|(tp, o)| (tp.clone(), *o)));
        }
        commit_positions(consumer, &positions);
    }
}

/// Prints one `records_consumed` for the batch.
fn report(batch: &BTreeMap<Tp, Delivered>) {
    let count: u64 = batch.values().map(|d| d.count).sum();
    let parts: Vec<Value> = batch
        .iter()
        .map(|((t, p), d)| {
            json!({"topic": t, "partition": p, "count": d.count, "minOffset": d.min(),
                   "maxOffset": d.max(), "offsets": d.ranges})
        })
        .collect();
    emit(
        "records_consumed",
        json!({"count": count, "partitions": parts}),
    );
}

/// commitSync of the given positions, reported as `offsets_committed`.
fn commit_positions(consumer: &BaseConsumer<DriverContext>, positions: &[(Tp, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in positions {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
    }
    let offsets: Vec<Value> = positions
        .iter()
        .map(|((t, p), o)| json!({"topic": t, "partition": p, "offset": o}))
        .collect();
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => emit(
            "offsets_committed",
            json!({"offsets": offsets, "success": true}),
        ),
        // The error names librdkafka's code (RebalanceInProgress, ...): the harness
        // classifies definite and indeterminate failures from it.
        Err(e) => emit(
            "offsets_committed",
            json!({"offsets": offsets, "success": false, "error": e.to_string()}),
        ),
    }
}

impl ConsumerContext for DriverContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let lost = consumer.assignment_lost();
            let skip = self.bug(Bug::NoRevokeCommit)
                || (self.bug(Bug::SkipCloseCommit) && self.closing.load(Ordering::SeqCst));
            if skip {
                // Report what was processed, commit nothing.
                let batch = std::mem::take(&mut *self.batch.lock().expect("batch lock"));
                if !batch.is_empty() {
                    report(&batch);
                }
            } else {
                self.finish_batch(consumer, !lost);
            }
            self.remember_positions(consumer, tpl, lost);
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
            Rebalance::Assign(tpl) => {
                let mut revoked = self.revoked.lock().expect("revoked lock");
                for e in tpl.elements() {
                    revoked.remove(&(e.topic().to_owned(), e.partition()));
                }
                emit(
                    "partitions_assigned",
                    json!({"partitions": partitions_json(tpl)}),
                );
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => eprintln!("rebalance error: {e}"),
        }
    }
}

impl DriverContext {
    /// For the bugs that act on partitions after they are gone: their positions.
    fn remember_positions(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
        lost: bool,
    ) {
        if !(self.bug(Bug::StaleCommit) || self.bug(Bug::ZombieAfterLost)) {
            return;
        }
        let Ok(positions) = consumer.position() else {
            return;
        };
        for e in tpl.elements() {
            let tp = (e.topic().to_owned(), e.partition());
            let pos = positions
                .find_partition(e.topic(), e.partition())
                .and_then(|p| p.offset().to_raw())
                .filter(|o| *o >= 0);
            let Some(pos) = pos else { continue };
            if lost {
                self.lost
                    .lock()
                    .expect("lost lock")
                    .insert(tp, (pos, Instant::now()));
            } else {
                self.revoked.lock().expect("revoked lock").insert(tp, pos);
            }
        }
    }

    /// zombie-after-lost: records of lost partitions, reported as if still processed.
    fn haunt(&self) {
        let mut lost = self.lost.lock().expect("lost lock");
        lost.retain(|_, (_, since)| since.elapsed() < ZOMBIE_FOR);
        for ((t, p), (pos, _)) in lost.iter_mut() {
            let mut d = Delivered::default();
            for o in *pos..*pos + 5 {
                d.push(o);
            }
            *pos += 5;
            report(&BTreeMap::from([((t.clone(), *p), d)]));
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

fn config(args: &Args) -> Result<ClientConfig> {
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
    Ok(config)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let terminate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminate.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, terminate.clone())?;

    let context = DriverContext {
        batch: Mutex::new(BTreeMap::new()),
        autocommit: args.enable_autocommit,
        bugs: args.bug.iter().copied().collect(),
        batches: AtomicU64::new(0),
        gap_due: AtomicBool::new(false),
        closing: terminate.clone(),
        revoked: Mutex::new(BTreeMap::new()),
        lost: Mutex::new(BTreeMap::new()),
    };
    let consumer: BaseConsumer<DriverContext> = config(&args)?
        .create_with_context(context)
        .context("cannot create the consumer")?;
    consumer
        .subscribe(&[&args.topic])
        .context("cannot subscribe")?;

    let (tx, commands) = mpsc::channel();
    let stdin_closed = terminate.clone();
    std::thread::spawn(move || read_commands(tx, stdin_closed));
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    emit(
        "startup_complete",
        json!({
            "capabilities": ["stall", "subscribe"],
            "client": {
                "name": "verifiable-consumer",
                "version": env!("CARGO_PKG_VERSION"),
                "library": format!("librdkafka {librdkafka}"),
            },
        }),
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
                    batch
                        .entry((msg.topic().to_owned(), msg.partition()))
                        .or_default()
                        .push(msg.offset());
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
        if !consumer.context().gap_wants_more() {
            consumer.context().finish_batch(&consumer, true);
        }
        if consumer.context().bug(Bug::ZombieAfterLost) {
            consumer.context().haunt();
        }
        if args.max_messages >= 0 && consumed >= args.max_messages {
            break;
        }
    }
    // Closing revokes the assignment through the callback above, which commits.
    drop(consumer);
    emit("shutdown_complete", json!({}));
    Ok(())
}
