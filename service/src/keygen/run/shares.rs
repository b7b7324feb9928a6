//! Shares and public keys: aggregation over the decided dealers, the shares
//! stored with the aggregated slice, public key shares with proofs, and the
//! public-key vote.

use std::time::Instant;

use rand_core::RngCore;
use torus_engine::avss::SendRef;
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::wire::{Wire, WireXy};
use torus_engine::Secp256k1;
use zeroize::Zeroizing;

use super::{observe, Action, BatchRun, Cx, SharesToStore};
use crate::p2p::Message;
use crate::store::records::BatchRecord;
use crate::tx::TxBody;

impl BatchRun {
    // ---- shares and public keys ----

    /// With the dealer set decided and our slice of every decided sharing:
    /// aggregates our shares and asks for them to be stored
    /// ([`Action::StoreShares`]); otherwise fetches the commitments it lacks.
    pub(super) fn try_aggregate(&mut self, cx: &mut Cx<'_>) {
        if self.shares.is_some() || self.storing {
            return;
        }
        let Some(rec) = self.decided.clone() else {
            return;
        };
        // Every decided sharing needs our slice under its decided digest.
        let mut missing = Vec::new();
        for (d, h) in &rec.dealers {
            if !self.slice_for(cx, *d, h) {
                missing.push(*d);
            }
        }
        if !missing.is_empty() {
            for d in missing {
                let first = self.fetch_first(d);
                let st = self.dealer(d);
                let h = rec.dealers.iter().find(|x| x.0 == d).map(|x| x.1);
                if let Some(h) = h {
                    if !st.commitments.contains_key(&h) && !st.fetching.contains_key(&h) {
                        // Ask the dealer first (a new member in a resharing);
                        // `on_tick` rotates through the others.
                        st.fetching.insert(h, (cx.now, first));
                        cx.send(
                            first,
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
        let (shares, agg, summed) = match self.combine_decided(cx, &refs) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(batch = self.batch.start, error = %e, "cannot combine the decided sharings");
                return;
            }
        };
        let aggregated_slice = Zeroizing::new(agg.encode());
        observe(cx.metrics, self.batch, "aggregate", t0);
        drop(refs);
        drop(sends);
        self.storing = true;
        cx.out.push(Action::StoreShares(Box::new(SharesToStore {
            batch: self.batch,
            shares,
            aggregated_slice,
            summed,
        })));
    }

    /// Our shares are stored (or were already, recovered from peers): publish
    /// our public key shares and join the public-key vote.
    pub fn on_shares_stored(&mut self, cx: &mut Cx<'_>, shares: KeyShares<Secp256k1>) {
        self.storing = false;
        if self.shares.is_some() {
            return;
        }
        self.publish_public_shares(cx, shares);
    }

    /// Our shares could not be stored: the next tick aggregates again.
    pub fn on_shares_not_stored(&mut self) {
        self.storing = false;
    }

    pub(super) fn publish_public_shares(&mut self, cx: &mut Cx<'_>, shares: KeyShares<Secp256k1>) {
        let t0 = Instant::now();
        let mut seed = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut seed);
        let public = match dkg::public_shares(cx.engine, &shares, seed) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "public key shares failed");
                return;
            }
        };
        observe(cx.metrics, self.batch, "public_shares", t0);
        self.shares = Some(shares);
        let msg = Message::PubShares {
            batch: self.batch,
            shares: public.encode_xy(),
        };
        for m in 1..=self.params.n {
            self.send(cx, m, msg.clone());
        }
        let early = self.early_pub.take_all();
        for p in early {
            self.take_pub_shares(cx, p);
        }
    }

    pub(super) fn on_pub_shares(&mut self, cx: &mut Cx<'_>, from: u32, bytes: &[u8]) {
        let p = match PublicShares::<Secp256k1>::decode(bytes) {
            Ok(p) if p.node == from && p.keys() == self.batch.count as usize => p,
            _ => {
                tracing::warn!(from, "public key shares that do not decode or fit; dropped");
                return;
            }
        };
        if self.shares.is_none() {
            if !self.early_pub.push(p) {
                tracing::debug!(
                    from,
                    "public key shares already waiting from this sender; dropped"
                );
                cx.metrics.dropped("early_public_shares");
            }
            return;
        }
        self.take_pub_shares(cx, p);
    }

    pub(super) fn take_pub_shares(&mut self, cx: &mut Cx<'_>, p: PublicShares<Secp256k1>) {
        if self.voted || self.pub_shares.contains_key(&p.node) {
            return;
        }
        let Some(shares) = &self.shares else { return };
        // Our own public shares come from our own verified shares: no proof to check.
        if p.node != self.me {
            let t0 = Instant::now();
            if let Err(e) =
                dkg::verify_public_shares(cx.engine, &self.params, &shares.commitments, &[&p])
            {
                tracing::warn!(from = p.node, error = %e, "public key shares do not verify; dropped");
                return;
            }
            observe(cx.metrics, self.batch, "verify_proofs", t0);
        }
        self.pub_shares.insert(p.node, p);
        if self.pub_shares.len() < self.params.ku() {
            return;
        }
        let refs: Vec<&PublicShares<Secp256k1>> =
            self.pub_shares.values().take(self.params.ku()).collect();
        let pks = match dkg::user_public_keys(cx.engine, &self.params, &refs) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "user public keys failed");
                return;
            }
        };
        let mut keys = Vec::with_capacity(pks.len());
        for a in &pks {
            let Some(k) = crate::tx::digest::compressed_point(a) else {
                tracing::error!(
                    batch = self.batch.start,
                    "a user public key is the identity: not voting"
                );
                return;
            };
            keys.push(k);
        }
        if !self.keys_unchanged(cx, &keys) {
            return;
        }
        let Some((_, vectors_hash)) =
            crate::tx::digest::vector_hashes(&shares.commitments, self.params.ku())
        else {
            tracing::error!(
                batch = self.batch.start,
                "a commitment vector holds the identity: not voting"
            );
            return;
        };
        self.voted = true;
        let keys_hash = crate::tx::keys_hash(&keys);
        tracing::info!(
            batch = self.batch.start,
            keys = keys.len(),
            ms = self.started.elapsed().as_millis() as u64,
            "voting the batch's public keys"
        );
        cx.submit(TxBody::PublicKeys {
            batch: self.batch,
            keys_hash,
            keys,
            vectors_hash,
        });
    }

    /// After a restart, or a recovery from peers, with `shares` already stored:
    /// rejoin the public-key vote of the decided batch `rec`.
    pub fn restore(&mut self, cx: &mut Cx<'_>, rec: &BatchRecord, shares: KeyShares<Secp256k1>) {
        if rec.batch != self.batch {
            return;
        }
        self.decided = Some(rec.clone());
        if self.shares.is_some() {
            return;
        }
        self.publish_public_shares(cx, shares);
    }
}
