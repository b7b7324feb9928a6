//! Resharing batches (spec §2, issue #12): the same run, with the OLD committee
//! as dealers and the NEW committee as receivers.
//!
//! - **Dealing** (`deal::reshare_dealing`, on the secret path): old node i deals its shares of the batch's
//!   keys with a fresh k' x k' bivariate sharing per key to the new committee
//!   (`pss::reshare_deal`, constant time), signed like a DKG send. A node only in
//!   the old committee runs nothing else.
//! - **Receiving** ([`BatchRun::new_reshare`]): a new member checks each old
//!   dealer's send like a DKG send, and also that the sub-sharing's `C[0][0]`
//!   equals the dealer's old share commitment `sum_j i^j D_old[j]`
//!   (`pss::verify_reshare_secrets`). A dealer that fails gets no echo and no
//!   ready from this node, so it cannot gather the k' + t' readies a dealer set
//!   needs. Echo / ready run among the new committee with its thresholds.
//! - **Dealer set**: at least k_old dealers with k' + t' ready signatures each
//!   (proposed once k_old + t_old are complete, after the grace period for the
//!   rest).
//! - **Combination**: the decided dealers' sends with Lagrange weights at 0 over
//!   their OLD indexes (`pss::reshare_combine`); the combined slice and matrices
//!   are stored beside the shares for peers' recovery (`pss::reshare_recovery`).
//! - **Public keys**: the new committee's user public keys must equal the old
//!   ones for every key; a node that computes others does not vote.
//!
//! Message senders are indexes in the sender's role: a send comes from an old
//! index, every other message from a new index (the driver resolves peers).

use std::collections::BTreeSet;
use std::time::Instant;

use torus_engine::avss::{Commitments, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares};
use torus_engine::group::Affine;
use torus_engine::{pss, Params, Secp256k1};

use super::{observe, BatchRun, Cx, KeygenError};
use crate::app::evidence::{self, Verdict};
use crate::store::records::BatchRecord;
use crate::tx::{digest, BatchId, DealHeader, EpochInfo, Evidence};

/// A node's shares of a batch, its slice of the combined sharing and that
/// sharing's commitment matrices (what peers' recovery is served from).
pub(super) type Combined = (
    KeyShares<Secp256k1>,
    Slice<Secp256k1>,
    Commitments<Secp256k1>,
);

/// What a new member needs to know of the old committee for one resharing batch.
/// All of it is public and was decided in the old epoch.
pub(crate) struct ReshareSource {
    /// The dealing committee (dealer indexes are its indexes).
    pub(super) old_epoch: EpochInfo,
    pub(super) old_params: Params,
    /// The batch's old commitment vectors, `key * k_old + j`.
    pub(super) old_commitments: Vec<Affine<Secp256k1>>,
    /// The batch's user public keys (compressed): the new ones must be equal.
    pub(super) public_keys: Vec<[u8; 33]>,
    /// Per-key hashes of the old vectors, whose list hash the old epoch decided:
    /// what a wrong-secret complaint binds an old vector with.
    pub(super) old_hashes: Vec<[u8; 32]>,
}

impl ReshareSource {
    /// The old committee's view of the batch `old_batch` (`start`, `count`):
    /// its commitment vectors, refused unless their hash is `vectors_hash`, the
    /// one the old epoch decided, and its public keys.
    pub fn new(
        old_epoch: &EpochInfo,
        old_batch: BatchId,
        old_commitments: Vec<Affine<Secp256k1>>,
        vectors_hash: &[u8; 32],
        public_keys: Vec<[u8; 33]>,
    ) -> Result<Self, KeygenError> {
        let keys = old_batch.count as usize;
        let old_params = Params::new(old_epoch.n, old_epoch.k, old_epoch.t)?;
        let want = keys * old_params.ku();
        if old_commitments.len() != want || public_keys.len() != keys {
            return Err(KeygenError::Params(torus_engine::Error::LengthMismatch {
                what: "old commitment vectors or public keys of a resharing batch",
                expected: want,
                got: old_commitments.len(),
            }));
        }
        let old_hashes = match digest::vector_hashes(&old_commitments, old_params.ku()) {
            Some((per_key, list)) if list == *vectors_hash => per_key,
            _ => {
                return Err(KeygenError::OldVectors {
                    start: old_batch.start,
                })
            }
        };
        Ok(ReshareSource {
            old_epoch: old_epoch.clone(),
            old_params,
            old_commitments,
            public_keys,
            old_hashes,
        })
    }
}

impl BatchRun {
    /// A run of resharing batch `batch` (of the new epoch) at new member `me`.
    pub fn new_reshare(
        new_epoch: &EpochInfo,
        batch: BatchId,
        me: u32,
        source: ReshareSource,
        blamed: BTreeSet<u32>,
        decided: Option<BatchRecord>,
        now: Instant,
    ) -> Result<Self, KeygenError> {
        if batch.epoch != new_epoch.epoch
            || source.old_epoch.epoch.checked_add(1) != Some(batch.epoch)
        {
            return Err(KeygenError::NotMember {
                me,
                epoch: batch.epoch,
            });
        }
        if source.public_keys.len() != batch.count as usize {
            return Err(KeygenError::Params(torus_engine::Error::LengthMismatch {
                what: "public keys of a resharing batch",
                expected: batch.count as usize,
                got: source.public_keys.len(),
            }));
        }
        let mut run = BatchRun::new(new_epoch, batch, me, blamed, decided, now)?;
        run.reshare = Some(Box::new(source));
        Ok(run)
    }

    /// The epoch whose members deal this batch.
    fn dealer_epoch(&self) -> &EpochInfo {
        self.reshare.as_ref().map_or(&self.epoch, |r| &r.old_epoch)
    }

    /// The public key of dealer `d`, or None when `d` does not deal this batch.
    pub(super) fn dealer_pubkey(&self, d: u32) -> Option<[u8; 33]> {
        self.dealer_epoch().node(d).map(|n| n.pubkey)
    }

    /// How many members deal.
    pub(super) fn dealer_count(&self) -> u32 {
        self.dealer_epoch().n
    }

    /// The fewest dealers a dealer set may hold: k of the DKG, k_old of a resharing
    /// (the Lagrange interpolation over old indexes needs k_old points).
    pub(super) fn min_dealers(&self) -> usize {
        self.reshare
            .as_ref()
            .map_or(self.params.ku(), |r| r.old_params.ku())
    }

    /// Complete sharings after which a node proposes (once the grace period for
    /// the rest is over): k + t dealers in a DKG (at least k honest ones make the
    /// secret); k_old in a resharing, where the secret is fixed by the old
    /// commitments and k_old > t_old dealers include an honest one, whose random
    /// sub-sharing hides the new polynomial.
    pub(super) fn proposal_trigger(&self) -> usize {
        self.reshare
            .as_ref()
            .map_or(self.params.ready_threshold() as usize, |r| {
                r.old_params.ku()
            })
    }

    /// Whether dealer `d`'s send is this node's own dealing (not verified again).
    pub(super) fn own_dealing(&self, d: u32) -> bool {
        self.reshare.is_none() && d == self.me
    }

    /// The parameters a send is verified with: the receivers' sharing, with an
    /// index range that admits every dealer (old indexes may exceed the new n).
    pub(super) fn send_params(&self) -> Params {
        Params {
            n: self.params.n.max(self.dealer_count()),
            ..self.params
        }
    }

    /// Whom to ask first for dealer `d`'s commitments: the dealer in a DKG, the
    /// next new member in a resharing (an old dealer need not be a new member).
    pub(super) fn fetch_first(&self, d: u32) -> u32 {
        match self.reshare {
            None => d,
            Some(_) => self.me % self.params.n + 1,
        }
    }

    /// The consensus rule's verdict on a complaint this node would file.
    pub(super) fn check_evidence(&self, dealer: u32, ev: &Evidence) -> Result<Verdict, String> {
        match &self.reshare {
            None => evidence::check(&self.epoch, &self.batch, dealer, self.me, ev),
            Some(r) => evidence::check_dealt_by(
                &r.old_epoch,
                &self.epoch,
                Some(&digest::hash_list(&r.old_hashes)),
                &self.batch,
                dealer,
                self.me,
                ev,
            ),
        }
    }

    /// A resharing send's secret check: `C[0][0]` of every key against the old
    /// commitment vector at the dealer's index. A dealer that fails is refused
    /// (no echo, no ready from this node) and gets a complaint whose evidence
    /// (the key's matrix and old vector, bound by hashes to the dealer's signed
    /// header and to the old epoch's decided vectors hash) consensus checks.
    /// Always true in a DKG.
    pub(super) fn reshare_secret_ok(
        &mut self,
        cx: &mut Cx<'_>,
        from: u32,
        header: &DealHeader,
        c: &Commitments<Secp256k1>,
        commitment_hashes: &[[u8; 32]],
    ) -> bool {
        let Some(r) = &self.reshare else {
            return true;
        };
        let t0 = Instant::now();
        let res =
            pss::verify_reshare_secrets(cx.engine, &r.old_params, &r.old_commitments, &[(from, c)]);
        observe(cx.metrics, self.batch, "verify_old_commitments", t0);
        let keys = match res {
            Ok(()) => return true,
            Err(torus_engine::Error::InvalidReshare(culprits)) => culprits
                .iter()
                .filter(|c| c.node == from)
                .flat_map(|c| c.keys.iter().copied())
                .collect::<Vec<_>>(),
            Err(_) => Vec::new(),
        };
        tracing::warn!(
            batch = self.batch.start,
            dealer = from,
            keys = keys.len(),
            "resharing dealer does not deal its old share: refused"
        );
        let ko = r.old_params.ku();
        let evidence = keys.first().and_then(|&key| {
            let old = r.old_commitments.get(key * ko..(key + 1) * ko)?;
            let mut old_vector = Vec::with_capacity(ko * digest::POINT_LEN);
            for p in old {
                old_vector.extend_from_slice(&digest::compressed_point(p)?);
            }
            Some(Evidence::WrongSecret {
                header: header.clone(),
                key: key as u32,
                commitment_hashes: commitment_hashes.to_vec(),
                matrix: digest::matrix_bytes(c, key),
                old_hashes: r.old_hashes.clone(),
                old_vector,
            })
        });
        match evidence.map(|ev| (self.check_evidence(from, &ev), ev)) {
            Some((Ok(Verdict::DealerGuilty(why)), ev)) => self.complain(cx, from, ev, &why),
            other => {
                // Nothing provable (a backend fault must not get a dealer blamed):
                // refused here only.
                let why = match other {
                    Some((Ok(Verdict::FalseComplaint(w)), _)) | Some((Err(w), _)) => w,
                    _ => "no key named".into(),
                };
                tracing::error!(dealer = from, why, "wrong secret without provable evidence");
                cx.metrics.dropped("reshare_wrong_secret");
                self.dealer(from).rejected = true;
            }
        }
        false
    }

    /// This node's shares over the decided sends, with what it keeps for peers'
    /// recovery: its slice of the summed (DKG) or Lagrange-combined (resharing)
    /// sharing and that sharing's commitment matrices.
    pub(super) fn combine_decided(
        &self,
        cx: &Cx<'_>,
        sends: &[SendRef<'_, Secp256k1>],
    ) -> Result<Combined, String> {
        match &self.reshare {
            None => {
                let shares = dkg::aggregate(cx.engine, &self.params, self.me, sends)
                    .map_err(|e| format!("aggregation: {e}"))?;
                let agg = Slice::sum(self.me, sends.iter().map(|s| s.slice))
                    .map_err(|e| format!("cannot sum slices: {e}"))?;
                // Public matrices: summed in variable time.
                let decided: Vec<&Commitments<Secp256k1>> =
                    sends.iter().map(|s| s.commitments).collect();
                let summed = Commitments::vartime_sum(cx.engine, &decided)
                    .map_err(|e| format!("cannot sum the decided commitments: {e}"))?;
                Ok((shares, agg, summed))
            }
            Some(r) => {
                let shares =
                    pss::reshare_combine(cx.engine, &r.old_params, &self.params, self.me, sends)
                        .map_err(|e| format!("resharing combination: {e}"))?;
                let (slice, mats) = pss::reshare_recovery(cx.engine, &self.params, self.me, sends)
                    .map_err(|e| format!("resharing recovery material: {e}"))?;
                Ok((shares, slice, mats))
            }
        }
    }

    /// Whether `keys` may be voted: always in a DKG; in a resharing only when they
    /// are the batch's old public keys, every one.
    pub(super) fn keys_unchanged(&self, cx: &Cx<'_>, keys: &[[u8; 33]]) -> bool {
        let Some(r) = &self.reshare else {
            return true;
        };
        let changed = keys
            .iter()
            .zip(&r.public_keys)
            .filter(|(a, b)| a != b)
            .count()
            + keys.len().abs_diff(r.public_keys.len());
        if changed > 0 {
            tracing::error!(
                batch = self.batch.start,
                changed,
                "resharing would change user public keys: not voting"
            );
            cx.metrics.dropped("reshare_changed_public_keys");
            return false;
        }
        true
    }
}
