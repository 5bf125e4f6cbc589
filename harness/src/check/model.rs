//! The checker's view of a history: ownership intervals, consumed batches, commits,
//! acks and fault windows, derived once from the records sorted by (timestamp, seq).

use std::collections::{BTreeMap, BTreeSet};

use rangemap::RangeInclusiveSet;

use crate::history::{Event, Fault, Ms, Record, RunInfo, TopicPartition};

/// Why an ownership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `partitions_revoked`: the owner had its chance to commit.
    Revoked,
    /// `partitions_lost`: session expired or fenced.
    Lost,
    /// The harness killed the process (SIGKILL).
    Killed,
    /// The process ended by itself or after SIGTERM.
    Exited,
    /// Still held when the history ends.
    Open,
}

impl EndReason {
    /// Handovers after these let the next owner re-process what was not committed.
    pub fn is_abrupt(self) -> bool {
        matches!(
            self,
            EndReason::Lost | EndReason::Killed | EndReason::Exited
        )
    }
}

/// A batch of records one member consumed from one partition.
#[derive(Debug, Clone)]
pub struct Batch {
    pub ts: Ms,
    /// Position in the sorted history: orders events within one millisecond.
    pub at: usize,
    pub min: i64,
    pub max: i64,
    pub count: u64,
}

/// One member holding one partition, from assignment to revocation (or loss, death).
#[derive(Debug, Clone)]
pub struct Ownership {
    pub member: String,
    /// Which process of this member (a restart starts a new one under the same name).
    pub process: u32,
    pub tp: TopicPartition,
    pub start: Ms,
    /// `None` while still open.
    pub end: Option<Ms>,
    /// Position of the ending event in the sorted history.
    pub end_at: Option<usize>,
    pub end_reason: EndReason,
    pub batches: Vec<Batch>,
}

impl Ownership {
    pub fn end_or(&self, default: Ms) -> Ms {
        self.end.unwrap_or(default)
    }
    pub fn covers(&self, t: Ms, horizon: Ms) -> bool {
        self.start <= t && t < self.end_or(horizon)
    }
}

/// One `partitions_assigned` event.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub ts: Ms,
    pub member: String,
    /// The first assignment of a freshly started process: its own joining, not a
    /// rebalance the rest of the group went through.
    pub first_of_process: bool,
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub ts: Ms,
    /// Position in the sorted history.
    pub at: usize,
    pub member: String,
    pub tp: TopicPartition,
    pub offset: i64,
    pub success: bool,
    /// Whether the member held the partition when it reported the commit.
    pub owner: bool,
}

/// Records consumed by a member that did not hold the partition at the time.
#[derive(Debug, Clone)]
pub struct StrayBatch {
    pub member: String,
    pub tp: TopicPartition,
    pub batch: Batch,
}

#[derive(Debug, Clone)]
pub struct FaultWindow {
    pub fault: Fault,
    pub start: Ms,
    pub healed: Option<Ms>,
    /// Where this fault's effects are measured up to: the next fault, or the end.
    pub window_end: Ms,
}

impl FaultWindow {
    /// Whether `t` falls in this fault's window: after the fault, up to its end.
    pub fn contains(&self, t: Ms) -> bool {
        t > self.start && t <= self.window_end
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    pub info: Option<RunInfo>,
    pub partitions: BTreeSet<TopicPartition>,
    pub acked: BTreeMap<TopicPartition, RangeInclusiveSet<i64>>,
    pub acked_count: u64,
    pub ownerships: Vec<Ownership>,
    pub stray: Vec<StrayBatch>,
    pub commits: Vec<Commit>,
    pub faults: Vec<FaultWindow>,
    /// Assignment when production stopped (the state the scenario ends in).
    pub final_assignment: Option<BTreeMap<String, BTreeSet<TopicPartition>>>,
    pub production_stopped: Option<Ms>,
    pub run_outcome: Option<String>,
    /// The last timestamp in the history: open intervals are closed here.
    pub horizon: Ms,
    /// `partitions_assigned` events in time order.
    pub assignments: Vec<Assignment>,
    pub produce_failures: u64,
}

impl Model {
    pub fn build(records: &[Record]) -> Model {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by_key(|r| (r.ts, r.seq));

        let mut m = Model {
            info: None,
            partitions: BTreeSet::new(),
            acked: BTreeMap::new(),
            acked_count: 0,
            ownerships: Vec::new(),
            stray: Vec::new(),
            commits: Vec::new(),
            faults: Vec::new(),
            final_assignment: None,
            production_stopped: None,
            run_outcome: None,
            horizon: sorted.last().map(|r| r.ts).unwrap_or(0),
            assignments: Vec::new(),
            produce_failures: 0,
        };
        // Index of each member's open ownership per partition.
        let mut open: BTreeMap<(String, TopicPartition), usize> = BTreeMap::new();
        // Members whose current process has not been assigned anything yet.
        let mut fresh: BTreeSet<String> = BTreeSet::new();
        let mut process: BTreeMap<String, u32> = BTreeMap::new();

        for (at, r) in sorted.into_iter().enumerate() {
            let member = r.member.clone().unwrap_or_default();
            match &r.event {
                Event::RunStarted(info) => {
                    for p in 0..info.partitions {
                        m.partitions.insert(TopicPartition {
                            topic: info.topic.clone(),
                            partition: p,
                        });
                    }
                    m.info = Some((**info).clone());
                }
                Event::PartitionsAssigned { partitions } => {
                    m.assignments.push(Assignment {
                        ts: r.ts,
                        member: member.clone(),
                        first_of_process: fresh.remove(&member),
                    });
                    for tp in partitions {
                        let key = (member.clone(), tp.clone());
                        if open.contains_key(&key) {
                            continue;
                        }
                        open.insert(key, m.ownerships.len());
                        m.ownerships.push(Ownership {
                            member: member.clone(),
                            process: process.get(&member).copied().unwrap_or(0),
                            tp: tp.clone(),
                            start: r.ts,
                            end: None,
                            end_at: None,
                            end_reason: EndReason::Open,
                            batches: Vec::new(),
                        });
                    }
                }
                Event::PartitionsRevoked { partitions } | Event::PartitionsLost { partitions } => {
                    let reason = if matches!(r.event, Event::PartitionsLost { .. }) {
                        EndReason::Lost
                    } else {
                        EndReason::Revoked
                    };
                    for tp in partitions {
                        if let Some(i) = open.remove(&(member.clone(), tp.clone())) {
                            m.ownerships[i].end = Some(r.ts);
                            m.ownerships[i].end_at = Some(at);
                            m.ownerships[i].end_reason = reason;
                        }
                    }
                }
                Event::MemberExited { killed, .. } => {
                    let reason = if *killed {
                        EndReason::Killed
                    } else {
                        EndReason::Exited
                    };
                    close_member(&mut m.ownerships, &mut open, &member, (r.ts, at), reason);
                }
                Event::ShutdownComplete {} => {
                    close_member(
                        &mut m.ownerships,
                        &mut open,
                        &member,
                        (r.ts, at),
                        EndReason::Exited,
                    );
                }
                Event::RecordsConsumed { partitions, .. } => {
                    for pr in partitions {
                        let tp = TopicPartition {
                            topic: pr.topic.clone(),
                            partition: pr.partition,
                        };
                        let batch = Batch {
                            ts: r.ts,
                            at,
                            min: pr.min_offset,
                            max: pr.max_offset,
                            count: pr.count,
                        };
                        match open.get(&(member.clone(), tp.clone())) {
                            Some(&i) => m.ownerships[i].batches.push(batch),
                            None => m.stray.push(StrayBatch {
                                member: member.clone(),
                                tp,
                                batch,
                            }),
                        }
                    }
                }
                Event::OffsetsCommitted {
                    offsets, success, ..
                } => {
                    for o in offsets {
                        let tp = TopicPartition {
                            topic: o.topic.clone(),
                            partition: o.partition,
                        };
                        let owner = open.contains_key(&(member.clone(), tp.clone()));
                        m.commits.push(Commit {
                            ts: r.ts,
                            at,
                            member: member.clone(),
                            tp,
                            offset: o.offset,
                            success: *success,
                            owner,
                        });
                    }
                }
                Event::RecordsAcked { partitions } => {
                    for pr in partitions {
                        let tp = TopicPartition {
                            topic: pr.topic.clone(),
                            partition: pr.partition,
                        };
                        m.partitions.insert(tp.clone());
                        m.acked
                            .entry(tp)
                            .or_default()
                            .insert(pr.min_offset..=pr.max_offset);
                        m.acked_count += pr.count;
                    }
                }
                Event::ProduceFailed { count, .. } => m.produce_failures += count,
                Event::ProductionStopped {} => {
                    m.production_stopped = Some(r.ts);
                    let mut fin: BTreeMap<String, BTreeSet<TopicPartition>> = BTreeMap::new();
                    for (who, tp) in open.keys() {
                        fin.entry(who.clone()).or_default().insert(tp.clone());
                    }
                    m.final_assignment = Some(fin);
                }
                Event::FaultInjected(fault) => m.faults.push(FaultWindow {
                    fault: fault.clone(),
                    start: r.ts,
                    healed: None,
                    window_end: 0,
                }),
                Event::FaultHealed { id } => {
                    if let Some(f) = m.faults.iter_mut().rev().find(|f| &f.fault.id == id) {
                        f.healed = Some(r.ts);
                    }
                }
                Event::RunFinished { outcome } => m.run_outcome = Some(outcome.clone()),
                Event::MemberStarted { .. } => {
                    fresh.insert(member.clone());
                    *process.entry(member.clone()).or_default() += 1;
                }
                Event::StartupComplete { .. } => {}
            }
        }

        let end = m.production_stopped.unwrap_or(m.horizon);
        let starts: Vec<Ms> = m.faults.iter().map(|f| f.start).collect();
        for (i, f) in m.faults.iter_mut().enumerate() {
            f.window_end = starts.get(i + 1).copied().unwrap_or(end).max(f.start);
        }
        m
    }

    /// Ownerships of one partition, in order of start.
    pub fn ownerships_of<'a>(
        &'a self,
        tp: &'a TopicPartition,
    ) -> impl Iterator<Item = &'a Ownership> {
        self.ownerships.iter().filter(move |o| &o.tp == tp)
    }

    /// The member holding `tp` at time `t`, if any (the latest one to take it).
    pub fn owner_at<'a>(&'a self, tp: &'a TopicPartition, t: Ms) -> Option<&'a Ownership> {
        self.ownerships_of(tp)
            .filter(|o| o.covers(t, self.horizon + 1))
            .max_by_key(|o| o.start)
    }

    /// The highest successful commit for `tp` reported before position `at` of the
    /// sorted history.
    pub fn committed_before(&self, tp: &TopicPartition, at: usize) -> Option<i64> {
        self.commits
            .iter()
            .filter(|c| c.success && &c.tp == tp && c.at < at)
            .map(|c| c.offset)
            .max()
    }

    /// Whether `member` was the target of a fault that leaves it a legitimate zombie
    /// (paused, cut off, stalled) at time `t`.
    pub fn zombie_fault_at(&self, member: &str, t: Ms) -> bool {
        self.faults.iter().any(|f| {
            f.fault.target.as_deref() == Some(member)
                && ZOMBIE_FAULTS.contains(&f.fault.kind.as_str())
                && f.start <= t
        })
    }
}

/// Fault kinds after which the group may expire a member that is still alive.
pub const ZOMBIE_FAULTS: &[&str] = &["pause-long", "partition", "heartbeat-drop", "long-poll"];

fn close_member(
    ownerships: &mut [Ownership],
    open: &mut BTreeMap<(String, TopicPartition), usize>,
    member: &str,
    (ts, at): (Ms, usize),
    reason: EndReason,
) {
    let keys: Vec<_> = open.keys().filter(|(m, _)| m == member).cloned().collect();
    for k in keys {
        if let Some(i) = open.remove(&k) {
            ownerships[i].end = Some(ts);
            ownerships[i].end_at = Some(at);
            ownerships[i].end_reason = reason;
        }
    }
}
