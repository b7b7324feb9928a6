//! Constant-time fixed-base multiplication by `G` and `H` on BLS12-381 G1 for
//! secret scalars: `f*G`, `f*H` and Pedersen commitments `f*G + f'*H`.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! The same method as the secp256k1 kernel (`backend::secp256k1::fixed_base`),
//! with blst's arithmetic: window width `W = 6`, `M = 43` windows, every scalar
//! recoded into `M` **odd** signed digits `|d| <= 2^W - 1` (so no digit is zero
//! and no table holds the identity), tables `T_P[i][j] = (2j+1) 2^(W i) P` for
//! `P` in `{G, H}` (43 x 32 affine points per base, 2 x 132 KiB), built once.
//! A multiplication is then `M` mixed additions and no doubling; a commitment
//! `2M`. blst's complete mixed addition (`blst_p1_add_or_double_affine`) takes
//! the identity start and any sums, so no offset point is needed.
//!
//! # Constant time
//!
//! Digits come from scalar arithmetic (`ff` operations of blstrs, constant
//! time) and bit extraction at public positions. Each lookup reads every entry
//! of the window table and selects with `Fp::conditional_select` (masking), the
//! sign with a conditional negation (`-y` is computed for every entry); blst's
//! field and point arithmetic is constant time. Digits and accumulators are
//! zeroized after use.

use std::sync::OnceLock;

use blstrs::{G1Affine, G1Projective, Scalar};
use ff::Field;
use group::{Curve, Group};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// Window width in bits.
pub const WINDOW: usize = 6;
/// Number of windows (`ceil(255 / W)`, covering 258 bits).
pub const WINDOWS: usize = 255usize.div_ceil(WINDOW);
/// Entries per window table.
pub const ENTRIES: usize = 1 << (WINDOW - 1);

/// The window tables of one base: `WINDOWS * ENTRIES` affine coordinates,
/// window-major.
pub struct BaseTable {
    entries: Vec<G1Affine>,
}

impl BaseTable {
    /// Builds the tables of `base` (one-time cost: a few milliseconds).
    pub fn new(base: G1Projective) -> Self {
        let mut proj = Vec::with_capacity(WINDOWS * ENTRIES);
        let mut b = base;
        for _ in 0..WINDOWS {
            let b2 = b.double();
            let mut e = b;
            for _ in 0..ENTRIES {
                proj.push(e);
                e += b2;
            }
            for _ in 0..WINDOW {
                b = b.double();
            }
        }
        let mut aff = vec![G1Affine::default(); proj.len()];
        G1Projective::batch_normalize(&proj, &mut aff);
        BaseTable { entries: aff }
    }

    /// Constant-time selection of the table point of digit code `code`
    /// (`j | neg << 7` for the digit `(-1)^neg (2j + 1)`) in window `w`.
    fn lookup(&self, w: usize, code: u8) -> G1Affine {
        let idx = u32::from(code & 0x7f);
        let neg = Choice::from(code >> 7);
        let table = self
            .entries
            .get(w * ENTRIES..(w + 1) * ENTRIES)
            .unwrap_or(&[]);
        let mut p = G1Affine::default();
        for (j, e) in table.iter().enumerate() {
            p.conditional_assign(e, (j as u32).ct_eq(&idx));
        }
        // The selected point is never the identity (digits are odd), so blstrs'
        // negation always takes the same path (a constant-time `-y`).
        G1Affine::conditional_select(&p, &-p, neg)
    }
}

/// The tables of `G` and `H`.
pub struct Tables {
    g: BaseTable,
    h: BaseTable,
    /// `2^(W*WINDOWS) - 1 mod q`.
    recode_add: Scalar,
    /// `1/2 mod q`.
    half: Scalar,
}

impl Tables {
    fn new(h: G1Projective) -> Self {
        let mut p2 = Scalar::ONE;
        for _ in 0..WINDOW * WINDOWS {
            p2 = p2.double();
        }
        Tables {
            g: BaseTable::new(G1Projective::generator()),
            h: BaseTable::new(h),
            recode_add: p2 - Scalar::ONE,
            half: Scalar::from(2u64).invert().unwrap_or(Scalar::ZERO),
        }
    }

    /// Recodes `s` into `WINDOWS` odd-digit codes (see the secp256k1 kernel:
    /// with `v = (s + 2^N - 1) / 2`, digit `i` is `2 u_i - (2^W - 1)` where `u_i`
    /// is the i-th `W`-bit window of `v`).
    fn recode(&self, s: &Scalar, out: &mut [u8; WINDOWS]) {
        let v = (*s + self.recode_add) * self.half;
        let mut bytes = v.to_bytes_le();
        let mut limbs = [0u64; 5];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(w);
            w.zeroize();
        }
        bytes.zeroize();
        let lowmask = (1u64 << (WINDOW - 1)) - 1;
        let wmask = (1u64 << WINDOW) - 1;
        for (i, o) in out.iter_mut().enumerate() {
            let bit = i * WINDOW;
            let (li, sh) = (bit / 64, bit % 64);
            let lo = limbs.get(li).copied().unwrap_or(0) >> sh;
            let hi = if sh == 0 {
                0
            } else {
                limbs.get(li + 1).copied().unwrap_or(0) << (64 - sh)
            };
            let u = (lo | hi) & wmask;
            let neg = ((u >> (WINDOW - 1)) & 1) ^ 1;
            let j = (u ^ (neg.wrapping_neg() & lowmask)) & lowmask;
            *o = (j | (neg << 7)) as u8;
        }
        limbs.zeroize();
    }

    /// `s * P` for the base of `table`, added into `acc`.
    fn add_mul(&self, table: &BaseTable, s: &Scalar, acc: &mut G1Projective) {
        let mut codes = [0u8; WINDOWS];
        self.recode(s, &mut codes);
        for (w, c) in codes.iter().enumerate() {
            *acc += &table.lookup(w, *c);
        }
        codes.zeroize();
    }
}

fn tables(h: impl FnOnce() -> G1Projective) -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| Tables::new(h()))
}

/// Constant-time batch kernels over the tables of `G` and `h` (the suite's
/// second generator; it is read once, when the tables are built).
pub struct FixedBase {
    t: &'static Tables,
}

impl FixedBase {
    /// The kernels (builds the tables on first use).
    pub fn get(h: impl FnOnce() -> G1Projective) -> Self {
        FixedBase { t: tables(h) }
    }

    fn finish(pts: &mut [G1Projective], out: &mut [G1Affine]) {
        let n = pts.len().min(out.len());
        if let (Some(p), Some(o)) = (pts.get(..n), out.get_mut(..n)) {
            G1Projective::batch_normalize(p, o);
        }
        for p in pts.iter_mut() {
            *p = G1Projective::identity();
        }
    }

    /// `out[i] = f[i]*G + fp[i]*H`.
    pub fn commit(&self, f: &[Scalar], fp: &[Scalar], out: &mut [G1Affine]) {
        let mut pts: Vec<G1Projective> = f
            .iter()
            .zip(fp)
            .map(|(a, b)| {
                let mut acc = G1Projective::identity();
                self.t.add_mul(&self.t.g, a, &mut acc);
                self.t.add_mul(&self.t.h, b, &mut acc);
                acc
            })
            .collect();
        Self::finish(&mut pts, out);
    }

    /// `out[i] = s[i]*G`.
    pub fn mul_g(&self, s: &[Scalar], out: &mut [G1Affine]) {
        let mut pts: Vec<G1Projective> = s
            .iter()
            .map(|a| {
                let mut acc = G1Projective::identity();
                self.t.add_mul(&self.t.g, a, &mut acc);
                acc
            })
            .collect();
        Self::finish(&mut pts, out);
    }

    /// `out[i] = s[i]*H`.
    pub fn mul_h(&self, s: &[Scalar], out: &mut [G1Affine]) {
        let mut pts: Vec<G1Projective> = s
            .iter()
            .map(|a| {
                let mut acc = G1Projective::identity();
                self.t.add_mul(&self.t.h, a, &mut acc);
                acc
            })
            .collect();
        Self::finish(&mut pts, out);
    }
}

/// Affine conversion of one point (tests).
#[doc(hidden)]
pub fn to_affine(p: &G1Projective) -> G1Affine {
    p.to_affine()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::{Bls12381, Suite};
    use rand_core::OsRng;

    fn fb() -> FixedBase {
        FixedBase::get(Bls12381::h)
    }

    /// Scalars whose digits are all extreme or all minimal, and the edges.
    fn special() -> Vec<Scalar> {
        let t = fb().t;
        let mut v: Vec<Scalar> = [0u8, 0xff, 0xaa, 0x55, 0x80, 0x7f]
            .iter()
            .map(|pat| {
                let mut b = [*pat; 32];
                b[31] &= 0x3f; // v < q
                let v = Scalar::from_bytes_le(&b).unwrap();
                v.double() - t.recode_add // s = 2v - (2^N - 1)
            })
            .collect();
        v.extend([
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            Scalar::from(2u64),
            -Scalar::from(63u64),
            Scalar::from(u64::MAX),
        ]);
        v
    }

    #[test]
    fn recoding_reconstructs_the_scalar() {
        let t = fb().t;
        let mut all = special();
        all.extend((0..20).map(|_| Scalar::random(OsRng)));
        for s in all {
            let mut codes = [0u8; WINDOWS];
            t.recode(&s, &mut codes);
            let mut acc = Scalar::ZERO;
            let mut p = Scalar::ONE;
            for c in codes {
                let d = Scalar::from(2 * u64::from(c & 0x7f) + 1);
                acc += if c >> 7 == 1 { -d * p } else { d * p };
                for _ in 0..WINDOW {
                    p = p.double();
                }
            }
            assert_eq!(acc, s);
        }
    }

    #[test]
    fn commitments_match_blst_multiplication() {
        let sp = special();
        let rev: Vec<Scalar> = sp.iter().rev().copied().collect();
        let mut rnd: Vec<Scalar> = (0..sp.len()).map(|_| Scalar::random(OsRng)).collect();
        rnd[0] = Scalar::ZERO;
        let (g, h) = (G1Projective::generator(), Bls12381::h());
        for (f, fp) in [(&sp, &rev), (&sp, &rnd), (&rnd, &sp)] {
            let mut out = vec![G1Affine::default(); f.len()];
            fb().commit(f, fp, &mut out);
            for i in 0..f.len() {
                assert_eq!(G1Projective::from(out[i]), g * f[i] + h * fp[i], "i={i}");
            }
            fb().mul_g(f, &mut out);
            for i in 0..f.len() {
                assert_eq!(G1Projective::from(out[i]), g * f[i]);
            }
            fb().mul_h(fp, &mut out);
            for i in 0..f.len() {
                assert_eq!(G1Projective::from(out[i]), h * fp[i]);
            }
        }
    }
}
