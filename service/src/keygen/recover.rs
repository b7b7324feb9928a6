//! Recovery of a decided batch's shares by a node that missed it (it was down,
//! or its data was lost): AVSS interpolation over the aggregated sharing.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! Every node that finished the batch stored its aggregated slice
//! `(a_m, b_m) = sum over the decided dealers of its slices`. For the
//! recovering node i, peer m answers with the points of that slice at i:
//! `alpha = A(m, i)`, `beta = A(i, m)` of the summed polynomial `A`. The
//! recovering node needs the summed commitments of the decided dealers, by
//! either of two routes, whichever completes first:
//!
//! * every peer that finished the batch stored that sum (one matrix per key, not
//!   one per dealer: see `Store::put_batch_result`) and sends it with its points;
//!   the recovering node trusts a sum once t+1 members sent the same one (at most
//!   t are faulty, so one of them is honest, and every honest node's sum is the
//!   same): [`SumVotes`];
//! * it fetches every decided dealer's commitments, checked against the digests
//!   decided in consensus, and sums them (dealers' runs still in memory, or
//!   batches stored by earlier versions, which kept every dealer's matrices).
//!
//! It then verifies the peers' points against the sum (bad senders are
//! dropped) and interpolates its own row and column from k good points; its
//! share is the row at 0.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use torus_engine::avss::{self, Commitments, PointMsg};
use torus_engine::dkg::KeyShares;
use torus_engine::wire::Wire;
use torus_engine::{Params, Secp256k1};
use zeroize::Zeroizing;

use super::KeygenError;
use crate::node::NodeState;
use crate::p2p::{Message, P2pClient};
use crate::store::records::BatchRecord;
use crate::tx::digest;
use crate::tx::{BatchId, EpochInfo};

pub(super) struct Recovery {
    batch: BatchId,
    params: Params,
    me: u32,
    decided: Vec<(u32, [u8; 32])>,
    commitments: BTreeMap<u32, Commitments<Secp256k1>>,
    sums: SumVotes,
    points: BTreeMap<u32, PointMsg<Secp256k1>>,
    fetching: BTreeMap<u32, (Instant, u32)>,
    asked: Instant,
    started: Instant,
    /// When the "nobody answers" warning was last logged.
    warned: Option<Instant>,
}

/// After this long without a single commitment or point from any peer, a
/// recovery says why it may never finish (and again every [`SILENT_REPEAT`]).
pub(super) const SILENT_WARN: Duration = Duration::from_secs(30);
/// See [`SILENT_WARN`].
const SILENT_REPEAT: Duration = Duration::from_secs(300);

impl Recovery {
    pub fn new(epoch: &EpochInfo, rec: &BatchRecord, me: u32) -> Result<Self, KeygenError> {
        Ok(Recovery {
            batch: rec.batch,
            params: Params::new(epoch.n, epoch.k, epoch.t)?,
            me,
            decided: rec.dealers.clone(),
            commitments: BTreeMap::new(),
            sums: SumVotes::new(epoch.t as usize + 1),
            points: BTreeMap::new(),
            fetching: BTreeMap::new(),
            asked: Instant::now(),
            started: Instant::now(),
            warned: None,
        })
    }

    /// Asks every peer for points and each decided dealer for its commitments.
    pub fn request(&self, p2p: &P2pClient) {
        p2p.broadcast(&Message::RecoverRequest { batch: self.batch });
        for (d, h) in &self.decided {
            if !self.commitments.contains_key(d) {
                let who = if *d == self.me {
                    *d % self.params.n + 1
                } else {
                    *d
                };
                p2p.send(
                    who,
                    Message::FetchCommitments {
                        batch: self.batch,
                        dealer: *d,
                        digest: *h,
                    },
                );
            }
        }
    }

    pub fn on_tick(&mut self, p2p: &P2pClient) {
        if self.asked.elapsed() < Duration::from_secs(3) {
            return;
        }
        self.asked = Instant::now();
        p2p.broadcast(&Message::RecoverRequest { batch: self.batch });
        let n = self.params.n;
        for (d, h) in &self.decided {
            if self.commitments.contains_key(d) {
                continue;
            }
            let e = self.fetching.entry(*d).or_insert((Instant::now(), *d));
            e.1 = e.1 % n + 1;
            if e.1 == self.me {
                e.1 = e.1 % n + 1;
            }
            e.0 = Instant::now();
            p2p.send(
                e.1,
                Message::FetchCommitments {
                    batch: self.batch,
                    dealer: *d,
                    digest: *h,
                },
            );
        }
        tracing::info!(
            batch = self.batch.start,
            commitments = self.commitments.len(),
            of = self.decided.len(),
            points = self.points.len(),
            secs = self.started.elapsed().as_secs(),
            "recovering batch"
        );
        if self.silent(Instant::now()) {
            self.warned = Some(Instant::now());
            tracing::warn!(
                batch = self.batch.start,
                keys = self.batch.count,
                secs = self.started.elapsed().as_secs(),
                "no peer answers with this batch's recovery material: members delete it once \
                 every member held the batch, so if this node's store was lost after that, only \
                 resharing to a new committee restores these shares; until then ShareRequests \
                 for these keys get the no-share error"
            );
        }
    }

    /// Whether no peer sent anything for [`SILENT_WARN`] and the warning is due.
    fn silent(&self, now: Instant) -> bool {
        self.commitments.is_empty()
            && self.points.is_empty()
            && now.duration_since(self.started) >= SILENT_WARN
            && self
                .warned
                .is_none_or(|w| now.duration_since(w) >= SILENT_REPEAT)
    }

    /// A peer's points. Returns whether the recovery finished.
    pub fn on_points(
        &mut self,
        node: &NodeState,
        _p2p: &P2pClient,
        from: u32,
        batch: &BatchId,
        bytes: &[u8],
    ) -> bool {
        if *batch != self.batch || from == self.me {
            return false;
        }
        match PointMsg::<Secp256k1>::decode(bytes) {
            Ok(p) if p.sender == from && p.keys() == self.batch.count as usize => {
                self.points.insert(from, p);
            }
            _ => {
                tracing::warn!(from, "recovery points that do not decode or fit; dropped");
                return false;
            }
        }
        self.try_finish(node)
    }

    /// A decided dealer's commitments. Returns whether the recovery finished.
    pub fn on_commitments(
        &mut self,
        node: &NodeState,
        _p2p: &P2pClient,
        dealer: u32,
        bytes: &[u8],
    ) -> bool {
        let Some((_, want)) = self.decided.iter().find(|(d, _)| *d == dealer) else {
            return false;
        };
        if self.commitments.contains_key(&dealer) {
            return false;
        }
        let Ok(c) = Commitments::<Secp256k1>::decode(bytes) else {
            return false;
        };
        if c.k() != self.params.ku()
            || c.keys() != self.batch.count as usize
            || digest::dealing_digest(&self.batch, dealer, &c) != *want
        {
            tracing::warn!(
                dealer,
                "commitments that do not match the decided digest; dropped"
            );
            return false;
        }
        self.commitments.insert(dealer, c);
        self.try_finish(node)
    }

    /// A member's summed commitments (sent with its points). Returns whether the
    /// recovery finished.
    pub fn on_summed(
        &mut self,
        node: &NodeState,
        from: u32,
        batch: &BatchId,
        bytes: &[u8],
    ) -> bool {
        if *batch != self.batch || self.sums.has_voted(from) {
            return false;
        }
        let Some(c) = check_sum(&self.params, &self.batch, self.me, from, bytes) else {
            tracing::warn!(
                from,
                "summed commitments that do not decode or fit; dropped"
            );
            return false;
        };
        self.sums
            .add(from, digest::summed_digest(&self.batch, &c), c);
        self.try_finish(node)
    }

    fn try_finish(&mut self, node: &NodeState) -> bool {
        let k = self.params.ku();
        if self.points.len() < k {
            return false;
        }
        let (combined, route) = match self.sums.trusted() {
            Some(c) => (Cow::Borrowed(c), "the sum t+1 members sent"),
            None if self.commitments.len() >= self.decided.len() => {
                match Commitments::sum(self.commitments.values()) {
                    Ok(c) => (Cow::Owned(c), "the decided dealers' commitments"),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot sum the decided commitments");
                        return false;
                    }
                }
            }
            None => return false,
        };
        let msgs: Vec<PointMsg<Secp256k1>> = self.points.values().cloned().collect();
        let slice = match avss::recover_slice(
            node.engine(),
            &self.params,
            self.me,
            &combined,
            &msgs,
        ) {
            Ok(s) => s,
            Err(e) => {
                // Too few good points so far: bad senders were dropped; wait for more.
                tracing::warn!(error = %e, points = msgs.len(), "recovery needs more good points");
                let bad: Vec<u32> = match avss::verify_points(
                    node.engine(),
                    &self.params,
                    self.me,
                    &combined,
                    &msgs,
                ) {
                    Err(torus_engine::Error::InvalidPoints(c)) => {
                        c.iter().map(|c| c.node).collect()
                    }
                    _ => Vec::new(),
                };
                for b in bad {
                    self.points.remove(&b);
                }
                return false;
            }
        };
        let shares = match KeyShares::from_aggregated(self.params, &slice, &combined) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "recovered shares do not fit");
                return false;
            }
        };
        let agg = Zeroizing::new(slice.encode());
        if let Err(e) = node.store().put_batch_result(
            self.batch.epoch,
            self.batch.start,
            &shares,
            &agg,
            &combined,
        ) {
            tracing::error!(error = %e, "cannot store recovered shares");
            return false;
        }
        if let Err(e) =
            node.store()
                .set_progress(self.batch.start, self.batch.count, "shares recovered")
        {
            tracing::error!(batch = self.batch.start, error = %e, "cannot record the batch's progress");
        }
        node.metrics().keygen_batches.inc();
        tracing::info!(
            batch = self.batch.start,
            commitments = route,
            "points verified against the summed commitments"
        );
        true
    }
}

/// Answers a peer's recovery request with our aggregated slice's points for it.
pub(super) fn serve(node: &NodeState, p2p: &P2pClient, from: u32, batch: &BatchId) {
    let slice = match node.store().aggregated_slice(batch.start) {
        Ok(Some(b)) => match avss::Slice::<Secp256k1>::decode(&b) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "stored aggregated slice does not decode");
                return;
            }
        },
        Ok(None) => return, // we do not have it (yet)
        Err(e) => {
            tracing::error!(error = %e, "cannot read the aggregated slice");
            return;
        }
    };
    if slice.keys() != batch.count as usize {
        return;
    }
    let points = avss::echo_points(&slice, from);
    p2p.send(
        from,
        Message::RecoverPoints {
            batch: *batch,
            points: Zeroizing::new(points.encode()),
        },
    );
    // The sum our points verify against (batches stored by earlier versions have
    // none: the requester fetches their dealers' commitments instead).
    match node.store().summed_commitments(batch.start) {
        Ok(Some(commitments)) => p2p.send(
            from,
            Message::RecoverCommitments {
                batch: *batch,
                commitments,
            },
        ),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot read the summed commitments"),
    }
}

/// A member's summed commitments if they decode and fit the batch: from a member
/// other than this node, `k x k` points for each of the batch's keys.
fn check_sum(
    params: &Params,
    batch: &BatchId,
    me: u32,
    from: u32,
    bytes: &[u8],
) -> Option<Commitments<Secp256k1>> {
    if from == me || params.check_index(from).is_err() {
        return None;
    }
    let c = Commitments::<Secp256k1>::decode(bytes).ok()?;
    (c.k() == params.ku() && c.keys() == batch.count as usize).then_some(c)
}

/// The summed commitments members sent a recovering node: each member's first
/// answer counts, and a sum is trusted once `quorum` (t+1) members sent it. At most
/// t members are faulty, so a trusted sum has an honest sender, and all honest
/// senders send the same sum: no two sums can both be trusted. Holds at most one
/// sum per member.
pub(super) struct SumVotes {
    quorum: usize,
    voted: BTreeSet<u32>,
    sums: BTreeMap<[u8; 32], (usize, Commitments<Secp256k1>)>,
}

impl SumVotes {
    pub fn new(quorum: usize) -> Self {
        SumVotes {
            quorum: quorum.max(1),
            voted: BTreeSet::new(),
            sums: BTreeMap::new(),
        }
    }

    /// Whether `member`'s answer was counted already.
    pub fn has_voted(&self, member: u32) -> bool {
        self.voted.contains(&member)
    }

    /// Counts `member`'s sum under its digest (not if the member sent one already).
    pub fn add(&mut self, member: u32, digest: [u8; 32], sum: Commitments<Secp256k1>) {
        if !self.voted.insert(member) {
            return;
        }
        self.sums.entry(digest).or_insert((0, sum)).0 += 1;
    }

    /// The sum `quorum` members sent, if there is one.
    pub fn trusted(&self) -> Option<&Commitments<Secp256k1>> {
        self.sums
            .values()
            .find(|(votes, _)| *votes >= self.quorum)
            .map(|(_, c)| c)
    }
}

/// A decided dealer's stored commitments (for a peer's fetch after the batch).
pub(super) fn stored_commitments(
    node: &NodeState,
    batch: &BatchId,
    dealer: u32,
    _digest: &[u8; 32],
) -> Option<Vec<u8>> {
    // The requester checks the digest itself; we only hold the decided ones.
    node.store()
        .dealer_commitments(batch.start, dealer)
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use torus_engine::avss;
    use torus_engine::Engine;

    use super::*;

    const KEYS: usize = 3;

    fn batch() -> BatchId {
        BatchId {
            epoch: 1,
            start: 0,
            count: KEYS as u32,
        }
    }

    fn params() -> Params {
        Params::new(5, 3, 1).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The sum of dealers 1..=3's commitments under dealing seeds derived from `seed`.
    fn sum(seed: u8) -> Commitments<Secp256k1> {
        let engine = Engine::new();
        let dealings: Vec<_> = (1..=3u32)
            .map(|d| {
                avss::deal::<Secp256k1>(&engine, params(), d, KEYS, None, [seed + d as u8; 32])
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        Commitments::sum(dealings.iter().map(|d| &d.commitments)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn vote(v: &mut SumVotes, member: u32, c: &Commitments<Secp256k1>) {
        v.add(member, digest::summed_digest(&batch(), c), c.clone());
    }

    #[test]
    fn a_forged_sum_is_never_trusted_while_t_plus_one_members_agree_on_the_honest_one() {
        let (honest, forged) = (sum(10), sum(50));
        let mut v = SumVotes::new(2); // t = 1
        vote(&mut v, 3, &forged);
        assert!(v.trusted().is_none(), "one faulty member's sum was trusted");
        vote(&mut v, 2, &honest);
        assert!(v.trusted().is_none(), "one vote each: nothing to trust yet");
        vote(&mut v, 4, &honest);
        assert_eq!(v.trusted(), Some(&honest));
    }

    #[test]
    fn a_member_that_answers_again_is_counted_once() {
        let (honest, forged) = (sum(10), sum(50));
        let mut v = SumVotes::new(2);
        vote(&mut v, 3, &forged);
        vote(&mut v, 3, &forged);
        vote(&mut v, 3, &honest);
        assert!(v.has_voted(3));
        assert!(
            v.trusted().is_none(),
            "a repeated answer reached the quorum"
        );
        vote(&mut v, 5, &forged);
        assert_eq!(
            v.trusted(),
            Some(&forged),
            "two members do make a quorum of 2"
        );
    }

    #[test]
    fn sums_from_outsiders_from_ourselves_or_of_another_shape_are_refused() {
        let c = sum(10);
        let bytes = c.encode();
        let (p, b) = (params(), batch());
        assert!(check_sum(&p, &b, 1, 2, &bytes).is_some());
        for from in [0, 1, 6, u32::MAX] {
            assert!(check_sum(&p, &b, 1, from, &bytes).is_none(), "from {from}");
        }
        let other_count = BatchId { count: 4, ..b };
        assert!(check_sum(&p, &other_count, 1, 2, &bytes).is_none());
        let other_k = Params::new(5, 2, 1).unwrap_or_else(|e| panic!("{e}"));
        assert!(check_sum(&other_k, &b, 1, 2, &bytes).is_none());
        assert!(check_sum(&p, &b, 1, 2, &bytes[..bytes.len() - 1]).is_none());
    }

    fn recovery() -> Recovery {
        Recovery {
            batch: batch(),
            params: params(),
            me: 5,
            decided: (1..=3u32).map(|d| (d, [d as u8; 32])).collect(),
            commitments: BTreeMap::new(),
            sums: SumVotes::new(2),
            points: BTreeMap::new(),
            fetching: BTreeMap::new(),
            asked: Instant::now(),
            started: Instant::now(),
            warned: None,
        }
    }

    #[test]
    fn a_recovery_nobody_answers_warns_after_the_delay_and_then_only_every_few_minutes() {
        let mut r = recovery();
        let t0 = r.started;
        assert!(!r.silent(t0 + SILENT_WARN - Duration::from_secs(1)));
        assert!(r.silent(t0 + SILENT_WARN));
        r.warned = Some(t0 + SILENT_WARN);
        assert!(!r.silent(t0 + SILENT_WARN + Duration::from_secs(60)));
        assert!(r.silent(t0 + SILENT_WARN + SILENT_REPEAT));
    }

    #[test]
    fn a_recovery_that_hears_from_a_peer_does_not_warn() {
        let mut r = recovery();
        r.commitments.insert(1, sum(10));
        assert!(!r.silent(r.started + SILENT_WARN * 10));
    }
}
