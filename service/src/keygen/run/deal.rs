//! Dealing: this node's sharing of the batch, from a persisted seed.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use std::time::Instant;

use rand_core::RngCore;
use torus_engine::avss;
use torus_engine::wire::{Wire, WireXy};
use torus_engine::Secp256k1;
use zeroize::Zeroizing;

use super::{observe, Action, BatchRun, Cx};
use crate::hexfmt::keccak256;
use crate::p2p::{Message, SendMsg};
use crate::tx::{digest, BatchId, DealHeader};

impl BatchRun {
    // ---- dealing ----

    /// Deals this batch (unless this node is blamed) from `stored`, the secret
    /// persisted for its start index. Without one, it draws a fresh secret and
    /// asks for it to be persisted ([`Action::PersistSeed`]); the driver deals
    /// again with it once it is stored, so nothing is sent before.
    pub fn deal(&mut self, cx: &mut Cx<'_>, stored: Option<Zeroizing<[u8; 32]>>) {
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
        let slices = match dealing.slices(cx.engine) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "slicing failed");
                return;
            }
        };
        observe(cx.metrics, self.batch, "deal", t0);
        let digest = digest::dealing_digest(&self.batch, self.me, &dealing.commitments);
        let cbytes = dealing.commitments.encode_xy();
        let mut msgs = Vec::with_capacity(slices.len());
        for slice in &slices {
            let to = slice.receiver;
            let slice_digest = match digest::send_slice_digest(&self.batch, self.me, slice) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot digest a slice: not dealing");
                    return;
                }
            };
            let header = DealHeader::sign(
                cx.key,
                self.batch,
                self.me,
                to,
                params.k,
                self.batch.count,
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
