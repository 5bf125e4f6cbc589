//! Generated fault schedules: a proptest strategy over the whole fault catalogue, turned
//! into an ordinary scenario (so `harness run --scenario-file` replays one). Faults are
//! scheduled at offsets from the run's start and may overlap; their targets are picked
//! among the members alive at that moment, so every schedule is valid by construction
//! (scenario validation stays the strategy's filter, as a guard).
//!
//! Shrinking is proptest's: fewer faults, shorter gaps and durations, fewer members, a
//! lower rate.

use proptest::prelude::*;

use crate::history::ConsumerSettings;
use crate::scenario::{Scenario, Scheduled, Step};

/// What the broker and driver under test can have injected.
#[derive(Debug, Clone, Copy)]
pub struct Catalogue {
    /// Brokers in the cluster (1 for the real-broker presets, 3 for the mock).
    pub brokers: i32,
    /// The broker can be frozen (SIGSTOP, docker pause).
    pub broker_pause: bool,
    /// The broker grows topics (CreatePartitions).
    pub add_partitions: bool,
    /// The coordinator can be moved (the mock).
    pub coordinator_move: bool,
}

impl Catalogue {
    pub fn for_broker(broker: &str) -> Catalogue {
        if broker == "mock" {
            Catalogue {
                brokers: 3,
                broker_pause: false,
                add_partitions: false,
                coordinator_move: true,
            }
        } else {
            Catalogue {
                brokers: 1,
                broker_pause: true,
                add_partitions: false,
                coordinator_move: false,
            }
        }
    }
}

/// One fault of a plan; `who` picks among the members alive when it fires.
#[derive(Debug, Clone)]
pub enum Action {
    Crash {
        who: usize,
    },
    Leave {
        who: usize,
    },
    Join,
    Restart {
        who: usize,
    },
    Pause {
        who: usize,
        ms: u64,
    },
    /// A stall `extra_ms` past max.poll.interval.ms.
    LongPoll {
        who: usize,
        extra_ms: u64,
    },
    Partition {
        who: usize,
        ms: u64,
    },
    HeartbeatDrop {
        who: usize,
        ms: u64,
    },
    CoordinatorLatency {
        ms: u64,
        latency_ms: u64,
        jitter_ms: u64,
    },
    BrokerBounce {
        broker: i32,
        ms: u64,
    },
    BrokerPause {
        broker: i32,
        ms: u64,
    },
    CoordinatorMove {
        broker: i32,
    },
    /// Subscribe to another topic, and back `ms` later.
    Subscribe {
        who: usize,
        ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Planned {
    /// Time since the previous fault (the first: since the run's first fault slot).
    pub gap_ms: u64,
    pub action: Action,
}

/// A generated schedule, before it becomes a scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    pub members: usize,
    pub rate: u32,
    pub faults: Vec<Planned>,
}

/// When the first fault may come: after the members have usually formed the group.
const FIRST_FAULT_MS: u64 = 6_000;
/// The other topic a subscription change moves to.
const OTHER_TOPIC: &str = "events-audit";
/// Partitions of the topic: more than the members can ever be (4 + joins).
const PARTITIONS: i32 = 8;
/// The most members a schedule may have at once.
const MAX_MEMBERS: usize = 6;

fn action(cat: Catalogue) -> impl Strategy<Value = Action> {
    let who = 0..8usize;
    let broker = 1..=cat.brokers;
    let mut options: Vec<(u32, BoxedStrategy<Action>)> = vec![
        (3, who.clone().prop_map(|who| Action::Crash { who }).boxed()),
        (2, who.clone().prop_map(|who| Action::Leave { who }).boxed()),
        (2, Just(Action::Join).boxed()),
        (
            2,
            who.clone().prop_map(|who| Action::Restart { who }).boxed(),
        ),
        (
            3,
            (who.clone(), 1_000..12_000u64)
                .prop_map(|(who, ms)| Action::Pause { who, ms })
                .boxed(),
        ),
        (
            2,
            (who.clone(), 1_000..5_000u64)
                .prop_map(|(who, extra_ms)| Action::LongPoll { who, extra_ms })
                .boxed(),
        ),
        (
            2,
            (who.clone(), 2_000..14_000u64)
                .prop_map(|(who, ms)| Action::Partition { who, ms })
                .boxed(),
        ),
        (
            2,
            (who.clone(), 2_000..12_000u64)
                .prop_map(|(who, ms)| Action::HeartbeatDrop { who, ms })
                .boxed(),
        ),
        (
            1,
            (2_000..8_000u64, 100..500u64, 0..150u64)
                .prop_map(|(ms, latency_ms, jitter_ms)| Action::CoordinatorLatency {
                    ms,
                    latency_ms,
                    jitter_ms,
                })
                .boxed(),
        ),
        (
            1,
            (broker.clone(), 1_000..5_000u64)
                .prop_map(|(broker, ms)| Action::BrokerBounce { broker, ms })
                .boxed(),
        ),
        (
            1,
            (who, 2_000..8_000u64)
                .prop_map(|(who, ms)| Action::Subscribe { who, ms })
                .boxed(),
        ),
    ];
    if cat.broker_pause {
        options.push((
            1,
            (broker.clone(), 1_000..4_000u64)
                .prop_map(|(broker, ms)| Action::BrokerPause { broker, ms })
                .boxed(),
        ));
    }
    if cat.coordinator_move {
        options.push((
            1,
            broker
                .prop_map(|broker| Action::CoordinatorMove { broker })
                .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(options)
}

/// Plans of 1-8 faults over 2-4 members, at a rate from `rates` (a fixed `--rate`, or a
/// spread that shrinks towards the lowest).
pub fn plan(cat: Catalogue, rates: Vec<u32>) -> impl Strategy<Value = Plan> {
    let faults = proptest::collection::vec(
        (0..6_000u64, action(cat)).prop_map(|(gap_ms, action)| Planned { gap_ms, action }),
        1..=8,
    );
    (2..=4usize, proptest::sample::select(rates), faults).prop_map(|(members, rate, faults)| Plan {
        members,
        rate,
        faults,
    })
}

/// Schedules as scenarios, valid by construction; validation filters as a guard.
pub fn scenarios(
    cat: Catalogue,
    rates: Vec<u32>,
    consumer: ConsumerSettings,
) -> impl Strategy<Value = Scenario> {
    plan(cat, rates)
        .prop_map(move |p| to_scenario(&p, &consumer))
        .prop_filter("a valid scenario", |sc| {
            Scenario::parse(&sc.to_toml().unwrap_or_default(), "chaos").is_ok()
        })
}

/// Turns a plan into a scenario: faults at cumulative offsets, each target picked among
/// the members alive then (faults that need a member nobody can be, or that would leave
/// the group empty, are dropped), the background subscribe-back of a subscription
/// change, and a final wait until the survivors share the partitions.
pub fn to_scenario(plan: &Plan, consumer: &ConsumerSettings) -> Scenario {
    let mut alive: Vec<String> = (1..=plan.members).map(|i| format!("C{i}")).collect();
    let mut next_member = plan.members + 1;
    // (time, step) in the order they were planned; the subscribe-backs are interleaved
    // by time below.
    let mut timed: Vec<(u64, Step)> = Vec::new();
    // Members with a subscription to move back, and when.
    let mut away: Vec<(u64, String)> = Vec::new();
    let mut at = FIRST_FAULT_MS;
    for f in &plan.faults {
        at += f.gap_ms;
        // Subscribe-backs due by now come first, while their member is alive.
        away.sort();
        while away.first().is_some_and(|(t, _)| *t <= at) {
            let (t, m) = away.remove(0);
            if alive.contains(&m) {
                timed.push((t, subscribe(&m, "events")));
            }
        }
        let pick = |who: usize, alive: &[String]| alive[who % alive.len()].clone();
        let step = match f.action {
            Action::Crash { who } | Action::Leave { who } if alive.len() >= 2 => {
                let m = pick(who, &alive);
                alive.retain(|a| *a != m);
                away.retain(|(_, a)| *a != m);
                if matches!(f.action, Action::Crash { .. }) {
                    Step::Crash(m)
                } else {
                    Step::Leave(m)
                }
            }
            Action::Crash { .. } | Action::Leave { .. } => continue,
            Action::Join if alive.len() < MAX_MEMBERS => {
                let m = format!("C{next_member}");
                next_member += 1;
                alive.push(m.clone());
                Step::Join(m)
            }
            Action::Join => continue,
            Action::Restart { who } => Step::Restart(pick(who, &alive)),
            Action::Pause { who, ms } => Step::Pause {
                member: pick(who, &alive),
                ms,
            },
            Action::LongPoll { who, extra_ms } => Step::LongPoll {
                member: pick(who, &alive),
                ms: consumer.max_poll_interval_ms + extra_ms,
            },
            Action::Partition { who, ms } => Step::Partition {
                member: pick(who, &alive),
                ms,
            },
            Action::HeartbeatDrop { who, ms } => Step::HeartbeatDrop {
                member: pick(who, &alive),
                ms,
            },
            Action::CoordinatorLatency {
                ms,
                latency_ms,
                jitter_ms,
            } => Step::CoordinatorLatency {
                ms,
                latency_ms,
                jitter_ms,
            },
            Action::BrokerBounce { broker, ms } => Step::BrokerBounce { broker, ms },
            Action::BrokerPause { broker, ms } => Step::BrokerPause { broker, ms },
            Action::CoordinatorMove { broker } => Step::CoordinatorMove { broker },
            Action::Subscribe { who, ms } => {
                let m = pick(who, &alive);
                if away.iter().any(|(_, a)| *a == m) {
                    continue;
                }
                away.push((at + ms, m.clone()));
                subscribe(&m, OTHER_TOPIC)
            }
        };
        timed.push((at, step));
    }
    away.sort();
    for (t, m) in away {
        if alive.contains(&m) {
            timed.push((t.max(at), subscribe(&m, "events")));
        }
    }
    timed.sort_by_key(|(t, _)| *t);
    alive.sort();
    let mut steps: Vec<Scheduled> =
        vec![Step::Start((1..=plan.members).map(|i| format!("C{i}")).collect()).into()];
    steps.extend(timed.into_iter().map(|(t, step)| Scheduled {
        at_ms: Some(t),
        step,
    }));
    steps.push(Step::AwaitBalanced(alive.clone()).into());
    Scenario {
        name: "chaos".into(),
        description: format!(
            "a generated schedule of {} faults over {} members at {} records/s",
            steps.len() - 2,
            plan.members,
            plan.rate
        ),
        topic: "events".into(),
        partitions: PARTITIONS,
        group: "chaos".into(),
        rate_per_sec: plan.rate,
        await_timeout_ms: 90_000,
        final_balanced_over: Some(alive),
        protocols: None,
        chaos: true,
        consumer: consumer.clone(),
        steps,
    }
}

fn subscribe(member: &str, topic: &str) -> Step {
    Step::Subscribe {
        member: member.to_owned(),
        topics: vec![topic.to_owned()],
    }
}

/// The faults of a scenario, one line each (for progress lines and chaos.json).
pub fn summary(sc: &Scenario) -> Vec<String> {
    sc.steps
        .iter()
        .filter_map(|s| {
            let kind = s.step.fault_kind(sc.consumer.session_timeout_ms)?;
            let what = match &s.step {
                Step::Crash(m) | Step::Leave(m) | Step::Join(m) | Step::Restart(m) => m.clone(),
                Step::Pause { member, ms }
                | Step::LongPoll { member, ms }
                | Step::Partition { member, ms }
                | Step::HeartbeatDrop { member, ms } => format!("{member} {ms} ms"),
                Step::CoordinatorLatency { ms, latency_ms, .. } => {
                    format!("{latency_ms} ms for {ms} ms")
                }
                Step::BrokerBounce { broker, ms } | Step::BrokerPause { broker, ms } => {
                    format!("broker {broker} {ms} ms")
                }
                Step::CoordinatorMove { broker } => format!("to broker {broker}"),
                Step::Subscribe { member, topics } => format!("{member} -> {}", topics.join(",")),
                _ => String::new(),
            };
            Some(format!("{} {kind} {what}", s.at_ms.unwrap_or(0)))
        })
        .collect()
}

/// The number of faults a scenario injects (its size, for shrinking reports).
pub fn faults(sc: &Scenario) -> usize {
    sc.steps
        .iter()
        .filter(|s| s.step.fault_kind(sc.consumer.session_timeout_ms).is_some())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn consumer() -> ConsumerSettings {
        ConsumerSettings {
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 1000,
            max_poll_interval_ms: 10000,
        }
    }

    #[test]
    fn generated_schedules_are_valid_scenarios_over_the_catalogue() {
        let mut runner = TestRunner::deterministic();
        let strategy = scenarios(Catalogue::for_broker("mock"), vec![100, 200], consumer());
        let mut kinds = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let sc = strategy.new_tree(&mut runner).unwrap().current();
            let text = sc.to_toml().unwrap();
            let back = Scenario::parse(&text, "generated").unwrap();
            assert_eq!(back.steps, sc.steps);
            kinds.extend(sc.fault_kinds());
            let n = faults(&sc);
            assert!((1..=12).contains(&n), "{n} faults: {text}");
        }
        // Member, network and broker faults all appear.
        for k in [
            "crash",
            "pause-long",
            "partition",
            "heartbeat-drop",
            "broker-bounce",
            "coordinator-move",
            "subscription-change",
        ] {
            assert!(
                kinds.iter().any(|x| x.as_str() == k),
                "no {k} in 200 schedules: {kinds:?}"
            );
        }
    }

    #[test]
    fn a_seed_gives_the_same_schedule() {
        use proptest::test_runner::{Config, RngAlgorithm, TestRng};
        let make = |seed: u8| {
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
            let mut runner = TestRunner::new_with_rng(Config::default(), rng);
            let strategy = scenarios(Catalogue::for_broker("mock"), vec![200], consumer());
            strategy
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .to_toml()
                .unwrap()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }

    #[test]
    fn shrinking_goes_towards_fewer_faults() {
        let mut runner = TestRunner::deterministic();
        let strategy = scenarios(
            Catalogue::for_broker("mock"),
            vec![100, 200, 500],
            consumer(),
        );
        let mut tree = strategy.new_tree(&mut runner).unwrap();
        while faults(&tree.current()) < 4 {
            tree = strategy.new_tree(&mut runner).unwrap();
        }
        let before = faults(&tree.current());
        // Accept every simplification: it must end smaller.
        while tree.simplify() {}
        assert!(faults(&tree.current()) < before);
    }
}
