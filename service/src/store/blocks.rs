//! Decided blocks and undecided proposals of the embedded BFT engine (the
//! `blocks` and `proposals` databases).

use std::ops::Bound;

use super::env::{Store, StoreError};

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
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = crate::codec::Writer::new();
        w.u8(DECIDED_VERSION)
            .bytes(&self.value)
            .bytes(&self.certificate);
        w.finish()
    }

    pub(super) fn decode(b: &[u8]) -> Result<Self, crate::codec::CodecError> {
        let mut r = crate::codec::Reader::new(b);
        r.version("decided block", DECIDED_VERSION)?;
        let value = r.bytes("decided value", u64::from(u32::MAX))?.to_vec();
        let certificate = r.bytes("certificate", u64::from(u32::MAX))?.to_vec();
        r.end()?;
        Ok(DecidedRecord { value, certificate })
    }
}

// --- undecided proposals (the `proposals` database) ---

impl Store {
    /// Stores a proposed value under `key` (height first, so heights prune by
    /// range). `sync` flushes before returning (this node's own proposals: a
    /// restart must never propose something else in the same round).
    pub fn put_proposal(&self, key: &[u8], value: &[u8], sync: bool) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        self.proposals.put(&mut w, key, value)?;
        w.commit()?;
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Every stored proposal whose key starts at or after `from` (as bytes).
    pub fn proposals_from(&self, from: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let r = self.env.read_txn()?;
        let mut out = Vec::new();
        // LMDB has no empty key: an empty `from` means everything.
        let start = if from.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Included(from)
        };
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (start, Bound::Unbounded);
        for item in self.proposals.range(&r, &range)? {
            let (_, v) = item?;
            out.push(v.to_vec());
        }
        Ok(out)
    }

    /// Deletes every stored proposal whose key sorts before `below`.
    pub fn prune_proposals(&self, below: &[u8]) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Unbounded, Bound::Excluded(below));
        self.proposals.delete_range(&mut w, &range)?;
        w.commit()?;
        Ok(())
    }
}

// --- end undecided proposals ---

impl Store {
    /// Stores a decided record on its own (a block whose state is already committed).
    pub fn put_decided(
        &self,
        height: u64,
        value: &[u8],
        certificate: &[u8],
    ) -> Result<(), StoreError> {
        let rec = DecidedRecord {
            value: value.to_vec(),
            certificate: certificate.to_vec(),
        };
        let mut w = self.env.write_txn()?;
        self.blocks
            .put(&mut w, &height.to_be_bytes(), &rec.encode())?;
        w.commit()?;
        self.sync()
    }

    /// The decided record of `height`, if stored.
    pub fn decided(&self, height: u64) -> Result<Option<DecidedRecord>, StoreError> {
        let r = self.env.read_txn()?;
        self.blocks
            .get(&r, &height.to_be_bytes())?
            .map(|b| {
                DecidedRecord::decode(b).map_err(|e| StoreError::Corrupt {
                    what: "decided block",
                    err: e.to_string(),
                })
            })
            .transpose()
    }

    /// The lowest height with a decided record.
    pub fn min_decided_height(&self) -> Result<Option<u64>, StoreError> {
        let r = self.env.read_txn()?;
        let Some(first) = self.blocks.first(&r)? else {
            return Ok(None);
        };
        let (k, _) = first;
        Ok(<[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes))
    }
}
