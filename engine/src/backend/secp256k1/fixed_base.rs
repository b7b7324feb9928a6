//! Constant-time batch fixed-base multiplication by `G` and `H` for secret scalars.
//!
//! Computes `f*G`, `f*H` and Pedersen commitments `f*G + f'*H` for a whole batch of
//! secret scalars at once, with every intermediate point kept in affine
//! coordinates and the additions of the batch sharing one field inversion per
//! round ("batch-affine" addition, Montgomery's simultaneous-inversion trick).
//!
//! # Algorithm
//!
//! *Recoding.* With window width `W` and `M = ceil(256 / W)` windows (`N = W*M`
//! bits), every scalar `s` is written as `s = sum_i d_i 2^(W i) (mod n)` with every
//! digit `d_i` **odd** and `|d_i| <= 2^W - 1` (the recoding of libsecp256k1's
//! `ecmult_gen`): let `v = (s + 2^N - 1) / 2 mod n`; a bit string `b_j` then
//! represents `sum_j (2 b_j - 1) 2^j = 2v - (2^N - 1) = s (mod n)`, and grouping the
//! `+-1` digits by `W` gives `d_i = 2 u_i - (2^W - 1)` where `u_i` is the `i`-th
//! `W`-bit window of `v`. No digit is ever zero, so a table never needs the identity,
//! and the table only stores the `2^(W-1)` positive odd multiples: the sign is
//! applied by a constant-time conditional negation of `y`.
//!
//! *Tables.* For each base `P` in `{G, H}` and window `i`, `T_P[i][j] = (2j+1) 2^(W i) P`
//! (affine, normalized). There are no doublings at run time: a scalar costs `M`
//! additions of table points. With `W = 6` ([`WINDOW`]): `M = 43` windows of 32 points,
//! 64 bytes each (x and y as canonical little-endian limbs of [`Fe`]), 176 KiB for `G` and `H` together,
//! built once on first use (`OnceLock`, a few milliseconds; see [`init_tables`]).
//! `W = 6` measured best: `W = 5` needs 20% more additions, `W = 7` doubles the scan.
//!
//! *Offset.* Every accumulator starts at a fixed public point `R` whose discrete log
//! with respect to `G` and `H` is unknown (a "nothing up my sleeve" point: the
//! first valid x-coordinate of SHA3-256(domain || counter), even y). The last round
//! adds `-R`.
//!
//! *Batch-affine rounds.* A round adds one table point `T_k` (selected by that
//! scalar's digit) to each accumulator `A_k`: `lambda = (T.y - A.y) / (T.x - A.x)`,
//! `x3 = lambda^2 - A.x - T.x`, `y3 = lambda (A.x - x3) - A.y`. The denominators of the
//! whole batch are inverted together (one `invert` per round per batch, then 3
//! multiplications per element), so an addition costs about 5M + 1S instead of
//! ~8M + 3S for a mixed Jacobian addition, and the outputs are already affine.
//! For a commitment there are `2M + 1 = 87` rounds (`M` for `G`, `M` for `H`, one
//! for `-R`); for `s*G` or `s*H` alone, `M + 1 = 44`.
//!
//! *Batch size.* Slices are processed in chunks of [`CHUNK`] = 1024 elements (about
//! 250 KiB of scratch). The shared inversion costs about the same as 260
//! multiplications, so chunks below ~256 elements lose more than 5%; 512..2048 are
//! equally good. Callers that parallelize should hand each thread at least ~512
//! elements.
//!
//! # Constant time
//!
//! * The digits are computed with arithmetic and bit operations only (scalar `add`,
//!   `mul` of k256 are constant time; the windows are extracted at public positions).
//! * Each lookup reads every entry of the window table and accumulates
//!   `entry & mask` with `mask = 0 - (j == idx)` computed arithmetically and passed
//!   through `core::hint::black_box` (so the compiler cannot turn the masking into
//!   branches); the selected words are the limbs of [`Fe`] values (no decoding) and
//!   the sign is applied with `conditional_select`. No secret-dependent index or branch.
//! * The field arithmetic is our [`Fe`] (`field.rs`): mul/square/add/sub/neg/normalize
//!   use masked carries only, and `invert` is a fixed Fermat addition chain; all are
//!   constant time. The batch-inversion data flow is independent of the values.
//! * The digit arrays and the accumulators are zeroized after use.
//!
//! # Exceptional cases
//!
//! The affine addition formula fails when `A.x == T.x` (`A = T`: doubling needed;
//! `A = -T`: the sum is the identity). Worse, with a shared inversion a single zero
//! denominator would zero the product of the whole batch. Why this cannot happen
//! except by solving a discrete logarithm:
//!
//! * In every round but the last, the accumulator is `A = R + a G + b H` and the table
//!   point is `T = c G` or `T = c H` with integers `a, b, c` determined by the scalars
//!   (when `G` rounds run, `b = 0`). `A = +-T` means `R = (+-c - a) G - b H` (or the
//!   analogous relation with `H`): an explicit representation of `R` in base `G, H`.
//!   Since `R` is a hash-derived point, producing such scalars is as hard as computing
//!   a discrete logarithm; for uniformly random secret scalars the probability is
//!   about `2 (2M+1) / n ~ 2^-249`. This holds for *every* scalar value, including 0
//!   and values with extreme digits: the identity is never reached before the last
//!   round because `R` is never cancelled by `aG + bH`.
//! * In the last round (adding `-R` to `A = R + S` where `S` is the result), `A.x == (-R).x`
//!   happens iff `S = O` (e.g. zero scalars; then `A = R`, `dy != 0`) or `S = -2R`
//!   (a discrete-log relation again, `dy == 0`). The last round therefore checks every
//!   denominator in constant time, replaces a zero denominator by 1 (so that the batch
//!   product stays invertible) and sets the output to the identity when `S = O`.
//!
//! If an impossible case happens anyway (a zero batch product in an ordinary round, or
//! `S = -2R`): the round is re-run in a careful mode that replaces the zero
//! denominators by 1 and flags those elements; flagged outputs are then recomputed
//! with k256's complete (constant-time) projective arithmetic, so the result is
//! always correct, never a panic. The only leak is the single bit "an event of
//! probability ~2^-249 happened in this batch", and the decision to enter the
//! careful mode is taken on the whole-batch product.

use std::sync::OnceLock;

use k256::elliptic_curve::ops::MulByGenerator;
use k256::{ProjectivePoint, Scalar};
use sha3::{Digest, Sha3_256};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroize;

use super::field::Fe;
use super::ifma::{Entry52, Fe8Mem, FixedScratch, Ifma};
use super::point::Affine;
use crate::backend::simd::{self, SimdBackend};

/// Window width in bits (digits are odd, in `[-(2^W - 1), 2^W - 1]`).
pub const WINDOW: usize = 6;

/// Elements processed together (one shared inversion per round); callers gain
/// nothing by handing larger slices, which are processed in chunks of this size.
pub const CHUNK: usize = 1024;

const H_X: [u8; 32] = hex32("bd48405ed3251dbb9f783c5a51cbf46016252921b268ebd47d0a0389f7b93cc1");
const H_Y: [u8; 32] = hex32("8d8aca53b562a88df1b823928ff9ec96ea4daf03346e935544f104fe77898f45");

const OFFSET_DOMAIN: &[u8] = b"torus-engine/secp256k1/fixed_base/offset-point/v1";

const fn hex_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex"),
    }
}

#[allow(clippy::indexing_slicing)] // i < 32 and 2i+1 < 64 = b.len() (asserted); const-evaluated
const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (hex_nibble(b[2 * i]) << 4) | hex_nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// The second generator H as an Affine point.
pub fn h_affine() -> Affine {
    let x = Fe::from_bytes(&H_X).unwrap_or(Fe::ZERO);
    let y = Fe::from_bytes(&H_Y).unwrap_or(Fe::ZERO);
    Affine::new_unchecked(x, y)
}

/// A table point in normalized affine coordinates (never the identity).
#[derive(Clone, Copy, Debug)]
struct Entry {
    x: Fe,
    y: Fe,
}

impl Entry {
    const ZERO: Entry = Entry {
        x: Fe::ZERO,
        y: Fe::ZERO,
    };
}

impl Zeroize for Entry {
    fn zeroize(&mut self) {
        self.x.zeroize();
        self.y.zeroize();
    }
}

/// Per-window tables of odd multiples of one base.
struct BaseTable {
    /// `windows * 2^(W-1)` points, window-major, as raw words: the canonical limbs
    /// of x then y (compact and cheap to scan with plain masking).
    raw: Vec<RawEntry>,
    /// The same points in radix 2^52 (x limbs then y limbs), for the IFMA lanes.
    raw52: Vec<Entry52>,
}

fn entry52(e: &Entry) -> Entry52 {
    let x = e.x.normalize().to_limbs52();
    let y = e.y.normalize().to_limbs52();
    [x[0], x[1], x[2], x[3], x[4], y[0], y[1], y[2], y[3], y[4]]
}

/// x and y encodings (see [`BaseTable::raw`]).
type RawEntry = [u64; 8];

fn raw_entry(e: &Entry) -> RawEntry {
    let [x0, x1, x2, x3] = e.x.normalize().0;
    let [y0, y1, y2, y3] = e.y.normalize().0;
    [x0, x1, x2, x3, y0, y1, y2, y3]
}

/// Precomputed data for window width `W`.
#[doc(hidden)]
pub struct Tables<const W: usize> {
    g: BaseTable,
    h: BaseTable,
    /// The offset point `R`.
    offset: Entry,
    /// `-R`.
    neg_offset: Entry,
    /// `2^N - 1 mod n` with `N = W * windows`.
    recode_add: Scalar,
    /// `1/2 mod n`.
    half: Scalar,
}

impl<const W: usize> Tables<W> {
    /// Number of windows.
    pub const WINDOWS: usize = 256_usize.div_ceil(W);
    /// Entries per window.
    pub const ENTRIES: usize = 1 << (W - 1);

    /// Builds all tables (one-time cost).
    pub fn new() -> Self {
        assert!(W >= 2 && W <= 8);
        let g = build_base_table::<W>(ProjectivePoint::GENERATOR);
        let h = build_base_table::<W>(h_affine().to_projective());
        let offset = offset_point();
        let neg_offset = Entry {
            x: offset.x,
            y: offset.y.neg(),
        };
        let n_bits = W * Self::WINDOWS;
        let mut p2 = Scalar::ONE;
        for _ in 0..n_bits {
            p2 = p2 + p2;
        }
        let recode_add = p2 - Scalar::ONE;
        let half = Scalar::from(2u64).invert().unwrap_or(Scalar::ZERO);
        Tables {
            g,
            h,
            offset,
            neg_offset,
            recode_add,
            half,
        }
    }

    /// Table memory in bytes.
    pub fn size_bytes(&self) -> usize {
        (self.g.raw.len() + self.h.raw.len())
            * (core::mem::size_of::<RawEntry>() + core::mem::size_of::<Entry52>())
    }
}

impl<const W: usize> Default for Tables<W> {
    fn default() -> Self {
        Self::new()
    }
}

fn build_base_table<const W: usize>(base: ProjectivePoint) -> BaseTable {
    let windows = Tables::<W>::WINDOWS;
    let per = Tables::<W>::ENTRIES;
    let mut proj = Vec::with_capacity(windows * per);
    let mut b = base;
    for _ in 0..windows {
        let b2 = b.double();
        let mut e = b;
        for _ in 0..per {
            proj.push(e);
            e += b2;
        }
        for _ in 0..W {
            b = b.double();
        }
    }
    let entries: Vec<Entry> = Affine::batch_from_projective(&proj)
        .iter()
        .map(|a| Entry { x: a.x, y: a.y })
        .collect();
    BaseTable {
        raw: entries.iter().map(raw_entry).collect(),
        raw52: entries.iter().map(entry52).collect(),
    }
}

/// The offset point R: first x = SHA3-256(domain || ctr) (ctr = 0, 1, ...) that is a
/// valid x-coordinate, with even y. Nobody knows its discrete log w.r.t. G or H.
fn offset_point() -> Entry {
    let mut ctr: u32 = 0;
    loop {
        let mut hasher = Sha3_256::new();
        hasher.update(OFFSET_DOMAIN);
        hasher.update(ctr.to_be_bytes());
        let digest = hasher.finalize();
        let x = Fe::from_bytes(&digest.into());
        if let Some(x) = x {
            let rhs = x.square().mul(&x).add(&Fe::from_u64(7));
            let y: Option<Fe> = rhs.sqrt().into();
            if let Some(y) = y {
                let y = y.normalize();
                let y = if bool::from(y.is_odd()) {
                    y.neg().normalize()
                } else {
                    y
                };
                return Entry { x, y };
            }
        }
        ctr = ctr.wrapping_add(1);
    }
}

/// Returns the tables used by the public API.
fn tables() -> &'static Tables<WINDOW> {
    static T: OnceLock<Tables<WINDOW>> = OnceLock::new();
    T.get_or_init(Tables::new)
}

/// Forces the one-time table construction (e.g. at startup, to keep it out of timings).
pub fn init_tables() {
    let _ = tables();
}

/// Recodes `s` into `WINDOWS` digit codes written to `out` (stride `stride`):
/// code = `j | (neg << 7)`, meaning digit `(-1)^neg (2j+1)`.
#[inline]
fn recode<const W: usize>(t: &Tables<W>, s: &Scalar, out: &mut [u8], stride: usize) {
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
fn lookup_raw(table: &[RawEntry], code: u8) -> Entry {
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

/// Scratch space for one chunk.
struct Work {
    /// accumulators (weakly reduced `Fe`)
    acc: Vec<Entry>,
    /// the points being added this round
    tsel: Vec<Entry>,
    /// prefix products of the denominators
    prefix: Vec<Fe>,
    /// the denominators (zero ones replaced by one in careful mode)
    den: Vec<Fe>,
    /// 1 where an exceptional case was met (see module docs)
    flags: Vec<u8>,
}

impl Work {
    fn new(n: usize, start: Entry) -> Self {
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
enum Bases {
    G,
    H,
    GH,
}

/// Core: processes one chunk (any length) with tables `t` on `backend`.
fn run_chunk<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
    backend: SimdBackend,
) {
    if out.len() < SMALL_BATCH {
        run_chunk_small::<W>(t, bases, a, b, out);
        return;
    }
    if let (SimdBackend::Avx512Ifma, Some(ifma)) = (backend, Ifma::detect()) {
        if run_chunk_ifma::<W>(ifma, t, bases, a, b, out) {
            return;
        }
    }
    run_chunk_scalar::<W>(t, bases, a, b, out);
}

/// Recodes the scalars of a chunk: `digits[k * stride + i]` is the code of round
/// `k` for element `i` (`stride >= n`; padding elements keep code 0).
fn recode_chunk<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    n: usize,
    stride: usize,
) -> Vec<u8> {
    let m = Tables::<W>::WINDOWS;
    let two = matches!(bases, Bases::GH);
    let rounds = if two { 2 * m } else { m };
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
fn round_table<const W: usize>(t: &Tables<W>, bases: Bases, k: usize) -> (&BaseTable, usize) {
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
fn run_chunk_ifma<const W: usize>(
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
    let two = matches!(bases, Bases::GH);
    let rounds = if two {
        2 * Tables::<W>::WINDOWS
    } else {
        Tables::<W>::WINDOWS
    };
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
fn fallback_flagged(bases: Bases, a: &[Scalar], b: &[Scalar], out: &mut [Affine], flags: &[u8]) {
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
fn run_chunk_scalar<const W: usize>(
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
    let m = Tables::<W>::WINDOWS;
    let per = Tables::<W>::ENTRIES;
    let two = matches!(bases, Bases::GH);
    let rounds = if two { 2 * m } else { m };
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
fn finish_chunk<const W: usize>(
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

/// Batches below this size take [`run_chunk_small`]: a batch-affine round costs
/// one inversion (~270 multiplications) whatever the batch size.
pub const SMALL_BATCH: usize = 16;

/// A Jacobian point of the small-batch path.
#[derive(Clone, Copy)]
struct JacCt {
    x: Fe,
    y: Fe,
    z: Fe,
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
fn run_chunk_small<const W: usize>(
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
    let two = matches!(bases, Bases::GH);
    let rounds = if two {
        2 * Tables::<W>::WINDOWS
    } else {
        Tables::<W>::WINDOWS
    };
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
    // To affine with one shared inversion; a zero z (only after a discrete-log
    // relation) is replaced by 1 and flagged for the fallback.
    let mut work = Work::new(n, t.offset);
    let mut run = Fe::ONE;
    for ((p, pre), flag) in acc
        .iter_mut()
        .zip(work.prefix.iter_mut())
        .zip(work.flags.iter_mut())
    {
        let z0 = p.z.is_zero();
        *flag |= z0.unwrap_u8();
        p.z = Fe::conditional_select(&p.z, &Fe::ONE, z0);
        run = run.mul(&p.z);
        *pre = run;
    }
    let mut inv = run.invert();
    for i in (0..n).rev() {
        #[allow(clippy::indexing_slicing)] // i < n = acc.len() = work.prefix.len()
        {
            let zi = if i > 0 {
                inv.mul(&work.prefix[i - 1])
            } else {
                inv
            };
            inv = inv.mul(&acc[i].z);
            let zi2 = zi.square();
            work.acc[i] = Entry {
                x: acc[i].x.mul(&zi2),
                y: acc[i].y.mul(&zi2.mul(&zi)),
            };
        }
    }
    acc.zeroize();
    finish_chunk::<W>(t, bases, a, b, out, &mut work);
}

fn run_batch<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
    chunk: usize,
) {
    run_batch_on::<W>(t, bases, a, b, out, chunk, simd::selected());
}

fn run_batch_on<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
    chunk: usize,
    backend: SimdBackend,
) {
    let chunk = chunk.max(1);
    let mut start = 0;
    for o in out.chunks_mut(chunk) {
        let end = start + o.len();
        let sa = a.get(start..end).unwrap_or(&[]);
        let sb = b.get(start..end).unwrap_or(&[]);
        run_chunk::<W>(t, bases, sa, sb, o, backend);
        start = end;
    }
}

/// Benchmark hook: commit with explicit tables and chunk size.
#[doc(hidden)]
pub fn commit_with<const W: usize>(
    t: &Tables<W>,
    f: &[Scalar],
    fp: &[Scalar],
    out: &mut [Affine],
    chunk: usize,
) {
    run_batch::<W>(t, Bases::GH, f, fp, out, chunk);
}

/// Test and benchmark hook: commit on an explicit SIMD backend (a backend this
/// CPU lacks runs the scalar path).
#[doc(hidden)]
pub fn commit_on(backend: SimdBackend, f: &[Scalar], fp: &[Scalar], out: &mut [Affine]) {
    let n = f.len().min(fp.len()).min(out.len());
    run_batch_on::<WINDOW>(
        tables(),
        Bases::GH,
        f.get(..n).unwrap_or(&[]),
        fp.get(..n).unwrap_or(&[]),
        out.get_mut(..n).unwrap_or(&mut []),
        CHUNK,
        backend,
    );
}

/// Benchmark hook: s*G with explicit tables and chunk size.
#[doc(hidden)]
pub fn mul_g_with<const W: usize>(t: &Tables<W>, s: &[Scalar], out: &mut [Affine], chunk: usize) {
    run_batch::<W>(t, Bases::G, s, &[], out, chunk);
}

/// Constant-time `out[i] = f[i]*G + fp[i]*H` for secret scalars; outputs affine
/// (batch-normalized).
pub fn ct_commit_batch(f: &[Scalar], fp: &[Scalar], out: &mut [Affine]) {
    debug_assert_eq!(f.len(), fp.len());
    debug_assert_eq!(f.len(), out.len());
    let n = f.len().min(fp.len()).min(out.len());
    run_batch::<WINDOW>(
        tables(),
        Bases::GH,
        f.get(..n).unwrap_or(&[]),
        fp.get(..n).unwrap_or(&[]),
        out.get_mut(..n).unwrap_or(&mut []),
        CHUNK,
    );
}

/// Constant-time `out[i] = s[i]*G`.
pub fn ct_mul_g_batch(s: &[Scalar], out: &mut [Affine]) {
    debug_assert_eq!(s.len(), out.len());
    let n = s.len().min(out.len());
    run_batch::<WINDOW>(
        tables(),
        Bases::G,
        s.get(..n).unwrap_or(&[]),
        &[],
        out.get_mut(..n).unwrap_or(&mut []),
        CHUNK,
    );
}

/// Constant-time `out[i] = s[i]*H`.
pub fn ct_mul_h_batch(s: &[Scalar], out: &mut [Affine]) {
    debug_assert_eq!(s.len(), out.len());
    let n = s.len().min(out.len());
    run_batch::<WINDOW>(
        tables(),
        Bases::H,
        s.get(..n).unwrap_or(&[]),
        &[],
        out.get_mut(..n).unwrap_or(&mut []),
        CHUNK,
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;
    use k256::elliptic_curve::PrimeField;
    use rand_chacha::rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(0x5eed)
    }

    fn h_proj() -> ProjectivePoint {
        h_affine().to_projective()
    }

    fn ref_commit(f: &Scalar, fp: &Scalar) -> Affine {
        Affine::from_projective(&(ProjectivePoint::GENERATOR * f + h_proj() * fp))
    }

    /// Scalars whose recoded digits are all extreme (all +max, all -max, alternating,
    /// ...), plus the usual edge values.
    fn special_scalars<const W: usize>() -> Vec<Scalar> {
        let t = Tables::<W>::new();
        let minus_one = -Scalar::ONE;
        let mut v_list: Vec<Scalar> = vec![Scalar::ZERO, Scalar::ONE, minus_one];
        // v with every window = given pattern (all ones => every digit = +max)
        for pat in [0xffu8, 0x00, 0xaa, 0x55, 0x0f, 0xf0, 0x80, 0x7f] {
            let mut bytes = [pat; 32];
            // keep v < n
            bytes[0] &= 0x7f;
            v_list.push(Scalar::from_repr(bytes.into()).unwrap());
        }
        let mut out: Vec<Scalar> = v_list
            .iter()
            .map(|v| (*v + *v) - t.recode_add) // s = 2v - (2^N - 1)
            .collect();
        let m = Tables::<W>::WINDOWS;
        let top = {
            let mut p = Scalar::ONE;
            for _ in 0..W * (m - 1) {
                p = p + p;
            }
            p
        };
        for d in [1u64, 3, (1 << W) - 1] {
            // s = 2 * d * 2^(W(m-1)): would be a doubling in the top window without R
            let q = top * Scalar::from(d);
            out.push(q + q);
            out.push(-(q + q));
        }
        out.extend([
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::from(2u64),
            Scalar::from(3u64),
            -Scalar::ONE,
            -Scalar::from(2u64),
        ]);
        out
    }

    #[test]
    fn h_matches_constants() {
        let h = h_affine();
        assert!(!h.infinity);
        assert_eq!(&h.x.to_bytes()[..], &H_X[..]);
        assert_eq!(&h.y.to_bytes()[..], &H_Y[..]);
        // on the curve: the conversion to k256 validates the equation
        let k = h.to_k256();
        assert_eq!(Affine::from_k256(&k), h);
        assert!(h.to_projective() != ProjectivePoint::IDENTITY);
    }

    #[test]
    fn offset_is_on_curve() {
        let r = offset_point();
        let a = Affine::new_unchecked(r.x, r.y);
        assert_eq!(Affine::from_k256(&a.to_k256()), a);
    }

    #[test]
    fn recode_roundtrip() {
        let t = Tables::<5>::new();
        let m = Tables::<5>::WINDOWS;
        let mut r = rng();
        let mut scalars = special_scalars::<5>();
        scalars.extend((0..20).map(|_| Scalar::random(&mut r)));
        for s in scalars {
            let mut codes = vec![0u8; m];
            recode::<5>(&t, &s, &mut codes, 1);
            let mut acc = Scalar::ZERO;
            let mut p = Scalar::ONE;
            for &c in &codes {
                let d = Scalar::from(2 * u64::from(c & 0x7f) + 1);
                acc += if c >> 7 == 1 { -d * p } else { d * p };
                for _ in 0..5 {
                    p = p + p;
                }
            }
            assert_eq!(acc, s);
        }
    }

    /// Every SIMD backend this CPU has (the scalar one always).
    fn backends() -> Vec<SimdBackend> {
        [SimdBackend::Scalar, SimdBackend::Avx512Ifma]
            .into_iter()
            .filter(|b| b.available())
            .collect()
    }

    /// Outputs as canonical bytes (x, y, infinity): "bit-identical" means equal here.
    fn bytes(v: &[Affine]) -> Vec<([u8; 32], [u8; 32], bool)> {
        v.iter()
            .map(|p| (p.x.to_bytes(), p.y.to_bytes(), p.infinity))
            .collect()
    }

    fn check_all<const W: usize>(t: &Tables<W>, f: &[Scalar], fp: &[Scalar], chunk: usize) {
        let n = f.len();
        let mut first: Option<Vec<_>> = None;
        for backend in backends() {
            let mut out = vec![Affine::IDENTITY; n];
            let mut all = Vec::new();
            run_batch_on::<W>(t, Bases::GH, f, fp, &mut out, chunk, backend);
            for i in 0..n {
                assert_eq!(
                    out[i],
                    ref_commit(&f[i], &fp[i]),
                    "{backend:?} commit i={i}"
                );
            }
            all.extend(bytes(&out));
            run_batch_on::<W>(t, Bases::G, f, &[], &mut out, chunk, backend);
            for i in 0..n {
                assert_eq!(
                    out[i],
                    ref_commit(&f[i], &Scalar::ZERO),
                    "{backend:?} G i={i}"
                );
            }
            all.extend(bytes(&out));
            run_batch_on::<W>(t, Bases::H, fp, &[], &mut out, chunk, backend);
            for i in 0..n {
                assert_eq!(
                    out[i],
                    ref_commit(&Scalar::ZERO, &fp[i]),
                    "{backend:?} H i={i}"
                );
            }
            all.extend(bytes(&out));
            match &first {
                None => first = Some(all),
                Some(f0) => assert!(f0 == &all, "{backend:?} differs from the scalar backend"),
            }
        }
    }

    #[test]
    fn special_scalars_all_windows() {
        let mut r = rng();
        fn go<const W: usize>(r: &mut rand_chacha::ChaCha20Rng) {
            let t = Tables::<W>::new();
            let sp = special_scalars::<W>();
            let n = sp.len();
            // pair specials with specials (reversed), zeros and random values
            let rev: Vec<Scalar> = sp.iter().rev().copied().collect();
            check_all::<W>(&t, &sp, &rev, 7);
            check_all::<W>(&t, &sp, &vec![Scalar::ZERO; n], 1024);
            check_all::<W>(&t, &vec![Scalar::ZERO; n], &sp, 1024);
            let rnd: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut *r)).collect();
            check_all::<W>(&t, &rnd, &sp, 1024);
        }
        go::<4>(&mut r);
        go::<5>(&mut r);
        go::<6>(&mut r);
    }

    #[test]
    fn public_api_batch_sizes() {
        let mut r = rng();
        for n in [0usize, 1, 2, 3, 257] {
            let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
            let mut fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
            if n == 3 {
                fp[1] = Scalar::ZERO;
            }
            let mut out = vec![Affine::IDENTITY; n];
            ct_commit_batch(&f, &fp, &mut out);
            for i in 0..n {
                assert_eq!(out[i], ref_commit(&f[i], &fp[i]));
            }
            ct_mul_g_batch(&f, &mut out);
            for i in 0..n {
                let e = Affine::from_projective(&ProjectivePoint::mul_by_generator(&f[i]));
                assert_eq!(out[i], e);
            }
            ct_mul_h_batch(&fp, &mut out);
            for i in 0..n {
                assert_eq!(out[i], Affine::from_projective(&(h_proj() * fp[i])));
            }
        }
    }

    #[test]
    fn zero_scalars_give_identity() {
        let z = vec![Scalar::ZERO; 3];
        let mut out = vec![Affine::new_unchecked(Fe::ONE, Fe::ONE); 3];
        ct_commit_batch(&z, &z, &mut out);
        assert!(out.iter().all(|p| p.infinity && *p == Affine::IDENTITY));
        assert!(out
            .iter()
            .all(|p| bool::from(p.x.is_zero() & p.y.is_zero())));
        ct_mul_g_batch(&z, &mut out);
        assert!(out.iter().all(|p| p.infinity));
        ct_mul_h_batch(&z, &mut out);
        assert!(out.iter().all(|p| p.infinity));
    }

    #[test]
    fn chunk_boundaries() {
        let mut r = rng();
        let t = Tables::<5>::new();
        let n = 11;
        let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        for chunk in [1, 2, 4, 10, 11, 64] {
            check_all::<5>(&t, &f, &fp, chunk);
        }
    }

    /// Every batch length from 0 to 41 (all lane remainders, one to six lane
    /// groups) and around the chunk size, on every backend, against k256.
    #[test]
    fn every_size_on_every_backend() {
        let mut r = rng();
        let t = tables();
        for n in (0..=41).chain([1023, 1024, 1025]) {
            let mut f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
            let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
            if n > 3 {
                f[n / 2] = Scalar::ZERO;
                f[1] = -Scalar::ONE;
            }
            if n > 100 {
                // The reference is slow: check a sample of the big sizes.
                let idx: Vec<usize> = (0..n).step_by(61).chain([n - 1]).collect();
                let mut outs = Vec::new();
                for backend in backends() {
                    let mut out = vec![Affine::IDENTITY; n];
                    run_batch_on::<WINDOW>(t, Bases::GH, &f, &fp, &mut out, CHUNK, backend);
                    for &i in &idx {
                        assert_eq!(out[i], ref_commit(&f[i], &fp[i]), "{backend:?} n={n} i={i}");
                    }
                    outs.push(bytes(&out));
                }
                assert!(
                    outs.windows(2).all(|w| w[0] == w[1]),
                    "backends differ at n={n}"
                );
            } else {
                check_all::<WINDOW>(t, &f, &fp, CHUNK);
            }
        }
    }

    #[test]
    fn mismatched_lengths_use_common_prefix() {
        // debug_assert fires in debug builds; the release behaviour is tested via the
        // hooks, which share `run_batch`.
        let mut r = rng();
        let t = Tables::<5>::new();
        let f: Vec<Scalar> = (0..4).map(|_| Scalar::random(&mut r)).collect();
        let fp: Vec<Scalar> = (0..2).map(|_| Scalar::random(&mut r)).collect();
        let n = 2;
        let mut out = vec![Affine::IDENTITY; n];
        commit_with::<5>(&t, &f[..n], &fp, &mut out, 1024);
        for i in 0..n {
            assert_eq!(out[i], ref_commit(&f[i], &fp[i]));
        }
    }

    /// Forces the "impossible" exceptional cases by using an offset with a known
    /// discrete log (R = 3G): the careful mode and the fallback must still give the
    /// right answer.
    #[test]
    fn exceptional_cases_fall_back_correctly() {
        let mut t = Tables::<5>::new();
        let r3 = Affine::from_projective(&(ProjectivePoint::GENERATOR * Scalar::from(3u64)));
        t.offset = Entry { x: r3.x, y: r3.y };
        t.neg_offset = Entry {
            x: r3.x,
            y: r3.y.neg(),
        };
        let mut r = rng();
        // scalars whose lowest digit is -3 or +3 (A = R = 3G meets T = -+3G in round 0),
        // s = -6 (S = -2R in the last round), 0 (identity), and random ones.
        let mut f: Vec<Scalar> = Vec::new();
        for _ in 0..4 {
            let base = Scalar::random(&mut r);
            // force digit 0 to +3 / -3 by adjusting the low window
            let mut codes = [0u8; 64];
            recode::<5>(&t, &base, &mut codes, 1);
            let d0 = 2 * i64::from(codes[0] & 0x7f) + 1;
            let d0 = if codes[0] >> 7 == 1 { -d0 } else { d0 };
            for target in [3i64, -3] {
                let delta = target - d0;
                let ds = if delta >= 0 {
                    Scalar::from(delta as u64)
                } else {
                    -Scalar::from((-delta) as u64)
                };
                f.push(base + ds);
            }
        }
        f.push(-Scalar::from(6u64));
        f.push(Scalar::ZERO);
        f.extend((0..5).map(|_| Scalar::random(&mut r)));
        // Below SMALL_BATCH (Jacobian path) and above it (batch-affine paths).
        let small = f.clone();
        check_exceptional(&t, &small, &mut r);
        f.extend((0..30).map(|_| Scalar::random(&mut r)));
        check_exceptional(&t, &f, &mut r);
    }

    fn check_exceptional(t: &Tables<5>, f: &[Scalar], r: &mut rand_chacha::ChaCha20Rng) {
        let fp: Vec<Scalar> = (0..f.len()).map(|_| Scalar::random(&mut *r)).collect();
        check_all::<5>(t, f, &fp, 1024);
    }

    /// Timing only (`cargo test --release -p torus-engine --lib fixed_base::tests::timing
    /// -- --ignored --nocapture`): microseconds per commitment on each backend.
    #[test]
    #[ignore]
    fn timing() {
        let mut r = rng();
        let n = 4096;
        let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        init_tables();
        let only = std::env::var("TIMING_BACKEND").ok();
        for backend in backends() {
            if only.as_deref().is_some_and(|o| o != backend.name()) {
                continue;
            }
            let mut out = vec![Affine::IDENTITY; n];
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t0 = crate::backend::simd::thread_cpu_time();
                commit_on(backend, &f, &fp, &mut out);
                best = best.min(crate::backend::simd::thread_cpu_time() - t0);
            }
            println!(
                "{backend:?}: {:.2} us per commitment",
                best * 1e6 / n as f64
            );
        }
    }
}
