//! Decided blocks and undecided proposals of the embedded BFT engine (the
//! `blocks` and `proposals` databases).

use std::ops::Bound;

use super::env::Store;
use super::error::StoreError;
use super::records::DecidedRecord;

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
