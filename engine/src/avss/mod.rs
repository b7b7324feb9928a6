//! Batched bivariate AVSS with Pedersen commitments (spec section 1; Cachin,
//! Kursawe, Lysyanskaya, Strobl 2002), for K keys at once.
//!
//! A dealer samples, per key, two k x k coefficient matrices `f`, `f'` and
//! commits `C[j][l] = f[j][l]*G + f'[j][l]*H` in constant time. Receiver `i`
//! gets the row `a_i(y) = f(i, y)` and column `b_i(x) = f(x, i)` (and primes).
//!
//! Layout: everything is flat and key-major. A batch of K matrices is
//! `points[key*k*k + j*k + l]`; a batch of K slices is `a[key*k + l]`.

mod deal;
mod points;
mod verify;

pub use deal::{deal, deal_with_coefficients, Dealing, SecretPair};
pub use points::{
    check_points_with_slice, echo_points, recover_slice, verify_points, ExpectedPoints, PointMsg,
};
pub use verify::{check_send_structure, verify_sends, SendRef};

use ff::PrimeField;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::group::{Affine, Scalar, Suite};
use crate::secret::SecretVec;

/// One dealer's public commitment matrices for a batch of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitments<S: Suite> {
    pub(crate) k: usize,
    pub(crate) points: Vec<Affine<S>>,
}

impl<S: Suite> Commitments<S> {
    /// Builds from `keys * k * k` points; rejects other lengths and identity entries.
    pub fn from_points(dealer: u32, k: usize, points: Vec<Affine<S>>) -> Result<Self> {
        let kk = k * k;
        if k == 0 || !points.len().is_multiple_of(kk) {
            return Err(Error::MalformedSharing {
                dealer,
                reason: format!(
                    "{} commitment points is not a multiple of k*k = {kk}",
                    points.len()
                ),
            });
        }
        if let Some(pos) = points.iter().position(S::is_identity) {
            return Err(Error::IdentityCommitment {
                dealer,
                key: pos / kk,
                entry: pos % kk,
            });
        }
        Ok(Commitments { k, points })
    }

    /// Matrix size k (rows = columns = k).
    pub fn k(&self) -> usize {
        self.k
    }
    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.points.len().checked_div(self.k * self.k).unwrap_or(0)
    }
    /// All points, key-major.
    pub fn points(&self) -> &[Affine<S>] {
        &self.points
    }
    /// The k*k matrix of one key, row-major (`[j*k + l]`).
    pub fn matrix(&self, key: usize) -> &[Affine<S>] {
        let kk = self.k * self.k;
        self.points.get(key * kk..(key + 1) * kk).unwrap_or(&[])
    }
    /// `C[0][0]` of one key: the commitment to the dealer's secret.
    pub fn c00(&self, key: usize) -> Option<&Affine<S>> {
        self.matrix(key).first()
    }
    /// The entry-wise sum of several dealers' matrices (the commitments of the
    /// summed sharing, as a recovering node checks points against). Every input
    /// must have the same k and key count; at least one is needed.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Commitments<S>>) -> Result<Self>
    where
        S: 'a,
    {
        let mut it = all.into_iter();
        let Some(first) = it.next() else {
            return Err(Error::TooFewPoints { need: 1, got: 0 });
        };
        let k = first.k;
        let mut acc: Vec<crate::group::Point<S>> =
            first.points.iter().map(S::from_affine).collect();
        for c in it {
            if c.k != k || c.points.len() != acc.len() {
                return Err(Error::LengthMismatch {
                    what: "commitments to sum",
                    expected: acc.len(),
                    got: c.points.len(),
                });
            }
            for (a, p) in acc.iter_mut().zip(&c.points) {
                *a += S::from_affine(p);
            }
        }
        Commitments::from_points(0, k, S::batch_to_affine(&acc))
    }
    /// [`Commitments::sum`] in variable time, for PUBLIC matrices (decided dealers'
    /// commitments): batch-affine additions sharing one inversion per chunk of
    /// entries, in parallel over chunks. Same result and errors as `sum`.
    pub fn vartime_sum(engine: &crate::Engine, all: &[&Commitments<S>]) -> Result<Self> {
        let Some(first) = all.first() else {
            return Err(Error::TooFewPoints { need: 1, got: 0 });
        };
        let (k, len) = (first.k, first.points.len());
        if let Some(c) = all.iter().find(|c| c.k != k || c.points.len() != len) {
            return Err(Error::LengthMismatch {
                what: "commitments to sum",
                expected: len,
                got: c.points.len(),
            });
        }
        let mut sums = vec![Affine::<S>::default(); len];
        const CHUNK: usize = 1024;
        engine.chunks_mut(&mut sums, CHUNK, |c, out| {
            let lo = c * CHUNK;
            let cols: Vec<&[Affine<S>]> = all
                .iter()
                .map(|m| m.points.get(lo..lo + out.len()).unwrap_or(&[]))
                .collect();
            S::vartime_sum_columns(&cols, out.len(), |i, p| {
                if let Some(o) = out.get_mut(i) {
                    *o = p;
                }
            });
        });
        Commitments::from_points(0, k, sums)
    }
    /// `sum_i w_i C_i` entry-wise, in variable time, for PUBLIC matrices: the
    /// commitments of a weighted sum of sharings (resharing combines the old
    /// dealers' sub-sharings with Lagrange weights). Every input must have the same
    /// k and key count; at least one is needed.
    pub fn vartime_lincomb(
        engine: &crate::Engine,
        weights: &[Scalar<S>],
        all: &[&Commitments<S>],
    ) -> Result<Self> {
        let Some(first) = all.first() else {
            return Err(Error::TooFewPoints { need: 1, got: 0 });
        };
        if let Some(c) = all.iter().find(|c| c.k != first.k) {
            return Err(Error::LengthMismatch {
                what: "commitment matrix size",
                expected: first.k,
                got: c.k,
            });
        }
        let cols: Vec<&[Affine<S>]> = all.iter().map(|c| c.points.as_slice()).collect();
        let v = engine.vartime_lincomb::<S>(weights, &cols)?;
        Commitments::from_points(0, first.k, S::batch_to_affine(&v))
    }
    /// Column 0 (`C[j][0]` for j in 0..k) of every key, key-major: the Pedersen
    /// commitment vector of `f(x, 0)`.
    pub fn column0(&self) -> Vec<Affine<S>> {
        let k = self.k;
        self.points
            .iter()
            .enumerate()
            .filter(|(i, _)| i % k == 0)
            .map(|(_, p)| *p)
            .collect()
    }
}

/// One key's row (or column) coefficients and their blinding partners, `(a, a')`.
pub type Coefficients<'a, S> = (&'a [Scalar<S>], &'a [Scalar<S>]);

/// The row and column slices one dealer sends to one receiver, for a batch. Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice<S: Suite> {
    /// The receiver's 1-based index.
    pub receiver: u32,
    pub(crate) k: usize,
    /// `a[key*k + l]`: coefficients of `a_i(y) = f(i, y)`.
    pub(crate) a: SecretVec<Scalar<S>>,
    /// Coefficients of `a'_i(y)`.
    pub(crate) ap: SecretVec<Scalar<S>>,
    /// `b[key*k + j]`: coefficients of `b_i(x) = f(x, i)`.
    pub(crate) b: SecretVec<Scalar<S>>,
    /// Coefficients of `b'_i(x)`.
    pub(crate) bp: SecretVec<Scalar<S>>,
}

impl<S: Suite> Slice<S> {
    /// Builds a slice from its four coefficient vectors (each `keys * k` long).
    pub fn from_parts(
        receiver: u32,
        k: usize,
        a: Vec<Scalar<S>>,
        ap: Vec<Scalar<S>>,
        b: Vec<Scalar<S>>,
        bp: Vec<Scalar<S>>,
    ) -> Result<Self> {
        let len = a.len();
        for (what, v) in [("a'", &ap), ("b", &b), ("b'", &bp)] {
            if v.len() != len {
                return Err(Error::LengthMismatch {
                    what,
                    expected: len,
                    got: v.len(),
                });
            }
        }
        if k == 0 || !len.is_multiple_of(k) {
            return Err(Error::LengthMismatch {
                what: "slice length (multiple of k)",
                expected: k,
                got: len,
            });
        }
        Ok(Slice {
            receiver,
            k,
            a: SecretVec::new(a),
            ap: SecretVec::new(ap),
            b: SecretVec::new(b),
            bp: SecretVec::new(bp),
        })
    }
    /// Polynomial length k.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.a.len().checked_div(self.k).unwrap_or(0)
    }
    /// Row coefficients `a` and `a'` of one key.
    pub fn row(&self, key: usize) -> (&[Scalar<S>], &[Scalar<S>]) {
        let r = key * self.k..(key + 1) * self.k;
        (
            self.a.get(r.clone()).unwrap_or(&[]),
            self.ap.get(r).unwrap_or(&[]),
        )
    }
    /// Column coefficients `b` and `b'` of one key.
    pub fn column(&self, key: usize) -> (&[Scalar<S>], &[Scalar<S>]) {
        let r = key * self.k..(key + 1) * self.k;
        (
            self.b.get(r.clone()).unwrap_or(&[]),
            self.bp.get(r).unwrap_or(&[]),
        )
    }
    /// As [`Slice::row`], with an error for a key beyond the batch (instead of
    /// empty slices).
    pub fn try_row(&self, key: usize) -> Result<Coefficients<'_, S>> {
        self.check_key(key)?;
        Ok(self.row(key))
    }
    /// As [`Slice::column`], with an error for a key beyond the batch (instead of
    /// empty slices).
    pub fn try_column(&self, key: usize) -> Result<Coefficients<'_, S>> {
        self.check_key(key)?;
        Ok(self.column(key))
    }
    fn check_key(&self, key: usize) -> Result<()> {
        if key >= self.keys() {
            return Err(Error::KeyOutOfRange {
                key,
                keys: self.keys(),
            });
        }
        Ok(())
    }
    /// The sum of several dealers' slices for one receiver: the receiver's slice of
    /// the summed sharing (its aggregated slice over the decided dealers, which
    /// answers peers' recovery requests). Every input must have the same k and key
    /// count; at least one is needed. The result is for `receiver`.
    pub fn sum<'a>(receiver: u32, all: impl IntoIterator<Item = &'a Slice<S>>) -> Result<Self>
    where
        S: 'a,
    {
        let mut it = all.into_iter();
        let Some(first) = it.next() else {
            return Err(Error::TooFewPoints { need: 1, got: 0 });
        };
        let k = first.k;
        let mut parts = [
            first.a.to_vec(),
            first.ap.to_vec(),
            first.b.to_vec(),
            first.bp.to_vec(),
        ];
        for s in it {
            if s.k != k || s.a.len() != first.a.len() {
                return Err(Error::LengthMismatch {
                    what: "slices to sum",
                    expected: first.a.len(),
                    got: s.a.len(),
                });
            }
            for (acc, v) in parts.iter_mut().zip([&s.a, &s.ap, &s.b, &s.bp]) {
                for (x, y) in acc.iter_mut().zip(v.iter()) {
                    *x += y;
                }
            }
        }
        let [a, ap, b, bp] = parts;
        Slice::from_parts(receiver, k, a, ap, b, bp)
    }
    /// `sum_i w_i s_i` coefficient-wise (constant time: the slices are secret),
    /// for `receiver`: its slice of a weighted sum of sharings. Every input must
    /// have the same k and key count, with one weight each; at least one is needed.
    pub fn weighted_sum(receiver: u32, weights: &[Scalar<S>], all: &[&Slice<S>]) -> Result<Self> {
        let Some(first) = all.first() else {
            return Err(Error::TooFewPoints { need: 1, got: 0 });
        };
        if weights.len() != all.len() {
            return Err(Error::LengthMismatch {
                what: "slice weights",
                expected: all.len(),
                got: weights.len(),
            });
        }
        let len = first.a.len();
        let k = first.k;
        let mut parts = [
            vec![Scalar::<S>::from(0u64); len],
            vec![Scalar::<S>::from(0u64); len],
            vec![Scalar::<S>::from(0u64); len],
            vec![Scalar::<S>::from(0u64); len],
        ];
        for (s, w) in all.iter().zip(weights) {
            if s.k != k || [s.a.len(), s.ap.len(), s.b.len(), s.bp.len()] != [len; 4] {
                return Err(Error::LengthMismatch {
                    what: "slices to combine",
                    expected: len,
                    got: s.a.len(),
                });
            }
            for (acc, v) in parts.iter_mut().zip([&s.a, &s.ap, &s.b, &s.bp]) {
                for (x, y) in acc.iter_mut().zip(v.iter()) {
                    *x += *y * w;
                }
            }
        }
        let [a, ap, b, bp] = parts;
        Slice::from_parts(receiver, k, a, ap, b, bp)
    }
    /// Mutable access for test-only fault injection (a corrupted row or column).
    #[doc(hidden)]
    pub fn corrupt_for_tests(&mut self, key: usize, column: bool) {
        let idx = key * self.k;
        let v = if column {
            self.b.as_mut_slice()
        } else {
            self.a.as_mut_slice()
        };
        if let Some(x) = v.get_mut(idx) {
            *x += Scalar::<S>::from(1u64);
        }
    }
}

/// Fresh 128-bit verification weights from a per-check seed; `item` selects an
/// independent ChaCha20 stream so that parallel folds are deterministic.
pub(crate) fn weights<S: Suite>(seed: &[u8; 32], item: u64, out: &mut [Scalar<S>]) {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*seed);
    rng.set_stream(item);
    for w in out.iter_mut() {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        // Never zero: a zero weight would drop an equation from the fold.
        *w = Scalar::<S>::from_u128(u128::from_le_bytes(b) | 1);
    }
}

/// The same weights as [`weights`], as integers (`< 2^128`, odd): the integer
/// fold multiplies them by small powers without any modular reduction.
pub(crate) fn weights_u128(seed: &[u8; 32], item: u64, out: &mut [u128]) {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*seed);
    rng.set_stream(item);
    for w in out.iter_mut() {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        *w = u128::from_le_bytes(b) | 1;
    }
}

/// `[1, x, ..., x^(len-1)]` as integers, or `None` when `x^(len-1)` does not fit
/// in 64 bits (then callers use field arithmetic).
pub(crate) fn powers_u64(x: u64, len: usize) -> Option<Vec<u64>> {
    let mut out = Vec::with_capacity(len);
    let mut acc = 1u64;
    for i in 0..len {
        out.push(acc);
        if i + 1 < len {
            acc = acc.checked_mul(x)?;
        }
    }
    Some(out)
}

/// `sum_j coeffs[j] * xpow[j]` for secret scalars and small public integers
/// (powers of a node index): the products and their sum are accumulated as a
/// 512-bit integer and reduced once, instead of one modular multiplication
/// per term (Horner). Constant time in the coefficients.
pub(crate) fn eval_small<'a, S: Suite>(
    coeffs: impl Iterator<Item = &'a Scalar<S>>,
    xpow: &[u64],
) -> Scalar<S> {
    let mut acc = [0u64; 8];
    for (c, x) in coeffs.zip(xpow) {
        let mut l = S::scalar_to_le_limbs(c);
        let mut carry = 0u128;
        for (a, li) in acc.iter_mut().zip(l.iter()) {
            let t = (*li as u128) * (*x as u128) + (*a as u128) + carry;
            *a = t as u64;
            carry = t >> 64;
        }
        // Fewer than 2^64 terms: the carry chain stops within the eight limbs.
        for a in acc.iter_mut().skip(4) {
            let t = (*a as u128) + carry;
            *a = t as u64;
            carry = t >> 64;
        }
        l.zeroize();
    }
    let r = S::scalar_from_wide_le_limbs(&acc);
    acc.zeroize();
    r
}

/// Evaluations of polynomials at small public points `x`: integer powers and
/// [`eval_small`] when `x^(k-1)` fits in 64 bits, else Horner in the field.
pub(crate) struct SmallPoint<S: Suite> {
    xpow: Option<Vec<u64>>,
    x: Scalar<S>,
}

impl<S: Suite> SmallPoint<S> {
    pub(crate) fn new(x: u32, k: usize) -> Self {
        SmallPoint {
            xpow: if S::FAST_LIMBS {
                powers_u64(u64::from(x), k)
            } else {
                None
            },
            x: Scalar::<S>::from(u64::from(x)),
        }
    }

    /// `sum_j coeffs[j] x^j` (at most k coefficients).
    pub(crate) fn eval<'a>(
        &self,
        coeffs: impl DoubleEndedIterator<Item = &'a Scalar<S>>,
    ) -> Scalar<S> {
        match &self.xpow {
            Some(p) => eval_small::<S>(coeffs, p),
            None => coeffs
                .rev()
                .fold(Scalar::<S>::from(0u64), |acc, c| acc * self.x + c),
        }
    }
}

/// `a * x + b * y` for 128-bit `a, b` and 64-bit `x, y`, as a 256-bit
/// little-endian integer (it is below 2^193). Constant time.
#[inline]
pub(crate) fn lin2_u128(a: u128, x: u64, b: u128, y: u64) -> [u64; 4] {
    let m = |w: u128, v: u64| -> (u128, u128) {
        let lo = (w as u64 as u128) * (v as u128);
        let hi = (w >> 64) * (v as u128);
        // w * v = lo + hi * 2^64 = (low 128 bits, high 64 bits)
        let t = (lo >> 64) + (hi as u64 as u128);
        let low = (lo as u64 as u128) | (t << 64);
        let high = (hi >> 64) + (t >> 64);
        (low, high)
    };
    let (l1, h1) = m(a, x);
    let (l2, h2) = m(b, y);
    let (lo, c) = l1.overflowing_add(l2);
    let hi = h1 + h2 + u128::from(c);
    [lo as u64, (lo >> 64) as u64, hi as u64, (hi >> 64) as u64]
}

/// A 512-bit accumulator of products `scalar * weight` (scalar `< 2^256`,
/// weight `< 2^128`): sums of up to 2^64 products need no reduction, which is
/// done once at the end. Constant time; zeroized on drop (the scalars are
/// secret shares).
pub(crate) struct WideAcc([u64; 8]);

impl WideAcc {
    pub(crate) fn new() -> Self {
        WideAcc([0; 8])
    }

    /// `self += s * w`.
    #[inline]
    pub(crate) fn add_mul(&mut self, s: &[u64; 4], w: u128) {
        let w = [w as u64, (w >> 64) as u64];
        let mut p = [0u64; 6];
        for (i, wi) in w.iter().enumerate() {
            let mut carry = 0u128;
            for (j, sj) in s.iter().enumerate() {
                if let Some(pij) = p.get_mut(i + j) {
                    let t = (*sj as u128) * (*wi as u128) + (*pij as u128) + carry;
                    *pij = t as u64;
                    carry = t >> 64;
                }
            }
            if let Some(top) = p.get_mut(i + 4) {
                *top = carry as u64;
            }
        }
        let mut carry = 0u64;
        for (i, a) in self.0.iter_mut().enumerate() {
            let (x, c1) = a.overflowing_add(p.get(i).copied().unwrap_or(0));
            let (x, c2) = x.overflowing_add(carry);
            *a = x;
            carry = u64::from(c1 | c2);
        }
        p.zeroize();
    }

    /// The sum reduced mod q.
    pub(crate) fn reduce<S: Suite>(&self) -> Scalar<S> {
        S::scalar_from_wide_le_limbs(&self.0)
    }
}

impl Drop for WideAcc {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A fresh seed for verification weights, from the OS CSPRNG.
pub(crate) fn fresh_seed() -> [u8; 32] {
    use rand_core::RngCore;
    let mut s = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut s);
    s
}

/// Accumulates one folded equation `sum scalars*points == g*G + h*H`.
pub(crate) struct Fold<S: Suite> {
    pub points: Vec<Affine<S>>,
    pub scalars: Vec<Scalar<S>>,
    pub g: Scalar<S>,
    pub h: Scalar<S>,
}

impl<S: Suite> Fold<S> {
    pub fn with_capacity(n: usize) -> Self {
        Fold {
            points: Vec::with_capacity(n + 2),
            scalars: Vec::with_capacity(n + 2),
            g: Scalar::<S>::from(0u64),
            h: Scalar::<S>::from(0u64),
        }
    }

    pub fn append(&mut self, mut other: Fold<S>) {
        self.points.append(&mut other.points);
        self.scalars.append(&mut other.scalars);
        self.g += other.g;
        self.h += other.h;
    }

    /// Whether the folded equation plus `long` (points whose scalars are full
    /// width) holds. Two MSMs, so that the short scalars of `self` keep their
    /// shorter Pippenger (its cost follows the longest scalar of a call).
    pub fn holds_with_long(self, engine: &crate::Engine, long: Fold<S>) -> bool {
        let Ok(mut lhs) = engine.vartime_msm::<S>(&self.points, &self.scalars) else {
            return false;
        };
        if !long.points.is_empty() {
            let Ok(l) = engine.vartime_msm::<S>(&long.points, &long.scalars) else {
                return false;
            };
            lhs += l;
        }
        lhs == Self::ct_rhs(engine, self.g + long.g, self.h + long.h)
    }

    /// Whether the folded equation holds: one MSM over the folded points (whose
    /// scalars are short: a weight times small powers), compared with
    /// `g*G + h*H`. That side is computed apart, in constant time: `g` and `h`
    /// are weighted sums of secret slice values, and as full-width scalars they
    /// would also make the whole MSM full width.
    pub fn holds(self, engine: &crate::Engine) -> bool {
        self.holds_with_long(engine, Fold::with_capacity(0))
    }

    /// `g*G + h*H`, constant time (the fixed-base kernel's small-batch path).
    fn ct_rhs(engine: &crate::Engine, g: Scalar<S>, h: Scalar<S>) -> crate::group::Point<S> {
        match engine.ct_commit::<S>(&[g], &[h]) {
            Ok(v) => v
                .first()
                .map(S::from_affine)
                .unwrap_or_else(<crate::group::Point<S> as group::Group>::identity),
            Err(_) => <crate::group::Point<S> as group::Group>::identity(),
        }
    }
}

/// Finds the failing items by bisection: `check(items)` must hold for every
/// subset of good items. An honest batch costs exactly one check.
pub(crate) fn bisect<T: Copy>(items: &[T], check: &dyn Fn(&[T]) -> bool) -> Vec<T> {
    if items.is_empty() || check(items) {
        return Vec::new();
    }
    bisect_failing(items, check)
}

fn bisect_failing<T: Copy>(items: &[T], check: &dyn Fn(&[T]) -> bool) -> Vec<T> {
    if items.len() == 1 {
        return items.to_vec();
    }
    let (l, r) = items.split_at(items.len() / 2);
    let mut out = Vec::new();
    for half in [l, r] {
        if !check(half) {
            out.extend(bisect_failing(half, check));
        }
    }
    out
}

/// Groups `(node, key)` pairs into culprits, sorted by node.
pub(crate) fn culprits_from(pairs: &[(u32, usize)]) -> Vec<crate::error::Culprit> {
    let mut map: std::collections::BTreeMap<u32, Vec<usize>> = std::collections::BTreeMap::new();
    for &(n, k) in pairs {
        map.entry(n).or_default().push(k);
    }
    map.into_iter()
        .map(|(node, mut keys)| {
            keys.sort_unstable();
            keys.dedup();
            crate::error::Culprit { node, keys }
        })
        .collect()
}

#[cfg(test)]
mod small_point_tests {
    use super::*;
    use crate::poly::horner;
    use crate::{Bls12381, Secp256k1};
    use ff::Field;

    fn evaluations_match_horner<S: Suite>() {
        let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for k in [1usize, 2, 5, 9, 17] {
            let mut coeffs: Vec<Scalar<S>> = (0..k).map(|_| Scalar::<S>::random(&mut r)).collect();
            coeffs[0] = -Scalar::<S>::ONE;
            if k > 2 {
                coeffs[k - 1] = -Scalar::<S>::ONE;
            }
            for x in [1u32, 2, 9, 255, 1000, u32::MAX] {
                let want = horner(&coeffs, Scalar::<S>::from(u64::from(x)));
                let p = SmallPoint::<S>::new(x, k);
                assert_eq!(p.eval(coeffs.iter()), want, "k={k} x={x}");
                // Big k and x take the field path; small ones the integer path
                // (on suites with cheap limb conversions).
                assert_eq!(
                    p.xpow.is_some(),
                    S::FAST_LIMBS && powers_u64(u64::from(x), k).is_some()
                );
            }
        }
    }

    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn small_point_evaluations_match_horner_secp256k1() {
        evaluations_match_horner::<Secp256k1>();
    }

    #[test]
    fn small_point_evaluations_match_horner_bls12_381() {
        evaluations_match_horner::<Bls12381>();
    }
}
