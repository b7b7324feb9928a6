//! Evidence against a dealer, carried by a complaint transaction. The rules that
//! judge it live in the app ([`crate::app::evidence`]); this is the type and its
//! encoding.

use crate::codec::{CodecError, Reader, Writer};

use super::{DealHeader, MAX_BATCH_KEYS};

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
    /// A resharing dealer's sub-sharing of one key does not share its old share:
    /// `C[0][0]` of the key's matrix is not the old commitment vector evaluated at
    /// the dealer's index. Public data only.
    WrongSecret {
        /// A signed header of the dealer's resharing send.
        header: DealHeader,
        /// The key within the batch.
        key: u32,
        /// keccak256 of every key's encoded matrix (binds `matrix` to the header).
        commitment_hashes: Vec<[u8; 32]>,
        /// The key's matrix as sent: k'*k' 33-byte compressed points.
        matrix: Vec<u8>,
        /// Every key's old commitment vector hash (binds `old_vector` to the
        /// vectors hash the old epoch decided for the batch).
        old_hashes: Vec<[u8; 32]>,
        /// The key's old commitment vector: k_old 33-byte compressed points.
        old_vector: Vec<u8>,
    },
}

impl Evidence {
    /// Short name (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::Malformed { .. } => "malformed",
            Evidence::Equivocation { .. } => "equivocation",
            Evidence::BadSlice { .. } => "bad_slice",
            Evidence::WrongSecret { .. } => "wrong_secret",
        }
    }
    pub(super) fn encode(&self, w: &mut Writer) {
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
            Evidence::WrongSecret {
                header,
                key,
                commitment_hashes,
                matrix,
                old_hashes,
                old_vector,
            } => {
                w.u8(4);
                header.encode(w);
                w.u32(*key);
                for list in [commitment_hashes, old_hashes] {
                    w.count(list.len());
                    for h in list {
                        w.raw(h);
                    }
                }
                w.bytes(matrix).bytes(old_vector);
            }
        }
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
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
            4 => {
                let header = DealHeader::decode(r)?;
                let key = r.u32("key")?;
                let mut lists = [Vec::new(), Vec::new()];
                for (list, what) in lists.iter_mut().zip(["commitment hashes", "old hashes"]) {
                    let c = r.count(what, MAX_BATCH_KEYS, 32)?;
                    list.reserve(c);
                    for _ in 0..c {
                        list.push(r.array(what)?);
                    }
                }
                let [commitment_hashes, old_hashes] = lists;
                Evidence::WrongSecret {
                    header,
                    key,
                    commitment_hashes,
                    matrix: r.bytes("matrix", MAX_EVIDENCE_ITEM)?.to_vec(),
                    old_hashes,
                    old_vector: r.bytes("old vector", MAX_EVIDENCE_ITEM)?.to_vec(),
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
