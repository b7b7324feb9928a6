//! Eight lanes of secp256k1 base-field arithmetic with AVX-512 IFMA, and the two
//! batch-affine kernels built on them (the fixed-base rounds of `fixed_base` and
//! the bucket additions of `pippenger`).
//!
//! **This is the crate's only module with `unsafe` code** (the exception to
//! `deny(unsafe_code)`); its safety argument is below. Everything else calls the
//! safe methods of [`Ifma`].
//!
//! # Representation
//!
//! An [`Fe8`] holds eight field elements in radix 2^52: five `__m512i` limb
//! vectors, lane `j` of limb `i` holding bits `52 i .. 52 i + 52` of element `j`.
//! Invariant ("normalized limbs"): every limb is `< 2^52`, so the element's value
//! `v < 2^260`; it represents `v mod p`. IFMA multiplies only the low 52 bits of
//! its operands, which is why every operation returns normalized limbs.
//!
//! - `mul`, `square`: 25 (15) 52x52-bit products with `vpmadd52luq/huq` into ten
//!   columns (< 2^56 each), then the fold `2^260 = R52 = 0x1000003D10 (mod p)`
//!   applied three times with carry chains in between (see `reduce`).
//! - `sub(a, b) = a + 32 p - b` limb by limb (32 p written with every limb
//!   `>= 2^52`, so no limb goes negative), then `normalize` (two carry chains
//!   and two folds).
//! - Conversions to and from the 4x64-limb [`Fe`] are exact (`to_fe` returns a
//!   weakly reduced `Fe`, `< 2^256`).
//!
//! # Constant time
//!
//! Every field operation is a fixed sequence of vector instructions: no branch
//! and no memory index depends on the lane values (carries are shifts and
//! masks; IFMA, shifts, adds and masked moves have data-independent timing).
//! The fixed-base table scan reads every entry of a window table and selects
//! with a lane mask (`vpcmpeqq` + masked broadcast), and the sign is applied
//! with a masked blend. The only data-dependent decisions are the ones the
//! scalar kernels also make, on whole-batch products that are zero only after
//! a discrete-log relation (see `fixed_base`'s "Exceptional cases"), and the
//! Pippenger kernel, which handles public data only.
//!
//! # Safety argument
//!
//! 1. *CPU support.* Every function that executes AVX-512 instructions is a
//!    `#[target_feature(enable = "avx512f,avx512ifma")]` function in the private
//!    `x86` module. They are reached only through methods of [`Ifma`], a token
//!    whose only constructor, [`Ifma::detect`], returns `Some` after
//!    `is_x86_feature_detected!` confirmed both features at run time. Calling a
//!    target-feature function from the token's methods is the one `unsafe`
//!    operation, justified by the token.
//! 2. *Memory.* Vector loads and stores go through `load`/`store`, which take a
//!    `&[u64; 8]` / `&mut [u64; 8]` (exactly 64 valid, initialized, writable
//!    bytes; unaligned access is used, so alignment does not matter). No raw
//!    pointer is formed from anything else; no gather or scatter is used.
//!    All other intrinsics operate on values only.
//! 3. *Indices.* Slice indexing inside the kernels is ordinary checked Rust
//!    indexing; the public methods check the slice lengths they rely on and
//!    return `false` (nothing done) on a mismatch.

#![allow(unsafe_code)]
// Hot loops over fixed-size lane arrays; every index is a loop variable bounded
// by the array's length or a length checked on entry (see each kernel).
#![allow(clippy::indexing_slicing)]

use super::field::Fe;

/// Eight lanes of one 64-bit word (lane `j` = element `j` of a group).
pub type Lanes = [u64; 8];

/// Eight field elements in memory, radix 2^52, limb-major (`.0[limb][lane]`),
/// normalized limbs (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Fe8Mem(pub [Lanes; 5]);

/// Eight field elements in memory as 4x64-bit limbs (`.0[limb][lane]`), each a
/// weakly reduced [`Fe`] value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Fe8Raw(pub [Lanes; 4]);

impl Fe8Raw {
    /// Sets lane `j` to `v`.
    #[inline(always)]
    pub fn set(&mut self, j: usize, v: &Fe) {
        for (limb, w) in self.0.iter_mut().zip(v.0) {
            if let Some(x) = limb.get_mut(j) {
                *x = w;
            }
        }
    }

    /// Lane `j` as an `Fe`.
    #[inline(always)]
    pub fn get(&self, j: usize) -> Fe {
        let l = |i: usize| self.0.get(i).and_then(|a| a.get(j)).copied().unwrap_or(0);
        Fe([l(0), l(1), l(2), l(3)])
    }
}

/// Eight field elements in memory as consecutive 4x64-bit limbs (element `e`'s
/// limb `l` at flat position `4 e + l`): what a caller copies `Fe` values into
/// with plain 32-byte copies; the kernels transpose it in registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Fe8Aos(pub [Lanes; 4]);

impl Fe8Aos {
    /// Sets element `e` (< 8) to `v`.
    #[inline(always)]
    pub fn set(&mut self, e: usize, v: &Fe) {
        let off = (e % 2) * 4;
        if let Some(dst) = self.0.get_mut(e / 2).and_then(|r| r.get_mut(off..off + 4)) {
            dst.copy_from_slice(&v.0);
        }
    }

    /// Element `e` (< 8) as an `Fe`.
    #[inline(always)]
    pub fn get(&self, e: usize) -> Fe {
        let off = (e % 2) * 4;
        let mut out = [0u64; 4];
        if let Some(src) = self.0.get(e / 2).and_then(|r| r.get(off..off + 4)) {
            out.copy_from_slice(src);
        }
        Fe(out)
    }
}

/// A fixed-base table entry in radix 2^52: `x` limbs then `y` limbs.
pub type Entry52 = [u64; 10];

/// `R52 = 2^260 mod p`.
pub const R52: u64 = 0x10_0000_3D10;

/// Proof that this CPU runs AVX-512F and AVX-512 IFMA (see the safety argument).
#[derive(Clone, Copy, Debug)]
pub struct Ifma {
    _private: (),
}

impl Ifma {
    /// `Some` iff the CPU supports AVX-512F and AVX-512 IFMA (checked at run time).
    pub fn detect() -> Option<Ifma> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma")
            {
                return Some(Ifma { _private: () });
            }
        }
        None
    }

    /// Lane-wise `a * b` (tests and benchmarks of the field layer).
    pub fn mul(self, a: &Fe8Mem, b: &Fe8Mem) -> Fe8Mem {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `self` proves AVX-512F + IFMA support (safety argument 1).
            unsafe { x86::mul_mem(a, b) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (a, b);
            unreachable_token()
        }
    }

    /// Lane-wise `a^2`.
    pub fn square(self, a: &Fe8Mem) -> Fe8Mem {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::square_mem(a) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = a;
            unreachable_token()
        }
    }

    /// Lane-wise `a - b`.
    pub fn sub(self, a: &Fe8Mem, b: &Fe8Mem) -> Fe8Mem {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::sub_mem(a, b) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (a, b);
            unreachable_token()
        }
    }

    /// Lane-wise conversion from 4x64 limbs to radix 2^52.
    pub fn from_raw(self, a: &Fe8Raw) -> Fe8Mem {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::from_raw_mem(a) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = a;
            unreachable_token()
        }
    }

    /// Lane-wise conversion from radix 2^52 to 4x64 limbs (weakly reduced).
    pub fn to_raw(self, a: &Fe8Mem) -> Fe8Raw {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::to_raw_mem(a) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = a;
            unreachable_token()
        }
    }

    /// Constant-time fixed-base rounds (see `fixed_base`): for every round `r`
    /// and element `i`, `acc[i] += T` where `T` is entry `codes[r * n + i] & 0x7f`
    /// of `tables[r]`, negated when bit 7 of the code is set. `n = 8 * groups`
    /// with `groups = acc_x.len()`; the accumulators must never meet `+-T` (the
    /// offset point guarantees it except after a discrete-log relation).
    ///
    /// Returns `false` when some round's batch product is zero: the accumulators
    /// are then partly updated and the caller recomputes the chunk on the scalar
    /// path (an event of negligible probability). Also `false`, with nothing
    /// done, when the slice lengths do not fit.
    #[allow(clippy::too_many_arguments)]
    pub fn fixed_base_rounds(
        self,
        tables: &[&[Entry52]],
        codes: &[u8],
        acc_x: &mut [Fe8Mem],
        acc_y: &mut [Fe8Mem],
        scratch: &mut FixedScratch,
    ) -> bool {
        let groups = acc_x.len();
        if acc_y.len() != groups
            || codes.len() != tables.len() * groups * 8
            || tables.iter().any(|t| t.len() != TABLE_ENTRIES)
        {
            return false;
        }
        scratch.resize(groups);
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::fixed_base_rounds(tables, codes, acc_x, acc_y, scratch) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            unreachable_token()
        }
    }

    /// The last fixed-base round, in careful mode: `acc[i] += t` (the same
    /// point `t` for every element, the negated offset). Zero denominators are
    /// replaced by one in constant time; `inf[i]` is set to 1 where the sum is
    /// the identity (`acc = -t`) and `flag[i]` to 1 where `acc = t` (a doubling,
    /// only after a discrete-log relation; the caller recomputes those). Returns
    /// `false` (nothing done) when the slice lengths do not fit.
    pub fn fixed_base_last_round(
        self,
        t: &Entry52,
        acc_x: &mut [Fe8Mem],
        acc_y: &mut [Fe8Mem],
        inf: &mut [u8],
        flag: &mut [u8],
        scratch: &mut FixedScratch,
    ) -> bool {
        let groups = acc_x.len();
        if acc_y.len() != groups || inf.len() != groups * 8 || flag.len() != groups * 8 {
            return false;
        }
        scratch.resize(groups);
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::fixed_base_last_round(t, acc_x, acc_y, inf, flag, scratch) };
            true
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (t, inf, flag);
            unreachable_token()
        }
    }

    /// Variable-time batch-affine additions for PUBLIC data (Pippenger buckets):
    /// `(out_x, out_y)[i] = (ax, ay)[i] + (px, py)[i]` for every lane, with one
    /// shared inversion, assuming `ax != px` everywhere. Returns `false` (nothing
    /// written) if some `px - ax` is zero, or when the slice lengths differ.
    #[allow(clippy::too_many_arguments)]
    pub fn vartime_batch_add(
        self,
        ax: &[Fe8Aos],
        ay: &[Fe8Aos],
        px: &[Fe8Aos],
        py: &[Fe8Aos],
        out_x: &mut [Fe8Aos],
        out_y: &mut [Fe8Aos],
        scratch: &mut AddScratch,
    ) -> bool {
        let g = ax.len();
        if [ay.len(), px.len(), py.len(), out_x.len(), out_y.len()]
            .iter()
            .any(|l| *l != g)
        {
            return false;
        }
        scratch.resize(g);
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            unsafe { x86::batch_add(ax, ay, px, py, out_x, out_y, scratch) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            unreachable_token()
        }
    }

    /// One constant-time fixed-base multiplication spread over the eight lanes
    /// (the small-batch path of `fixed_base`): slot `k = 8 s + l` is round `s`
    /// of lane `l`, adding entry `codes[k] & 0x7f` of `slots[k]` (negated when
    /// bit 7 is set) to lane `l`'s Jacobian accumulator, which starts at
    /// `start[l]`. The eight lanes are then summed and `corr` is added.
    ///
    /// Returns the sum in Jacobian coordinates with two flags: `inf` when it is
    /// the identity (the lanes' sum was `-corr`), `flag` when an exceptional
    /// case met the formulas (a doubling; only after a discrete-log relation,
    /// see `fixed_base`): the caller then recomputes the result. `None`
    /// (nothing done) when the slice lengths do not fit.
    pub fn fixed_base_lanes(
        self,
        slots: &[&[Entry64]],
        codes: &[u8],
        start: &[Entry64; 8],
        corr: &Entry64,
    ) -> Option<LanesSum> {
        if slots.is_empty() || slots.len() != codes.len() || !slots.len().is_multiple_of(8) {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `mul`.
            Some(unsafe { x86::fixed_base_lanes(slots, codes, start, corr) })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (start, corr);
            unreachable_token()
        }
    }
}

/// A point as eight words: the 4x64 limbs of `x`, then those of `y`.
pub type Entry64 = [u64; 8];

/// The result of [`Ifma::fixed_base_lanes`]: Jacobian `(x, y, z)` (weakly
/// reduced), `inf` and `flag` in `{0, 1}`.
#[derive(Clone, Copy)]
pub struct LanesSum {
    /// Jacobian X.
    pub x: Fe,
    /// Jacobian Y.
    pub y: Fe,
    /// Jacobian Z (zero when `inf` or `flag`).
    pub z: Fe,
    /// 1 when the sum is the identity.
    pub inf: u8,
    /// 1 when the formulas met an exceptional case: recompute.
    pub flag: u8,
}

impl zeroize::Zeroize for LanesSum {
    fn zeroize(&mut self) {
        self.x.zeroize();
        self.y.zeroize();
        self.z.zeroize();
    }
}

/// Without x86-64 no [`Ifma`] token can exist, so its methods cannot be called.
#[cfg(not(target_arch = "x86_64"))]
fn unreachable_token() -> ! {
    unreachable!("an Ifma token exists only on x86-64 CPUs with AVX-512 IFMA")
}

/// Entries per fixed-base window table (`2^(W-1)` for `W = 6`).
pub const TABLE_ENTRIES: usize = 32;

/// Scratch of [`Ifma::fixed_base_rounds`] (reused across rounds and chunks).
#[derive(Default)]
pub struct FixedScratch {
    dx: Vec<Fe8Mem>,
    dy: Vec<Fe8Mem>,
    tx: Vec<Fe8Mem>,
    prefix: Vec<Fe8Mem>,
}

impl FixedScratch {
    fn resize(&mut self, groups: usize) {
        for v in [&mut self.dx, &mut self.dy, &mut self.tx, &mut self.prefix] {
            v.resize(groups, Fe8Mem::default());
        }
    }
}

impl Drop for FixedScratch {
    fn drop(&mut self) {
        // Secret-derived intermediate values of the dealing path.
        use zeroize::Zeroize;
        for v in [&mut self.dx, &mut self.dy, &mut self.tx, &mut self.prefix] {
            for e in v.iter_mut() {
                for l in e.0.iter_mut() {
                    l.zeroize();
                }
            }
        }
    }
}

/// Scratch of [`Ifma::vartime_batch_add`].
#[derive(Default)]
pub struct AddScratch {
    dx: Vec<Fe8Mem>,
    prefix: Vec<Fe8Mem>,
}

impl AddScratch {
    fn resize(&mut self, groups: usize) {
        self.dx.resize(groups, Fe8Mem::default());
        self.prefix.resize(groups, Fe8Mem::default());
    }
}

/// Inverts eight elements with one inversion (Montgomery's trick); zero stays zero
/// only if all are non-zero (callers check). Constant time.
fn invert8(v: &[Fe; 8]) -> [Fe; 8] {
    let mut pre = [Fe::ONE; 8];
    let mut acc = Fe::ONE;
    for (p, x) in pre.iter_mut().zip(v) {
        *p = acc;
        acc = acc.mul(x);
    }
    let mut inv = acc.invert();
    let mut out = [Fe::ZERO; 8];
    for i in (0..8).rev() {
        out[i] = inv.mul(&pre[i]);
        inv = inv.mul(&v[i]);
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    use super::{
        invert8, AddScratch, Entry52, Entry64, Fe8Aos, Fe8Mem, Fe8Raw, FixedScratch, Lanes,
        LanesSum, R52,
    };
    use crate::backend::secp256k1::field::Fe;

    /// Eight field elements in registers (normalized limbs).
    #[derive(Clone, Copy)]
    pub(super) struct Fe8([__m512i; 5]);

    const M52: i64 = (1 << 52) - 1;
    const M48: i64 = (1 << 48) - 1;
    /// `2^256 mod p`.
    const R256: i64 = 0x1_0000_03D1;
    /// `32 p` in radix 2^52, every limb `>= 2^52`.
    const P32: [i64; 5] = [
        0xF_FFFE_FFFF_FC2F << 5,
        0xF_FFFF_FFFF_FFFF << 5,
        0xF_FFFF_FFFF_FFFF << 5,
        0xF_FFFF_FFFF_FFFF << 5,
        0xFFFF_FFFF_FFFF << 5,
    ];

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn splat(x: i64) -> __m512i {
        _mm512_set1_epi64(x)
    }

    /// Loads eight words. Safe: a `&Lanes` is 64 valid bytes (safety argument 2).
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn load(a: &Lanes) -> __m512i {
        // SAFETY: `a` points to 64 readable bytes; `loadu` has no alignment need.
        unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
    }

    /// Stores eight words. Safe: a `&mut Lanes` is 64 valid writable bytes.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn store(a: &mut Lanes, v: __m512i) {
        // SAFETY: `a` points to 64 writable bytes; `storeu` has no alignment need.
        unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn ld(a: &Fe8Mem) -> Fe8 {
        Fe8([
            load(&a.0[0]),
            load(&a.0[1]),
            load(&a.0[2]),
            load(&a.0[3]),
            load(&a.0[4]),
        ])
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn st(a: &mut Fe8Mem, v: &Fe8) {
        for (m, x) in a.0.iter_mut().zip(v.0) {
            store(m, x);
        }
    }

    /// `(lo & M52, hi + (lo >> 52))`: one carry step.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn carry(lo: __m512i, hi: __m512i) -> (__m512i, __m512i) {
        (
            _mm512_and_si512(lo, splat(M52)),
            _mm512_add_epi64(hi, _mm512_srli_epi64::<52>(lo)),
        )
    }

    /// Normalizes limbs `< 2^62` (value `< 2^262`) to normalized limbs.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn normalize(v: [__m512i; 5]) -> Fe8 {
        let [t0, t1, t2, t3, t4] = v;
        let r = splat(R52 as i64);
        let (t0, t1) = carry(t0, t1);
        let (t1, t2) = carry(t1, t2);
        let (t2, t3) = carry(t2, t3);
        let (t3, t4) = carry(t3, t4);
        // top < 2^10: top * R52 < 2^47, exact in the low product.
        let top = _mm512_srli_epi64::<52>(t4);
        let t4 = _mm512_and_si512(t4, splat(M52));
        let t0 = _mm512_madd52lo_epu64(t0, top, r);
        let (t0, t1) = carry(t0, t1);
        let (t1, t2) = carry(t1, t2);
        let (t2, t3) = carry(t2, t3);
        let (t3, t4) = carry(t3, t4);
        // top in {0, 1}; when 1, limbs 1..4 are 0 and limb 0 + R52 carries at most
        // once into limb 1.
        let top = _mm512_srli_epi64::<52>(t4);
        let t4 = _mm512_and_si512(t4, splat(M52));
        let t0 = _mm512_madd52lo_epu64(t0, top, r);
        let (t0, t1) = carry(t0, t1);
        Fe8([t0, t1, t2, t3, t4])
    }

    /// Reduces ten product columns (each `< 2^56`, total `< 2^520`).
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn reduce(t: [__m512i; 10]) -> Fe8 {
        let [t0, t1, t2, t3, t4, t5, t6, t7, t8, t9] = t;
        let r = splat(R52 as i64);
        let z = _mm512_setzero_si512();
        // Normalize columns 5..9 (carrying in from 4); nothing leaves column 9
        // because the total is < 2^520.
        let (t4, t5) = carry(t4, t5);
        let (t5, t6) = carry(t5, t6);
        let (t6, t7) = carry(t6, t7);
        let (t7, t8) = carry(t7, t8);
        let (t8, t9) = carry(t8, t9);
        // Fold columns 5..9 by 2^260 = R52.
        let t0 = _mm512_madd52lo_epu64(t0, t5, r);
        let t1 = _mm512_madd52hi_epu64(t1, t5, r);
        let t1 = _mm512_madd52lo_epu64(t1, t6, r);
        let t2 = _mm512_madd52hi_epu64(t2, t6, r);
        let t2 = _mm512_madd52lo_epu64(t2, t7, r);
        let t3 = _mm512_madd52hi_epu64(t3, t7, r);
        let t3 = _mm512_madd52lo_epu64(t3, t8, r);
        let t4 = _mm512_madd52hi_epu64(t4, t8, r);
        let t4 = _mm512_madd52lo_epu64(t4, t9, r);
        let u5 = _mm512_madd52hi_epu64(z, t9, r);
        // Columns 0..4 < 2^57; u5 < 2^37.
        let (t0, t1) = carry(t0, t1);
        let (t1, t2) = carry(t1, t2);
        let (t2, t3) = carry(t2, t3);
        let (t3, t4) = carry(t3, t4);
        let (t4, u5) = carry(t4, u5);
        // u5 < 2^38: fold it (u5 * R52 < 2^75).
        let t0 = _mm512_madd52lo_epu64(t0, u5, r);
        let t1 = _mm512_madd52hi_epu64(t1, u5, r);
        let (t0, t1) = carry(t0, t1);
        let (t1, t2) = carry(t1, t2);
        let (t2, t3) = carry(t2, t3);
        let (t3, t4) = carry(t3, t4);
        // The value is now < 2^260 + 2^75: top in {0, 1}; when 1, the rest is
        // < 2^75, so adding R52 carries at most once, into a limb 1 < 2^23.
        let top = _mm512_srli_epi64::<52>(t4);
        let t4 = _mm512_and_si512(t4, splat(M52));
        let t0 = _mm512_madd52lo_epu64(t0, top, r);
        let (t0, t1) = carry(t0, t1);
        Fe8([t0, t1, t2, t3, t4])
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    pub(super) fn mul(a: &Fe8, b: &Fe8) -> Fe8 {
        let z = _mm512_setzero_si512();
        let mut lo = [z; 10];
        let mut hi = [z; 10];
        for i in 0..5 {
            for j in 0..5 {
                lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a.0[i], b.0[j]);
                hi[i + j + 1] = _mm512_madd52hi_epu64(hi[i + j + 1], a.0[i], b.0[j]);
            }
        }
        let mut t = [z; 10];
        for k in 0..10 {
            t[k] = _mm512_add_epi64(lo[k], hi[k]);
        }
        reduce(t)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    pub(super) fn square(a: &Fe8) -> Fe8 {
        let z = _mm512_setzero_si512();
        let mut lo = [z; 10];
        let mut hi = [z; 10];
        for i in 0..5 {
            for j in (i + 1)..5 {
                lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a.0[i], a.0[j]);
                hi[i + j + 1] = _mm512_madd52hi_epu64(hi[i + j + 1], a.0[i], a.0[j]);
            }
        }
        let mut t = [z; 10];
        for k in 0..10 {
            t[k] = _mm512_slli_epi64::<1>(_mm512_add_epi64(lo[k], hi[k]));
        }
        for i in 0..5 {
            t[2 * i] = _mm512_madd52lo_epu64(t[2 * i], a.0[i], a.0[i]);
            t[2 * i + 1] = _mm512_madd52hi_epu64(t[2 * i + 1], a.0[i], a.0[i]);
        }
        reduce(t)
    }

    /// `a - b`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    pub(super) fn sub(a: &Fe8, b: &Fe8) -> Fe8 {
        let z = _mm512_setzero_si512();
        let mut t = [z; 5];
        for i in 0..5 {
            t[i] = _mm512_sub_epi64(_mm512_add_epi64(a.0[i], splat(P32[i])), b.0[i]);
        }
        normalize(t)
    }

    /// `a - b - c`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    pub(super) fn sub2(a: &Fe8, b: &Fe8, c: &Fe8) -> Fe8 {
        let z = _mm512_setzero_si512();
        let mut t = [z; 5];
        for i in 0..5 {
            let p64 = _mm512_slli_epi64::<1>(splat(P32[i]));
            t[i] = _mm512_sub_epi64(
                _mm512_sub_epi64(_mm512_add_epi64(a.0[i], p64), b.0[i]),
                c.0[i],
            );
        }
        normalize(t)
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn one() -> Fe8 {
        let z = _mm512_setzero_si512();
        Fe8([splat(1), z, z, z, z])
    }

    /// Lanes where `m` is set take `b`, the others `a`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn blend(m: __mmask8, a: &Fe8, b: &Fe8) -> Fe8 {
        let mut out = a.0;
        for (o, x) in out.iter_mut().zip(b.0) {
            *o = _mm512_mask_blend_epi64(m, *o, x);
        }
        Fe8(out)
    }

    /// 4x64 limbs (each lane `< 2^256`) to radix 2^52.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn from_raw(a: &Fe8Raw) -> Fe8 {
        let m = splat(M52);
        let a0 = load(&a.0[0]);
        let a1 = load(&a.0[1]);
        let a2 = load(&a.0[2]);
        let a3 = load(&a.0[3]);
        Fe8([
            _mm512_and_si512(a0, m),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64::<52>(a0), _mm512_slli_epi64::<12>(a1)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64::<40>(a1), _mm512_slli_epi64::<24>(a2)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64::<28>(a2), _mm512_slli_epi64::<36>(a3)),
                m,
            ),
            _mm512_srli_epi64::<16>(a3),
        ])
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn idx(i: [i64; 8]) -> __m512i {
        _mm512_set_epi64(i[7], i[6], i[5], i[4], i[3], i[2], i[1], i[0])
    }

    /// 4x64 limbs (each element `< 2^256`) from the consecutive layout to radix
    /// 2^52: a 4 x 8 transpose in registers, then the limb split.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn from_aos(a: &Fe8Aos) -> Fe8 {
        let z0 = load(&a.0[0]);
        let z1 = load(&a.0[1]);
        let z2 = load(&a.0[2]);
        let z3 = load(&a.0[3]);
        let lo = idx([0, 4, 8, 12, 1, 5, 9, 13]);
        let hi = idx([2, 6, 10, 14, 3, 7, 11, 15]);
        // (l0 | l1) and (l2 | l3) of elements 0..4, then of elements 4..8.
        let a01 = _mm512_permutex2var_epi64(z0, lo, z1);
        let a23 = _mm512_permutex2var_epi64(z0, hi, z1);
        let b01 = _mm512_permutex2var_epi64(z2, lo, z3);
        let b23 = _mm512_permutex2var_epi64(z2, hi, z3);
        let first = idx([0, 1, 2, 3, 8, 9, 10, 11]);
        let second = idx([4, 5, 6, 7, 12, 13, 14, 15]);
        let mut raw = [
            _mm512_permutex2var_epi64(a01, first, b01),
            _mm512_permutex2var_epi64(a01, second, b01),
            _mm512_permutex2var_epi64(a23, first, b23),
            _mm512_permutex2var_epi64(a23, second, b23),
        ];
        split52(&mut raw)
    }

    /// The radix-2^52 split of four 64-bit limb vectors.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn split52(a: &mut [__m512i; 4]) -> Fe8 {
        let m = splat(M52);
        let [a0, a1, a2, a3] = *a;
        Fe8([
            _mm512_and_si512(a0, m),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64::<52>(a0), _mm512_slli_epi64::<12>(a1)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64::<40>(a1), _mm512_slli_epi64::<24>(a2)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64::<28>(a2), _mm512_slli_epi64::<36>(a3)),
                m,
            ),
            _mm512_srli_epi64::<16>(a3),
        ])
    }

    /// Radix 2^52 to the consecutive 4x64 layout, weakly reduced.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn to_aos(v: &Fe8, out: &mut Fe8Aos) {
        let [l0, l1, l2, l3] = pack64(v);
        let first = idx([0, 1, 2, 3, 8, 9, 10, 11]);
        let second = idx([4, 5, 6, 7, 12, 13, 14, 15]);
        // (l0 | l1) and (l2 | l3) of elements 0..4 and of elements 4..8.
        let a01 = _mm512_permutex2var_epi64(l0, first, l1);
        let b01 = _mm512_permutex2var_epi64(l0, second, l1);
        let a23 = _mm512_permutex2var_epi64(l2, first, l3);
        let b23 = _mm512_permutex2var_epi64(l2, second, l3);
        let lo = idx([0, 4, 8, 12, 1, 5, 9, 13]);
        let hi = idx([2, 6, 10, 14, 3, 7, 11, 15]);
        store(&mut out.0[0], _mm512_permutex2var_epi64(a01, lo, a23));
        store(&mut out.0[1], _mm512_permutex2var_epi64(a01, hi, a23));
        store(&mut out.0[2], _mm512_permutex2var_epi64(b01, lo, b23));
        store(&mut out.0[3], _mm512_permutex2var_epi64(b01, hi, b23));
    }

    /// Radix 2^52 to 4x64 limbs, weakly reduced (`< 2^256`); constant time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn to_raw(v: &Fe8, out: &mut Fe8Raw) {
        let [a0, a1, a2, a3] = pack64(v);
        store(&mut out.0[0], a0);
        store(&mut out.0[1], a1);
        store(&mut out.0[2], a2);
        store(&mut out.0[3], a3);
    }

    /// Radix 2^52 to four 64-bit limb vectors, weakly reduced; constant time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn pack64(v: &Fe8) -> [__m512i; 4] {
        let [t0, t1, t2, t3, t4] = v.0;
        let r = splat(R256);
        // Fold bits 256..259 (top < 16: top * R < 2^37).
        let top = _mm512_srli_epi64::<48>(t4);
        let t4 = _mm512_and_si512(t4, splat(M48));
        let t0 = _mm512_madd52lo_epu64(t0, top, r);
        let (t0, t1) = carry(t0, t1);
        let (t1, t2) = carry(t1, t2);
        let (t2, t3) = carry(t2, t3);
        let (t3, t4) = carry(t3, t4);
        // Carry out of bit 256 in {0, 1}; when 1 the rest is < 2^37.
        let top = _mm512_srli_epi64::<48>(t4);
        let t4 = _mm512_and_si512(t4, splat(M48));
        let t0 = _mm512_madd52lo_epu64(t0, top, r);
        let (t0, t1) = carry(t0, t1);
        let a0 = _mm512_or_si512(t0, _mm512_slli_epi64::<52>(t1));
        let a1 = _mm512_or_si512(_mm512_srli_epi64::<12>(t1), _mm512_slli_epi64::<40>(t2));
        let a2 = _mm512_or_si512(_mm512_srli_epi64::<24>(t2), _mm512_slli_epi64::<28>(t3));
        let a3 = _mm512_or_si512(_mm512_srli_epi64::<36>(t3), _mm512_slli_epi64::<16>(t4));
        [a0, a1, a2, a3]
    }

    /// Lanes whose element is zero mod p (value 0 or p after reduction below
    /// 2^256), as a mask; constant time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn zero_mask(v: &Fe8) -> __mmask8 {
        let mut raw = Fe8Raw::default();
        to_raw(v, &mut raw);
        let a: [__m512i; 4] = [
            load(&raw.0[0]),
            load(&raw.0[1]),
            load(&raw.0[2]),
            load(&raw.0[3]),
        ];
        let p: [i64; 4] = [0xFFFF_FFFE_FFFF_FC2F_u64 as i64, -1, -1, -1];
        let mut is0: __mmask8 = 0xff;
        let mut isp: __mmask8 = 0xff;
        for i in 0..4 {
            is0 &= _mm512_cmpeq_epi64_mask(a[i], _mm512_setzero_si512());
            isp &= _mm512_cmpeq_epi64_mask(a[i], splat(p[i]));
        }
        is0 | isp
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn mul_mem(a: &Fe8Mem, b: &Fe8Mem) -> Fe8Mem {
        let mut out = Fe8Mem::default();
        st(&mut out, &mul(&ld(a), &ld(b)));
        out
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn square_mem(a: &Fe8Mem) -> Fe8Mem {
        let mut out = Fe8Mem::default();
        st(&mut out, &square(&ld(a)));
        out
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn sub_mem(a: &Fe8Mem, b: &Fe8Mem) -> Fe8Mem {
        let mut out = Fe8Mem::default();
        st(&mut out, &sub(&ld(a), &ld(b)));
        out
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn from_raw_mem(a: &Fe8Raw) -> Fe8Mem {
        let mut out = Fe8Mem::default();
        st(&mut out, &from_raw(a));
        out
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn to_raw_mem(a: &Fe8Mem) -> Fe8Raw {
        let mut out = Fe8Raw::default();
        to_raw(&ld(a), &mut out);
        out
    }

    /// The eight lanes as `Fe` values.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn lanes_fe(v: &Fe8) -> [Fe; 8] {
        let mut raw = Fe8Raw::default();
        to_raw(v, &mut raw);
        core::array::from_fn(|j| raw.get(j))
    }

    /// Eight `Fe` values into lanes.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn fe_lanes(v: &[Fe; 8]) -> Fe8 {
        let mut raw = Fe8Raw::default();
        for (j, x) in v.iter().enumerate() {
            raw.set(j, x);
        }
        from_raw(&raw)
    }

    /// The inverse of every lane of `run` (all non-zero: checked by the caller).
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn invert_lanes(run: &Fe8) -> Fe8 {
        fe_lanes(&invert8(&lanes_fe(run)))
    }

    /// Constant-time selection of eight table entries (one per lane) with signs.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn lookup(table: &[Entry52], codes: &[u8]) -> (Fe8, Fe8) {
        let c: [i64; 8] = core::array::from_fn(|j| i64::from(codes.get(j).copied().unwrap_or(0)));
        let codes_v = _mm512_set_epi64(c[7], c[6], c[5], c[4], c[3], c[2], c[1], c[0]);
        let idx = _mm512_and_si512(codes_v, splat(0x7f));
        let neg = _mm512_test_epi64_mask(codes_v, splat(0x80));
        let z = _mm512_setzero_si512();
        let mut acc = [z; 10];
        for (j, e) in table.iter().enumerate() {
            let m = _mm512_cmpeq_epi64_mask(idx, splat(j as i64));
            for (a, w) in acc.iter_mut().zip(e) {
                *a = _mm512_mask_mov_epi64(*a, m, splat(*w as i64));
            }
        }
        let x = Fe8([acc[0], acc[1], acc[2], acc[3], acc[4]]);
        let y = Fe8([acc[5], acc[6], acc[7], acc[8], acc[9]]);
        let ny = sub(&Fe8([z; 5]), &y);
        (x, blend(neg, &y, &ny))
    }

    /// `a + b`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn add(a: &Fe8, b: &Fe8) -> Fe8 {
        normalize(core::array::from_fn(|i| _mm512_add_epi64(a.0[i], b.0[i])))
    }

    /// Eight Jacobian points.
    #[derive(Clone, Copy)]
    struct Jac8 {
        x: Fe8,
        y: Fe8,
        z: Fe8,
    }

    /// `p + (qx, qy)` by `madd-2007-bl` (a = 0), 7M + 4S, and its `h` and `r`:
    /// `h = 0` means `p = +-q` (then `z3 = 0`); `r = 0` as well means `p = q`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn madd_jac(p: &Jac8, qx: &Fe8, qy: &Fe8) -> (Jac8, Fe8, Fe8) {
        let z1z1 = square(&p.z);
        let u2 = mul(qx, &z1z1);
        let s2 = mul(&mul(qy, &p.z), &z1z1);
        let h = sub(&u2, &p.x);
        let hh = square(&h);
        let hh2 = add(&hh, &hh);
        let i = add(&hh2, &hh2);
        let j = mul(&h, &i);
        let r0 = sub(&s2, &p.y);
        let r = add(&r0, &r0);
        let v = mul(&p.x, &i);
        let x3 = sub2(&sub(&square(&r), &j), &v, &v);
        let yj = mul(&p.y, &j);
        let y3 = sub2(&mul(&r, &sub(&v, &x3)), &yj, &yj);
        let z3 = sub2(&square(&add(&p.z, &h)), &z1z1, &hh);
        (
            Jac8 {
                x: x3,
                y: y3,
                z: z3,
            },
            h,
            r0,
        )
    }

    /// `p + q` by `add-2007-bl`, 11M + 5S; `z3 = 0` when `p = +-q` or either
    /// has `z = 0`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn add_jac(p: &Jac8, q: &Jac8) -> Jac8 {
        let z1z1 = square(&p.z);
        let z2z2 = square(&q.z);
        let u1 = mul(&p.x, &z2z2);
        let u2 = mul(&q.x, &z1z1);
        let s1 = mul(&mul(&p.y, &q.z), &z2z2);
        let s2 = mul(&mul(&q.y, &p.z), &z1z1);
        let h = sub(&u2, &u1);
        let h2 = add(&h, &h);
        let i = square(&h2);
        let j = mul(&h, &i);
        let r0 = sub(&s2, &s1);
        let r = add(&r0, &r0);
        let v = mul(&u1, &i);
        let x3 = sub2(&sub(&square(&r), &j), &v, &v);
        let s1j = mul(&s1, &j);
        let y3 = sub2(&mul(&r, &sub(&v, &x3)), &s1j, &s1j);
        let z3 = mul(&sub2(&square(&add(&p.z, &q.z)), &z1z1, &z2z2), &h);
        Jac8 {
            x: x3,
            y: y3,
            z: z3,
        }
    }

    /// Lane `i` of every coordinate takes lane `(i + k) mod 8`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn rotate_jac(p: &Jac8, k: i64) -> Jac8 {
        let ix = idx(core::array::from_fn(|i| (i as i64 + k) & 7));
        let rot = |v: &Fe8| Fe8(v.0.map(|l| _mm512_permutexvar_epi64(ix, l)));
        Jac8 {
            x: rot(&p.x),
            y: rot(&p.y),
            z: rot(&p.z),
        }
    }

    /// Eight points given as eight words each (lane `l` in `e[l]`) to lanes.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn entries_to_lanes(e: &[Entry64; 8]) -> (Fe8, Fe8) {
        let mut rx = Fe8Raw::default();
        let mut ry = Fe8Raw::default();
        for (lane, w) in e.iter().enumerate() {
            for l in 0..4 {
                rx.0[l][lane] = w[l];
                ry.0[l][lane] = w[4 + l];
            }
        }
        let out = (from_raw(&rx), from_raw(&ry));
        for l in rx.0.iter_mut().chain(ry.0.iter_mut()) {
            zeroize::Zeroize::zeroize(l);
        }
        out
    }

    /// Constant-time selection of entry `code & 0x7f` of `table`: every entry
    /// is read and merged under a compare mask.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn scan64(table: &[Entry64], code: u8) -> __m512i {
        let want = splat(i64::from(code & 0x7f));
        let mut acc = _mm512_setzero_si512();
        for (j, e) in table.iter().enumerate() {
            let m = _mm512_cmpeq_epi64_mask(want, splat(j as i64));
            acc = _mm512_mask_mov_epi64(acc, m, load(e));
        }
        acc
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn fixed_base_lanes(
        slots: &[&[Entry64]],
        codes: &[u8],
        start: &[Entry64; 8],
        corr: &Entry64,
    ) -> LanesSum {
        let z = _mm512_setzero_si512();
        let zero = Fe8([z; 5]);
        let (sx, sy) = entries_to_lanes(start);
        let mut acc = Jac8 {
            x: sx,
            y: sy,
            z: one(),
        };
        let mut buf = [[0u64; 8]; 8];
        for (step_slots, step_codes) in slots.chunks_exact(8).zip(codes.chunks_exact(8)) {
            for (l, b) in buf.iter_mut().enumerate() {
                store(b, scan64(step_slots[l], step_codes[l]));
            }
            let c: [i64; 8] = core::array::from_fn(|l| i64::from(step_codes[l]));
            let neg = _mm512_test_epi64_mask(idx(c), splat(0x80));
            let (tx, ty) = entries_to_lanes(&buf);
            let ty = blend(neg, &ty, &sub(&zero, &ty));
            acc = madd_jac(&acc, &tx, &ty).0;
        }
        for b in buf.iter_mut() {
            zeroize::Zeroize::zeroize(b);
        }
        for k in [4, 2, 1] {
            acc = add_jac(&acc, &rotate_jac(&acc, k));
        }
        // Lane 0 holds the sum of the lanes; a zero z there means a tree
        // addition met p = +-q (a discrete-log relation).
        let tree_zero = zero_mask(&acc.z);
        let (cx, cy) = entries_to_lanes(&[*corr; 8]);
        let (sum, h, r) = madd_jac(&acc, &cx, &cy);
        let hz = zero_mask(&h);
        let rz = zero_mask(&r);
        let inf = hz & !rz & !tree_zero;
        let flag = tree_zero | (hz & rz);
        let mut raw = Fe8Raw::default();
        to_raw(&sum.x, &mut raw);
        let x = raw.get(0);
        to_raw(&sum.y, &mut raw);
        let y = raw.get(0);
        to_raw(&sum.z, &mut raw);
        let zz = raw.get(0);
        for l in raw.0.iter_mut() {
            zeroize::Zeroize::zeroize(l);
        }
        LanesSum {
            x,
            y,
            z: zz,
            inf: inf & 1,
            flag: flag & 1,
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn fixed_base_rounds(
        tables: &[&[Entry52]],
        codes: &[u8],
        acc_x: &mut [Fe8Mem],
        acc_y: &mut [Fe8Mem],
        s: &mut FixedScratch,
    ) -> bool {
        let groups = acc_x.len();
        let n = groups * 8;
        for (r, table) in tables.iter().enumerate() {
            let codes = &codes[r * n..(r + 1) * n];
            // Forward: select, differences, running products (one chain per lane).
            let mut run = one();
            for g in 0..groups {
                let (tx, ty) = lookup(table, &codes[g * 8..g * 8 + 8]);
                let ax = ld(&acc_x[g]);
                let ay = ld(&acc_y[g]);
                let dx = sub(&tx, &ax);
                let dy = sub(&ty, &ay);
                run = mul(&run, &dx);
                st(&mut s.tx[g], &tx);
                st(&mut s.dx[g], &dx);
                st(&mut s.dy[g], &dy);
                st(&mut s.prefix[g], &run);
            }
            if zero_mask(&run) != 0 {
                return false;
            }
            let mut inv = invert_lanes(&run);
            // Backward: slopes and the new accumulators.
            for g in (0..groups).rev() {
                let dx = ld(&s.dx[g]);
                let inv_g = if g > 0 {
                    mul(&inv, &ld(&s.prefix[g - 1]))
                } else {
                    inv
                };
                inv = mul(&inv, &dx);
                let lambda = mul(&ld(&s.dy[g]), &inv_g);
                let ax = ld(&acc_x[g]);
                let ay = ld(&acc_y[g]);
                let x3 = sub2(&square(&lambda), &ax, &ld(&s.tx[g]));
                let y3 = sub(&mul(&lambda, &sub(&ax, &x3)), &ay);
                st(&mut acc_x[g], &x3);
                st(&mut acc_y[g], &y3);
            }
        }
        true
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) fn fixed_base_last_round(
        t: &Entry52,
        acc_x: &mut [Fe8Mem],
        acc_y: &mut [Fe8Mem],
        inf: &mut [u8],
        flag: &mut [u8],
        s: &mut FixedScratch,
    ) {
        let groups = acc_x.len();
        let tx = Fe8(core::array::from_fn(|i| splat(t[i] as i64)));
        let ty = Fe8(core::array::from_fn(|i| splat(t[5 + i] as i64)));
        let o = one();
        let mut run = one();
        for g in 0..groups {
            let ax = ld(&acc_x[g]);
            let ay = ld(&acc_y[g]);
            let dx = sub(&tx, &ax);
            let dy = sub(&ty, &ay);
            let zx = zero_mask(&dx);
            let zy = zero_mask(&dy);
            // x equal: y different => identity; y equal => doubling (flagged).
            let inf_m = zx & !zy;
            let flag_m = zx & zy;
            for j in 0..8 {
                inf[g * 8 + j] = (inf_m >> j) & 1;
                flag[g * 8 + j] = (flag_m >> j) & 1;
            }
            let dx = blend(zx, &dx, &o);
            run = mul(&run, &dx);
            st(&mut s.dx[g], &dx);
            st(&mut s.dy[g], &dy);
            st(&mut s.prefix[g], &run);
        }
        // Every factor is non-zero now, so the product is invertible.
        let mut inv = invert_lanes(&run);
        for g in (0..groups).rev() {
            let dx = ld(&s.dx[g]);
            let inv_g = if g > 0 {
                mul(&inv, &ld(&s.prefix[g - 1]))
            } else {
                inv
            };
            inv = mul(&inv, &dx);
            let lambda = mul(&ld(&s.dy[g]), &inv_g);
            let ax = ld(&acc_x[g]);
            let ay = ld(&acc_y[g]);
            let x3 = sub2(&square(&lambda), &ax, &tx);
            let y3 = sub(&mul(&lambda, &sub(&ax, &x3)), &ay);
            st(&mut acc_x[g], &x3);
            st(&mut acc_y[g], &y3);
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn batch_add(
        ax: &[Fe8Aos],
        ay: &[Fe8Aos],
        px: &[Fe8Aos],
        py: &[Fe8Aos],
        out_x: &mut [Fe8Aos],
        out_y: &mut [Fe8Aos],
        s: &mut AddScratch,
    ) -> bool {
        let groups = ax.len();
        let mut run = one();
        for g in 0..groups {
            let dx = sub(&from_aos(&px[g]), &from_aos(&ax[g]));
            run = mul(&run, &dx);
            st(&mut s.dx[g], &dx);
            st(&mut s.prefix[g], &run);
        }
        if zero_mask(&run) != 0 {
            return false;
        }
        let mut inv = invert_lanes(&run);
        for g in (0..groups).rev() {
            let dx = ld(&s.dx[g]);
            let inv_g = if g > 0 {
                mul(&inv, &ld(&s.prefix[g - 1]))
            } else {
                inv
            };
            inv = mul(&inv, &dx);
            let (x1, y1) = (from_aos(&ax[g]), from_aos(&ay[g]));
            let (x2, y2) = (from_aos(&px[g]), from_aos(&py[g]));
            let lambda = mul(&sub(&y2, &y1), &inv_g);
            let x3 = sub2(&square(&lambda), &x1, &x2);
            let y3 = sub(&mul(&lambda, &sub(&x1, &x3)), &y1);
            to_aos(&x3, &mut out_x[g]);
            to_aos(&y3, &mut out_y[g]);
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backend::secp256k1::field::test_values::{all_inputs, rng};
    use rand_chacha::rand_core::RngCore;

    /// The token, on CPUs that have the instructions (the tests below then run
    /// for real; `ifma_is_detected_where_the_cpu_has_it` makes sure they do on
    /// a machine that advertises IFMA).
    fn token() -> Option<Ifma> {
        let t = Ifma::detect();
        if t.is_none() {
            eprintln!("no AVX-512 IFMA on this CPU: the IFMA lanes are not exercised");
        }
        t
    }

    #[test]
    fn ifma_is_detected_where_the_cpu_has_it() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .unwrap_or("");
        let has = |f: &str| flags.split_whitespace().any(|x| x == f);
        if has("avx512f") && has("avx512ifma") {
            assert!(Ifma::detect().is_some());
        }
    }

    fn pack(v: &[Fe; 8]) -> Fe8Mem {
        let mut m = Fe8Mem::default();
        for (j, x) in v.iter().enumerate() {
            for (i, l) in x.to_limbs52().iter().enumerate() {
                m.0[i][j] = *l;
            }
        }
        m
    }

    fn lanes(m: &Fe8Mem) -> [[u64; 5]; 8] {
        core::array::from_fn(|j| core::array::from_fn(|i| m.0[i][j]))
    }

    fn unpack(m: &Fe8Mem) -> [Fe; 8] {
        let l = lanes(m);
        core::array::from_fn(|j| Fe::from_limbs52(&l[j]))
    }

    /// Every output limb is < 2^52 (the invariant IFMA's operands need).
    fn normalized(m: &Fe8Mem) -> bool {
        m.0.iter().flatten().all(|l| *l < (1 << 52))
    }

    /// Radix-2^52 values anywhere in [0, 2^260): limbs at their extremes.
    fn wide_lanes(r: &mut rand_chacha::ChaCha20Rng) -> Fe8Mem {
        let mut m = Fe8Mem::default();
        for limb in m.0.iter_mut() {
            for x in limb.iter_mut() {
                let v = r.next_u64();
                *x = match v % 4 {
                    0 => (1 << 52) - 1,
                    1 => 0,
                    2 => ((1 << 52) - 1) ^ (v >> 60),
                    _ => v >> 12,
                };
            }
        }
        m
    }

    /// Every value meets every other in every lane position (the input list is
    /// rotated across the eight lanes).
    #[test]
    fn every_lane_matches_the_scalar_field() {
        let Some(t) = token() else { return };
        let v = all_inputs();
        let n = v.len();
        for shift in 0..n {
            let a: [Fe; 8] = core::array::from_fn(|j| v[(j * 7 + shift) % n]);
            let b: [Fe; 8] = core::array::from_fn(|j| v[(j * 13 + 3 * shift + 1) % n]);
            let (am, bm) = (pack(&a), pack(&b));
            let prod = t.mul(&am, &bm);
            let sq = t.square(&am);
            let diff = t.sub(&am, &bm);
            for m in [&prod, &sq, &diff] {
                assert!(normalized(m));
            }
            let (p, s, d) = (unpack(&prod), unpack(&sq), unpack(&diff));
            for j in 0..8 {
                assert_eq!(p[j], a[j].mul(&b[j]), "mul lane {j}: {:?} {:?}", a[j], b[j]);
                assert_eq!(s[j], a[j].square(), "square lane {j}: {:?}", a[j]);
                assert_eq!(d[j], a[j].sub(&b[j]), "sub lane {j}: {:?} {:?}", a[j], b[j]);
            }
            // 4x64 <-> radix 2^52 in lanes, both ways.
            let mut raw = Fe8Raw::default();
            for (j, x) in a.iter().enumerate() {
                raw.set(j, x);
            }
            assert_eq!(t.from_raw(&raw), am);
            let back = t.to_raw(&am);
            for (j, x) in a.iter().enumerate() {
                assert_eq!(back.get(j), *x);
            }
        }
    }

    /// Operands anywhere in the weak range [0, 2^260), not only images of `Fe`.
    #[test]
    fn wide_inputs_match_the_scalar_field() {
        let Some(t) = token() else { return };
        let mut r = rng();
        for _ in 0..2000 {
            let (am, bm) = (wide_lanes(&mut r), wide_lanes(&mut r));
            let (a, b) = (unpack(&am), unpack(&bm));
            let prod = t.mul(&am, &bm);
            let sq = t.square(&am);
            let diff = t.sub(&am, &bm);
            let raw = t.to_raw(&am);
            for m in [&prod, &sq, &diff] {
                assert!(normalized(m));
            }
            let (p, s, d) = (unpack(&prod), unpack(&sq), unpack(&diff));
            for j in 0..8 {
                assert_eq!(p[j], a[j].mul(&b[j]));
                assert_eq!(s[j], a[j].square());
                assert_eq!(d[j], a[j].sub(&b[j]));
                assert_eq!(raw.get(j), a[j]);
            }
        }
    }

    /// Long random walks feeding outputs back as inputs, lane by lane against `Fe`.
    #[test]
    fn long_chains_match_the_scalar_field() {
        let Some(t) = token() else { return };
        let mut r = rng();
        let mut xm = wide_lanes(&mut r);
        let mut x = unpack(&xm);
        for i in 0..3000u32 {
            let ym = wide_lanes(&mut r);
            let y = unpack(&ym);
            match (r.next_u32() ^ i) % 4 {
                0 => {
                    xm = t.mul(&xm, &ym);
                    x = core::array::from_fn(|j| x[j].mul(&y[j]));
                }
                1 => {
                    xm = t.square(&xm);
                    x = core::array::from_fn(|j| x[j].square());
                }
                2 => {
                    xm = t.sub(&xm, &ym);
                    x = core::array::from_fn(|j| x[j].sub(&y[j]));
                }
                _ => {
                    xm = t.sub(&ym, &xm);
                    x = core::array::from_fn(|j| y[j].sub(&x[j]));
                }
            }
            assert!(normalized(&xm));
            assert_eq!(unpack(&xm), x, "step {i}");
        }
    }

    /// The Pippenger kernel, lane by lane, against the affine formulas on `Fe`,
    /// with every lane position and group count 1..3; and its refusal when a
    /// denominator is zero.
    #[test]
    fn batch_add_lanes_match_affine_formulas() {
        let Some(t) = token() else { return };
        let mut r = rng();
        for groups in 1..4usize {
            let mut ax = vec![Fe8Aos::default(); groups];
            let mut ay = ax.clone();
            let mut px = ax.clone();
            let mut py = ax.clone();
            let mut want = Vec::new();
            for g in 0..groups {
                for e in 0..8 {
                    let f = |r: &mut rand_chacha::ChaCha20Rng| {
                        Fe([r.next_u64(), r.next_u64(), r.next_u64(), r.next_u64()])
                    };
                    let (x1, y1, x2, y2) = (f(&mut r), f(&mut r), f(&mut r), f(&mut r));
                    ax[g].set(e, &x1);
                    ay[g].set(e, &y1);
                    px[g].set(e, &x2);
                    py[g].set(e, &y2);
                    let l = y2.sub(&y1).mul(&x2.sub(&x1).invert());
                    let x3 = l.square().sub(&x1.add(&x2));
                    let y3 = l.mul(&x1.sub(&x3)).sub(&y1);
                    want.push((x3, y3));
                }
            }
            let mut ox = vec![Fe8Aos::default(); groups];
            let mut oy = ox.clone();
            let mut s = AddScratch::default();
            assert!(t.vartime_batch_add(&ax, &ay, &px, &py, &mut ox, &mut oy, &mut s));
            for g in 0..groups {
                for e in 0..8 {
                    let (x3, y3) = want[g * 8 + e];
                    assert_eq!(ox[g].get(e), x3, "group {g} lane {e}");
                    assert_eq!(oy[g].get(e), y3, "group {g} lane {e}");
                }
            }
            // A zero denominator in any lane: refused, nothing written.
            let x = ax[groups - 1].get(5);
            px[groups - 1].set(5, &x);
            let before = ox.clone();
            assert!(!t.vartime_batch_add(&ax, &ay, &px, &py, &mut ox, &mut oy, &mut s));
            assert_eq!(ox, before);
        }
    }
}
