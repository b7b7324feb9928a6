//! Batch-affine rounds over one chunk: the scalar `Fe` path, the IFMA lanes, the
//! careful last round and the fallback.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use k256::elliptic_curve::ops::MulByGenerator;
use k256::{ProjectivePoint, Scalar};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

use super::h_affine;
use super::scan::{lookup_raw, recode};
use super::tables::{entry52, BaseTable, Entry, Tables};
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::ifma::{Entry52, Fe8Mem, FixedScratch, Ifma};
use crate::backend::secp256k1::point::Affine;

/// Scratch space for one chunk.
pub(super) struct Work {
    /// accumulators (weakly reduced `Fe`)
    pub(super) acc: Vec<Entry>,
    /// the points being added this round
    tsel: Vec<Entry>,
    /// prefix products of the denominators
    pub(super) prefix: Vec<Fe>,
    /// the denominators (zero ones replaced by one in careful mode)
    den: Vec<Fe>,
    /// 1 where an exceptional case was met (see module docs)
    pub(super) flags: Vec<u8>,
}

impl Work {
    pub(super) fn new(n: usize, start: Entry) -> Self {
        Work {
            acc: vec![start; n],
            tsel: vec![Entry::ZERO; n],
            prefix: vec![Fe::ZERO; n],
            den: vec![Fe::ZERO; n],
            flags: vec![0u8; n],
        }
    }

    /// One batch-affine round: `acc[i] += tsel[i]` for all i.
    /// `last`: careful mode always on, zero denominators mean identity output.
    /// Returns the per-element infinity choices only through `inf` (when `last`).
    fn add_round(&mut self, last: bool, inf: &mut [u8]) {
        let n = self.acc.len();
        if n == 0 {
            return;
        }
        let ok = self.prefix_products(last, inf);
        if !ok {
            // Zero batch product: only after a discrete-log relation (module docs).
            let _ = self.prefix_products(true, inf);
        }
        self.finish_round();
    }

    /// Computes prefix products of the denominators. In careful mode, zero
    /// denominators are replaced by one (in constant time) and flagged. Returns
    /// false iff the total product is zero.
    fn prefix_products(&mut self, careful: bool, inf: &mut [u8]) -> bool {
        let mut run = Fe::ONE;
        #[allow(clippy::indexing_slicing)] // all slices have length n
        for i in 0..self.acc.len() {
            let a = &self.acc[i];
            let t = &self.tsel[i];
            let mut dx = t.x.sub(&a.x);
            if careful {
                let z = dx.is_zero();
                let dy_zero = t.y.sub(&a.y).is_zero();
                dx = Fe::conditional_select(&dx, &Fe::ONE, z);
                if let Some(f) = inf.get_mut(i) {
                    // last round: x equal, y different => the sum is the identity
                    *f = (z & !dy_zero).unwrap_u8();
                    self.flags[i] |= (z & dy_zero).unwrap_u8();
                } else {
                    self.flags[i] |= z.unwrap_u8();
                }
            }
            run = run.mul(&dx);
            self.prefix[i] = run;
            self.den[i] = dx;
        }
        !bool::from(run.is_zero())
    }

    fn finish_round(&mut self) {
        let n = self.acc.len();
        let Some(last) = self.prefix.last() else {
            return;
        };
        let mut inv = last.invert();
        #[allow(clippy::indexing_slicing)] // i < n, i - 1 < n for i > 0
        for i in (0..n).rev() {
            let a = self.acc[i];
            let t = self.tsel[i];
            let dx = self.den[i];
            let inv_i = if i > 0 {
                inv.mul(&self.prefix[i - 1])
            } else {
                inv
            };
            inv = inv.mul(&dx);
            let dy = t.y.sub(&a.y);
            let lambda = dy.mul(&inv_i);
            let x3 = lambda.square().sub(&a.x.add(&t.x));
            let y3 = lambda.mul(&a.x.sub(&x3)).sub(&a.y);
            self.acc[i] = Entry { x: x3, y: y3 };
        }
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        self.acc.zeroize();
        self.tsel.zeroize();
        self.prefix.zeroize();
        self.den.zeroize();
    }
}

/// Which bases a batch uses.
#[derive(Clone, Copy)]
pub(super) enum Bases {
    G,
    H,
    GH,
}

impl Bases {
    /// Whether both `G` and `H` are used (a commitment).
    pub(super) fn two(self) -> bool {
        matches!(self, Bases::GH)
    }

    /// Table rounds per element with window width `W` (the offset's round aside).
    pub(super) fn rounds<const W: usize>(self) -> usize {
        if self.two() {
            2 * Tables::<W>::WINDOWS
        } else {
            Tables::<W>::WINDOWS
        }
    }
}

/// Recodes the scalars of a chunk: `digits[k * stride + i]` is the code of round
/// `k` for element `i` (`stride >= n`; padding elements keep code 0).
pub(super) fn recode_chunk<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    n: usize,
    stride: usize,
) -> Vec<u8> {
    let m = Tables::<W>::WINDOWS;
    let two = bases.two();
    let rounds = bases.rounds::<W>();
    let mut digits = vec![0u8; rounds * stride];
    for (i, s) in a.iter().take(n).enumerate() {
        #[allow(clippy::indexing_slicing)] // i < n <= stride
        recode::<W>(t, s, &mut digits[i..], stride);
    }
    if two {
        for (i, s) in b.iter().take(n).enumerate() {
            #[allow(clippy::indexing_slicing)] // m*stride + i < 2*m*stride
            recode::<W>(t, s, &mut digits[m * stride + i..], stride);
        }
    }
    digits
}

/// The window table of round `k`.
pub(super) fn round_table<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    k: usize,
) -> (&BaseTable, usize) {
    let m = Tables::<W>::WINDOWS;
    match bases {
        Bases::G => (&t.g, k),
        Bases::H => (&t.h, k),
        Bases::GH if k < m => (&t.g, k),
        Bases::GH => (&t.h, k - m),
    }
}

/// The chunk in eight IFMA lanes. Returns false (and leaves `out` to the
/// caller's scalar path) only if a round met a zero batch product, an event of
/// negligible probability (module docs).
pub(super) fn run_chunk_ifma<const W: usize>(
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
    let groups = n.div_ceil(8);
    let stride = groups * 8;
    let per = Tables::<W>::ENTRIES;
    let rounds = bases.rounds::<W>();
    let mut digits = recode_chunk::<W>(t, bases, a, b, n, stride);
    let tables: Vec<&[Entry52]> = (0..rounds)
        .map(|k| {
            let (tab, w) = round_table::<W>(t, bases, k);
            tab.raw52.get(w * per..(w + 1) * per).unwrap_or(&[])
        })
        .collect();
    let start = entry52(&t.offset);
    let mut ax = vec![Fe8Mem::default(); groups];
    let mut ay = vec![Fe8Mem::default(); groups];
    for (gx, gy) in ax.iter_mut().zip(ay.iter_mut()) {
        for i in 0..5 {
            #[allow(clippy::indexing_slicing)] // i < 5, 5 + i < 10
            {
                gx.0[i] = [start[i]; 8];
                gy.0[i] = [start[5 + i]; 8];
            }
        }
    }
    let mut scratch = FixedScratch::default();
    let ok = ifma.fixed_base_rounds(&tables, &digits, &mut ax, &mut ay, &mut scratch);
    digits.zeroize();
    if !ok {
        zeroize_lanes(&mut ax);
        zeroize_lanes(&mut ay);
        return false;
    }
    let mut inf = vec![0u8; stride];
    let mut flags = vec![0u8; stride];
    let neg = entry52(&t.neg_offset);
    let ok = ifma.fixed_base_last_round(&neg, &mut ax, &mut ay, &mut inf, &mut flags, &mut scratch);
    if !ok {
        zeroize_lanes(&mut ax);
        zeroize_lanes(&mut ay);
        return false;
    }
    for (i, o) in out.iter_mut().enumerate() {
        let (g, j) = (i / 8, i % 8);
        let limbs = |v: &[Fe8Mem]| -> [u64; 5] {
            v.get(g).map_or([0; 5], |e| {
                core::array::from_fn(|l| e.0.get(l).and_then(|x| x.get(j)).copied().unwrap_or(0))
            })
        };
        let zc = Choice::from(inf.get(i).copied().unwrap_or(0));
        *o = Affine {
            x: Fe::conditional_select(&Fe::from_limbs52(&limbs(&ax)).normalize(), &Fe::ZERO, zc),
            y: Fe::conditional_select(&Fe::from_limbs52(&limbs(&ay)).normalize(), &Fe::ZERO, zc),
            infinity: bool::from(zc),
        };
    }
    zeroize_lanes(&mut ax);
    zeroize_lanes(&mut ay);
    inf.zeroize();
    fallback_flagged(bases, a, b, out, flags.get(..n).unwrap_or(&[]));
    true
}

fn zeroize_lanes(v: &mut [Fe8Mem]) {
    for e in v.iter_mut() {
        for l in e.0.iter_mut() {
            l.zeroize();
        }
    }
}

/// Recomputes the flagged outputs with k256's complete arithmetic (events of
/// negligible probability, see the module docs).
pub(super) fn fallback_flagged(
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
    flags: &[u8],
) {
    let any = flags.iter().fold(0u8, |x, &f| x | f);
    if any != 0 {
        let hp = h_affine().to_projective();
        for (i, (o, &f)) in out.iter_mut().zip(flags).enumerate() {
            if f != 0 {
                let sa = a.get(i).copied().unwrap_or(Scalar::ZERO);
                let sb = b.get(i).copied().unwrap_or(Scalar::ZERO);
                let p = match bases {
                    Bases::G => ProjectivePoint::mul_by_generator(&sa),
                    Bases::H => hp * sa,
                    Bases::GH => ProjectivePoint::mul_by_generator(&sa) + hp * sb,
                };
                *o = Affine::from_projective(&p);
            }
        }
    }
}

/// The chunk on the scalar `Fe`.
pub(super) fn run_chunk_scalar<const W: usize>(
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
    // digits[k * n + i]: code of round k for element i
    let mut digits = recode_chunk::<W>(t, bases, a, b, n, n);
    let mut work = Work::new(n, t.offset);
    for k in 0..rounds {
        let (tab, w) = round_table::<W>(t, bases, k);
        #[allow(clippy::indexing_slicing)] // w < m, k < rounds
        {
            let codes = &digits[k * n..(k + 1) * n];
            let table = &tab.raw[w * per..(w + 1) * per];
            for (ts, &c) in work.tsel.iter_mut().zip(codes) {
                *ts = lookup_raw(table, c);
            }
        }
        work.add_round(false, &mut []);
    }
    digits.zeroize();
    finish_chunk::<W>(t, bases, a, b, out, &mut work);
}

/// The last round (`acc += -R`, careful mode), the outputs, and the fallback
/// for flagged elements.
pub(super) fn finish_chunk<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
    work: &mut Work,
) {
    let n = out.len();
    for ts in work.tsel.iter_mut() {
        *ts = t.neg_offset;
    }
    let mut inf = vec![0u8; n];
    work.add_round(true, &mut inf);
    for ((o, acc), &z) in out.iter_mut().zip(&work.acc).zip(&inf) {
        let zc = Choice::from(z);
        *o = Affine {
            x: Fe::conditional_select(&acc.x.normalize(), &Fe::ZERO, zc),
            y: Fe::conditional_select(&acc.y.normalize(), &Fe::ZERO, zc),
            infinity: bool::from(zc),
        };
    }
    inf.zeroize();
    // Fallback for events of negligible probability (see module docs).
    fallback_flagged(bases, a, b, out, &work.flags);
}
