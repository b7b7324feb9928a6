//! Batch-affine bucket accumulation (Montgomery's trick).

use super::{apply_slope, feq};
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::ifma::{AddScratch, Fe8Aos, Ifma};
use crate::backend::secp256k1::point::Affine;
use crate::backend::simd::SimdBackend;

pub(super) const KIND_ADD: u8 = 0;
pub(super) const KIND_DBL: u8 = 1;
pub(super) const KIND_INF: u8 = 2;

/// Sign flag in a scheduled point reference (`index | NEG`).
pub(super) const NEG: u32 = 1 << 31;
/// "No digit" marker.
pub(super) const NONE: u32 = u32::MAX;

/// `y` of `points[e]` with the sign of the reference `e` applied.
#[inline(always)]
pub(super) fn signed_y(p: &Affine, e: u32) -> Fe {
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
pub(super) fn batch_add(
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
pub(super) struct Lanes8 {
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
    pub(super) fn new(backend: SimdBackend) -> Option<Lanes8> {
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
    pub(super) fn batch_add(
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
