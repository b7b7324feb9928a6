//! Receiver side: batch verification of every dealer's send (spec §1
//! "verify-poly"), folded into one MSM with random weights (engine-design §1).
//!
//! For receiver i, dealer d and key κ, with 128-bit weights r_l and c_j:
//!   sum_l r_l (A[l]G + A'[l]H) + sum_j c_j (B[j]G + B'[j]H)
//!     == sum_{j,l} (r_l i^j + c_j i^l) C[j][l]
//! All (d, κ) are summed into one equation, checked by one MSM of
//! K*n*k^2 + 2 points whose scalars have about 128 + (k-1) log2(n) bits.

use std::collections::HashSet;

use ff::Field;

use super::{bisect, culprits_from, fresh_seed, weights, Commitments, Fold, Slice};
use crate::error::{Error, Result};
use crate::group::{Scalar, Suite};
use crate::params::Params;
use crate::poly::powers;
use crate::Engine;

/// A received `send`: one dealer's commitments and the slice addressed to us.
#[derive(Clone, Copy, Debug)]
pub struct SendRef<'a, S: Suite> {
    /// The dealer's 1-based index.
    pub dealer: u32,
    /// Its commitment matrices.
    pub commitments: &'a Commitments<S>,
    /// The slice for this receiver.
    pub slice: &'a Slice<S>,
}

impl<'a, S: Suite> SendRef<'a, S> {
    /// The send of `dealing`'s dealer carrying `slice`.
    pub fn new(dealing: &'a super::Dealing<S>, slice: &'a Slice<S>) -> Self {
        SendRef {
            dealer: dealing.dealer,
            commitments: &dealing.commitments,
            slice,
        }
    }
}

/// Structural checks of one send before any arithmetic: the dealer is in the
/// committee, every matrix is exactly k x k with no identity entry, the slice is
/// addressed to `receiver`, and lengths agree with the batch size `keys`.
pub fn check_send_structure<S: Suite>(
    params: &Params,
    receiver: u32,
    keys: usize,
    send: &SendRef<'_, S>,
) -> Result<()> {
    let d = send.dealer;
    if d == 0 || d > params.n {
        return Err(Error::UnknownDealer(d));
    }
    let k = params.ku();
    let c = send.commitments;
    let bad = |reason: String| Err(Error::MalformedSharing { dealer: d, reason });
    if c.k != k {
        return bad(format!(
            "commitment matrix is {0}x{0}, expected {k}x{k}",
            c.k
        ));
    }
    if c.points.len() != keys * k * k {
        return bad(format!(
            "{} commitment points, expected {}",
            c.points.len(),
            keys * k * k
        ));
    }
    if let Some(pos) = c.points.iter().position(S::is_identity) {
        return Err(Error::IdentityCommitment {
            dealer: d,
            key: pos / (k * k),
            entry: pos % (k * k),
        });
    }
    let s = send.slice;
    if s.receiver != receiver {
        return bad(format!("slice addressed to {}, not {receiver}", s.receiver));
    }
    if s.k != k
        || [s.a.len(), s.ap.len(), s.b.len(), s.bp.len()]
            .iter()
            .any(|l| *l != keys * k)
    {
        return bad(format!(
            "slice polynomials of wrong length (k = {}, keys = {})",
            s.k,
            s.keys()
        ));
    }
    Ok(())
}

/// Verifies the sends of many dealers for one batch at receiver `receiver`.
///
/// Structural problems are reported first (typed, naming the dealer). Then one
/// folded MSM checks everything; if it fails, bisection by dealer and then by key
/// names every culprit in [`Error::InvalidSend`]. Dealers not named are good.
pub fn verify_sends<S: Suite>(
    engine: &Engine,
    params: &Params,
    receiver: u32,
    sends: &[SendRef<'_, S>],
) -> Result<()> {
    params.check_index(receiver)?;
    let keys = sends.first().map_or(0, |s| s.commitments.keys());
    let mut seen = HashSet::new();
    for s in sends {
        if !seen.insert(s.dealer) {
            return Err(Error::DuplicateDealer(s.dealer));
        }
        check_send_structure(params, receiver, keys, s)?;
    }
    let items: Vec<(usize, usize)> = (0..sends.len())
        .flat_map(|d| (0..keys).map(move |k| (d, k)))
        .collect();
    let ip = powers(Scalar::<S>::from(u64::from(receiver)), params.ku());
    let check =
        |subset: &[(usize, usize)]| fold_sends(engine, &ip, sends, subset, keys).holds(engine);
    let bad = bisect(&items, &check);
    if bad.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(u32, usize)> = bad
        .iter()
        .filter_map(|(d, k)| sends.get(*d).map(|s| (s.dealer, *k)))
        .collect();
    Err(Error::InvalidSend(culprits_from(&pairs)))
}

/// Folds the row and column equations of the given (send, key) items.
fn fold_sends<S: Suite>(
    engine: &Engine,
    ip: &[Scalar<S>],
    sends: &[SendRef<'_, S>],
    items: &[(usize, usize)],
    keys: usize,
) -> Fold<S> {
    let k = ip.len();
    let kk = k * k;
    let seed = fresh_seed();
    const CHUNK: usize = 32;
    let parts = engine.map(items.len().div_ceil(CHUNK), |c| {
        let mut fold = Fold::<S>::with_capacity(CHUNK * kk);
        let mut w = vec![Scalar::<S>::ZERO; 2 * k];
        for &(d, key) in items.iter().skip(c * CHUNK).take(CHUNK) {
            let Some(send) = sends.get(d) else { continue };
            weights::<S>(&seed, (d * keys + key) as u64, &mut w);
            let (r, cw) = w.split_at(k);
            let (a, ap) = send.slice.row(key);
            let (b, bp) = send.slice.column(key);
            for l in 0..k {
                let (Some(rl), Some(al), Some(apl)) = (r.get(l), a.get(l), ap.get(l)) else {
                    continue;
                };
                fold.g += *rl * al;
                fold.h += *rl * apl;
            }
            for j in 0..k {
                let (Some(cj), Some(bj), Some(bpj)) = (cw.get(j), b.get(j), bp.get(j)) else {
                    continue;
                };
                fold.g += *cj * bj;
                fold.h += *cj * bpj;
            }
            let m = send.commitments.matrix(key);
            for (e, p) in m.iter().enumerate() {
                let (j, l) = (e / k, e % k);
                let (Some(rl), Some(ij), Some(cj), Some(il)) =
                    (r.get(l), ip.get(j), cw.get(j), ip.get(l))
                else {
                    continue;
                };
                fold.points.push(*p);
                fold.scalars.push(*rl * ij + *cj * il);
            }
        }
        fold
    });
    let mut all = Fold::<S>::with_capacity(items.len() * kk);
    for p in parts {
        all.append(p);
    }
    all
}
