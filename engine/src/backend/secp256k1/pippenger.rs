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
use super::ifma::{AddScratch, Fe8Aos, Ifma};
use super::point::Affine;
use crate::backend::simd::{self, SimdBackend};
use k256::{ProjectivePoint, Scalar};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

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

// ---------------------------------------------------------------------------
// Jacobian points (variable time), used for bucket reduction and window sums
// ---------------------------------------------------------------------------

/// Jacobian point `(X / Z^2, Y / Z^3)`; coordinates weakly reduced.
#[derive(Clone, Copy, Debug)]
struct Jac {
    x: Fe,
    y: Fe,
    z: Fe,
    inf: bool,
}

impl Jac {
    const INF: Jac = Jac {
        x: Fe::ZERO,
        y: Fe::ZERO,
        z: Fe::ONE,
        inf: true,
    };

    #[inline(always)]
    fn from_affine(p: &Affine) -> Jac {
        Jac {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
            inf: p.infinity,
        }
    }

    /// Doubling, `dbl-2009-l` (a = 0): 2M + 5S.
    #[inline]
    fn double(&self) -> Jac {
        if self.inf {
            return *self;
        }
        let a = self.x.square();
        let b = self.y.square();
        let c = b.square();
        // d = 2 * ((x + b)^2 - a - c)
        let t = self.x.add(&b).square();
        let d = t.sub(&a).sub(&c).double();
        let e = a.mul_small(3);
        let f = e.square();
        let x3 = f.sub(&d.double());
        let y3 = e.mul(&d.sub(&x3)).sub(&c.mul_small(8));
        let z3 = self.y.mul(&self.z).double();
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }

    /// Mixed addition `self + q` with `q` affine: 8M + 3S.
    #[inline]
    fn add_affine(&self, q: &Affine) -> Jac {
        if q.infinity {
            return *self;
        }
        if self.inf {
            return Jac::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z.mul(&z1z1));
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if bool::from(h.is_zero()) {
            if bool::from(r.is_zero()) {
                return self.double();
            }
            return Jac::INF;
        }
        let h2 = h.square();
        let h3 = h.mul(&h2);
        let v = self.x.mul(&h2);
        // x3 = r^2 - h3 - 2v
        let x3 = r.square().sub(&h3).sub(&v.double());
        // y3 = r (v - x3) - y h3
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&h3));
        let z3 = self.z.mul(&h);
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }

    /// Full addition, `add-1998-cmo-2`: 12M + 4S.
    #[inline]
    fn add(&self, q: &Jac) -> Jac {
        if q.inf {
            return *self;
        }
        if self.inf {
            return *q;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = q.x.mul(&z1z1);
        let s1 = self.y.mul(&q.z.mul(&z2z2));
        let s2 = q.y.mul(&self.z.mul(&z1z1));
        let h = u2.sub(&u1);
        let r = s2.sub(&s1);
        if bool::from(h.is_zero()) {
            if bool::from(r.is_zero()) {
                return self.double();
            }
            return Jac::INF;
        }
        let h2 = h.square();
        let h3 = h.mul(&h2);
        let v = u1.mul(&h2);
        let x3 = r.square().sub(&h3).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&s1.mul(&h3));
        let z3 = self.z.mul(&q.z).mul(&h);
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }

    /// Converts to k256's projective type (one inversion, then a byte round trip).
    fn to_projective(self) -> ProjectivePoint {
        if self.inf {
            return ProjectivePoint::IDENTITY;
        }
        // z != 0 for finite Jacobian points produced above.
        let zi = self.z.invert();
        let zi2 = zi.square();
        let x = self.x.mul(&zi2);
        let y = self.y.mul(&zi2.mul(&zi));
        Affine::new_unchecked(x, y).to_projective()
    }
}

// ---------------------------------------------------------------------------
// Batch-affine bucket accumulation (Montgomery's trick)
// ---------------------------------------------------------------------------

const KIND_ADD: u8 = 0;
const KIND_DBL: u8 = 1;
const KIND_INF: u8 = 2;

/// Sign flag in a scheduled point reference (`index | NEG`).
const NEG: u32 = 1 << 31;
/// "No digit" marker.
const NONE: u32 = u32::MAX;

/// `y` of `points[e]` with the sign of the reference `e` applied.
#[inline(always)]
fn signed_y(p: &Affine, e: u32) -> Fe {
    if e & NEG != 0 {
        p.y.neg()
    } else {
        p.y
    }
}

/// For every `(b, e)` in `items` (distinct buckets `b`, all non-empty), sets
/// `buckets[b] += +-points[e & !NEG]` with affine formulas sharing one inversion.
/// `pre` and `kind` are scratch.
///
/// Fast path: assume every pair is a generic addition (`x` coordinates differ),
/// which is checked once on the product of all denominators; if that product is
/// zero (some pair is `P + P` or `P + (-P)`), nothing has been modified yet and
/// the careful path classifies every pair.
fn batch_add(
    points: &[Affine],
    items: &[(u32, u32)],
    buckets: &mut [Affine],
    pre: &mut Vec<Fe>,
    kind: &mut Vec<u8>,
    lanes: &mut Option<Lanes8>,
) {
    if let Some(l) = lanes {
        if l.batch_add(points, items, buckets) {
            return;
        }
    }
    if !batch_add_generic(points, items, buckets, pre) {
        batch_add_careful(points, items, buckets, pre, kind);
    }
}

/// Batch-affine additions in eight IFMA lanes (the buffers are reused).
struct Lanes8 {
    ifma: Ifma,
    ax: Vec<Fe8Aos>,
    ay: Vec<Fe8Aos>,
    px: Vec<Fe8Aos>,
    py: Vec<Fe8Aos>,
    ox: Vec<Fe8Aos>,
    oy: Vec<Fe8Aos>,
    scratch: AddScratch,
}

impl Lanes8 {
    /// The lanes when `backend` is IFMA and this CPU has it.
    fn new(backend: SimdBackend) -> Option<Lanes8> {
        let ifma = match backend {
            SimdBackend::Avx512Ifma => Ifma::detect()?,
            SimdBackend::Scalar => return None,
        };
        Some(Lanes8 {
            ifma,
            ax: Vec::new(),
            ay: Vec::new(),
            px: Vec::new(),
            py: Vec::new(),
            ox: Vec::new(),
            oy: Vec::new(),
            scratch: AddScratch::default(),
        })
    }

    /// [`batch_add_generic`] in lanes: false (nothing modified) if some pair is
    /// exceptional. Padding lanes add `(1, 0)` to `(0, 0)` (a non-zero
    /// denominator; their results are dropped).
    #[allow(clippy::indexing_slicing)] // b < buckets.len() and e & !NEG < points.len() by construction; g < groups.
    fn batch_add(
        &mut self,
        points: &[Affine],
        items: &[(u32, u32)],
        buckets: &mut [Affine],
    ) -> bool {
        let groups = items.len().div_ceil(8);
        for v in [
            &mut self.ax,
            &mut self.ay,
            &mut self.px,
            &mut self.py,
            &mut self.ox,
            &mut self.oy,
        ] {
            v.resize(groups, Fe8Aos::default());
        }
        for i in 0..groups * 8 {
            let (g, j) = (i / 8, i % 8);
            match items.get(i) {
                Some(&(b, e)) => {
                    let a = &buckets[b as usize];
                    let p = &points[(e & !NEG) as usize];
                    self.ax[g].set(j, &a.x);
                    self.ay[g].set(j, &a.y);
                    self.px[g].set(j, &p.x);
                    self.py[g].set(j, &signed_y(p, e));
                }
                None => {
                    self.ax[g].set(j, &Fe::ZERO);
                    self.ay[g].set(j, &Fe::ZERO);
                    self.px[g].set(j, &Fe::ONE);
                    self.py[g].set(j, &Fe::ZERO);
                }
            }
        }
        if !self.ifma.vartime_batch_add(
            &self.ax,
            &self.ay,
            &self.px,
            &self.py,
            &mut self.ox,
            &mut self.oy,
            &mut self.scratch,
        ) {
            return false;
        }
        for (i, &(b, _)) in items.iter().enumerate() {
            let (g, j) = (i / 8, i % 8);
            let a = &mut buckets[b as usize];
            a.x = self.ox[g].get(j);
            a.y = self.oy[g].get(j);
        }
        true
    }
}

/// Batch addition assuming no exceptional pair; returns false (and modifies
/// nothing) if some denominator is zero.
#[allow(clippy::indexing_slicing)] // b < buckets.len() and e & !NEG < points.len() by construction.
fn batch_add_generic(
    points: &[Affine],
    items: &[(u32, u32)],
    buckets: &mut [Affine],
    pre: &mut Vec<Fe>,
) -> bool {
    pre.clear();
    let mut acc = Fe::ONE;
    for &(b, e) in items {
        let a = &buckets[b as usize];
        let p = &points[(e & !NEG) as usize];
        pre.push(acc);
        acc = acc.mul(&p.x.sub(&a.x));
    }
    if bool::from(acc.is_zero()) {
        return false;
    }
    let mut inv = acc.invert();
    for (&(b, e), pre_i) in items.iter().zip(pre.iter()).rev() {
        let p = &points[(e & !NEG) as usize];
        let a = &mut buckets[b as usize];
        let dx = p.x.sub(&a.x);
        let di = inv.mul(pre_i);
        inv = inv.mul(&dx);
        // dy = (+-p.y) - a.y; for a negated point, -(p.y + a.y).
        let dy = if e & NEG != 0 {
            p.y.add(&a.y).neg()
        } else {
            p.y.sub(&a.y)
        };
        let l = dy.mul(&di);
        apply_slope(a, &a.x.add(&p.x), &l);
    }
    true
}

/// Batch addition handling the exceptional pairs (`P + P`, `P + (-P)`).
#[allow(clippy::indexing_slicing)] // b < buckets.len() and e & !NEG < points.len() by construction.
fn batch_add_careful(
    points: &[Affine],
    items: &[(u32, u32)],
    buckets: &mut [Affine],
    pre: &mut Vec<Fe>,
    kind: &mut Vec<u8>,
) {
    pre.clear();
    kind.clear();
    let mut acc = Fe::ONE;
    for &(b, e) in items {
        let a = &buckets[b as usize];
        let p = &points[(e & !NEG) as usize];
        pre.push(acc);
        let dx = p.x.sub(&a.x);
        let k = if bool::from(dx.is_zero()) {
            if feq(&a.y, &signed_y(p, e)) {
                acc = acc.mul(&a.y.double()); // y != 0: the curve has no 2-torsion
                KIND_DBL
            } else {
                KIND_INF
            }
        } else {
            acc = acc.mul(&dx);
            KIND_ADD
        };
        kind.push(k);
    }
    // `acc` is a product of non-zero elements, so it is invertible.
    let mut inv = acc.invert();
    for (i, &(b, e)) in items.iter().enumerate().rev() {
        let p = &points[(e & !NEG) as usize];
        let a = &mut buckets[b as usize];
        match kind[i] {
            KIND_ADD => {
                let dx = p.x.sub(&a.x);
                let di = inv.mul(&pre[i]);
                inv = inv.mul(&dx);
                let l = signed_y(p, e).sub(&a.y).mul(&di);
                apply_slope(a, &a.x.add(&p.x), &l);
            }
            KIND_DBL => {
                let den = a.y.double();
                let di = inv.mul(&pre[i]);
                inv = inv.mul(&den);
                let l = a.x.square().mul_small(3).mul(&di);
                apply_slope(a, &a.x.double(), &l);
            }
            _ => *a = Affine::IDENTITY,
        }
    }
}

// ---------------------------------------------------------------------------
// Per-window bucket accumulation
// ---------------------------------------------------------------------------

/// Batch size = reachable buckets / BATCH_DIV (bounded by MAX_BATCH): a new
/// point hits a bucket that is already pending with probability < 1/BATCH_DIV.
const BATCH_DIV: usize = 4;
const MAX_BATCH: usize = 1024;

/// Reusable buffers for one window computation; sized by the bucket count, not by
/// the number of points (no per-point allocation, cache-resident buckets).
struct Scratch {
    /// Affine buckets (the batch-affine accumulators).
    buckets: Vec<Affine>,
    /// `busy[b] == epoch` while bucket `b` has a pending addition in the batch.
    busy: Vec<u32>,
    epoch: u32,
    /// Jacobian overflow buckets for additions that could not be batched.
    ovf: Vec<Jac>,
    ovf_used: Vec<u32>,
    /// Pending additions `(bucket, point | NEG)`.
    batch: Vec<(u32, u32)>,
    /// Additions deferred because their bucket was busy.
    queue: Vec<(u32, u32)>,
    requeue: Vec<(u32, u32)>,
    pre: Vec<Fe>,
    kind: Vec<u8>,
    /// Segment running sums / weighted sums of the bucket reduction.
    seg_r: Vec<Affine>,
    seg_t: Vec<Affine>,
    /// `(segment, bucket)` pairs of one reduction step (IFMA lanes).
    seg_items: Vec<(u32, u32)>,
    /// Target batch size and queue capacity.
    batch_size: usize,
    /// The IFMA lanes, when the selected SIMD backend has them.
    lanes: Option<Lanes8>,
}

impl Scratch {
    fn new(nb: usize, backend: SimdBackend) -> Scratch {
        let batch_size = (nb / BATCH_DIV).clamp(8, MAX_BATCH);
        Scratch {
            buckets: vec![Affine::IDENTITY; nb],
            busy: vec![0; nb],
            epoch: 0,
            ovf: vec![Jac::INF; nb],
            ovf_used: Vec::new(),
            batch: Vec::with_capacity(2 * MAX_BATCH),
            queue: Vec::with_capacity(MAX_BATCH),
            requeue: Vec::with_capacity(MAX_BATCH),
            pre: Vec::with_capacity(2 * MAX_BATCH),
            seg_r: Vec::with_capacity(nb / SEG_LEN),
            seg_t: Vec::with_capacity(nb / SEG_LEN),
            seg_items: Vec::with_capacity(nb / SEG_LEN),
            kind: Vec::with_capacity(2 * MAX_BATCH),
            batch_size,
            lanes: Lanes8::new(backend),
        }
    }

    /// Starts a new window: all buckets empty, nothing pending.
    #[allow(clippy::indexing_slicing)] // ovf_used holds bucket ids < nb.
    fn reset(&mut self) {
        self.buckets.fill(Affine::IDENTITY);
        for &b in &self.ovf_used {
            self.ovf[b as usize] = Jac::INF;
        }
        self.ovf_used.clear();
        self.batch.clear();
        self.queue.clear();
        self.next_epoch();
    }

    fn next_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.busy.fill(0);
            self.epoch = 1;
        }
    }

    /// Adds `+-points[e]` to bucket `b` now (empty bucket) or in the next batch.
    /// The caller has checked that `b` is not busy.
    #[inline(always)]
    #[allow(clippy::indexing_slicing)] // b < nb, e & !NEG < points.len().
    fn schedule(&mut self, points: &[Affine], b: u32, e: u32) {
        let bucket = &mut self.buckets[b as usize];
        if bucket.infinity {
            let p = &points[(e & !NEG) as usize];
            *bucket = Affine {
                x: p.x,
                y: signed_y(p, e),
                infinity: false,
            };
        } else {
            self.busy[b as usize] = self.epoch;
            self.batch.push((b, e));
        }
    }

    /// Adds `+-points[e]` to the Jacobian overflow bucket `b` (rare path).
    #[allow(clippy::indexing_slicing)] // b < nb, e & !NEG < points.len().
    fn overflow(&mut self, points: &[Affine], b: u32, e: u32) {
        let p = &points[(e & !NEG) as usize];
        let q = Affine {
            x: p.x,
            y: signed_y(p, e),
            infinity: false,
        };
        let o = &mut self.ovf[b as usize];
        if o.inf {
            self.ovf_used.push(b);
        }
        *o = o.add_affine(&q);
    }

    /// Performs the pending batch, then reschedules the deferred additions.
    #[allow(clippy::indexing_slicing)] // bucket ids < nb.
    fn flush(&mut self, points: &[Affine]) {
        batch_add(
            points,
            &self.batch,
            &mut self.buckets,
            &mut self.pre,
            &mut self.kind,
            &mut self.lanes,
        );
        self.batch.clear();
        self.next_epoch();
        core::mem::swap(&mut self.queue, &mut self.requeue);
        let mut i = 0;
        while i < self.requeue.len() {
            let (b, e) = self.requeue[i];
            if self.busy[b as usize] == self.epoch {
                self.queue.push((b, e));
            } else {
                self.schedule(points, b, e);
            }
            i += 1;
        }
        self.requeue.clear();
    }
}

/// Extracts `c <= 16` bits of `k` starting at bit `off` (bits beyond the limbs are 0).
#[inline(always)]
#[allow(clippy::indexing_slicing)] // limb indices are checked against L.
fn bits<const L: usize>(k: &[u64; L], off: usize, c: usize) -> u32 {
    let limb = off / 64;
    let sh = off % 64;
    if limb >= L {
        return 0;
    }
    let mut v = k[limb] >> sh;
    if sh + c > 64 && limb + 1 < L {
        v |= k[limb + 1] << (64 - sh);
    }
    (v & ((1u64 << c) - 1)) as u32
}

/// Signed digit of window `w` (width `c`), encoded as `bucket | NEG` or `NONE`.
///
/// With `v` the window's bits and `cin` the top bit of the previous window, the
/// digit is `v + cin - 2^c * [v >= 2^(c-1)]`, in `[-2^(c-1), 2^(c-1)]`; summing
/// `digit_w * 2^(c w)` telescopes back to the scalar.
#[inline(always)]
fn digit<const L: usize>(k: &[u64; L], w: usize, c: usize) -> u32 {
    let off = w * c;
    let v = bits(k, off, c);
    let cin = if off == 0 { 0 } else { bits(k, off - 1, 1) };
    let neg = v >> (c - 1); // 1 iff v >= 2^(c-1)
                            // Signed digit v + cin - neg * 2^c, as (magnitude, sign), branch-free.
    let sd = (v + cin) as i32 - ((neg as i32) << c);
    let m = sd.unsigned_abs();
    if m == 0 {
        NONE
    } else {
        (m - 1) | (neg << 31)
    }
}

/// `sum_i digit_w(k_i) * P_i` for window `w`, in Jacobian coordinates.
#[allow(clippy::indexing_slicing)] // bucket ids < nb = buckets.len().
fn window_sum<const L: usize>(
    points: &[Affine],
    scalars: &[[u64; L]],
    w: usize,
    c: usize,
    bits_total: usize,
    s: &mut Scratch,
) -> Jac {
    s.reset();
    // Buckets reachable in this window (the top window may be narrower).
    let width = (bits_total + 1).saturating_sub(w * c).min(c);
    let nb_eff = 1usize << width.saturating_sub(1);
    let bsz = (nb_eff / BATCH_DIV).clamp(8, MAX_BATCH);
    s.batch_size = bsz;
    for (i, (p, k)) in points.iter().zip(scalars).enumerate() {
        let d = digit(k, w, c);
        if d == NONE || p.infinity {
            continue;
        }
        let b = d & !NEG;
        let e = (i as u32) | (d & NEG);
        if s.busy[b as usize] == s.epoch {
            if s.queue.len() < bsz {
                s.queue.push((b, e));
            } else {
                s.overflow(points, b, e);
            }
            continue;
        }
        s.schedule(points, b, e);
        if s.batch.len() >= bsz {
            s.flush(points);
        }
    }
    // Drain: keep batching while batches stay worthwhile, then finish in Jacobian.
    while !s.batch.is_empty() || !s.queue.is_empty() {
        if s.batch.len() < 8 {
            let mut pending = core::mem::take(&mut s.batch);
            pending.append(&mut s.queue);
            for &(b, e) in &pending {
                s.overflow(points, b, e);
            }
            pending.clear();
            s.batch = pending;
            break;
        }
        s.flush(points);
    }
    // A few overflow buckets must not send the whole window to the Jacobian
    // running sum: move them into the affine buckets first.
    fold_overflow(s);
    let top = s
        .buckets
        .iter()
        .rposition(|a| !a.infinity)
        .map_or(0, |t| t + 1);
    let span = top.next_power_of_two();
    if span >= SEG_MIN_BUCKETS {
        return reduce_segmented(s, span);
    }
    // Running-sum reduction: sum_b (b + 1) * (B_b + O_b).
    let top = s
        .buckets
        .iter()
        .zip(&s.ovf)
        .rposition(|(a, o)| !a.infinity || !o.inf)
        .map_or(0, |t| t + 1);
    let mut running = Jac::INF;
    let mut sum = Jac::INF;
    for (bucket, o) in s.buckets[..top].iter().zip(&s.ovf[..top]).rev() {
        running = running.add_affine(bucket);
        if !o.inf {
            running = running.add(o);
        }
        sum = sum.add(&running);
    }
    sum
}

/// Adds the Jacobian overflow buckets into the affine buckets (one shared
/// inversion to normalize them, then one careful batch addition) and empties them.
#[allow(clippy::indexing_slicing)] // ovf_used holds bucket ids < nb.
fn fold_overflow(s: &mut Scratch) {
    if s.ovf_used.is_empty() {
        return;
    }
    let ids: Vec<u32> = s
        .ovf_used
        .iter()
        .copied()
        .filter(|&b| !s.ovf[b as usize].inf)
        .collect();
    // Normalize: z != 0 for every finite Jacobian point built by `Jac`.
    let mut prod = Fe::ONE;
    let mut pre = Vec::with_capacity(ids.len());
    for &b in &ids {
        pre.push(prod);
        prod = prod.mul(&s.ovf[b as usize].z);
    }
    let mut inv = prod.invert();
    let mut add = vec![Affine::IDENTITY; ids.len()];
    for (i, &b) in ids.iter().enumerate().rev() {
        let j = s.ovf[b as usize];
        let zi = inv.mul(&pre[i]);
        inv = inv.mul(&j.z);
        let zi2 = zi.square();
        add[i] = Affine {
            x: j.x.mul(&zi2),
            y: j.y.mul(&zi2.mul(&zi)),
            infinity: false,
        };
    }
    let mut acc: Vec<Affine> = ids.iter().map(|&b| s.buckets[b as usize]).collect();
    batch_acc(&mut acc, &add, 0, 1, &mut s.pre, &mut s.kind);
    for (&b, a) in ids.iter().zip(&acc) {
        s.buckets[b as usize] = *a;
    }
    for &b in &s.ovf_used {
        s.ovf[b as usize] = Jac::INF;
    }
    s.ovf_used.clear();
}

/// Segment length of the batch-affine bucket reduction (a power of two).
const SEG_LEN: usize = 16;
/// Smallest bucket span reduced with [`reduce_segmented`].
const SEG_MIN_BUCKETS: usize = 256;

/// `acc[s] += src[off + s * stride]` for every `s`, in affine coordinates with one
/// shared inversion, handling all exceptional cases (either operand the
/// identity, equal or opposite points).
#[allow(clippy::indexing_slicing)] // off + s * stride < src.len() by the callers' construction.
fn batch_acc(
    acc: &mut [Affine],
    src: &[Affine],
    off: usize,
    stride: usize,
    pre: &mut Vec<Fe>,
    kind: &mut Vec<u8>,
) {
    const KEEP: u8 = 3;
    const COPY: u8 = 4;
    pre.clear();
    kind.clear();
    let mut prod = Fe::ONE;
    for (i, a) in acc.iter().enumerate() {
        let p = &src[off + i * stride];
        pre.push(prod);
        let k = if p.infinity {
            KEEP
        } else if a.infinity {
            COPY
        } else {
            let dx = p.x.sub(&a.x);
            if bool::from(dx.is_zero()) {
                if feq(&a.y, &p.y) {
                    prod = prod.mul(&a.y.double()); // y != 0: no 2-torsion
                    KIND_DBL
                } else {
                    KIND_INF
                }
            } else {
                prod = prod.mul(&dx);
                KIND_ADD
            }
        };
        kind.push(k);
    }
    // `prod` is a product of non-zero elements.
    let mut inv = prod.invert();
    for (i, a) in acc.iter_mut().enumerate().rev() {
        let p = &src[off + i * stride];
        match kind[i] {
            KIND_ADD => {
                let dx = p.x.sub(&a.x);
                let di = inv.mul(&pre[i]);
                inv = inv.mul(&dx);
                let l = p.y.sub(&a.y).mul(&di);
                apply_slope(a, &a.x.add(&p.x), &l);
            }
            KIND_DBL => {
                let den = a.y.double();
                let di = inv.mul(&pre[i]);
                inv = inv.mul(&den);
                let l = a.x.square().mul_small(3).mul(&di);
                apply_slope(a, &a.x.double(), &l);
            }
            KIND_INF => *a = Affine::IDENTITY,
            COPY => *a = *p,
            _ => {}
        }
    }
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

/// [`batch_acc`] in IFMA lanes when no operand is the identity and no pair is
/// exceptional (the common case of the bucket reduction), else on the scalar path.
#[allow(clippy::too_many_arguments)]
fn batch_acc_lanes(
    lanes: &mut Option<Lanes8>,
    items: &mut Vec<(u32, u32)>,
    acc: &mut [Affine],
    src: &[Affine],
    off: usize,
    stride: usize,
    pre: &mut Vec<Fe>,
    kind: &mut Vec<u8>,
) {
    if let Some(l) = lanes {
        let plain = acc
            .iter()
            .enumerate()
            .all(|(i, a)| !a.infinity && src.get(off + i * stride).is_some_and(|p| !p.infinity));
        if plain {
            items.clear();
            items.extend((0..acc.len()).map(|i| (i as u32, (off + i * stride) as u32)));
            if l.batch_add(src, items, acc) {
                return;
            }
        }
    }
    batch_acc(acc, src, off, stride, pre, kind);
}

/// Bucket reduction `sum_{b < span} (b + 1) * B_b` in batch-affine form.
///
/// The buckets are cut into `S = span / SEG_LEN` segments that run their
/// running sums in lockstep, so every step is a batch of `S` affine additions
/// sharing one inversion: `R_s += B_{s L + j}`, then `T_s += R_s`, for
/// `j = L-1 .. 0`. Segment `s` contributes `T_s + s L R_s`, and
/// `sum_s s R_s` is a short Jacobian running sum over the segments.
#[allow(clippy::indexing_slicing)] // span <= buckets.len(); segment indices < S.
fn reduce_segmented(s: &mut Scratch, span: usize) -> Jac {
    let segs = span / SEG_LEN;
    s.seg_r.clear();
    s.seg_r.resize(segs, Affine::IDENTITY);
    s.seg_t.clear();
    s.seg_t.resize(segs, Affine::IDENTITY);
    for j in (0..SEG_LEN).rev() {
        batch_acc_lanes(
            &mut s.lanes,
            &mut s.seg_items,
            &mut s.seg_r,
            &s.buckets,
            j,
            SEG_LEN,
            &mut s.pre,
            &mut s.kind,
        );
        batch_acc_lanes(
            &mut s.lanes,
            &mut s.seg_items,
            &mut s.seg_t,
            &s.seg_r,
            0,
            1,
            &mut s.pre,
            &mut s.kind,
        );
    }
    let mut tot = Jac::INF;
    for t in &s.seg_t {
        tot = tot.add_affine(t);
    }
    // sum_s s * R_s by running sums over the segments.
    let mut running = Jac::INF;
    let mut weighted = Jac::INF;
    for r in s.seg_r[1..].iter().rev() {
        running = running.add_affine(r);
        weighted = weighted.add(&running);
    }
    for _ in 0..SEG_LEN.trailing_zeros() {
        weighted = weighted.double();
    }
    tot.add(&weighted)
}

// ---------------------------------------------------------------------------
// Planning: window width and GLV decision
// ---------------------------------------------------------------------------

/// Relative cost of one bucket (running-sum) step vs one batch-affine addition.
const BUCKET_COST: f64 = 4.0;
/// Relative cost of one field inversion vs one batch-affine addition (~270M vs ~6M).
const INV_COST: f64 = 45.0;
/// Relative per-point cost of the GLV split (decomposition + point copies), in additions.
const GLV_COST: f64 = 2.0;

/// Modelled time (per worker) of one window width `c` for `n` points of `bits`
/// bits on `threads` workers, with each window's points split into `p` chunks
/// (every (window, chunk) task accumulates its own buckets and reduces them).
fn window_cost(n: usize, bits: usize, c: usize, p: usize, threads: usize) -> f64 {
    let nw = (bits + 1).div_ceil(c);
    let nb = 1usize << (c - 1);
    // One shared inversion per batch: amortized INV_COST / batch per addition.
    let batch = (nb / BATCH_DIV).clamp(8, MAX_BATCH) as f64;
    // Buckets beyond the L2 cache (8192 affine buckets are 576 KiB) make every
    // addition slower (measured on Zen 4: c = 14..16 lose to c = 13 serially).
    let cache = if nb > 4096 { 1.25 } else { 1.0 };
    let per_add = cache * (1.0 + INV_COST / batch);
    let rounds = (nw * p).div_ceil(threads.max(1)) as f64;
    rounds * ((n as f64 / p as f64) * per_add + BUCKET_COST * nb as f64)
}

/// Best `(window width, point chunks, modelled cost)` for `n` points of `bits`
/// bits on `threads` workers.
fn best_window(n: usize, bits: usize, threads: usize) -> (usize, usize, f64) {
    let mut best = (2usize, 1usize, f64::INFINITY);
    for c in 2..=16usize {
        let (p, cost) = best_chunks(n, bits, c, threads);
        if cost < best.2 {
            best = (c, p, cost);
        }
    }
    best
}

/// Best number of point chunks per window for width `c` (1 on one worker).
fn best_chunks(n: usize, bits: usize, c: usize, threads: usize) -> (usize, f64) {
    let mut best = (1usize, window_cost(n, bits, c, 1, threads));
    // Chunks only pay for themselves in balancing the workers.
    for p in 2..=(4 * threads).min(n.max(1)) {
        let cost = window_cost(n, bits, c, p, threads);
        if cost < best.1 * 0.98 {
            best = (p, cost);
        }
    }
    best
}

/// The plan: `(use_glv, window width, point chunks per window)`.
fn plan(n: usize, bits: usize, threads: usize) -> (bool, usize, usize) {
    let (c_plain, p_plain, cost_plain) = best_window(n, bits, threads);
    if bits <= 128 {
        return (false, c_plain, p_plain);
    }
    let (c_glv, p_glv, cost_glv) = best_window(2 * n, 128, threads);
    if cost_glv + GLV_COST * (n as f64) / (threads.max(1) as f64) < cost_plain {
        (true, c_glv, p_glv)
    } else {
        (false, c_plain, p_plain)
    }
}

/// Workers of the parallel MSM (the current rayon pool).
fn workers(par: bool) -> usize {
    #[cfg(feature = "parallel")]
    if par {
        return rayon::current_num_threads().max(1);
    }
    let _ = par;
    1
}

// ---------------------------------------------------------------------------
// Scalars and GLV decomposition
// ---------------------------------------------------------------------------

/// Little-endian 64-bit limbs of a scalar.
#[allow(clippy::indexing_slicing)] // fixed-size arrays; loop bounds are their lengths.
fn limbs(s: &Scalar) -> [u64; 4] {
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
fn bit_len<const L: usize>(k: &[u64; L]) -> usize {
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
fn glv_decompose(k: &[u64; 4]) -> ((bool, [u64; 2]), (bool, [u64; 2])) {
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
fn glv_expand(p: &Affine, k: &[u64; 4], beta: &Fe) -> ([Affine; 2], [[u64; 2]; 2]) {
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
mod tests {
    use super::*;
    use k256::elliptic_curve::{Field, PrimeField};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn random_points(n: usize, r: &mut ChaCha20Rng) -> Vec<Affine> {
        if n == 0 {
            return Vec::new(); // k256's batch_normalize panics on an empty slice
        }
        // A random start and random small steps keep generation cheap.
        let step = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
        let mut acc = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
        let mut proj = Vec::with_capacity(n);
        for _ in 0..n {
            proj.push(acc);
            acc += step;
        }
        Affine::batch_from_projective(&proj)
    }

    fn random_scalars(n: usize, r: &mut ChaCha20Rng) -> Vec<Scalar> {
        (0..n).map(|_| Scalar::random(&mut *r)).collect()
    }

    /// A uniformly random scalar below 2^bits.
    fn short_scalar(bits: usize, r: &mut ChaCha20Rng) -> Scalar {
        let s = Scalar::random(&mut *r);
        let mut b = s.to_bytes();
        let clear = 256 - bits;
        for (i, byte) in b.iter_mut().enumerate() {
            let lo = i * 8; // bits [lo, lo + 8) from the top
            if lo + 8 <= clear {
                *byte = 0;
            } else if lo < clear {
                *byte &= 0xff >> (clear - lo);
            }
        }
        Option::from(Scalar::from_repr(b)).unwrap()
    }

    fn naive(points: &[Affine], scalars: &[Scalar]) -> ProjectivePoint {
        points
            .iter()
            .zip(scalars)
            .fold(ProjectivePoint::IDENTITY, |acc, (p, s)| {
                acc + p.to_projective() * s
            })
    }

    /// Every SIMD backend this CPU has (the scalar one always).
    fn backends() -> Vec<SimdBackend> {
        [SimdBackend::Scalar, SimdBackend::Avx512Ifma]
            .into_iter()
            .filter(|b| b.available())
            .collect()
    }

    fn check(points: &[Affine], scalars: &[Scalar]) {
        let want = naive(points, scalars);
        assert_eq!(
            vartime_msm(points, scalars),
            want,
            "serial, n={}",
            points.len()
        );
        assert_eq!(
            vartime_msm_par(points, scalars),
            want,
            "par, n={}",
            points.len()
        );
        for b in backends() {
            for par in [false, true] {
                let got = vartime_msm_on(b, points, scalars, par, None);
                assert_eq!(got, want, "{b:?} par={par} n={}", points.len());
            }
        }
    }

    fn check_all_plans(points: &[Affine], scalars: &[Scalar]) {
        let want = naive(points, scalars);
        for glv in [false, true] {
            for c in [2, 3, 5, 8, 11, 13, 16] {
                for par in [false, true] {
                    for b in backends() {
                        let got = vartime_msm_on(b, points, scalars, par, Some((glv, c)));
                        assert_eq!(
                            got,
                            want,
                            "{b:?} glv={glv} c={c} par={par} n={}",
                            points.len()
                        );
                    }
                }
            }
        }
    }

    fn minus_one() -> Scalar {
        -Scalar::ONE
    }

    #[test]
    fn random_sizes() {
        let mut r = rng(1);
        for n in [0usize, 1, 2, 3, 100, 1000, 5000] {
            let p = random_points(n, &mut r);
            let s = random_scalars(n, &mut r);
            check(&p, &s);
        }
    }

    #[test]
    fn short_scalars() {
        let mut r = rng(2);
        for n in [1usize, 3, 100, 1000, 5000] {
            let p = random_points(n, &mut r);
            let s: Vec<Scalar> = (0..n).map(|_| short_scalar(141, &mut r)).collect();
            check(&p, &s);
        }
        let p = random_points(300, &mut r);
        for bits in [1usize, 7, 64, 127, 128, 129, 200] {
            let s: Vec<Scalar> = (0..300).map(|_| short_scalar(bits, &mut r)).collect();
            check(&p, &s);
        }
    }

    #[test]
    fn all_plans_small() {
        let mut r = rng(3);
        let p = random_points(200, &mut r);
        let s = random_scalars(200, &mut r);
        check_all_plans(&p, &s);
        let s: Vec<Scalar> = (0..200).map(|_| short_scalar(141, &mut r)).collect();
        check_all_plans(&p, &s);
    }

    #[test]
    fn special_scalars() {
        let mut r = rng(4);
        let p = random_points(64, &mut r);
        // zero, one, q - 1
        for s in [Scalar::ZERO, Scalar::ONE, minus_one()] {
            let sc = vec![s; 64];
            check(&p, &sc);
            check_all_plans(&p[..5], &sc[..5]);
        }
        // mixture incl. 2^255-ish and small values
        let mut sc = random_scalars(64, &mut r);
        sc[0] = Scalar::ZERO;
        sc[1] = Scalar::ONE;
        sc[2] = minus_one();
        sc[3] = Scalar::from(2u64);
        sc[4] = -Scalar::from(2u64);
        sc[5] = Scalar::from(u64::MAX);
        check(&p, &sc);
        check_all_plans(&p, &sc);
        // all scalars equal (random)
        let s = Scalar::random(&mut r);
        check(&p, &vec![s; 64]);
    }

    #[test]
    fn identity_points() {
        let mut r = rng(5);
        let mut p = random_points(100, &mut r);
        let s = random_scalars(100, &mut r);
        for i in (0..100).step_by(3) {
            p[i] = Affine::IDENTITY;
        }
        check(&p, &s);
        check_all_plans(&p, &s);
        let all_inf = vec![Affine::IDENTITY; 50];
        check(&all_inf, &s[..50]);
    }

    #[test]
    fn repeated_and_negated_points() {
        let mut r = rng(6);
        let base = random_points(3, &mut r);
        // Same point many times with equal scalars: P == Q in every bucket (doubling path).
        let p = vec![base[0]; 300];
        let s = vec![Scalar::random(&mut r); 300];
        check(&p, &s);
        check_all_plans(&p[..40], &s[..40]);
        // Same point, random scalars (and +-P alternating): equal and opposite
        // partial sums inside the segmented bucket reduction.
        let s2 = random_scalars(300, &mut r);
        check(&p, &s2);
        check_all_plans(&p[..120], &s2[..120]);
        let alt: Vec<Affine> = (0..120)
            .map(|i| if i % 2 == 0 { base[0] } else { base[0].neg() })
            .collect();
        check_all_plans(&alt, &s2[..120]);
        // P and -P with equal scalars: P == -Q inside buckets; total is zero.
        let mut pn = Vec::new();
        for _ in 0..100 {
            pn.push(base[1]);
            pn.push(base[1].neg());
        }
        let s3 = vec![Scalar::random(&mut r); 200];
        assert_eq!(vartime_msm(&pn, &s3), ProjectivePoint::IDENTITY);
        check(&pn, &s3);
        check_all_plans(&pn[..30], &s3[..30]);
        // Mixed: P, -P, P, P, Q ... with small scalars.
        let mix: Vec<Affine> = (0..500)
            .map(|i| match i % 5 {
                0 | 2 | 3 => base[2],
                1 => base[2].neg(),
                _ => base[0],
            })
            .collect();
        let small: Vec<Scalar> = (0..500).map(|i| Scalar::from((i % 7) as u64)).collect();
        check(&mix, &small);
        check_all_plans(&mix[..60], &small[..60]);
    }

    #[test]
    fn few_distinct_digits_use_overflow_path() {
        // Tiny scalars: only a handful of buckets, so most additions conflict and
        // take the deferred-queue and Jacobian-overflow paths.
        let mut r = rng(11);
        let p = random_points(2000, &mut r);
        let s: Vec<Scalar> = (0..2000u64).map(|i| Scalar::from(i % 5)).collect();
        check(&p, &s);
        let s: Vec<Scalar> = (0..2000u64).map(|i| -Scalar::from(1 + i % 3)).collect();
        check(&p, &s);
    }

    #[test]
    fn serial_equals_parallel_large() {
        let mut r = rng(7);
        let p = random_points(3000, &mut r);
        let s = random_scalars(3000, &mut r);
        assert_eq!(vartime_msm(&p, &s), vartime_msm_par(&p, &s));
    }

    #[test]
    fn mismatched_lengths_use_prefix() {
        if cfg!(debug_assertions) {
            return; // debug_assert_eq fires by design
        }
        let mut r = rng(8);
        let p = random_points(10, &mut r);
        let s = random_scalars(7, &mut r);
        assert_eq!(vartime_msm(&p, &s), naive(&p[..7], &s));
    }

    fn lambda() -> Scalar {
        const L: [u8; 32] = [
            0x53, 0x63, 0xad, 0x4c, 0xc0, 0x5c, 0x30, 0xe0, 0xa5, 0x26, 0x1c, 0x02, 0x88, 0x12,
            0x64, 0x5a, 0x12, 0x2e, 0x22, 0xea, 0x20, 0x81, 0x66, 0x78, 0xdf, 0x02, 0x96, 0x7c,
            0x1b, 0x23, 0xbd, 0x72,
        ];
        Option::from(Scalar::from_repr(L.into())).unwrap()
    }

    fn from_mag(neg: bool, m: &[u64; 2]) -> Scalar {
        let mut b = [0u8; 32];
        b[16..24].copy_from_slice(&m[1].to_be_bytes());
        b[24..32].copy_from_slice(&m[0].to_be_bytes());
        let s: Scalar = Option::from(Scalar::from_repr(b.into())).unwrap();
        if neg {
            -s
        } else {
            s
        }
    }

    #[test]
    fn glv_decomposition() {
        let mut r = rng(9);
        let lam = lambda();
        let half = Scalar::from_repr(
            [
                0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46,
                0x68, 0x1b, 0x20, 0xa0,
            ]
            .into(),
        )
        .unwrap();
        let mut ks = vec![
            Scalar::ZERO,
            Scalar::ONE,
            minus_one(),
            half,
            half + Scalar::ONE,
            lam,
            -lam,
        ];
        ks.extend(random_scalars(2000, &mut r));
        for k in ks {
            let ((n1, k1), (n2, k2)) = glv_decompose(&limbs(&k));
            assert_eq!(from_mag(n1, &k1) + from_mag(n2, &k2) * lam, k);
        }
        // beta corresponds to lambda.
        let g = Affine::from_projective(&ProjectivePoint::GENERATOR);
        let phi = Affine::new_unchecked(g.x.mul(&beta()), g.y);
        assert_eq!(phi.to_projective(), ProjectivePoint::GENERATOR * lam);
    }

    #[test]
    fn signed_digits_reconstruct() {
        let mut r = rng(10);
        for _ in 0..50 {
            let k = Scalar::random(&mut r);
            let kl = limbs(&k);
            for c in 2..=16usize {
                let nw = (256 + 1usize).div_ceil(c);
                let mut acc = Scalar::ZERO;
                for w in (0..nw).rev() {
                    for _ in 0..c {
                        acc = acc.double();
                    }
                    let d = digit(&kl, w, c);
                    if d != NONE {
                        let m = Scalar::from(((d & !NEG) + 1) as u64);
                        acc += if d & NEG != 0 { -m } else { m };
                    }
                }
                assert_eq!(acc, k, "c={c}");
            }
        }
    }

    /// Timing only (`cargo test --release -p torus-engine --lib pippenger::tests::timing
    /// -- --ignored --nocapture`): ns per point at 2^16 points, 142-bit scalars,
    /// one thread, per backend.
    #[test]
    #[ignore]
    fn timing() {
        let mut r = rng(9);
        let n: usize = std::env::var("TIMING_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 16);
        let points = random_points(n, &mut r);
        let scalars: Vec<Scalar> = (0..n).map(|_| short_scalar(142, &mut r)).collect();
        let only = std::env::var("TIMING_BACKEND").ok();
        for b in backends() {
            if only.as_deref().is_some_and(|o| o != b.name()) {
                continue;
            }
            let mut best = f64::INFINITY;
            let reps: usize = std::env::var("TIMING_REPS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3);
            for _ in 0..reps {
                let t0 = crate::backend::simd::thread_cpu_time();
                let plan = std::env::var("TIMING_C")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .map(|c| (false, c));
                std::hint::black_box(vartime_msm_on(b, &points, &scalars, false, plan));
                best = best.min(crate::backend::simd::thread_cpu_time() - t0);
            }
            println!("{b:?}: {:.0} ns per point", best * 1e9 / n as f64);
        }
    }

    /// Batch sums with every exceptional case (identities on either side, equal
    /// points, opposite points) at positions across lane groups and chunks, on
    /// every backend, against k256.
    #[test]
    fn add_assign_handles_every_case_on_every_backend() {
        let mut r = rng(21);
        for n in [0usize, 1, 7, 8, 9, 100, 1500] {
            let a = random_points(n, &mut r);
            let mut b = random_points(n, &mut r);
            let mut a2 = a.clone();
            for i in (0..n).step_by(13) {
                match i % 4 {
                    0 => b[i] = a[i],
                    1 => b[i] = a[i].neg(),
                    2 => b[i] = Affine::IDENTITY,
                    _ => a2[i] = Affine::IDENTITY,
                }
            }
            let want: Vec<ProjectivePoint> = a2
                .iter()
                .zip(&b)
                .map(|(x, y)| x.to_projective() + y.to_projective())
                .collect();
            for backend in backends() {
                let mut acc = a2.clone();
                vartime_add_assign_on(backend, &mut acc, &b);
                for (i, (got, w)) in acc.iter().zip(&want).enumerate() {
                    assert_eq!(got.to_projective(), *w, "{backend:?} n={n} i={i}");
                }
            }
            // Without exceptional pairs the lanes do all the work.
            let c = random_points(n, &mut r);
            let want: Vec<ProjectivePoint> = a
                .iter()
                .zip(&c)
                .map(|(x, y)| x.to_projective() + y.to_projective())
                .collect();
            for backend in backends() {
                let mut acc = a.clone();
                vartime_add_assign_on(backend, &mut acc, &c);
                let got: Vec<ProjectivePoint> = acc.iter().map(Affine::to_projective).collect();
                assert_eq!(got, want, "{backend:?} n={n}");
            }
        }
    }

    #[test]
    fn eval_small_is_horner_in_the_exponent() {
        let mut r = rng(22);
        for (n, k) in [(0usize, 3usize), (1, 1), (5, 2), (37, 5), (9, 4)] {
            let mut rows = random_points(n * k, &mut r);
            if n > 2 {
                rows[k] = Affine::IDENTITY; // an identity entry
            }
            for x in [0u64, 1, 2, 3, 9, 255, 1 << 40] {
                let mut out = vec![Affine::IDENTITY; n];
                vartime_eval_small(&rows, k, x, &mut out);
                for (i, o) in out.iter().enumerate() {
                    let mut want = ProjectivePoint::IDENTITY;
                    for j in (0..k).rev() {
                        want = want * Scalar::from(x) + rows[i * k + j].to_projective();
                    }
                    assert_eq!(o.to_projective(), want, "n={n} k={k} x={x} row {i}");
                }
            }
        }
        // Doubling in place, identities kept.
        let mut pts = random_points(20, &mut r);
        pts[3] = Affine::IDENTITY;
        let want: Vec<ProjectivePoint> = pts.iter().map(|p| p.to_projective().double()).collect();
        vartime_double_assign(&mut pts);
        let got: Vec<ProjectivePoint> = pts.iter().map(Affine::to_projective).collect();
        assert_eq!(got, want);
    }

    /// With more workers than windows, each window's points are split into
    /// chunks (windows x chunks tasks); the result is unchanged.
    #[cfg(feature = "parallel")]
    #[test]
    fn windows_times_chunks_on_many_workers() {
        let mut r = rng(23);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(12)
            .build()
            .unwrap();
        // The plans split where windows alone cannot fill the workers.
        assert!(msm_plan_parallel(3000, 142, 12).2 > 1);
        assert!(msm_plan_parallel(450_000, 142, 16).2 > 1);
        for (n, bits) in [(3000usize, 142usize), (5000, 256), (777, 64)] {
            let points = random_points(n, &mut r);
            let scalars: Vec<Scalar> = (0..n).map(|_| short_scalar(bits, &mut r)).collect();
            let want = naive(&points, &scalars);
            for b in backends() {
                let got = pool.install(|| vartime_msm_on(b, &points, &scalars, true, None));
                assert_eq!(got, want, "{b:?} n={n} bits={bits}");
            }
        }
        // One worker never splits.
        assert_eq!(msm_plan_parallel(450_000, 142, 1).2, 1);
    }

    #[test]
    #[ignore]
    fn print_plans() {
        for t in [1usize, 2, 12, 16] {
            for (n, b) in [
                (3000usize, 142usize),
                (65536, 142),
                (65536, 256),
                (450_000, 142),
                (4_500_000, 142),
            ] {
                println!(
                    "threads {t} n {n} bits {b}: {:?}",
                    msm_plan_parallel(n, b, t)
                );
            }
        }
    }

    /// Many points on the same bucket overflow the deferral queue into the
    /// Jacobian buckets while the other buckets span a segmented reduction:
    /// both paths meet in one window.
    #[test]
    fn overflow_buckets_meet_the_segmented_reduction() {
        let mut r = rng(24);
        let n = 6000;
        let points = random_points(n, &mut r);
        let mut scalars: Vec<Scalar> = (0..n).map(|_| short_scalar(64, &mut r)).collect();
        let same = short_scalar(64, &mut r);
        for s in scalars.iter_mut().step_by(2) {
            *s = same;
        }
        let want = naive(&points, &scalars);
        for b in backends() {
            for c in [10usize, 11] {
                let got = vartime_msm_on(b, &points, &scalars, false, Some((false, c)));
                assert_eq!(got, want, "{b:?} c={c}");
            }
        }
    }
}
