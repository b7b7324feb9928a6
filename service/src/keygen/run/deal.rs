//! Dealing: this node's sharing of the batch, from a persisted seed; and an
//! old member's resharing of its shares to the next committee.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use std::time::Instant;

use rand_core::RngCore;
use torus_engine::avss::{self, Dealing};
use torus_engine::dkg::KeyShares;
use torus_engine::wire::{Wire, WireXy};
use torus_engine::Secp256k1;
use torus_engine::{pss, Params};
use zeroize::Zeroizing;

use super::{observe, Action, BatchRun, Cx};
use crate::hexfmt::keccak256;
use crate::p2p::{Message, SendMsg};
use crate::tx::{digest, BatchId, DealHeader, EpochInfo};

impl BatchRun {
    // ---- dealing ----

    /// Deals this batch (unless this node is blamed) from `stored`, the secret
    /// persisted for its start index. Without one, it draws a fresh secret and
    /// asks for it to be persisted ([`Action::PersistSeed`]); the driver deals
    /// again with it once it is stored, so nothing is sent before.
    pub fn deal(&mut self, cx: &mut Cx<'_>, stored: Option<Zeroizing<[u8; 32]>>) {
        if self.reshare.is_some() {
            // Old members deal a resharing with `reshare_dealing`, from their old shares.
            tracing::error!(
                batch = self.batch.start,
                "a resharing batch is not dealt afresh"
            );
            return;
        }
        if self.blamed.contains(&self.me) {
            tracing::warn!(
                batch = self.batch.start,
                "this node is blamed in this epoch: not dealing"
            );
            return;
        }
        let Some(stored) = stored else {
            let mut s = Zeroizing::new([0u8; 32]);
            rand_core::OsRng.fill_bytes(&mut s[..]);
            cx.out.push(Action::PersistSeed {
                start: self.batch.start,
                seed: s,
            });
            return;
        };
        let t0 = Instant::now();
        // The stored secret is per start index; the dealing is bound to the whole batch id.
        let seed = dealing_seed(&stored, &self.batch);
        let params = self.params;
        let keys = self.batch.count as usize;
        let dealing = match avss::deal::<Secp256k1>(cx.engine, params, self.me, keys, None, *seed) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "dealing failed");
                return;
            }
        };
        let msgs = match send_messages(cx, self.batch, self.me, params.k, &dealing) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the sends: not dealing");
                return;
            }
        };
        observe(cx.metrics, self.batch, "deal", t0);
        // All or nothing: a dealer never sends part of a dealing.
        for (to, msg) in msgs {
            self.send(cx, to, msg);
        }
        tracing::info!(
            batch = self.batch.start,
            keys,
            ms = t0.elapsed().as_millis() as u64,
            "dealt batch"
        );
    }
}

/// Old node `old_shares.node` deals its shares of `batch`'s keys to `new_epoch`:
/// the signed sends, one per new member, from the secret `stored` it persisted
/// for this batch (the same secret deals the same dealing after a restart).
/// Secret path: constant time only.
pub(crate) fn reshare_dealing(
    cx: &Cx<'_>,
    batch: BatchId,
    new_epoch: &EpochInfo,
    old_shares: &KeyShares<Secp256k1>,
    stored: &[u8; 32],
) -> Result<Vec<(u32, Message)>, String> {
    if batch.epoch != new_epoch.epoch {
        return Err(format!(
            "batch of epoch {} resharing to epoch {}",
            batch.epoch, new_epoch.epoch
        ));
    }
    if old_shares.keys() != batch.count as usize {
        return Err(format!(
            "{} old shares for a batch of {} keys",
            old_shares.keys(),
            batch.count
        ));
    }
    let new_params =
        Params::new(new_epoch.n, new_epoch.k, new_epoch.t).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let seed = dealing_seed(stored, &batch);
    let dealing = pss::reshare_deal(cx.engine, new_params, old_shares, *seed)
        .map_err(|e| format!("resharing deal: {e}"))?;
    let msgs = send_messages(cx, batch, old_shares.node, new_epoch.k, &dealing)?;
    observe(cx.metrics, batch, "reshare_deal", t0);
    Ok(msgs)
}

/// The signed sends of `dealer`'s dealing of `batch`, one per receiver, built
/// before anything goes out (a dealer never sends part of a dealing). `k` is the
/// receiving committee's threshold, which the headers sign.
pub(super) fn send_messages(
    cx: &Cx<'_>,
    batch: BatchId,
    dealer: u32,
    k: u32,
    dealing: &Dealing<Secp256k1>,
) -> Result<Vec<(u32, Message)>, String> {
    let slices = dealing
        .slices(cx.engine)
        .map_err(|e| format!("slicing: {e}"))?;
    let digest = digest::dealing_digest(&batch, dealer, &dealing.commitments);
    let cbytes = dealing.commitments.encode_xy();
    let mut msgs = Vec::with_capacity(slices.len());
    for slice in &slices {
        let to = slice.receiver;
        let slice_digest = digest::send_slice_digest(&batch, dealer, slice)
            .map_err(|e| format!("slice digest: {e}"))?;
        let header = DealHeader::sign(
            cx.key,
            batch,
            dealer,
            to,
            k,
            batch.count,
            digest,
            slice_digest,
        );
        msgs.push((
            to,
            Message::Send(SendMsg {
                header,
                commitments: cbytes.clone(),
                slice: Zeroizing::new(slice.encode()),
            }),
        ));
    }
    Ok(msgs)
}

/// The seed of one dealing: the persisted secret of a start index bound to the whole batch
/// id (epoch, start, count). A restart re-deals the same batch exactly (the dealer never
/// signs two dealings of one batch), while a batch at the same start in another epoch, or
/// reopened with another size after a cancel, is a fresh dealing: the same polynomials are
/// never shown to a second committee, whose byzantine members could pool their rows with
/// the first one's.
pub(crate) fn dealing_seed(stored: &[u8; 32], batch: &BatchId) -> Zeroizing<[u8; 32]> {
    let mut m = Zeroizing::new(Vec::with_capacity(80));
    m.extend_from_slice(b"torus-node/dealing-seed/v1");
    m.extend_from_slice(stored);
    m.extend_from_slice(&batch.epoch.to_be_bytes());
    m.extend_from_slice(&batch.start.to_be_bytes());
    m.extend_from_slice(&batch.count.to_be_bytes());
    Zeroizing::new(keccak256(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_at_the_same_start_in_another_epoch_or_size_is_dealt_afresh() {
        let stored = [7u8; 32];
        let b = BatchId {
            epoch: 1,
            start: 32,
            count: 16,
        };
        // A restart of the same batch deals the same polynomials.
        assert_eq!(*dealing_seed(&stored, &b), *dealing_seed(&stored, &b));
        let others = [
            BatchId { epoch: 2, ..b },
            BatchId { count: 32, ..b },
            BatchId { start: 48, ..b },
        ];
        for o in others {
            assert_ne!(
                *dealing_seed(&stored, &b),
                *dealing_seed(&stored, &o),
                "{o:?}"
            );
        }
        assert_ne!(*dealing_seed(&[8u8; 32], &b), *dealing_seed(&stored, &b));
    }
}
