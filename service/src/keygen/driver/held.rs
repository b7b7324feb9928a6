//! Which batches and blocks every committee member holds: the members' `Held`
//! announcements (each member's settled cursor, see `view`, and its committed
//! height), the key index below which recovery material may go, and the height
//! below which no member will ask to sync a decided block.
//!
//! A node keeps its aggregated slice and the summed commitments of a batch only so
//! that a member missing its shares can recover them from peers. Once every member
//! says it holds the batch, nobody will ask, and the material is pruned. Each
//! member speaks only for itself: a member that lies (claims a batch it does not
//! hold) can no longer recover that batch, which is its own loss; the claims of
//! honest members are true, so no honest member loses what it needs. A member
//! that never announces (down, or gone for good) holds pruning back: its peers
//! keep the material until it comes back, or until the committee changes.
//!
//! Heights work the same way: a member catching up asks for the blocks after its
//! own committed height, so blocks below every member's height are needed only by
//! a node that lost its store (it would need a state snapshot: not served).

use std::collections::BTreeMap;

use crate::tx::EpochInfo;

/// The members' announcements for one epoch.
#[derive(Debug, Default)]
pub(super) struct Held {
    epoch: u64,
    /// Member → the highest `below` and the highest height it announced for
    /// `epoch` (bounded by the committee: only members are recorded).
    below: BTreeMap<u32, (u64, u64)>,
}

impl Held {
    /// Records member `from`'s claim that it holds every batch of `epoch` starting
    /// below `below` and committed `height`. Claims from non-members or for another
    /// epoch than `current` change nothing, and neither figure of a member ever goes
    /// back. Returns whether anything was recorded.
    pub fn observe(
        &mut self,
        current: &EpochInfo,
        from: u32,
        epoch: u64,
        below: u64,
        height: u64,
    ) -> bool {
        if epoch != current.epoch || !current.nodes.iter().any(|n| n.index == from) {
            return false;
        }
        if self.epoch != current.epoch {
            self.epoch = current.epoch;
            self.below.clear();
        }
        let (b, h) = self.below.entry(from).or_insert((0, 0));
        let moved = below > *b || height > *h;
        *b = (*b).max(below);
        *h = (*h).max(height);
        moved
    }

    /// The key index below which every member of `current` holds every batch:
    /// this node's own `own` (member `me`) and every other member's latest claim.
    /// 0 while some member has not announced.
    pub fn everyone_below(&self, current: &EpochInfo, me: u32, own: u64) -> u64 {
        self.least(current, me, own, |(b, _)| b)
    }

    /// The height every member of `current` committed: this node's `own` (member
    /// `me`) and every other member's latest claim. 0 while some member has not
    /// announced.
    pub fn everyone_height(&self, current: &EpochInfo, me: u32, own: u64) -> u64 {
        self.least(current, me, own, |(_, h)| h)
    }

    fn least(
        &self,
        current: &EpochInfo,
        me: u32,
        own: u64,
        pick: impl Fn((u64, u64)) -> u64,
    ) -> u64 {
        if self.epoch != current.epoch && current.nodes.iter().any(|n| n.index != me) {
            return 0;
        }
        current
            .nodes
            .iter()
            .map(|n| {
                if n.index == me {
                    own
                } else {
                    self.below.get(&n.index).copied().map_or(0, &pick)
                }
            })
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::NodeEntry;

    fn committee(epoch: u64, n: u32) -> EpochInfo {
        EpochInfo {
            epoch,
            n,
            k: 3,
            t: 1,
            nodes: (1..=n)
                .map(|index| NodeEntry {
                    index,
                    pubkey: [index as u8; 33],
                })
                .collect(),
        }
    }

    #[test]
    fn nothing_is_prunable_until_every_other_member_has_announced() {
        let c = committee(1, 5);
        let mut h = Held::default();
        for from in 2..=4 {
            assert!(h.observe(&c, from, 1, 6000, 0));
        }
        // Member 5 is down and never announced: its peers keep everything.
        assert_eq!(h.everyone_below(&c, 1, 8000), 0);
        assert!(h.observe(&c, 5, 1, 4000, 0));
        // The slowest member and this node's own cursor bound it.
        assert_eq!(h.everyone_below(&c, 1, 8000), 4000);
        assert_eq!(h.everyone_below(&c, 1, 2000), 2000);
    }

    #[test]
    fn a_member_that_lies_high_cannot_move_the_bound_past_an_honest_member() {
        let c = committee(1, 5);
        let mut h = Held::default();
        for from in 2..=4 {
            h.observe(&c, from, 1, 4000, 0);
        }
        h.observe(&c, 5, 1, u64::MAX, 0);
        assert_eq!(h.everyone_below(&c, 1, 4000), 4000);
        assert_eq!(h.everyone_below(&c, 1, 2000), 2000);
    }

    #[test]
    fn claims_from_outsiders_other_epochs_or_going_back_change_nothing() {
        let c = committee(2, 5);
        let mut h = Held::default();
        for from in 2..=5 {
            h.observe(&c, from, 2, 4000, 0);
        }
        // An outsider, an index past the committee, another epoch: not recorded.
        assert!(!h.observe(&c, 0, 2, 9000, 0));
        assert!(!h.observe(&c, 6, 2, 9000, 0));
        assert!(!h.observe(&c, 2, 1, 9000, 0));
        assert!(!h.observe(&c, 2, 3, 9000, 0));
        // A later, lower claim (a restarted member whose cursor starts again) does
        // not bring back what was pruned, and does not lower the bound.
        assert!(!h.observe(&c, 3, 2, 1000, 0));
        assert_eq!(h.everyone_below(&c, 1, 9000), 4000);
        assert_eq!(h.below.len(), 4);
    }

    #[test]
    fn the_height_every_member_committed_is_the_lowest_claim_and_never_goes_back() {
        let c = committee(1, 3);
        let mut h = Held::default();
        assert!(h.observe(&c, 2, 1, 0, 500));
        assert_eq!(h.everyone_height(&c, 1, 900), 0);
        assert!(h.observe(&c, 3, 1, 0, 700));
        assert_eq!(h.everyone_height(&c, 1, 900), 500);
        // A restarted member announcing less, or the same, moves nothing.
        assert!(!h.observe(&c, 2, 1, 0, 100));
        assert_eq!(h.everyone_height(&c, 1, 900), 500);
        // Heights and batches move independently.
        assert!(h.observe(&c, 2, 1, 2000, 0));
        assert_eq!(h.everyone_height(&c, 1, 900), 500);
        assert_eq!(h.everyone_below(&c, 1, 4000), 0);
    }

    #[test]
    fn a_new_epoch_starts_from_nothing() {
        let old = committee(1, 5);
        let mut h = Held::default();
        for from in 2..=5 {
            h.observe(&old, from, 1, 4000, 0);
        }
        assert_eq!(h.everyone_below(&old, 1, 4000), 4000);
        let new = committee(2, 5);
        assert_eq!(h.everyone_below(&new, 1, 4000), 0);
        h.observe(&new, 2, 2, 6000, 0);
        assert_eq!(h.everyone_below(&new, 1, 6000), 0);
        assert_eq!(h.below.len(), 1);
    }

    #[test]
    fn a_committee_of_one_is_bounded_by_its_own_cursor() {
        let c = committee(1, 1);
        let h = Held::default();
        assert_eq!(h.everyone_below(&c, 1, 2000), 2000);
    }
}
