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
    Budget, ClientInfo, ClientKey, CommittedOffset, ConsumerSettings, Event, Expectations, Fault,
    FaultKind, KnownDeviation, Ms, PartitionRange, Protocol, Record, Rule, RunInfo, TopicPartition,
    ViolationKind,
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
        offsets: None,
    }
}

/// A partition's batch with per-record evidence: `offsets` as delivered.
pub fn delivered(p: i32, offsets: &[(i64, i64)]) -> PartitionRange {
    let count = offsets.iter().map(|(a, b)| (b - a + 1) as u64).sum();
    PartitionRange {
        topic: TOPIC.into(),
        partition: p,
        count,
        min_offset: offsets.iter().map(|r| r.0).min().unwrap_or(0),
        max_offset: offsets.iter().map(|r| r.1).max().unwrap_or(0),
        offsets: Some(offsets.to_vec()),
    }
}

pub fn budget(detection_min_ms: u64, detection_max_ms: u64, recovery_max_ms: u64) -> Budget {
    Budget {
        detection_min_ms,
        detection_max_ms,
        recovery_max_ms,
        reaction: true,
        zombie_max_ms: None,
    }
}

pub fn kind(name: &str) -> FaultKind {
    name.parse().expect("a fault kind")
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
        budgets.insert(FaultKind::Crash, budget(3000, 12000, 20000));
        budgets.insert(FaultKind::Join, budget(0, 5000, 10000));
        H {
            info: RunInfo {
                scenario: "test".into(),
                protocol: protocol.parse::<Protocol>().expect("a protocol"),
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
                rate_per_sec: None,
                budgets,
                expectations: Expectations::default(),
                replay: "harness run --seed 7".into(),
                cell_expectations: BTreeMap::new(),
                known_deviations: Vec::new(),
                chaos: false,
            },
            events: Vec::new(),
        }
    }

    /// Sets (or replaces) the budget for one fault kind.
    pub fn budget(&mut self, fault: &str, min: u64, max: u64, recovery: u64) -> &mut Self {
        self.info
            .budgets
            .insert(kind(fault), budget(min, max, recovery));
        self
    }

    /// The group must ride faults of this kind out: no reaction is expected.
    pub fn ride_out(&mut self, fault: &str) -> &mut Self {
        if let Some(b) = self.info.budgets.get_mut(&kind(fault)) {
            b.reaction = false;
        }
        self
    }

    /// Sets the zombie window budget of one fault kind (which must have a budget).
    pub fn zombie_budget(&mut self, fault: &str, max_ms: u64) -> &mut Self {
        if let Some(b) = self.info.budgets.get_mut(&kind(fault)) {
            b.zombie_max_ms = Some(max_ms);
        }
        self
    }

    /// Sets what the window of faults of `kind` must show.
    pub fn expect(&mut self, fault: &str, e: harness::history::CellExpectation) -> &mut Self {
        self.info.cell_expectations.insert(kind(fault), e);
        self
    }

    /// A known deviation of this run's broker waiving `rule`/`kind` violations under
    /// `fault`, with optional bounds set by the caller on the returned entry.
    pub fn deviation(&mut self, fault: &str, violation: ViolationKind) -> &mut KnownDeviation {
        let info = &mut self.info;
        let n = info.known_deviations.len() + 1;
        info.known_deviations.push(KnownDeviation {
            id: format!("dev-{n}"),
            broker: Some(info.broker.clone()),
            client: None,
            protocols: vec![info.protocol],
            faults: vec![kind(fault)],
            rule: violation.rule(),
            kind: Some(violation),
            matches: None,
            partitions: Vec::new(),
            max_count: None,
            max_size: None,
            observed: "observed in a test".into(),
            why: "the broker differs".into(),
        });
        info.known_deviations.last_mut().expect("just pushed")
    }

    /// A client finding: like `deviation`, keyed by a client name instead of the broker.
    pub fn finding(
        &mut self,
        fault: &str,
        violation: ViolationKind,
        client: &str,
        versions: Option<&str>,
    ) -> &mut KnownDeviation {
        let d = self.deviation(fault, violation);
        d.broker = None;
        d.client = Some(ClientKey {
            name: client.into(),
            versions: versions.map(str::to_owned),
        });
        d
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

    /// The member's driver announced itself.
    pub fn startup(
        &mut self,
        t: Ms,
        member: &str,
        client: &str,
        version: &str,
        library: &str,
    ) -> &mut Self {
        self.event(
            t,
            Some(member),
            Event::StartupComplete {
                capabilities: vec!["stall".into(), "subscribe".into()],
                client: Some(ClientInfo {
                    name: client.into(),
                    version: version.into(),
                    library: Some(library.into()),
                }),
            },
        )
    }

    /// The process ended as the harness asked (SIGKILL when `killed`, else SIGTERM).
    pub fn exited(&mut self, t: Ms, member: &str, killed: bool) -> &mut Self {
        self.event(
            t,
            Some(member),
            Event::MemberExited {
                code: if killed { None } else { Some(0) },
                signal: if killed { Some(9) } else { None },
                killed,
                requested: Some(true),
                stderr_tail: Vec::new(),
            },
        )
    }

    /// The process ended on its own, with `code`, quoting its stderr.
    pub fn died(&mut self, t: Ms, member: &str, code: i32, stderr: &[&str]) -> &mut Self {
        self.event(
            t,
            Some(member),
            Event::MemberExited {
                code: Some(code),
                signal: None,
                killed: false,
                requested: Some(false),
                stderr_tail: stderr.iter().map(|l| l.to_string()).collect(),
            },
        )
    }

    pub fn fault(&mut self, t: Ms, id: &str, fault: &str, target: &str) -> &mut Self {
        self.event(
            t,
            None,
            Event::FaultInjected(Fault {
                id: id.into(),
                kind: kind(fault),
                target: (!target.is_empty()).then(|| target.into()),
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

    /// One batch of one partition with per-record evidence (`offsets`).
    pub fn deliver(&mut self, t: Ms, member: &str, p: i32, offsets: &[(i64, i64)]) -> &mut Self {
        self.consume_ranges(t, member, &[delivered(p, offsets)])
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

    /// A definite failure: the broker rejected the commit.
    pub fn commit_failed(&mut self, t: Ms, member: &str, p: i32, offset: i64) -> &mut Self {
        self.commit_result(t, member, &[(p, offset)], Some("REBALANCE_IN_PROGRESS"))
    }

    /// A failed commit with the client's own error text (classified by the harness).
    pub fn commit_error(
        &mut self,
        t: Ms,
        member: &str,
        p: i32,
        offset: i64,
        error: &str,
    ) -> &mut Self {
        self.commit_result(t, member, &[(p, offset)], Some(error))
    }

    /// An indeterminate failure: the commit may have landed.
    pub fn commit_timed_out(&mut self, t: Ms, member: &str, p: i32, offset: i64) -> &mut Self {
        self.commit_result(t, member, &[(p, offset)], Some("REQUEST_TIMED_OUT"))
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
                definite: None,
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
    v.failed_checks().map(|c| c.name.to_string()).collect()
}

/// The kinds of the violations of one rule.
pub fn kinds(v: &Verdict, rule: Rule) -> Vec<ViolationKind> {
    v.check(rule)
        .map(|c| c.violations.iter().map(|x| x.kind).collect())
        .unwrap_or_default()
}

pub fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// The checks the oracle must always report, in its order.
pub const CHECKS: &[&str] = &[
    "run_completed",
    "members_alive",
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
                match (c.passed, c.known_deviation.is_some()) {
                    (true, _) => "PASS",
                    (false, true) => "WAIVED",
                    (false, false) => "FAIL",
                },
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
                "zombie_ms": f.zombie_ms,
            })
        })
        .collect();
    let violations: Vec<String> = v
        .violations()
        .map(|x| {
            format!(
                "{}/{} fault={} tp={} member={} size={}{}",
                x.rule,
                x.kind,
                x.fault
                    .as_ref()
                    .map_or("-".into(), |f| format!("{}:{}", f.id, f.kind)),
                x.tp.as_ref().map_or("-".into(), |t| t.to_string()),
                x.member.as_deref().unwrap_or("-"),
                x.size,
                x.waived_by
                    .as_ref()
                    .map_or(String::new(), |d| format!(" waived-by={d}"))
            )
        })
        .collect();
    json!({
        "passed": v.passed,
        "outcome": v.outcome,
        "checks": checks,
        "violations": violations,
        "notes": v.notes,
        "stale_deviations": v.stale_deviations,
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
