//! The group abstraction the protocol code is written over.
//!
//! In the manner of frost's `Ciphersuite`, a zero-sized marker type per curve
//! ([`Secp256k1`], [`Bls12381`]) implements [`Suite`] by forwarding to the curve
//! crates (k256, blstrs) and to this crate's fast paths. Protocol modules
//! (`avss`, `dkg`, `pss`) are generic over `S: Suite` and use the aliases
//! [`Scalar<S>`], [`Point<S>`] and [`Affine<S>`].
//!
//! Two families of operations are kept apart by name, as in curve25519-dalek:
//! `ct_*` run in constant time and take secret scalars; `vartime_*` are
//! variable-time and only ever see public data (commitments, public key shares,
//! verification weights).

use core::fmt::Debug;

use ff::{Field, PrimeField};
use group::Group;

use crate::error::DecodeError;
use crate::offload::VartimeMsmOffload;

mod bls12_381;
pub(crate) mod pippenger;
mod secp256k1;

pub use self::bls12_381::Bls12381;
pub use self::secp256k1::Secp256k1;

/// Scalar field element of suite `S`.
pub type Scalar<S> = <S as Suite>::Scalar;
/// Projective group element of suite `S`.
pub type Point<S> = <S as Suite>::Point;
/// Affine (normalized) group element of suite `S`: what is stored, sent and fed to MSMs.
pub type Affine<S> = <S as Suite>::Affine;

/// A prime-order group with two independent generators `G` and `H`, plus the
/// batch kernels the engine needs.
pub trait Suite: Copy + Clone + Debug + Default + PartialEq + Eq + Send + Sync + 'static {
    /// Human-readable name (`"secp256k1"`, `"bls12-381"`).
    const NAME: &'static str;
    /// Length of a canonical compressed point encoding.
    const POINT_LEN: usize;
    /// Length of a canonical scalar encoding (big-endian).
    const SCALAR_LEN: usize = 32;

    /// The scalar field (integers mod the group order q).
    type Scalar: PrimeField + Send + Sync;
    /// Projective points, for arithmetic.
    type Point: Group<Scalar = Self::Scalar> + Send + Sync + Debug;
    /// Affine points, for storage, encoding and MSM input.
    type Affine: Copy + Clone + Debug + PartialEq + Eq + Default + Send + Sync;

    /// The standard generator G.
    fn generator() -> Self::Point {
        Self::Point::generator()
    }
    /// The second generator H, whose discrete log to G is unknown.
    fn h() -> Self::Point;

    /// Projective to affine (one inversion).
    fn to_affine(p: &Self::Point) -> Self::Affine;
    /// Projective to affine for many points with one shared inversion.
    fn batch_to_affine(points: &[Self::Point]) -> Vec<Self::Affine>;
    /// Affine to projective.
    fn from_affine(a: &Self::Affine) -> Self::Point;
    /// Whether `a` is the identity.
    fn is_identity(a: &Self::Affine) -> bool;
    /// `-a` (the default goes through projective coordinates: an inversion).
    fn neg_affine(a: &Self::Affine) -> Self::Affine {
        Self::to_affine(&-Self::from_affine(a))
    }

    /// Canonical compressed encoding; appends [`Suite::POINT_LEN`] bytes. The identity
    /// encodes as all zero bytes (it is never accepted back, see [`Suite::decode_point`]).
    fn encode_point(a: &Self::Affine, out: &mut Vec<u8>);
    /// Decodes a canonical compressed point; rejects the identity, non-canonical
    /// field elements, points off the curve (and, for BLS12-381, outside the subgroup).
    fn decode_point(bytes: &[u8]) -> Result<Self::Affine, DecodeError>;
    /// Length of the uncompressed `x ‖ y` encoding (no tag byte).
    const POINT_LEN_XY: usize;
    /// Uncompressed encoding `x ‖ y` (big-endian coordinates); appends
    /// [`Suite::POINT_LEN_XY`] bytes, all zero for the identity. Twice the size of
    /// [`Suite::encode_point`] but decoded without a square root: for bulk public
    /// data on the wire (commitment matrices), where decoding dominates.
    fn encode_point_xy(a: &Self::Affine, out: &mut Vec<u8>);
    /// Decodes [`Suite::encode_point_xy`]; rejects the identity, coordinates out of
    /// range, points off the curve (and, for BLS12-381, outside the subgroup).
    fn decode_point_xy(bytes: &[u8]) -> Result<Self::Affine, DecodeError>;
    /// x-coordinate as minimal big-endian bytes (Go's `big.Int.Bytes()`), used by the
    /// NIZKP challenge hash of the spec.
    fn x_bytes_minimal(a: &Self::Affine) -> Vec<u8>;

    /// Canonical big-endian scalar encoding.
    fn encode_scalar(s: &Self::Scalar) -> [u8; 32];
    /// Decodes a canonical big-endian scalar (rejects values >= q).
    fn decode_scalar(bytes: &[u8]) -> Result<Self::Scalar, DecodeError>;
    /// Reduces a 256-bit big-endian integer mod q (for hash challenges).
    fn scalar_from_hash(bytes: &[u8; 32]) -> Self::Scalar;

    /// Whether the limb conversions below are cheap (a few word operations):
    /// then folds and evaluations at small integers are computed as integers and
    /// reduced once; otherwise they stay in field arithmetic.
    const FAST_LIMBS: bool = false;

    /// The canonical integer value of a scalar as little-endian 64-bit limbs.
    /// Constant time (scalars are often secret).
    fn scalar_to_le_limbs(s: &Self::Scalar) -> [u64; 4] {
        let be = Self::encode_scalar(s);
        core::array::from_fn(|i| {
            let mut w = [0u8; 8];
            w.copy_from_slice(be.get(24 - 8 * i..32 - 8 * i).unwrap_or(&[0; 8]));
            u64::from_be_bytes(w)
        })
    }
    /// The scalar congruent to the 256-bit little-endian integer `l` (reduced
    /// mod q). Constant time.
    fn scalar_from_le_limbs(l: &[u64; 4]) -> Self::Scalar {
        let mut be = [0u8; 32];
        for (i, w) in l.iter().enumerate() {
            if let Some(b) = be.get_mut(24 - 8 * i..32 - 8 * i) {
                b.copy_from_slice(&w.to_be_bytes());
            }
        }
        Self::scalar_from_hash(&be)
    }
    /// The scalar congruent to the 512-bit little-endian integer `l`. Constant time.
    fn scalar_from_wide_le_limbs(l: &[u64; 8]) -> Self::Scalar {
        let lo: [u64; 4] = core::array::from_fn(|i| l.get(i).copied().unwrap_or(0));
        let hi: [u64; 4] = core::array::from_fn(|i| l.get(4 + i).copied().unwrap_or(0));
        // 2^256 mod q = (2^256 - 1 mod q) + 1.
        let two256 = Self::scalar_from_le_limbs(&[u64::MAX; 4]) + Self::Scalar::ONE;
        Self::scalar_from_le_limbs(&hi) * two256 + Self::scalar_from_le_limbs(&lo)
    }

    /// Constant-time `out[i] = f[i]*G + fp[i]*H` for secret scalars (single-threaded;
    /// the caller splits work across threads).
    fn ct_commit_batch(f: &[Self::Scalar], fp: &[Self::Scalar], out: &mut [Self::Affine]);
    /// Constant-time `out[i] = s[i]*G` for secret scalars (single-threaded).
    fn ct_mul_g_batch(s: &[Self::Scalar], out: &mut [Self::Affine]);
    /// Constant-time `out[i] = s[i]*H` for secret scalars (single-threaded).
    fn ct_mul_h_batch(s: &[Self::Scalar], out: &mut [Self::Affine]);

    /// Variable-time `acc[i] += add[i]` over PUBLIC points (equal lengths are the
    /// caller's contract; extra elements are ignored). The default adds in
    /// projective coordinates and normalizes with one shared inversion.
    fn vartime_add_assign(acc: &mut [Self::Affine], add: &[Self::Affine]) {
        let copy = acc.to_vec();
        Self::vartime_sum_columns(&[&copy, add], acc.len(), |i, s| {
            if let Some(a) = acc.get_mut(i) {
                *a = s;
            }
        });
    }

    /// Variable-time `out(i, sum_c columns[c][i])` for `i < len` over PUBLIC
    /// points (columns shorter than `len` contribute nothing past their end).
    /// The default sums in projective coordinates and normalizes once.
    fn vartime_sum_columns(
        columns: &[&[Self::Affine]],
        len: usize,
        mut out: impl FnMut(usize, Self::Affine),
    ) {
        let sums: Vec<Self::Point> = (0..len)
            .map(|i| {
                columns
                    .iter()
                    .filter_map(|c| c.get(i))
                    .fold(Self::Point::identity(), |acc, p| acc + Self::from_affine(p))
            })
            .collect();
        for (i, s) in Self::batch_to_affine(&sums).into_iter().enumerate() {
            out(i, s);
        }
    }

    /// Variable-time `out[r] = sum_j x^j rows[r*k + j]` over PUBLIC points and a
    /// small public integer `x` (Horner's rule; `rows` holds `out.len() * k`
    /// points, `k >= 1`). The default works in projective coordinates.
    fn vartime_eval_small(rows: &[Self::Affine], k: usize, x: u64, out: &mut [Self::Affine]) {
        let pts: Vec<Self::Point> = rows
            .chunks(k.max(1))
            .take(out.len())
            .map(|row| {
                row.iter().rev().fold(Self::Point::identity(), |acc, p| {
                    mul_small_u64::<Self>(&acc, x) + Self::from_affine(p)
                })
            })
            .collect();
        for (o, p) in out.iter_mut().zip(Self::batch_to_affine(&pts)) {
            *o = p;
        }
    }

    /// Variable-time multi-scalar multiplication `sum scalars[i]*points[i]` over PUBLIC
    /// data, single-threaded. Equal lengths are the caller's contract.
    fn vartime_msm(points: &[Self::Affine], scalars: &[Self::Scalar]) -> Self::Point;
    /// As [`Suite::vartime_msm`], using all threads of the current rayon pool.
    fn vartime_msm_par(points: &[Self::Affine], scalars: &[Self::Scalar]) -> Self::Point {
        Self::vartime_msm(points, scalars)
    }
    /// As [`Suite::vartime_msm`] (or `_par`) with a fixed Pippenger window of
    /// `window` bits where the backend supports one (else the window is ignored).
    fn vartime_msm_window(
        points: &[Self::Affine],
        scalars: &[Self::Scalar],
        par: bool,
        window: usize,
    ) -> Self::Point {
        let _ = window;
        if par {
            Self::vartime_msm_par(points, scalars)
        } else {
            Self::vartime_msm(points, scalars)
        }
    }

    /// Whether [`Suite::vartime_msm_offload`] can use an offload backend.
    const OFFLOAD_MSM: bool = false;
    /// Hands a public-data MSM to `offload`; `None` when the suite has no offload path.
    fn vartime_msm_offload(
        offload: &dyn VartimeMsmOffload,
        points: &[Self::Affine],
        scalars: &[Self::Scalar],
    ) -> Option<Result<Self::Point, String>> {
        let _ = (offload, points, scalars);
        None
    }
}

/// `x * p` for a public small integer, by double-and-add (variable time).
pub(crate) fn mul_small_u64<S: Suite>(p: &Point<S>, x: u64) -> Point<S> {
    let mut acc = Point::<S>::identity();
    for bit in (0..64 - x.leading_zeros()).rev() {
        acc = acc.double();
        if (x >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// Encodes a point to a fresh vector.
pub fn point_bytes<S: Suite>(a: &Affine<S>) -> Vec<u8> {
    let mut v = Vec::with_capacity(S::POINT_LEN);
    S::encode_point(a, &mut v);
    v
}

/// `x` as a scalar of `S` (node indexes, small integers).
pub fn scalar_from_u64<S: Suite>(x: u64) -> Scalar<S> {
    Scalar::<S>::from(x)
}

/// Reduces a 256-bit big-endian integer modulo the scalar field order, via
/// `hi * 2^128 + lo` (exact for any field with q > 2^128).
pub(crate) fn reduce_be_256<F: PrimeField>(bytes: &[u8; 32]) -> F {
    let mut hi = [0u8; 16];
    let mut lo = [0u8; 16];
    hi.copy_from_slice(&bytes[..16]);
    lo.copy_from_slice(&bytes[16..]);
    let shift = F::from_u128(u128::MAX) + F::ONE; // 2^128
    F::from_u128(u128::from_be_bytes(hi)) * shift + F::from_u128(u128::from_be_bytes(lo))
}
