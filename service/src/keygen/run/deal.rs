//! Dealing: this node's sharing of the batch, from a persisted seed.

use std::time::Instant;

use rand_core::RngCore;
use torus_engine::avss;
use torus_engine::wire::{Wire, WireXy};
use torus_engine::{Params, Secp256k1};
use zeroize::Zeroizing;

use super::{observe, BatchRun, DealerFault, KeygenConfig};
use crate::hexfmt::keccak256;
use crate::node::NodeState;
use crate::p2p::{Message, P2pClient, SendMsg};
use crate::tx::{digest, BatchId, DealHeader};

impl BatchRun {
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
        // The stored secret is per start index; the dealing is bound to the whole batch id.
        let seed = dealing_seed(&seed, &self.batch);
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
            match avss::deal::<Secp256k1>(node.engine(), params, self.me, keys, None, *seed) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "dealing failed");
                    return;
                }
            };
        let mut slices = match dealing.slices(node.engine()) {
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
                avss::deal::<Secp256k1>(node.engine(), params, self.me, keys, None, alt_seed)
                    .ok()
                    .and_then(|d| d.slice(node.engine(), to).ok().map(|s| (to, d, s)))
            }
            _ => None,
        };
        if let DealerFault::CorruptRow(to) = self.fault {
            tracing::warn!(to, "TEST FAULT: corrupting a row");
            if let Some(s) = slices.get_mut((to as usize).wrapping_sub(1)) {
                s.corrupt_for_tests(0, false);
            }
        }
        observe(node, self.batch, "deal", t0);
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
                node.key(),
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
}

/// The seed of one dealing: the persisted secret of a start index bound to the whole batch
/// id (epoch, start, count). A restart re-deals the same batch exactly (the dealer never
/// signs two dealings of one batch), while a batch at the same start in another epoch, or
/// reopened with another size after a cancel, is a fresh dealing: the same polynomials are
/// never shown to a second committee, whose byzantine members could pool their rows with
/// the first one's.
fn dealing_seed(stored: &[u8; 32], batch: &BatchId) -> Zeroizing<[u8; 32]> {
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
