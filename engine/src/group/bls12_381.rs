//! BLS12-381 G1 (blstrs) implementation of [`Suite`].

use blst::MultiPoint;
use blstrs::{G1Affine, G1Projective, Scalar};
use group::{Curve, Group};

use super::Suite;
use crate::backend::bls12_381::fixed_base::FixedBase;
use crate::error::DecodeError;

/// Marker type for the G1 group of BLS12-381.
///
/// `H = hash_to_curve(G1 generator compressed bytes, DST = `[`Bls12381::H_DST`]`)`,
/// with the RFC 9380 suite `BLS12381G1_XMD:SHA-256_SSWU_RO_` (blst's
/// `blst_hash_to_g1`), so nobody knows log_G(H).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bls12381;

impl Bls12381 {
    /// Domain separation tag of the hash-to-curve that derives H.
    pub const H_DST: &'static [u8] = b"TORUS-ENGINE-V1-H-GENERATOR_BLS12381G1_XMD:SHA-256_SSWU_RO_";
}

fn h_point() -> G1Projective {
    static H: std::sync::OnceLock<G1Projective> = std::sync::OnceLock::new();
    *H.get_or_init(|| {
        let g = G1Projective::generator().to_affine().to_compressed();
        G1Projective::hash_to_curve(&g, Bls12381::H_DST, &[])
    })
}

fn batch_normalize(points: &[G1Projective], out: &mut [G1Affine]) {
    let n = points.len().min(out.len());
    if let (Some(p), Some(o)) = (points.get(..n), out.get_mut(..n)) {
        G1Projective::batch_normalize(p, o);
    }
}

impl Suite for Bls12381 {
    const NAME: &'static str = "bls12-381";
    const POINT_LEN: usize = 48;

    type Scalar = Scalar;
    type Point = G1Projective;
    type Affine = G1Affine;

    fn h() -> G1Projective {
        h_point()
    }

    fn to_affine(p: &G1Projective) -> G1Affine {
        p.to_affine()
    }

    fn batch_to_affine(points: &[G1Projective]) -> Vec<G1Affine> {
        let mut out = vec![G1Affine::default(); points.len()];
        batch_normalize(points, &mut out);
        out
    }

    fn from_affine(a: &G1Affine) -> G1Projective {
        G1Projective::from(a)
    }

    fn is_identity(a: &G1Affine) -> bool {
        bool::from(group::prime::PrimeCurveAffine::is_identity(a))
    }

    fn neg_affine(a: &G1Affine) -> G1Affine {
        -*a
    }

    fn encode_point(a: &G1Affine, out: &mut Vec<u8>) {
        out.extend_from_slice(&a.to_compressed());
    }

    fn decode_point(bytes: &[u8]) -> Result<G1Affine, DecodeError> {
        let arr: &[u8; 48] = bytes.try_into().map_err(|_| DecodeError::Length {
            what: "bls12-381 point",
            expected: 48,
            got: bytes.len(),
        })?;
        let p = Option::<G1Affine>::from(G1Affine::from_compressed(arr))
            .ok_or(DecodeError::NotOnCurve)?;
        if Self::is_identity(&p) {
            return Err(DecodeError::Identity);
        }
        // from_compressed accepts only canonical encodings; re-encoding must round-trip.
        if &p.to_compressed() != arr {
            return Err(DecodeError::NonCanonical("bls12-381 point"));
        }
        Ok(p)
    }

    const POINT_LEN_XY: usize = 96;

    fn encode_point_xy(a: &G1Affine, out: &mut Vec<u8>) {
        if Self::is_identity(a) {
            out.extend_from_slice(&[0u8; 96]);
            return;
        }
        out.extend_from_slice(&a.to_uncompressed());
    }

    fn decode_point_xy(bytes: &[u8]) -> Result<G1Affine, DecodeError> {
        let arr: &[u8; 96] = bytes.try_into().map_err(|_| DecodeError::Length {
            what: "bls12-381 point (x, y)",
            expected: 96,
            got: bytes.len(),
        })?;
        if arr.iter().all(|b| *b == 0) {
            return Err(DecodeError::Identity);
        }
        // from_uncompressed checks the curve equation and the subgroup.
        let p = Option::<G1Affine>::from(G1Affine::from_uncompressed(arr))
            .ok_or(DecodeError::NotOnCurve)?;
        if Self::is_identity(&p) {
            return Err(DecodeError::Identity);
        }
        if &p.to_uncompressed() != arr {
            return Err(DecodeError::NonCanonical("bls12-381 point (x, y)"));
        }
        Ok(p)
    }

    fn x_bytes_minimal(a: &G1Affine) -> Vec<u8> {
        let x = a.x().to_bytes_be();
        let first = x.iter().position(|b| *b != 0).unwrap_or(x.len());
        x.get(first..).unwrap_or(&[]).to_vec()
    }

    fn encode_scalar(s: &Scalar) -> [u8; 32] {
        s.to_bytes_be()
    }

    fn decode_scalar(bytes: &[u8]) -> Result<Scalar, DecodeError> {
        let arr: &[u8; 32] = bytes.try_into().map_err(|_| DecodeError::Length {
            what: "scalar",
            expected: 32,
            got: bytes.len(),
        })?;
        Option::from(Scalar::from_bytes_be(arr)).ok_or(DecodeError::NonCanonical("scalar >= q"))
    }

    fn scalar_from_hash(bytes: &[u8; 32]) -> Scalar {
        crate::group::reduce_be_256::<Scalar>(bytes)
    }

    /// Constant-time fixed-base tables for G and H
    /// (`backend::bls12_381::fixed_base`): 86 complete mixed additions per
    /// commitment and constant-time table scans, no doublings.
    fn ct_commit_batch(f: &[Scalar], fp: &[Scalar], out: &mut [G1Affine]) {
        FixedBase::get(h_point).commit(f, fp, out);
    }

    fn ct_mul_g_batch(s: &[Scalar], out: &mut [G1Affine]) {
        FixedBase::get(h_point).mul_g(s, out);
    }

    fn ct_mul_h_batch(s: &[Scalar], out: &mut [G1Affine]) {
        FixedBase::get(h_point).mul_h(s, out);
    }

    fn vartime_msm(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
        // Serial reference: our generic Pippenger (blstrs scalars' repr is
        // little-endian). The parallel backend uses blst's own Pippenger.
        let pts: Vec<G1Projective> = points.iter().map(G1Projective::from).collect();
        super::pippenger::vartime_pippenger(&pts, scalars, false)
    }

    fn vartime_msm_par(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
        blst_msm(points, scalars)
    }
}

/// blst's Pippenger (multi-threaded on its own pool) over the scalars' real bit
/// length: the folded verification MSM has ~140-bit scalars, and blst's cost is
/// proportional to `nbits`.
pub(crate) fn blst_msm(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
    let n = points.len().min(scalars.len());
    if n == 0 {
        return G1Projective::identity();
    }
    let affine: Vec<blst::blst_p1_affine> = points.iter().take(n).map(|p| *p.as_ref()).collect();
    let le: Vec<[u8; 32]> = scalars.iter().take(n).map(Scalar::to_bytes_le).collect();
    let nbits = le
        .iter()
        .map(|b| {
            b.iter().rposition(|x| *x != 0).map_or(0, |i| {
                i * 8 + 8 - b.get(i).map_or(8, |x| x.leading_zeros() as usize)
            })
        })
        .max()
        .unwrap_or(0);
    if nbits == 0 {
        return G1Projective::identity();
    }
    // blst reads each scalar with a stride of ceil(nbits / 8) bytes.
    let nbytes = nbits.div_ceil(8);
    let mut bytes = Vec::with_capacity(n * nbytes);
    for b in &le {
        bytes.extend_from_slice(b.get(..nbytes).unwrap_or(b));
    }
    let r = affine.as_slice().mult(&bytes, nbits);
    blst_to_projective(&r)
}

/// blst's raw projective result as blstrs' type (blstrs exposes its `blst_p1`
/// through `AsMut`, so no encoding round trip and no FFI call is needed).
fn blst_to_projective(p: &blst::blst_p1) -> G1Projective {
    let mut out = G1Projective::identity();
    *out.as_mut() = *p;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::Field;
    use rand_core::OsRng;

    #[test]
    fn h_is_not_g_and_is_in_the_group() {
        let h = Bls12381::h();
        assert_ne!(h, G1Projective::generator());
        assert!(!bool::from(h.is_identity()));
        assert!(bool::from(h.to_affine().is_torsion_free()));
    }

    #[test]
    fn blst_msm_matches_naive() {
        for n in [1usize, 2, 3, 17, 300, 4096] {
            let pts: Vec<G1Affine> = (0..n)
                .map(|_| G1Projective::random(OsRng).to_affine())
                .collect();
            let mut sc: Vec<Scalar> = (0..n).map(|_| Scalar::random(OsRng)).collect();
            sc[0] = Scalar::ZERO;
            if n > 1 {
                sc[1] = -Scalar::ONE;
            }
            if n > 2 {
                sc[2] = Scalar::from(5u64);
            }
            // Short scalars (the folded verification MSM's shape).
            let short: Vec<Scalar> = sc
                .iter()
                .map(|s| Scalar::from(s.to_bytes_le()[0] as u64) * Scalar::from(u64::MAX))
                .collect();
            let naive_short = pts
                .iter()
                .zip(&short)
                .fold(G1Projective::identity(), |a, (p, s)| {
                    a + G1Projective::from(p) * s
                });
            assert_eq!(blst_msm(&pts, &short), naive_short, "short n={n}");
            let naive = pts
                .iter()
                .zip(&sc)
                .fold(G1Projective::identity(), |a, (p, s)| {
                    a + G1Projective::from(p) * s
                });
            assert_eq!(blst_msm(&pts, &sc), naive, "n={n}");
            assert_eq!(Bls12381::vartime_msm(&pts, &sc), naive, "n={n}");
        }
    }
}
