//! What the group looks like right now, folded from the history as it is written. The
//! runner waits on it; the checker never sees it (it re-derives everything).

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Event, Ms, Record, TopicPartition};

/// How a member's process ended: (exit code, signal).
pub type ExitStatus = (Option<i32>, Option<i32>);

#[derive(Debug, Default)]
pub struct GroupView {
    pub assignment: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// When each partition got its current owner.
    pub assigned_at: BTreeMap<TopicPartition, Ms>,
    /// Last time and highest offset each partition was consumed.
    pub consumed: BTreeMap<TopicPartition, (Ms, i64)>,
    pub acked_max: BTreeMap<TopicPartition, i64>,
    pub started: BTreeSet<String>,
    pub capabilities: BTreeMap<String, Vec<String>>,
    pub exited: BTreeMap<String, ExitStatus>,
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
            }
            Event::StartupComplete { capabilities } => {
                self.started.insert(member.clone());
                self.capabilities.insert(member, capabilities.clone());
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
                    let tp = TopicPartition {
                        topic: p.topic.clone(),
                        partition: p.partition,
                    };
                    let e = self.consumed.entry(tp).or_insert((r.ts, p.max_offset));
                    *e = (r.ts, e.1.max(p.max_offset));
                }
            }
            Event::RecordsAcked { partitions } => {
                for p in partitions {
                    let tp = TopicPartition {
                        topic: p.topic.clone(),
                        partition: p.partition,
                    };
                    let e = self.acked_max.entry(tp).or_insert(p.max_offset);
                    *e = (*e).max(p.max_offset);
                }
            }
            Event::MemberExited { code, signal, .. } => {
                self.assignment.remove(&member);
                self.exited.insert(member, (*code, *signal));
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

    /// Production stopped and every partition consumed up to its last acked offset.
    pub fn drained(&self) -> bool {
        self.production_stopped
            && self
                .acked_max
                .iter()
                .all(|(tp, hi)| self.consumed.get(tp).is_some_and(|(_, c)| c >= hi))
    }

    /// Production stopped and every partition someone owns consumed up to its last acked
    /// offset: all a stalled group can still do (an unowned partition stays behind).
    pub fn drained_where_owned(&self) -> bool {
        self.production_stopped
            && self.assignment.values().flatten().all(|tp| {
                let hi = self.acked_max.get(tp).copied().unwrap_or(-1);
                self.consumed.get(tp).map_or(-1, |(_, c)| *c) >= hi
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
        format!(
            "assignment {}; behind: {}",
            owners.join(" "),
            if lag.is_empty() {
                "none".into()
            } else {
                lag.join(" ")
            }
        )
    }
}
