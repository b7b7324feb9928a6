//! Scalars and GLV decomposition.

use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::point::Affine;
use k256::Scalar;

/// Little-endian 64-bit limbs of a scalar.
#[allow(clippy::indexing_slicing)] // fixed-size arrays; loop bounds are their lengths.
pub(super) fn limbs(s: &Scalar) -> [u64; 4] {
    let b = s.to_bytes();
    let mut out = [0u64; 4];
    for (i, chunk) in b.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        // big-endian bytes: chunk 0 is the most significant limb
        out[3 - i] = u64::from_be_bytes(w);
    }
    out
}

#[allow(clippy::indexing_slicing)] // fixed-size arrays; loop bounds are their lengths.
pub(super) fn bit_len<const L: usize>(k: &[u64; L]) -> usize {
    for i in (0..L).rev() {
        if k[i] != 0 {
            return 64 * i + 64 - k[i].leading_zeros() as usize;
        }
    }
    0
}

/// `g1 = round(2^384 * b2 / n)` (little-endian limbs).
const G1: [u64; 4] = [
    0xe893209a45dbb031,
    0x3daa8a1471e8ca7f,
    0xe86c90e49284eb15,
    0x3086d221a7d46bcd,
];
/// `g2 = round(2^384 * (-b1) / n)`.
const G2: [u64; 4] = [
    0x1571b4ae8ac47f71,
    0x221208ac9df506c6,
    0x6f547fa90abfe4c4,
    0xe4437ed6010e8828,
];
/// `-b1`.
const MINUS_B1: [u64; 3] = [0x6f547fa90abfe4c3, 0xe4437ed6010e8828, 0];
/// `b2 = a1`.
const B2: [u64; 3] = [0xe86c90e49284eb15, 0x3086d221a7d46bcd, 0];
/// `a2`.
const A2: [u64; 3] = [0x57c1108d9d44cfd8, 0x14ca50f7a8e2f3f6, 0x1];

/// `round(k * g / 2^384)` as 192-bit limbs.
#[allow(clippy::indexing_slicing)] // fixed-size arrays; loop bounds are their lengths.
fn mul_shift_384(k: &[u64; 4], g: &[u64; 4]) -> [u64; 3] {
    let mut t = [0u64; 8];
    for i in 0..4 {
        let mut carry = 0u128;
        for j in 0..4 {
            let v = (k[i] as u128) * (g[j] as u128) + t[i + j] as u128 + carry;
            t[i + j] = v as u64;
            carry = v >> 64;
        }
        t[i + 4] = carry as u64;
    }
    let round = t[5] >> 63;
    let (lo, c0) = t[6].overflowing_add(round);
    let (hi, c1) = t[7].overflowing_add(c0 as u64);
    [lo, hi, c1 as u64]
}

/// `a * b mod 2^192`.
#[allow(clippy::indexing_slicing)] // fixed-size arrays; loop bounds are their lengths.
fn mul_lo3(a: &[u64; 3], b: &[u64; 3]) -> [u64; 3] {
    let mut t = [0u64; 3];
    for i in 0..3 {
        let mut carry = 0u128;
        for j in 0..(3 - i) {
            let v = (a[i] as u128) * (b[j] as u128) + t[i + j] as u128 + carry;
            t[i + j] = v as u64;
            carry = v >> 64;
        }
    }
    t
}

fn sub3(a: &[u64; 3], b: &[u64; 3]) -> [u64; 3] {
    let (r0, b0) = a[0].overflowing_sub(b[0]);
    let (r1, b1a) = a[1].overflowing_sub(b[1]);
    let (r1, b1b) = r1.overflowing_sub(b0 as u64);
    let r2 = a[2].wrapping_sub(b[2]).wrapping_sub((b1a || b1b) as u64);
    [r0, r1, r2]
}

/// Splits a 192-bit two's-complement value with `|v| < 2^128` into (negative, |v|).
fn sign_abs(v: &[u64; 3]) -> (bool, [u64; 2]) {
    if v[2] >> 63 == 1 {
        let n = sub3(&[0, 0, 0], v);
        (true, [n[0], n[1]])
    } else {
        (false, [v[0], v[1]])
    }
}

/// GLV split `k = k1 + k2 * lambda (mod n)` with `|k1|, |k2| < 2^128`, returned as
/// (sign, magnitude) pairs.
pub(super) fn glv_decompose(k: &[u64; 4]) -> ((bool, [u64; 2]), (bool, [u64; 2])) {
    let c1 = mul_shift_384(k, &G1);
    let c2 = mul_shift_384(k, &G2);
    // k2 = c1 * (-b1) - c2 * b2 ; k1 = k - c1 * a1 - c2 * a2 (a1 = b2), all mod 2^192.
    let k2 = sub3(&mul_lo3(&c1, &MINUS_B1), &mul_lo3(&c2, &B2));
    let klo = [k[0], k[1], k[2]];
    let k1 = sub3(&sub3(&klo, &mul_lo3(&c1, &B2)), &mul_lo3(&c2, &A2));
    (sign_abs(&k1), sign_abs(&k2))
}

/// GLV expansion of `(p, k)`: `[(+-p, |k1|), (+-phi(p), |k2|)]` with
/// `phi(x, y) = (beta x, y) = lambda p`.
#[inline]
pub(super) fn glv_expand(p: &Affine, k: &[u64; 4], beta: &Fe) -> ([Affine; 2], [[u64; 2]; 2]) {
    let ((n1, k1), (n2, k2)) = glv_decompose(k);
    let neg_y = p.y.neg();
    let p0 = Affine {
        x: p.x,
        y: if n1 { neg_y } else { p.y },
        infinity: p.infinity,
    };
    let p1 = Affine {
        x: p.x.mul(beta),
        y: if n2 { neg_y } else { p.y },
        infinity: p.infinity,
    };
    ([p0, p1], [k1, k2])
}
