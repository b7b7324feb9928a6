//! Jacobian points (variable time), used for bucket reduction and window sums.

use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::point::Affine;
use k256::ProjectivePoint;

/// Jacobian point `(X / Z^2, Y / Z^3)`; coordinates weakly reduced.
#[derive(Clone, Copy, Debug)]
pub(super) struct Jac {
    pub(super) x: Fe,
    pub(super) y: Fe,
    pub(super) z: Fe,
    pub(super) inf: bool,
}

impl Jac {
    pub(super) const INF: Jac = Jac {
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
    pub(super) fn double(&self) -> Jac {
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
    pub(super) fn add_affine(&self, q: &Affine) -> Jac {
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
    pub(super) fn add(&self, q: &Jac) -> Jac {
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
    pub(super) fn to_projective(self) -> ProjectivePoint {
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
