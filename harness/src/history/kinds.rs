//! The history's vocabulary: the protocols a group can run and the faults a run can
//! inject. Both are written into histories by name (`eager-range`, `pause-long`), so an
//! old history stays readable as long as a name is never reused for something else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How the group rebalances: the columns of the protocol x fault table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    EagerRange,
    EagerRoundrobin,
    CooperativeSticky,
    /// Static membership (KIP-345, `group.instance.id`) with the range assignor.
    StaticEager,
    /// Static membership with the cooperative-sticky assignor.
    StaticCooperative,
    /// KIP-848: `group.protocol=consumer`, the broker assigns.
    Consumer,
}

impl Protocol {
    pub const ALL: [Protocol; 6] = [
        Protocol::EagerRange,
        Protocol::EagerRoundrobin,
        Protocol::CooperativeSticky,
        Protocol::StaticEager,
        Protocol::StaticCooperative,
        Protocol::Consumer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::EagerRange => "eager-range",
            Protocol::EagerRoundrobin => "eager-roundrobin",
            Protocol::CooperativeSticky => "cooperative-sticky",
            Protocol::StaticEager => "static-eager",
            Protocol::StaticCooperative => "static-cooperative",
            Protocol::Consumer => "consumer",
        }
    }

    /// Every member revokes everything at each rebalance.
    pub fn is_eager(self) -> bool {
        matches!(
            self,
            Protocol::EagerRange | Protocol::EagerRoundrobin | Protocol::StaticEager
        )
    }

    /// Members give up only what moves (KIP-429 classic, or KIP-848).
    pub fn is_cooperative(self) -> bool {
        !self.is_eager()
    }

    /// Members carry a `group.instance.id`: a quick restart is not a membership change.
    pub fn is_static(self) -> bool {
        matches!(self, Protocol::StaticEager | Protocol::StaticCooperative)
    }

    /// KIP-848: the broker owns the session timeout and the assignment.
    pub fn is_consumer(self) -> bool {
        self == Protocol::Consumer
    }

    pub fn names() -> String {
        Protocol::ALL.map(Protocol::as_str).join(", ")
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown protocol '{s}': supported protocols are {}",
                    Protocol::names()
                )
            })
    }
}

/// A fault family: the rows of the protocol x fault table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Crash,
    Join,
    Leave,
    ScaleDown,
    Restart,
    RollingBounce,
    PauseShort,
    PauseLong,
    LongPoll,
    BrokerBounce,
    BrokerPause,
    CoordinatorMove,
    Partition,
    HeartbeatDrop,
    CoordinatorLatency,
    PartitionIncrease,
    SubscriptionChange,
}

impl FaultKind {
    pub const ALL: [FaultKind; 17] = [
        FaultKind::Crash,
        FaultKind::Join,
        FaultKind::Leave,
        FaultKind::ScaleDown,
        FaultKind::Restart,
        FaultKind::RollingBounce,
        FaultKind::PauseShort,
        FaultKind::PauseLong,
        FaultKind::LongPoll,
        FaultKind::BrokerBounce,
        FaultKind::BrokerPause,
        FaultKind::CoordinatorMove,
        FaultKind::Partition,
        FaultKind::HeartbeatDrop,
        FaultKind::CoordinatorLatency,
        FaultKind::PartitionIncrease,
        FaultKind::SubscriptionChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Join => "join",
            FaultKind::Leave => "leave",
            FaultKind::ScaleDown => "scale-down",
            FaultKind::Restart => "restart",
            FaultKind::RollingBounce => "rolling-bounce",
            FaultKind::PauseShort => "pause-short",
            FaultKind::PauseLong => "pause-long",
            FaultKind::LongPoll => "long-poll",
            FaultKind::BrokerBounce => "broker-bounce",
            FaultKind::BrokerPause => "broker-pause",
            FaultKind::CoordinatorMove => "coordinator-move",
            FaultKind::Partition => "partition",
            FaultKind::HeartbeatDrop => "heartbeat-drop",
            FaultKind::CoordinatorLatency => "coordinator-latency",
            FaultKind::PartitionIncrease => "partition-increase",
            FaultKind::SubscriptionChange => "subscription-change",
        }
    }

    /// Faults that add or remove members: the protocol's rebalance promises apply.
    pub fn changes_membership(self) -> bool {
        matches!(
            self,
            FaultKind::Crash
                | FaultKind::Join
                | FaultKind::Leave
                | FaultKind::ScaleDown
                | FaultKind::Restart
                | FaultKind::RollingBounce
        )
    }

    /// Faults that remove their targets from the group for good.
    pub fn removes_target(self) -> bool {
        matches!(
            self,
            FaultKind::Crash | FaultKind::Leave | FaultKind::ScaleDown
        )
    }

    /// Faults after which the group may expel a member that is still alive and still
    /// believes it owns its partitions (a zombie until it finds out). Member faults
    /// make zombies of their target; broker and coordinator faults of any member.
    pub fn may_leave_zombies(self) -> bool {
        matches!(
            self,
            FaultKind::PauseLong
                | FaultKind::LongPoll
                | FaultKind::Partition
                | FaultKind::HeartbeatDrop
                | FaultKind::BrokerBounce
                | FaultKind::BrokerPause
                | FaultKind::CoordinatorLatency
                | FaultKind::CoordinatorMove
        )
    }

    /// Faults on the brokers or the path to them rather than on a member.
    pub fn hits_brokers(self) -> bool {
        matches!(
            self,
            FaultKind::BrokerBounce
                | FaultKind::BrokerPause
                | FaultKind::CoordinatorMove
                | FaultKind::CoordinatorLatency
        )
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FaultKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown fault kind '{s}': fault kinds are {}",
                    FaultKind::ALL.map(FaultKind::as_str).join(", ")
                )
            })
    }
}

/// The oracle's rules (README, "What a verdict means"), one check each in a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    RunCompleted,
    MembersAlive,
    NoLoss,
    AcksContiguous,
    DuplicatesExplained,
    SingleOwnership,
    Order,
    Commits,
    Latency,
    Protocol,
}

impl Rule {
    /// Every rule, in the order a verdict reports them.
    pub const ALL: [Rule; 10] = [
        Rule::RunCompleted,
        Rule::MembersAlive,
        Rule::NoLoss,
        Rule::AcksContiguous,
        Rule::DuplicatesExplained,
        Rule::SingleOwnership,
        Rule::Order,
        Rule::Commits,
        Rule::Latency,
        Rule::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::RunCompleted => "run_completed",
            Rule::MembersAlive => "members_alive",
            Rule::NoLoss => "no_loss",
            Rule::AcksContiguous => "acks_contiguous",
            Rule::DuplicatesExplained => "duplicates_explained",
            Rule::SingleOwnership => "single_ownership",
            Rule::Order => "order",
            Rule::Commits => "commits",
            Rule::Latency => "latency",
            Rule::Protocol => "protocol",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What exactly a violation is; each kind belongs to one rule. Known deviations name
/// a rule and a kind, never text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    // run_completed
    /// The history has no run_finished record: the harness died.
    RunDied,
    /// The run ended with an error or was interrupted.
    EndedEarly,
    /// A wait for the group ran out of time.
    Stalled,
    NoRunStarted,
    // members_alive
    /// A member's process ended without the harness asking.
    MemberDied,
    // no_loss
    /// Acked records never consumed.
    Lost,
    /// Acked records never consumed on a partition nobody owned at the end.
    Stranded,
    NotDrained,
    NoTraffic,
    // acks_contiguous
    AckHole,
    // duplicates_explained
    Unexplained,
    // single_ownership
    /// Two live members held a partition at once, with no fault to expel either.
    DoubleOwner,
    /// An expelled member went on processing past its zombie window.
    ZombieOverstay,
    /// Records of a partition the member did not hold.
    Stray,
    // order
    Skip,
    Rewind,
    /// Offsets missing or repeated inside one batch.
    GapInBatch,
    // commits
    Backwards,
    BeyondProcessed,
    /// A successful commit of a partition the member did not hold.
    NotOwner,
    /// A successful commit from a member the group had already replaced.
    Fenced,
    // latency
    NoBudget,
    NoReaction,
    Premature,
    LateDetection,
    LateRecovery,
    NotRecovered,
    ZombieTooLong,
    // protocol
    /// An eager member kept partitions through a membership change.
    EagerKept,
    /// A cooperative survivor revoked a partition it did not have to give up.
    SurvivorRevoked,
    /// A cooperative member revoked a partition and got it back.
    RevokedKept,
    Rebalances,
    Duplicates,
    AssignmentChanged,
    FinalAssignment,
}

impl ViolationKind {
    pub fn rule(self) -> Rule {
        use ViolationKind::*;
        match self {
            RunDied | EndedEarly | Stalled | NoRunStarted => Rule::RunCompleted,
            MemberDied => Rule::MembersAlive,
            Lost | Stranded | NotDrained | NoTraffic => Rule::NoLoss,
            AckHole => Rule::AcksContiguous,
            Unexplained => Rule::DuplicatesExplained,
            DoubleOwner | ZombieOverstay | Stray => Rule::SingleOwnership,
            Skip | Rewind | GapInBatch => Rule::Order,
            Backwards | BeyondProcessed | NotOwner | Fenced => Rule::Commits,
            NoBudget | NoReaction | Premature | LateDetection | LateRecovery | NotRecovered
            | ZombieTooLong => Rule::Latency,
            EagerKept | SurvivorRevoked | RevokedKept | Rebalances | Duplicates
            | AssignmentChanged | FinalAssignment => Rule::Protocol,
        }
    }

    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for p in Protocol::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(p.as_str().parse::<Protocol>().unwrap(), p);
        }
        for k in FaultKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{k}\""));
            assert_eq!(k.as_str().parse::<FaultKind>().unwrap(), k);
        }
        assert!("sticky".parse::<Protocol>().is_err());
    }
}
