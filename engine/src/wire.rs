//! Compact, versioned binary encodings of every engine type that crosses the
//! wire or goes to storage.
//!
//! Every value starts with a 3-byte header: format version (1), suite id
//! (1 = secp256k1, 2 = BLS12-381) and a type tag. Integers are big-endian;
//! points use the suite's canonical compressed encoding (identity rejected),
//! except the `…Xy` variants of commitment matrices and public key shares
//! ([`WireXy`]), which carry uncompressed `x ‖ y` points: twice the bytes, but
//! decoded without a square root per point (bulk public data on the wire, where
//! decompression was the largest cost of receiving a dealing). Decoders accept
//! both forms;
//! scalars are 32-byte big-endian canonical. Counts are checked against the
//! remaining input before anything is allocated, so hostile length prefixes
//! cannot force large allocations.
//!
//! Encoded buffers of secret types (slices, points, shares) are NOT zeroized by
//! this module: callers encrypt them or wipe them after sending.

use crate::avss::{Commitments, PointMsg, Slice};
use crate::dkg::{KeyShares, Proof, PublicShares};
use crate::error::{DecodeError, Error, Result};
use crate::group::{Affine, Scalar, Suite};
use crate::params::Params;
use crate::secret::SecretVec;

/// Current format version.
pub const VERSION: u8 = 1;
/// Largest batch a decoder accepts.
pub const MAX_KEYS: u64 = 1 << 20;
/// Largest polynomial length a decoder accepts.
pub const MAX_K: u64 = 256;

/// Type tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Tag {
    Commitments = 1,
    Slice = 2,
    PointMsg = 3,
    PublicShares = 4,
    KeyShares = 5,
    CommitmentsXy = 6,
    PublicSharesXy = 7,
}

fn suite_id<S: Suite>() -> u8 {
    match S::NAME {
        "secp256k1" => 1,
        _ => 2,
    }
}

/// Something with a canonical encoding.
pub trait Wire: Sized {
    /// Appends the encoding.
    fn encode_into(&self, out: &mut Vec<u8>);
    /// Decodes one value from the front of `r`.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self>;
    /// Encodes to a fresh vector.
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_into(&mut v);
        v
    }
    /// Decodes exactly `bytes` (trailing bytes are an error).
    fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { buf: bytes };
        let v = Self::decode_from(&mut r)?;
        if !r.buf.is_empty() {
            return Err(DecodeError::Trailing(r.buf.len()).into());
        }
        Ok(v)
    }
}

/// A cursor over input bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Wraps `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(DecodeError::Length {
                what,
                expected: n,
                got: self.buf.len(),
            }
            .into());
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?.first().copied().unwrap_or(0))
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
    /// A count with a limit, also bounded by the bytes left (each item >= `item_len`).
    fn count(&mut self, what: &'static str, limit: u64, item_len: usize) -> Result<usize> {
        let c = u64::from(self.u32(what)?);
        if c > limit {
            return Err(DecodeError::TooLarge {
                what,
                got: c,
                limit,
            }
            .into());
        }
        let need = c.saturating_mul(item_len as u64);
        if need > self.buf.len() as u64 {
            return Err(DecodeError::Length {
                what,
                expected: need.min(usize::MAX as u64) as usize,
                got: self.buf.len(),
            }
            .into());
        }
        Ok(c as usize)
    }
    /// A polynomial length k in `1..=MAX_K`.
    fn k(&mut self) -> Result<usize> {
        let k = self.u16("k")?;
        if k == 0 || u64::from(k) > MAX_K {
            return Err(DecodeError::TooLarge {
                what: "k",
                got: u64::from(k),
                limit: MAX_K,
            }
            .into());
        }
        Ok(usize::from(k))
    }

    fn header<S: Suite>(&mut self, tag: Tag) -> Result<()> {
        self.header_of::<S>(&[tag]).map(|_| ())
    }

    /// Reads a header whose type tag is one of `tags`; returns it.
    fn header_of<S: Suite>(&mut self, tags: &[Tag]) -> Result<Tag> {
        let v = self.u8("version")?;
        if v != VERSION {
            return Err(DecodeError::Unsupported {
                what: "format version",
                got: u32::from(v),
            }
            .into());
        }
        let s = self.u8("suite")?;
        if s != suite_id::<S>() {
            return Err(DecodeError::Unsupported {
                what: "suite id",
                got: u32::from(s),
            }
            .into());
        }
        let t = self.u8("type tag")?;
        tags.iter()
            .copied()
            .find(|tag| *tag as u8 == t)
            .ok_or_else(|| {
                DecodeError::Unsupported {
                    what: "type tag",
                    got: u32::from(t),
                }
                .into()
            })
    }
    fn point<S: Suite>(&mut self) -> Result<Affine<S>> {
        Ok(S::decode_point(self.take(S::POINT_LEN, "point")?)?)
    }
    fn point_xy<S: Suite>(&mut self) -> Result<Affine<S>> {
        Ok(S::decode_point_xy(self.take(S::POINT_LEN_XY, "point")?)?)
    }
    /// A point in the form `xy` selects.
    fn point_as<S: Suite>(&mut self, xy: bool) -> Result<Affine<S>> {
        if xy {
            self.point_xy::<S>()
        } else {
            self.point::<S>()
        }
    }
    fn points<S: Suite>(&mut self, n: usize) -> Result<Vec<Affine<S>>> {
        (0..n).map(|_| self.point::<S>()).collect()
    }
    fn points_as<S: Suite>(&mut self, n: usize, xy: bool) -> Result<Vec<Affine<S>>> {
        (0..n).map(|_| self.point_as::<S>(xy)).collect()
    }
    fn scalar<S: Suite>(&mut self) -> Result<Scalar<S>> {
        Ok(S::decode_scalar(self.take(32, "scalar")?)?)
    }
    fn scalars<S: Suite>(&mut self, n: usize) -> Result<Vec<Scalar<S>>> {
        (0..n).map(|_| self.scalar::<S>()).collect()
    }
}

fn header<S: Suite>(out: &mut Vec<u8>, tag: Tag) {
    out.extend_from_slice(&[VERSION, suite_id::<S>(), tag as u8]);
}

fn put_scalars<S: Suite>(out: &mut Vec<u8>, v: &[Scalar<S>]) {
    for s in v {
        out.extend_from_slice(&S::encode_scalar(s));
    }
}

fn put_points<S: Suite>(out: &mut Vec<u8>, v: &[Affine<S>]) {
    for p in v {
        S::encode_point(p, out);
    }
}

/// Points in the form `xy` selects (the writer's side of `Reader::points_as`).
fn put_points_as<S: Suite>(out: &mut Vec<u8>, v: &[Affine<S>], xy: bool) {
    for p in v {
        if xy {
            S::encode_point_xy(p, out);
        } else {
            S::encode_point(p, out);
        }
    }
}

/// Encoded length of one point in the form `xy` selects.
fn point_len<S: Suite>(xy: bool) -> usize {
    if xy {
        S::POINT_LEN_XY
    } else {
        S::POINT_LEN
    }
}

/// Types with a second, uncompressed-point encoding (see the module docs). Both
/// decode through [`Wire::decode`].
pub trait WireXy: Wire {
    /// Appends the uncompressed-point encoding.
    fn encode_xy_into(&self, out: &mut Vec<u8>);
    /// The uncompressed-point encoding in a fresh vector.
    fn encode_xy(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_xy_into(&mut v);
        v
    }
}

fn len_u32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

impl<S: Suite> Commitments<S> {
    fn encode_with(&self, out: &mut Vec<u8>, xy: bool) {
        header::<S>(
            out,
            if xy {
                Tag::CommitmentsXy
            } else {
                Tag::Commitments
            },
        );
        out.extend_from_slice(&u16::try_from(self.k).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&len_u32(self.keys()));
        put_points_as::<S>(out, &self.points, xy);
    }
}

impl<S: Suite> WireXy for Commitments<S> {
    fn encode_xy_into(&self, out: &mut Vec<u8>) {
        self.encode_with(out, true);
    }
}

impl<S: Suite> Wire for Commitments<S> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_with(out, false);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let xy = r.header_of::<S>(&[Tag::Commitments, Tag::CommitmentsXy])? == Tag::CommitmentsXy;
        let k = r.k()?;
        let plen = point_len::<S>(xy);
        let keys = r.count("keys", MAX_KEYS, k * k * plen)?;
        let points = r.points_as::<S>(keys * k * k, xy)?;
        Commitments::from_points(0, k, points).map_err(|e| match e {
            Error::IdentityCommitment { .. } => DecodeError::Identity.into(),
            e => e,
        })
    }
}

impl<S: Suite> Wire for Slice<S> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        header::<S>(out, Tag::Slice);
        out.extend_from_slice(&self.receiver.to_be_bytes());
        out.extend_from_slice(&u16::try_from(self.k).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&len_u32(self.keys()));
        for v in [&self.a, &self.ap, &self.b, &self.bp] {
            put_scalars::<S>(out, v);
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        r.header::<S>(Tag::Slice)?;
        let receiver = r.u32("receiver")?;
        let k = r.k()?;
        let keys = r.count("keys", MAX_KEYS, 4 * k * 32)?;
        let a = r.scalars::<S>(keys * k)?;
        let ap = r.scalars::<S>(keys * k)?;
        let b = r.scalars::<S>(keys * k)?;
        let bp = r.scalars::<S>(keys * k)?;
        Slice::from_parts(receiver, k, a, ap, b, bp)
    }
}

impl<S: Suite> Wire for PointMsg<S> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        header::<S>(out, Tag::PointMsg);
        out.extend_from_slice(&self.sender.to_be_bytes());
        out.extend_from_slice(&len_u32(self.keys()));
        for v in [&self.alpha, &self.alpha_p, &self.beta, &self.beta_p] {
            put_scalars::<S>(out, v);
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        r.header::<S>(Tag::PointMsg)?;
        let sender = r.u32("sender")?;
        let keys = r.count("keys", MAX_KEYS, 4 * 32)?;
        Ok(PointMsg {
            sender,
            alpha: SecretVec::new(r.scalars::<S>(keys)?),
            alpha_p: SecretVec::new(r.scalars::<S>(keys)?),
            beta: SecretVec::new(r.scalars::<S>(keys)?),
            beta_p: SecretVec::new(r.scalars::<S>(keys)?),
        })
    }
}

impl<S: Suite> PublicShares<S> {
    fn encode_with(&self, out: &mut Vec<u8>, xy: bool) {
        header::<S>(
            out,
            if xy {
                Tag::PublicSharesXy
            } else {
                Tag::PublicShares
            },
        );
        out.extend_from_slice(&self.node.to_be_bytes());
        out.extend_from_slice(&len_u32(self.keys()));
        for ((gs, gshr), p) in self.gs.iter().zip(&self.gshr).zip(&self.proofs) {
            put_points_as::<S>(out, &[*gs, *gshr, p.t1, p.t2], xy);
            put_scalars::<S>(out, &[p.u1, p.u2]);
        }
    }
}

impl<S: Suite> WireXy for PublicShares<S> {
    fn encode_xy_into(&self, out: &mut Vec<u8>) {
        self.encode_with(out, true);
    }
}

impl<S: Suite> Wire for PublicShares<S> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_with(out, false);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        let xy =
            r.header_of::<S>(&[Tag::PublicShares, Tag::PublicSharesXy])? == Tag::PublicSharesXy;
        let node = r.u32("node")?;
        let plen = point_len::<S>(xy);
        let keys = r.count("keys", MAX_KEYS, 4 * plen + 64)?;
        let mut gs = Vec::with_capacity(keys);
        let mut gshr = Vec::with_capacity(keys);
        let mut proofs = Vec::with_capacity(keys);
        for _ in 0..keys {
            gs.push(r.point_as::<S>(xy)?);
            gshr.push(r.point_as::<S>(xy)?);
            let t1 = r.point_as::<S>(xy)?;
            let t2 = r.point_as::<S>(xy)?;
            let u1 = r.scalar::<S>()?;
            let u2 = r.scalar::<S>()?;
            proofs.push(Proof { t1, t2, u1, u2 });
        }
        Ok(PublicShares {
            node,
            gs,
            gshr,
            proofs,
        })
    }
}

impl<S: Suite> Wire for KeyShares<S> {
    fn encode_into(&self, out: &mut Vec<u8>) {
        header::<S>(out, Tag::KeyShares);
        for v in [self.node, self.params.n, self.params.k, self.params.t] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&len_u32(self.keys()));
        put_scalars::<S>(out, &self.s);
        put_scalars::<S>(out, &self.sp);
        put_points::<S>(out, &self.commitments);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self> {
        r.header::<S>(Tag::KeyShares)?;
        let node = r.u32("node")?;
        let (n, k, t) = (r.u32("n")?, r.u32("k")?, r.u32("t")?);
        let params = Params::new(n, k, t)?;
        let keys = r.count("keys", MAX_KEYS, 64 + params.ku() * S::POINT_LEN)?;
        let s = r.scalars::<S>(keys)?;
        let sp = r.scalars::<S>(keys)?;
        let commitments = r.points::<S>(keys * params.ku())?;
        KeyShares::from_parts(node, params, s, sp, commitments)
    }
}
