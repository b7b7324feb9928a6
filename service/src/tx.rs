//! Consensus transactions: what the BFT engine orders and the app executes.
//!
//! Every transaction is signed by a node of the epoch it names. Encoding: a
//! version byte, then the fields in order with the bounded [`crate::codec`].
//! The signature is `SignData` (ECDSA over keccak256) of
//! `"torus-node/tx/v1" ‖ encode(unsigned part)`.

use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::{NodeKey, NodePub};
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
const READY_DOMAIN: &[u8] = b"torus-node/ready/v1";
const DEAL_DOMAIN: &[u8] = b"torus-node/deal/v1";
const COMMITMENTS_DOMAIN: &[u8] = b"torus-node/commitments/v1";
const SLICE_DOMAIN: &[u8] = b"torus-node/slice/v1";

/// A batch of consecutive key indexes generated together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId {
    /// Epoch whose committee deals.
    pub epoch: u64,
    /// First key index.
    pub start: u64,
    /// Number of keys.
    pub count: u32,
}

impl BatchId {
    /// Encodes.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.epoch).u64(self.start).u32(self.count);
    }
    /// Decodes (count 1..=[`MAX_BATCH_KEYS`]).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let b = BatchId {
            epoch: r.u64("batch epoch")?,
            start: r.u64("batch start")?,
            count: r.u32("batch count")?,
        };
        if b.count == 0 || u64::from(b.count) > MAX_BATCH_KEYS {
            return Err(CodecError::TooLarge {
                what: "batch count",
                got: u64::from(b.count),
                limit: MAX_BATCH_KEYS,
            });
        }
        Ok(b)
    }
    /// One past the last key index.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(u64::from(self.count))
    }
}

/// The digest a node signs when it sends `ready` for one dealer's batch sharing:
/// it binds the batch, the dealer and the digest of the dealer's commitments.
pub fn ready_digest(batch: &BatchId, dealer: u32, commitments: &[u8; 32]) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(READY_DOMAIN);
    batch.encode(&mut w);
    w.u32(dealer).raw(commitments);
    keccak256(&w.buf)
}

/// A node's signature on a `ready`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadySig {
    /// Signing node's index.
    pub signer: u32,
    /// 65-byte signature over [`ready_digest`].
    pub sig: [u8; 65],
}

/// One dealer of a decided set, with the ready evidence that its sharing completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealerEvidence {
    /// Dealer index.
    pub dealer: u32,
    /// keccak256 of the dealer's encoded commitment matrices.
    pub commitments: [u8; 32],
    /// At least k + t ready signatures from distinct nodes.
    pub readies: Vec<ReadySig>,
}

/// What a dealer signs for each receiver's `send`: the batch, the shape of the
/// sharing and digests of the commitments and of the receiver's slice. Receivers
/// keep it as evidence: two headers with different commitment digests for one
/// batch prove equivocation; a header with the wrong shape, or one whose slice
/// does not fit its commitments, proves a bad dealing (see [`Evidence`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealHeader {
    /// The batch.
    pub batch: BatchId,
    /// Dealer index.
    pub dealer: u32,
    /// Receiver index.
    pub receiver: u32,
    /// Matrix size the dealer used (must be the epoch's k).
    pub k: u32,
    /// Keys the dealer covered (must be the batch count).
    pub keys: u32,
    /// Commitments digest ([`commitments_digest`]).
    pub commitments: [u8; 32],
    /// Slice digest ([`slice_digest`]).
    pub slice: [u8; 32],
    /// The dealer's signature over [`DealHeader::digest`].
    pub sig: [u8; 65],
}

/// Encoded size of a [`DealHeader`].
pub const DEAL_HEADER_LEN: usize = 20 + 4 * 4 + 32 + 32 + 65;

impl DealHeader {
    /// The digest the dealer signs.
    pub fn digest(&self) -> [u8; 32] {
        let mut w = Writer::new();
        w.raw(DEAL_DOMAIN);
        self.batch.encode(&mut w);
        w.u32(self.dealer)
            .u32(self.receiver)
            .u32(self.k)
            .u32(self.keys)
            .raw(&self.commitments)
            .raw(&self.slice);
        keccak256(&w.buf)
    }
    /// Signs a header with the dealer's key.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &NodeKey,
        batch: BatchId,
        dealer: u32,
        receiver: u32,
        k: u32,
        keys: u32,
        commitments: [u8; 32],
        slice: [u8; 32],
    ) -> Self {
        let mut h = DealHeader {
            batch,
            dealer,
            receiver,
            k,
            keys,
            commitments,
            slice,
            sig: [0u8; 65],
        };
        h.sig = key.sign_prehash(&h.digest());
        h
    }
    /// Whether `pubkey` (SEC1) signed this header.
    pub fn verify(&self, pubkey: &[u8]) -> bool {
        NodePub::from_sec1(pubkey)
            .and_then(|pk| pk.verify_prehash(&self.digest(), &self.sig))
            .is_ok()
    }
    /// Encodes.
    pub fn encode(&self, w: &mut Writer) {
        self.batch.encode(w);
        w.u32(self.dealer)
            .u32(self.receiver)
            .u32(self.k)
            .u32(self.keys)
            .raw(&self.commitments)
            .raw(&self.slice)
            .raw(&self.sig);
    }
    /// Decodes.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(DealHeader {
            batch: BatchId::decode(r)?,
            dealer: r.u32("dealer")?,
            receiver: r.u32("receiver")?,
            k: r.u32("k")?,
            keys: r.u32("keys")?,
            commitments: r.array("commitments digest")?,
            slice: r.array("slice digest")?,
            sig: r.array("dealer signature")?,
        })
    }
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

/// Proof that a dealer misbehaved, checkable by every node from the transaction alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The dealer signed a header whose shape is not the batch's (matrix size
    /// other than k, or another key count): the threshold-raising attack.
    Malformed {
        /// The signed header.
        header: DealHeader,
    },
    /// The dealer signed two different commitment digests for one batch.
    Equivocation {
        /// One header.
        a: DealHeader,
        /// Another, with a different commitments digest.
        b: DealHeader,
    },
    /// One key's row or column does not fit its commitment matrix (or the
    /// matrix holds an invalid or identity point). Reveals the accuser's slice
    /// of that key from that dealer only, which is excluded anyway.
    BadSlice {
        /// The signed header of the accuser's send.
        header: DealHeader,
        /// The key within the batch.
        key: u32,
        /// keccak256 of every key's encoded matrix (binds `matrix` to the header).
        commitment_hashes: Vec<[u8; 32]>,
        /// keccak256 of every key's encoded slice (binds `slice` to the header).
        slice_hashes: Vec<[u8; 32]>,
        /// The key's matrix as sent: k*k 33-byte compressed points.
        matrix: Vec<u8>,
        /// The key's slice as sent: `a ‖ a' ‖ b ‖ b'`, 4k 32-byte scalars.
        slice: Vec<u8>,
    },
}

impl Evidence {
    /// Short name (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::Malformed { .. } => "malformed",
            Evidence::Equivocation { .. } => "equivocation",
            Evidence::BadSlice { .. } => "bad_slice",
        }
    }
    fn encode(&self, w: &mut Writer) {
        match self {
            Evidence::Malformed { header } => {
                w.u8(1);
                header.encode(w);
            }
            Evidence::Equivocation { a, b } => {
                w.u8(2);
                a.encode(w);
                b.encode(w);
            }
            Evidence::BadSlice {
                header,
                key,
                commitment_hashes,
                slice_hashes,
                matrix,
                slice,
            } => {
                w.u8(3);
                header.encode(w);
                w.u32(*key).count(commitment_hashes.len());
                for h in commitment_hashes {
                    w.raw(h);
                }
                w.count(slice_hashes.len());
                for h in slice_hashes {
                    w.raw(h);
                }
                w.bytes(matrix).bytes(slice);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match r.u8("evidence kind")? {
            1 => Evidence::Malformed {
                header: DealHeader::decode(r)?,
            },
            2 => Evidence::Equivocation {
                a: DealHeader::decode(r)?,
                b: DealHeader::decode(r)?,
            },
            3 => {
                let header = DealHeader::decode(r)?;
                let key = r.u32("key")?;
                let c = r.count("commitment hashes", MAX_BATCH_KEYS, 32)?;
                let mut commitment_hashes = Vec::with_capacity(c);
                for _ in 0..c {
                    commitment_hashes.push(r.array("commitment hash")?);
                }
                let c = r.count("slice hashes", MAX_BATCH_KEYS, 32)?;
                let mut slice_hashes = Vec::with_capacity(c);
                for _ in 0..c {
                    slice_hashes.push(r.array("slice hash")?);
                }
                Evidence::BadSlice {
                    header,
                    key,
                    commitment_hashes,
                    slice_hashes,
                    matrix: r.bytes("matrix", MAX_EVIDENCE_ITEM)?.to_vec(),
                    slice: r.bytes("slice", MAX_EVIDENCE_ITEM)?.to_vec(),
                }
            }
            got => {
                return Err(CodecError::Tag {
                    what: "evidence",
                    got,
                })
            }
        })
    }
}

/// Largest matrix or slice of one key in evidence.
const MAX_EVIDENCE_ITEM: u64 = 1 << 20;

/// A member of a committee.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeEntry {
    /// 1-based index (the sharing x-coordinate).
    pub index: u32,
    /// 33-byte compressed public key.
    pub pubkey: [u8; 33],
}

/// A committee and its thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochInfo {
    /// Epoch number.
    pub epoch: u64,
    /// Committee size.
    pub n: u32,
    /// Reconstruction threshold (polynomial coefficients).
    pub k: u32,
    /// Tolerated faulty nodes.
    pub t: u32,
    /// Members, sorted by index, indexes 1..=n.
    pub nodes: Vec<NodeEntry>,
}

impl EpochInfo {
    /// Checks thresholds and membership: indexes exactly 1..=n, distinct valid keys,
    /// and the engine's parameter rules.
    pub fn validate(&self) -> Result<(), String> {
        torus_engine::Params::new(self.n, self.k, self.t).map_err(|e| e.to_string())?;
        if self.nodes.len() != self.n as usize {
            return Err(format!(
                "{} nodes listed for n = {}",
                self.nodes.len(),
                self.n
            ));
        }
        let mut keys = std::collections::HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.index as usize != i + 1 {
                return Err(format!(
                    "node indexes must be 1..=n in order, found {}",
                    node.index
                ));
            }
            NodePub::from_sec1(&node.pubkey)
                .map_err(|_| format!("node {}: bad public key", node.index))?;
            if !keys.insert(node.pubkey) {
                return Err(format!("node {}: duplicate public key", node.index));
            }
        }
        Ok(())
    }
    /// The member with `index`.
    pub fn node(&self, index: u32) -> Option<&NodeEntry> {
        self.nodes.get((index as usize).checked_sub(1)?)
    }
    /// The index of the member with this public key.
    pub fn index_of(&self, pubkey: &[u8; 33]) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| &n.pubkey == pubkey)
            .map(|n| n.index)
    }
    /// Encodes.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.epoch).u32(self.n).u32(self.k).u32(self.t);
        w.count(self.nodes.len());
        for n in &self.nodes {
            w.u32(n.index).raw(&n.pubkey);
        }
    }
    /// Decodes.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let epoch = r.u64("epoch")?;
        let n = r.u32("n")?;
        let k = r.u32("k")?;
        let t = r.u32("t")?;
        let c = r.count("nodes", MAX_NODES, 37)?;
        let mut nodes = Vec::with_capacity(c);
        for _ in 0..c {
            nodes.push(NodeEntry {
                index: r.u32("node index")?,
                pubkey: r.array("node pubkey")?,
            });
        }
        Ok(EpochInfo {
            epoch,
            n,
            k,
            t,
            nodes,
        })
    }
    /// keccak256 of the encoding.
    pub fn hash(&self) -> [u8; 32] {
        let mut w = Writer::new();
        self.encode(&mut w);
        keccak256(&w.buf)
    }
}

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
}

impl TxBody {
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
            } => {
                w.u8(2);
                batch.encode(w);
                w.raw(keys_hash).count(keys.len());
                for k in keys {
                    w.raw(k);
                }
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
            got => return Err(CodecError::Tag { what: "tx", got }),
        })
    }
}

/// keccak256 of concatenated 33-byte keys (the `keys_hash` of [`TxBody::PublicKeys`]).
pub fn keys_hash(keys: &[[u8; 33]]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(keys.len() * 33);
    for k in keys {
        buf.extend_from_slice(k);
    }
    keccak256(&buf)
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
