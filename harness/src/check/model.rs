//! The checker's view of a history, derived once from the records sorted by
//! (timestamp, seq): member processes, ownership intervals with the batches consumed
//! under them, commits, acks, fault windows and zombie windows, indexed per partition
//! so every rule walks one partition's story at a time.

use std::collections::{BTreeMap, BTreeSet};

use rangemap::RangeInclusiveSet;

use super::commit_errors;
use crate::history::{
    ClientInfo, CommittedOffset, Event, Fault, Ms, PartitionRange, Record, RunInfo, TopicPartition,
};

/// Why an ownership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `partitions_revoked`: the owner had its chance to commit.
    Revoked,
    /// `shutdown_complete`: a clean close (commit, leave) without a revocation report.
    Closed,
    /// `partitions_lost`: session expired or fenced.
    Lost,
    /// The harness killed the process (SIGKILL).
    Killed,
    /// The process ended without a clean close.
    Exited,
    /// Still held when the history ends.
    Open,
}

impl EndReason {
    /// Ends after which the owner may not have committed what it processed.
    pub fn is_abrupt(self) -> bool {
        matches!(
            self,
            EndReason::Lost | EndReason::Killed | EndReason::Exited | EndReason::Open
        )
    }
}

/// One poll's records of one partition, as one member reported them.
#[derive(Debug, Clone)]
pub struct Batch {
    pub ts: Ms,
    /// Position in the sorted history: orders events within one millisecond.
    pub at: usize,
    /// The offsets delivered, in delivery order, as inclusive ranges.
    pub ranges: Vec<(i64, i64)>,
    /// `ranges` is the driver's per-record evidence; otherwise it is the span
    /// `min..=max` and only `count` tells whether offsets were skipped.
    pub exact: bool,
    pub count: u64,
    pub min: i64,
    pub max: i64,
}

impl Batch {
    fn from_range(pr: &PartitionRange, ts: Ms, at: usize) -> Batch {
        let (ranges, exact) = match &pr.offsets {
            Some(r) if !r.is_empty() => {
                (r.iter().map(|&(a, b)| (a.min(b), a.max(b))).collect(), true)
            }
            _ => (vec![(pr.min_offset, pr.max_offset)], false),
        };
        let min = ranges.iter().map(|r| r.0).min().unwrap_or(pr.min_offset);
        let max = ranges.iter().map(|r| r.1).max().unwrap_or(pr.max_offset);
        Batch {
            ts,
            at,
            ranges,
            exact,
            count: pr.count,
            min,
            max,
        }
    }

    /// The first offset delivered.
    pub fn first(&self) -> i64 {
        self.ranges.first().map_or(self.min, |r| r.0)
    }

    /// The consumer's position after this batch: the last delivered offset + 1.
    pub fn end(&self) -> i64 {
        self.ranges.last().map_or(self.max, |r| r.1) + 1
    }

    /// The offsets delivered, as a set.
    pub fn set(&self) -> RangeInclusiveSet<i64> {
        let mut s = RangeInclusiveSet::new();
        for &(a, b) in &self.ranges {
            s.insert(a..=b);
        }
        s
    }
}

/// One member process holding one partition, from assignment to revocation (or loss,
/// close, death).
#[derive(Debug, Clone)]
pub struct Ownership {
    pub member: String,
    /// Which process of this member (a restart starts a new one under the same name).
    pub process: u32,
    pub tp: TopicPartition,
    pub start: Ms,
    pub start_at: usize,
    /// `None` while still open.
    pub end: Option<Ms>,
    pub end_at: Option<usize>,
    pub end_reason: EndReason,
    pub batches: Vec<Batch>,
    /// `processed[i]`: the highest offset in `batches[..=i]` (filled once built), so
    /// "what had it processed by then" is a binary search, not a scan.
    processed: Vec<i64>,
}

impl Ownership {
    pub fn end_or(&self, default: Ms) -> Ms {
        self.end.unwrap_or(default)
    }

    pub fn covers(&self, t: Ms, horizon: Ms) -> bool {
        self.start <= t && t < self.end_or(horizon)
    }

    /// Whether the ownership is in force at position `at` of the sorted history.
    pub fn holds_at(&self, at: usize) -> bool {
        self.start_at < at && self.end_at.is_none_or(|e| at < e)
    }

    /// The highest offset processed in batches before position `at`.
    pub fn processed_before(&self, at: usize) -> Option<i64> {
        let n = self.batches.partition_point(|b| b.at < at);
        match self.processed.len() {
            // Built by hand (tests): no index yet.
            0 => self.batches[..n].iter().map(|b| b.max).max(),
            _ => n.checked_sub(1).map(|i| self.processed[i]),
        }
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

/// One partition's entry in an `offsets_committed` event.
#[derive(Debug, Clone)]
pub struct Commit {
    pub ts: Ms,
    /// Position in the sorted history.
    pub at: usize,
    pub member: String,
    pub process: u32,
    pub tp: TopicPartition,
    pub offset: i64,
    pub success: bool,
    /// For a failure: it certainly did not land.
    pub definite: bool,
}

impl Commit {
    /// A failure that may have landed all the same.
    pub fn indeterminate(&self) -> bool {
        !self.success && !self.definite
    }
}

/// Records consumed by a member that did not hold the partition at the time.
#[derive(Debug, Clone)]
pub struct StrayBatch {
    pub member: String,
    pub tp: TopicPartition,
    pub batch: Batch,
}

/// How one member process ended.
#[derive(Debug, Clone)]
pub struct ProcessExit {
    pub ts: Ms,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub killed: bool,
    /// `None` in histories written before the harness recorded it.
    pub requested: Option<bool>,
    pub stderr_tail: Vec<String>,
}

/// One process of one member, from `member_started` to `member_exited`.
#[derive(Debug, Clone)]
pub struct Process {
    pub member: String,
    pub index: u32,
    pub started: Ms,
    /// When it reported `startup_complete`: its consumer exists and is subscribed.
    pub ready: Option<Ms>,
    pub client: Option<ClientInfo>,
    /// Some batch carried per-record `offsets`.
    pub exact_offsets: bool,
    /// Some batch came without them.
    pub inexact_batches: bool,
    pub closed: Option<Ms>,
    pub exit: Option<ProcessExit>,
    /// It said it cannot honour its flags (and then exits, as asked to).
    pub unsupported: bool,
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

    /// Whether the fault may leave `member` expelled but alive (a zombie).
    pub fn may_expel(&self, member: &str) -> bool {
        self.fault.kind.may_leave_zombies() && {
            let targets = self.fault.members();
            targets.is_empty() || targets.contains(&member)
        }
    }
}

/// A member the group replaced while it still held a partition: from the new owner's
/// assignment until the old owner let go, or until the latest a zombie may take to find
/// out (its fault's heal plus the session timeout).
#[derive(Debug, Clone)]
pub struct ZombieWindow {
    pub tp: TopicPartition,
    pub member: String,
    /// The ownership that outlived its place in the group, and the one that replaced it.
    pub old: usize,
    pub new: usize,
    /// The fault that explains it, if any (index into `Model::faults`).
    pub fault: Option<usize>,
    pub start: Ms,
    /// When the old owner let go (or the history ended).
    pub end: Ms,
    /// The latest the window may last (`None`: no fault explains it).
    pub deadline: Option<Ms>,
}

impl ZombieWindow {
    /// The part of the window that a fault explains.
    pub fn excused_ms(&self) -> u64 {
        self.deadline
            .map_or(0, |d| self.end.min(d).saturating_sub(self.start))
    }

    /// The part beyond what any fault explains.
    pub fn excess_ms(&self) -> u64 {
        match self.deadline {
            Some(d) => self.end.saturating_sub(d.max(self.start)),
            None => self.end - self.start,
        }
    }
}

/// Everything known about one partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionLog {
    pub acked: RangeInclusiveSet<i64>,
    /// The highest acked offset over time: (time, offset), increasing.
    pub acked_hw: Vec<(Ms, i64)>,
    /// Indices into `Model::ownerships`, in order of start.
    pub owners: Vec<usize>,
    /// Indices into `Model::commits`, in history order.
    pub commits: Vec<usize>,
    pub stray: Vec<StrayBatch>,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    pub info: Option<RunInfo>,
    pub partitions: BTreeMap<TopicPartition, PartitionLog>,
    pub ownerships: Vec<Ownership>,
    pub commits: Vec<Commit>,
    pub processes: Vec<Process>,
    pub faults: Vec<FaultWindow>,
    pub zombies: Vec<ZombieWindow>,
    /// `partitions_assigned` events in time order.
    pub assignments: Vec<Assignment>,
    pub acked_count: u64,
    pub produce_failures: u64,
    /// Assignment when production stopped (the state the scenario ends in).
    pub final_assignment: Option<BTreeMap<String, BTreeSet<TopicPartition>>>,
    pub production_stopped: Option<Ms>,
    pub run_outcome: Option<String>,
    /// A driver that said it cannot honour its flags: (member, reason).
    pub unsupported: Option<(String, String)>,
    /// The harness's own scheduling delays: (time, worst lateness in ms).
    pub scheduling_delays: Vec<(Ms, u64)>,
    /// The last timestamp in the history: open intervals are closed here.
    pub horizon: Ms,
}

/// State while folding the sorted records.
#[derive(Default)]
struct Builder {
    m: Model,
    /// Index of each member's open ownership per partition.
    open: BTreeMap<(String, TopicPartition), usize>,
    /// Index into `processes` of each member's current process.
    current: BTreeMap<String, usize>,
    /// Members whose current process has not been assigned anything yet.
    fresh: BTreeSet<String>,
}

impl Model {
    pub fn build(records: &[Record]) -> Model {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by_key(|r| (r.ts, r.seq));
        let mut b = Builder::default();
        b.m.horizon = sorted.last().map(|r| r.ts).unwrap_or(0);
        for (at, r) in sorted.into_iter().enumerate() {
            b.apply(at, r);
        }
        b.finish()
    }

    pub fn log(&self, tp: &TopicPartition) -> Option<&PartitionLog> {
        self.partitions.get(tp)
    }

    /// Ownerships of one partition, in order of start.
    pub fn ownerships_of<'a>(
        &'a self,
        tp: &TopicPartition,
    ) -> impl Iterator<Item = &'a Ownership> + 'a {
        self.log(tp)
            .map(|l| l.owners.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.ownerships[i])
    }

    /// Commits of one partition, in history order.
    pub fn commits_of<'a>(&'a self, tp: &TopicPartition) -> impl Iterator<Item = &'a Commit> + 'a {
        self.log(tp)
            .map(|l| l.commits.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.commits[i])
    }

    /// The member holding `tp` at time `t`, if any (the latest one to take it).
    pub fn owner_at(&self, tp: &TopicPartition, t: Ms) -> Option<&Ownership> {
        self.ownerships_of(tp)
            .filter(|o| o.covers(t, self.horizon + 1))
            .max_by_key(|o| (o.start, o.start_at))
    }

    /// The last successful commit of `tp` reported before position `at`.
    pub fn committed_before(&self, tp: &TopicPartition, at: usize) -> Option<&Commit> {
        self.commits_of(tp)
            .filter(|c| c.success && c.at < at)
            .last()
    }

    /// The highest offset acked by time `t` (-1: none).
    pub fn acked_by(&self, tp: &TopicPartition, t: Ms) -> i64 {
        self.log(tp).map_or(-1, |l| {
            let n = l.acked_hw.partition_point(|&(ts, _)| ts <= t);
            if n == 0 {
                -1
            } else {
                l.acked_hw[n - 1].1
            }
        })
    }

    /// The highest offset any member consumed from `tp` by time `t` (-1: none).
    pub fn consumed_by(&self, tp: &TopicPartition, t: Ms) -> i64 {
        self.ownerships_of(tp)
            .flat_map(|o| o.batches.iter())
            .filter(|b| b.ts <= t)
            .map(|b| b.max)
            .max()
            .unwrap_or(-1)
    }

    /// The first offset a consumer with reset policy `earliest` reads: the first acked.
    pub fn log_start(&self, tp: &TopicPartition) -> i64 {
        self.log(tp)
            .and_then(|l| l.acked.iter().next().map(|r| *r.start()))
            .unwrap_or(0)
    }

    pub fn session_timeout_ms(&self) -> Ms {
        self.info
            .as_ref()
            .map_or(0, |i| i.consumer.session_timeout_ms)
    }

    /// The latest a zombie `member` may still process at time `t`: its explaining
    /// fault's heal (or the end of the history) plus the session timeout. `None` when
    /// no fault started by `t` may have expelled it.
    pub fn zombie_deadline(&self, member: &str, t: Ms) -> Option<(usize, Ms)> {
        let session = self.session_timeout_ms();
        self.faults
            .iter()
            .enumerate()
            .filter(|(_, f)| f.start <= t && f.may_expel(member))
            .map(|(i, f)| (i, f.healed.unwrap_or(self.horizon) + session))
            .filter(|&(_, deadline)| t <= deadline)
            .max_by_key(|&(_, d)| d)
    }

    /// The latest fault injected at or before `t`: the one a violation at `t` happened
    /// under.
    pub fn fault_at(&self, t: Ms) -> Option<&Fault> {
        self.faults
            .iter()
            .take_while(|f| f.start <= t)
            .last()
            .map(|f| &f.fault)
    }

    /// Clients the members announced, each once.
    pub fn clients(&self) -> Vec<ClientInfo> {
        let set: BTreeSet<&ClientInfo> = self
            .processes
            .iter()
            .filter_map(|p| p.client.as_ref())
            .collect();
        set.into_iter().cloned().collect()
    }

    /// The worst scheduling delay recorded within `[from, to]`.
    pub fn starvation(&self, from: Ms, to: Ms) -> u64 {
        self.scheduling_delays
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to.saturating_add(1000))
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(0)
    }
}

impl Builder {
    fn apply(&mut self, at: usize, r: &Record) {
        let member = r.member.as_deref().unwrap_or_default();
        match &r.event {
            Event::RunStarted(info) => self.run_started(info),
            Event::MemberStarted { .. } => self.member_started(member, r.ts),
            Event::StartupComplete { client, .. } => {
                if let Some(p) = self.process_mut(member) {
                    p.client.clone_from(client);
                    p.ready.get_or_insert(r.ts);
                }
            }
            Event::Unsupported { reason } => {
                if let Some(p) = self.process_mut(member) {
                    p.unsupported = true;
                }
                self.m
                    .unsupported
                    .get_or_insert((member.to_owned(), reason.clone()));
            }
            Event::PartitionsAssigned { partitions } => self.assigned(member, partitions, r.ts, at),
            Event::PartitionsRevoked { partitions } => {
                self.end(member, Some(partitions), (r.ts, at), EndReason::Revoked)
            }
            Event::PartitionsLost { partitions } => {
                self.end(member, Some(partitions), (r.ts, at), EndReason::Lost)
            }
            Event::ShutdownComplete {} => {
                if let Some(p) = self.process_mut(member) {
                    p.closed = Some(r.ts);
                }
                self.end(member, None, (r.ts, at), EndReason::Closed)
            }
            Event::MemberExited {
                code,
                signal,
                killed,
                requested,
                stderr_tail,
            } => {
                let reason = if *killed {
                    EndReason::Killed
                } else {
                    EndReason::Exited
                };
                self.end(member, None, (r.ts, at), reason);
                if let Some(p) = self.process_mut(member) {
                    p.exit = Some(ProcessExit {
                        ts: r.ts,
                        code: *code,
                        signal: *signal,
                        killed: *killed,
                        requested: *requested,
                        stderr_tail: stderr_tail.clone(),
                    });
                }
            }
            Event::RecordsConsumed { partitions, .. } => {
                self.consumed(member, partitions, r.ts, at)
            }
            Event::OffsetsCommitted {
                offsets,
                success,
                error,
                definite,
            } => {
                let definite = *success || commit_errors::is_definite(*definite, error.as_deref());
                self.committed(member, offsets, (*success, definite), r.ts, at)
            }
            Event::RecordsAcked { partitions } => self.acked(partitions, r.ts),
            Event::ProduceFailed { count, .. } => self.m.produce_failures += count,
            Event::ProductionStopped {} => self.production_stopped(r.ts),
            Event::FaultInjected(fault) => self.m.faults.push(FaultWindow {
                fault: fault.clone(),
                start: r.ts,
                healed: None,
                window_end: 0,
            }),
            Event::FaultHealed { id } => {
                if let Some(f) = self.m.faults.iter_mut().rev().find(|f| &f.fault.id == id) {
                    f.healed = Some(r.ts);
                }
            }
            Event::SchedulingDelay { max_ms } => self.m.scheduling_delays.push((r.ts, *max_ms)),
            Event::RunFinished { outcome } => self.m.run_outcome = Some(outcome.clone()),
        }
    }

    fn partition(&mut self, tp: &TopicPartition) -> &mut PartitionLog {
        self.m.partitions.entry(tp.clone()).or_default()
    }

    fn process_mut(&mut self, member: &str) -> Option<&mut Process> {
        let i = *self.current.get(member)?;
        self.m.processes.get_mut(i)
    }

    fn process_index(&self, member: &str) -> u32 {
        self.current
            .get(member)
            .map_or(0, |&i| self.m.processes[i].index)
    }

    fn run_started(&mut self, info: &RunInfo) {
        for p in 0..info.partitions {
            self.partition(&TopicPartition {
                topic: info.topic.clone(),
                partition: p,
            });
        }
        self.m.info = Some(info.clone());
    }

    fn member_started(&mut self, member: &str, ts: Ms) {
        self.fresh.insert(member.to_owned());
        let index = self.process_index(member) + 1;
        self.current
            .insert(member.to_owned(), self.m.processes.len());
        self.m.processes.push(Process {
            member: member.to_owned(),
            index,
            started: ts,
            ready: None,
            client: None,
            exact_offsets: false,
            inexact_batches: false,
            closed: None,
            exit: None,
            unsupported: false,
        });
    }

    fn assigned(&mut self, member: &str, partitions: &[TopicPartition], ts: Ms, at: usize) {
        self.m.assignments.push(Assignment {
            ts,
            member: member.to_owned(),
            first_of_process: self.fresh.remove(member),
        });
        let process = self.process_index(member);
        for tp in partitions {
            let key = (member.to_owned(), tp.clone());
            if self.open.contains_key(&key) {
                continue;
            }
            let i = self.m.ownerships.len();
            self.open.insert(key, i);
            self.m.ownerships.push(Ownership {
                member: member.to_owned(),
                process,
                tp: tp.clone(),
                start: ts,
                start_at: at,
                end: None,
                end_at: None,
                end_reason: EndReason::Open,
                batches: Vec::new(),
                processed: Vec::new(),
            });
            self.partition(tp).owners.push(i);
        }
    }

    /// Ends the member's ownership of `partitions` (all of them when `None`).
    fn end(
        &mut self,
        member: &str,
        partitions: Option<&[TopicPartition]>,
        (ts, at): (Ms, usize),
        reason: EndReason,
    ) {
        let keys: Vec<(String, TopicPartition)> = match partitions {
            Some(ps) => ps
                .iter()
                .map(|tp| (member.to_owned(), tp.clone()))
                .collect(),
            None => self
                .open
                .keys()
                .filter(|(m, _)| m == member)
                .cloned()
                .collect(),
        };
        for k in keys {
            if let Some(i) = self.open.remove(&k) {
                let o = &mut self.m.ownerships[i];
                o.end = Some(ts);
                o.end_at = Some(at);
                o.end_reason = reason;
            }
        }
    }

    fn consumed(&mut self, member: &str, partitions: &[PartitionRange], ts: Ms, at: usize) {
        for pr in partitions {
            let tp = pr.tp();
            let batch = Batch::from_range(pr, ts, at);
            if let Some(p) = self.process_mut(member) {
                p.exact_offsets |= batch.exact;
                p.inexact_batches |= !batch.exact;
            }
            match self.open.get(&(member.to_owned(), tp.clone())) {
                Some(&i) => self.m.ownerships[i].batches.push(batch),
                None => self.partition(&tp).stray.push(StrayBatch {
                    member: member.to_owned(),
                    tp,
                    batch,
                }),
            }
        }
    }

    fn committed(
        &mut self,
        member: &str,
        offsets: &[CommittedOffset],
        (success, definite): (bool, bool),
        ts: Ms,
        at: usize,
    ) {
        let process = self.process_index(member);
        for o in offsets {
            let tp = TopicPartition {
                topic: o.topic.clone(),
                partition: o.partition,
            };
            let i = self.m.commits.len();
            self.m.commits.push(Commit {
                ts,
                at,
                member: member.to_owned(),
                process,
                tp: tp.clone(),
                offset: o.offset,
                success,
                definite,
            });
            self.partition(&tp).commits.push(i);
        }
    }

    fn acked(&mut self, partitions: &[PartitionRange], ts: Ms) {
        // An ack without an offset (-1: a retried duplicate the broker already had)
        // says nothing about where the record is.
        for pr in partitions.iter().filter(|pr| pr.min_offset >= 0) {
            let log = self.partition(&pr.tp());
            log.acked.insert(pr.min_offset..=pr.max_offset);
            if log
                .acked_hw
                .last()
                .is_none_or(|&(_, hw)| pr.max_offset > hw)
            {
                log.acked_hw.push((ts, pr.max_offset));
            }
            self.m.acked_count += pr.count;
        }
    }

    fn production_stopped(&mut self, ts: Ms) {
        self.m.production_stopped = Some(ts);
        let mut fin: BTreeMap<String, BTreeSet<TopicPartition>> = BTreeMap::new();
        for (who, tp) in self.open.keys() {
            fin.entry(who.clone()).or_default().insert(tp.clone());
        }
        self.m.final_assignment = Some(fin);
    }

    fn finish(mut self) -> Model {
        let m = &mut self.m;
        let end = m.production_stopped.unwrap_or(m.horizon);
        let starts: Vec<Ms> = m.faults.iter().map(|f| f.start).collect();
        // Overlapping chaos faults share one window: from each to the end.
        let chaos = m.info.as_ref().is_some_and(|i| i.chaos);
        for (i, f) in m.faults.iter_mut().enumerate() {
            let next = if chaos {
                None
            } else {
                starts.get(i + 1).copied()
            };
            f.window_end = next.unwrap_or(end).max(f.start);
        }
        for o in &mut m.ownerships {
            let mut high = i64::MIN;
            o.processed = o
                .batches
                .iter()
                .map(|b| {
                    high = high.max(b.max);
                    high
                })
                .collect();
        }
        // Ownerships per partition in order of start (the history order within a ms).
        for log in m.partitions.values_mut() {
            let ownerships = &m.ownerships;
            log.owners
                .sort_by_key(|&i| (ownerships[i].start, ownerships[i].start_at));
        }
        m.zombies = zombie_windows(m);
        self.m
    }
}

/// Every overlap of two members' ownerships of one partition, with the fault that
/// explains it when one does: the earlier owner was expelled by the group (paused, cut
/// off, stalled, or a broker fault) and has not found out yet.
fn zombie_windows(m: &Model) -> Vec<ZombieWindow> {
    let mut out = Vec::new();
    let horizon = m.horizon;
    for (tp, log) in &m.partitions {
        for (k, &i) in log.owners.iter().enumerate() {
            for &j in &log.owners[k + 1..] {
                let (old, new) = (&m.ownerships[i], &m.ownerships[j]);
                let start = new.start;
                let end = old.end_or(horizon).min(new.end_or(horizon));
                if end <= start || old.member == new.member {
                    continue;
                }
                // The same ms as the old owner's end is a handover, not an overlap.
                if old.end_at.is_some_and(|e| e < new.start_at) {
                    continue;
                }
                let explained = m.zombie_deadline(&old.member, start);
                out.push(ZombieWindow {
                    tp: tp.clone(),
                    member: old.member.clone(),
                    old: i,
                    new: j,
                    fault: explained.map(|(f, _)| f),
                    start,
                    end,
                    deadline: explained.map(|(_, d)| d),
                });
            }
        }
    }
    out
}
