//! One batch's AVSS run at this node: dealing, send verification, echo and
//! ready counting, completion, the dealer-set proposal, aggregation and the
//! public-key vote. See the module docs of `keygen` for the protocol.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use rand_core::RngCore;
use torus_engine::avss::{self, Commitments, ExpectedPoints, PointMsg, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::wire::{Wire, WireXy};
use torus_engine::{Error as EngineError, Params, Scalar, Secp256k1, Suite};
use zeroize::Zeroizing;

use super::faults::DealerFault;
use super::KeygenConfig;
use crate::tx::digest;
use crate::hexfmt::keccak256;
use crate::metrics::PhaseLabels;
use crate::node::NodeState;
use crate::p2p::{Message, P2pClient, PointsMsg, SendMsg};
use crate::store::records::BatchRecord;
use crate::tx::{
    ready_digest, BatchId, DealHeader, DealerEvidence, EpochInfo, Evidence, ReadySig, TxBody,
};

type Sc = Scalar<Secp256k1>;

/// Known commitments of one dealer under one digest (decoded, and as received).
pub(super) struct KnownCommitments {
    pub decoded: Commitments<Secp256k1>,
    pub bytes: Vec<u8>,
}

/// A ready's points with the sender's signature.
type SignedPoints = (PointMsg<Secp256k1>, [u8; 65]);

#[derive(Default)]
struct DealerState {
    /// The dealer's header of our own (verified) send.
    own_header: Option<DealHeader>,
    /// Our verified send was refused, or we complained: no echo from us.
    rejected: bool,
    complained: bool,
    commitments: HashMap<[u8; 32], Arc<KnownCommitments>>,
    /// Our slice per digest: from the verified send, or interpolated from points.
    slices: HashMap<[u8; 32], Slice<Secp256k1>>,
    /// Expected points for the digest of our verified send.
    expected: Option<([u8; 32], ExpectedPoints<Secp256k1>)>,
    /// Verified echo points by digest, then sender.
    echoes: HashMap<[u8; 32], BTreeMap<u32, PointMsg<Secp256k1>>>,
    /// Verified ready points and signatures by digest, then sender.
    readies: HashMap<[u8; 32], BTreeMap<u32, SignedPoints>>,
    /// Senders whose echo / ready we already took (one each, any digest).
    echoed_by: BTreeSet<u32>,
    readied_by: BTreeSet<u32>,
    /// Points waiting for the commitments of their digest.
    waiting: Vec<(bool, u32, PointsMsg)>,
    /// Digests we asked for, with when and whom we asked last.
    fetching: HashMap<[u8; 32], (Instant, u32)>,
    sent_echo: bool,
    sent_ready: bool,
    complete: Option<[u8; 32]>,
}

pub(super) struct BatchRun {
    pub batch: BatchId,
    params: Params,
    epoch: EpochInfo,
    me: u32,
    fault: DealerFault,
    /// Everything this node sent for the batch, for peers that ask again.
    sent: Vec<(u32, Message)>,
    dealers: BTreeMap<u32, DealerState>,
    blamed: BTreeSet<u32>,
    decided: Option<BatchRecord>,
    /// When the dealer set was decided (seen here).
    decided_at: Option<Instant>,
    shares: Option<KeyShares<Secp256k1>>,
    pub_shares: BTreeMap<u32, PublicShares<Secp256k1>>,
    early_pub: Vec<PublicShares<Secp256k1>>,
    voted: bool,
    threshold_at: Option<Instant>,
    proposed: bool,
    started: Instant,
    stalled_log: Instant,
}

fn label(phase: &str) -> PhaseLabels {
    PhaseLabels {
        phase: phase.to_string(),
    }
}

fn observe(node: &NodeState, phase: &str, since: Instant) {
    node.metrics()
        .keygen_phase
        .get_or_create(&label(phase))
        .observe(since.elapsed().as_secs_f64());
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
            early_pub: Vec::new(),
            voted: false,
            threshold_at: None,
            proposed: false,
            started: Instant::now(),
            stalled_log: Instant::now(),
        })
    }

    fn send(&mut self, p2p: &P2pClient, to: u32, msg: Message) {
        self.sent.push((to, msg.clone()));
        p2p.send(to, msg);
    }

    fn dealer(&mut self, d: u32) -> &mut DealerState {
        self.dealers.entry(d).or_default()
    }

    // ---- dealing ----

    /// Deals this batch (unless this node is blamed): persists the seed first.
    pub fn deal(&mut self, node: &NodeState, p2p: &P2pClient, _cfg: &KeygenConfig) {
        if self.blamed.contains(&self.me) {
            tracing::warn!(
                batch = self.batch.start,
                "this node is blamed in this epoch: not dealing"
            );
            return;
        }
        let t0 = Instant::now();
        let seed = match node.store().dealing_seed(self.batch.start) {
            Ok(Some(s)) => s,
            Ok(None) => {
                let mut s = Zeroizing::new([0u8; 32]);
                rand_core::OsRng.fill_bytes(&mut s[..]);
                if let Err(e) = node.store().put_dealing_seed(self.batch.start, &s) {
                    tracing::error!(error = %e, "cannot persist the dealing seed: not dealing");
                    return;
                }
                s
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the dealing seed: not dealing");
                return;
            }
        };
        let mut params = self.params;
        if self.fault == DealerFault::BadMatrix {
            tracing::warn!("TEST FAULT: dealing (k+1) x (k+1) matrices");
            params = match Params::new(self.params.n, self.params.k + 1, self.params.t) {
                Ok(p) => p,
                Err(_) => self.params,
            };
        }
        let keys = self.batch.count as usize;
        let dealing =
            match avss::deal::<Secp256k1>(&node.engine(), params, self.me, keys, None, *seed) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "dealing failed");
                    return;
                }
            };
        let mut slices = match dealing.slices(&node.engine()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "slicing failed");
                return;
            }
        };
        let alt = match self.fault {
            DealerFault::Equivocate(to) => {
                tracing::warn!(to, "TEST FAULT: equivocating (a second dealing)");
                let alt_seed = keccak256(&[&seed[..], b"equivocate"].concat());
                avss::deal::<Secp256k1>(&node.engine(), params, self.me, keys, None, alt_seed)
                    .ok()
                    .and_then(|d| d.slice(&node.engine(), to).ok().map(|s| (to, d, s)))
            }
            _ => None,
        };
        if let DealerFault::CorruptRow(to) = self.fault {
            tracing::warn!(to, "TEST FAULT: corrupting a row");
            if let Some(s) = slices.get_mut((to as usize).wrapping_sub(1)) {
                s.corrupt_for_tests(0, false);
            }
        }
        observe(node, "deal", t0);
        let digest = digest::dealing_digest(&self.batch, self.me, &dealing.commitments);
        let cbytes = dealing.commitments.encode_xy();
        let alt_c = alt.as_ref().map(|(_, d, _)| {
            (
                digest::dealing_digest(&self.batch, self.me, &d.commitments),
                d.commitments.encode_xy(),
            )
        });
        for slice in &slices {
            let to = slice.receiver;
            let (c, cb, s) = match (&alt, &alt_c) {
                (Some((alt_to, _, alt_s)), Some((ad, ab))) if *alt_to == to => (*ad, ab, alt_s),
                _ => (digest, &cbytes, slice),
            };
            let slice_digest = match digest::send_slice_digest(&self.batch, self.me, s) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot digest a slice: not dealing");
                    return;
                }
            };
            let header = DealHeader::sign(
                &node.key(),
                self.batch,
                self.me,
                to,
                params.k,
                self.batch.count,
                c,
                slice_digest,
            );
            let msg = Message::Send(SendMsg {
                header,
                commitments: cb.clone(),
                slice: Zeroizing::new(s.encode()),
            });
            self.send(p2p, to, msg);
        }
        tracing::info!(
            batch = self.batch.start,
            keys,
            ms = t0.elapsed().as_millis() as u64,
            "dealt batch"
        );
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

    fn complain(
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

    fn submit(node: &NodeState, body: TxBody) {
        match node.sign_tx(body) {
            Ok(tx) => {
                if let Err(e) = node.submit(tx.encode()) {
                    tracing::warn!(error = %e, "could not submit a complaint");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot sign a complaint"),
        }
    }

    fn on_send(&mut self, node: &NodeState, p2p: &P2pClient, from: u32, s: SendMsg) {
        let h = s.header.clone();
        if h.dealer != from || h.receiver != self.me || h.batch != self.batch {
            tracing::warn!(from, "send with a header not for us; dropped");
            return;
        }
        if self.blamed.contains(&from) {
            return;
        }
        {
            let d = self.dealer(from);
            if d.own_header.is_some() || d.rejected {
                return; // a resend
            }
        }
        let Some(pk) = self.epoch.node(from).map(|n| n.pubkey) else {
            return;
        };
        if !h.verify(&pk) {
            tracing::warn!(from, "send header not signed by its dealer; dropped");
            return;
        }
        if h.k != self.epoch.k || h.keys != self.batch.count {
            let ev = Evidence::Malformed { header: h.clone() };
            if let Some(tx) = self.complain(node, from, ev, "malformed dealing") {
                Self::submit(node, tx);
            }
            return;
        }
        // Equivocation seen through an earlier echo?
        let t0 = Instant::now();
        let c = match Commitments::<Secp256k1>::decode(&s.commitments) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(from, error = %e, "send commitments do not decode; ignored");
                return;
            }
        };
        let slice = match Slice::<Secp256k1>::decode(&s.slice) {
            Ok(sl) => sl,
            Err(e) => {
                tracing::warn!(from, error = %e, "send slice does not decode; ignored");
                return;
            }
        };
        observe(node, "decode_send", t0);
        if c.k() != self.params.ku()
            || c.keys() != self.batch.count as usize
            || slice.receiver != self.me
        {
            tracing::warn!(from, "send content does not match its header; ignored");
            return;
        }
        let mh = digest::matrix_hashes(&c);
        let sh = match digest::slice_hashes(&slice) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(from, error = %e, "send slice does not hash; ignored");
                return;
            }
        };
        if crate::tx::commitments_digest(&self.batch, from, self.epoch.k, &mh) != h.commitments
            || crate::tx::slice_digest(&self.batch, from, self.epoch.k, &sh) != h.slice
        {
            tracing::warn!(
                from,
                "send does not match the digests its dealer signed; ignored"
            );
            return;
        }
        if from != self.me {
            let t1 = Instant::now();
            let r = avss::verify_sends(
                &node.engine(),
                &self.params,
                self.me,
                &[SendRef {
                    dealer: from,
                    commitments: &c,
                    slice: &slice,
                }],
            );
            observe(node, "verify_send", t1);
            if let Err(e) = r {
                let key = match &e {
                    EngineError::InvalidSend(culprits) => culprits
                        .iter()
                        .find(|c| c.node == from)
                        .and_then(|c| c.keys.first().copied())
                        .unwrap_or(0),
                    _ => 0,
                };
                let ev = Evidence::BadSlice {
                    header: h.clone(),
                    key: key as u32,
                    matrix: digest::matrix_bytes(&c, key),
                    slice: match digest::slice_bytes(&slice, key) {
                        Ok(b) => b.to_vec(),
                        Err(e) => {
                            tracing::error!(from, error = %e, "evidence names a key beyond the batch");
                            return;
                        }
                    },
                    commitment_hashes: mh,
                    slice_hashes: sh,
                };
                if let Some(tx) = self.complain(node, from, ev, &e.to_string()) {
                    Self::submit(node, tx);
                }
                return;
            }
        }
        let digest = h.commitments;
        let known = Arc::new(KnownCommitments {
            decoded: c,
            bytes: s.commitments,
        });
        let all: Vec<u32> = (1..=self.params.n).collect();
        let expected = ExpectedPoints::new(&node.engine(), &slice, &all);
        let echoes: Vec<(u32, Vec<u8>)> = all
            .iter()
            .map(|&m| (m, avss::echo_points(&slice, m).encode()))
            .collect();
        {
            let d = self.dealer(from);
            d.own_header = Some(h.clone());
            d.commitments.insert(digest, known);
            d.slices.insert(digest, slice);
            d.expected = Some((digest, expected));
            d.sent_echo = true;
        }
        for (m, points) in echoes {
            let msg = Message::Echo(PointsMsg {
                batch: self.batch,
                dealer: from,
                digest,
                header: Some(h.clone()),
                ready_sig: None,
                points: Zeroizing::new(points),
            });
            self.send(p2p, m, msg);
        }
        self.retry_waiting(node, p2p, from, &digest);
        self.progress(node, p2p, from, &digest);
    }

    fn on_points(
        &mut self,
        node: &NodeState,
        p2p: &P2pClient,
        from: u32,
        pm: PointsMsg,
        ready: bool,
    ) {
        let d = pm.dealer;
        if self.blamed.contains(&d) || self.epoch.node(d).is_none() {
            return;
        }
        {
            let st = self.dealer(d);
            let seen = if ready { &st.readied_by } else { &st.echoed_by };
            if seen.contains(&from) {
                return;
            }
        }
        if ready {
            let Some(sig) = pm.ready_sig else { return };
            let Some(pk) = self.epoch.node(from).map(|n| n.pubkey) else {
                return;
            };
            let digest = ready_digest(&self.batch, d, &pm.digest);
            let ok = crate::crypto::NodePub::from_sec1(&pk)
                .and_then(|p| p.verify_prehash(&digest, &sig))
                .is_ok();
            if !ok {
                tracing::warn!(from, dealer = d, "ready with a bad signature; dropped");
                return;
            }
        } else if let Some(h) = &pm.header {
            // The echoer's own send header: evidence of equivocation if it differs from ours.
            let dealer_pk = self.epoch.node(d).map(|n| n.pubkey);
            let valid = dealer_pk.is_some_and(|pk| h.verify(&pk))
                && h.dealer == d
                && h.receiver == from
                && h.batch == self.batch;
            if !valid || h.commitments != pm.digest {
                tracing::warn!(
                    from,
                    dealer = d,
                    "echo with an inconsistent dealer header; dropped"
                );
                return;
            }
            let mine = self.dealer(d).own_header.clone();
            if let Some(mine) = mine {
                if mine.commitments != h.commitments {
                    let ev = Evidence::Equivocation {
                        a: mine,
                        b: h.clone(),
                    };
                    if let Some(tx) = self.complain(node, d, ev, "two commitment digests") {
                        Self::submit(node, tx);
                    }
                }
            }
        }
        if !self.verify_and_record(node, p2p, from, &pm, ready) {
            return;
        }
        self.progress(node, p2p, d, &pm.digest);
    }

    /// Verifies points (against our slice when we have one for the digest, else
    /// against the commitments) and records them. Returns whether recorded.
    fn verify_and_record(
        &mut self,
        node: &NodeState,
        p2p: &P2pClient,
        from: u32,
        pm: &PointsMsg,
        ready: bool,
    ) -> bool {
        let d = pm.dealer;
        let keys = self.batch.count as usize;
        let points = match PointMsg::<Secp256k1>::decode(&pm.points) {
            Ok(p) if p.sender == from && p.keys() == keys => p,
            Ok(_) => {
                tracing::warn!(
                    from,
                    dealer = d,
                    "points for another sender or size; dropped"
                );
                return false;
            }
            Err(e) => {
                tracing::warn!(from, dealer = d, error = %e, "points do not decode; dropped");
                return false;
            }
        };
        let params = self.params;
        let me = self.me;
        let st = self.dealer(d);
        let verdict = match (&st.expected, st.commitments.get(&pm.digest)) {
            (Some((h, exp)), _) if *h == pm.digest => {
                Some(exp.check(&params, std::slice::from_ref(&points)))
            }
            (_, Some(c)) => Some(avss::verify_points(
                &node.engine(),
                &params,
                me,
                &c.decoded,
                std::slice::from_ref(&points),
            )),
            _ => None,
        };
        match verdict {
            None => {
                // Commitments unknown yet: keep the points and ask the sender.
                st.waiting.push((ready, from, pm.clone()));
                if let std::collections::hash_map::Entry::Vacant(e) = st.fetching.entry(pm.digest) {
                    e.insert((Instant::now(), from));
                    p2p.send(
                        from,
                        Message::FetchCommitments {
                            batch: self.batch,
                            dealer: d,
                            digest: pm.digest,
                        },
                    );
                }
                false
            }
            Some(Err(e)) => {
                tracing::warn!(from, dealer = d, error = %e, "invalid points; dropped");
                false
            }
            Some(Ok(())) => {
                if ready {
                    st.readied_by.insert(from);
                    st.readies
                        .entry(pm.digest)
                        .or_default()
                        .insert(from, (points, pm.ready_sig.unwrap_or([0u8; 65])));
                } else {
                    st.echoed_by.insert(from);
                    st.echoes.entry(pm.digest).or_default().insert(from, points);
                }
                true
            }
        }
    }

    fn retry_waiting(&mut self, node: &NodeState, p2p: &P2pClient, d: u32, digest: &[u8; 32]) {
        let st = self.dealer(d);
        st.fetching.remove(digest);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut st.waiting)
            .into_iter()
            .partition(|(_, _, pm)| pm.digest == *digest);
        st.waiting = later;
        for (ready, from, pm) in now {
            self.verify_and_record(node, p2p, from, &pm, ready);
        }
    }

    /// Commitments fetched from a peer.
    pub fn on_commitments(
        &mut self,
        node: &NodeState,
        p2p: &P2pClient,
        dealer: u32,
        bytes: Vec<u8>,
    ) {
        let Ok(c) = Commitments::<Secp256k1>::decode(&bytes) else {
            return;
        };
        if c.k() != self.params.ku() || c.keys() != self.batch.count as usize {
            return;
        }
        let digest = digest::dealing_digest(&self.batch, dealer, &c);
        {
            let st = self.dealer(dealer);
            if st.commitments.contains_key(&digest) {
                return;
            }
            st.commitments
                .insert(digest, Arc::new(KnownCommitments { decoded: c, bytes }));
        }
        self.retry_waiting(node, p2p, dealer, &digest);
        self.progress(node, p2p, dealer, &digest);
        self.try_aggregate(node, p2p);
    }

    /// Commitments of `dealer` under `digest`, as received (for peers that ask).
    pub fn commitments_bytes(&self, dealer: u32, digest: &[u8; 32]) -> Option<Vec<u8>> {
        self.dealers
            .get(&dealer)
            .and_then(|d| d.commitments.get(digest))
            .map(|c| c.bytes.clone())
    }

    /// Our slice for (dealer, digest): from the verified send, or interpolated
    /// from at least k verified points.
    fn slice_for(&mut self, node: &NodeState, d: u32, digest: &[u8; 32]) -> bool {
        let params = self.params;
        let me = self.me;
        let st = self.dealer(d);
        if st.slices.contains_key(digest) {
            return true;
        }
        let Some(c) = st.commitments.get(digest).cloned() else {
            return false;
        };
        let mut by_sender: BTreeMap<u32, PointMsg<Secp256k1>> = BTreeMap::new();
        if let Some(e) = st.echoes.get(digest) {
            for (s, p) in e {
                by_sender.insert(*s, p.clone());
            }
        }
        if let Some(r) = st.readies.get(digest) {
            for (s, (p, _)) in r {
                by_sender.entry(*s).or_insert_with(|| p.clone());
            }
        }
        if by_sender.len() < params.ku() {
            return false;
        }
        let msgs: Vec<PointMsg<Secp256k1>> = by_sender.into_values().collect();
        match avss::recover_slice(&node.engine(), &params, me, &c.decoded, &msgs) {
            Ok(s) => {
                tracing::info!(
                    batch = self.batch.start,
                    dealer = d,
                    "interpolated our slice from verified points"
                );
                self.dealer(d).slices.insert(*digest, s);
                true
            }
            Err(e) => {
                tracing::warn!(dealer = d, error = %e, "cannot interpolate our slice yet");
                false
            }
        }
    }

    /// Echo / ready thresholds for one (dealer, digest).
    fn progress(&mut self, node: &NodeState, p2p: &P2pClient, d: u32, digest: &[u8; 32]) {
        let (ec, rc, sent_ready, complete) = {
            let st = self.dealer(d);
            (
                st.echoes.get(digest).map_or(0, BTreeMap::len) as u32,
                st.readies.get(digest).map_or(0, BTreeMap::len) as u32,
                st.sent_ready,
                st.complete.is_some(),
            )
        };
        let k = self.params.k;
        let want_ready = !sent_ready && (ec >= self.params.echo_threshold() || rc >= k);
        let want_complete = !complete && rc >= self.params.ready_threshold();
        if !(want_ready || want_complete) {
            return;
        }
        if !self.slice_for(node, d, digest) {
            return;
        }
        if want_ready {
            let sig = ReadySig::sign(node.key(), self.me, &self.batch, d, digest).sig;
            let n = self.params.n;
            let msgs: Vec<(u32, Vec<u8>)> = {
                let st = self.dealer(d);
                st.sent_ready = true;
                let Some(slice) = st.slices.get(digest) else {
                    return;
                };
                (1..=n)
                    .map(|m| (m, avss::echo_points(slice, m).encode()))
                    .collect()
            };
            for (m, points) in msgs {
                let msg = Message::Ready(PointsMsg {
                    batch: self.batch,
                    dealer: d,
                    digest: *digest,
                    header: None,
                    ready_sig: Some(sig),
                    points: Zeroizing::new(points),
                });
                self.send(p2p, m, msg);
            }
        }
        if want_complete {
            self.dealer(d).complete = Some(*digest);
            tracing::debug!(batch = self.batch.start, dealer = d, "sharing complete");
            self.try_aggregate(node, p2p);
        }
    }

    // ---- dealer set ----

    /// Whether the dealer set was decided more than `after` ago and this node
    /// still holds no shares (its peers may have moved on: time to recover).
    pub fn stuck_since_decided(&self, after: std::time::Duration) -> bool {
        self.shares.is_none() && self.decided_at.is_some_and(|t| t.elapsed() >= after)
    }

    /// Whether this node holds its shares of the batch.
    pub fn has_shares(&self) -> bool {
        self.shares.is_some()
    }

    pub fn on_blamed(&mut self, node: u32, as_dealer: bool) {
        if as_dealer && self.blamed.insert(node) && self.decided.is_none() {
            // A proposal naming this dealer is now invalid: propose again without it.
            self.proposed = false;
        }
    }

    /// The dealer-set proposal, once enough sharings completed here.
    pub fn dealer_set_proposal(&mut self, _node: &NodeState, cfg: &KeygenConfig) -> Option<TxBody> {
        if self.decided.is_some() || self.proposed {
            return None;
        }
        let need_readies = self.params.ready_threshold() as usize;
        let eligible = self.params.n as usize - self.blamed.len();
        let trigger = (self.params.ready_threshold() as usize).min(eligible);
        if trigger < self.params.ku() {
            return None;
        }
        let complete: Vec<(u32, [u8; 32])> = self
            .dealers
            .iter()
            .filter(|(d, _)| !self.blamed.contains(d))
            .filter_map(|(d, st)| st.complete.map(|h| (*d, h)))
            .collect();
        if complete.len() < trigger {
            return None;
        }
        let at = *self.threshold_at.get_or_insert_with(Instant::now);
        let n = u64::from(self.params.n);
        let position =
            (self.batch.start / u64::from(self.batch.count.max(1)) + u64::from(self.me)) % n;
        let wait = std::time::Duration::from_millis(cfg.grace_ms + position * cfg.stagger_ms);
        if complete.len() < eligible && at.elapsed() < wait {
            return None;
        }
        let mut dealers = Vec::new();
        for (d, h) in complete {
            let Some(st) = self.dealers.get(&d) else {
                continue;
            };
            let Some(r) = st.readies.get(&h) else {
                continue;
            };
            let readies: Vec<ReadySig> = r
                .iter()
                .take(need_readies)
                .map(|(signer, (_, sig))| ReadySig {
                    signer: *signer,
                    sig: *sig,
                })
                .collect();
            if readies.len() < need_readies {
                continue;
            }
            dealers.push(DealerEvidence {
                dealer: d,
                commitments: h,
                readies,
            });
        }
        if dealers.len() < self.params.ku() {
            return None;
        }
        self.proposed = true;
        tracing::info!(
            batch = self.batch.start,
            dealers = ?dealers.iter().map(|d| d.dealer).collect::<Vec<_>>(),
            ms = self.started.elapsed().as_millis() as u64,
            "proposing the dealer set"
        );
        Some(TxBody::DealerSet {
            batch: self.batch,
            dealers,
        })
    }

    pub fn on_decided(&mut self, node: &NodeState, p2p: &P2pClient, rec: &BatchRecord) {
        if rec.batch != self.batch {
            return;
        }
        self.decided = Some(rec.clone());
        self.decided_at = Some(Instant::now());
        tracing::info!(
            batch = self.batch.start,
            dealers = ?rec.dealers.iter().map(|d| d.0).collect::<Vec<_>>(),
            "dealer set decided"
        );
        self.try_aggregate(node, p2p);
    }

    // ---- shares and public keys ----

    fn try_aggregate(&mut self, node: &NodeState, p2p: &P2pClient) {
        if self.shares.is_some() {
            return;
        }
        let Some(rec) = self.decided.clone() else {
            return;
        };
        if node.store().has_share(self.batch.start).unwrap_or(false) {
            // Recovered from peers meanwhile.
            self.restore_from_store(node, p2p, &rec);
            return;
        }
        // Every decided sharing needs our slice under its decided digest.
        let mut missing = Vec::new();
        for (d, h) in &rec.dealers {
            if !self.slice_for(node, *d, h) {
                missing.push(*d);
            }
        }
        if !missing.is_empty() {
            for d in missing {
                let st = self.dealer(d);
                let h = rec.dealers.iter().find(|x| x.0 == d).map(|x| x.1);
                if let Some(h) = h {
                    if !st.commitments.contains_key(&h) && !st.fetching.contains_key(&h) {
                        // Ask the dealer first; `on_tick` rotates through the others.
                        st.fetching.insert(h, (Instant::now(), d));
                        p2p.send(
                            d,
                            Message::FetchCommitments {
                                batch: self.batch,
                                dealer: d,
                                digest: h,
                            },
                        );
                    }
                }
            }
            return;
        }
        let t0 = Instant::now();
        let mut sends = Vec::new();
        for (d, h) in &rec.dealers {
            let Some(st) = self.dealers.get(d) else {
                return;
            };
            let (Some(c), Some(s)) = (st.commitments.get(h), st.slices.get(h)) else {
                return;
            };
            sends.push((*d, c.clone(), s));
        }
        let refs: Vec<SendRef<'_, Secp256k1>> = sends
            .iter()
            .map(|(d, c, s)| SendRef {
                dealer: *d,
                commitments: &c.decoded,
                slice: s,
            })
            .collect();
        let shares = match dkg::aggregate(&node.engine(), &self.params, self.me, &refs) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(batch = self.batch.start, error = %e, "aggregation failed");
                return;
            }
        };
        let agg = match sum_slices(self.me, self.params.ku(), sends.iter().map(|(_, _, s)| *s)) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot sum slices");
                return;
            }
        };
        let commitments: Vec<(u32, &[u8])> = sends
            .iter()
            .map(|(d, c, _)| (*d, c.bytes.as_slice()))
            .collect();
        let agg_bytes = Zeroizing::new(agg.encode());
        if let Err(e) = node.store().put_batch_result(
            self.batch.epoch,
            self.batch.start,
            &shares,
            &agg_bytes,
            &commitments,
        ) {
            tracing::error!(batch = self.batch.start, error = %e, "cannot store shares");
            return;
        }
        let _ = node
            .store()
            .set_progress(self.batch.start, self.batch.count, "shares stored");
        observe(node, "aggregate", t0);
        drop(refs);
        drop(sends);
        self.publish_public_shares(node, p2p, shares);
    }

    fn publish_public_shares(
        &mut self,
        node: &NodeState,
        p2p: &P2pClient,
        shares: KeyShares<Secp256k1>,
    ) {
        let t0 = Instant::now();
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        let public = match dkg::public_shares(&node.engine(), &shares, seed) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "public key shares failed");
                return;
            }
        };
        observe(node, "public_shares", t0);
        self.shares = Some(shares);
        let msg = Message::PubShares {
            batch: self.batch,
            shares: public.encode_xy(),
        };
        for m in 1..=self.params.n {
            self.send(p2p, m, msg.clone());
        }
        let early = std::mem::take(&mut self.early_pub);
        for p in early {
            self.take_pub_shares(node, p);
        }
    }

    fn on_pub_shares(&mut self, node: &NodeState, from: u32, bytes: &[u8]) {
        let p = match PublicShares::<Secp256k1>::decode(bytes) {
            Ok(p) if p.node == from && p.keys() == self.batch.count as usize => p,
            _ => {
                tracing::warn!(from, "public key shares that do not decode or fit; dropped");
                return;
            }
        };
        if self.shares.is_none() {
            self.early_pub.push(p);
            return;
        }
        self.take_pub_shares(node, p);
    }

    fn take_pub_shares(&mut self, node: &NodeState, p: PublicShares<Secp256k1>) {
        if self.voted || self.pub_shares.contains_key(&p.node) {
            return;
        }
        let Some(shares) = &self.shares else { return };
        // Our own public shares come from our own verified shares: no proof to check.
        if p.node != self.me {
            let t0 = Instant::now();
            if let Err(e) =
                dkg::verify_public_shares(&node.engine(), &self.params, &shares.commitments, &[&p])
            {
                tracing::warn!(from = p.node, error = %e, "public key shares do not verify; dropped");
                return;
            }
            observe(node, "verify_proofs", t0);
        }
        self.pub_shares.insert(p.node, p);
        if self.pub_shares.len() < self.params.ku() {
            return;
        }
        let refs: Vec<&PublicShares<Secp256k1>> =
            self.pub_shares.values().take(self.params.ku()).collect();
        let pks = match dkg::user_public_keys(&node.engine(), &self.params, &refs) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "user public keys failed");
                return;
            }
        };
        let mut keys = Vec::with_capacity(pks.len());
        for a in &pks {
            let mut v = Vec::with_capacity(33);
            Secp256k1::encode_point(a, &mut v);
            let Ok(k) = <[u8; 33]>::try_from(v.as_slice()) else {
                tracing::error!("user public key is the identity");
                return;
            };
            keys.push(k);
        }
        self.voted = true;
        let keys_hash = crate::tx::keys_hash(&keys);
        tracing::info!(
            batch = self.batch.start,
            keys = keys.len(),
            ms = self.started.elapsed().as_millis() as u64,
            "voting the batch's public keys"
        );
        Self::submit(
            node,
            TxBody::PublicKeys {
                batch: self.batch,
                keys_hash,
                keys,
            },
        );
    }

    /// After a restart with shares already stored: reload them and rejoin the
    /// public-key vote.
    pub fn restore_from_store(&mut self, node: &NodeState, p2p: &P2pClient, rec: &BatchRecord) {
        self.decided = Some(rec.clone());
        if self.shares.is_some() {
            return;
        }
        match load_shares(node, self.me, self.params, &self.batch) {
            Ok(s) => self.publish_public_shares(node, p2p, s),
            Err(e) => tracing::error!(batch = self.batch.start, error = %e, "cannot reload shares"),
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
        observe(node, "batch", self.started);
        if self.shares.is_some() {
            node.metrics().keygen_batches.inc();
        }
        let _ = node
            .store()
            .set_progress(self.batch.start, self.batch.count, "public keys decided");
        tracing::info!(
            batch = self.batch.start,
            keys = self.batch.count,
            ms = self.started.elapsed().as_millis() as u64,
            "batch finished"
        );
    }
}

/// The sum of slices (the node's aggregated slice over the decided dealers).
pub(super) fn sum_slices<'a>(
    me: u32,
    k: usize,
    slices: impl Iterator<Item = &'a Slice<Secp256k1>>,
) -> Result<Slice<Secp256k1>, EngineError> {
    let mut acc: Option<[Vec<Sc>; 4]> = None;
    let mut keys = 0;
    for s in slices {
        keys = s.keys();
        let parts = {
            let mut a = Vec::with_capacity(keys * k);
            let mut ap = Vec::with_capacity(keys * k);
            let mut b = Vec::with_capacity(keys * k);
            let mut bp = Vec::with_capacity(keys * k);
            for key in 0..keys {
                let (r, rp) = s.row(key);
                let (c, cp) = s.column(key);
                a.extend_from_slice(r);
                ap.extend_from_slice(rp);
                b.extend_from_slice(c);
                bp.extend_from_slice(cp);
            }
            [a, ap, b, bp]
        };
        match &mut acc {
            None => acc = Some(parts),
            Some(sum) => {
                for (x, y) in sum.iter_mut().zip(parts.iter()) {
                    if x.len() != y.len() {
                        return Err(EngineError::LengthMismatch {
                            what: "slices to sum",
                            expected: x.len(),
                            got: y.len(),
                        });
                    }
                    for (u, v) in x.iter_mut().zip(y) {
                        *u += v;
                    }
                }
            }
        }
    }
    let [a, ap, b, bp] = acc.unwrap_or_default();
    let _ = keys;
    Slice::from_parts(me, k, a, ap, b, bp)
}

/// This node's stored shares of a batch, as engine key shares.
pub(super) fn load_shares(
    node: &NodeState,
    me: u32,
    params: Params,
    batch: &BatchId,
) -> Result<KeyShares<Secp256k1>, String> {
    let mut s = Vec::with_capacity(batch.count as usize);
    let mut sp = Vec::with_capacity(batch.count as usize);
    let mut d = Vec::with_capacity(batch.count as usize * params.ku());
    for index in batch.start..batch.end() {
        let Some((a, b, rec)) = node.store().share(index).map_err(|e| e.to_string())? else {
            return Err(format!("share {index} missing"));
        };
        s.push(Secp256k1::decode_scalar(&a[..]).map_err(|e| e.to_string())?);
        sp.push(Secp256k1::decode_scalar(&b[..]).map_err(|e| e.to_string())?);
        for c in &rec.commitments {
            d.push(Secp256k1::decode_point(c).map_err(|e| e.to_string())?);
        }
    }
    KeyShares::from_parts(me, params, s, sp, d).map_err(|e| e.to_string())
}
