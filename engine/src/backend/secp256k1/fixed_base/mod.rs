//! Constant-time batch fixed-base multiplication by `G` and `H` for secret scalars.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
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
//! *Small batches.* A round's inversion is shared by the batch, so below some
//! size other shapes win (see [`run_chunk`]): on CPUs with AVX-512 IFMA, batches
//! below [`LANES_BELOW`] spread each element's rounds over the eight lanes
//! (`lanes.rs`: eleven steps of Jacobian additions for a commitment, then a
//! tree over the lanes and one inversion shared by the batch); elsewhere,
//! batches below [`SMALL_BATCH`] run the rounds in Jacobian coordinates on the
//! scalar field (`small.rs`). A single commitment takes about 9.5 us on the
//! lanes, 21 us on the scalar Jacobian path (2-core Zen 4).
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

use k256::Scalar;

use super::field::Fe;
use super::ifma::Ifma;
use super::point::Affine;
use crate::backend::simd::{self, SimdBackend};

mod chunk;
mod lanes;
mod scan;
mod small;
mod tables;

use chunk::{run_chunk_ifma, run_chunk_scalar, Bases};
use lanes::run_chunk_lanes;
use small::run_chunk_small;
use tables::{tables, H_X, H_Y};

pub use lanes::LANES_BELOW;
pub use tables::Tables;

/// Window width in bits (digits are odd, in `[-(2^W - 1), 2^W - 1]`).
pub const WINDOW: usize = 6;

/// Elements processed together (one shared inversion per round); callers gain
/// nothing by handing larger slices, which are processed in chunks of this size.
pub const CHUNK: usize = 1024;

/// Batches below this size take [`run_chunk_small`] (where the lane path does
/// not apply): a batch-affine round costs one inversion (~270 multiplications)
/// whatever the batch size, a Jacobian addition ~5 more than an affine one, so
/// they break even near 54 elements (measured with `small_batch_timing`: 15.2
/// us per commitment on the Jacobian path at 15 elements, 17.1 and 14.5 us on
/// the batch-affine path at 32 and 48).
pub const SMALL_BATCH: usize = 48;

/// The second generator H as an Affine point.
pub fn h_affine() -> Affine {
    let x = Fe::from_bytes(&H_X).unwrap_or(Fe::ZERO);
    let y = Fe::from_bytes(&H_Y).unwrap_or(Fe::ZERO);
    Affine::new_unchecked(x, y)
}

/// Forces the one-time table construction (e.g. at startup, to keep it out of timings).
pub fn init_tables() {
    let _ = tables();
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

/// Core: processes one chunk (any length) with tables `t` on `backend`.
fn run_chunk<const W: usize>(
    t: &Tables<W>,
    bases: Bases,
    a: &[Scalar],
    b: &[Scalar],
    out: &mut [Affine],
    backend: SimdBackend,
) {
    let ifma = match backend {
        SimdBackend::Avx512Ifma => Ifma::detect(),
        _ => None,
    };
    if let Some(ifma) = ifma {
        if out.len() < LANES_BELOW && run_chunk_lanes::<W>(ifma, t, bases, a, b, out) {
            return;
        }
    }
    if out.len() < SMALL_BATCH {
        run_chunk_small::<W>(t, bases, a, b, out);
        return;
    }
    if let Some(ifma) = ifma {
        if run_chunk_ifma::<W>(ifma, t, bases, a, b, out) {
            return;
        }
    }
    run_chunk_scalar::<W>(t, bases, a, b, out);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;
