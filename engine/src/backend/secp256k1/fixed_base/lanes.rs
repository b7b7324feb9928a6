//! Small batches on the IFMA lanes: each element's rounds spread over the eight
//! lanes, so that one multiplication takes `ceil(rounds / 8)` sequential
//! additions instead of `rounds`.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! A commitment has 86 rounds (43 windows of `G`, 43 of `H`). Round `k` goes to
//! lane `k mod 8` as its step `k / 8`: eleven steps of eight mixed Jacobian
//! additions (one per lane, each lane scanning its own window table), then a
//! tree of three Jacobian additions sums the lanes, then one mixed addition
//! removes the lanes' public starting points, and one inversion per batch
//! (shared by its elements) returns to affine.
//!
//! # Exceptional cases
//!
//! Lane `l` starts at a hash-derived point `S_l`; a slot of the last step past
//! the last round adds another hash-derived point `P_l`. Every lane accumulator
//! is therefore `S_l + aG + bH` and every point added to it is `cG`, `cH` or
//! `P_l`, and two lane sums meeting in the tree are `S_l + ... = +-(S_m + ...)`:
//! an equality anywhere is an explicit relation between hash-derived points
//! and `G`, `H` (a discrete logarithm), as for the batch path's offset point
//! (see `fixed_base`). The correction `C = -(sum S_l + sum P_l)` meets the lanes'
//! sum `-C + s` with equal x only when `s = O` (the output is the identity,
//! flagged `inf`) or `s = -2C` (a discrete-log relation, flagged): both are
//! detected in constant time, and flagged outputs are recomputed with k256's
//! complete arithmetic, as on the other paths.
//!
//! # Constant time
//!
//! The digits are the batch path's (`recode`); each step scans every entry of
//! each lane's table under a compare mask; the additions are fixed instruction
//! sequences; the identity output is a constant-time selection. The only
//! branch on secret-derived data is the fallback for a flagged output.

use k256::Scalar;
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

use super::chunk::{fallback_flagged, recode_chunk, round_table, Bases};
use super::small::{to_affine, JacCt};
use super::tables::{Entry, RawEntry, Tables};
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::ifma::{Ifma, LanesSum};
use crate::backend::secp256k1::point::Affine;

/// Batches below this size take the lane path where the CPU has IFMA. Measured
/// with `small_batch_timing` (2-core Zen 4): this path costs 6.2 us per
/// commitment from 8 elements up (9.6 us for one alone, its inversion
/// unshared); the batch-affine lanes, whose 87 shared inversions are spread
/// over the batch, cost 6.7 us at 64 elements and 5.2 us at 96.
pub const LANES_BELOW: usize = 72;

/// `out[i] = a[i] * G`, `b[i] * H` or `a[i] * G + b[i] * H` (per `bases`) on the
/// lanes. Returns false, with nothing written, only when the kernel refuses
/// the shapes (a bug; the caller then takes another path).
pub(super) fn run_chunk_lanes<const W: usize>(
    ifma: Ifma,
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
) -> bool {
    let n = out.len();
    if n == 0 {
        return true;
    }
    let per = Tables::<W>::ENTRIES;
    let two = bases.two();
    let rounds = bases.rounds::<W>();
    let slots_len = rounds.div_ceil(8) * 8;
    let slots: Vec<&[RawEntry]> = (0..slots_len)
        .map(|k| {
            if k < rounds {
                let (tab, w) = round_table::<W>(t, bases, k);
                tab.raw.get(w * per..(w + 1) * per).unwrap_or(&[])
            } else {
                t.lanes
                    .pad
                    .get(k % 8)
                    .map_or(&[][..], core::slice::from_ref)
            }
        })
        .collect();
    let corr = if two {
        &t.lanes.corr_two
    } else {
        &t.lanes.corr_one
    };
    let mut digits = recode_chunk::<W>(t, bases, a, b, n, n);
    let mut codes = vec![0u8; slots_len];
    let mut sums: Vec<LanesSum> = Vec::with_capacity(n);
    for i in 0..n {
        for (k, c) in codes.iter_mut().take(rounds).enumerate() {
            *c = digits.get(k * n + i).copied().unwrap_or(0);
        }
        match ifma.fixed_base_lanes(&slots, &codes, &t.lanes.start, corr) {
            Some(s) => sums.push(s),
            None => {
                digits.zeroize();
                codes.zeroize();
                sums.zeroize();
                return false;
            }
        }
    }
    digits.zeroize();
    codes.zeroize();
    // To affine with one shared inversion. The z of an identity or a flagged
    // output is zero (the kernel's formulas make it so) and is replaced by 1.
    let mut jac: Vec<JacCt> = sums
        .iter()
        .map(|s| JacCt {
            x: s.x,
            y: s.y,
            z: s.z,
        })
        .collect();
    let mut aff = vec![Entry::ZERO; n];
    let mut zero = vec![0u8; n];
    to_affine(&mut jac, &mut aff, &mut zero);
    let mut flags = vec![0u8; n];
    for (((o, e), s), f) in out.iter_mut().zip(&aff).zip(&sums).zip(flags.iter_mut()) {
        let id = Choice::from(s.inf);
        *o = Affine {
            x: Fe::conditional_select(&e.x.normalize(), &Fe::ZERO, id),
            y: Fe::conditional_select(&e.y.normalize(), &Fe::ZERO, id),
            infinity: bool::from(id),
        };
        *f = s.flag;
    }
    jac.zeroize();
    aff.zeroize();
    sums.zeroize();
    fallback_flagged(bases, a, b, out, &flags);
    true
}
