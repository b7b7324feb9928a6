//! A generic Pippenger MSM over any `group::Group` (projective additions, signed
//! digits). The serial reference for suites whose fast path lives elsewhere.

use ff::PrimeField;
use group::Group;

/// Signed-digit recoding of a little-endian 256-bit integer into windows of `c`
/// bits, digits in `[-2^(c-1), 2^(c-1)]`.
pub(crate) fn signed_digits(le: &[u8; 32], c: usize, out: &mut Vec<i64>) {
    out.clear();
    let nwin = 256usize.div_ceil(c) + 1;
    let bit = |i: usize| -> u64 { le.get(i / 8).map_or(0, |b| u64::from((b >> (i % 8)) & 1)) };
    let mut carry = 0i64;
    for w in 0..nwin {
        let mut v = 0u64;
        for b in 0..c {
            v |= bit(w * c + b) << b;
        }
        let mut d = v as i64 + carry;
        carry = 0;
        if d > (1i64 << (c - 1)) {
            d -= 1i64 << c;
            carry = 1;
        }
        out.push(d);
    }
}

/// Little-endian bytes of a scalar whose `to_repr` may be either endianness.
pub(crate) fn scalar_le<F: PrimeField>(s: &F, big_endian_repr: bool) -> [u8; 32] {
    let repr = s.to_repr();
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(repr.as_ref().iter().take(32)) {
        *o = *b;
    }
    if big_endian_repr {
        out.reverse();
    }
    out
}

/// Variable-time Pippenger: `sum scalars[i] * points[i]`.
pub fn vartime_pippenger<G: Group>(points: &[G], scalars: &[G::Scalar], be_repr: bool) -> G {
    let n = points.len().min(scalars.len());
    if n == 0 {
        return G::identity();
    }
    let c = if n < 32 {
        3
    } else {
        ((n as f64).ln().ceil() as usize).clamp(4, 16)
    };
    let mut digits: Vec<Vec<i64>> = Vec::with_capacity(n);
    let mut tmp = Vec::new();
    for s in scalars.iter().take(n) {
        signed_digits(&scalar_le(s, be_repr), c, &mut tmp);
        digits.push(tmp.clone());
    }
    let nwin = digits.first().map_or(0, Vec::len);
    let half = 1usize << (c - 1);
    let mut buckets = vec![G::identity(); half];
    let mut acc = G::identity();
    for w in (0..nwin).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        for b in buckets.iter_mut() {
            *b = G::identity();
        }
        for (p, d) in points.iter().zip(&digits) {
            let d = d.get(w).copied().unwrap_or(0);
            if d > 0 {
                if let Some(b) = buckets.get_mut(d as usize - 1) {
                    *b += p;
                }
            } else if d < 0 {
                if let Some(b) = buckets.get_mut((-d) as usize - 1) {
                    *b -= p;
                }
            }
        }
        let mut running = G::identity();
        let mut sum = G::identity();
        for b in buckets.iter().rev() {
            running += b;
            sum += running;
        }
        acc += sum;
    }
    acc
}
