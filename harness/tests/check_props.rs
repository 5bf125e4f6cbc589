//! Properties of the oracle over generated histories.
//!
//! A plan (members, partitions, protocol, a random list of steps) is simulated into a
//! history that a correct client and group would produce: owners consume and commit,
//! rebalances commit in the revoke callback, crashes leave an uncommitted tail that the
//! next owner re-delivers from the last commit, joins and leaves rebalance eagerly or
//! cooperatively, acks cover exactly what is produced, and the run drains. Every such
//! history must pass. Each mutation then breaks exactly one rule, and the set of
//! failing checks must be exactly that rule.
//!
//! Mutations are applied while simulating, at the k-th place in the history where the
//! mutation fits (k picked by the plan): a first pass counts the places, a second pass
//! applies it.

mod common;

use std::collections::BTreeSet;

use common::{failing, names, projection, range, H};
use harness::check::{check, Verdict};
use harness::history::{Ms, PartitionRange, Record};
use proptest::prelude::*;

// ---------------------------------------------------------------- plans

#[derive(Debug, Clone)]
enum Step {
    /// The producer appends `n` records to partition `p` (mod the partition count).
    Produce { p: usize, n: i64 },
    /// The owner of partition `p` polls up to `n` records from it (or from every
    /// partition it holds, when `all`), then commits if `commit`.
    Consume {
        p: usize,
        n: i64,
        commit: bool,
        all: bool,
    },
    /// A new member joins (if one is left to start).
    Join { partial: i64 },
    /// A live member is killed after processing `tail` more records per partition it
    /// holds without committing them.
    Crash { m: usize, tail: i64, partial: i64 },
    /// A live member leaves cleanly (SIGTERM).
    Leave { m: usize, partial: i64 },
}

#[derive(Debug, Clone)]
struct Plan {
    cooperative: bool,
    /// Member ids C1..=Cn; the first `initial` start with the run, the rest may join.
    members: usize,
    initial: usize,
    partitions: usize,
    steps: Vec<Step>,
    /// Picks where a mutation is applied.
    pick: usize,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..8usize, 1..6i64).prop_map(|(p, n)| Step::Produce { p, n }),
        5 => (0..8usize, 1..6i64, any::<bool>(), any::<bool>())
            .prop_map(|(p, n, commit, all)| Step::Consume { p, n, commit, all }),
        2 => (1..6i64).prop_map(|partial| Step::Join { partial }),
        2 => (0..5usize, 0..5i64, 1..6i64)
            .prop_map(|(m, tail, partial)| Step::Crash { m, tail, partial }),
        1 => (0..5usize, 1..6i64).prop_map(|(m, partial)| Step::Leave { m, partial }),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    (2..=5usize)
        .prop_flat_map(|members| (Just(members), 1..=members))
        .prop_flat_map(|(members, initial)| {
            (
                any::<bool>(),
                Just(members),
                Just(initial),
                1..=8usize,
                proptest::collection::vec(step(), 0..24),
                any::<usize>(),
            )
        })
        .prop_map(
            |(cooperative, members, initial, partitions, steps, pick)| Plan {
                cooperative,
                members,
                initial,
                partitions,
                steps,
                pick,
            },
        )
}

// ---------------------------------------------------------------- mutations

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutation {
    /// Offsets acked past the end of a partition that nobody consumes.
    Loss,
    /// At a clean revocation the old owner processes a few more records but commits
    /// only its previous position; the next owner starts from that commit.
    UnexplainedDuplicate,
    /// A revocation is reported after the next owner's assignment (its commit stays
    /// where it was).
    DoubleOwnership,
    /// A batch holds fewer records than its span.
    OffsetSkip,
    /// Right after a successful commit, the owner commits a lower offset.
    CommitRegression,
}

const MUTATIONS: [Mutation; 5] = [
    Mutation::Loss,
    Mutation::UnexplainedDuplicate,
    Mutation::DoubleOwnership,
    Mutation::OffsetSkip,
    Mutation::CommitRegression,
];

// ---------------------------------------------------------------- simulation

const SESSION_TIMEOUT_MS: Ms = 6000;

struct Sim {
    cooperative: bool,
    partitions: usize,
    h: H,
    t: Ms,
    /// Members not started yet, in order.
    pending: Vec<String>,
    /// Live members, sorted.
    alive: Vec<String>,
    owner: Vec<Option<String>>,
    /// The current owner's next offset to consume.
    pos: Vec<i64>,
    /// Last successful commit (next offset to consume), 0 before any.
    committed: Vec<i64>,
    /// Next offset to produce: acked offsets are 0..produced.
    produced: Vec<i64>,
    faults: usize,
    mutation: Option<Mutation>,
    target: usize,
    places: usize,
    applied: bool,
}

struct Outcome {
    records: Vec<Record>,
    places: usize,
    applied: bool,
}

fn simulate(plan: &Plan, mutation: Option<Mutation>, target: usize) -> Outcome {
    let ids: Vec<String> = (1..=plan.members).map(|i| format!("C{i}")).collect();
    let generous = 1_000_000_000;
    let mut h = H::new(
        if plan.cooperative {
            "cooperative-sticky"
        } else {
            "eager-range"
        },
        plan.partitions as i32,
    );
    for kind in ["crash", "join", "leave"] {
        h.budget(kind, 0, generous, generous);
    }
    let mut sim = Sim {
        cooperative: plan.cooperative,
        partitions: plan.partitions,
        h,
        t: 1000,
        pending: ids[plan.initial..].to_vec(),
        alive: ids[..plan.initial].to_vec(),
        owner: vec![None; plan.partitions],
        pos: vec![0; plan.partitions],
        committed: vec![0; plan.partitions],
        produced: vec![0; plan.partitions],
        faults: 0,
        mutation,
        target,
        places: 0,
        applied: false,
    };
    sim.start();
    for step in &plan.steps {
        // After a double ownership in a cooperative group, a later rebalance could hand
        // the partition back to the member whose revocation was delayed. The protocol
        // rule takes a revoked partition's next owner to be the first ownership starting
        // at or after the revocation, which skips the overlapping one, and would report
        // "revoked a partition it kept" as well. Stop the scenario there: it drains and
        // ends.
        if sim.applied && mutation == Some(Mutation::DoubleOwnership) && sim.cooperative {
            break;
        }
        sim.step(step);
    }
    sim.finish();
    Outcome {
        records: sim.h.build(),
        places: sim.places,
        applied: sim.applied,
    }
}

impl Sim {
    fn tick(&mut self) -> Ms {
        self.t += 10;
        self.t
    }

    /// A place where `m` fits; true when it is the one to apply it at.
    fn place(&mut self, m: Mutation) -> bool {
        if self.mutation != Some(m) {
            return false;
        }
        let hit = self.places == self.target;
        self.places += 1;
        self.applied |= hit;
        hit
    }

    fn held_by(&self, member: &str) -> Vec<usize> {
        (0..self.partitions)
            .filter(|&p| self.owner[p].as_deref() == Some(member))
            .collect()
    }

    fn ack(&mut self, amounts: &[(usize, i64)]) {
        let mut ranges = Vec::new();
        for &(p, n) in amounts.iter().filter(|(_, n)| *n > 0) {
            ranges.push((p as i32, self.produced[p], self.produced[p] + n - 1));
            self.produced[p] += n;
        }
        if !ranges.is_empty() {
            let t = self.tick();
            self.h.ack_many(t, &ranges);
        }
    }

    /// `member` polls up to `limit` records from each of `ps` (everything available
    /// when `None`), then commits its positions if `commit`.
    fn consume(&mut self, member: &str, ps: &[usize], limit: Option<i64>, commit: bool) {
        let mut ranges: Vec<PartitionRange> = Vec::new();
        let mut offsets = Vec::new();
        for &p in ps {
            let from = self.pos[p];
            let to = limit.map_or(self.produced[p], |n| self.produced[p].min(from + n));
            if from >= to {
                continue;
            }
            let mut count = (to - from) as u64;
            if count >= 2 && self.place(Mutation::OffsetSkip) {
                count -= 1;
            }
            ranges.push(range(p as i32, from, to - 1, count));
            self.pos[p] = to;
            offsets.push((p, to));
        }
        if ranges.is_empty() {
            return;
        }
        let t = self.tick();
        self.h.consume_ranges(t, member, &ranges);
        if commit {
            self.commit(member, &offsets);
        }
    }

    fn commit(&mut self, member: &str, offsets: &[(usize, i64)]) {
        if offsets.is_empty() {
            return;
        }
        let t = self.tick();
        let list: Vec<(i32, i64)> = offsets.iter().map(|&(p, o)| (p as i32, o)).collect();
        self.h.commit_many(t, member, &list);
        let mut regress = None;
        for &(p, o) in offsets {
            debug_assert!(o >= self.committed[p], "the simulation commits forwards");
            self.committed[p] = o;
            if o >= 1 && self.place(Mutation::CommitRegression) {
                regress = Some((p, o - 1));
            }
        }
        if let Some((p, o)) = regress {
            let t = self.tick();
            self.h.commit(t, member, p as i32, o);
        }
    }

    fn fault(&mut self, kind: &str, target: &str) {
        self.faults += 1;
        let id = format!("f{}", self.faults);
        let t = self.tick();
        self.h.fault(t, &id, kind, target);
    }

    /// The assignment the group settles on over the live members: round robin for
    /// eager; for cooperative, sticky and balanced (orphans go to the least loaded,
    /// then partitions move from the most to the least loaded until counts differ by
    /// at most one).
    fn target_assignment(&self) -> Vec<String> {
        let members = &self.alive;
        if !self.cooperative {
            return (0..self.partitions)
                .map(|p| members[p % members.len()].clone())
                .collect();
        }
        let mut owner: Vec<Option<String>> = self
            .owner
            .iter()
            .map(|o| o.clone().filter(|m| members.contains(m)))
            .collect();
        let load = |owner: &[Option<String>], m: &str| {
            owner.iter().filter(|o| o.as_deref() == Some(m)).count()
        };
        for p in 0..self.partitions {
            if owner[p].is_none() {
                let least = members
                    .iter()
                    .min_by_key(|m| load(&owner, m))
                    .unwrap()
                    .clone();
                owner[p] = Some(least);
            }
        }
        loop {
            let most = members.iter().max_by_key(|m| load(&owner, m)).unwrap();
            let least = members.iter().min_by_key(|m| load(&owner, m)).unwrap();
            if load(&owner, most) <= load(&owner, least) + 1 {
                break;
            }
            let p = (0..self.partitions)
                .rev()
                .find(|&p| owner[p].as_deref() == Some(most.as_str()))
                .unwrap();
            owner[p] = Some(least.clone());
        }
        owner.into_iter().map(Option::unwrap).collect()
    }

    /// `partitions_assigned` for `member`: everything it gets under eager, only what is
    /// new to it under cooperative.
    fn assign(&mut self, member: &str, target: &[String]) {
        let list: Vec<usize> = (0..self.partitions)
            .filter(|&p| target[p] == member)
            .filter(|&p| !self.cooperative || self.owner[p].as_deref() != Some(member))
            .collect();
        let t = self.tick();
        let ps: Vec<i32> = list.iter().map(|&p| p as i32).collect();
        self.h.assign(t, member, &ps);
        for p in list {
            self.owner[p] = Some(member.to_owned());
            self.pos[p] = self.committed[p];
        }
    }

    fn revoke(&mut self, member: &str, ps: &[usize], leaving: bool) {
        let t = self.tick();
        let list: Vec<i32> = ps.iter().map(|&p| p as i32).collect();
        self.h.revoke(t, member, &list);
        if leaving {
            let t = self.tick();
            self.h.shutdown(t, member);
            let t = self.tick();
            self.h.exited(t, member, false);
        }
    }

    /// One rebalance over the live members; `leaver` (already out of `alive`) leaves
    /// cleanly as part of it.
    fn rebalance(&mut self, leaver: Option<String>) {
        let target = self.target_assignment();
        // Who revokes what: eager members give up everything; cooperative members only
        // what moves; a leaver gives up everything.
        let mut revokers: Vec<(String, Vec<usize>, bool)> = Vec::new();
        let candidates: Vec<String> = leaver.iter().chain(self.alive.iter()).cloned().collect();
        for x in candidates {
            let leaving = leaver.as_deref() == Some(x.as_str());
            let revoked: Vec<usize> = self
                .held_by(&x)
                .into_iter()
                .filter(|&p| leaving || !self.cooperative || target[p] != x)
                .collect();
            if !revoked.is_empty() {
                revokers.push((x, revoked, leaving));
            }
        }
        let mut delayed = None;
        for (i, (x, revoked, _)) in revokers.iter().enumerate() {
            let handed_over = revoked.iter().any(|&p| target[p] != *x);
            if handed_over && self.place(Mutation::DoubleOwnership) {
                delayed = Some(i);
            }
        }
        for (i, (x, revoked, leaving)) in revokers.iter().enumerate() {
            // The revoke callback: commit the positions of everything held, then report
            // the revocation.
            let mut short = None;
            for &p in revoked {
                if self.place(Mutation::UnexplainedDuplicate) {
                    short = Some(p);
                }
            }
            if let Some(p) = short {
                self.ack(&[(p, 2)]);
                self.consume(x, &[p], None, false);
            }
            let offsets: Vec<(usize, i64)> = self
                .held_by(x)
                .into_iter()
                .map(|p| {
                    let o = if short == Some(p) {
                        self.committed[p]
                    } else {
                        self.pos[p]
                    };
                    (p, o)
                })
                .collect();
            self.commit(x, &offsets);
            if delayed != Some(i) {
                self.revoke(x, revoked, *leaving);
            }
            for &p in revoked {
                self.owner[p] = None;
            }
        }
        let late = delayed.map(|i| revokers[i].clone());
        let alive = self.alive.clone();
        for m in alive
            .iter()
            .filter(|m| late.as_ref().map(|l| &l.0) != Some(m))
        {
            self.assign(m, &target);
        }
        if let Some((x, revoked, leaving)) = late {
            self.revoke(&x, &revoked, leaving);
            if !leaving {
                self.assign(&x, &target);
            }
        }
    }

    /// After a rebalance: new records on every partition, and every owner polls (at most
    /// `partial` records per partition) and commits.
    fn recover(&mut self, partial: i64) {
        let amounts: Vec<(usize, i64)> = (0..self.partitions).map(|p| (p, 2)).collect();
        self.ack(&amounts);
        for m in self.alive.clone() {
            let held = self.held_by(&m);
            self.consume(&m, &held, Some(partial), true);
        }
    }

    fn start(&mut self) {
        for m in self.alive.clone() {
            let t = self.tick();
            self.h.started(t, &m);
        }
        let target = self.target_assignment();
        for m in self.alive.clone() {
            self.assign(&m, &target);
        }
        let amounts: Vec<(usize, i64)> = (0..self.partitions).map(|p| (p, 3)).collect();
        self.ack(&amounts);
    }

    fn step(&mut self, step: &Step) {
        let n_parts = self.partitions;
        match *step {
            Step::Produce { p, n } => self.ack(&[(p % n_parts, n)]),
            Step::Consume { p, n, commit, all } => {
                let p = p % n_parts;
                let Some(member) = self.owner[p].clone() else {
                    return;
                };
                let ps = if all { self.held_by(&member) } else { vec![p] };
                self.consume(&member, &ps, Some(n), commit);
            }
            Step::Join { partial } => {
                if self.pending.is_empty() {
                    return;
                }
                let x = self.pending.remove(0);
                self.fault("join", &x);
                let t = self.tick();
                self.h.started(t, &x);
                self.alive.push(x);
                self.alive.sort();
                self.rebalance(None);
                self.recover(partial);
            }
            Step::Crash { m, tail, partial } => {
                if self.alive.len() < 2 {
                    return;
                }
                let x = self.alive[m % self.alive.len()].clone();
                let held = self.held_by(&x);
                let amounts: Vec<(usize, i64)> = held.iter().map(|&p| (p, tail)).collect();
                self.ack(&amounts);
                self.consume(&x, &held, None, false);
                self.fault("crash", &x);
                let t = self.tick();
                self.h.exited(t, &x, true);
                for p in held {
                    self.owner[p] = None;
                }
                self.alive.retain(|a| *a != x);
                self.t += SESSION_TIMEOUT_MS;
                self.rebalance(None);
                self.recover(partial);
            }
            Step::Leave { m, partial } => {
                if self.alive.len() < 2 {
                    return;
                }
                let x = self.alive[m % self.alive.len()].clone();
                self.fault("leave", &x);
                self.alive.retain(|a| *a != x);
                if self.held_by(&x).is_empty() {
                    let t = self.tick();
                    self.h.shutdown(t, &x);
                    let t = self.tick();
                    self.h.exited(t, &x, false);
                    self.rebalance(None);
                } else {
                    self.rebalance(Some(x));
                }
                self.recover(partial);
            }
        }
    }

    /// Production stops, the live members drain everything acked, then shut down
    /// cleanly and the run finishes.
    fn finish(&mut self) {
        for p in 0..self.partitions {
            if self.place(Mutation::Loss) {
                let t = self.tick();
                let from = self.produced[p];
                self.h.ack(t, p as i32, from, from + 2);
            }
        }
        let t = self.tick();
        self.h.stop(t);
        for m in self.alive.clone() {
            let held = self.held_by(&m);
            self.consume(&m, &held, None, true);
        }
        for m in self.alive.clone() {
            let held = self.held_by(&m);
            let offsets: Vec<(usize, i64)> = held.iter().map(|&p| (p, self.pos[p])).collect();
            self.commit(&m, &offsets);
            self.revoke(&m, &held, true);
        }
        let t = self.tick();
        self.h.finish(t);
        if self.alive.len() <= self.partitions {
            let alive: Vec<&str> = self.alive.iter().map(String::as_str).collect();
            self.h.balanced_over(&alive);
        }
    }
}

// ---------------------------------------------------------------- properties

fn clean(plan: &Plan) -> Vec<Record> {
    simulate(plan, None, 0).records
}

/// The history with `m` applied at the place `plan.pick` selects, or `None` when the
/// plan offers no place for it.
fn mutated(plan: &Plan, m: Mutation) -> Option<Vec<Record>> {
    let probe = simulate(plan, Some(m), usize::MAX);
    if probe.places == 0 {
        return None;
    }
    let out = simulate(plan, Some(m), plan.pick % probe.places);
    assert!(out.applied, "the mutation was applied");
    Some(out.records)
}

fn assert_fails_exactly(v: &Verdict, expected: &[&str]) -> Result<(), TestCaseError> {
    prop_assert!(!v.passed, "{:#}", projection(v));
    let got: BTreeSet<String> = failing(v);
    prop_assert_eq!(got, names(expected), "{:#}", projection(v));
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig {
        // PROPTEST_CASES raises it for a longer hunt.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128),
        max_global_rejects: 4096,
        // Failures print the minimal plan; nothing is written next to the sources.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn clean_histories_pass_every_check(plan in plan()) {
        let records = clean(&plan);
        let v = check(&records);
        prop_assert!(v.passed, "{:#}", projection(&v));
        // The history is consumed in full and nothing is lost.
        prop_assert_eq!(v.metrics.lost, 0);
        prop_assert_eq!(v.metrics.duplicates_unexplained, 0);
        prop_assert!(v.metrics.records_consumed >= v.metrics.records_acked);
    }

    #[test]
    fn clean_histories_pass_in_any_record_order(plan in plan(), seed in any::<u64>()) {
        // The checker sorts by (ts, seq): the file order must not matter.
        let records = clean(&plan);
        let mut shuffled = records.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(check(&shuffled), check(&records));
    }

    #[test]
    fn acked_offsets_nobody_consumes_fail_only_no_loss(plan in plan()) {
        let records = mutated(&plan, Mutation::Loss).expect("every history has a partition");
        let v = check(&records);
        assert_fails_exactly(&v, &["no_loss"])?;
        prop_assert_eq!(v.metrics.lost, 3);
    }

    #[test]
    fn redelivery_after_a_short_revoke_commit_fails_only_duplicates(plan in plan()) {
        let records = mutated(&plan, Mutation::UnexplainedDuplicate);
        prop_assume!(records.is_some(), "no clean revocation in this plan");
        let v = check(&records.unwrap());
        assert_fails_exactly(&v, &["duplicates_explained"])?;
        prop_assert!(v.metrics.duplicates_unexplained >= 1);
    }

    #[test]
    fn a_late_revocation_fails_only_single_ownership(plan in plan()) {
        let records = mutated(&plan, Mutation::DoubleOwnership);
        prop_assume!(records.is_some(), "no handover between members in this plan");
        let v = check(&records.unwrap());
        assert_fails_exactly(&v, &["single_ownership"])?;
    }

    #[test]
    fn a_batch_short_of_its_span_fails_only_order(plan in plan()) {
        let records = mutated(&plan, Mutation::OffsetSkip);
        prop_assume!(records.is_some(), "no batch of two records or more in this plan");
        let v = check(&records.unwrap());
        assert_fails_exactly(&v, &["order"])?;
    }

    #[test]
    fn a_lower_commit_after_a_commit_fails_only_commits(plan in plan()) {
        let records = mutated(&plan, Mutation::CommitRegression);
        prop_assume!(records.is_some(), "no commit past offset 0 in this plan");
        let v = check(&records.unwrap());
        assert_fails_exactly(&v, &["commits"])?;
    }
}

/// The generator itself: a clean history has the shape the properties rely on.
#[test]
fn generated_histories_have_the_expected_shape() {
    let plan = Plan {
        cooperative: false,
        members: 3,
        initial: 2,
        partitions: 3,
        steps: vec![
            Step::Consume {
                p: 0,
                n: 2,
                commit: false,
                all: true,
            },
            Step::Join { partial: 1 },
            Step::Crash {
                m: 0,
                tail: 2,
                partial: 1,
            },
            Step::Leave { m: 0, partial: 5 },
        ],
        pick: 0,
    };
    let records = clean(&plan);
    let v = check(&records);
    assert!(v.passed, "{:#}", projection(&v));
    let kinds: Vec<&str> = v.metrics.faults.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["join", "crash", "leave"]);
    assert!(
        v.metrics.duplicates_explained > 0,
        "the crash tail is re-delivered"
    );
    assert_eq!(v.metrics.duplicates_unexplained, 0);
    // Every mutation has a place in this plan, and breaks its check.
    for (m, check_name) in [
        (Mutation::Loss, "no_loss"),
        (Mutation::UnexplainedDuplicate, "duplicates_explained"),
        (Mutation::DoubleOwnership, "single_ownership"),
        (Mutation::OffsetSkip, "order"),
        (Mutation::CommitRegression, "commits"),
    ] {
        let records = mutated(&plan, m).expect("a place for the mutation");
        let v = check(&records);
        assert_eq!(
            failing(&v),
            names(&[check_name]),
            "{m:?}: {:#}",
            projection(&v)
        );
    }
}

/// The plans the properties draw exercise what they are meant to: most offer a place for
/// every mutation (so rejections stay a minority), and the clean histories include crashes
/// with re-delivered tails, re-deliveries that outlive a later clean handover, and both
/// protocols.
#[test]
fn generated_plans_cover_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = plan();
    let n = 300;
    let mut with_place = [0usize; MUTATIONS.len()];
    let (mut cooperative, mut explained, mut carried, mut faults) = (0, 0, 0, 0);
    for _ in 0..n {
        let plan = strategy.new_tree(&mut runner).unwrap().current();
        for (i, m) in MUTATIONS.iter().enumerate() {
            if simulate(&plan, Some(*m), usize::MAX).places > 0 {
                with_place[i] += 1;
            }
        }
        let v = check(&clean(&plan));
        assert!(v.passed, "{:#}", projection(&v));
        cooperative += usize::from(plan.cooperative);
        explained += usize::from(v.metrics.duplicates_explained > 0);
        faults += usize::from(v.metrics.faults.len() >= 2);
        // A crash tail re-delivered by an owner that did not take it straight from the
        // crashed member.
        let records = clean(&plan);
        carried += usize::from(redelivered_after_a_clean_handover(&records));
    }
    eprintln!(
        "places {with_place:?} of {n}; cooperative {cooperative}, explained {explained}, \
         carried {carried}, 2+ faults {faults}"
    );
    for (i, m) in MUTATIONS.iter().enumerate() {
        // Plans without a rebalance that hands a partition over (none, or only
        // cooperative crashes) have no place for the handover mutations.
        assert!(
            with_place[i] * 2 >= n,
            "{m:?} fits only {} of {n} plans",
            with_place[i]
        );
    }
    assert!(cooperative * 4 >= n && (n - cooperative) * 4 >= n);
    assert!(
        explained * 5 >= n,
        "crash tails re-delivered in {explained} of {n}"
    );
    assert!(carried > 0, "no re-delivery outlived a clean handover");
    assert!(faults * 3 >= n, "2+ faults in {faults} of {n}");
}

/// Whether some offset was consumed, then consumed again by an owner whose predecessor
/// handed the partition over cleanly (revoked without failed commits) and never
/// processed that offset itself.
fn redelivered_after_a_clean_handover(records: &[Record]) -> bool {
    let model = harness::check::Model::build(records);
    model.partitions.iter().any(|tp| {
        let mut owners: Vec<_> = model.ownerships_of(tp).collect();
        owners.sort_by_key(|o| o.start);
        let mut seen: BTreeSet<i64> = BTreeSet::new();
        let mut prev: Option<&harness::check::model::Ownership> = None;
        for o in owners {
            let clean =
                prev.is_some_and(|p| p.end_reason == harness::check::model::EndReason::Revoked);
            let mine: BTreeSet<i64> = o.batches.iter().flat_map(|b| b.min..=b.max).collect();
            let by_prev: BTreeSet<i64> = prev
                .map(|p| p.batches.iter().flat_map(|b| b.min..=b.max).collect())
                .unwrap_or_default();
            if clean
                && mine
                    .iter()
                    .any(|x| seen.contains(x) && !by_prev.contains(x))
            {
                return true;
            }
            seen.extend(mine);
            prev = Some(o);
        }
        false
    })
}
