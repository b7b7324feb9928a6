//! secp256k1 (k256) implementation of [`Suite`].

use k256::elliptic_curve::bigint::U512;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, ProjectivePoint, Scalar, U256};

use super::Suite;
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::point::Affine;
use crate::backend::secp256k1::{fixed_base, pippenger};
use crate::error::DecodeError;
use crate::offload::{self, VartimeMsmOffload};

/// Marker type for secp256k1, the curve of Torus user keys (Ethereum keys).
///
/// `H` is the spec's hash-to-point of `G.x` (see [`Secp256k1::H_X`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Secp256k1;

impl Secp256k1 {
    /// x-coordinate of H (big-endian hex in the spec, section 0).
    pub const H_X: [u8; 32] =
        hex32("bd48405ed3251dbb9f783c5a51cbf46016252921b268ebd47d0a0389f7b93cc1");
    /// y-coordinate of H.
    pub const H_Y: [u8; 32] =
        hex32("8d8aca53b562a88df1b823928ff9ec96ea4daf03346e935544f104fe77898f45");

    /// The neutral form of an MSM's inputs for an offload backend
    /// ([`offload::Secp256k1Xy`]): identity points are dropped with their scalars
    /// (they contribute nothing). Pairs beyond the shorter slice are ignored.
    pub fn offload_inputs(
        points: &[Affine],
        scalars: &[Scalar],
    ) -> (Vec<offload::Secp256k1Xy>, Vec<Scalar>) {
        let mut xy = Vec::with_capacity(points.len());
        let mut sc = Vec::with_capacity(points.len());
        for (p, s) in points.iter().zip(scalars) {
            if let Some(q) = offload::xy_of(p) {
                xy.push(q);
                sc.push(*s);
            }
        }
        (xy, sc)
    }

    /// H as an affine point.
    pub fn h_affine() -> Affine {
        let x = Fe::from_bytes(&Self::H_X).unwrap_or(Fe::ZERO);
        let y = Fe::from_bytes(&Self::H_Y).unwrap_or(Fe::ZERO);
        Affine::new_unchecked(x, y)
    }
}

const fn hex_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("bad hex constant"),
    }
}

/// Const hex decoding for the fixed constants above (evaluated at compile time,
/// so an out-of-range index is a build error, never a run-time panic).
#[allow(clippy::indexing_slicing)]
const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (hex_nibble(b[2 * i]) << 4) | hex_nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// `x^3 + 7`.
fn curve_rhs(x: &Fe) -> Fe {
    x.square().mul(x).add(&Fe::from_u64(7))
}

impl Suite for Secp256k1 {
    const NAME: &'static str = "secp256k1";
    const POINT_LEN: usize = 33;

    type Scalar = Scalar;
    type Point = ProjectivePoint;
    type Affine = Affine;

    fn h() -> ProjectivePoint {
        Self::h_affine().to_projective()
    }

    fn to_affine(p: &ProjectivePoint) -> Affine {
        Affine::from_projective(p)
    }

    fn batch_to_affine(points: &[ProjectivePoint]) -> Vec<Affine> {
        Affine::batch_from_projective(points)
    }

    fn from_affine(a: &Affine) -> ProjectivePoint {
        a.to_projective()
    }

    fn is_identity(a: &Affine) -> bool {
        a.infinity
    }

    fn neg_affine(a: &Affine) -> Affine {
        a.neg()
    }

    fn encode_point(a: &Affine, out: &mut Vec<u8>) {
        if a.infinity {
            out.extend_from_slice(&[0u8; 33]);
            return;
        }
        out.push(if a.y_is_odd() { 3 } else { 2 });
        out.extend_from_slice(&a.x_bytes());
    }

    fn decode_point(bytes: &[u8]) -> Result<Affine, DecodeError> {
        let (tag, xb) = match bytes {
            [tag, rest @ ..] if rest.len() == 32 => (*tag, rest),
            _ => {
                return Err(DecodeError::Length {
                    what: "secp256k1 point",
                    expected: 33,
                    got: bytes.len(),
                })
            }
        };
        if bytes.iter().all(|b| *b == 0) {
            return Err(DecodeError::Identity);
        }
        let odd = match tag {
            2 => false,
            3 => true,
            _ => return Err(DecodeError::NonCanonical("secp256k1 point tag")),
        };
        let xb: [u8; 32] = xb
            .try_into()
            .map_err(|_| DecodeError::NonCanonical("secp256k1 x"))?;
        let x = Fe::from_bytes(&xb).ok_or(DecodeError::NonCanonical("secp256k1 x >= p"))?;
        let y = Option::<Fe>::from(curve_rhs(&x).sqrt()).ok_or(DecodeError::NotOnCurve)?;
        let y = if bool::from(y.is_odd()) == odd {
            y
        } else {
            y.neg()
        };
        Ok(Affine::new_unchecked(x, y))
    }

    const POINT_LEN_XY: usize = 64;

    fn encode_point_xy(a: &Affine, out: &mut Vec<u8>) {
        if a.infinity {
            out.extend_from_slice(&[0u8; 64]);
            return;
        }
        out.extend_from_slice(&a.x.to_bytes());
        out.extend_from_slice(&a.y.to_bytes());
    }

    fn decode_point_xy(bytes: &[u8]) -> Result<Affine, DecodeError> {
        let (xb, yb) = match bytes {
            b if b.len() == 64 => b.split_at(32),
            _ => {
                return Err(DecodeError::Length {
                    what: "secp256k1 point (x, y)",
                    expected: 64,
                    got: bytes.len(),
                })
            }
        };
        if bytes.iter().all(|b| *b == 0) {
            return Err(DecodeError::Identity);
        }
        let coord = |b: &[u8]| -> Result<Fe, DecodeError> {
            let a: [u8; 32] = b
                .try_into()
                .map_err(|_| DecodeError::NonCanonical("secp256k1 coordinate"))?;
            Fe::from_bytes(&a).ok_or(DecodeError::NonCanonical("secp256k1 coordinate >= p"))
        };
        let (x, y) = (coord(xb)?, coord(yb)?);
        // y^2 = x^3 + 7 (the curve has no point with y = 0, so this also excludes
        // small-order points; secp256k1 has cofactor 1).
        if y.square().normalize() != curve_rhs(&x).normalize() {
            return Err(DecodeError::NotOnCurve);
        }
        Ok(Affine::new_unchecked(x, y))
    }

    fn x_bytes_minimal(a: &Affine) -> Vec<u8> {
        let x = a.x_bytes();
        let first = x.iter().position(|b| *b != 0).unwrap_or(x.len());
        x.get(first..).unwrap_or(&[]).to_vec()
    }

    fn encode_scalar(s: &Scalar) -> [u8; 32] {
        s.to_repr().into()
    }

    fn decode_scalar(bytes: &[u8]) -> Result<Scalar, DecodeError> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| DecodeError::Length {
            what: "scalar",
            expected: 32,
            got: bytes.len(),
        })?;
        Option::from(Scalar::from_repr(FieldBytes::from(arr)))
            .ok_or(DecodeError::NonCanonical("scalar >= q"))
    }

    fn scalar_from_hash(bytes: &[u8; 32]) -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*bytes))
    }

    const FAST_LIMBS: bool = true;

    fn scalar_to_le_limbs(s: &Scalar) -> [u64; 4] {
        U256::from(s).to_words()
    }

    fn scalar_from_le_limbs(l: &[u64; 4]) -> Scalar {
        // One conditional subtraction of q (2^256 < 2q), constant time.
        <Scalar as Reduce<U256>>::reduce(U256::from_words(*l))
    }

    fn scalar_from_wide_le_limbs(l: &[u64; 8]) -> Scalar {
        <Scalar as Reduce<U512>>::reduce(U512::from_words(*l))
    }

    fn ct_commit_batch(f: &[Scalar], fp: &[Scalar], out: &mut [Affine]) {
        fixed_base::ct_commit_batch(f, fp, out);
    }

    fn ct_mul_g_batch(s: &[Scalar], out: &mut [Affine]) {
        fixed_base::ct_mul_g_batch(s, out);
    }

    fn ct_mul_h_batch(s: &[Scalar], out: &mut [Affine]) {
        fixed_base::ct_mul_h_batch(s, out);
    }

    fn vartime_add_assign(acc: &mut [Affine], add: &[Affine]) {
        pippenger::vartime_add_assign(acc, add);
    }

    fn vartime_sum_columns(columns: &[&[Affine]], len: usize, mut out: impl FnMut(usize, Affine)) {
        let mut acc: Vec<Affine> = (0..len)
            .map(|i| {
                columns
                    .first()
                    .and_then(|c| c.get(i))
                    .copied()
                    .unwrap_or(Affine::IDENTITY)
            })
            .collect();
        for c in columns.iter().skip(1) {
            let add: Vec<Affine> = (0..len)
                .map(|i| c.get(i).copied().unwrap_or(Affine::IDENTITY))
                .collect();
            pippenger::vartime_add_assign(&mut acc, &add);
        }
        for (i, a) in acc.into_iter().enumerate() {
            out(i, a);
        }
    }

    fn vartime_eval_small(rows: &[Affine], k: usize, x: u64, out: &mut [Affine]) {
        pippenger::vartime_eval_small(rows, k.max(1), x, out);
    }

    fn vartime_msm(points: &[Affine], scalars: &[Scalar]) -> ProjectivePoint {
        pippenger::vartime_msm(points, scalars)
    }

    fn vartime_msm_par(points: &[Affine], scalars: &[Scalar]) -> ProjectivePoint {
        pippenger::vartime_msm_par(points, scalars)
    }

    fn vartime_msm_window(
        points: &[Affine],
        scalars: &[Scalar],
        par: bool,
        window: usize,
    ) -> ProjectivePoint {
        pippenger::vartime_msm_with_window(points, scalars, par, window)
    }

    const OFFLOAD_MSM: bool = true;

    fn vartime_msm_offload(
        offload: &dyn VartimeMsmOffload,
        points: &[Affine],
        scalars: &[Scalar],
    ) -> Option<Result<ProjectivePoint, String>> {
        let (xy, sc) = Self::offload_inputs(points, scalars);
        Some(offload.vartime_msm_secp256k1(&xy, &sc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha3::{Digest, Keccak256};

    /// H from the spec's definition: x = keccak256(Gx) as an integer; while x^3+7 is
    /// not a square, x += 1; y = (x^3+7)^((p+1)/4) (k256's sqrt is that power).
    #[test]
    fn h_matches_spec_definition() {
        let g = Affine::from_projective(&ProjectivePoint::GENERATOR);
        let digest: [u8; 32] = Keccak256::digest(g.x_bytes()).into();
        let mut x = Fe::from_bytes(&digest).unwrap();
        let y = loop {
            if let Some(y) = Option::<Fe>::from(curve_rhs(&x).sqrt()) {
                break y;
            }
            x = x.add(&Fe::ONE).normalize();
        };
        let h = Secp256k1::h_affine();
        assert_eq!(x.to_bytes(), Secp256k1::H_X);
        assert_eq!(y.to_bytes(), Secp256k1::H_Y);
        assert_eq!(h, Affine::new_unchecked(x, y));
    }

    /// The uncompressed form agrees with the compressed one, and refuses the
    /// identity, a coordinate >= p, the negated-y twin with a wrong sign flipped
    /// into x, and a point off the curve.
    #[test]
    fn xy_encoding_checks_the_curve() {
        let pts = [
            Affine::from_projective(&ProjectivePoint::GENERATOR),
            Secp256k1::h_affine(),
            Affine::from_projective(&(ProjectivePoint::GENERATOR * Scalar::from(12345u64))),
        ];
        for p in pts {
            let mut xy = Vec::new();
            Secp256k1::encode_point_xy(&p, &mut xy);
            assert_eq!(xy.len(), Secp256k1::POINT_LEN_XY);
            assert_eq!(Secp256k1::decode_point_xy(&xy), Ok(p));
            let mut c = Vec::new();
            Secp256k1::encode_point(&p, &mut c);
            assert_eq!(Secp256k1::decode_point(&c), Ok(p));
            assert_eq!(&c[1..], &xy[..32]);
            // -P has the same x and passes too; a changed y does not.
            let mut neg = Vec::new();
            Secp256k1::encode_point_xy(&p.neg(), &mut neg);
            assert_eq!(Secp256k1::decode_point_xy(&neg), Ok(p.neg()));
            let mut bad = xy.clone();
            bad[63] ^= 1;
            assert_eq!(
                Secp256k1::decode_point_xy(&bad),
                Err(DecodeError::NotOnCurve)
            );
            // A coordinate >= p is refused before the curve check.
            let mut big = xy.clone();
            big[32..].copy_from_slice(&[0xff; 32]);
            assert!(matches!(
                Secp256k1::decode_point_xy(&big),
                Err(DecodeError::NonCanonical(_))
            ));
            assert!(Secp256k1::decode_point_xy(&xy[..63]).is_err());
        }
        assert_eq!(
            Secp256k1::decode_point_xy(&[0u8; 64]),
            Err(DecodeError::Identity)
        );
    }
}
