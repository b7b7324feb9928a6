//! Dealer accountability: the check of a complaint's [`Evidence`] that every node
//! runs in the consensus app (the digests a dealer signs are in
//! [`crate::tx::digest`]).
//!
//! A dealer signs, per receiver, a [`DealHeader`] with the commitments digest
//! and the receiver's slice digest. Both digests are over per-key hashes, so a
//! complaint about one key carries that key's matrix and slice plus the lists
//! of key hashes (32 bytes per key), not the whole batch.
//!
//! Verdicts: evidence that proves the dealer wrong blames the dealer; evidence
//! that is well formed and signed by the dealer but shows a consistent key
//! blames the accuser (a false complaint); anything else (unsigned, not bound
//! to the header) proves nothing and the transaction is rejected.

use torus_engine::avss::{self, Commitments, Slice};
use torus_engine::{Engine, Params, Secp256k1, Suite};

use crate::hexfmt::keccak256;
use crate::tx::digest::hash_list;
use crate::tx::digest::{POINT_LEN as POINT, SCALAR_LEN as SCALAR};
use crate::tx::{commitments_digest, slice_digest, BatchId, DealHeader, EpochInfo, Evidence};

/// The outcome of checking a complaint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The dealer misbehaved.
    DealerGuilty(String),
    /// The evidence shows an honest dealing: the accuser lied.
    FalseComplaint(String),
}

fn signed_by_dealer(epoch: &EpochInfo, dealer: u32, h: &DealHeader) -> Result<(), String> {
    let node = epoch
        .node(dealer)
        .ok_or_else(|| format!("dealer {dealer} is not in epoch {}", epoch.epoch))?;
    if h.dealer != dealer {
        return Err(format!("header names dealer {}, not {dealer}", h.dealer));
    }
    if !h.verify(&node.pubkey) {
        return Err("header is not signed by the dealer".into());
    }
    Ok(())
}

/// Checks a complaint by `accuser` against `dealer` for `batch`.
///
/// `Err` means the evidence proves nothing (the transaction is rejected);
/// otherwise the verdict says whom to blame.
pub fn check(
    epoch: &EpochInfo,
    batch: &BatchId,
    dealer: u32,
    accuser: u32,
    evidence: &Evidence,
) -> Result<Verdict, String> {
    check_dealt_by(epoch, epoch, None, batch, dealer, accuser, evidence)
}

/// [`check`] for a batch that `dealers` deal to `receivers` (the old and the new
/// committee of a resharing; the same committee in a DKG): headers are signed by
/// a member of `dealers`, the sharing has the receivers' threshold, and indexes
/// up to the larger committee's size are valid dealers. `old_vectors` is the
/// vectors hash the old epoch decided for the batch a resharing reshares (None in
/// a DKG, where [`Evidence::WrongSecret`] proves nothing).
pub fn check_dealt_by(
    dealers: &EpochInfo,
    receivers: &EpochInfo,
    old_vectors: Option<&[u8; 32]>,
    batch: &BatchId,
    dealer: u32,
    accuser: u32,
    evidence: &Evidence,
) -> Result<Verdict, String> {
    let epoch = receivers;
    let params = Params::new(receivers.n.max(dealers.n), receivers.k, receivers.t)
        .map_err(|e| e.to_string())?;
    let same_batch = |h: &DealHeader| {
        if h.batch != *batch {
            return Err("header is for another batch".to_string());
        }
        Ok(())
    };
    match evidence {
        Evidence::WrongSecret {
            header,
            key,
            commitment_hashes,
            matrix,
            old_hashes,
            old_vector,
        } => {
            let Some(old_vectors) = old_vectors else {
                return Err("a wrong secret is only evidence in a resharing".into());
            };
            signed_by_dealer(dealers, dealer, header)?;
            same_batch(header)?;
            if header.k != epoch.k || header.keys != batch.count {
                return Ok(Verdict::DealerGuilty("malformed dealing".into()));
            }
            if commitments_digest(batch, dealer, epoch.k, commitment_hashes) != header.commitments {
                return Err("key hashes do not match the signed digest".into());
            }
            let count = batch.count as usize;
            if commitment_hashes.len() != count {
                return Ok(Verdict::DealerGuilty(format!(
                    "signed a hash list of {} keys for a batch of {count}",
                    commitment_hashes.len()
                )));
            }
            if old_hashes.len() != count || hash_list(old_hashes) != *old_vectors {
                return Err("old vector hashes are not the ones the old epoch decided".into());
            }
            let k = *key as usize;
            let (Some(mh), Some(oh)) = (commitment_hashes.get(k), old_hashes.get(k)) else {
                return Err("key out of range".into());
            };
            if keccak256(matrix) != *mh || keccak256(old_vector) != *oh {
                return Err("matrix or old vector does not match its key hash".into());
            }
            let ku = epoch.k as usize;
            if matrix.len() != ku * ku * POINT {
                return Ok(Verdict::DealerGuilty("wrongly sized key data".into()));
            }
            let c00 = match Secp256k1::decode_point(&matrix[..POINT]) {
                Ok(p) => p,
                Err(e) => {
                    return Ok(Verdict::DealerGuilty(format!(
                        "commitment point does not decode: {e}"
                    )))
                }
            };
            let old: Vec<_> = old_vector
                .chunks(POINT)
                .map(Secp256k1::decode_point)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("old vector: {e}"))?;
            if old.len() != dealers.k as usize || old_vector.len() != old.len() * POINT {
                return Err("old vector of another size than k_old".into());
            }
            // sum_j dealer^j D_old[j]: the dealer's old share commitment (public data).
            let coeffs = torus_engine::poly::powers(
                torus_engine::Scalar::<Secp256k1>::from(u64::from(dealer)),
                old.len(),
            );
            let cols: Vec<&[torus_engine::Affine<Secp256k1>]> =
                old.iter().map(std::slice::from_ref).collect();
            let want = Engine::reference()
                .vartime_lincomb::<Secp256k1>(&coeffs, &cols)
                .map_err(|e| e.to_string())?;
            if Secp256k1::batch_to_affine(&want).first() == Some(&c00) {
                Ok(Verdict::FalseComplaint(format!(
                    "key {key}'s C[0][0] is the dealer's old share commitment"
                )))
            } else {
                Ok(Verdict::DealerGuilty(format!(
                    "key {key}'s C[0][0] is not the dealer's old share commitment"
                )))
            }
        }
        Evidence::Malformed { header } => {
            signed_by_dealer(dealers, dealer, header)?;
            same_batch(header)?;
            if header.k != epoch.k || header.keys != batch.count {
                Ok(Verdict::DealerGuilty(format!(
                    "dealt {0}x{0} matrices for {1} keys; the batch needs {2}x{2} for {3}",
                    header.k, header.keys, epoch.k, batch.count
                )))
            } else {
                Ok(Verdict::FalseComplaint(
                    "the header has the batch's shape".into(),
                ))
            }
        }
        Evidence::Equivocation { a, b } => {
            signed_by_dealer(dealers, dealer, a)?;
            signed_by_dealer(dealers, dealer, b)?;
            same_batch(a)?;
            same_batch(b)?;
            if a.commitments != b.commitments {
                Ok(Verdict::DealerGuilty(format!(
                    "signed two commitment digests (to nodes {} and {})",
                    a.receiver, b.receiver
                )))
            } else {
                Ok(Verdict::FalseComplaint(
                    "both headers carry the same commitments".into(),
                ))
            }
        }
        Evidence::BadSlice {
            header,
            key,
            commitment_hashes,
            slice_hashes,
            matrix,
            slice,
        } => {
            signed_by_dealer(dealers, dealer, header)?;
            same_batch(header)?;
            if header.receiver != accuser {
                return Err("a node can only complain about its own send".into());
            }
            if header.k != epoch.k || header.keys != batch.count {
                return Ok(Verdict::DealerGuilty("malformed dealing".into()));
            }
            let k = epoch.k;
            if commitments_digest(batch, dealer, k, commitment_hashes) != header.commitments
                || slice_digest(batch, dealer, k, slice_hashes) != header.slice
            {
                return Err("key hashes do not match the signed digests".into());
            }
            // The dealer signed these lists: one hash per key of the batch, or it is at fault.
            let count = batch.count as usize;
            if commitment_hashes.len() != count || slice_hashes.len() != count {
                return Ok(Verdict::DealerGuilty(format!(
                    "signed hash lists of {} and {} keys for a batch of {count}",
                    commitment_hashes.len(),
                    slice_hashes.len()
                )));
            }
            let key = *key as usize;
            let (Some(mh), Some(sh)) = (commitment_hashes.get(key), slice_hashes.get(key)) else {
                return Err("key out of range".into());
            };
            if keccak256(matrix) != *mh || keccak256(slice) != *sh {
                return Err("matrix or slice does not match its key hash".into());
            }
            let ku = k as usize;
            // The dealer signed these exact bytes: any flaw in them is its fault.
            if matrix.len() != ku * ku * POINT || slice.len() != 4 * ku * SCALAR {
                return Ok(Verdict::DealerGuilty("wrongly sized key data".into()));
            }
            let mut points = Vec::with_capacity(ku * ku);
            for p in matrix.chunks(POINT) {
                match Secp256k1::decode_point(p) {
                    Ok(a) => points.push(a),
                    Err(e) => {
                        return Ok(Verdict::DealerGuilty(format!(
                            "commitment point does not decode: {e}"
                        )))
                    }
                }
            }
            let mut scalars = Vec::with_capacity(4 * ku);
            for s in slice.chunks(SCALAR) {
                match Secp256k1::decode_scalar(s) {
                    Ok(x) => scalars.push(x),
                    Err(e) => {
                        return Ok(Verdict::DealerGuilty(format!("slice scalar: {e}")));
                    }
                }
            }
            let c = match Commitments::<Secp256k1>::from_points(dealer, ku, points) {
                Ok(c) => c,
                Err(e) => return Ok(Verdict::DealerGuilty(e.to_string())),
            };
            let mut parts = scalars.chunks(ku).map(<[_]>::to_vec);
            let (Some(a), Some(ap), Some(b), Some(bp)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Ok(Verdict::DealerGuilty("short slice".into()));
            };
            let s = Slice::from_parts(accuser, ku, a, ap, b, bp).map_err(|e| e.to_string())?;
            let sends = [avss::SendRef {
                dealer,
                commitments: &c,
                slice: &s,
            }];
            match avss::verify_sends(&Engine::reference(), &params, accuser, &sends) {
                Ok(()) => Ok(Verdict::FalseComplaint(format!(
                    "key {key} of the send is consistent with its commitments"
                ))),
                Err(e) => Ok(Verdict::DealerGuilty(format!("key {key}: {e}"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::NodeKey;

    struct World {
        keys: Vec<NodeKey>,
        epoch: EpochInfo,
        batch: BatchId,
    }

    fn world() -> World {
        // n = 5: k = 3, t = 1.
        let (keys, epoch) = EpochInfo::random_for_tests(5);
        let batch = BatchId {
            epoch: 1,
            start: 0,
            count: 4,
        };
        World { keys, epoch, batch }
    }

    /// A BadSlice complaint by node 2 against dealer 1 whose header signs `mh` and `sh`.
    fn bad_slice(w: &World, mh: Vec<[u8; 32]>, sh: Vec<[u8; 32]>, key: u32) -> Evidence {
        let header = DealHeader::sign(
            &w.keys[0],
            w.batch,
            1,
            2,
            w.epoch.k,
            w.batch.count,
            commitments_digest(&w.batch, 1, w.epoch.k, &mh),
            slice_digest(&w.batch, 1, w.epoch.k, &sh),
        );
        Evidence::BadSlice {
            header,
            key,
            commitment_hashes: mh,
            slice_hashes: sh,
            matrix: Vec::new(),
            slice: Vec::new(),
        }
    }

    #[test]
    fn a_dealer_that_signed_a_short_slice_hash_list_is_guilty_not_its_accuser() {
        let w = world();
        // Four keys in the batch, the dealer signed a slice list of one.
        let ev = bad_slice(&w, vec![[1; 32]; 4], vec![[2; 32]; 1], 0);
        let v = check(&w.epoch, &w.batch, 1, 2, &ev).unwrap();
        assert!(matches!(v, Verdict::DealerGuilty(_)), "{v:?}");
        // And a long commitment list.
        let ev = bad_slice(&w, vec![[1; 32]; 5], vec![[2; 32]; 4], 3);
        let v = check(&w.epoch, &w.batch, 1, 2, &ev).unwrap();
        assert!(matches!(v, Verdict::DealerGuilty(_)), "{v:?}");
    }

    #[test]
    fn lists_of_the_right_length_need_the_key_data_that_hashes_to_them() {
        let w = world();
        let ev = bad_slice(&w, vec![[1; 32]; 4], vec![[2; 32]; 4], 1);
        // Empty matrix and slice do not hash to the listed hashes: proves nothing.
        assert!(check(&w.epoch, &w.batch, 1, 2, &ev).is_err());
        // A key beyond the batch proves nothing either.
        let ev = bad_slice(&w, vec![[1; 32]; 4], vec![[2; 32]; 4], 4);
        assert!(check(&w.epoch, &w.batch, 1, 2, &ev).is_err());
    }

    #[test]
    fn evidence_not_signed_by_the_dealer_or_about_another_receiver_proves_nothing() {
        let w = world();
        let mut ev = bad_slice(&w, vec![[1; 32]; 4], vec![[2; 32]; 1], 0);
        // Node 3 cannot complain about node 2's send.
        assert!(check(&w.epoch, &w.batch, 1, 3, &ev).is_err());
        // Lists other than the signed ones.
        if let Evidence::BadSlice { slice_hashes, .. } = &mut ev {
            slice_hashes.push([9; 32]);
        }
        assert!(check(&w.epoch, &w.batch, 1, 2, &ev).is_err());
        // Blaming dealer 2 with dealer 1's header.
        let ev = bad_slice(&w, vec![[1; 32]; 4], vec![[2; 32]; 1], 0);
        assert!(check(&w.epoch, &w.batch, 2, 2, &ev).is_err());
    }
}
