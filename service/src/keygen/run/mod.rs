//! One batch's AVSS run at this node, by phase: dealing (`deal`), send
//! verification and echo / ready counting (`sharing`), the dealer-set proposal
//! (`dealer_set`), aggregation and the public-key vote (`shares`). See the module
//! docs of `keygen` for the protocol.
//!
//! The run is sans-IO: it never touches the network, the store or the mempool.
//! Every input (a peer's message, a decided dealer set, a timer tick, a stored
//! seed or stored shares) comes in as a method call with a [`Cx`], which lends
//! the engine, this node's signing key, the metrics and the current time; every
//! effect goes out as an [`Action`] in `Cx::out`, which the driver
//! (`keygen::driver`) executes in order. Writes that must be durable before the
//! run goes on (the dealing seed before any send, the shares before the public
//! key shares) are requests: the driver answers them by calling the run again
//! (`deal` with the stored seed, `on_shares_stored`). The same core runs in the
//! unit tests (`tests`), which wire several runs together by hand.

mod bounds;
mod deal;
mod dealer_set;
mod reshare;
mod shares;
mod sharing;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use torus_engine::avss::{Commitments, ExpectedPoints, PointMsg, Slice};
use torus_engine::dkg::{KeyShares, PublicShares};
use torus_engine::{Params, Secp256k1};

use torus_engine::Engine;
use zeroize::Zeroizing;

use super::KeygenError;
use crate::crypto::NodeKey;
use crate::metrics::{Metrics, PhaseLabels};
use crate::p2p::Message;
use crate::store::records::BatchRecord;
use crate::tx::{BatchId, DealHeader, EpochInfo, Evidence, TxBody};
pub(crate) use deal::reshare_dealing;
pub(crate) use reshare::ReshareSource;

/// What a run asks its driver to do, in the order it asks.
// Nearly every action is a `Send`, and actions live only until the driver
// executes them: boxing the message would add an allocation per send for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Action {
    /// Send `msg` to member `to` (this node included).
    Send { to: u32, msg: Message },
    /// Sign and submit a transaction (a complaint, the public-key vote).
    Submit(TxBody),
    /// Persist the secret of this start index's dealing, then call
    /// [`BatchRun::deal`] with it: nothing is sent before it is stored, so a
    /// restart deals the same dealing again.
    PersistSeed {
        start: u64,
        seed: Zeroizing<[u8; 32]>,
    },
    /// Store this node's shares of the batch with its aggregated slice and the
    /// decided dealers' commitments (one transaction), then hand the shares
    /// back through [`BatchRun::on_shares_stored`] (or tell the run with
    /// [`BatchRun::on_shares_not_stored`]).
    StoreShares(Box<SharesToStore>),
    /// Record how far the batch got, for operators.
    Progress { batch: BatchId, what: &'static str },
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Send { to, msg } => write!(f, "Send({} to {to})", msg.kind()),
            Action::Submit(b) => write!(f, "Submit({})", b.kind()),
            Action::PersistSeed { start, .. } => write!(f, "PersistSeed({start}, <redacted>)"),
            Action::StoreShares(s) => write!(f, "StoreShares({}, <redacted>)", s.batch.start),
            Action::Progress { batch, what } => write!(f, "Progress({}, {what})", batch.start),
        }
    }
}

/// This node's result of a batch, to be stored before anything else happens.
pub(crate) struct SharesToStore {
    pub batch: BatchId,
    pub shares: KeyShares<Secp256k1>,
    /// The aggregated slice (encoded): what recovery serves to peers.
    pub aggregated_slice: Zeroizing<Vec<u8>>,
    /// The sum of the decided dealers' commitments: what recovery serves to peers.
    pub summed: Commitments<Secp256k1>,
}

/// What a run may use while it handles one input: the engine, this node's key,
/// the metrics and the time, and where its actions go.
pub(crate) struct Cx<'a> {
    pub engine: &'a Engine,
    pub key: &'a NodeKey,
    pub metrics: &'a Metrics,
    pub now: Instant,
    pub out: Vec<Action>,
}

impl<'a> Cx<'a> {
    pub fn new(engine: &'a Engine, key: &'a NodeKey, metrics: &'a Metrics, now: Instant) -> Self {
        Cx {
            engine,
            key,
            metrics,
            now,
            out: Vec::new(),
        }
    }

    /// Sends without keeping the message for replays.
    pub fn send(&mut self, to: u32, msg: Message) {
        self.out.push(Action::Send { to, msg });
    }

    pub fn submit(&mut self, body: TxBody) {
        self.out.push(Action::Submit(body));
    }

    /// Takes the actions asked for so far.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }
}

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
    /// A resharing batch: the dealers are the old committee (see `reshare`).
    pub(super) reshare: Option<Box<ReshareSource>>,
    pub(super) params: Params,
    pub(super) epoch: EpochInfo,
    pub(super) me: u32,
    /// Everything this node sent for the batch, for peers that ask again.
    pub(super) sent: Vec<(u32, Message)>,
    pub(super) dealers: BTreeMap<u32, DealerState>,
    pub(super) blamed: BTreeSet<u32>,
    pub(super) decided: Option<BatchRecord>,
    /// When the dealer set was decided (seen here).
    pub(super) decided_at: Option<Instant>,
    pub(super) shares: Option<KeyShares<Secp256k1>>,
    /// Our shares are being stored (asked for with [`Action::StoreShares`]).
    pub(super) storing: bool,
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
pub(super) fn observe(m: &Metrics, batch: BatchId, phase: &str, since: Instant) {
    let seconds = since.elapsed().as_secs_f64();
    m.keygen_phase.get_or_create(&label(phase)).observe(seconds);
    if let Ok(mut t) = m.batch_timings.lock() {
        t.record(batch.start, phase, seconds);
    }
}

impl BatchRun {
    /// A run of `batch` at member `me`, knowing the dealers blamed so far in the
    /// epoch and the batch's decided dealer set if there is one.
    pub fn new(
        epoch: &EpochInfo,
        batch: BatchId,
        me: u32,
        blamed: BTreeSet<u32>,
        decided: Option<BatchRecord>,
        now: Instant,
    ) -> Result<Self, KeygenError> {
        let params = Params::new(epoch.n, epoch.k, epoch.t)?;
        if epoch.node(me).is_none() {
            return Err(KeygenError::NotMember {
                me,
                epoch: epoch.epoch,
            });
        }
        let decided = decided.filter(|r| r.batch == batch);
        Ok(BatchRun {
            batch,
            reshare: None,
            params,
            epoch: epoch.clone(),
            me,
            sent: Vec::new(),
            dealers: BTreeMap::new(),
            blamed,
            decided_at: decided.as_ref().map(|_| now),
            decided,
            shares: None,
            storing: false,
            pub_shares: BTreeMap::new(),
            early_pub: bounds::EarlyPublicShares::default(),
            resyncs: bounds::ResyncLimit::default(),
            voted: false,
            threshold_at: None,
            proposed: false,
            started: now,
            stalled_log: now,
        })
    }

    /// Sends and keeps the message for peers that ask for a replay.
    pub(super) fn send(&mut self, cx: &mut Cx<'_>, to: u32, msg: Message) {
        self.sent.push((to, msg.clone()));
        cx.send(to, msg);
    }

    pub(super) fn dealer(&mut self, d: u32) -> &mut DealerState {
        self.dealers.entry(d).or_default()
    }
    // ---- messages ----

    /// A message of this batch from member `from` (authenticated by p2p).
    pub fn on_message(&mut self, cx: &mut Cx<'_>, from: u32, msg: Message) {
        match msg {
            Message::Send(s) => self.on_send(cx, from, s),
            Message::Echo(p) => self.on_points(cx, from, p, false),
            Message::Ready(p) => self.on_points(cx, from, p, true),
            Message::PubShares { shares, .. } => self.on_pub_shares(cx, from, &shares),
            Message::Resync { .. } => {
                if !self.resyncs.allow(from, cx.now) {
                    tracing::debug!(
                        from,
                        batch = self.batch.start,
                        "resync too soon again; ignored"
                    );
                    cx.metrics.dropped("resync_rate");
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
                    cx.send(from, m);
                }
            }
            other => {
                tracing::debug!(from, kind = other.kind(), "unexpected message for a batch");
            }
        }
    }

    /// Files a complaint against `dealer` (once per dealer) and stops echoing it.
    pub(super) fn complain(&mut self, cx: &mut Cx<'_>, dealer: u32, ev: Evidence, why: &str) {
        let d = self.dealer(dealer);
        d.rejected = true;
        if d.complained {
            return;
        }
        d.complained = true;
        tracing::warn!(
            batch = self.batch.start,
            dealer,
            evidence = ev.kind(),
            why,
            "filing a complaint against a dealer"
        );
        cx.metrics.complaints_filed.inc();
        cx.submit(TxBody::Complaint {
            batch: self.batch,
            dealer,
            evidence: Box::new(ev),
        });
    }

    /// A timer tick: commitments fetches rotate to the next member, a decided
    /// batch without our shares tries to aggregate again.
    pub fn on_tick(&mut self, cx: &mut Cx<'_>) {
        let now = cx.now;
        let n = self.params.n;
        let batch = self.batch;
        for (d, st) in self.dealers.iter_mut() {
            for (h, (at, who)) in st.fetching.iter_mut() {
                if now.saturating_duration_since(*at) >= std::time::Duration::from_secs(2) {
                    // Rotate to the next member.
                    *who = *who % n + 1;
                    *at = now;
                    cx.out.push(Action::Send {
                        to: *who,
                        msg: Message::FetchCommitments {
                            batch,
                            dealer: *d,
                            digest: *h,
                        },
                    });
                }
            }
        }
        if now.saturating_duration_since(self.stalled_log) >= std::time::Duration::from_secs(10) {
            self.stalled_log = now;
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
                secs = now.saturating_duration_since(self.started).as_secs(),
                "batch in progress"
            );
        }
        if self.decided.is_some() && self.shares.is_none() {
            self.try_aggregate(cx);
        }
    }

    /// The batch's public keys are decided: its run ends here.
    pub fn finish(&mut self, cx: &mut Cx<'_>) {
        observe(cx.metrics, self.batch, "batch", self.started);
        if self.shares.is_some() {
            cx.metrics.keygen_batches.inc();
        }
        cx.out.push(Action::Progress {
            batch: self.batch,
            what: "public keys decided",
        });
        tracing::info!(
            batch = self.batch.start,
            keys = self.batch.count,
            ms = self.started.elapsed().as_millis() as u64,
            "batch finished"
        );
    }
}
