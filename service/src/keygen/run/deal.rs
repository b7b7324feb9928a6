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
use crate::tx::{digest, DealHeader};

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
