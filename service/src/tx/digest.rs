//! The digests signed during a batch's sharing, and the per-key hashes they are
//! built from (so that a complaint about one key carries that key's matrix and
//! slice plus 32 bytes per other key, not the whole batch).

use torus_engine::avss::{Commitments, Slice};
use torus_engine::{Error as EngineError, Secp256k1, Suite};
use zeroize::Zeroizing;

use crate::codec::Writer;
use crate::hexfmt::keccak256;

use super::BatchId;

const READY_DOMAIN: &[u8] = b"torus-node/ready/v1";
pub(super) const DEAL_DOMAIN: &[u8] = b"torus-node/deal/v1";
const COMMITMENTS_DOMAIN: &[u8] = b"torus-node/commitments/v1";
const SLICE_DOMAIN: &[u8] = b"torus-node/slice/v1";

/// Encoded point size (compressed secp256k1).
pub const POINT_LEN: usize = 33;
/// Encoded scalar size.
pub const SCALAR_LEN: usize = 32;

/// The digest a node signs when it sends `ready` for one dealer's batch sharing:
/// it binds the batch, the dealer and the digest of the dealer's commitments.
pub fn ready_digest(batch: &BatchId, dealer: u32, commitments: &[u8; 32]) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(READY_DOMAIN);
    batch.encode(&mut w);
    w.u32(dealer).raw(commitments);
    keccak256(&w.buf)
}

/// keccak256 of concatenated 33-byte keys (the `keys_hash` of [`TxBody::PublicKeys`]).
pub fn keys_hash(keys: &[[u8; 33]]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(keys.len() * 33);
    for k in keys {
        buf.extend_from_slice(k);
    }
    keccak256(&buf)
}

/// Per-key hashes of a batch's commitment vectors (`vectors[key * k + j]`, each
/// point compressed), and the hash of that list: what the public-key vote
/// commits to. None when a point is the identity or the length is not a
/// multiple of `k`.
pub fn vector_hashes(
    vectors: &[torus_engine::group::Affine<Secp256k1>],
    k: usize,
) -> Option<(Vec<[u8; 32]>, [u8; 32])> {
    if k == 0 || !vectors.len().is_multiple_of(k) {
        return None;
    }
    let mut per_key = Vec::with_capacity(vectors.len() / k);
    let mut buf = Vec::with_capacity(k * 33);
    for key in vectors.chunks(k) {
        buf.clear();
        for p in key {
            buf.extend_from_slice(&compressed_point(p)?);
        }
        per_key.push(keccak256(&buf));
    }
    let list = hash_list(&per_key);
    Some((per_key, list))
}

/// The hash of a list of per-key vector hashes.
pub fn hash_list(hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut m = Vec::with_capacity(24 + hashes.len() * 32);
    m.extend_from_slice(b"torus-node/vectors/v1");
    for h in hashes {
        m.extend_from_slice(h);
    }
    keccak256(&m)
}

/// What a public-key vote counts: the keys and the commitment vectors together.
pub fn vote_hash(keys_hash: &[u8; 32], vectors_hash: &[u8; 32]) -> [u8; 32] {
    let mut m = Vec::with_capacity(88);
    m.extend_from_slice(b"torus-node/pubkeys-vote/v1");
    m.extend_from_slice(keys_hash);
    m.extend_from_slice(vectors_hash);
    keccak256(&m)
}

/// Digest of per-key item hashes: `keccak(domain ‖ batch ‖ dealer ‖ k ‖ count ‖ h_0 ‖ … )`.
fn list_digest(
    domain: &[u8],
    batch: &BatchId,
    dealer: u32,
    k: u32,
    hashes: &[[u8; 32]],
) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(domain);
    batch.encode(&mut w);
    w.u32(dealer).u32(k).count(hashes.len());
    for h in hashes {
        w.raw(h);
    }
    keccak256(&w.buf)
}

/// The commitments digest of a dealing: binds the batch, the dealer, k and the
/// keccak256 of every key's encoded k x k matrix (`key_hashes`, in key order),
/// so that one key's matrix can be shown against it without the others.
pub fn commitments_digest(
    batch: &BatchId,
    dealer: u32,
    k: u32,
    key_hashes: &[[u8; 32]],
) -> [u8; 32] {
    list_digest(COMMITMENTS_DOMAIN, batch, dealer, k, key_hashes)
}

/// The slice digest of one receiver's send, over the keccak256 of every key's
/// encoded row and column (`a ‖ a' ‖ b ‖ b'`, 4k scalars).
pub fn slice_digest(batch: &BatchId, dealer: u32, k: u32, key_hashes: &[[u8; 32]]) -> [u8; 32] {
    list_digest(SLICE_DOMAIN, batch, dealer, k, key_hashes)
}

/// The 33-byte compressed encoding of a point; `None` for the identity (which
/// encodes as zeros and is never a valid key or commitment).
pub fn compressed_point(a: &torus_engine::Affine<Secp256k1>) -> Option<[u8; POINT_LEN]> {
    if Secp256k1::is_identity(a) {
        return None;
    }
    let mut v = Vec::with_capacity(POINT_LEN);
    Secp256k1::encode_point(a, &mut v);
    <[u8; POINT_LEN]>::try_from(v.as_slice()).ok()
}

/// The encoding of one key's k x k matrix (row-major compressed points); empty
/// for a key beyond the batch.
pub fn matrix_bytes(c: &Commitments<Secp256k1>, key: usize) -> Vec<u8> {
    let m = c.matrix(key);
    let mut out = Vec::with_capacity(m.len() * POINT_LEN);
    for p in m {
        Secp256k1::encode_point(p, &mut out);
    }
    out
}

/// keccak256 of every key's matrix encoding.
pub fn matrix_hashes(c: &Commitments<Secp256k1>) -> Vec<[u8; 32]> {
    (0..c.keys())
        .map(|key| keccak256(&matrix_bytes(c, key)))
        .collect()
}

/// The encoding of one key's slice: `a ‖ a' ‖ b ‖ b'`; an error for a key beyond
/// the batch.
pub fn slice_bytes(s: &Slice<Secp256k1>, key: usize) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let (a, ap) = s.try_row(key)?;
    let (b, bp) = s.try_column(key)?;
    let mut out = Zeroizing::new(Vec::with_capacity(4 * s.k() * SCALAR_LEN));
    for v in [a, ap, b, bp] {
        for x in v {
            out.extend_from_slice(&Secp256k1::encode_scalar(x));
        }
    }
    Ok(out)
}

/// keccak256 of every key's slice encoding.
pub fn slice_hashes(s: &Slice<Secp256k1>) -> Result<Vec<[u8; 32]>, EngineError> {
    (0..s.keys())
        .map(|key| slice_bytes(s, key).map(|b| keccak256(&b)))
        .collect()
}

/// The commitments digest of a dealing (see [`commitments_digest`]).
pub fn dealing_digest(batch: &BatchId, dealer: u32, c: &Commitments<Secp256k1>) -> [u8; 32] {
    commitments_digest(batch, dealer, c.k() as u32, &matrix_hashes(c))
}

/// The digest of a batch's summed commitments, by which a recovering node compares
/// the sums its peers send (dealer 0 stands for the sum: dealers count from 1).
pub fn summed_digest(batch: &BatchId, c: &Commitments<Secp256k1>) -> [u8; 32] {
    dealing_digest(batch, 0, c)
}

/// The slice digest of one send (see [`slice_digest`]).
pub fn send_slice_digest(
    batch: &BatchId,
    dealer: u32,
    s: &Slice<Secp256k1>,
) -> Result<[u8; 32], EngineError> {
    Ok(slice_digest(batch, dealer, s.k() as u32, &slice_hashes(s)?))
}
