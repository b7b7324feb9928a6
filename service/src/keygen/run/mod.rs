//! One batch's AVSS run at this node, by phase: dealing (`deal`), send
//! verification and echo / ready counting (`sharing`), the dealer-set proposal
//! (`dealer_set`), aggregation and the public-key vote (`shares`). See the module
//! docs of `keygen` for the protocol.

mod bounds;
mod deal;
mod dealer_set;
mod shares;
mod sharing;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use torus_engine::avss::{Commitments, ExpectedPoints, PointMsg, Slice};
use torus_engine::dkg::{KeyShares, PublicShares};
use torus_engine::{Params, Secp256k1};

use super::faults::DealerFault;
use super::KeygenConfig;
use crate::metrics::PhaseLabels;
use crate::node::NodeState;
use crate::p2p::{Message, P2pClient};
use crate::store::records::BatchRecord;
use crate::tx::{BatchId, DealHeader, EpochInfo, Evidence, TxBody};

/// Known commitments of one dealer under one digest (decoded, and as received).
pub(crate) struct KnownCommitments {
    pub decoded: Commitments<Secp256k1>,
    pub bytes: Vec<u8>,
}

/// A ready's points with the sender's signature.
type SignedPoints = (PointMsg<Secp256k1>, [u8; 65]);

#[derive(Default)]
pub(super) struct DealerState {
    /// The dealer's header of our own (verified) send.
    pub(super) own_header: Option<DealHeader>,
    /// Our verified send was refused, or we complained: no echo from us.
    pub(super) rejected: bool,
    pub(super) complained: bool,
    pub(super) commitments: HashMap<[u8; 32], Arc<KnownCommitments>>,
    /// Our slice per digest: from the verified send, or interpolated from points.
    pub(super) slices: HashMap<[u8; 32], Slice<Secp256k1>>,
    /// Expected points for the digest of our verified send.
    pub(super) expected: Option<([u8; 32], ExpectedPoints<Secp256k1>)>,
    /// Verified echo points by digest, then sender.
    pub(super) echoes: HashMap<[u8; 32], BTreeMap<u32, PointMsg<Secp256k1>>>,
    /// Verified ready points and signatures by digest, then sender.
    pub(super) readies: HashMap<[u8; 32], BTreeMap<u32, SignedPoints>>,
    /// Senders whose echo / ready we already took (one each, any digest).
    pub(super) echoed_by: BTreeSet<u32>,
    pub(super) readied_by: BTreeSet<u32>,
    /// Points waiting for the commitments of their digest (bounded, see `bounds`).
    pub(super) waiting: bounds::Waiting,
    /// Digests we asked for, with when and whom we asked last.
    pub(super) fetching: HashMap<[u8; 32], (Instant, u32)>,
    pub(super) sent_echo: bool,
    pub(super) sent_ready: bool,
    pub(super) complete: Option<[u8; 32]>,
}

pub(crate) struct BatchRun {
    pub(crate) batch: BatchId,
    pub(super) params: Params,
    pub(super) epoch: EpochInfo,
    pub(super) me: u32,
    pub(super) fault: DealerFault,
    /// Everything this node sent for the batch, for peers that ask again.
    pub(super) sent: Vec<(u32, Message)>,
    pub(super) dealers: BTreeMap<u32, DealerState>,
    pub(super) blamed: BTreeSet<u32>,
    pub(super) decided: Option<BatchRecord>,
    /// When the dealer set was decided (seen here).
    pub(super) decided_at: Option<Instant>,
    pub(super) shares: Option<KeyShares<Secp256k1>>,
    pub(super) pub_shares: BTreeMap<u32, PublicShares<Secp256k1>>,
    pub(super) early_pub: bounds::EarlyPublicShares,
    /// When each peer last got a replay of our messages (`Resync`).
    pub(super) resyncs: bounds::ResyncLimit,
    pub(super) voted: bool,
    pub(super) threshold_at: Option<Instant>,
    pub(super) proposed: bool,
    pub(super) started: Instant,
    pub(super) stalled_log: Instant,
}

fn label(phase: &str) -> PhaseLabels {
    PhaseLabels {
        phase: phase.to_string(),
    }
}

/// Records how long `phase` of `batch` took (since `since`): in the phase histogram, and
/// in the recent batches' timings `/dashboard` shows.
pub(super) fn observe(node: &NodeState, batch: BatchId, phase: &str, since: Instant) {
    let seconds = since.elapsed().as_secs_f64();
    let m = node.metrics();
    m.keygen_phase.get_or_create(&label(phase)).observe(seconds);
    if let Ok(mut t) = m.batch_timings.lock() {
        t.record(batch.start, phase, seconds);
    }
}

impl BatchRun {
    pub fn new(
        node: &NodeState,
        epoch: &EpochInfo,
        batch: BatchId,
        me: u32,
        cfg: &KeygenConfig,
    ) -> Result<Self, String> {
        let params = Params::new(epoch.n, epoch.k, epoch.t).map_err(|e| e.to_string())?;
        let snap = node.store().snapshot().map_err(|e| e.to_string())?;
        let mut blamed = BTreeSet::new();
        for n in &epoch.nodes {
            if crate::app::is_blamed(&snap, epoch.epoch, n.index).map_err(|e| e.to_string())? {
                blamed.insert(n.index);
            }
        }
        let decided = crate::app::batch_record(&snap, batch.start)
            .map_err(|e| e.to_string())?
            .filter(|r| r.batch == batch);
        drop(snap);
        let fault = if node.config().dev_mode {
            cfg.faults.dealer()?
        } else {
            DealerFault::None
        };
        Ok(BatchRun {
            batch,
            params,
            epoch: epoch.clone(),
            me,
            fault,
            sent: Vec::new(),
            dealers: BTreeMap::new(),
            blamed,
            decided_at: decided.as_ref().map(|_| Instant::now()),
            decided,
            shares: None,
            pub_shares: BTreeMap::new(),
            early_pub: bounds::EarlyPublicShares::default(),
            resyncs: bounds::ResyncLimit::default(),
            voted: false,
            threshold_at: None,
            proposed: false,
            started: Instant::now(),
            stalled_log: Instant::now(),
        })
    }

    pub(super) fn send(&mut self, p2p: &P2pClient, to: u32, msg: Message) {
        self.sent.push((to, msg.clone()));
        p2p.send(to, msg);
    }

    pub(super) fn dealer(&mut self, d: u32) -> &mut DealerState {
        self.dealers.entry(d).or_default()
    }
    // ---- messages ----

    pub fn on_message(
        &mut self,
        node: &NodeState,
        p2p: &P2pClient,
        _cfg: &KeygenConfig,
        from: u32,
        msg: Message,
    ) {
        match msg {
            Message::Send(s) => self.on_send(node, p2p, from, s),
            Message::Echo(p) => self.on_points(node, p2p, from, p, false),
            Message::Ready(p) => self.on_points(node, p2p, from, p, true),
            Message::PubShares { shares, .. } => self.on_pub_shares(node, from, &shares),
            Message::Resync { .. } => {
                if !self.resyncs.allow(from, Instant::now()) {
                    tracing::debug!(
                        from,
                        batch = self.batch.start,
                        "resync too soon again; ignored"
                    );
                    node.metrics().dropped("resync_rate");
                    return;
                }
                let again: Vec<Message> = self
                    .sent
                    .iter()
                    .filter(|(to, _)| *to == from)
                    .map(|(_, m)| m.clone())
                    .collect();
                tracing::debug!(
                    to = from,
                    messages = again.len(),
                    batch = self.batch.start,
                    "resending batch messages"
                );
                for m in again {
                    p2p.send(from, m);
                }
            }
            other => {
                tracing::debug!(from, kind = other.kind(), "unexpected message for a batch");
            }
        }
    }

    pub(super) fn complain(
        &mut self,
        node: &NodeState,
        dealer: u32,
        ev: Evidence,
        why: &str,
    ) -> Option<TxBody> {
        let d = self.dealer(dealer);
        d.rejected = true;
        if d.complained {
            return None;
        }
        d.complained = true;
        tracing::warn!(
            batch = self.batch.start,
            dealer,
            evidence = ev.kind(),
            why,
            "filing a complaint against a dealer"
        );
        node.metrics().complaints_filed.inc();
        Some(TxBody::Complaint {
            batch: self.batch,
            dealer,
            evidence: Box::new(ev),
        })
    }

    pub(super) fn submit(node: &NodeState, body: TxBody) {
        match node.sign_tx(body) {
            Ok(tx) => {
                if let Err(e) = node.submit(tx.encode()) {
                    tracing::warn!(error = %e, "could not submit a complaint");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot sign a complaint"),
        }
    }
    pub fn on_tick(&mut self, node: &NodeState, p2p: &P2pClient) {
        let n = self.params.n;
        let batch = self.batch;
        for (d, st) in self.dealers.iter_mut() {
            for (h, (at, who)) in st.fetching.iter_mut() {
                if at.elapsed() >= std::time::Duration::from_secs(2) {
                    // Rotate to the next member.
                    *who = *who % n + 1;
                    *at = Instant::now();
                    p2p.send(
                        *who,
                        Message::FetchCommitments {
                            batch,
                            dealer: *d,
                            digest: *h,
                        },
                    );
                }
            }
        }
        if self.stalled_log.elapsed() >= std::time::Duration::from_secs(10) {
            self.stalled_log = Instant::now();
            let complete = self
                .dealers
                .values()
                .filter(|d| d.complete.is_some())
                .count();
            tracing::info!(
                batch = self.batch.start,
                keys = self.batch.count,
                complete,
                decided = self.decided.is_some(),
                shares = self.shares.is_some(),
                public_shares = self.pub_shares.len(),
                voted = self.voted,
                secs = self.started.elapsed().as_secs(),
                "batch in progress"
            );
        }
        if self.decided.is_some() && self.shares.is_none() {
            self.try_aggregate(node, p2p);
        }
    }

    pub fn finish(&mut self, node: &NodeState) {
        observe(node, self.batch, "batch", self.started);
        if self.shares.is_some() {
            node.metrics().keygen_batches.inc();
        }
        if let Err(e) =
            node.store()
                .set_progress(self.batch.start, self.batch.count, "public keys decided")
        {
            tracing::error!(batch = self.batch.start, error = %e, "cannot record the batch's progress");
        }
        tracing::info!(
            batch = self.batch.start,
            keys = self.batch.count,
            ms = self.started.elapsed().as_millis() as u64,
            "batch finished"
        );
    }
}
