//! Recovery of a decided batch's shares by a node that missed it (it was down,
//! or its data was lost): AVSS interpolation over the aggregated sharing.
//!
//! Every node that finished the batch stored its aggregated slice
//! `(a_m, b_m) = sum over the decided dealers of its slices`. For the
//! recovering node i, peer m answers with the points of that slice at i:
//! `alpha = A(m, i)`, `beta = A(i, m)` of the summed polynomial `A`. The
//! recovering node fetches every decided dealer's commitments (checked
//! against the digests decided in consensus), sums them, verifies the peers'
//! points against the sum (bad senders are dropped) and interpolates its own
//! row and column from k good points; its share is the row at 0.

use std::collections::BTreeMap;
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
    points: BTreeMap<u32, PointMsg<Secp256k1>>,
    fetching: BTreeMap<u32, (Instant, u32)>,
    asked: Instant,
    started: Instant,
}

impl Recovery {
    pub fn new(epoch: &EpochInfo, rec: &BatchRecord, me: u32) -> Result<Self, KeygenError> {
        Ok(Recovery {
            batch: rec.batch,
            params: Params::new(epoch.n, epoch.k, epoch.t)?,
            me,
            decided: rec.dealers.clone(),
            commitments: BTreeMap::new(),
            points: BTreeMap::new(),
            fetching: BTreeMap::new(),
            asked: Instant::now(),
            started: Instant::now(),
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

    fn try_finish(&mut self, node: &NodeState) -> bool {
        let k = self.params.ku();
        if self.commitments.len() < self.decided.len() || self.points.len() < k {
            return false;
        }
        let combined = match Commitments::sum(self.commitments.values()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot sum the decided commitments");
                return false;
            }
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
        let commitments: Vec<(u32, &Commitments<Secp256k1>)> =
            self.commitments.iter().map(|(d, c)| (*d, c)).collect();
        if let Err(e) = node.store().put_batch_result(
            self.batch.epoch,
            self.batch.start,
            &shares,
            &agg,
            &commitments,
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
