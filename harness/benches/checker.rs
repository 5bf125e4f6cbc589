//! The checker on a 10-million-record synthetic history: 8 partitions, 4 members, batches
//! of 100 records with per-record offsets, a commit after every batch, and a rebalance
//! (revoke with commit, new assignment) every million records.
//!
//! `cargo bench -p harness --bench checker` prints records/s (criterion) and the bytes the
//! checker held per record (a counting allocator's high-water mark above the history
//! itself). Targets: >= 5 M records/s, <= 64 B per record.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::history::{
    CommittedOffset, ConsumerSettings, Event, PartitionRange, Protocol, Record, RunInfo,
    TopicPartition,
};

/// Counts live heap bytes and their high-water mark.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const RECORDS: i64 = 10_000_000;
const PARTITIONS: i32 = 8;
const MEMBERS: usize = 4;
const BATCH: i64 = 100;
const REBALANCE_EVERY: i64 = 1_000_000;

fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: "events".into(),
        partition: p,
    }
}

/// Appends one event to the history, stamped.
type Push<'a> = dyn FnMut(&mut Vec<Record>, Option<String>, Event) + 'a;

fn history() -> Vec<Record> {
    let mut out = Vec::new();
    let mut ts = 1_000u64;
    let mut push = |out: &mut Vec<Record>, member: Option<String>, event: Event| {
        ts += 1;
        out.push(Record {
            seq: out.len() as u64,
            ts,
            member,
            event,
        });
    };
    let info = RunInfo {
        scenario: "bench".into(),
        protocol: Protocol::EagerRange,
        broker: "mock".into(),
        seed: 1,
        topic: "events".into(),
        partitions: PARTITIONS,
        group: "g".into(),
        consumer: ConsumerSettings {
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 1000,
            max_poll_interval_ms: 10000,
        },
        rate_per_sec: None,
        budgets: Default::default(),
        expectations: Default::default(),
        replay: String::new(),
        cell_expectations: Default::default(),
        known_deviations: Vec::new(),
        chaos: false,
    };
    push(&mut out, None, Event::RunStarted(Box::new(info)));
    let members: Vec<String> = (1..=MEMBERS).map(|i| format!("C{i}")).collect();
    for m in &members {
        push(&mut out, Some(m.clone()), Event::MemberStarted { pid: 1 });
    }
    let owner_of = |p: i32, round: usize| members[(p as usize + round) % MEMBERS].clone();
    let assign = |out: &mut Vec<Record>, round: usize, push: &mut Push<'_>| {
        for m in &members {
            let partitions = (0..PARTITIONS)
                .filter(|&p| owner_of(p, round) == *m)
                .map(tp)
                .collect();
            push(
                out,
                Some(m.clone()),
                Event::PartitionsAssigned { partitions },
            );
        }
    };
    assign(&mut out, 0, &mut push);
    let per_partition = RECORDS / PARTITIONS as i64;
    let mut round = 0;
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut done = 0i64;
    while done < RECORDS {
        for p in 0..PARTITIONS {
            let from = next[p as usize];
            if from >= per_partition {
                continue;
            }
            let to = (from + BATCH).min(per_partition);
            let range = PartitionRange {
                topic: "events".into(),
                partition: p,
                count: (to - from) as u64,
                min_offset: from,
                max_offset: to - 1,
                offsets: None,
            };
            push(
                &mut out,
                None,
                Event::RecordsAcked {
                    partitions: vec![range.clone()],
                },
            );
            let member = owner_of(p, round);
            push(
                &mut out,
                Some(member.clone()),
                Event::RecordsConsumed {
                    count: range.count,
                    partitions: vec![PartitionRange {
                        offsets: Some(vec![(from, to - 1)]),
                        ..range
                    }],
                },
            );
            push(
                &mut out,
                Some(member),
                Event::OffsetsCommitted {
                    offsets: vec![CommittedOffset {
                        topic: "events".into(),
                        partition: p,
                        offset: to,
                    }],
                    success: true,
                    error: None,
                    definite: None,
                },
            );
            next[p as usize] = to;
            done += to - from;
            if done % REBALANCE_EVERY < BATCH {
                for m in &members {
                    let partitions = (0..PARTITIONS)
                        .filter(|&q| owner_of(q, round) == *m)
                        .map(tp)
                        .collect();
                    push(
                        &mut out,
                        Some(m.clone()),
                        Event::PartitionsRevoked { partitions },
                    );
                }
                round += 1;
                assign(&mut out, round, &mut push);
            }
        }
    }
    push(&mut out, None, Event::ProductionStopped {});
    for m in &members {
        push(&mut out, Some(m.clone()), Event::ShutdownComplete {});
    }
    push(
        &mut out,
        None,
        Event::RunFinished {
            outcome: "completed".into(),
        },
    );
    out
}

fn bench(c: &mut Criterion) {
    let records = history();
    // One check outside criterion: its verdict, and what it held above the history.
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let verdict = harness::check::check(&records);
    let held = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        verdict.passed,
        "{:?}",
        verdict.failed_checks().collect::<Vec<_>>()
    );
    eprintln!(
        "checker on {RECORDS} records in {} events: held {} MB above the history, {:.1} B per record",
        records.len(),
        held / 1_000_000,
        held as f64 / RECORDS as f64
    );
    let mut g = c.benchmark_group("checker");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(10);
    g.bench_function("check 10M records", |b| {
        b.iter(|| harness::check::check(&records))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
