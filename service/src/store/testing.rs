//! Helpers of the store's unit tests: a store in a temporary directory and a block
//! commit from raw state writes.

use std::collections::BTreeMap;

use super::Store;
use crate::app::BlockOutcome;
use crate::crypto::NodeKey;

/// A fresh store (64 MiB map) under a temporary directory that lives as long as the
/// returned guard.
pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let s = Store::open(dir.path(), &NodeKey::random(), 64 << 20).unwrap_or_else(|e| panic!("{e}"));
    (dir, s)
}

/// Commits a block at `height` that makes exactly `writes` (no results, no events).
pub(crate) fn commit_writes(s: &Store, height: u64, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    let block = BlockOutcome {
        height,
        results: Vec::new(),
        events: Vec::new(),
        writes,
        app_hash: [height as u8; 32],
    };
    s.commit_block(&block).unwrap_or_else(|e| panic!("{e}"));
}
