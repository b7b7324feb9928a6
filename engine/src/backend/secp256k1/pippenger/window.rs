//! Per-window bucket accumulation.

use super::batch_affine::{batch_add, signed_y, Lanes8, KIND_ADD, KIND_DBL, KIND_INF, NEG, NONE};
use super::jacobian::Jac;
use super::{apply_slope, feq};
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::point::Affine;
use crate::backend::simd::SimdBackend;

/// Batch size = reachable buckets / BATCH_DIV (bounded by MAX_BATCH): a new
/// point hits a bucket that is already pending with probability < 1/BATCH_DIV.
pub(super) const BATCH_DIV: usize = 4;
pub(super) const MAX_BATCH: usize = 1024;

/// Reusable buffers for one window computation; sized by the bucket count, not by
/// the number of points (no per-point allocation, cache-resident buckets).
pub(super) struct Scratch {
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
    pub(super) fn new(nb: usize, backend: SimdBackend) -> Scratch {
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
pub(super) fn digit<const L: usize>(k: &[u64; L], w: usize, c: usize) -> u32 {
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
pub(super) fn window_sum<const L: usize>(
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
    // A few overflow buckets must not send a wide window to the Jacobian running
    // sum: for the segmented reduction, move them into the affine buckets first.
    // A narrow window keeps them Jacobian: the running sum adds them as cheaply,
    // and folding costs two inversions (most of a small MSM's time otherwise:
    // a 3-point MSM has every point in overflow and ~64 windows).
    let any_top = s
        .buckets
        .iter()
        .zip(&s.ovf)
        .rposition(|(a, o)| !a.infinity || !o.inf)
        .map_or(0, |t| t + 1);
    if any_top.next_power_of_two() >= SEG_MIN_BUCKETS {
        fold_overflow(s);
    }
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
pub(super) fn batch_acc(
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
