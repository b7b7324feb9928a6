//! Constant-time recoding of the scalars and constant-time table scan.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use k256::Scalar;
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

use super::tables::{Entry, RawEntry, Tables};
use crate::backend::secp256k1::field::Fe;

/// Recodes `s` into `WINDOWS` digit codes written to `out` (stride `stride`):
/// code = `j | (neg << 7)`, meaning digit `(-1)^neg (2j+1)`.
#[inline]
pub(super) fn recode<const W: usize>(t: &Tables<W>, s: &Scalar, out: &mut [u8], stride: usize) {
    let v = (*s + t.recode_add) * t.half;
    let mut bytes = v.to_bytes();
    // little-endian 64-bit limbs plus a zero limb so windows may straddle bit 256
    let mut limbs = [0u64; 5];
    for (k, limb) in limbs.iter_mut().take(4).enumerate() {
        let mut w = [0u8; 8];
        #[allow(clippy::indexing_slicing)] // k < 4: 0 <= 24 - 8k < 32 - 8k <= 32
        // Public positions: bytes are big-endian, limb k holds bytes 24-8k..32-8k.
        w.copy_from_slice(&bytes[24 - 8 * k..32 - 8 * k]);
        *limb = u64::from_be_bytes(w);
        w.zeroize();
    }
    bytes.zeroize();
    let lowmask = (1u64 << (W - 1)) - 1;
    let wmask = (1u64 << W) - 1;
    for (i, o) in out
        .iter_mut()
        .step_by(stride.max(1))
        .take(Tables::<W>::WINDOWS)
        .enumerate()
    {
        let bit = i * W;
        let (li, sh) = (bit / 64, bit % 64);
        // li <= 4 because bit < W*WINDOWS <= 256 + W - 1 < 320.
        let lo = limbs.get(li).copied().unwrap_or(0) >> sh;
        let hi = if sh == 0 {
            0
        } else {
            limbs.get(li + 1).copied().unwrap_or(0) << (64 - sh)
        };
        let u = (lo | hi) & wmask;
        let top = (u >> (W - 1)) & 1;
        let neg = top ^ 1;
        // digit = 2u - (2^W - 1); |digit| = 2j + 1 with j = u's low bits, complemented
        // when the digit is negative.
        let j = (u ^ (neg.wrapping_neg() & lowmask)) & lowmask;
        *o = (j | (neg << 7)) as u8;
    }
    limbs.zeroize();
}

/// Constant-time scan of a raw table plus conditional negation: every entry is read
/// and masked; the masks go through `black_box` so that the compiler cannot turn the
/// masking into branches.
#[inline(always)]
pub(super) fn lookup_raw(table: &[RawEntry], code: u8) -> Entry {
    let idx = u64::from(code & 0x7f);
    let neg = Choice::from(code >> 7);
    let mut acc = [0u64; 8];
    for (j, e) in table.iter().enumerate() {
        let d = (j as u64) ^ idx;
        // d < 128, so d - 1 has its top bit set iff d == 0.
        let mask = core::hint::black_box(0u64.wrapping_sub(d.wrapping_sub(1) >> 63));
        for (a, w) in acc.iter_mut().zip(e) {
            *a |= w & mask;
        }
    }
    let [x0, x1, x2, x3, y0, y1, y2, y3] = acc;
    let x = Fe([x0, x1, x2, x3]);
    let y = Fe([y0, y1, y2, y3]);
    Entry {
        x,
        y: Fe::conditional_select(&y, &y.neg(), neg),
    }
}
