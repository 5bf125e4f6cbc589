//! Whether a failed commit certainly did not land. The broker rejecting a commit
//! (wrong generation, unknown member, rebalance in progress, not the coordinator) is
//! definite; a timeout or a broken connection is not: the commit may have been applied
//! and only its answer lost. The rules accept either outcome of an indeterminate one.

/// Kafka error names (and client exceptions that wrap them) that mean the broker, or
/// the client before sending, refused the commit. Compared with letters and digits only,
/// lowercased, so `REBALANCE_IN_PROGRESS`, `RebalanceInProgress` and
/// `RebalanceInProgressError` all match.
const DEFINITE: &[&str] = &[
    "rebalanceinprogress",
    "illegalgeneration",
    "unknownmemberid",
    "fencedinstanceid",
    "stalememberepoch",
    "fencedmemberepoch",
    "unreleasedinstanceid",
    "notcoordinator",
    "coordinatornotavailable",
    "coordinatorloadinprogress",
    "groupauthorizationfailed",
    "topicauthorizationfailed",
    "offsetmetadatatoolarge",
    "invalidcommitoffsetsize",
    "unknowntopicorpartition",
    "groupidnotfound",
    // Java's CommitFailedException: "the group has already rebalanced".
    "commitfailed",
    // librdkafka's local errors raised before anything is sent.
    "nooffset",
    "assignmentlost",
];

/// Whether a failed commit with this error certainly did not land. `definite` is the
/// driver's own word, when it gave one; otherwise the error text is classified, and an
/// error that names no known rejection is indeterminate.
pub fn is_definite(definite: Option<bool>, error: Option<&str>) -> bool {
    if let Some(d) = definite {
        return d;
    }
    let Some(error) = error else {
        return false;
    };
    let squashed: String = error
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    DEFINITE.iter().any(|name| squashed.contains(name))
}

#[cfg(test)]
mod tests {
    use super::is_definite;

    #[test]
    fn broker_rejections_in_any_spelling_are_definite() {
        for e in [
            "REBALANCE_IN_PROGRESS",
            "Consumer commit error: RebalanceInProgress (Broker: Group rebalance in progress)",
            "KafkaError{code=ILLEGAL_GENERATION,val=22,str=\"Commit failed\"}",
            "CommitFailedException: Commit cannot be completed since the group has already rebalanced",
            "[Error 25] UnknownMemberIdError",
        ] {
            assert!(is_definite(None, Some(e)), "{e}");
        }
    }

    #[test]
    fn timeouts_disconnects_and_unknown_errors_are_indeterminate() {
        for e in [
            "TimeoutException: Timeout of 60000ms expired before successfully committing offsets",
            "KafkaError{code=_TRANSPORT,val=-195}",
            "something odd",
        ] {
            assert!(!is_definite(None, Some(e)), "{e}");
        }
        assert!(!is_definite(None, None));
    }

    #[test]
    fn the_drivers_word_wins() {
        assert!(!is_definite(Some(false), Some("REBALANCE_IN_PROGRESS")));
        assert!(is_definite(Some(true), Some("timeout")));
    }
}
