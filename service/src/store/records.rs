//! Versioned, compact encodings of everything the node stores in LMDB.
//!
//! Each value starts with a version byte (currently 1). Decoders are bounded
//! (see [`crate::codec`]) and are fuzzed (`service/fuzz`).

use crate::codec::{CodecError, Reader, Writer};
use crate::tx::{BatchId, EpochInfo, MAX_BATCH_KEYS, MAX_ID_LEN, MAX_NODES};

/// Record format version.
pub const RECORD_VERSION: u8 = 1;
/// Largest polynomial length stored.
pub const MAX_K: u64 = 256;

fn header(w: &mut Writer) {
    w.u8(RECORD_VERSION);
}

fn open<'a>(bytes: &'a [u8], what: &'static str) -> Result<Reader<'a>, CodecError> {
    let mut r = Reader::new(bytes);
    r.version(what, RECORD_VERSION)?;
    Ok(r)
}

/// Key-buffer counters of the replicated state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// First key index not yet covered by a decided dealer set.
    pub next_batch_start: u64,
    /// Keys `0..last_created` have decided public keys.
    pub last_created: u64,
    /// Keys `0..last_unassigned` are assigned to users.
    pub last_unassigned: u64,
    /// Assignment is frozen (epoch hand-over in progress).
    pub frozen: bool,
}

impl Counters {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w);
        w.u64(self.next_batch_start)
            .u64(self.last_created)
            .u64(self.last_unassigned)
            .u8(u8::from(self.frozen));
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = open(b, "counters")?;
        let c = Counters {
            next_batch_start: r.u64("next_batch_start")?,
            last_created: r.u64("last_created")?,
            last_unassigned: r.u64("last_unassigned")?,
            frozen: match r.u8("frozen")? {
                0 => false,
                1 => true,
                _ => return Err(CodecError::Invalid("frozen flag")),
            },
        };
        r.end()?;
        if c.last_unassigned > c.last_created || c.last_created > c.next_batch_start {
            return Err(CodecError::Invalid("counter order"));
        }
        Ok(c)
    }
}

/// A decided dealer set and, once decided, the batch's public keys hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// The batch.
    pub batch: BatchId,
    /// Decided dealers and their commitment digests, ascending by dealer.
    pub dealers: Vec<(u32, [u8; 32])>,
    /// Hash of the decided public keys.
    pub keys_hash: Option<[u8; 32]>,
    /// Hash of the decided commitment vectors (`digest::vector_hashes`), decided
    /// with the keys.
    pub vectors_hash: Option<[u8; 32]>,
}

impl BatchRecord {
    /// The record of a dealer set just decided: the dealers and their commitment
    /// digests, no public keys yet.
    pub fn of_dealer_set(batch: BatchId, dealers: &[crate::tx::DealerEvidence]) -> Self {
        BatchRecord {
            batch,
            dealers: dealers.iter().map(|d| (d.dealer, d.commitments)).collect(),
            keys_hash: None,
            vectors_hash: None,
        }
    }

    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w);
        w.u64(self.batch.epoch)
            .u64(self.batch.start)
            .u32(self.batch.count)
            .count(self.dealers.len());
        for (d, h) in &self.dealers {
            w.u32(*d).raw(h);
        }
        for h in [&self.keys_hash, &self.vectors_hash] {
            match h {
                None => w.u8(0),
                Some(h) => w.u8(1).raw(h),
            };
        }
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = open(b, "batch")?;
        let batch = BatchId {
            epoch: r.u64("epoch")?,
            start: r.u64("start")?,
            count: r.u32("count")?,
        };
        if batch.count == 0 || u64::from(batch.count) > MAX_BATCH_KEYS {
            return Err(CodecError::Invalid("batch count"));
        }
        let c = r.count("dealers", MAX_NODES, 36)?;
        let mut dealers = Vec::with_capacity(c);
        for _ in 0..c {
            dealers.push((r.u32("dealer")?, r.array("digest")?));
        }
        let mut hash = |what: &'static str| -> Result<Option<[u8; 32]>, CodecError> {
            match r.u8(what)? {
                0 => Ok(None),
                1 => Ok(Some(r.array(what)?)),
                _ => Err(CodecError::Invalid(what)),
            }
        };
        let keys_hash = hash("keys hash")?;
        let vectors_hash = hash("vectors hash")?;
        r.end()?;
        Ok(BatchRecord {
            batch,
            dealers,
            keys_hash,
            vectors_hash,
        })
    }
}

/// Encodes a batch id (the open batch).
pub fn encode_batch_id(b: &BatchId) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w);
    b.encode(&mut w);
    w.finish()
}

/// Decodes a batch id.
pub fn decode_batch_id(b: &[u8]) -> Result<BatchId, CodecError> {
    let mut r = open(b, "batch id")?;
    let id = BatchId::decode(&mut r)?;
    r.end()?;
    Ok(id)
}

/// A created key: its public key and, once assigned, its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// Key index.
    pub index: u64,
    /// 33-byte compressed user public key.
    pub pubkey: [u8; 33],
    /// `(verifier, verifier_id)` once assigned.
    pub owner: Option<(String, String)>,
}

impl KeyRecord {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w);
        w.u64(self.index).raw(&self.pubkey);
        match &self.owner {
            None => w.u8(0),
            Some((v, id)) => w.u8(1).str(v).str(id),
        };
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = open(b, "key")?;
        let index = r.u64("index")?;
        let pubkey = r.array("pubkey")?;
        let owner = match r.u8("owner flag")? {
            0 => None,
            1 => Some((
                r.str("verifier", MAX_ID_LEN)?.to_string(),
                r.str("verifier_id", MAX_ID_LEN)?.to_string(),
            )),
            _ => return Err(CodecError::Invalid("owner flag")),
        };
        r.end()?;
        Ok(KeyRecord {
            index,
            pubkey,
            owner,
        })
    }
}

/// An epoch record (current, genesis, or pending).
pub fn encode_epoch(e: &EpochInfo) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w);
    e.encode(&mut w);
    w.finish()
}

/// Decodes [`encode_epoch`].
pub fn decode_epoch(b: &[u8]) -> Result<EpochInfo, CodecError> {
    let mut r = open(b, "epoch")?;
    let e = EpochInfo::decode(&mut r)?;
    r.end()?;
    Ok(e)
}

/// A list of 33-byte public keys (a batch's keys awaiting decision).
pub fn encode_keys(keys: &[[u8; 33]]) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w);
    w.count(keys.len());
    for k in keys {
        w.raw(k);
    }
    w.finish()
}

/// Decodes [`encode_keys`].
pub fn decode_keys(b: &[u8]) -> Result<Vec<[u8; 33]>, CodecError> {
    let mut r = open(b, "keys")?;
    let c = r.count("keys", MAX_BATCH_KEYS, 33)?;
    let mut out = Vec::with_capacity(c);
    for _ in 0..c {
        out.push(r.array("key")?);
    }
    r.end()?;
    Ok(out)
}

/// A u64 value (indexes, counts).
pub fn encode_u64(v: u64) -> Vec<u8> {
    let mut w = Writer::new();
    header(&mut w);
    w.u64(v);
    w.finish()
}

/// Decodes [`encode_u64`].
pub fn decode_u64(b: &[u8]) -> Result<u64, CodecError> {
    let mut r = open(b, "u64")?;
    let v = r.u64("value")?;
    r.end()?;
    Ok(v)
}

/// A node's encrypted DKG share of one key plus its public commitment vector.
///
/// `sealed` is the ChaCha20-Poly1305 ciphertext (with tag) of `s ‖ s'` (64
/// bytes) under the node's at-rest key, nonce `nonce`, associated data the
/// record's key index and epoch (see `store.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    /// Key index.
    pub index: u64,
    /// Epoch whose committee holds this share.
    pub epoch: u64,
    /// 12-byte AEAD nonce.
    pub nonce: [u8; 12],
    /// Ciphertext and tag (80 bytes for two scalars).
    pub sealed: Vec<u8>,
    /// Commitment vector D (k compressed points).
    pub commitments: Vec<[u8; 33]>,
}

impl ShareRecord {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w);
        w.u64(self.index)
            .u64(self.epoch)
            .raw(&self.nonce)
            .bytes(&self.sealed)
            .count(self.commitments.len());
        for c in &self.commitments {
            w.raw(c);
        }
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = open(b, "share")?;
        let index = r.u64("index")?;
        let epoch = r.u64("epoch")?;
        let nonce = r.array("nonce")?;
        let sealed = r.bytes("sealed", 256)?.to_vec();
        let c = r.count("commitments", MAX_K, 33)?;
        let mut commitments = Vec::with_capacity(c);
        for _ in 0..c {
            commitments.push(r.array("commitment")?);
        }
        r.end()?;
        Ok(ShareRecord {
            index,
            epoch,
            nonce,
            sealed,
            commitments,
        })
    }
}

/// A token commitment seen by CommitmentRequest, and what was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCommitment {
    /// Temporary public key x (32 bytes).
    pub temp_x: [u8; 32],
    /// Temporary public key y (32 bytes).
    pub temp_y: [u8; 32],
    /// Unix seconds when first seen.
    pub created_s: u64,
    /// The signed `data` string answered.
    pub data: String,
    /// The 65-byte signature answered.
    pub sig: [u8; 65],
    /// Unix seconds of the first successful ShareRequest with this token (0 = none).
    pub revealed_s: u64,
    /// Order of arrival among this node's token commitments (strictly increasing, assigned in
    /// the write transaction that stores the record): which of two encodings of one token was
    /// committed first, even within one second.
    pub seq: u64,
}

/// Format version of [`TokenCommitment`] (2: with `seq`). Version-1 records (no `seq`) are not
/// decoded; the store replaces one when its commitment is made again.
pub const TOKEN_COMMITMENT_VERSION: u8 = 2;

impl TokenCommitment {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TOKEN_COMMITMENT_VERSION);
        w.raw(&self.temp_x)
            .raw(&self.temp_y)
            .u64(self.created_s)
            .str(&self.data)
            .raw(&self.sig)
            .u64(self.revealed_s)
            .u64(self.seq);
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(b);
        r.version("token commitment", TOKEN_COMMITMENT_VERSION)?;
        let t = TokenCommitment {
            temp_x: r.array("temp x")?,
            temp_y: r.array("temp y")?,
            created_s: r.u64("created")?,
            data: r.str("data", 8 * MAX_ID_LEN)?.to_string(),
            sig: r.array("sig")?,
            revealed_s: r.u64("revealed")?,
            seq: r.u64("seq")?,
        };
        r.end()?;
        Ok(t)
    }
}

/// The first reveal of a signed token (keyed by the token's id, see
/// [`crate::verifier::Verified::token_id`]): the commitment and temporary key it was revealed
/// under. Any other encoding or temporary key for the same token is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUse {
    /// keccak-256 of the token bytes that were committed and revealed.
    pub commitment: [u8; 32],
    /// Temporary public key x the shares were encrypted to.
    pub temp_x: [u8; 32],
    /// Temporary public key y.
    pub temp_y: [u8; 32],
    /// Unix seconds after which the token is refused anyway (the record may then be pruned).
    pub expires_s: u64,
}

impl TokenUse {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w);
        w.raw(&self.commitment)
            .raw(&self.temp_x)
            .raw(&self.temp_y)
            .u64(self.expires_s);
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = open(b, "token use")?;
        let t = TokenUse {
            commitment: r.array("commitment")?,
            temp_x: r.array("temp x")?,
            temp_y: r.array("temp y")?,
            expires_s: r.u64("expires")?,
        };
        r.end()?;
        Ok(t)
    }
}

/// Block metadata: height and app hash after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Last committed height.
    pub height: u64,
    /// App hash after it.
    pub app_hash: [u8; 32],
}

impl Head {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        header(&mut w);
        w.u64(self.height).raw(&self.app_hash);
        w.finish()
    }
    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = open(b, "head")?;
        let h = Head {
            height: r.u64("height")?,
            app_hash: r.array("app hash")?,
        };
        r.end()?;
        Ok(h)
    }
}

// ---------------------------------------------------------------------------
// Decided blocks (the embedded BFT engine, `crate::bft`).
//
// `blocks` maps a height (u64 big-endian) to `version ‖ bytes(value) ‖
// bytes(certificate)`: the decided block's encoding and its commit
// certificate, as the engine encodes them. They serve value sync (peers
// catching up ask for them) and are written in the same LMDB transaction as
// the block's state writes and head (`commit_block_with`), so a crash never
// leaves a committed app state without its block, or a block without its state.
// ---------------------------------------------------------------------------

const DECIDED_VERSION: u8 = 1;

/// A decided block as stored: its encoding and its commit certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecidedRecord {
    /// The block's encoding.
    pub value: Vec<u8>,
    /// The commit certificate's encoding.
    pub certificate: Vec<u8>,
}

impl DecidedRecord {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(DECIDED_VERSION)
            .bytes(&self.value)
            .bytes(&self.certificate);
        w.finish()
    }

    /// Decodes.
    pub fn decode(b: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(b);
        r.version("decided block", DECIDED_VERSION)?;
        let value = r.bytes("decided value", u64::from(u32::MAX))?.to_vec();
        let certificate = r.bytes("certificate", u64::from(u32::MAX))?.to_vec();
        r.end()?;
        Ok(DecidedRecord { value, certificate })
    }
}

/// Every decoder, by name (the fuzz target drives them all from one input).
pub fn decode_any(tag: u8, b: &[u8]) -> bool {
    match tag % 11 {
        10 => TokenUse::decode(b).is_ok(),
        0 => Counters::decode(b).is_ok(),
        9 => decode_batch_id(b).is_ok(),
        1 => BatchRecord::decode(b).is_ok(),
        2 => KeyRecord::decode(b).is_ok(),
        3 => decode_epoch(b).is_ok(),
        4 => decode_keys(b).is_ok(),
        5 => decode_u64(b).is_ok(),
        6 => ShareRecord::decode(b).is_ok(),
        7 => TokenCommitment::decode(b).is_ok(),
        _ => Head::decode(b).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_fails() {
        let share = ShareRecord {
            index: 7,
            epoch: 1,
            nonce: [1; 12],
            sealed: vec![5; 80],
            commitments: vec![[2; 33]; 3],
        };
        let tc = TokenCommitment {
            temp_x: [1; 32],
            temp_y: [2; 32],
            created_s: 5,
            data: "mug00\u{1c}x".into(),
            sig: [3; 65],
            revealed_s: 0,
            seq: 9,
        };
        let batch = BatchRecord {
            batch: BatchId {
                epoch: 1,
                start: 0,
                count: 5,
            },
            dealers: vec![(1, [4; 32]), (2, [5; 32])],
            keys_hash: Some([6; 32]),
            vectors_hash: None,
        };
        let key = KeyRecord {
            index: 3,
            pubkey: [2; 33],
            owner: Some(("google".into(), "x@y".into())),
        };
        let c = Counters {
            next_batch_start: 10,
            last_created: 5,
            last_unassigned: 2,
            frozen: true,
        };
        let all: Vec<(Vec<u8>, u8)> = vec![
            (c.encode(), 0),
            (batch.encode(), 1),
            (key.encode(), 2),
            (encode_keys(&[[2; 33]; 2]), 4),
            (encode_u64(9), 5),
            (share.encode(), 6),
            (tc.encode(), 7),
            (
                TokenUse {
                    commitment: [7; 32],
                    temp_x: [1; 32],
                    temp_y: [2; 32],
                    expires_s: 99,
                }
                .encode(),
                10,
            ),
            (
                Head {
                    height: 1,
                    app_hash: [1; 32],
                }
                .encode(),
                8,
            ),
        ];
        assert_eq!(ShareRecord::decode(&share.encode()).unwrap(), share);
        assert_eq!(TokenCommitment::decode(&tc.encode()).unwrap(), tc);
        assert_eq!(BatchRecord::decode(&batch.encode()).unwrap(), batch);
        assert_eq!(KeyRecord::decode(&key.encode()).unwrap(), key);
        assert_eq!(Counters::decode(&c.encode()).unwrap(), c);
        for (bytes, tag) in all {
            assert!(decode_any(tag, &bytes));
            for cut in 0..bytes.len() {
                assert!(!decode_any(tag, &bytes[..cut]), "tag {tag} cut {cut}");
            }
            // Any other version byte is refused.
            let mut other = bytes.clone();
            other[0] = other[0].wrapping_add(1);
            assert!(!decode_any(tag, &other));
        }
    }
}
