//! Consensus transactions: what the BFT engine orders and the app executes.
//!
//! Every transaction is signed by a node of the epoch it names. Encoding: a
//! version byte, then the fields in order with the bounded [`crate::codec`].
//! The signature is `SignData` (ECDSA over keccak256) of
//! `"torus-node/tx/v1" ‖ encode(unsigned part)`.

mod batch;
mod deal;
pub mod digest;
mod epoch;
mod evidence;

pub use batch::{
    BatchId, BatchLimits, BATCH_DEADLINE_BLOCKS, MAX_BATCH_MESSAGE_BYTES, MAX_BATCH_TX_BYTES,
    MIN_BATCH_KEYS,
};
pub use deal::{DealHeader, DealerEvidence, ReadySig, DEAL_HEADER_LEN};
pub use digest::{commitments_digest, keys_hash, ready_digest, slice_digest};
pub use epoch::{EpochInfo, NodeEntry};
pub use evidence::Evidence;

use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::NodeKey;
use crate::hexfmt::keccak256;

/// Transaction format version.
pub const TX_VERSION: u8 = 1;
/// Largest batch of key indexes one transaction may cover.
pub const MAX_BATCH_KEYS: u64 = 1 << 20;
/// Largest committee.
pub const MAX_NODES: u64 = 1024;
/// Longest verifier name or verifier id.
pub const MAX_ID_LEN: u64 = 1024;
/// Largest encoded transaction accepted.
pub const MAX_TX_BYTES: usize = 64 << 20;

const TX_DOMAIN: &[u8] = b"torus-node/tx/v1";

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxBody {
    /// Decide the dealer set of a batch (first valid proposal wins). Opens the
    /// batch: `batch.start` must be the next unopened key index.
    DealerSet {
        /// The batch.
        batch: BatchId,
        /// At least k dealers, each with k + t ready signatures.
        dealers: Vec<DealerEvidence>,
    },
    /// A node's vote on a batch's user public keys, computed from k public key
    /// shares whose proofs it verified. Decided at k matching votes.
    PublicKeys {
        /// The batch.
        batch: BatchId,
        /// keccak256 of the concatenated 33-byte keys.
        keys_hash: [u8; 32],
        /// The keys (may be empty when another vote already carried them).
        keys: Vec<[u8; 33]>,
        /// [`digest::vectors_hash`] of the batch's commitment vectors as this node
        /// computed them: what a later committee checks fetched vectors against,
        /// and a resharing complaint's evidence is bound to. The vote counts
        /// `(keys_hash, vectors_hash)` together ([`digest::vote_hash`]).
        vectors_hash: [u8; 32],
    },
    /// Assign a key to a user (idempotent: a user with a key keeps it).
    KeyAssign {
        /// Verifier name.
        verifier: String,
        /// User id at that verifier.
        verifier_id: String,
    },
    /// A current-epoch node's vote to hand over to the next committee. At k + t
    /// matching votes, assignment freezes and resharing starts.
    EpochHandover {
        /// The next committee.
        next: EpochInfo,
    },
    /// A next-committee node's vote that resharing of every assigned and created key
    /// finished. At k (new) matching votes the next epoch becomes current.
    ReshareComplete {
        /// The next epoch.
        epoch: u64,
        /// Key indexes covered: `0..keys`.
        keys: u64,
    },
    /// Open the next batch of key indexes for dealing (first valid one wins; one
    /// batch deals at a time). `batch.start` must be the next unopened index.
    OpenBatch {
        /// The batch.
        batch: BatchId,
    },
    /// A complaint against a dealer, with evidence every node checks. A valid one
    /// blames the dealer for the rest of the epoch (it deals in no later dealer
    /// set); an invalid one blames the accuser instead.
    Complaint {
        /// The batch.
        batch: BatchId,
        /// The accused dealer.
        dealer: u32,
        /// The proof.
        evidence: Box<Evidence>,
    },
    /// A current-epoch node's vote to abort the pending hand-over to `epoch` (it
    /// did not complete within the node's `keygen.handover_timeout_s`). At k + t
    /// matching votes the hand-over is dropped and assignment resumes with the
    /// current committee.
    HandoverAbort {
        /// The pending next epoch.
        epoch: u64,
    },
}

impl TxBody {
    /// Whether a member of the NEXT committee may sign this body in `epoch` (the
    /// signer's epoch) during a hand-over: its `ReshareComplete` vote (whatever
    /// epoch the body names: the app refuses another than the pending one as
    /// invalid, after authentication), and the dealer set, public-key vote and
    /// complaints of a resharing batch (a batch of that epoch).
    pub fn next_committee_may_sign(&self, epoch: u64) -> bool {
        match self {
            TxBody::ReshareComplete { .. } => true,
            TxBody::DealerSet { batch, .. }
            | TxBody::PublicKeys { batch, .. }
            | TxBody::Complaint { batch, .. } => batch.epoch == epoch,
            TxBody::KeyAssign { .. }
            | TxBody::EpochHandover { .. }
            | TxBody::OpenBatch { .. }
            | TxBody::HandoverAbort { .. } => false,
        }
    }

    /// Short name (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::DealerSet { .. } => "dealer_set",
            TxBody::PublicKeys { .. } => "public_keys",
            TxBody::KeyAssign { .. } => "key_assign",
            TxBody::EpochHandover { .. } => "epoch_handover",
            TxBody::ReshareComplete { .. } => "reshare_complete",
            TxBody::OpenBatch { .. } => "open_batch",
            TxBody::Complaint { .. } => "complaint",
            TxBody::HandoverAbort { .. } => "handover_abort",
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            TxBody::DealerSet { batch, dealers } => {
                w.u8(1);
                batch.encode(w);
                w.count(dealers.len());
                for d in dealers {
                    w.u32(d.dealer).raw(&d.commitments).count(d.readies.len());
                    for r in &d.readies {
                        w.u32(r.signer).raw(&r.sig);
                    }
                }
            }
            TxBody::PublicKeys {
                batch,
                keys_hash,
                keys,
                vectors_hash,
            } => {
                w.u8(2);
                batch.encode(w);
                w.raw(keys_hash).count(keys.len());
                for k in keys {
                    w.raw(k);
                }
                w.raw(vectors_hash);
            }
            TxBody::KeyAssign {
                verifier,
                verifier_id,
            } => {
                w.u8(3).str(verifier).str(verifier_id);
            }
            TxBody::EpochHandover { next } => {
                w.u8(4);
                next.encode(w);
            }
            TxBody::ReshareComplete { epoch, keys } => {
                w.u8(5).u64(*epoch).u64(*keys);
            }
            TxBody::OpenBatch { batch } => {
                w.u8(6);
                batch.encode(w);
            }
            TxBody::Complaint {
                batch,
                dealer,
                evidence,
            } => {
                w.u8(7);
                batch.encode(w);
                w.u32(*dealer);
                evidence.encode(w);
            }
            TxBody::HandoverAbort { epoch } => {
                w.u8(8).u64(*epoch);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match r.u8("tx kind")? {
            1 => {
                let batch = BatchId::decode(r)?;
                let c = r.count("dealers", MAX_NODES, 40)?;
                let mut dealers = Vec::with_capacity(c);
                for _ in 0..c {
                    let dealer = r.u32("dealer")?;
                    let commitments = r.array("commitments digest")?;
                    let rc = r.count("readies", MAX_NODES, 69)?;
                    let mut readies = Vec::with_capacity(rc);
                    for _ in 0..rc {
                        readies.push(ReadySig {
                            signer: r.u32("ready signer")?,
                            sig: r.array("ready signature")?,
                        });
                    }
                    dealers.push(DealerEvidence {
                        dealer,
                        commitments,
                        readies,
                    });
                }
                TxBody::DealerSet { batch, dealers }
            }
            2 => {
                let batch = BatchId::decode(r)?;
                let keys_hash = r.array("keys hash")?;
                let c = r.count("public keys", MAX_BATCH_KEYS, 33)?;
                let mut keys = Vec::with_capacity(c);
                for _ in 0..c {
                    keys.push(r.array("public key")?);
                }
                TxBody::PublicKeys {
                    batch,
                    keys_hash,
                    keys,
                    vectors_hash: r.array("vectors hash")?,
                }
            }
            3 => TxBody::KeyAssign {
                verifier: r.str("verifier", MAX_ID_LEN)?.to_string(),
                verifier_id: r.str("verifier_id", MAX_ID_LEN)?.to_string(),
            },
            4 => TxBody::EpochHandover {
                next: EpochInfo::decode(r)?,
            },
            5 => TxBody::ReshareComplete {
                epoch: r.u64("epoch")?,
                keys: r.u64("keys")?,
            },
            6 => TxBody::OpenBatch {
                batch: BatchId::decode(r)?,
            },
            7 => TxBody::Complaint {
                batch: BatchId::decode(r)?,
                dealer: r.u32("dealer")?,
                evidence: Box::new(Evidence::decode(r)?),
            },
            8 => TxBody::HandoverAbort {
                epoch: r.u64("epoch")?,
            },
            got => return Err(CodecError::Tag { what: "tx", got }),
        })
    }
}

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    /// Epoch of the signer's committee.
    pub epoch: u64,
    /// Signer's node index in that epoch.
    pub signer: u32,
    /// Random; makes every transaction's hash unique.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
    /// Signature over [`SignedTx::signing_digest`].
    pub sig: [u8; 65],
}

impl SignedTx {
    fn encode_unsigned(&self, w: &mut Writer) {
        w.u8(TX_VERSION)
            .u64(self.epoch)
            .u32(self.signer)
            .u64(self.nonce);
        self.body.encode(w);
    }
    /// The digest the signer signs.
    pub fn signing_digest(&self) -> [u8; 32] {
        let mut w = Writer::new();
        w.raw(TX_DOMAIN);
        self.encode_unsigned(&mut w);
        keccak256(&w.buf)
    }
    /// Builds and signs.
    pub fn sign(key: &NodeKey, epoch: u64, signer: u32, nonce: u64, body: TxBody) -> Self {
        let mut tx = SignedTx {
            epoch,
            signer,
            nonce,
            body,
            sig: [0u8; 65],
        };
        tx.sig = key.sign_prehash(&tx.signing_digest());
        tx
    }
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.raw(&self.sig);
        w.finish()
    }
    /// Decodes exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(CodecError::TooLarge {
                what: "transaction",
                got: bytes.len() as u64,
                limit: MAX_TX_BYTES as u64,
            });
        }
        let mut r = Reader::new(bytes);
        r.version("transaction", TX_VERSION)?;
        let epoch = r.u64("epoch")?;
        let signer = r.u32("signer")?;
        let nonce = r.u64("nonce")?;
        let body = TxBody::decode(&mut r)?;
        let sig = r.array("signature")?;
        r.end()?;
        Ok(SignedTx {
            epoch,
            signer,
            nonce,
            body,
            sig,
        })
    }
    /// keccak256 of the encoding (the transaction's id).
    pub fn hash(&self) -> [u8; 32] {
        keccak256(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b: BatchId, c: [u8; 32]) -> DealHeader {
        DealHeader::sign(
            &NodeKey::from_bytes(&[5u8; 32]).unwrap(),
            b,
            2,
            3,
            3,
            b.count,
            c,
            [8; 32],
        )
    }

    #[test]
    fn deal_header_signature_and_length() {
        let b = BatchId {
            epoch: 1,
            start: 0,
            count: 3,
        };
        let h = header(b, [1; 32]);
        let key = NodeKey::from_bytes(&[5u8; 32]).unwrap();
        assert!(h.verify(&key.public().compressed()));
        let mut other = h.clone();
        other.receiver = 4;
        assert!(!other.verify(&key.public().compressed()));
        let mut w = Writer::new();
        h.encode(&mut w);
        assert_eq!(w.buf.len(), DEAL_HEADER_LEN);
        assert_eq!(DealHeader::decode(&mut Reader::new(&w.buf)).unwrap(), h);
    }

    fn sample() -> Vec<TxBody> {
        let b = BatchId {
            epoch: 1,
            start: 0,
            count: 3,
        };
        vec![
            TxBody::DealerSet {
                batch: b,
                dealers: vec![DealerEvidence {
                    dealer: 2,
                    commitments: [9; 32],
                    readies: vec![ReadySig {
                        signer: 1,
                        sig: [3; 65],
                    }],
                }],
            },
            TxBody::PublicKeys {
                batch: b,
                keys_hash: [1; 32],
                keys: vec![[2; 33]; 3],
                vectors_hash: [7; 32],
            },
            TxBody::KeyAssign {
                verifier: "google".into(),
                verifier_id: "a@b.c".into(),
            },
            TxBody::EpochHandover {
                next: EpochInfo {
                    epoch: 2,
                    n: 1,
                    k: 1,
                    t: 0,
                    nodes: vec![NodeEntry {
                        index: 1,
                        pubkey: [2; 33],
                    }],
                },
            },
            TxBody::ReshareComplete { epoch: 2, keys: 10 },
            TxBody::HandoverAbort { epoch: 2 },
            TxBody::OpenBatch { batch: b },
            TxBody::Complaint {
                batch: b,
                dealer: 2,
                evidence: Box::new(Evidence::Equivocation {
                    a: header(b, [1; 32]),
                    b: header(b, [2; 32]),
                }),
            },
            TxBody::Complaint {
                batch: b,
                dealer: 2,
                evidence: Box::new(Evidence::BadSlice {
                    header: header(b, [1; 32]),
                    key: 1,
                    commitment_hashes: vec![[4; 32]; 3],
                    slice_hashes: vec![[5; 32]; 3],
                    matrix: vec![6; 9 * 33],
                    slice: vec![7; 12 * 32],
                }),
            },
            TxBody::Complaint {
                batch: b,
                dealer: 2,
                evidence: Box::new(Evidence::Malformed {
                    header: header(b, [1; 32]),
                }),
            },
            TxBody::Complaint {
                batch: b,
                dealer: 2,
                evidence: Box::new(Evidence::WrongSecret {
                    header: header(b, [1; 32]),
                    key: 2,
                    commitment_hashes: vec![[4; 32]; 3],
                    matrix: vec![6; 9 * 33],
                    old_hashes: vec![[8; 32]; 3],
                    old_vector: vec![9; 2 * 33],
                }),
            },
        ]
    }

    #[test]
    fn round_trip_sign_and_reject_garbage() {
        let key = NodeKey::random();
        for body in sample() {
            let tx = SignedTx::sign(&key, 1, 1, 42, body);
            let bytes = tx.encode();
            let back = SignedTx::decode(&bytes).unwrap();
            assert_eq!(back, tx);
            key.public()
                .verify_prehash(&back.signing_digest(), &back.sig)
                .unwrap();
            for cut in 0..bytes.len() {
                assert!(SignedTx::decode(&bytes[..cut]).is_err());
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(SignedTx::decode(&long), Err(CodecError::Trailing(1)));
        }
    }

    #[test]
    fn encoding_is_pinned() {
        let key = NodeKey::from_bytes(&[1u8; 32]).unwrap();
        let tx = SignedTx::sign(
            &key,
            1,
            2,
            3,
            TxBody::KeyAssign {
                verifier: "v".into(),
                verifier_id: "id".into(),
            },
        );
        // RFC 6979 makes the signature deterministic, so the whole encoding is pinned.
        assert_eq!(
            hex::encode(&tx.encode()[..32]),
            "0100000000000000010000000200000000000000030300000001760000000269"
        );
    }
}
