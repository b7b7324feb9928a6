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
        crate::failpoint::hit("proposal.persisted");
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

    /// Deletes the decided records of heights below `below`, at most `max_heights`
    /// of them in this call. Returns the height below which none is left: at least
    /// `below`, or less when `max_heights` stopped it (call again from there).
    ///
    /// The caller prunes below every member's committed height (less a margin):
    /// no member will ask to sync those heights. Value sync learns the new lowest
    /// height from [`Store::min_decided_height`].
    pub fn prune_decided_below(&self, below: u64, max_heights: u64) -> Result<u64, StoreError> {
        let Some(first) = self.min_decided_height()? else {
            return Ok(below);
        };
        let upto = below.min(first.saturating_add(max_heights));
        if upto <= first {
            return Ok(first);
        }
        let hi = upto.to_be_bytes();
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Unbounded, Bound::Excluded(&hi[..]));
        let mut w = self.env.write_txn()?;
        self.blocks.delete_range(&mut w, &range)?;
        w.commit()?;
        Ok(upto)
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

#[cfg(test)]
mod tests {
    use crate::store::testing::temp_store;

    #[test]
    fn decided_blocks_below_a_height_are_pruned_a_bounded_number_at_a_time() {
        let (_dir, s) = temp_store();
        for h in 1..=10u64 {
            s.put_decided(h, &[h as u8; 40], b"cert")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let ok = |r: Result<u64, crate::store::StoreError>| r.unwrap_or_else(|e| panic!("{e}"));
        // Three heights per call: 1, 2 and 3 go, 4 is the lowest left.
        assert_eq!(ok(s.prune_decided_below(6, 3)), 4);
        assert_eq!(
            s.min_decided_height().unwrap_or_else(|e| panic!("{e}")),
            Some(4)
        );
        assert_eq!(ok(s.prune_decided_below(6, 3)), 6);
        let kept: Vec<u64> = (1..=10)
            .filter(|&h| s.decided(h).unwrap_or_else(|e| panic!("{e}")).is_some())
            .collect();
        assert_eq!(kept, [6, 7, 8, 9, 10]);
        // A bound below what is left deletes nothing.
        assert_eq!(ok(s.prune_decided_below(2, 3)), 6);
        assert_eq!(
            s.min_decided_height().unwrap_or_else(|e| panic!("{e}")),
            Some(6)
        );
    }
}
