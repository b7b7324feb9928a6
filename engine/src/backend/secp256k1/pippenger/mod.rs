//! Variable-time multi-scalar multiplication (MSM) on secp256k1 for **public data**.
//!
//! Computes `sum_i scalars[i] * points[i]` with Pippenger's bucket method. Every
//! branch and memory access depends on the (public) inputs; never use this with
//! secret scalars or points.
//!
//! # Algorithm
//!
//! 1. **Scalar length.** The cost is proportional to the bit length `b` of the
//!    largest scalar (random-weight batch verification produces ~128-150-bit
//!    scalars), so only `ceil((b + 1) / c)` windows of `c` bits are processed.
//! 2. **GLV endomorphism** (optional, chosen by a cost model): for long scalars,
//!    each `k` is split as `k = k1 + k2 * lambda (mod n)` with `|k1|, |k2| < 2^128`
//!    and `lambda * (x, y) = (beta * x, y)`, turning `N` points of 256 bits into
//!    `2N` points of 128 bits (signs folded into the points by negating `y`).
//! 3. **Signed digits.** Each window value `v` in `[0, 2^c)` becomes a digit in
//!    `[-2^(c-1), 2^(c-1)]` (carry = top bit of the previous window, which makes
//!    each digit computable independently of the others), so a window needs only
//!    `2^(c-1)` buckets; a negative digit adds the negated point.
//! 4. **Bucket accumulation in batch-affine form.** Buckets are affine points,
//!    small enough (`2^(c-1)` of them) to stay in L2. Points are streamed in input
//!    order; an addition `bucket += +-P` is queued into a batch (an empty bucket is
//!    simply assigned). When the batch holds `nb / 4` additions (at most 1024), all
//!    of them are performed with affine formulas sharing one field inversion
//!    (Montgomery's trick): about `5M + 1S` per addition plus `270M / batch`, versus
//!    `~11M` for a mixed Jacobian addition. A bucket appears at most once per batch:
//!    a point whose bucket is already pending is deferred to a small queue and
//!    rescheduled after the next flush; if that queue is full (degenerate inputs,
//!    e.g. many equal digits) the point goes to a Jacobian "overflow" bucket
//!    instead, so the work stays linear. Exceptional pairs are handled exactly: the
//!    fast path checks the product of all denominators once; if it is zero, the
//!    batch is redone classifying each pair (`P + P` uses the tangent slope,
//!    `P + (-P)` empties the bucket).
//! 5. **Bucket reduction** `sum_j (j + 1) * B_j` by running sums in Jacobian
//!    coordinates (mixed addition of the affine bucket into the running sum, full
//!    addition of the running sum into the total), then Horner over the windows
//!    (`c` doublings per window). Affine buckets and overflow buckets are summed.
//! 6. **Parallelism** ([`vartime_msm_par`]): windows are independent and are spread
//!    over rayon's pool, each task with its own preallocated scratch buffers; the
//!    GLV split is parallel over chunks of points.
//!
//! The window width `c` and the GLV decision come from a simple operation-count
//! model (see [`msm_plan`]) calibrated by benchmarks against arkworks.
//!
//! Field arithmetic uses our 4x64-limb [`Fe`] (weakly reduced values in
//! `[0, 2^256)`, no magnitudes to track); comparisons with zero or between
//! elements normalize.

use super::field::Fe;
use super::point::Affine;
use crate::backend::simd::{self, SimdBackend};
use k256::{ProjectivePoint, Scalar};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

mod batch_affine;
mod glv;
mod jacobian;
mod plan;
mod window;

use batch_affine::Lanes8;
use glv::{bit_len, glv_expand, limbs};
use jacobian::Jac;
#[cfg(feature = "parallel")]
use plan::best_chunks;
use plan::{plan, workers};
use window::{batch_acc, window_sum, Scratch, MAX_BATCH};

// ---------------------------------------------------------------------------
// Field helpers
// ---------------------------------------------------------------------------

/// Completes an affine addition or doubling once its slope `l` is known:
/// `x3 = l^2 - (x1 + x2)`, `y3 = l (x1 - x3) - y1`, written into `a`
/// (`sum_x` is `x1 + x2`, or `2 x1` for a doubling).
#[inline(always)]
fn apply_slope(a: &mut Affine, sum_x: &Fe, l: &Fe) {
    let x3 = l.square().sub(sum_x);
    let y3 = l.mul(&a.x.sub(&x3)).sub(&a.y);
    a.x = x3;
    a.y = y3;
}

/// True if `a == b` as field elements.
#[inline(always)]
fn feq(a: &Fe, b: &Fe) -> bool {
    a == b
}

/// `beta`, the cube root of unity in the base field with `(beta * x, y) = lambda * (x, y)`.
fn beta() -> Fe {
    const BETA: [u8; 32] = [
        0x7a, 0xe9, 0x6a, 0x2b, 0x65, 0x7c, 0x07, 0x10, 0x6e, 0x64, 0x47, 0x9e, 0xac, 0x34, 0x34,
        0xe9, 0x9c, 0xf0, 0x49, 0x75, 0x12, 0xf5, 0x89, 0x95, 0xc1, 0x39, 0x6c, 0x28, 0x71, 0x95,
        0x01, 0xee,
    ];
    Fe::from_bytes(&BETA).unwrap_or(Fe::ZERO)
}

/// Variable-time `acc[i] += add[i]` for PUBLIC points, in batch-affine form with
/// shared inversions (chunks of [`MAX_BATCH`]), handling every exceptional case
/// (identities, equal and opposite points). On the IFMA backend the generic
/// additions run in lanes; a chunk with an exceptional pair takes the scalar path.
pub fn vartime_add_assign(acc: &mut [Affine], add: &[Affine]) {
    vartime_add_assign_on(simd::selected(), acc, add);
}

/// [`vartime_add_assign`] on an explicit SIMD backend (tests).
#[doc(hidden)]
pub fn vartime_add_assign_on(backend: SimdBackend, acc: &mut [Affine], add: &[Affine]) {
    let n = acc.len().min(add.len());
    let mut lanes = Lanes8::new(backend);
    let mut pre = Vec::with_capacity(MAX_BATCH);
    let mut kind = Vec::with_capacity(MAX_BATCH);
    let mut items: Vec<(u32, u32)> = Vec::with_capacity(MAX_BATCH);
    let (Some(acc), Some(add)) = (acc.get_mut(..n), add.get(..n)) else {
        return;
    };
    for (a, p) in acc.chunks_mut(MAX_BATCH).zip(add.chunks(MAX_BATCH)) {
        let plain = a.iter().zip(p).all(|(x, y)| !x.infinity && !y.infinity);
        if let (true, Some(l)) = (plain, lanes.as_mut()) {
            items.clear();
            items.extend((0..a.len() as u32).map(|i| (i, i)));
            if l.batch_add(p, &items, a) {
                continue;
            }
        }
        batch_acc(a, p, 0, 1, &mut pre, &mut kind);
    }
}

/// Variable-time `acc[i] = 2 acc[i]` for PUBLIC points with one shared inversion
/// per chunk (identities stay; secp256k1 has no point with `y = 0`).
pub fn vartime_double_assign(acc: &mut [Affine]) {
    let mut pre: Vec<Fe> = Vec::with_capacity(MAX_BATCH.min(acc.len()));
    for a in acc.chunks_mut(MAX_BATCH) {
        pre.clear();
        let mut prod = Fe::ONE;
        for p in a.iter() {
            pre.push(prod);
            if !p.infinity {
                prod = prod.mul(&p.y.double());
            }
        }
        let mut inv = prod.invert();
        for (p, pre_i) in a.iter_mut().zip(&pre).rev() {
            if p.infinity {
                continue;
            }
            let den = p.y.double();
            let di = inv.mul(pre_i);
            inv = inv.mul(&den);
            let l = p.x.square().mul_small(3).mul(&di);
            let sum_x = p.x.double();
            apply_slope(p, &sum_x, &l);
        }
    }
}

/// Variable-time `out[r] = sum_j x^j rows[r * k + j]` for PUBLIC points and a
/// small public integer `x` (e.g. `gshr = sum_j i^j D[j]` for every key), by
/// Horner's rule with all rows in lockstep: every doubling and addition is a
/// batch-affine step with one shared inversion per chunk. `k >= 1`;
/// `out.len()` rows are computed (`rows` must hold `out.len() * k` points).
pub fn vartime_eval_small(rows: &[Affine], k: usize, x: u64, out: &mut [Affine]) {
    let n = out.len().min(rows.len().checked_div(k).unwrap_or(0));
    let Some(out) = out.get_mut(..n) else { return };
    let col = |j: usize| -> Vec<Affine> {
        (0..n)
            .map(|r| rows.get(r * k + j).copied().unwrap_or(Affine::IDENTITY))
            .collect()
    };
    let mut acc = col(k - 1);
    let top = 63 - x.max(1).leading_zeros();
    for j in (0..k - 1).rev() {
        if x == 0 {
            acc.fill(Affine::IDENTITY);
        } else {
            // acc * x by double-and-add on the bits of x below the top one.
            let base = acc.clone();
            for bit in (0..top).rev() {
                vartime_double_assign(&mut acc);
                if (x >> bit) & 1 == 1 {
                    vartime_add_assign(&mut acc, &base);
                }
            }
        }
        vartime_add_assign(&mut acc, &col(j));
    }
    out.copy_from_slice(&acc);
}

// ---------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------

/// Horner combination of window sums: `sum_w 2^(c w) * sums[w]`.
fn combine(sums: &[Jac], c: usize) -> ProjectivePoint {
    let mut acc = Jac::INF;
    for s in sums.iter().rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        acc = acc.add(s);
    }
    acc.to_projective()
}

/// Scalars as limbs, and the bit length of the largest one (identity points ignored).
fn prepare(points: &[Affine], scalars: &[Scalar], par: bool) -> (Vec<[u64; 4]>, usize) {
    #[cfg(feature = "parallel")]
    if par {
        let ks: Vec<[u64; 4]> = scalars.par_iter().with_min_len(4096).map(limbs).collect();
        let bits = points
            .par_iter()
            .zip(ks.par_iter())
            .with_min_len(4096)
            .filter(|(p, _)| !p.infinity)
            .map(|(_, k)| bit_len(k))
            .max()
            .unwrap_or(0);
        return (ks, bits);
    }
    let _ = par;
    let ks: Vec<[u64; 4]> = scalars.iter().map(limbs).collect();
    let bits = points
        .iter()
        .zip(&ks)
        .filter(|(p, _)| !p.infinity)
        .map(|(_, k)| bit_len(k))
        .max()
        .unwrap_or(0);
    (ks, bits)
}

/// GLV-expands all inputs: `2n` points and 128-bit scalars (interleaved pairs).
fn glv_inputs(
    points: &[Affine],
    ks: &[[u64; 4]],
    par: bool,
) -> (Vec<[Affine; 2]>, Vec<[[u64; 2]; 2]>) {
    let b = beta();
    #[cfg(feature = "parallel")]
    if par {
        return points
            .par_iter()
            .zip(ks.par_iter())
            .with_min_len(1024)
            .map(|(p, k)| glv_expand(p, k, &b))
            .unzip();
    }
    let _ = par;
    points
        .iter()
        .zip(ks)
        .map(|(p, k)| glv_expand(p, k, &b))
        .unzip()
}

fn msm_limbs<const L: usize>(
    points: &[Affine],
    scalars: &[[u64; L]],
    bits: usize,
    c: usize,
    par: bool,
    backend: SimdBackend,
) -> ProjectivePoint {
    let nw = (bits + 1).div_ceil(c);
    #[cfg(feature = "parallel")]
    if par {
        // Windows x point chunks, as the cost model balances them on the pool.
        let n = points.len().min(scalars.len());
        let (p, _) = best_chunks(n, bits, c, workers(true));
        let len = n.div_ceil(p.max(1)).max(1);
        let tasks: Vec<(usize, usize)> = (0..nw)
            .flat_map(|w| (0..n.div_ceil(len)).map(move |ch| (w, ch)))
            .collect();
        let parts: Vec<(usize, Jac)> = tasks
            .into_par_iter()
            .map_init(
                || Scratch::new(1 << (c - 1), backend),
                |s, (w, ch)| {
                    let lo = ch * len;
                    let hi = (lo + len).min(n);
                    let (Some(pt), Some(sc)) = (points.get(lo..hi), scalars.get(lo..hi)) else {
                        return (w, Jac::INF);
                    };
                    (w, window_sum(pt, sc, w, c, bits, s))
                },
            )
            .collect();
        let mut sums = vec![Jac::INF; nw];
        for (w, j) in parts {
            if let Some(sw) = sums.get_mut(w) {
                *sw = sw.add(&j);
            }
        }
        return combine(&sums, c);
    }
    let _ = par;
    let mut s = Scratch::new(1 << (c - 1), backend);
    let sums: Vec<Jac> = (0..nw)
        .map(|w| window_sum(points, scalars, w, c, bits, &mut s))
        .collect();
    combine(&sums, c)
}

/// Largest input handled in one piece: `2 * MAX_POINTS` GLV points must be
/// addressable by 31-bit indices.
const MAX_POINTS: usize = 1 << 29;

/// Shared driver; `force` overrides the planner's `(use_glv, window)` (tests, benches).
fn msm_impl(
    points: &[Affine],
    scalars: &[Scalar],
    par: bool,
    force: Option<(bool, usize)>,
    backend: SimdBackend,
) -> ProjectivePoint {
    debug_assert_eq!(points.len(), scalars.len());
    let n = points.len().min(scalars.len());
    let (Some(points), Some(scalars)) = (points.get(..n), scalars.get(..n)) else {
        return ProjectivePoint::IDENTITY;
    };
    if n > MAX_POINTS {
        // Point references are `u32` with a sign bit (and GLV doubles the count):
        // split absurdly large inputs.
        return points
            .chunks(MAX_POINTS)
            .zip(scalars.chunks(MAX_POINTS))
            .fold(ProjectivePoint::IDENTITY, |acc, (p, k)| {
                acc + msm_impl(p, k, par, force, backend)
            });
    }
    let (ks, bits) = prepare(points, scalars, par);
    if bits == 0 {
        return ProjectivePoint::IDENTITY;
    }
    let (glv, c) = force.unwrap_or_else(|| {
        let (g, c, _) = plan(n, bits, workers(par));
        (g, c)
    });
    let c = c.clamp(2, 16);
    if glv {
        let (gp, gk) = glv_inputs(points, &ks, par);
        msm_limbs(gp.as_flattened(), gk.as_flattened(), 128, c, par, backend)
    } else {
        msm_limbs(points, &ks, bits, c, par, backend)
    }
}

/// Serial variable-time MSM: `sum_i scalars[i] * points[i]`. Public data only.
///
/// Callers guarantee equal lengths (debug-asserted); otherwise the MSM over the
/// common prefix is returned. Never panics.
pub fn vartime_msm(points: &[Affine], scalars: &[Scalar]) -> ProjectivePoint {
    msm_impl(points, scalars, false, None, simd::selected())
}

/// Parallel (rayon) variable-time MSM; returns the same group element as
/// [`vartime_msm`]. Public data only. Without the `parallel` feature it is the
/// serial algorithm.
pub fn vartime_msm_par(points: &[Affine], scalars: &[Scalar]) -> ProjectivePoint {
    msm_impl(points, scalars, true, None, simd::selected())
}

/// [`vartime_msm`] / [`vartime_msm_par`] with an explicit `(use_glv, window_bits)`
/// plan instead of the cost model (for tuning and tests).
pub fn vartime_msm_with_plan(
    points: &[Affine],
    scalars: &[Scalar],
    par: bool,
    use_glv: bool,
    window_bits: usize,
) -> ProjectivePoint {
    msm_impl(
        points,
        scalars,
        par,
        Some((use_glv, window_bits)),
        simd::selected(),
    )
}

/// Test and benchmark hook: the MSM on an explicit SIMD backend (one this CPU
/// lacks runs the scalar path) with an optional `(use_glv, window_bits)` plan.
#[doc(hidden)]
pub fn vartime_msm_on(
    backend: SimdBackend,
    points: &[Affine],
    scalars: &[Scalar],
    par: bool,
    plan: Option<(bool, usize)>,
) -> ProjectivePoint {
    msm_impl(points, scalars, par, plan, backend)
}

/// [`vartime_msm`] / [`vartime_msm_par`] with a fixed window (hardware profiles);
/// the GLV decision still comes from the cost model.
pub fn vartime_msm_with_window(
    points: &[Affine],
    scalars: &[Scalar],
    par: bool,
    window_bits: usize,
) -> ProjectivePoint {
    let n = points.len().min(scalars.len());
    let bits = scalars
        .iter()
        .take(n)
        .map(|s| bit_len(&limbs(s)))
        .max()
        .unwrap_or(0);
    let (glv, _, _) = plan(n, bits, workers(par));
    msm_impl(
        points,
        scalars,
        par,
        Some((glv, window_bits.clamp(2, 16))),
        simd::selected(),
    )
}

/// The `(use_glv, window_bits)` plan chosen for `n` points with `bits`-bit scalars
/// on one worker.
pub fn msm_plan(n: usize, bits: usize) -> (bool, usize) {
    let (g, c, _) = plan(n, bits, 1);
    (g, c)
}

/// The `(use_glv, window_bits, point_chunks)` plan on `threads` workers: each
/// window's points are split into `point_chunks` tasks when the windows alone
/// cannot keep every worker busy.
pub fn msm_plan_parallel(n: usize, bits: usize, threads: usize) -> (bool, usize, usize) {
    plan(n, bits, threads)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;
