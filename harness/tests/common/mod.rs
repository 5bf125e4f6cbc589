//! Shared helpers for the checker's tests: a builder that writes histories concisely,
//! and projections of a verdict that are small enough to snapshot and compare.
//!
//! The builder records events in call order; `build` prepends the `run_started` record
//! (at ts 0) and numbers every record with an increasing `seq`, so a history built from
//! non-decreasing timestamps is already in the checker's (ts, seq) order.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use harness::check::{self, Verdict};
use harness::history::{
    Budget, CommittedOffset, ConsumerSettings, Event, Expectations, Fault, Ms, PartitionRange,
    Record, RunInfo, TopicPartition,
};
use serde_json::{json, Value};

pub const TOPIC: &str = "events";

pub fn tp(p: i32) -> TopicPartition {
    TopicPartition {
        topic: TOPIC.into(),
        partition: p,
    }
}

pub fn range(p: i32, min: i64, max: i64, count: u64) -> PartitionRange {
    PartitionRange {
        topic: TOPIC.into(),
        partition: p,
        count,
        min_offset: min,
        max_offset: max,
    }
}

pub fn budget(detection_min_ms: u64, detection_max_ms: u64, recovery_max_ms: u64) -> Budget {
    Budget {
        detection_min_ms,
        detection_max_ms,
        recovery_max_ms,
        reaction: true,
    }
}

/// A history under construction.
#[derive(Debug, Clone)]
pub struct H {
    info: RunInfo,
    events: Vec<(Ms, Option<String>, Event)>,
}

impl H {
    /// A run on topic "events" with `partitions` partitions, session 6000 ms, heartbeat
    /// 1000 ms, max poll 10000 ms; budgets for "crash" (detection 3000..=12000 ms,
    /// recovery 20000 ms) and "join" (detection 0..=5000 ms, recovery 10000 ms).
    pub fn new(protocol: &str, partitions: i32) -> Self {
        let mut budgets = BTreeMap::new();
        budgets.insert("crash".to_owned(), budget(3000, 12000, 20000));
        budgets.insert("join".to_owned(), budget(0, 5000, 10000));
        H {
            info: RunInfo {
                scenario: "test".into(),
                protocol: protocol.into(),
                broker: "mock".into(),
                seed: 7,
                topic: TOPIC.into(),
                partitions,
                group: "g".into(),
                consumer: ConsumerSettings {
                    session_timeout_ms: 6000,
                    heartbeat_interval_ms: 1000,
                    max_poll_interval_ms: 10000,
                },
                budgets,
                expectations: Expectations::default(),
                replay: "harness run --seed 7".into(),
                cell_expectations: BTreeMap::new(),
                known_deviations: Vec::new(),
            },
            events: Vec::new(),
        }
    }

    /// Sets (or replaces) the budget for one fault kind.
    pub fn budget(&mut self, kind: &str, min: u64, max: u64, recovery: u64) -> &mut Self {
        self.info
            .budgets
            .insert(kind.to_owned(), budget(min, max, recovery));
        self
    }

    /// Sets what the window of faults of `kind` must show.
    pub fn expect(&mut self, kind: &str, e: harness::history::CellExpectation) -> &mut Self {
        self.info.cell_expectations.insert(kind.into(), e);
        self
    }

    /// Records a known deviation for `check` waiving violations that contain `matches`.
    pub fn deviation(&mut self, fault: &str, check: &str, matches: &str) -> &mut Self {
        let info = &mut self.info;
        info.known_deviations
            .push(harness::history::KnownDeviation {
                broker: info.broker.clone(),
                protocols: vec![info.protocol.clone()],
                faults: vec![fault.into()],
                check: check.into(),
                matches: matches.into(),
                observed: "observed in a test".into(),
                why: "the broker differs".into(),
            });
        self
    }

    pub fn clear_budgets(&mut self) -> &mut Self {
        self.info.budgets.clear();
        self
    }

    /// Expects the final assignment to be spread evenly over exactly these members.
    pub fn balanced_over(&mut self, members: &[&str]) -> &mut Self {
        self.info.expectations.final_balanced_over =
            Some(members.iter().map(|m| m.to_string()).collect());
        self
    }

    /// Appends any event; `member` is set for driver events.
    pub fn event(&mut self, t: Ms, member: Option<&str>, event: Event) -> &mut Self {
        self.events.push((t, member.map(str::to_owned), event));
        self
    }

    fn driver(&mut self, t: Ms, member: &str, event: Event) -> &mut Self {
        self.event(t, Some(member), event)
    }

    // --- harness events ---

    pub fn started(&mut self, t: Ms, member: &str) -> &mut Self {
        self.event(t, Some(member), Event::MemberStarted { pid: 100 })
    }

    pub fn exited(&mut self, t: Ms, member: &str, killed: bool) -> &mut Self {
        self.event(
            t,
            Some(member),
            Event::MemberExited {
                code: if killed { None } else { Some(0) },
                signal: if killed { Some(9) } else { None },
                killed,
            },
        )
    }

    pub fn fault(&mut self, t: Ms, id: &str, kind: &str, target: &str) -> &mut Self {
        self.event(
            t,
            None,
            Event::FaultInjected(Fault {
                id: id.into(),
                kind: kind.into(),
                target: Some(target.into()),
            }),
        )
    }

    pub fn heal(&mut self, t: Ms, id: &str) -> &mut Self {
        self.event(t, None, Event::FaultHealed { id: id.into() })
    }

    pub fn finish(&mut self, t: Ms) -> &mut Self {
        self.event(
            t,
            None,
            Event::RunFinished {
                outcome: "completed".into(),
            },
        )
    }

    // --- producer events ---

    /// The producer acked offsets `min..=max` of partition `p`.
    pub fn ack(&mut self, t: Ms, p: i32, min: i64, max: i64) -> &mut Self {
        self.ack_many(t, &[(p, min, max)])
    }

    pub fn ack_many(&mut self, t: Ms, ranges: &[(i32, i64, i64)]) -> &mut Self {
        let partitions = ranges
            .iter()
            .map(|&(p, min, max)| range(p, min, max, (max - min + 1) as u64))
            .collect();
        self.event(t, None, Event::RecordsAcked { partitions })
    }

    pub fn stop(&mut self, t: Ms) -> &mut Self {
        self.event(t, None, Event::ProductionStopped {})
    }

    // --- driver events ---

    pub fn assign(&mut self, t: Ms, member: &str, ps: &[i32]) -> &mut Self {
        let partitions = ps.iter().map(|&p| tp(p)).collect();
        self.driver(t, member, Event::PartitionsAssigned { partitions })
    }

    pub fn revoke(&mut self, t: Ms, member: &str, ps: &[i32]) -> &mut Self {
        let partitions = ps.iter().map(|&p| tp(p)).collect();
        self.driver(t, member, Event::PartitionsRevoked { partitions })
    }

    pub fn lost(&mut self, t: Ms, member: &str, ps: &[i32]) -> &mut Self {
        let partitions = ps.iter().map(|&p| tp(p)).collect();
        self.driver(t, member, Event::PartitionsLost { partitions })
    }

    pub fn shutdown(&mut self, t: Ms, member: &str) -> &mut Self {
        self.driver(t, member, Event::ShutdownComplete {})
    }

    /// `member` consumed offsets `min..=max` of `p` (count = the span).
    pub fn consume(&mut self, t: Ms, member: &str, p: i32, min: i64, max: i64) -> &mut Self {
        self.consume_ranges(t, member, &[range(p, min, max, (max - min + 1) as u64)])
    }

    /// One batch over several partitions: `(partition, min, max)`.
    pub fn consume_many(&mut self, t: Ms, member: &str, batches: &[(i32, i64, i64)]) -> &mut Self {
        let ranges: Vec<_> = batches
            .iter()
            .map(|&(p, min, max)| range(p, min, max, (max - min + 1) as u64))
            .collect();
        self.consume_ranges(t, member, &ranges)
    }

    /// One batch with explicit ranges (and counts).
    pub fn consume_ranges(&mut self, t: Ms, member: &str, ranges: &[PartitionRange]) -> &mut Self {
        let count = ranges.iter().map(|r| r.count).sum();
        self.driver(
            t,
            member,
            Event::RecordsConsumed {
                count,
                partitions: ranges.to_vec(),
            },
        )
    }

    /// A successful commit of `offset` (the next offset to consume) for `p`.
    pub fn commit(&mut self, t: Ms, member: &str, p: i32, offset: i64) -> &mut Self {
        self.commit_many(t, member, &[(p, offset)])
    }

    pub fn commit_many(&mut self, t: Ms, member: &str, offsets: &[(i32, i64)]) -> &mut Self {
        self.commit_result(t, member, offsets, None)
    }

    pub fn commit_failed(&mut self, t: Ms, member: &str, p: i32, offset: i64) -> &mut Self {
        self.commit_result(t, member, &[(p, offset)], Some("REBALANCE_IN_PROGRESS"))
    }

    fn commit_result(
        &mut self,
        t: Ms,
        member: &str,
        offsets: &[(i32, i64)],
        error: Option<&str>,
    ) -> &mut Self {
        let offsets = offsets
            .iter()
            .map(|&(p, offset)| CommittedOffset {
                topic: TOPIC.into(),
                partition: p,
                offset,
            })
            .collect();
        self.driver(
            t,
            member,
            Event::OffsetsCommitted {
                offsets,
                success: error.is_none(),
                error: error.map(str::to_owned),
            },
        )
    }

    // --- output ---

    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The history: `run_started` at ts 0 and seq 0, then the events in call order.
    pub fn build(&self) -> Vec<Record> {
        let first = Record {
            seq: 0,
            ts: 0,
            member: None,
            event: Event::RunStarted(Box::new(self.info.clone())),
        };
        std::iter::once(first)
            .chain(
                self.events
                    .iter()
                    .enumerate()
                    .map(|(i, (ts, member, event))| Record {
                        seq: i as u64 + 1,
                        ts: *ts,
                        member: member.clone(),
                        event: event.clone(),
                    }),
            )
            .collect()
    }

    pub fn check(&self) -> Verdict {
        check::check(&self.build())
    }
}

/// Names of the checks that failed.
pub fn failing(v: &Verdict) -> BTreeSet<String> {
    v.failed_checks().map(|c| c.name.clone()).collect()
}

pub fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The checks the oracle must always report, in its order.
pub const CHECKS: &[&str] = &[
    "run_completed",
    "no_loss",
    "acks_contiguous",
    "duplicates_explained",
    "single_ownership",
    "order",
    "commits",
    "latency",
    "protocol",
];

/// A compact, snapshot-friendly view of a verdict: one line per check and the key
/// metrics.
pub fn projection(v: &Verdict) -> Value {
    let checks: Vec<String> = v
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.name,
                c.detail
            )
        })
        .collect();
    let m = &v.metrics;
    let faults: Vec<Value> = m
        .faults
        .iter()
        .map(|f| {
            json!({
                "id": f.id,
                "kind": f.kind,
                "target": f.target,
                "detection_ms": f.detection_ms,
                "recovery_ms": f.recovery_ms,
                "partitions_moved": f.partitions_moved,
                "stop_the_world": f.stop_the_world_members,
            })
        })
        .collect();
    json!({
        "passed": v.passed,
        "checks": checks,
        "metrics": {
            "records_acked": m.records_acked,
            "records_consumed": m.records_consumed,
            "lost": m.lost,
            "duplicates": m.duplicates,
            "duplicates_explained": m.duplicates_explained,
            "duplicates_unexplained": m.duplicates_unexplained,
            "max_zombie_ms": m.max_zombie_ms,
            "final_assignment": m.final_assignment,
            "faults": faults,
        },
    })
}
