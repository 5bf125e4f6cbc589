//! What the group looks like right now, folded from the history as it is written. The
//! runner waits on it; the checker never sees it (it re-derives everything).

use std::collections::{BTreeMap, BTreeSet};

use super::{Event, Ms, Record, TopicPartition};

/// How a member's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The harness asked for it (SIGTERM, SIGKILL, stdin closed).
    pub requested: bool,
    pub stderr_tail: Vec<String>,
}

impl Exit {
    /// "exit code 1" or "signal 11".
    pub fn status(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit code {c}"),
            (_, Some(s)) => format!("signal {s}"),
            _ => "no status".to_owned(),
        }
    }
}

#[derive(Debug, Default)]
pub struct GroupView {
    pub assignment: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// When each partition got its current owner.
    pub assigned_at: BTreeMap<TopicPartition, Ms>,
    /// Last time and highest offset each partition was consumed.
    pub consumed: BTreeMap<TopicPartition, (Ms, i64)>,
    pub acked_max: BTreeMap<TopicPartition, i64>,
    /// Highest successful commit per partition (the next offset to consume).
    pub committed: BTreeMap<TopicPartition, i64>,
    pub started: BTreeSet<String>,
    /// Members whose current process is running.
    pub running: BTreeSet<String>,
    pub capabilities: BTreeMap<String, Vec<String>>,
    /// The current process of each member that has ended, and how.
    pub exited: BTreeMap<String, Exit>,
    /// A driver said it cannot honour its flags: (member, reason).
    pub unsupported: Option<(String, String)>,
    pub production_stopped: bool,
}

impl GroupView {
    pub fn apply(&mut self, r: &Record) {
        let member = r.member.clone().unwrap_or_default();
        match &r.event {
            // A new process under this name (a restart): forget the last one's lifecycle.
            Event::MemberStarted { .. } => {
                self.started.remove(&member);
                self.exited.remove(&member);
                self.running.insert(member);
            }
            Event::StartupComplete { capabilities, .. } => {
                self.started.insert(member.clone());
                self.capabilities.insert(member, capabilities.clone());
            }
            Event::Unsupported { reason } => {
                self.unsupported.get_or_insert((member, reason.clone()));
            }
            Event::PartitionsAssigned { partitions } => {
                let held = self.assignment.entry(member).or_default();
                for tp in partitions {
                    held.insert(tp.clone());
                    self.assigned_at.insert(tp.clone(), r.ts);
                }
            }
            Event::PartitionsRevoked { partitions } | Event::PartitionsLost { partitions } => {
                if let Some(held) = self.assignment.get_mut(&member) {
                    for tp in partitions {
                        held.remove(tp);
                    }
                }
            }
            Event::RecordsConsumed { partitions, .. } => {
                for p in partitions {
                    let e = self.consumed.entry(p.tp()).or_insert((r.ts, p.max_offset));
                    *e = (r.ts, e.1.max(p.max_offset));
                }
            }
            Event::OffsetsCommitted {
                offsets,
                success: true,
                ..
            } => {
                for o in offsets {
                    let tp = TopicPartition {
                        topic: o.topic.clone(),
                        partition: o.partition,
                    };
                    let e = self.committed.entry(tp).or_insert(o.offset);
                    *e = (*e).max(o.offset);
                }
            }
            Event::RecordsAcked { partitions } => {
                for p in partitions {
                    let e = self.acked_max.entry(p.tp()).or_insert(p.max_offset);
                    *e = (*e).max(p.max_offset);
                }
            }
            Event::MemberExited {
                code,
                signal,
                killed,
                requested,
                stderr_tail,
            } => {
                self.assignment.remove(&member);
                self.running.remove(&member);
                self.exited.insert(
                    member,
                    Exit {
                        code: *code,
                        signal: *signal,
                        requested: requested.unwrap_or(*killed),
                        stderr_tail: stderr_tail.clone(),
                    },
                );
            }
            Event::ShutdownComplete {} => {
                self.assignment.remove(&member);
            }
            Event::ProductionStopped {} => self.production_stopped = true,
            _ => {}
        }
    }

    /// Whether the member's current process has reported `startup_complete`.
    pub fn started_now(&self, member: &str) -> bool {
        self.started.contains(member)
    }

    /// The first of `members` whose process ended without the harness asking, with how
    /// it ended: nothing it waits for can happen any more.
    pub fn died_among<'a>(&'a self, members: &[String]) -> Option<(&'a str, &'a Exit)> {
        members.iter().find_map(|m| {
            self.exited
                .get_key_value(m)
                .filter(|(_, e)| !e.requested)
                .map(|(k, e)| (k.as_str(), e))
        })
    }

    /// Every partition of `topic` is held by exactly one of `members`, evenly (counts
    /// differ by at most one), and has been consumed since it got its current owner and
    /// since `since` (so a group that has not yet reacted to a fault, still showing the
    /// assignment from before it, does not count as settled).
    pub fn balanced_over(
        &self,
        members: &[String],
        topic: &str,
        partitions: i32,
        since: u64,
    ) -> bool {
        let mut owners: BTreeMap<i32, usize> = BTreeMap::new();
        for (m, tps) in &self.assignment {
            let mine: Vec<_> = tps.iter().filter(|tp| tp.topic == topic).collect();
            if !mine.is_empty() && !members.contains(m) {
                return false;
            }
            for tp in mine {
                *owners.entry(tp.partition).or_default() += 1;
            }
        }
        if owners.len() != partitions as usize || owners.values().any(|&n| n != 1) {
            return false;
        }
        let counts: Vec<usize> = members
            .iter()
            .map(|m| {
                self.assignment
                    .get(m)
                    .map_or(0, |t| t.iter().filter(|tp| tp.topic == topic).count())
            })
            .collect();
        let (lo, hi) = (
            counts.iter().min().copied().unwrap_or(0),
            counts.iter().max().copied().unwrap_or(0),
        );
        if hi - lo > 1 {
            return false;
        }
        (0..partitions).all(|p| {
            let tp = TopicPartition {
                topic: topic.to_owned(),
                partition: p,
            };
            match (self.assigned_at.get(&tp), self.consumed.get(&tp)) {
                (Some(a), Some((c, _))) => *c >= (*a).max(since),
                _ => false,
            }
        })
    }

    /// Production stopped and every partition consumed up to its last acked offset, or
    /// committed past it (a driver that commits records it never reports has nothing
    /// more to give: waiting for it would only run out the clock).
    pub fn drained(&self) -> bool {
        self.production_stopped
            && self.acked_max.iter().all(|(tp, hi)| {
                self.consumed.get(tp).is_some_and(|(_, c)| c >= hi)
                    || self.committed.get(tp).is_some_and(|c| c > hi)
            })
    }

    /// Production stopped and every partition someone owns consumed up to its last acked
    /// offset: all a stalled group can still do (an unowned partition stays behind).
    pub fn drained_where_owned(&self) -> bool {
        self.production_stopped
            && self.assignment.values().flatten().all(|tp| {
                let hi = self.acked_max.get(tp).copied().unwrap_or(-1);
                self.consumed.get(tp).map_or(-1, |(_, c)| *c) >= hi
                    || self.committed.get(tp).is_some_and(|c| *c > hi)
            })
    }

    /// A one-line picture of the group, for timeouts.
    pub fn describe(&self) -> String {
        let owners: Vec<String> = self
            .assignment
            .iter()
            .map(|(m, tps)| {
                let ps: Vec<String> = tps.iter().map(|tp| tp.partition.to_string()).collect();
                format!("{m}=[{}]", ps.join(","))
            })
            .collect();
        let lag: Vec<String> = self
            .acked_max
            .iter()
            .filter_map(|(tp, hi)| {
                let c = self.consumed.get(tp).map_or(-1, |(_, c)| *c);
                (c < *hi).then(|| format!("{}:{}<{}", tp.partition, c, hi))
            })
            .collect();
        let dead: Vec<String> = self
            .exited
            .iter()
            .filter(|(_, e)| !e.requested)
            .map(|(m, e)| format!("{m} ({})", e.status()))
            .collect();
        format!(
            "assignment {}; behind: {}{}",
            owners.join(" "),
            if lag.is_empty() {
                "none".into()
            } else {
                lag.join(" ")
            },
            if dead.is_empty() {
                String::new()
            } else {
                format!("; died: {}", dead.join(", "))
            }
        )
    }
}
