//! The seam between the engine and a backend outside it (a GPU) that computes
//! variable-time MSMs over PUBLIC data: commitments and verification weights,
//! never secrets.
//!
//! Everything that crosses the seam is in neutral form: points as their canonical
//! affine coordinates in 64-bit limbs ([`Secp256k1Xy`]), scalars and results as
//! k256 types. No type of the engine's private backends appears here, so a device
//! crate depends on this module and the engine's public API only. The engine
//! converts its own points at the boundary (one normalisation per point, next to
//! nothing beside the MSM itself) and drops identities and their scalars first.
//!
//! The module depends on no other engine module but the private backend it
//! converts with: the group layer and [`crate::msm`] depend on it, never the
//! reverse.

use k256::elliptic_curve::sec1::FromEncodedPoint;
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};

use crate::backend::secp256k1::field::Fe;

/// An affine secp256k1 point other than the identity, as its canonical coordinates:
/// little-endian 64-bit limbs, each coordinate `< p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secp256k1Xy {
    /// x, least significant limb first.
    pub x: [u64; 4],
    /// y, least significant limb first.
    pub y: [u64; 4],
}

/// A backend outside the engine (a GPU) that computes variable-time MSMs over
/// PUBLIC data.
///
/// Implementations must return exactly the group element the CPU path returns, or
/// an error (the engine then falls back to the CPU and logs the reason).
pub trait VartimeMsmOffload: Send + Sync {
    /// Name for logs and diagnostics (e.g. `"gpu (NVIDIA H100)"`).
    fn name(&self) -> &str;
    /// `sum scalars[i] * points[i]` on secp256k1; the slices have equal lengths and
    /// no point is the identity.
    fn vartime_msm_secp256k1(
        &self,
        points: &[Secp256k1Xy],
        scalars: &[Scalar],
    ) -> Result<ProjectivePoint, String>;
}

/// The point of Jacobian coordinates `(x, y, z)` (each a little-endian limb vector
/// of any 256-bit value, reduced here), as a device returns it: the identity for
/// `z = 0`, `None` for a point that is not on the curve (a device bug the caller
/// must report, never use).
pub fn secp256k1_from_jacobian(x: [u64; 4], y: [u64; 4], z: [u64; 4]) -> Option<ProjectivePoint> {
    let (x, y, z) = (Fe(x), Fe(y), Fe(z));
    if bool::from(z.is_zero()) {
        return Some(ProjectivePoint::IDENTITY);
    }
    let zi = z.invert();
    let zi2 = zi.square();
    let ax = x.mul(&zi2);
    let ay = y.mul(&zi2.mul(&zi));
    let enc =
        EncodedPoint::from_affine_coordinates(&ax.to_bytes().into(), &ay.to_bytes().into(), false);
    Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&enc)).map(ProjectivePoint::from)
}

/// The canonical limbs of a field element given as any 256-bit little-endian limb
/// vector (a device's weakly reduced output).
pub fn secp256k1_reduce_limbs(v: [u64; 4]) -> [u64; 4] {
    Fe(v).normalize().0
}

/// The neutral form of an engine point (`None` for the identity).
pub(crate) fn xy_of(p: &crate::backend::secp256k1::point::Affine) -> Option<Secp256k1Xy> {
    if p.infinity {
        return None;
    }
    Some(Secp256k1Xy {
        x: p.x.normalize().0,
        y: p.y.normalize().0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use group::Group;
    use k256::elliptic_curve::sec1::ToEncodedPoint;

    fn limbs_of_be(b: &[u8]) -> [u64; 4] {
        let mut l = [0u64; 4];
        for (limb, chunk) in l.iter_mut().rev().zip(b.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            *limb = u64::from_be_bytes(w);
        }
        l
    }

    #[test]
    fn an_affine_point_with_z_one_comes_back_unchanged() {
        let p = (ProjectivePoint::GENERATOR * Scalar::from(7u64)).to_affine();
        let e = p.to_encoded_point(false);
        let (x, y) = (limbs_of_be(e.x().unwrap()), limbs_of_be(e.y().unwrap()));
        assert_eq!(
            secp256k1_from_jacobian(x, y, [1, 0, 0, 0]),
            Some(ProjectivePoint::from(p))
        );
    }

    #[test]
    fn z_zero_is_the_identity_and_an_off_curve_point_is_refused() {
        assert_eq!(
            secp256k1_from_jacobian([1, 0, 0, 0], [2, 0, 0, 0], [0; 4]),
            Some(ProjectivePoint::IDENTITY)
        );
        assert_eq!(
            secp256k1_from_jacobian([1, 0, 0, 0], [2, 0, 0, 0], [1, 0, 0, 0]),
            None
        );
        assert!(bool::from(ProjectivePoint::IDENTITY.is_identity()));
    }

    #[test]
    fn limbs_at_or_above_p_are_reduced() {
        let p = [
            0xFFFF_FFFE_FFFF_FC2F,
            0xFFFF_FFFF_FFFF_FFFF,
            0xFFFF_FFFF_FFFF_FFFF,
            0xFFFF_FFFF_FFFF_FFFF,
        ];
        assert_eq!(secp256k1_reduce_limbs(p), [0; 4]);
        let mut p1 = p;
        p1[0] += 1;
        assert_eq!(secp256k1_reduce_limbs(p1), [1, 0, 0, 0]);
    }
}
