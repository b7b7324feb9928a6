//! Sealed secrets and key generation material: this node's shares (the `shares`
//! database), its dealing seeds, aggregated slices and the sums of the decided
//! dealers' commitments (`keygen`), and its local batch progress (`progress`).
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! Sealing: ChaCha20-Poly1305 under the node's at-rest key with a random nonce;
//! the associated data binds a record to its place (key index and epoch for a
//! share, the record's key for keygen material).

use std::ops::Bound;

use chacha20poly1305::aead::{Aead, Payload};
use ff::PrimeField;
use k256::elliptic_curve::rand_core::RngCore;
use torus_engine::avss::Commitments;
use torus_engine::dkg::KeyShares;
use torus_engine::wire::Wire;
use torus_engine::{Params, Secp256k1};
use zeroize::{Zeroize, Zeroizing};

use super::env::Store;
use super::error::StoreError;
use super::records::ShareRecord;

impl Store {
    /// Stores this node's shares of keys `start..start+shares.keys()` (one transaction).
    pub fn put_shares(
        &self,
        epoch: u64,
        start: u64,
        shares: &torus_engine::dkg::KeyShares<torus_engine::Secp256k1>,
    ) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        self.put_shares_in(&mut w, self.shares, epoch, start, shares)?;
        w.commit()?;
        Ok(())
    }

    fn put_shares_in(
        &self,
        w: &mut heed::RwTxn<'_>,
        db: super::env::Db,
        epoch: u64,
        start: u64,
        shares: &torus_engine::dkg::KeyShares<torus_engine::Secp256k1>,
    ) -> Result<(), StoreError> {
        let cipher = self.cipher();
        let mut rng = rand_core::OsRng;
        for key in 0..shares.keys() {
            let Some((s, sp)) = shares.share(key) else {
                continue;
            };
            let index = start + key as u64;
            let mut plain = Zeroizing::new([0u8; 64]);
            plain[..32].copy_from_slice(&s.to_repr());
            plain[32..].copy_from_slice(&sp.to_repr());
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce);
            let aad = share_aad(index, epoch);
            let sealed = cipher
                .encrypt(
                    (&nonce).into(),
                    Payload {
                        msg: &plain[..],
                        aad: &aad,
                    },
                )
                .map_err(|_| StoreError::Seal(index))?;
            let commitments = shares
                .commitment_vector(key)
                .iter()
                .map(|a| {
                    crate::tx::digest::compressed_point(a).ok_or(StoreError::Corrupt {
                        what: "share commitments",
                        err: format!("key {index}: an identity commitment"),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let rec = ShareRecord {
                index,
                epoch,
                nonce,
                sealed,
                commitments,
            };
            db.put(w, &index.to_be_bytes(), &rec.encode())?;
        }
        Ok(())
    }

    /// This node's share of key `index`: `(s, s', commitment vector)`, decrypted.
    #[allow(clippy::type_complexity)]
    pub fn share(
        &self,
        index: u64,
    ) -> Result<Option<(Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>, ShareRecord)>, StoreError> {
        self.share_in(self.shares, index)
    }

    #[allow(clippy::type_complexity)]
    fn share_in(
        &self,
        db: super::env::Db,
        index: u64,
    ) -> Result<Option<(Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>, ShareRecord)>, StoreError> {
        let r = self.env.read_txn()?;
        let Some(b) = db.get(&r, &index.to_be_bytes())? else {
            return Ok(None);
        };
        let rec = ShareRecord::decode(b).map_err(|e| StoreError::Corrupt {
            what: "share",
            err: e.to_string(),
        })?;
        if rec.index != index {
            return Err(StoreError::Seal(index));
        }
        let aad = share_aad(index, rec.epoch);
        let mut plain = self
            .cipher()
            .decrypt(
                (&rec.nonce).into(),
                Payload {
                    msg: &rec.sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Seal(index))?;
        let mut s = Zeroizing::new([0u8; 32]);
        let mut sp = Zeroizing::new([0u8; 32]);
        if plain.len() != 64 {
            plain.zeroize();
            return Err(StoreError::Seal(index));
        }
        s.copy_from_slice(&plain[..32]);
        sp.copy_from_slice(&plain[32..]);
        plain.zeroize();
        Ok(Some((s, sp, rec)))
    }

    /// Number of share records held.
    pub fn share_count(&self) -> Result<u64, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.shares.len(&r)?)
    }

    /// Number of next-epoch share records held (a hand-over in progress).
    pub fn next_share_count(&self) -> Result<u64, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.next_shares.len(&r)?)
    }

    /// Records the local progress of a batch (`phase` is a short label).
    pub fn set_progress(&self, start: u64, count: u32, phase: &str) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        let mut v = Vec::with_capacity(4 + phase.len());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend_from_slice(phase.as_bytes());
        self.progress.put(&mut w, &start.to_be_bytes(), &v)?;
        w.commit()?;
        Ok(())
    }

    /// The local progress of the last `limit` batches, `(start, count, phase)` in key
    /// order (a reverse cursor: the cost does not grow with the buffer).
    pub fn recent_progress(&self, limit: usize) -> Result<Vec<(u64, u32, String)>, StoreError> {
        let r = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.progress.rev_iter(&r)?.take(limit) {
            let (k, v) = item?;
            let (Ok(kb), Some((cb, phase))) = (<[u8; 8]>::try_from(k), v.split_first_chunk::<4>())
            else {
                continue;
            };
            out.push((
                u64::from_be_bytes(kb),
                u32::from_be_bytes(*cb),
                String::from_utf8_lossy(phase).into_owned(),
            ));
        }
        out.reverse();
        Ok(out)
    }

    /// This node's shares of keys `start..start + count` as engine key shares,
    /// decoded and checked by the engine (canonical scalars and points, one share
    /// per key). A missing key is an error naming it.
    pub fn key_shares(
        &self,
        node: u32,
        params: Params,
        start: u64,
        count: u32,
    ) -> Result<KeyShares<Secp256k1>, StoreError> {
        self.key_shares_in(self.shares, node, params, start, count)
    }

    /// This node's shares of the next epoch (a resharing not yet taken over) of
    /// keys `start..start + count`, like [`Store::key_shares`].
    pub fn next_key_shares(
        &self,
        node: u32,
        params: Params,
        start: u64,
        count: u32,
    ) -> Result<KeyShares<Secp256k1>, StoreError> {
        self.key_shares_in(self.next_shares, node, params, start, count)
    }

    fn key_shares_in(
        &self,
        db: super::env::Db,
        node: u32,
        params: Params,
        start: u64,
        count: u32,
    ) -> Result<KeyShares<Secp256k1>, StoreError> {
        let mut s = Vec::with_capacity(count as usize);
        let mut sp = Vec::with_capacity(count as usize);
        let mut recs = Vec::with_capacity(count as usize);
        for index in start..start.saturating_add(u64::from(count)) {
            let Some((a, b, rec)) = self.share_in(db, index)? else {
                return Err(StoreError::MissingShare(index));
            };
            s.push(a);
            sp.push(b);
            recs.push(rec);
        }
        let sr: Vec<&[u8]> = s.iter().map(|x| &x[..]).collect();
        let spr: Vec<&[u8]> = sp.iter().map(|x| &x[..]).collect();
        let cr: Vec<&[u8]> = recs
            .iter()
            .flat_map(|r| r.commitments.iter().map(|c| &c[..]))
            .collect();
        KeyShares::decode_parts(node, params, &sr, &spr, &cr).map_err(|e| StoreError::Corrupt {
            what: "stored shares",
            err: e.to_string(),
        })
    }
}

// --- key generation material (the `keygen` database) ---

const KG_SEED: u8 = b's';
const KG_SLICE: u8 = b'a';
const KG_COMMITMENTS: u8 = b'c';
const KG_SUM: u8 = b'm';
/// The next epoch's slice and matrices of a resharing batch, until the switch.
const KG_NEXT_SLICE: u8 = b'A';
const KG_NEXT_SUM: u8 = b'M';
/// The secret an old member reshares a batch with.
const KG_RESHARE_SEED: u8 = b'r';

fn kg_key(tag: u8, start: u64, dealer: Option<u32>) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(tag);
    k.extend_from_slice(&start.to_be_bytes());
    if let Some(d) = dealer {
        k.extend_from_slice(&d.to_be_bytes());
    }
    k
}

impl Store {
    /// Seals `plain` under the node's at-rest key: `nonce ‖ ciphertext`.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 12];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        let c = self
            .cipher()
            .encrypt((&nonce).into(), Payload { msg: plain, aad })
            .map_err(|_| StoreError::Corrupt {
                what: "sealed record",
                err: "encryption failed".into(),
            })?;
        out.extend_from_slice(&c);
        Ok(out)
    }

    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "sealed record",
            err: "does not decrypt".into(),
        };
        let (nonce, c) = sealed.split_first_chunk::<12>().ok_or_else(corrupt)?;
        self.cipher()
            .decrypt(nonce.into(), Payload { msg: c, aad })
            .map(Zeroizing::new)
            .map_err(|_| corrupt())
    }

    /// Stores the seed this node deals batch `start` with (sealed, synced), so
    /// that a restart re-derives the identical dealing instead of equivocating.
    pub fn put_dealing_seed(&self, start: u64, seed: &[u8; 32]) -> Result<(), StoreError> {
        self.put_seed(KG_SEED, start, seed)
    }

    /// Stores the secret this node reshares batch `start` with during a hand-over
    /// (sealed, synced): a restart deals the same resharing again.
    pub fn put_reshare_seed(&self, start: u64, seed: &[u8; 32]) -> Result<(), StoreError> {
        self.put_seed(KG_RESHARE_SEED, start, seed)
    }

    /// The resharing secret of batch `start`, if this node reshared it.
    pub fn reshare_seed(&self, start: u64) -> Result<Option<Zeroizing<[u8; 32]>>, StoreError> {
        self.seed(KG_RESHARE_SEED, start)
    }

    fn put_seed(&self, tag: u8, start: u64, seed: &[u8; 32]) -> Result<(), StoreError> {
        let key = kg_key(tag, start, None);
        let sealed = self.seal(&key, seed)?;
        let mut w = self.env.write_txn()?;
        self.keygen.put(&mut w, &key, &sealed)?;
        w.commit()?;
        self.sync()
    }

    /// The dealing seed of batch `start`, if this node dealt it.
    pub fn dealing_seed(&self, start: u64) -> Result<Option<Zeroizing<[u8; 32]>>, StoreError> {
        self.seed(KG_SEED, start)
    }

    fn seed(&self, tag: u8, start: u64) -> Result<Option<Zeroizing<[u8; 32]>>, StoreError> {
        let key = kg_key(tag, start, None);
        let r = self.env.read_txn()?;
        let Some(b) = self.keygen.get(&r, &key)? else {
            return Ok(None);
        };
        let plain = self.unseal(&key, b)?;
        let mut out = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(StoreError::Corrupt {
                what: "dealing seed",
                err: format!("{} bytes", plain.len()),
            });
        }
        out.copy_from_slice(&plain);
        Ok(Some(out))
    }

    /// Stores a finished batch in one transaction: this node's shares, its
    /// aggregated slice over the decided dealers (sealed) and the sum of the decided
    /// dealers' commitment matrices: what this node serves a peer that recovers the
    /// batch (the peer trusts a sum once t+1 nodes sent it the same). Synced.
    ///
    /// The sum is kept with compressed points (33 bytes, not the wire's 65): one
    /// k x k matrix per key instead of one per decided dealer, read only to answer a
    /// recovering peer.
    pub fn put_batch_result(
        &self,
        epoch: u64,
        start: u64,
        shares: &torus_engine::dkg::KeyShares<torus_engine::Secp256k1>,
        aggregated_slice: &[u8],
        summed: &Commitments<Secp256k1>,
    ) -> Result<(), StoreError> {
        let place = (self.shares, KG_SLICE, KG_SUM);
        self.put_result_in(place, epoch, start, shares, aggregated_slice, summed)
    }

    /// One batch result into `(share database, slice tag, matrices tag)`.
    fn put_result_in(
        &self,
        (db, slice_tag, sum_tag): (super::env::Db, u8, u8),
        epoch: u64,
        start: u64,
        shares: &KeyShares<Secp256k1>,
        slice: &[u8],
        matrices: &Commitments<Secp256k1>,
    ) -> Result<(), StoreError> {
        let skey = kg_key(slice_tag, start, None);
        let sealed = self.seal(&skey, slice)?;
        let encoded = matrices.encode();
        let mut w = self.env.write_txn()?;
        self.put_shares_in(&mut w, db, epoch, start, shares)?;
        self.keygen.put(&mut w, &skey, &sealed)?;
        self.keygen
            .put(&mut w, &kg_key(sum_tag, start, None), &encoded)?;
        crate::failpoint::hit("shares.in_commit");
        w.commit()?;
        self.sync()
    }

    /// This node's aggregated slice of batch `start` (engine encoding), if stored.
    pub fn aggregated_slice(&self, start: u64) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let key = kg_key(KG_SLICE, start, None);
        let r = self.env.read_txn()?;
        match self.keygen.get(&r, &key)? {
            Some(b) => self.unseal(&key, b).map(Some),
            None => Ok(None),
        }
    }

    /// The summed commitments of batch `start`'s decided dealers (engine encoding),
    /// if this node finished the batch.
    pub fn summed_commitments(&self, start: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self
            .keygen
            .get(&r, &kg_key(KG_SUM, start, None))?
            .map(<[u8]>::to_vec))
    }

    /// A decided dealer's commitments of batch `start` (engine encoding), if stored:
    /// only batches finished by an earlier version of the node, which kept every
    /// decided dealer's matrices instead of their sum.
    pub fn dealer_commitments(
        &self,
        start: u64,
        dealer: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self
            .keygen
            .get(&r, &kg_key(KG_COMMITMENTS, start, Some(dealer)))?
            .map(<[u8]>::to_vec))
    }

    /// Deletes the recovery material (aggregated slice, summed commitments, dealers'
    /// matrices of earlier versions, dealing seed) of the batches starting below
    /// `below`, at most `max_batches` of them in this call (a store of an earlier
    /// version may hold many). Returns the key index below which nothing is left:
    /// `below`, or less when `max_batches` stopped it (call again from there).
    ///
    /// The caller prunes a batch once every member of its committee holds its
    /// shares: from then on no member needs to recover it from peers.
    pub fn prune_recovery_material(
        &self,
        below: u64,
        max_batches: usize,
    ) -> Result<u64, StoreError> {
        let mut w = self.env.write_txn()?;
        // Where this call stops: the first batch start past `max_batches` batches
        // that still have material of any kind, or `below`.
        let mut starts = std::collections::BTreeSet::new();
        for tag in [KG_SLICE, KG_SUM, KG_COMMITMENTS, KG_SEED] {
            let lo = kg_key(tag, 0, None);
            let hi = kg_key(tag, below, None);
            let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&lo), Bound::Excluded(&hi));
            // Each kind's first `max_batches + 1` starts: the union's smallest
            // `max_batches + 1` are among them.
            let mut last = None;
            let mut of_tag = 0;
            for item in self.keygen.range(&w, &range)? {
                let (k, _) = item?;
                let start = kg_start(k)?;
                // Dealers' matrices repeat a start once per dealer.
                if last == Some(start) {
                    continue;
                }
                last = Some(start);
                starts.insert(start);
                of_tag += 1;
                if of_tag > max_batches {
                    break;
                }
            }
        }
        let upto = starts.iter().nth(max_batches).copied().unwrap_or(below);
        for tag in [KG_SLICE, KG_SUM, KG_COMMITMENTS, KG_SEED] {
            let lo = kg_key(tag, 0, None);
            let hi = kg_key(tag, upto, None);
            let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&lo), Bound::Excluded(&hi));
            self.keygen.delete_range(&mut w, &range)?;
        }
        w.commit()?;
        Ok(upto)
    }

    /// Stores this node's result of a resharing batch of the next epoch in one
    /// transaction, apart from the current shares (which keep serving until the
    /// switch): its new shares, its slice of the combined sharing (sealed) and
    /// that sharing's matrices. Synced. [`Store::adopt_next_shares`] moves them in.
    pub fn put_next_batch_result(
        &self,
        epoch: u64,
        start: u64,
        shares: &KeyShares<Secp256k1>,
        slice: &[u8],
        combined: &Commitments<Secp256k1>,
    ) -> Result<(), StoreError> {
        let place = (self.next_shares, KG_NEXT_SLICE, KG_NEXT_SUM);
        self.put_result_in(place, epoch, start, shares, slice, combined)
    }

    /// Whether this node holds a next-epoch share of key `index`.
    pub fn has_next_share(&self, index: u64) -> Result<bool, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.next_shares.get(&r, &index.to_be_bytes())?.is_some())
    }

    /// The switch to `epoch` at this node (one transaction, synced): its shares of
    /// `epoch` replace the old ones, key by key, with their recovery material;
    /// next-epoch records of any other epoch are dropped, and so are the
    /// resharing secrets. Returns how many shares moved. Idempotent: a second
    /// call finds nothing to move.
    pub fn adopt_next_shares(&self, epoch: u64) -> Result<u64, StoreError> {
        let mut w = self.env.write_txn()?;
        let mut moved = 0u64;
        let mut recs = Vec::new();
        for item in self.next_shares.iter(&w)? {
            let (k, v) = item?;
            recs.push((k.to_vec(), v.to_vec()));
        }
        for (k, v) in &recs {
            let rec = ShareRecord::decode(v).map_err(|e| StoreError::Corrupt {
                what: "next-epoch share",
                err: e.to_string(),
            })?;
            if rec.epoch == epoch {
                self.shares.put(&mut w, k, v)?;
                moved += 1;
            }
        }
        self.next_shares.clear(&mut w)?;
        // Recovery material: re-sealed under the current record's key.
        let lo = kg_key(KG_NEXT_SLICE, 0, None);
        let hi = kg_key(KG_NEXT_SLICE, u64::MAX, None);
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&lo), Bound::Included(&hi));
        let mut slices = Vec::new();
        for item in self.keygen.range(&w, &range)? {
            let (k, v) = item?;
            slices.push((k.to_vec(), v.to_vec()));
        }
        for (k, v) in &slices {
            let start = kg_start(k)?;
            let plain = self.unseal(k, v)?;
            let to = kg_key(KG_SLICE, start, None);
            let sealed = self.seal(&to, &plain)?;
            self.keygen.put(&mut w, &to, &sealed)?;
            self.keygen.delete(&mut w, k)?;
            if let Some(m) = self
                .keygen
                .get(&w, &kg_key(KG_NEXT_SUM, start, None))?
                .map(<[u8]>::to_vec)
            {
                self.keygen.put(&mut w, &kg_key(KG_SUM, start, None), &m)?;
            }
        }
        self.clear_kg_tags(&mut w, &[KG_NEXT_SUM, KG_RESHARE_SEED])?;
        w.commit()?;
        self.sync()?;
        Ok(moved)
    }

    /// An aborted hand-over: drops every next-epoch share with its recovery
    /// material and the resharing secrets, in one synced transaction (the current
    /// shares keep serving). Returns how many next-epoch shares were dropped.
    pub fn drop_next_shares(&self) -> Result<u64, StoreError> {
        let mut w = self.env.write_txn()?;
        let n = self.next_shares.len(&w)?;
        self.next_shares.clear(&mut w)?;
        self.clear_kg_tags(&mut w, &[KG_NEXT_SLICE, KG_NEXT_SUM, KG_RESHARE_SEED])?;
        w.commit()?;
        self.sync()?;
        Ok(n)
    }

    /// Deletes every keygen record of the batches under each of `tags`.
    fn clear_kg_tags(&self, w: &mut heed::RwTxn<'_>, tags: &[u8]) -> Result<(), StoreError> {
        for &tag in tags {
            let lo = kg_key(tag, 0, None);
            let hi = kg_key(tag, u64::MAX, None);
            let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Included(&lo), Bound::Included(&hi));
            self.keygen.delete_range(w, &range)?;
        }
        Ok(())
    }

    /// Retirement: erases every share this node holds (current and next epoch)
    /// with all keygen material, in one synced transaction. Returns how many
    /// share records were erased. For a node that left the committee: the new
    /// committee serves every key, and an old share must never be combined
    /// with new ones nor stolen later.
    pub fn erase_shares(&self) -> Result<u64, StoreError> {
        let mut w = self.env.write_txn()?;
        let n = self.shares.len(&w)? + self.next_shares.len(&w)?;
        self.shares.clear(&mut w)?;
        self.next_shares.clear(&mut w)?;
        self.keygen.clear(&mut w)?;
        w.commit()?;
        self.sync()?;
        Ok(n)
    }

    /// The epoch of this node's share of key `index`, if it holds one (not decrypted).
    pub fn share_epoch(&self, index: u64) -> Result<Option<u64>, StoreError> {
        let r = self.env.read_txn()?;
        let Some(b) = self.shares.get(&r, &index.to_be_bytes())? else {
            return Ok(None);
        };
        let rec = ShareRecord::decode(b).map_err(|e| StoreError::Corrupt {
            what: "share",
            err: e.to_string(),
        })?;
        Ok(Some(rec.epoch))
    }

    /// Whether this node holds a share of key `index`.
    pub fn has_share(&self, index: u64) -> Result<bool, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.shares.get(&r, &index.to_be_bytes())?.is_some())
    }
}

/// The batch start of a keygen record key.
fn kg_start(k: &[u8]) -> Result<u64, StoreError> {
    k.get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            what: "keygen record key",
            err: format!("{} bytes", k.len()),
        })
}

fn share_aad(index: u64, epoch: u64) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&index.to_be_bytes());
    a[8..].copy_from_slice(&epoch.to_be_bytes());
    a
}

#[cfg(test)]
mod tests {
    use torus_engine::avss::{self, Commitments, Slice};
    use torus_engine::dkg::KeyShares;
    use torus_engine::wire::{Wire, WireXy};
    use torus_engine::{Engine, Params, Secp256k1};

    use super::{kg_key, StoreError, KG_COMMITMENTS};
    use crate::store::testing::temp_store;
    use crate::tx::{digest, BatchId};

    #[test]
    fn a_batch_result_keeps_one_compressed_sum_of_the_dealers_commitments_and_no_dealers_matrices()
    {
        let keys = 8usize;
        let batch = BatchId {
            epoch: 1,
            start: 0,
            count: keys as u32,
        };
        let (_dir, s) = temp_store();
        let (dealings, summed) = store_batch(&s, 0, keys);
        let stored = s
            .summed_commitments(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the summed commitments were not stored"));
        // One matrix per key with 33-byte points: a little over half of one dealer's
        // matrices on the wire (65-byte points), whatever the number of dealers.
        let wire = dealings[0].commitments.encode_xy();
        assert_eq!(stored, summed.encode());
        assert!(
            stored.len() * 100 < wire.len() * 55,
            "{} stored bytes against {} for one dealer on the wire",
            stored.len(),
            wire.len()
        );
        for d in &dealings {
            let kept = s
                .dealer_commitments(0, d.dealer)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(kept.is_none(), "dealer {}'s matrices were kept", d.dealer);
        }
        // What a recovering peer receives decodes to the same sum.
        let back = Commitments::<Secp256k1>::decode(&stored).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            digest::summed_digest(&batch, &back),
            digest::summed_digest(&batch, &summed)
        );
        let held: Vec<bool> = [0, 7, 8]
            .iter()
            .map(|&i| s.has_share(i).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(held, [true, true, false]);
    }
    #[test]
    fn next_epoch_shares_stay_apart_until_the_switch_and_then_replace_the_old_ones() {
        let keys = 4usize;
        let (_dir, s) = temp_store();
        let ok = |r: Result<bool, StoreError>| r.unwrap_or_else(|e| panic!("{e}"));
        let (_, old_sum) = store_batch(&s, 0, keys);
        let old = s.share(1).unwrap_or_else(|e| panic!("{e}"));
        let old = old.unwrap_or_else(|| panic!("no old share"));
        // The resharing's result: another sharing of the same keys, for epoch 2.
        let params = Params::new(5, 3, 1).unwrap_or_else(|e| panic!("{e}"));
        let (new, slice, d) = store_next_result(&s, keys);
        // Until the switch, the current shares and their material are untouched.
        let still = s.share(1).unwrap_or_else(|e| panic!("{e}"));
        let still = still.unwrap_or_else(|| panic!("the old share is gone"));
        assert_eq!((*still.0, still.2.epoch), (*old.0, 1));
        assert!(ok(s.has_next_share(3)) && !ok(s.has_next_share(4)));
        assert_eq!(
            s.summed_commitments(0).unwrap_or_else(|e| panic!("{e}")),
            Some(old_sum.encode())
        );
        let back = s
            .next_key_shares(2, params, 0, keys as u32)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.commitment_vector(0), new.commitment_vector(0));
        // The switch: every key's share is the new one, with its material.
        assert_eq!(s.adopt_next_shares(2).unwrap_or_else(|e| panic!("{e}")), 4);
        let now = s.share(1).unwrap_or_else(|e| panic!("{e}"));
        let now = now.unwrap_or_else(|| panic!("no share after the switch"));
        assert_eq!(now.2.epoch, 2);
        assert_ne!(*now.0, *old.0);
        let loaded = s
            .key_shares(2, params, 0, keys as u32)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.commitment_vector(3), new.commitment_vector(3));
        assert_eq!(
            s.summed_commitments(0).unwrap_or_else(|e| panic!("{e}")),
            Some(d.commitments.encode())
        );
        let slice_back = s.aggregated_slice(0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            slice_back.as_deref().map(|v| v.to_vec()),
            Some(slice.encode())
        );
        assert!(!ok(s.has_next_share(0)));
        assert!(s
            .reshare_seed(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
        // Again (a restart after the switch): nothing left to move, nothing lost.
        assert_eq!(s.adopt_next_shares(2).unwrap_or_else(|e| panic!("{e}")), 0);
        assert!(ok(s.has_share(3)));
        // Retirement erases everything.
        assert_eq!(s.erase_shares().unwrap_or_else(|e| panic!("{e}")), 4);
        assert!(!ok(s.has_share(0)));
        assert!(s
            .aggregated_slice(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
        assert!(s
            .dealing_seed(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
    }

    #[test]
    fn an_aborted_hand_over_drops_the_next_epoch_shares_and_keeps_the_current_ones() {
        let keys = 4usize;
        let (_dir, s) = temp_store();
        let ok = |r: Result<bool, StoreError>| r.unwrap_or_else(|e| panic!("{e}"));
        let (_, old_sum) = store_batch(&s, 0, keys);
        let old = s.share(1).unwrap_or_else(|e| panic!("{e}"));
        let old = old.unwrap_or_else(|| panic!("no old share"));
        store_next_result(&s, keys);
        assert_eq!(s.drop_next_shares().unwrap_or_else(|e| panic!("{e}")), 4);
        assert!(!ok(s.has_next_share(0)));
        assert!(s
            .reshare_seed(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none());
        // The current shares and their recovery material are untouched, and a
        // later switch finds nothing of the aborted epoch to move in.
        let still = s.share(1).unwrap_or_else(|e| panic!("{e}"));
        let still = still.unwrap_or_else(|| panic!("the old share is gone"));
        assert_eq!((*still.0, still.2.epoch), (*old.0, 1));
        assert_eq!(
            s.summed_commitments(0).unwrap_or_else(|e| panic!("{e}")),
            Some(old_sum.encode())
        );
        assert!(s
            .dealing_seed(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_some());
        assert_eq!(s.adopt_next_shares(2).unwrap_or_else(|e| panic!("{e}")), 0);
        assert_eq!(
            s.share(1)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(|x| x.2.epoch),
            Some(1)
        );
    }

    /// Stores a resharing result for epoch 2 of `keys` keys at 0 as node 2 of
    /// (5, 3, 1), with a resharing secret; returns the new shares, the slice and
    /// the dealing they come from.
    fn store_next_result(
        s: &crate::store::Store,
        keys: usize,
    ) -> (
        KeyShares<Secp256k1>,
        avss::Slice<Secp256k1>,
        avss::Dealing<Secp256k1>,
    ) {
        let engine = Engine::new();
        let params = Params::new(5, 3, 1).unwrap_or_else(|e| panic!("{e}"));
        let d = avss::deal::<Secp256k1>(&engine, params, 1, keys, None, [42; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        let slice = d.slice(&engine, 2).unwrap_or_else(|e| panic!("{e}"));
        let new = KeyShares::from_aggregated(params, &slice, &d.commitments)
            .unwrap_or_else(|e| panic!("{e}"));
        s.put_reshare_seed(0, &[9; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        s.put_next_batch_result(2, 0, &new, &slice.encode(), &d.commitments)
            .unwrap_or_else(|e| panic!("{e}"));
        (new, slice, d)
    }

    /// Stores a finished batch of `keys` keys at `start` as node 2 of (5, 3, 1), with
    /// a dealing seed; returns the dealings and their summed commitments.
    fn store_batch(
        s: &crate::store::Store,
        start: u64,
        keys: usize,
    ) -> (Vec<avss::Dealing<Secp256k1>>, Commitments<Secp256k1>) {
        let engine = Engine::new();
        let params = Params::new(5, 3, 1).unwrap_or_else(|e| panic!("{e}"));
        let dealings: Vec<_> = (1..=3u32)
            .map(|d| {
                avss::deal::<Secp256k1>(&engine, params, d, keys, None, [d as u8 + start as u8; 32])
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect();
        let slices: Vec<Slice<Secp256k1>> = dealings
            .iter()
            .map(|d| d.slice(&engine, 2).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let agg = Slice::sum(2, &slices).unwrap_or_else(|e| panic!("{e}"));
        let summed = Commitments::sum(dealings.iter().map(|d| &d.commitments))
            .unwrap_or_else(|e| panic!("{e}"));
        let shares =
            KeyShares::from_aggregated(params, &agg, &summed).unwrap_or_else(|e| panic!("{e}"));
        s.put_dealing_seed(start, &[7; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        s.put_batch_result(1, start, &shares, &agg.encode(), &summed)
            .unwrap_or_else(|e| panic!("{e}"));
        (dealings, summed)
    }

    fn material(s: &crate::store::Store, start: u64) -> [bool; 4] {
        let ok = |r: Result<bool, StoreError>| r.unwrap_or_else(|e| panic!("{e}"));
        [
            ok(s.aggregated_slice(start).map(|x| x.is_some())),
            ok(s.summed_commitments(start).map(|x| x.is_some())),
            ok(s.dealing_seed(start).map(|x| x.is_some())),
            ok(s.dealer_commitments(start, 3).map(|x| x.is_some())),
        ]
    }

    #[test]
    fn pruning_deletes_the_recovery_material_below_the_bound_and_keeps_every_share() {
        let (_dir, s) = temp_store();
        for start in [0, 4, 8, 12] {
            let _ = store_batch(&s, start, 4);
        }
        // A batch stored by an earlier version: a dealer's matrices, no sum.
        {
            let mut w = s.env.write_txn().unwrap_or_else(|e| panic!("{e}"));
            s.keygen
                .put(&mut w, &kg_key(KG_COMMITMENTS, 8, Some(3)), b"old")
                .unwrap_or_else(|e| panic!("{e}"));
            w.commit().unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(material(&s, 8), [true, true, true, true]);
        // Two batches per call: it stops at the third and says where.
        let upto = s
            .prune_recovery_material(12, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(upto, 8);
        assert_eq!(material(&s, 0), [false; 4]);
        assert_eq!(material(&s, 4), [false; 4]);
        assert_eq!(material(&s, 8), [true, true, true, true]);
        let upto = s
            .prune_recovery_material(12, 2)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(upto, 12);
        assert_eq!(material(&s, 8), [false; 4]);
        // The batch at the bound keeps all of it, and every share stays.
        assert_eq!(material(&s, 12), [true, true, true, false]);
        for i in 0..16 {
            assert!(
                s.has_share(i).unwrap_or_else(|e| panic!("{e}")),
                "share {i}"
            );
        }
        // Nothing left below: the next call is a no-op up to the bound.
        assert_eq!(
            s.prune_recovery_material(12, 2)
                .unwrap_or_else(|e| panic!("{e}")),
            12
        );
    }
}
