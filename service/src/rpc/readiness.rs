//! `GET /readyz`: whether this node can serve logins now. The rule is a pure function of
//! numbers and instants ([`readiness`]); the handler in `rpc` gathers them.
//!
//! A node is ready when
//! * it is connected (node-to-node network) to enough committee peers that, with itself,
//!   they hold more than two thirds of the committee (consensus can decide);
//! * its committed height advanced within `rpc.ready_max_block_age_s` (blocks are decided
//!   even without transactions, every `consensus.idle_block_ms`); a node that just
//!   started counts from its start;
//! * its key buffer holds at least one key not yet assigned.

use std::time::{Duration, Instant};

/// What the readiness rule looks at.
#[derive(Clone, Copy, Debug)]
pub struct ReadinessInputs {
    /// Nodes of the current committee (this node included).
    pub committee: usize,
    /// Committee peers this node is connected to (itself excluded).
    pub peers_connected: usize,
    /// When the committed height last advanced (or the node started, if later).
    pub last_block: Instant,
    /// Now.
    pub now: Instant,
    /// The largest accepted age of `last_block`.
    pub max_block_age: Duration,
    /// Created keys not yet assigned.
    pub keys_free: u64,
}

/// The verdict: ready, or not with every reason why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Serving.
    Ready,
    /// Not serving, for these reasons (one sentence each).
    NotReady(Vec<String>),
}

/// Peers (besides this node) needed for more than two thirds of `committee` nodes.
pub fn peers_for_quorum(committee: usize) -> usize {
    (committee * 2 / 3 + 1).saturating_sub(1)
}

/// The readiness rule.
pub fn readiness(i: &ReadinessInputs) -> Readiness {
    let mut reasons = Vec::new();
    let need = peers_for_quorum(i.committee);
    if i.peers_connected < need {
        reasons.push(format!(
            "connected to {} of the {need} committee peers consensus needs",
            i.peers_connected
        ));
    }
    let age = i.now.saturating_duration_since(i.last_block);
    if age > i.max_block_age {
        reasons.push(format!(
            "no block committed for {} s (at most {} s)",
            age.as_secs(),
            i.max_block_age.as_secs()
        ));
    }
    if i.keys_free == 0 {
        reasons.push("the key buffer has no free key".to_string());
    }
    if reasons.is_empty() {
        Readiness::Ready
    } else {
        Readiness::NotReady(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> ReadinessInputs {
        let now = Instant::now();
        ReadinessInputs {
            committee: 5,
            peers_connected: 4,
            last_block: now,
            now,
            max_block_age: Duration::from_secs(30),
            keys_free: 10,
        }
    }

    #[test]
    fn a_connected_node_with_recent_blocks_and_free_keys_is_ready() {
        assert_eq!(readiness(&healthy()), Readiness::Ready);
    }

    #[test]
    fn more_than_two_thirds_of_the_committee_must_be_reachable() {
        assert_eq!(peers_for_quorum(1), 0);
        assert_eq!(peers_for_quorum(2), 1);
        assert_eq!(peers_for_quorum(3), 2);
        assert_eq!(peers_for_quorum(4), 2);
        assert_eq!(peers_for_quorum(5), 3);
        assert_eq!(peers_for_quorum(7), 4);
        let i = ReadinessInputs {
            peers_connected: 3,
            ..healthy()
        };
        assert_eq!(readiness(&i), Readiness::Ready);
    }

    #[test]
    fn a_node_missing_peers_for_a_quorum_is_not_ready() {
        let i = ReadinessInputs {
            peers_connected: 2,
            ..healthy()
        };
        let Readiness::NotReady(r) = readiness(&i) else {
            panic!("ready without a quorum");
        };
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("2 of the 3"), "{r:?}");
    }

    #[test]
    fn a_node_whose_height_stopped_advancing_is_not_ready() {
        let h = healthy();
        let i = ReadinessInputs {
            now: h.last_block + Duration::from_secs(31),
            ..h
        };
        let Readiness::NotReady(r) = readiness(&i) else {
            panic!("ready with a stale height");
        };
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("no block committed for 31 s"), "{r:?}");
    }

    #[test]
    fn a_block_exactly_at_the_age_limit_still_counts() {
        let h = healthy();
        let i = ReadinessInputs {
            now: h.last_block + h.max_block_age,
            ..h
        };
        assert_eq!(readiness(&i), Readiness::Ready);
    }

    #[test]
    fn a_node_without_free_keys_is_not_ready() {
        let i = ReadinessInputs {
            keys_free: 0,
            ..healthy()
        };
        assert_eq!(
            readiness(&i),
            Readiness::NotReady(vec!["the key buffer has no free key".into()])
        );
    }

    #[test]
    fn every_failing_condition_is_listed() {
        let h = healthy();
        let i = ReadinessInputs {
            peers_connected: 0,
            now: h.last_block + Duration::from_secs(3600),
            keys_free: 0,
            ..h
        };
        let Readiness::NotReady(r) = readiness(&i) else {
            panic!("ready with nothing working");
        };
        assert_eq!(r.len(), 3, "{r:?}");
    }

    #[test]
    fn a_single_node_committee_needs_no_peer() {
        let i = ReadinessInputs {
            committee: 1,
            peers_connected: 0,
            ..healthy()
        };
        assert_eq!(readiness(&i), Readiness::Ready);
    }
}
