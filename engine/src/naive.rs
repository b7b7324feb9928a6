//! The naive reference path: what a straightforward AVSS node does, verifying
//! every message and every point on its own with one scalar multiplication per
//! term (the original node's `verify-poly` / `verify-point`). It is the baseline
//! of the speed ratios and the differential oracle of the tests. Variable time;
//! never use it on secrets outside tests and benchmarks.

use ff::Field;
use group::Group;

use crate::avss::{Commitments, Slice};
use crate::dkg::{challenge, Proof};
use crate::group::{Affine, Point, Scalar, Suite};
use crate::params::Params;
use crate::poly::lagrange_at_zero;

fn s_from<S: Suite>(x: u32) -> Scalar<S> {
    Scalar::<S>::from(u64::from(x))
}

fn pow<S: Suite>(x: u32, e: usize) -> Scalar<S> {
    (0..e).fold(Scalar::<S>::ONE, |a, _| a * s_from::<S>(x))
}

/// `sum scalars[i] * points[i]`, one multiplication per term.
pub fn msm<S: Suite>(points: &[Affine<S>], scalars: &[Scalar<S>]) -> Point<S> {
    points
        .iter()
        .zip(scalars)
        .fold(Point::<S>::identity(), |acc, (p, s)| {
            acc + S::from_affine(p) * s
        })
}

/// `f*G + f'*H` per entry, two multiplications each.
pub fn commit<S: Suite>(f: &[Scalar<S>], fp: &[Scalar<S>]) -> Vec<Affine<S>> {
    let (g, h) = (S::generator(), S::h());
    f.iter()
        .zip(fp)
        .map(|(a, b)| S::to_affine(&(g * a + h * b)))
        .collect()
}

/// `a*G + b*H`.
fn pedersen<S: Suite>(a: &Scalar<S>, b: &Scalar<S>) -> Point<S> {
    S::generator() * a + S::h() * b
}

/// Verify-poly of one dealer's send for every key: k row and k column
/// equations per key, each with k + 2 multiplications. Returns per-key verdicts.
pub fn verify_send<S: Suite>(
    params: &Params,
    receiver: u32,
    c: &Commitments<S>,
    slice: &Slice<S>,
) -> Vec<bool> {
    let k = params.ku();
    (0..c.keys())
        .map(|key| {
            let m = c.matrix(key);
            let (a, ap) = slice.row(key);
            let (b, bp) = slice.column(key);
            if m.len() != k * k || a.len() != k || b.len() != k {
                return false;
            }
            let entry = |j: usize, l: usize| {
                m.get(j * k + l)
                    .map(S::from_affine)
                    .unwrap_or_else(Point::<S>::identity)
            };
            let rows = (0..k).all(|l| {
                let rhs = (0..k).fold(Point::<S>::identity(), |acc, j| {
                    acc + entry(j, l) * pow::<S>(receiver, j)
                });
                match (a.get(l), ap.get(l)) {
                    (Some(x), Some(y)) => pedersen::<S>(x, y) == rhs,
                    _ => false,
                }
            });
            let cols = (0..k).all(|j| {
                let rhs = (0..k).fold(Point::<S>::identity(), |acc, l| {
                    acc + entry(j, l) * pow::<S>(receiver, l)
                });
                match (b.get(j), bp.get(j)) {
                    (Some(x), Some(y)) => pedersen::<S>(x, y) == rhs,
                    _ => false,
                }
            });
            rows && cols
        })
        .collect()
}

/// Verify-point: `alpha*G + alpha'*H == sum_{j,l} x^j y^l C[j][l]` for the point
/// `f(x, y)` of one key (k^2 + 2 multiplications).
pub fn verify_point<S: Suite>(
    c: &Commitments<S>,
    key: usize,
    x: u32,
    y: u32,
    value: &Scalar<S>,
    blinding: &Scalar<S>,
) -> bool {
    let k = c.k();
    let m = c.matrix(key);
    let mut rhs = Point::<S>::identity();
    for (e, p) in m.iter().enumerate() {
        let (j, l) = (e / k, e % k);
        rhs += S::from_affine(p) * (pow::<S>(x, j) * pow::<S>(y, l));
    }
    pedersen::<S>(value, blinding) == rhs
}

/// Checks one proof the spec's way: recompute `t1' = u1*G + c*gs`,
/// `t2' = u2*H + c*(gshr - gs)`, and the binding `gshr == sum_j i^j D[j]`.
pub fn verify_proof<S: Suite>(
    node: u32,
    d: &[Affine<S>],
    gs: &Affine<S>,
    gshr: &Affine<S>,
    p: &Proof<S>,
) -> bool {
    let c = challenge::<S>(gs, gshr, &p.t1, &p.t2);
    let (gsp, gshrp) = (S::from_affine(gs), S::from_affine(gshr));
    let t1 = S::generator() * p.u1 + gsp * c;
    let t2 = S::h() * p.u2 + (gshrp - gsp) * c;
    let bind = d
        .iter()
        .enumerate()
        .fold(Point::<S>::identity(), |acc, (j, dj)| {
            acc + S::from_affine(dj) * pow::<S>(node, j)
        });
    t1 == S::from_affine(&p.t1) && t2 == S::from_affine(&p.t2) && bind == gshrp
}

/// Lagrange at 0 in the exponent, one multiplication per share.
pub fn public_key<S: Suite>(indexes: &[u32], gs: &[Affine<S>]) -> Option<Affine<S>> {
    let l = lagrange_at_zero::<Scalar<S>>(indexes).ok()?;
    Some(S::to_affine(&msm::<S>(gs, &l)))
}
