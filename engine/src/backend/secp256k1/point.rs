//! Affine secp256k1 points over our 4x64 field [`Fe`], the representation every
//! hot secp256k1 path (fixed-base tables, Pippenger buckets, batch normalisation)
//! works in. Conversions to and from k256's own types go through bytes and are
//! meant for boundaries, not inner loops.

use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, FieldBytes, ProjectivePoint};
use subtle::{Choice, ConditionallySelectable};

use super::field::Fe;

/// An affine point `(x, y)`, or the identity.
///
/// Invariant: `x` and `y` are [`Fe`] values, weakly reduced (any 256-bit value,
/// representing it mod p; see [`Fe`]). Points built by the constructors here are
/// canonical (`< p`); internal arithmetic may leave weakly reduced coordinates.
/// Comparison ([`PartialEq`]) and serialization ([`Affine::x_bytes`],
/// [`Affine::y_is_odd`], [`Affine::to_k256`]) normalize.
#[derive(Clone, Copy, Debug)]
pub struct Affine {
    /// x-coordinate.
    pub x: Fe,
    /// y-coordinate.
    pub y: Fe,
    /// True for the point at infinity (then `x` and `y` are zero).
    pub infinity: bool,
}

impl PartialEq for Affine {
    fn eq(&self, other: &Self) -> bool {
        if self.infinity || other.infinity {
            return self.infinity == other.infinity;
        }
        self.x == other.x && self.y == other.y
    }
}
impl Eq for Affine {}

impl Default for Affine {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Affine {
    /// The point at infinity.
    pub const IDENTITY: Affine = Affine {
        x: Fe::ZERO,
        y: Fe::ZERO,
        infinity: true,
    };

    /// Build from coordinates that the caller knows are on the curve; normalizes them.
    pub fn new_unchecked(x: Fe, y: Fe) -> Self {
        Affine {
            x: x.normalize(),
            y: y.normalize(),
            infinity: false,
        }
    }

    /// Converts from k256's affine type.
    pub fn from_k256(p: &AffinePoint) -> Self {
        let enc = p.to_encoded_point(false);
        match (enc.x(), enc.y()) {
            (Some(x), Some(y)) => {
                // SEC1 coordinates from k256 are canonical 32-byte encodings.
                let x = Fe::from_bytes_wide(&(*x).into());
                let y = Fe::from_bytes_wide(&(*y).into());
                Affine {
                    x,
                    y,
                    infinity: false,
                }
            }
            _ => Self::IDENTITY,
        }
    }

    /// Converts to k256's affine type.
    pub fn to_k256(&self) -> AffinePoint {
        if self.infinity {
            return AffinePoint::IDENTITY;
        }
        let enc = EncodedPoint::from_affine_coordinates(
            &self.x.to_bytes().into(),
            &self.y.to_bytes().into(),
            false,
        );
        // Coordinates produced by our own arithmetic are on the curve; an off-curve
        // value here is a bug, mapped to the identity so callers see a wrong result
        // in tests rather than a panic in production.
        Option::from(AffinePoint::from_encoded_point(&enc)).unwrap_or(AffinePoint::IDENTITY)
    }

    /// Converts to k256's projective type.
    pub fn to_projective(&self) -> ProjectivePoint {
        ProjectivePoint::from(self.to_k256())
    }

    /// Converts one projective point (one inversion; use [`Affine::batch_from_projective`] for many).
    pub fn from_projective(p: &ProjectivePoint) -> Self {
        Self::from_k256(&p.to_affine())
    }

    /// Batch-normalizes projective points with one shared inversion.
    pub fn batch_from_projective(points: &[ProjectivePoint]) -> Vec<Affine> {
        use group::Group;
        use k256::elliptic_curve::BatchNormalize;
        if points.is_empty() {
            return Vec::new();
        }
        // k256's batch normalisation inverts every z and panics on the identity
        // (z = 0): substitute G for identities and restore them afterwards.
        let is_id: Vec<bool> = points.iter().map(|p| bool::from(p.is_identity())).collect();
        let safe: Vec<ProjectivePoint> = points
            .iter()
            .zip(&is_id)
            .map(|(p, id)| if *id { ProjectivePoint::GENERATOR } else { *p })
            .collect();
        let affine: Vec<AffinePoint> =
            <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(&safe);
        affine
            .iter()
            .zip(&is_id)
            .map(|(a, id)| {
                if *id {
                    Self::IDENTITY
                } else {
                    Self::from_k256(a)
                }
            })
            .collect()
    }

    /// The negation `(x, -y)`.
    pub fn neg(&self) -> Self {
        if self.infinity {
            return *self;
        }
        Affine {
            x: self.x,
            y: self.y.neg(),
            infinity: false,
        }
    }

    /// x-coordinate as 32 big-endian bytes.
    pub fn x_bytes(&self) -> FieldBytes {
        self.x.to_bytes().into()
    }

    /// Whether y is odd (for SEC1 compression).
    pub fn y_is_odd(&self) -> bool {
        bool::from(self.y.is_odd())
    }
}

impl ConditionallySelectable for Affine {
    /// Constant-time select of the coordinates; the `infinity` flag is public
    /// metadata and is selected with a mask, not a branch.
    fn conditional_select(a: &Self, b: &Self, choice: Choice) -> Self {
        let inf = u8::conditional_select(&(a.infinity as u8), &(b.infinity as u8), choice);
        Affine {
            x: Fe::conditional_select(&a.x, &b.x, choice),
            y: Fe::conditional_select(&a.y, &b.y, choice),
            infinity: inf == 1,
        }
    }
}

/// Consistency with k256's coordinate accessors (used in tests).
pub fn k256_x(p: &AffinePoint) -> FieldBytes {
    p.x()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::Scalar;

    #[test]
    fn round_trip_through_k256() {
        let g = ProjectivePoint::GENERATOR;
        let pts: Vec<ProjectivePoint> = (1u64..20).map(|i| g * Scalar::from(i)).collect();
        let aff = Affine::batch_from_projective(&pts);
        for (p, a) in pts.iter().zip(&aff) {
            assert_eq!(a.to_projective(), *p);
            assert_eq!(*a, Affine::from_projective(p));
            assert_eq!(a.neg().to_projective(), -*p);
        }
        assert!(Affine::from_projective(&ProjectivePoint::IDENTITY).infinity);
        assert!(Affine::batch_from_projective(&[]).is_empty());
        let mixed = [ProjectivePoint::IDENTITY, g, ProjectivePoint::IDENTITY];
        let aff = Affine::batch_from_projective(&mixed);
        assert!(aff[0].infinity && aff[2].infinity && aff[1] == Affine::from_projective(&g));
        assert_eq!(Affine::IDENTITY.to_projective(), ProjectivePoint::IDENTITY);
    }
}
