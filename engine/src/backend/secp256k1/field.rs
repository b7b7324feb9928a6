//! The secp256k1 base field `GF(p)`, `p = 2^256 - 2^32 - 977`, on four 64-bit limbs.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! [`Fe`] replaces k256's 5x52 `FieldElement` in the hot paths (fixed-base tables,
//! Pippenger buckets): a multiplication is a 4x4 schoolbook product with `u128`
//! partial products followed by the special reduction `2^256 = R (mod p)` with
//! `R = 2^32 + 977 = 0x1000003D1`, about twice as fast as k256's on x86-64.
//! The squaring is product-scanning (column sums in `u128`, one carry chain).
//!
//! Measured latency on the 2-core AMD EPYC dev box (`cargo test --release -p
//! torus-engine --lib field::tests::latency -- --ignored --nocapture`): mul ~18-20 ns,
//! square ~18 ns, add ~2.6 ns, sub ~3.5 ns, invert ~4.7 us, versus k256's mul
//! ~32-36 ns, square ~30 ns, invert ~8 us. `mul` and `square` are `#[inline]`:
//! `#[inline(always)]` measured no better (the 450k-point MSM was 3-10% slower).
//!
//! # Invariant
//!
//! An `Fe` holds **any** 256-bit value `v` in `[0, 2^256)` ("weakly reduced") and
//! represents `v mod p`; the values `v` and `v + p` (for `v < R`) are two encodings of
//! the same element. Every operation accepts any such input and returns such an
//! output: there is no magnitude to track. [`Fe::normalize`] returns the canonical
//! encoding (`< p`); comparisons ([`Fe::ct_eq`], `PartialEq`, [`Fe::is_zero`]) and
//! serialization ([`Fe::to_bytes`], [`Fe::is_odd`]) normalize internally.
//!
//! # Constant time
//!
//! Every function is constant time in the values of its operands: there are no
//! data-dependent branches or memory indexes. Carries and borrows are taken from
//! `u128` arithmetic and applied with masks (`0 - carry`), reductions always
//! perform the same fixed sequence of folds, and [`Fe::invert`] / [`Fe::sqrt`] are
//! fixed addition chains (libsecp256k1's). The only exception is that
//! [`Fe::from_bytes`] returns an `Option` (validity of an encoding is public in all
//! uses); the check itself is computed without branches.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, CtOption};
use zeroize::Zeroize;

/// `2^256 mod p`.
const R: u64 = 0x1_0000_03D1;

/// `p` as little-endian limbs.
const P: [u64; 4] = [
    0xFFFF_FFFE_FFFF_FC2F,
    0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFF_FFFF_FFFF,
    0xFFFF_FFFF_FFFF_FFFF,
];

/// All ones when `bit` is 1, zero when it is 0 (`bit` in {0, 1}), through an
/// optimisation barrier. Without it LLVM sees that `R & bit.wrapping_neg()` is
/// "`R` if the carry is set, else 0" and may emit a conditional jump over the
/// load of `R` (it did, in `Fe::sub` and the carry folds: found by the timing
/// test `secret_paths_take_the_same_time_for_any_secret`), a branch on secret
/// data. `black_box` hides that `bit` is a boolean, so the mask stays
/// arithmetic (`neg`, `and`).
#[inline(always)]
fn mask(bit: u64) -> u64 {
    core::hint::black_box(bit).wrapping_neg()
}

/// `a * b + c + d` as (low, high); never overflows (`(2^64-1)^2 + 2 (2^64-1) < 2^128`).
#[inline(always)]
fn mac(a: u64, b: u64, c: u64, d: u64) -> (u64, u64) {
    let t = (a as u128) * (b as u128) + (c as u128) + (d as u128);
    (t as u64, (t >> 64) as u64)
}

/// `a + b + c` (`c` in {0, 1}) as (sum, carry in {0, 1}).
#[inline(always)]
fn adc(a: u64, b: u64, c: u64) -> (u64, u64) {
    let (s, c1) = a.overflowing_add(b);
    let (s, c2) = s.overflowing_add(c);
    (s, (c1 | c2) as u64)
}

/// `a - b - borrow` (`borrow` in {0, 1}) as (difference, borrow out in {0, 1}).
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let (d, b1) = a.overflowing_sub(b);
    let (d, b2) = d.overflowing_sub(borrow);
    (d, (b1 | b2) as u64)
}

/// An element of the secp256k1 base field, little-endian 64-bit limbs, weakly
/// reduced (any value in `[0, 2^256)`; see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct Fe(pub [u64; 4]);

impl Fe {
    /// Zero.
    pub const ZERO: Fe = Fe([0; 4]);
    /// One.
    pub const ONE: Fe = Fe([1, 0, 0, 0]);

    /// A small constant.
    pub const fn from_u64(v: u64) -> Fe {
        Fe([v, 0, 0, 0])
    }

    /// Adds `c * R` to `r` where `c` is a carry in {0, 1} (i.e. folds a `2^256`
    /// overflow); returns the new carry.
    #[inline(always)]
    fn fold1(r: [u64; 4], c: u64) -> ([u64; 4], u64) {
        let [r0, r1, r2, r3] = r;
        let (r0, c) = adc(r0, R & mask(c), 0);
        let (r1, c) = adc(r1, 0, c);
        let (r2, c) = adc(r2, 0, c);
        let (r3, c) = adc(r3, 0, c);
        ([r0, r1, r2, r3], c)
    }

    /// Adds `c * R` (`c` in {0, 1}) to a value known to be `< 2^128` whenever `c = 1`:
    /// only the two low limbs can change and nothing carries out.
    #[inline(always)]
    fn fold_small(r: [u64; 4], c: u64) -> [u64; 4] {
        let [r0, r1, r2, r3] = r;
        let (r0, c) = adc(r0, R & mask(c), 0);
        [r0, r1.wrapping_add(c), r2, r3]
    }

    /// [`Fe::fold_small`] without the barrier, for the multiplications: there
    /// the mask stays arithmetic (no select), and a barrier on their critical
    /// path costs a fifth of their speed.
    #[inline(always)]
    fn fold_small_mul(r: [u64; 4], c: u64) -> [u64; 4] {
        let [r0, r1, r2, r3] = r;
        let (r0, c) = adc(r0, R & c.wrapping_neg(), 0);
        [r0, r1.wrapping_add(c), r2, r3]
    }

    /// Subtracts `b * R` from `r` where `b` is a borrow in {0, 1}; returns the new borrow.
    #[inline(always)]
    fn unfold1(r: [u64; 4], b: u64) -> ([u64; 4], u64) {
        let [r0, r1, r2, r3] = r;
        let (r0, b) = sbb(r0, R & mask(b), 0);
        let (r1, b) = sbb(r1, 0, b);
        let (r2, b) = sbb(r2, 0, b);
        let (r3, b) = sbb(r3, 0, b);
        ([r0, r1, r2, r3], b)
    }

    /// `self + b`.
    #[inline(always)]
    #[must_use]
    pub fn add(&self, b: &Fe) -> Fe {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = b.0;
        let (r0, c) = adc(a0, b0, 0);
        let (r1, c) = adc(a1, b1, c);
        let (r2, c) = adc(a2, b2, c);
        let (r3, c) = adc(a3, b3, c);
        // a + b < 2^257: fold the carry; a second carry is possible only when the
        // first fold wrapped again, after which the value is < 2R.
        let (r, c) = Self::fold1([r0, r1, r2, r3], c);
        Fe(Self::fold_small(r, c))
    }

    /// `2 * self`.
    #[inline(always)]
    #[must_use]
    pub fn double(&self) -> Fe {
        self.add(self)
    }

    /// `self - b`.
    #[inline(always)]
    #[must_use]
    pub fn sub(&self, b: &Fe) -> Fe {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = b.0;
        let (r0, w) = sbb(a0, b0, 0);
        let (r1, w) = sbb(a1, b1, w);
        let (r2, w) = sbb(a2, b2, w);
        let (r3, w) = sbb(a3, b3, w);
        // On a borrow, add p = 2^256 - R (wrapping: subtract R). A second borrow
        // happens iff b - a > p; adding p once more cannot borrow again.
        let (r, w) = Self::unfold1([r0, r1, r2, r3], w);
        let (r, _) = Self::unfold1(r, w);
        Fe(r)
    }

    /// `-self`.
    #[inline(always)]
    #[must_use]
    pub fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    /// Reduces a 512-bit product `t` (little-endian) modulo `p`.
    #[inline(always)]
    fn reduce_wide(t: [u64; 8]) -> Fe {
        let [t0, t1, t2, t3, t4, t5, t6, t7] = t;
        // hi * R + lo: each mac is < 2^64 * 2^33 + 2^65, so carries stay < 2^34.
        let (r0, c) = mac(t4, R, t0, 0);
        let (r1, c) = mac(t5, R, t1, c);
        let (r2, c) = mac(t6, R, t2, c);
        let (r3, c) = mac(t7, R, t3, c);
        // c < 2^34: c * R < 2^67.
        let (r0, k) = mac(c, R, r0, 0);
        let (r1, k) = adc(r1, k, 0);
        let (r2, k) = adc(r2, 0, k);
        let (r3, k) = adc(r3, 0, k);
        // k in {0, 1}; after a wrap the value is < 2^68, so this fold only touches
        // limbs 0 and 1 and cannot carry out.
        Fe(Self::fold_small_mul([r0, r1, r2, r3], k))
    }

    /// `self * b`.
    #[inline]
    #[must_use]
    pub fn mul(&self, b: &Fe) -> Fe {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = b.0;
        let (t0, c) = mac(a0, b0, 0, 0);
        let (t1, c) = mac(a0, b1, 0, c);
        let (t2, c) = mac(a0, b2, 0, c);
        let (t3, t4) = mac(a0, b3, 0, c);

        let (t1, c) = mac(a1, b0, t1, 0);
        let (t2, c) = mac(a1, b1, t2, c);
        let (t3, c) = mac(a1, b2, t3, c);
        let (t4, t5) = mac(a1, b3, t4, c);

        let (t2, c) = mac(a2, b0, t2, 0);
        let (t3, c) = mac(a2, b1, t3, c);
        let (t4, c) = mac(a2, b2, t4, c);
        let (t5, t6) = mac(a2, b3, t5, c);

        let (t3, c) = mac(a3, b0, t3, 0);
        let (t4, c) = mac(a3, b1, t4, c);
        let (t5, c) = mac(a3, b2, t5, c);
        let (t6, t7) = mac(a3, b3, t6, c);
        Self::reduce_wide([t0, t1, t2, t3, t4, t5, t6, t7])
    }

    /// `self^2` (10 limb products instead of 16; product scanning).
    #[inline]
    #[must_use]
    pub fn square(&self) -> Fe {
        let [a0, a1, a2, a3] = self.0;
        let m = |x: u64, y: u64| -> (u128, u128) {
            let t = (x as u128) * (y as u128);
            ((t as u64) as u128, t >> 64)
        };
        let (l01, h01) = m(a0, a1);
        let (l02, h02) = m(a0, a2);
        let (l03, h03) = m(a0, a3);
        let (l12, h12) = m(a1, a2);
        let (l13, h13) = m(a1, a3);
        let (l23, h23) = m(a2, a3);
        let (d0l, d0h) = m(a0, a0);
        let (d1l, d1h) = m(a1, a1);
        let (d2l, d2h) = m(a2, a2);
        let (d3l, d3h) = m(a3, a3);
        // column k = diagonal halves + 2 * (off-diagonal halves) + carry; every term
        // is independent of the carry, so the carry chain is 8 additions long.
        let v = d0l;
        let t0 = v as u64;
        let v = (v >> 64) + d0h + 2 * l01;
        let t1 = v as u64;
        let v = (v >> 64) + d1l + 2 * (l02 + h01);
        let t2 = v as u64;
        let v = (v >> 64) + d1h + 2 * (l03 + l12 + h02);
        let t3 = v as u64;
        let v = (v >> 64) + d2l + 2 * (l13 + h03 + h12);
        let t4 = v as u64;
        let v = (v >> 64) + d2h + 2 * (l23 + h13);
        let t5 = v as u64;
        let v = (v >> 64) + d3l + 2 * h23;
        let t6 = v as u64;
        let v = (v >> 64) + d3h;
        let t7 = v as u64;
        Self::reduce_wide([t0, t1, t2, t3, t4, t5, t6, t7])
    }

    /// `self * k` for a small constant `k` (any `u64`).
    #[inline(always)]
    #[must_use]
    pub fn mul_small(&self, k: u64) -> Fe {
        let [a0, a1, a2, a3] = self.0;
        let (t0, c) = mac(a0, k, 0, 0);
        let (t1, c) = mac(a1, k, 0, c);
        let (t2, c) = mac(a2, k, 0, c);
        let (t3, t4) = mac(a3, k, 0, c);
        // t4 * R < 2^98, added over limbs 0 and 1.
        let m = (t4 as u128) * (R as u128);
        let (r0, c) = adc(t0, m as u64, 0);
        let (r1, c) = adc(t1, (m >> 64) as u64, c);
        let (r2, c) = adc(t2, 0, c);
        let (r3, c) = adc(t3, 0, c);
        // After a wrap the value is < 2^99: this fold cannot carry out.
        Fe(Self::fold_small_mul([r0, r1, r2, r3], c))
    }

    /// `self^(2^n)`.
    #[inline]
    #[must_use]
    pub fn pow2k(&self, n: usize) -> Fe {
        let mut r = *self;
        for _ in 0..n {
            r = r.square();
        }
        r
    }

    /// The blocks `x^(2^k - 1)` for `k` in {2, 3, 22, 223} shared by the inversion and
    /// square-root chains (libsecp256k1's addition chain).
    #[inline]
    fn chain_blocks(&self) -> (Fe, Fe, Fe, Fe) {
        let a = self;
        let x2 = a.square().mul(a);
        let x3 = x2.square().mul(a);
        let x6 = x3.pow2k(3).mul(&x3);
        let x9 = x6.pow2k(3).mul(&x3);
        let x11 = x9.pow2k(2).mul(&x2);
        let x22 = x11.pow2k(11).mul(&x11);
        let x44 = x22.pow2k(22).mul(&x22);
        let x88 = x44.pow2k(44).mul(&x44);
        let x176 = x88.pow2k(88).mul(&x88);
        let x220 = x176.pow2k(44).mul(&x44);
        let x223 = x220.pow2k(3).mul(&x3);
        (x2, x3, x22, x223)
    }

    /// `self^(p - 2)`: the inverse of a non-zero element, and 0 for 0 (255 squarings,
    /// 15 multiplications, constant time).
    #[must_use]
    pub fn invert(&self) -> Fe {
        let (x2, _x3, x22, x223) = self.chain_blocks();
        let t = x223.pow2k(23).mul(&x22);
        let t = t.pow2k(5).mul(self);
        let t = t.pow2k(3).mul(&x2);
        t.pow2k(2).mul(self)
    }

    /// A square root `self^((p + 1) / 4)` if `self` is a square (constant time; the
    /// returned root is whichever the exponentiation gives).
    pub fn sqrt(&self) -> CtOption<Fe> {
        let (x2, _x3, x22, x223) = self.chain_blocks();
        let t = x223.pow2k(23).mul(&x22);
        let t = t.pow2k(6).mul(&x2);
        let r = t.pow2k(2);
        let ok = r.square().ct_eq(self);
        CtOption::new(r, ok)
    }

    /// The canonical encoding (`< p`) of the same element.
    #[inline]
    #[must_use]
    pub fn normalize(&self) -> Fe {
        // v >= p  <=>  v + R >= 2^256; then v - p = (v + R) mod 2^256. v < 2p, so one
        // conditional subtraction suffices.
        let [a0, a1, a2, a3] = self.0;
        let (t0, c) = adc(a0, R, 0);
        let (t1, c) = adc(a1, 0, c);
        let (t2, c) = adc(a2, 0, c);
        let (t3, c) = adc(a3, 0, c);
        let m = mask(c);
        Fe([
            (t0 & m) | (a0 & !m),
            (t1 & m) | (a1 & !m),
            (t2 & m) | (a2 & !m),
            (t3 & m) | (a3 & !m),
        ])
    }

    /// Whether the element is zero (`0` or `p`).
    #[inline]
    pub fn is_zero(&self) -> Choice {
        let [a0, a1, a2, a3] = self.normalize().0;
        (a0 | a1 | a2 | a3).ct_eq(&0)
    }

    /// Whether the canonical encoding is odd.
    #[inline]
    pub fn is_odd(&self) -> Choice {
        let [a0, ..] = self.normalize().0;
        Choice::from((a0 & 1) as u8)
    }

    /// Canonical big-endian encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        let [a0, a1, a2, a3] = self.normalize().0;
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip([a3, a2, a1, a0]) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    /// Decodes a big-endian encoding without checking it against `p` (any 256-bit
    /// value is a valid weakly reduced `Fe`).
    pub fn from_bytes_wide(bytes: &[u8; 32]) -> Fe {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().rev().zip(bytes.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *limb = u64::from_be_bytes(w);
        }
        Fe(limbs)
    }

    /// Decodes a canonical big-endian encoding; `None` if the value is `>= p`.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let v = Fe::from_bytes_wide(bytes);
        // canonical iff v < p iff v - p borrows
        let [a0, a1, a2, a3] = v.0;
        let [p0, p1, p2, p3] = P;
        let (_, w) = sbb(a0, p0, 0);
        let (_, w) = sbb(a1, p1, w);
        let (_, w) = sbb(a2, p2, w);
        let (_, w) = sbb(a3, p3, w);
        Option::from(CtOption::new(v, Choice::from(w as u8)))
    }

    /// The value in radix 2^52 (five limbs `< 2^52`, little-endian): the lane
    /// layout of the IFMA backend.
    pub fn to_limbs52(&self) -> [u64; 5] {
        const M: u64 = (1 << 52) - 1;
        let [a0, a1, a2, a3] = self.0;
        [
            a0 & M,
            ((a0 >> 52) | (a1 << 12)) & M,
            ((a1 >> 40) | (a2 << 24)) & M,
            ((a2 >> 28) | (a3 << 36)) & M,
            a3 >> 16,
        ]
    }

    /// The element with radix-2^52 limbs `l` (each `< 2^52`, value `< 2^260`),
    /// weakly reduced. Constant time.
    pub fn from_limbs52(l: &[u64; 5]) -> Fe {
        let [l0, l1, l2, l3, l4] = *l;
        let a0 = l0 | (l1 << 52);
        let a1 = (l1 >> 12) | (l2 << 40);
        let a2 = (l2 >> 24) | (l3 << 28);
        let a3 = (l3 >> 36) | (l4 << 16);
        let top = l4 >> 48; // bits 256..259
                            // + top * R (< 2^37): a carry out of 2^256 leaves a value < 2^37.
        let (r0, c) = adc(a0, top * R, 0);
        let (r1, c) = adc(a1, 0, c);
        let (r2, c) = adc(a2, 0, c);
        let (r3, c) = adc(a3, 0, c);
        Fe(Self::fold_small([r0, r1, r2, r3], c))
    }

    /// Converts from k256's field element (through bytes; for boundaries).
    pub fn from_k256(f: &k256::FieldElement) -> Fe {
        Fe::from_bytes_wide(&f.to_bytes().into())
    }

    /// Converts to k256's field element (through bytes; for boundaries).
    pub fn to_k256(&self) -> k256::FieldElement {
        // Canonical bytes always decode.
        Option::from(k256::FieldElement::from_bytes(&self.to_bytes().into()))
            .unwrap_or(k256::FieldElement::ZERO)
    }
}

impl ConditionallySelectable for Fe {
    #[inline(always)]
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        let [a0, a1, a2, a3] = a.0;
        let [b0, b1, b2, b3] = b.0;
        Fe([
            u64::conditional_select(&a0, &b0, choice),
            u64::conditional_select(&a1, &b1, choice),
            u64::conditional_select(&a2, &b2, choice),
            u64::conditional_select(&a3, &b3, choice),
        ])
    }
}

impl ConstantTimeEq for Fe {
    /// Equality as field elements (both sides normalized).
    fn ct_eq(&self, other: &Self) -> Choice {
        let [a0, a1, a2, a3] = self.normalize().0;
        let [b0, b1, b2, b3] = other.normalize().0;
        ((a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2) | (a3 ^ b3)).ct_eq(&0)
    }
}

impl PartialEq for Fe {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.ct_eq(other))
    }
}
impl Eq for Fe {}

impl Zeroize for Fe {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// Field values that stress carries and reductions, shared by the tests of every
/// backend (the scalar `Fe` here, the IFMA lanes in `ifma`).
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
pub(crate) mod test_values {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    pub(crate) fn p_plus(d: u64) -> Fe {
        Fe([P[0] + d, P[1], P[2], P[3]])
    }

    /// Values that stress the carries: 0, 1, p-2..p+2, the whole weak range top,
    /// limbs at their extremes.
    pub(crate) fn edge_values() -> Vec<Fe> {
        let m = u64::MAX;
        let mut v = vec![
            Fe::ZERO,
            Fe::ONE,
            Fe::from_u64(2),
            Fe::from_u64(3),
            Fe::from_u64(R - 1),
            Fe::from_u64(R),
            Fe::from_u64(R + 1),
            Fe([P[0] - 2, P[1], P[2], P[3]]),
            Fe([P[0] - 1, P[1], P[2], P[3]]),
            Fe(P),
            p_plus(1),
            p_plus(2),
            p_plus(R - 2),
            Fe([m, m, m, m]),
            Fe([m - 1, m, m, m]),
            Fe([m, 0, 0, 0]),
            Fe([0, m, 0, 0]),
            Fe([0, 0, m, 0]),
            Fe([0, 0, 0, m]),
            Fe([m, m, 0, 0]),
            Fe([0, 0, m, m]),
            Fe([m, 0, m, 0]),
            Fe([0, m, 0, m]),
            Fe([0, 0, 0, 1 << 63]),
            Fe([1, 0, 0, 1 << 63]),
            Fe([0, 0, 0, m - 1]),
            Fe([P[0] - 1, m, m, m - 1]),
            Fe([0, 0, 0, 1]),
            Fe([0, 1, 0, 0]),
            Fe([0, 0, 1, 0]),
        ];
        // sqrt(2^256) region and R multiples
        v.push(Fe([0, 0, 1, 0]).mul_small(R));
        v
    }

    /// Random values whose limbs are drawn from carry-critical patterns.
    pub(crate) fn structured(r: &mut rand_chacha::ChaCha20Rng) -> Fe {
        let mut pick = || {
            let x = r.next_u64();
            match x % 8 {
                0 => 0,
                1 => u64::MAX,
                2 => u64::MAX - (x >> 60),
                3 => x >> 60,
                4 => P[0],
                5 => 1 << 63,
                _ => r.next_u64(),
            }
        };
        Fe([pick(), pick(), pick(), pick()])
    }

    pub(crate) fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(0xfe)
    }

    pub(crate) fn all_inputs() -> Vec<Fe> {
        let mut r = rng();
        let mut v = edge_values();
        for _ in 0..150 {
            v.push(structured(&mut r));
        }
        for _ in 0..50 {
            v.push(Fe([r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()]));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::FieldElement as K;
    use rand_chacha::rand_core::RngCore;

    /// Independent reference value of a raw limb vector: sum limb_i * 2^(64 i) in k256.
    fn k(v: &Fe) -> K {
        let two64 = K::from_u64(1 << 32).square();
        let mut acc = K::ZERO;
        for limb in v.0.iter().rev() {
            acc = (acc * two64 + K::from_u64(*limb)).normalize();
        }
        acc
    }

    fn same(a: &Fe, b: &K) -> bool {
        a.to_bytes() == <[u8; 32]>::from(b.normalize().to_bytes())
    }

    use super::test_values::{all_inputs, p_plus, rng, structured};

    #[test]
    fn reference_is_sane() {
        assert_eq!(k(&Fe(P)), K::ZERO);
        assert_eq!(k(&p_plus(1)), K::ONE);
        assert_eq!(k(&Fe([u64::MAX; 4])), K::from_u64(R - 1));
    }

    #[test]
    fn binary_ops_match_k256() {
        let v = all_inputs();
        for a in &v {
            let ka = k(a);
            for b in &v {
                let kb = k(b);
                assert!(same(&a.mul(b), &(ka * kb)), "mul {a:?} {b:?}");
                assert!(same(&a.add(b), &(ka + kb)), "add {a:?} {b:?}");
                assert!(same(&a.sub(b), &(ka - kb)), "sub {a:?} {b:?}");
            }
            assert!(same(&a.square(), &ka.square()), "square {a:?}");
            assert!(same(&a.neg(), &(-ka)), "neg {a:?}");
            assert!(same(&a.double(), &ka.double()), "double {a:?}");
            assert!(same(&a.normalize(), &ka), "normalize {a:?}");
            for s in [0u64, 1, 2, 3, 7, 8, R, u64::MAX, u64::MAX - 1, 1 << 63] {
                let want = ka * k(&Fe::from_u64(s));
                assert!(same(&a.mul_small(s), &want), "mul_small {a:?} {s}");
            }
        }
    }

    #[test]
    fn long_chains_match_k256() {
        // Long random walks mixing all operations (outputs feed inputs, so values in
        // the weak range [p, 2^256) produced by our own arithmetic are exercised).
        let mut r = rng();
        for _ in 0..20 {
            let mut x = structured(&mut r);
            let mut kx = k(&x);
            for i in 0..500 {
                let y = structured(&mut r);
                let ky = k(&y);
                match (r.next_u32() + i) % 6 {
                    0 => {
                        x = x.mul(&y);
                        kx *= ky;
                    }
                    1 => {
                        x = x.square();
                        kx = kx.square();
                    }
                    2 => {
                        x = x.add(&y);
                        kx += ky;
                    }
                    3 => {
                        x = x.sub(&y);
                        kx -= ky;
                    }
                    4 => {
                        x = x.neg();
                        kx = -kx;
                    }
                    _ => {
                        x = x.mul_small(7);
                        kx *= K::from_u64(7);
                    }
                }
                kx = kx.normalize();
                assert!(same(&x, &kx));
            }
        }
    }

    #[test]
    fn normalize_edges() {
        let m = u64::MAX;
        assert_eq!(Fe(P).normalize().0, [0; 4]);
        assert_eq!(p_plus(1).normalize().0, [1, 0, 0, 0]);
        assert_eq!(Fe([m; 4]).normalize().0, [R - 1, 0, 0, 0]);
        assert_eq!(Fe([m - 1, m, m, m]).normalize().0, [R - 2, 0, 0, 0]);
        let pm1 = Fe([P[0] - 1, P[1], P[2], P[3]]);
        assert_eq!(pm1.normalize().0, pm1.0);
        assert!(bool::from(Fe(P).is_zero()));
        assert!(bool::from(Fe::ZERO.is_zero()));
        assert!(!bool::from(Fe::ONE.is_zero()));
        assert!(!bool::from(pm1.is_zero()));
        assert_eq!(Fe(P), Fe::ZERO);
        assert_eq!(p_plus(5), Fe::from_u64(5));
        assert!(p_plus(5) != Fe::from_u64(6));
        assert!(bool::from(p_plus(1).is_odd()));
        assert!(!bool::from(p_plus(2).is_odd()));
        assert!(!bool::from(pm1.is_odd()));
        assert!(bool::from(Fe([m; 4]).is_odd()) == ((R - 1) & 1 == 1));
    }

    #[test]
    fn bytes_round_trip() {
        let mut r = rng();
        for v in all_inputs() {
            let b = v.to_bytes();
            let back = Fe::from_bytes(&b).unwrap();
            assert_eq!(back.0, v.normalize().0);
            assert_eq!(b, <[u8; 32]>::from(k(&v).to_bytes()));
            assert_eq!(Fe::from_k256(&k(&v)).0, v.normalize().0);
            assert_eq!(v.to_k256(), k(&v));
        }
        // non-canonical encodings are rejected
        for v in [Fe(P), p_plus(1), Fe([u64::MAX; 4])] {
            let mut b = [0u8; 32];
            for (c, l) in b.chunks_exact_mut(8).zip(v.0.iter().rev()) {
                c.copy_from_slice(&l.to_be_bytes());
            }
            assert!(Fe::from_bytes(&b).is_none());
            assert_eq!(Fe::from_bytes_wide(&b).0, v.0);
        }
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        b[0] = 0x7f;
        assert!(Fe::from_bytes(&b).is_some());
    }

    #[test]
    fn invert_and_sqrt() {
        for a in all_inputs() {
            let ka = k(&a);
            let inv = a.invert();
            if bool::from(a.is_zero()) {
                assert!(bool::from(inv.is_zero()));
            } else {
                assert_eq!(inv.mul(&a), Fe::ONE, "invert {a:?}");
                assert!(same(&inv, &ka.invert().unwrap()));
            }
            let s = a.square().sqrt();
            assert!(bool::from(s.is_some()));
            let s = s.unwrap();
            assert!(s == a || s == a.neg(), "sqrt {a:?}");
            let ks: Option<K> = ka.sqrt().into();
            let ours: Option<Fe> = a.sqrt().into();
            assert_eq!(ks.is_some(), ours.is_some(), "sqrt existence {a:?}");
            if let Some(o) = ours {
                assert_eq!(o.square(), a);
            }
        }
        // -1 is not a square (p = 3 mod 4)
        assert!(bool::from(Fe::ONE.neg().sqrt().is_none()));
        assert!(bool::from(Fe::ZERO.sqrt().is_some()));
    }

    #[test]
    fn select_and_eq() {
        let a = Fe::from_u64(5);
        let b = p_plus(7);
        assert_eq!(Fe::conditional_select(&a, &b, Choice::from(0)).0, a.0);
        assert_eq!(Fe::conditional_select(&a, &b, Choice::from(1)).0, b.0);
        assert!(bool::from(b.ct_eq(&Fe::from_u64(7))));
        let mut z = b;
        z.zeroize();
        assert_eq!(z.0, [0; 4]);
    }
}
