//! Small batches: the same rounds in constant-time Jacobian coordinates, one
//! shared inversion at the end.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use k256::Scalar;
use subtle::ConditionallySelectable;
use zeroize::Zeroize;

use super::chunk::{finish_chunk, recode_chunk, round_table, Bases, Work};
use super::scan::lookup_raw;
use super::tables::{Entry, Tables};
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::point::Affine;

/// A Jacobian point of the small-batch paths.
#[derive(Clone, Copy)]
pub(super) struct JacCt {
    pub(super) x: Fe,
    pub(super) y: Fe,
    pub(super) z: Fe,
}

impl Zeroize for JacCt {
    fn zeroize(&mut self) {
        self.x.zeroize();
        self.y.zeroize();
        self.z.zeroize();
    }
}

/// `p + q` (`q` affine) by the formulas `madd-2007-bl` (a = 0), 7M + 4S, with
/// no branch: constant time. They fail only when `p = +-q` (then `z3 = 0`),
/// which the offset point rules out except after a discrete-log relation; the
/// caller flags a zero `z` at the end.
#[inline]
fn madd_ct(p: &JacCt, q: &Entry) -> JacCt {
    let z1z1 = p.z.square();
    let u2 = q.x.mul(&z1z1);
    let s2 = q.y.mul(&p.z).mul(&z1z1);
    let h = u2.sub(&p.x);
    let hh = h.square();
    let i = hh.double().double();
    let j = h.mul(&i);
    let r = s2.sub(&p.y).double();
    let v = p.x.mul(&i);
    let x3 = r.square().sub(&j).sub(&v.double());
    let y3 = r.mul(&v.sub(&x3)).sub(&p.y.mul(&j).double());
    let z3 = p.z.add(&h).square().sub(&z1z1).sub(&hh);
    JacCt {
        x: x3,
        y: y3,
        z: z3,
    }
}

/// A small chunk (`n < SMALL_BATCH`): the same rounds, each element on its own
/// in Jacobian coordinates (no per-round inversion), then one shared inversion
/// to affine and the careful last round of the batch path. Constant time.
pub(super) fn run_chunk_small<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let per = Tables::<W>::ENTRIES;
    let rounds = bases.rounds::<W>();
    let mut digits = recode_chunk::<W>(t, bases, a, b, n, n);
    let start = JacCt {
        x: t.offset.x,
        y: t.offset.y,
        z: Fe::ONE,
    };
    let mut acc = vec![start; n];
    for k in 0..rounds {
        let (tab, w) = round_table::<W>(t, bases, k);
        #[allow(clippy::indexing_slicing)] // w < WINDOWS, k < rounds
        {
            let codes = &digits[k * n..(k + 1) * n];
            let table = &tab.raw[w * per..(w + 1) * per];
            for (p, &c) in acc.iter_mut().zip(codes) {
                let mut q = lookup_raw(table, c);
                *p = madd_ct(p, &q);
                q.zeroize();
            }
        }
    }
    digits.zeroize();
    // A zero z (only after a discrete-log relation) is flagged for the fallback.
    let mut work = Work::new(n, t.offset);
    to_affine(&mut acc, &mut work.acc, &mut work.flags);
    acc.zeroize();
    finish_chunk::<W>(t, bases, a, b, out, &mut work);
}

/// The affine `(x, y)` of every Jacobian point into `out`, with one shared
/// inversion; constant time. A zero `z` (the identity, or a formula's
/// exceptional case) is first replaced by 1, so that the product stays
/// invertible, and reported with a 1 in `zero`: that point's output is
/// meaningless and the caller discards or recomputes it.
pub(super) fn to_affine(points: &mut [JacCt], out: &mut [Entry], zero: &mut [u8]) {
    let n = points.len().min(out.len()).min(zero.len());
    let mut prefix = vec![Fe::ONE; n];
    let mut run = Fe::ONE;
    for ((p, pre), flag) in points
        .iter_mut()
        .zip(prefix.iter_mut())
        .zip(zero.iter_mut())
    {
        let z0 = p.z.is_zero();
        *flag |= z0.unwrap_u8();
        p.z = Fe::conditional_select(&p.z, &Fe::ONE, z0);
        run = run.mul(&p.z);
        *pre = run;
    }
    let mut inv = run.invert();
    for i in (0..n).rev() {
        let (Some(p), Some(o)) = (points.get(i), out.get_mut(i)) else {
            continue;
        };
        let zi = match i.checked_sub(1).and_then(|j| prefix.get(j)) {
            Some(pre) => inv.mul(pre),
            None => inv,
        };
        inv = inv.mul(&p.z);
        let zi2 = zi.square();
        *o = Entry {
            x: p.x.mul(&zi2),
            y: p.y.mul(&zi2.mul(&zi)),
        };
    }
    prefix.zeroize();
    inv.zeroize();
    run.zeroize();
}
