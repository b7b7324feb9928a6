//! Sharing: a dealer's send verified here, echoes and readies counted per
//! (dealer, digest), our slice interpolated when no valid send came, and
//! complaints with evidence against a bad dealer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use torus_engine::avss::{self, Commitments, ExpectedPoints, PointMsg, SendRef, Slice};
use torus_engine::wire::Wire;
use torus_engine::{Error as EngineError, Secp256k1};
use zeroize::Zeroizing;

use super::{observe, BatchRun, Cx, KnownCommitments};
use crate::app::evidence::Verdict;
use crate::p2p::{Message, PointsMsg, SendMsg};
use crate::tx::{digest, ready_digest, Evidence, ReadySig};

/// Keys of one refused send checked against the reference rule before giving up on a
/// complaint (each check is one key's row and column, on the CPU).
const MAX_KEYS_RECHECKED: usize = 8;

impl BatchRun {
    pub(super) fn on_send(&mut self, cx: &mut Cx<'_>, from: u32, s: SendMsg) {
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
        let Some(pk) = self.dealer_pubkey(from) else {
            return;
        };
        if !h.verify(&pk) {
            tracing::warn!(from, "send header not signed by its dealer; dropped");
            return;
        }
        if h.k != self.epoch.k || h.keys != self.batch.count {
            let ev = Evidence::Malformed { header: h.clone() };
            self.complain(cx, from, ev, "malformed dealing");
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
        observe(cx.metrics, self.batch, "decode_send", t0);
        if c.k() != self.params.ku() || slice.receiver != self.me {
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
        // The dealer signed hash lists over another number of keys than the batch
        // has: provable from the lists alone (no key's data is needed).
        let count = self.batch.count as usize;
        if mh.len() != count || sh.len() != count {
            let ev = Evidence::BadSlice {
                header: h.clone(),
                key: 0,
                matrix: Vec::new(),
                slice: Vec::new(),
                commitment_hashes: mh,
                slice_hashes: sh,
            };
            self.complain(cx, from, ev, "hash lists of another key count");
            return;
        }
        if !self.own_dealing(from) {
            let t1 = Instant::now();
            let r = avss::verify_sends(
                cx.engine,
                &self.send_params(),
                self.me,
                &[SendRef {
                    dealer: from,
                    commitments: &c,
                    slice: &slice,
                }],
            );
            observe(cx.metrics, self.batch, "verify_send", t1);
            if let Err(e) = r {
                // Only a key our engine names, confirmed by the consensus rule itself
                // (the CPU reference path), becomes a complaint: a complaint about a
                // consistent key would get this node blamed, and a backend fault
                // (a GPU kernel bug) must not get an honest dealer blamed.
                let culprits: Vec<usize> = match &e {
                    EngineError::InvalidSend(culprits) => culprits
                        .iter()
                        .filter(|c| c.node == from)
                        .flat_map(|c| c.keys.iter().copied())
                        .take(MAX_KEYS_RECHECKED)
                        .collect(),
                    _ => Vec::new(),
                };
                for key in culprits {
                    let Ok(slice_bytes) = digest::slice_bytes(&slice, key) else {
                        continue;
                    };
                    let ev = Evidence::BadSlice {
                        header: h.clone(),
                        key: key as u32,
                        matrix: digest::matrix_bytes(&c, key),
                        slice: slice_bytes.to_vec(),
                        commitment_hashes: mh.clone(),
                        slice_hashes: sh.clone(),
                    };
                    match self.check_evidence(from, &ev) {
                        Ok(Verdict::DealerGuilty(_)) => {
                            self.complain(cx, from, ev, &e.to_string());
                            return;
                        }
                        Ok(Verdict::FalseComplaint(why)) => {
                            tracing::error!(
                                from,
                                key,
                                why,
                                "the engine refused a key the reference check accepts"
                            );
                        }
                        Err(why) => {
                            tracing::error!(
                                from,
                                key,
                                why,
                                "evidence for a refused key proves nothing"
                            );
                        }
                    }
                }
                // Nothing provable: no complaint, no echo for this dealer; our slice can
                // still come by interpolation from the others' echoes.
                tracing::error!(from, error = %e, "send refused without provable evidence; no complaint filed");
                self.dealer(from).rejected = true;
                return;
            }
        }
        if !self.reshare_secret_ok(cx, from, &h, &c, &mh) {
            return;
        }
        let digest = h.commitments;
        let known = Arc::new(KnownCommitments {
            decoded: c,
            bytes: s.commitments,
        });
        let all: Vec<u32> = (1..=self.params.n).collect();
        let expected = ExpectedPoints::new(cx.engine, &slice, &all);
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
            self.send(cx, m, msg);
        }
        self.retry_waiting(cx, from, &digest);
        self.progress(cx, from, &digest);
    }

    pub(super) fn on_points(&mut self, cx: &mut Cx<'_>, from: u32, pm: PointsMsg, ready: bool) {
        let d = pm.dealer;
        if self.blamed.contains(&d) || self.dealer_pubkey(d).is_none() {
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
            let dealer_pk = self.dealer_pubkey(d);
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
                    self.complain(cx, d, ev, "two commitment digests");
                }
            }
        }
        if !self.verify_and_record(cx, from, &pm, ready) {
            return;
        }
        self.progress(cx, d, &pm.digest);
    }

    /// Verifies points (against our slice when we have one for the digest, else
    /// against the commitments) and records them. Returns whether recorded.
    pub(super) fn verify_and_record(
        &mut self,
        cx: &mut Cx<'_>,
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
                cx.engine,
                &params,
                me,
                &c.decoded,
                std::slice::from_ref(&points),
            )),
            _ => None,
        };
        match verdict {
            None => {
                // Commitments unknown yet: keep the points (one echo and one ready per
                // sender) and ask the sender.
                if !st.waiting.push(ready, from, pm.clone()) {
                    tracing::debug!(
                        from,
                        dealer = d,
                        ready,
                        "points already waiting from this sender; dropped"
                    );
                    cx.metrics.dropped("waiting_points");
                    return false;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = st.fetching.entry(pm.digest) {
                    e.insert((cx.now, from));
                    cx.send(
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
                    // A ready without its signature was dropped before it got here;
                    // one that still lacks it is refused, never recorded unsigned.
                    let Some(sig) = pm.ready_sig else {
                        tracing::warn!(from, dealer = d, "ready without a signature; dropped");
                        return false;
                    };
                    st.readied_by.insert(from);
                    st.readies
                        .entry(pm.digest)
                        .or_default()
                        .insert(from, (points, sig));
                } else {
                    st.echoed_by.insert(from);
                    st.echoes.entry(pm.digest).or_default().insert(from, points);
                }
                true
            }
        }
    }

    pub(super) fn retry_waiting(&mut self, cx: &mut Cx<'_>, d: u32, digest: &[u8; 32]) {
        let st = self.dealer(d);
        st.fetching.remove(digest);
        let now = st.waiting.take(digest);
        for (ready, from, pm) in now {
            self.verify_and_record(cx, from, &pm, ready);
        }
    }

    /// Commitments fetched from a peer. Only commitments this node asked for are
    /// taken (a dealer of the committee, a digest being fetched); anything else is
    /// dropped before it is decoded.
    pub fn on_commitments(&mut self, cx: &mut Cx<'_>, dealer: u32, bytes: Vec<u8>) {
        let Some(digest) = self.accept_commitments(dealer, bytes) else {
            cx.metrics.dropped("unsolicited_commitments");
            return;
        };
        self.retry_waiting(cx, dealer, &digest);
        self.progress(cx, dealer, &digest);
        self.try_aggregate(cx);
    }

    /// Stores commitments of `dealer` when they answer one of our fetches; the
    /// digest they are stored under, or None (not asked for, malformed, known).
    pub(super) fn accept_commitments(&mut self, dealer: u32, bytes: Vec<u8>) -> Option<[u8; 32]> {
        // Nothing asked for from this dealer: not decoded, not stored.
        let asked = self
            .dealers
            .get(&dealer)
            .is_some_and(|st| !st.fetching.is_empty());
        if !asked || self.dealer_pubkey(dealer).is_none() {
            tracing::debug!(dealer, "commitments nobody asked for; dropped");
            return None;
        }
        let c = Commitments::<Secp256k1>::decode(&bytes).ok()?;
        if c.k() != self.params.ku() || c.keys() != self.batch.count as usize {
            return None;
        }
        let digest = digest::dealing_digest(&self.batch, dealer, &c);
        let st = self.dealer(dealer);
        if !st.fetching.contains_key(&digest) || st.commitments.contains_key(&digest) {
            tracing::debug!(
                dealer,
                "commitments under a digest not being fetched; dropped"
            );
            return None;
        }
        st.commitments
            .insert(digest, Arc::new(KnownCommitments { decoded: c, bytes }));
        Some(digest)
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
    pub(super) fn slice_for(&mut self, cx: &mut Cx<'_>, d: u32, digest: &[u8; 32]) -> bool {
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
        match avss::recover_slice(cx.engine, &params, me, &c.decoded, &msgs) {
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
    pub(super) fn progress(&mut self, cx: &mut Cx<'_>, d: u32, digest: &[u8; 32]) {
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
        if !self.slice_for(cx, d, digest) {
            return;
        }
        if want_ready {
            let sig = ReadySig::sign(cx.key, self.me, &self.batch, d, digest).sig;
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
                self.send(cx, m, msg);
            }
        }
        if want_complete {
            self.dealer(d).complete = Some(*digest);
            tracing::debug!(batch = self.batch.start, dealer = d, "sharing complete");
            self.try_aggregate(cx);
        }
    }
}
