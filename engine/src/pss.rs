//! Proactive resharing (spec §2) from an old committee (n, k, t) to a new one
//! (n', k', t'), for a batch of keys.
//!
//! - Dealer side: old node i deals its shares `(s_i, s'_i)` with a k' x k'
//!   bivariate sharing to the new committee ([`reshare_deal`]).
//! - New node: each old dealer's `C[0][0]` must equal the old commitment vector
//!   evaluated at the dealer's index, `sum_j i^j D_old[j]`
//!   ([`verify_reshare_secrets`], folded across the batch into one MSM).
//! - Combination over the decided old dealers Λ with Lagrange coefficients λ_i at
//!   0: `s_new = sum λ_i f_i(j, 0)`, `V[l] = sum λ_i C_i[l][0]` ([`reshare_combine`]).
//!   The public key `D[0]`'s G-part is unchanged; new shares are points of a fresh
//!   polynomial, so they do not combine with old ones.

use crate::avss::{
    bisect, culprits_from, deal, fresh_seed, weights, Commitments, Dealing, Fold, SendRef, Slice,
};
use crate::dkg::{combine_shares, KeyShares};
use crate::error::{Error, Result};
use crate::group::{Affine, Scalar, Suite};
use crate::params::Params;
use crate::poly::{lagrange_at_zero, powers};
use crate::Engine;

/// Old node `old.node` deals its shares of every key to the new committee.
pub fn reshare_deal<S: Suite>(
    engine: &Engine,
    new_params: Params,
    old: &KeyShares<S>,
    seed: [u8; 32],
) -> Result<Dealing<S>> {
    // The dealer index is the OLD index (it selects the Lagrange coefficient);
    // it only needs to be a valid x-coordinate, not a member of the new committee.
    let as_dealer = Params {
        n: new_params.n.max(old.node),
        ..new_params
    };
    let mut d = deal::<S>(
        engine,
        as_dealer,
        old.node,
        old.keys(),
        Some((old.shares(), old.blinding_shares())),
        seed,
    )?;
    d.params = new_params;
    Ok(d)
}

/// Checks, for every old dealer and key, that the sub-sharing's secret commitment
/// `C[0][0]` equals `sum_j i^j D_old[j]` (the dealer's old share commitment).
/// `old_commitments[key*k_old + j]` is the old commitment vector.
pub fn verify_reshare_secrets<S: Suite>(
    engine: &Engine,
    old_params: &Params,
    old_commitments: &[Affine<S>],
    dealings: &[(u32, &Commitments<S>)],
) -> Result<()> {
    let ko = old_params.ku();
    let keys = old_commitments.len() / ko.max(1);
    if old_commitments.len() != keys * ko {
        return Err(Error::LengthMismatch {
            what: "old commitment vectors",
            expected: keys * ko,
            got: old_commitments.len(),
        });
    }
    for (d, c) in dealings {
        old_params
            .check_index(*d)
            .map_err(|_| Error::UnknownDealer(*d))?;
        if c.keys() != keys {
            return Err(Error::MalformedSharing {
                dealer: *d,
                reason: format!("{} keys in the reshare, expected {keys}", c.keys()),
            });
        }
    }
    let items: Vec<(usize, usize)> = (0..dealings.len())
        .flat_map(|d| (0..keys).map(move |k| (d, k)))
        .collect();
    let check = |subset: &[(usize, usize)]| {
        let seed = fresh_seed();
        let mut fold = Fold::<S>::with_capacity(subset.len() * (ko + 1));
        let mut w = [Scalar::<S>::from(0u64)];
        for &(d, key) in subset {
            let Some((idx, c)) = dealings.get(d) else {
                continue;
            };
            let (Some(c00), Some(dv)) = (c.c00(key), old_commitments.get(key * ko..(key + 1) * ko))
            else {
                continue;
            };
            weights::<S>(&seed, (d * keys + key) as u64, &mut w);
            let [wt] = w;
            fold.points.push(*c00);
            fold.scalars.push(wt);
            for (p, ij) in dv
                .iter()
                .zip(powers(Scalar::<S>::from(u64::from(*idx)), ko))
            {
                // The point is negated, not the scalar (short scalars stay short).
                fold.points.push(S::neg_affine(p));
                fold.scalars.push(wt * ij);
            }
        }
        fold.holds(engine)
    };
    let bad = bisect(&items, &check);
    if bad.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(u32, usize)> = bad
        .iter()
        .filter_map(|(d, k)| dealings.get(*d).map(|x| (x.0, *k)))
        .collect();
    Err(Error::InvalidReshare(culprits_from(&pairs)))
}

/// New node `node` combines the verified sub-sharings of the decided old dealers
/// (their sends to it; `SendRef::dealer` is the OLD index) into its new shares and
/// the new commitment vectors. Needs at least `k_old` dealers.
pub fn reshare_combine<S: Suite>(
    engine: &Engine,
    old_params: &Params,
    new_params: &Params,
    node: u32,
    decided: &[SendRef<'_, S>],
) -> Result<KeyShares<S>> {
    new_params.check_index(node)?;
    if decided.len() < old_params.ku() {
        return Err(Error::NotEnoughDealers {
            need: old_params.ku(),
            got: decided.len(),
        });
    }
    let k = new_params.ku();
    let keys = decided.first().map_or(0, |s| s.commitments.keys());
    for d in decided {
        old_params
            .check_index(d.dealer)
            .map_err(|_| Error::UnknownDealer(d.dealer))?;
        let as_dealer = Params {
            n: new_params.n.max(d.dealer),
            ..*new_params
        };
        crate::avss::check_send_structure(&as_dealer, node, keys, d)?;
    }
    let idx: Vec<u32> = decided.iter().map(|d| d.dealer).collect();
    let lambda = lagrange_at_zero::<Scalar<S>>(&idx)?;
    let (s, sp) = combine_shares(decided, keys, &lambda);
    let cols: Vec<Vec<Affine<S>>> = decided.iter().map(|d| d.commitments.column0()).collect();
    let col_refs: Vec<&[Affine<S>]> = cols.iter().map(Vec::as_slice).collect();
    let v = engine.vartime_lincomb::<S>(&lambda, &col_refs)?;
    let commitments = S::batch_to_affine(&v);
    debug_assert_eq!(commitments.len(), keys * k);
    Ok(KeyShares {
        node,
        params: *new_params,
        s,
        sp,
        commitments,
    })
}

/// What new node `node` keeps beside its new shares so that a peer that lost its
/// own can rebuild them (the same role as the aggregated slice and the summed
/// commitments after a DKG): its slice of the combined sharing `sum λ_i f_i`
/// (constant time: secret) and that sharing's commitment matrices `sum λ_i C_i`
/// (variable time: public). Column 0 of the matrices is the new commitment
/// vector [`reshare_combine`] returns, and row 0 of the slice holds the new shares.
pub fn reshare_recovery<S: Suite>(
    engine: &Engine,
    new_params: &Params,
    node: u32,
    decided: &[SendRef<'_, S>],
) -> Result<(Slice<S>, Commitments<S>)> {
    new_params.check_index(node)?;
    let idx: Vec<u32> = decided.iter().map(|d| d.dealer).collect();
    let lambda = lagrange_at_zero::<Scalar<S>>(&idx)?;
    let slices: Vec<&Slice<S>> = decided.iter().map(|d| d.slice).collect();
    let slice = Slice::weighted_sum(node, &lambda, &slices)?;
    let mats: Vec<&Commitments<S>> = decided.iter().map(|d| d.commitments).collect();
    let commitments = Commitments::vartime_lincomb(engine, &lambda, &mats)?;
    Ok((slice, commitments))
}
