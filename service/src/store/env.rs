//! The LMDB environment, its databases and the replicated state: open, sync,
//! genesis, head, snapshots and block commits. The client store (token records, written
//! by anyone) is another environment ([`super::client`]), opened alongside.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::ChaCha20Poly1305;
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RoTxn, WithoutTls};
use zeroize::Zeroizing;

use super::client::{ClientLimits, ClientStore};
use super::error::StoreError;
use super::records::{DecidedRecord, Head};
use super::size::DbSize;
use crate::app::{self, AppError, BlockOutcome, KvRead};
use crate::crypto::NodeKey;
use crate::tx::EpochInfo;

pub(super) type Db = Database<Bytes, Bytes>;

/// One open LMDB environment. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(super) env: Env<WithoutTls>,
    pub(super) state: Db,
    pub(super) meta: Db,
    pub(super) shares: Db,
    /// The next epoch's shares during a hand-over (resharing), moved into
    /// `shares` when the new committee takes over.
    pub(super) next_shares: Db,
    pub(super) tokens: Db,
    pub(super) progress: Db,
    pub(super) keygen: Db,
    pub(super) blocks: Db,
    pub(super) proposals: Db,
    pub(super) client: ClientStore,
    pub(super) seal_key: std::sync::Arc<Zeroizing<[u8; 32]>>,
    pub(super) dirty: std::sync::Arc<AtomicBool>,
}

/// How long a token commitment may stay unsynced.
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.env.path())
            .finish_non_exhaustive()
    }
}

const HEAD: &[u8] = b"head";
const GENESIS_HASH: &[u8] = b"genesis";
/// Default LMDB map size (the file grows as needed up to this).
pub const DEFAULT_MAP_SIZE: usize = 16 << 30;

/// A consistent read view of the replicated state.
pub struct Snapshot<'e> {
    txn: RoTxn<'e, WithoutTls>,
    db: Db,
}

impl KvRead for Snapshot<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        self.db
            .get(&self.txn, key)
            .map(|v| v.map(<[u8]>::to_vec))
            .map_err(|e| AppError::Storage(e.to_string()))
    }
}

/// A record as read: its key and its value.
pub type KvPair = (Vec<u8>, Vec<u8>);

impl Snapshot<'_> {
    /// The last (highest-keyed) at most `limit` entries whose key starts with `prefix`,
    /// highest first. Reads only what it returns (a reverse cursor), so its cost does not
    /// grow with the number of records under the prefix.
    pub fn last_with_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<KvPair>, AppError> {
        let storage = |e: heed::Error| AppError::Storage(e.to_string());
        let mut out = Vec::with_capacity(limit.min(64));
        for item in self
            .db
            .rev_prefix_iter(&self.txn, prefix)
            .map_err(storage)?
            .take(limit)
        {
            let (k, v) = item.map_err(storage)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir/lmdb`, and the client store in
    /// `dir/client-lmdb` with default limits.
    pub fn open(dir: &Path, node_key: &NodeKey, map_size: usize) -> Result<Self, StoreError> {
        Self::open_with(dir, node_key, map_size, ClientLimits::default())
    }

    /// As [`Store::open`], with the client store's limits.
    pub fn open_with(
        dir: &Path,
        node_key: &NodeKey,
        map_size: usize,
        client: ClientLimits,
    ) -> Result<Self, StoreError> {
        let client = ClientStore::open(dir, client, crate::node::unix_s())?;
        let path = dir.join("lmdb");
        std::fs::create_dir_all(&path)?;
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(map_size).max_dbs(16).max_readers(512);
        // SAFETY: MDB_NOSYNC only changes when LMDB flushes; integrity is kept and
        // every durability point calls `force_sync` (see the module docs).
        #[allow(unsafe_code)]
        unsafe {
            opts.flags(EnvFlags::NO_SYNC);
        }
        // SAFETY: heed requires that the same LMDB file is not opened twice in one
        // process without going through heed (which de-duplicates environments) and
        // that the file is not modified by other processes outside LMDB's locking.
        // The node owns its data directory; nothing else maps this file.
        #[allow(unsafe_code)]
        let env = unsafe { opts.open(&path)? };
        super::check::refuse_truncated(&env, &path)?;
        let mut w = env.write_txn()?;
        let state = env.create_database(&mut w, Some("state"))?;
        let meta = env.create_database(&mut w, Some("meta"))?;
        let shares = env.create_database(&mut w, Some("shares"))?;
        let next_shares = env.create_database(&mut w, Some("next_shares"))?;
        let tokens = env.create_database(&mut w, Some("tokens"))?;
        let progress = env.create_database(&mut w, Some("progress"))?;
        let keygen = env.create_database(&mut w, Some("keygen"))?;
        let blocks = env.create_database(&mut w, Some("blocks"))?;
        let proposals = env.create_database(&mut w, Some("proposals"))?;
        w.commit()?;
        let store = Store {
            env,
            state,
            meta,
            shares,
            next_shares,
            tokens,
            progress,
            keygen,
            blocks,
            proposals,
            client,
            seal_key: std::sync::Arc::new(node_key.derive("torus-node/share-at-rest/v1")),
            dirty: std::sync::Arc::new(AtomicBool::new(false)),
        };
        store.continue_legacy_seq()?;
        Ok(store)
    }

    /// Every database's size, read from LMDB's own statistics (constant time: no
    /// record is read). The client store's databases count as one, `client`.
    pub fn sizes(&self) -> Result<Vec<DbSize>, StoreError> {
        let r = self.env.read_txn()?;
        let mut out = Vec::with_capacity(10);
        for (name, db) in [
            ("state", &self.state),
            ("meta", &self.meta),
            ("shares", &self.shares),
            ("next_shares", &self.next_shares),
            ("tokens", &self.tokens),
            ("progress", &self.progress),
            ("keygen", &self.keygen),
            ("blocks", &self.blocks),
            ("proposals", &self.proposals),
        ] {
            out.push(DbSize::of(name, db.stat(&r)?));
        }
        drop(r);
        out.push(self.client.size()?);
        Ok(out)
    }

    /// Flushes LMDB to disk now.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.dirty.store(false, Ordering::SeqCst);
        self.env.force_sync()?;
        Ok(())
    }

    /// Flushes both environments if a client write (token commitment, reveal, prune)
    /// happened since the last flush.
    pub fn sync_if_dirty(&self) -> Result<(), StoreError> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            self.env.force_sync()?;
        }
        self.client.sync_if_dirty()
    }

    /// Closes the environment and waits until LMDB released it (so the same
    /// directory can be reopened in this process, as a restart does).
    pub fn close(self) {
        let Store { env, client, .. } = self;
        env.prepare_for_closing().wait();
        client.close();
    }

    /// Initialises the replicated state from `genesis` on first start; on later
    /// starts checks that the directory belongs to the same genesis.
    pub fn init_genesis(&self, genesis: &EpochInfo) -> Result<(), StoreError> {
        let gh = genesis.hash();
        let mut w = self.env.write_txn()?;
        match self.meta.get(&w, GENESIS_HASH)? {
            Some(h) if h == gh => return Ok(()),
            Some(_) => return Err(StoreError::GenesisMismatch),
            None => {}
        }
        let writes = app::genesis_writes(genesis).map_err(|e| StoreError::Corrupt {
            what: "genesis",
            err: e,
        })?;
        for (k, v) in &writes {
            if let Some(v) = v {
                self.state.put(&mut w, k, v)?;
            }
        }
        let head = Head {
            height: 0,
            app_hash: app::chain_app_hash(&[0u8; 32], 0, &writes),
        };
        self.meta.put(&mut w, HEAD, &head.encode())?;
        self.meta.put(&mut w, GENESIS_HASH, &gh)?;
        w.commit()?;
        self.sync()
    }

    /// The last committed height and app hash.
    pub fn head(&self) -> Result<Head, StoreError> {
        let r = self.env.read_txn()?;
        match self.meta.get(&r, HEAD)? {
            Some(b) => Head::decode(b).map_err(|e| StoreError::Corrupt {
                what: "head",
                err: e.to_string(),
            }),
            None => Ok(Head::default()),
        }
    }

    /// A read view of the committed replicated state.
    pub fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        Ok(Snapshot {
            txn: self.env.read_txn()?,
            db: self.state,
        })
    }

    /// Persists a block: its state writes and the new head, in one transaction.
    /// Refuses a block that is not the next height.
    pub fn commit_block(&self, block: &BlockOutcome) -> Result<(), StoreError> {
        self.commit_block_with(block, None)
    }

    pub(super) fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&**self.seal_key).into())
    }

    /// The app hash after `height`, if this node committed that height.
    pub fn app_hash_at(&self, height: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self
            .meta
            .get(&r, &app_hash_key(height))?
            .and_then(|b| <[u8; 32]>::try_from(b).ok()))
    }

    /// As [`Store::commit_block`], also storing the block's decided record
    /// (when given) in the same write transaction.
    pub fn commit_block_with(
        &self,
        block: &BlockOutcome,
        decided: Option<&DecidedRecord>,
    ) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        let head = match self.meta.get(&w, HEAD)? {
            Some(b) => Head::decode(b).map_err(|e| StoreError::Corrupt {
                what: "head",
                err: e.to_string(),
            })?,
            None => Head::default(),
        };
        if block.height != head.height + 1 {
            return Err(StoreError::Corrupt {
                what: "block height",
                err: format!("committing {} on top of {}", block.height, head.height),
            });
        }
        for (k, v) in &block.writes {
            match v {
                Some(v) => self.state.put(&mut w, k, v)?,
                None => {
                    self.state.delete(&mut w, k)?;
                }
            }
        }
        let new = Head {
            height: block.height,
            app_hash: block.app_hash,
        };
        self.meta.put(&mut w, HEAD, &new.encode())?;
        self.meta
            .put(&mut w, &app_hash_key(block.height), &block.app_hash)?;
        if let Some(d) = decided {
            self.blocks
                .put(&mut w, &block.height.to_be_bytes(), &d.encode())?;
        }
        crate::failpoint::hit("block.in_commit");
        w.commit()?;
        self.sync()
    }
}

/// `meta` key of the app hash after a height (the head is stored separately).
fn app_hash_key(height: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'h';
    k[1..].copy_from_slice(&height.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::app::keys;
    use crate::store::testing::{commit_writes as commit, temp_store as store};

    #[test]
    fn the_last_records_under_a_prefix_come_back_highest_first_and_nothing_else() {
        let (_d, s) = store();
        let mut writes = BTreeMap::new();
        // Keys just below and above the prefix, and other records under other prefixes.
        writes.insert(b"a".to_vec(), Some(b"below".to_vec()));
        writes.insert(b"c".to_vec(), Some(b"above".to_vec()));
        writes.insert(keys::with_u64(keys::KEY, 5), Some(b"key".to_vec()));
        for start in 0..300u64 {
            writes.insert(
                keys::with_u64(keys::BATCH, start * 1000),
                Some(start.to_be_bytes().to_vec()),
            );
        }
        commit(&s, 1, writes);
        let snap = s.snapshot().unwrap_or_else(|e| panic!("{e}"));
        let last = snap
            .last_with_prefix(&[keys::BATCH], 16)
            .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<u64> = last
            .iter()
            .map(|(_, v)| u64::from_be_bytes(v[..].try_into().unwrap_or([0; 8])))
            .collect();
        let want: Vec<u64> = (284..300).rev().collect();
        assert_eq!(got, want);
        assert!(last
            .iter()
            .all(|(k, _)| k[0] == keys::BATCH && k.len() == 9));
        // Fewer records than the limit: all of them; an empty prefix range: none.
        assert_eq!(
            snap.last_with_prefix(&[keys::KEY], 16)
                .unwrap_or_else(|e| panic!("{e}"))
                .len(),
            1
        );
        assert!(snap
            .last_with_prefix(&[keys::PUBKEY], 16)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
    }

    /// Without the length check, opening either truncated file and reading from it
    /// killed the test process with SIGBUS (a page past the end of the mapped file).
    #[test]
    fn a_truncated_data_file_is_refused_with_a_clear_error_and_never_read() {
        // Each file cut to three 4 KiB pages (`Some(3)`) or to half its length (`None`).
        for (sub, pages) in [
            ("lmdb", Some(3u64)),
            ("lmdb", None),
            ("client-lmdb", Some(3)),
        ] {
            let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let key = crate::crypto::NodeKey::random();
            let s = super::Store::open(d.path(), &key, 64 << 20).unwrap_or_else(|e| panic!("{e}"));
            let mut writes = BTreeMap::new();
            for i in 0..3000u64 {
                writes.insert(keys::with_u64(keys::KEY, i), Some(vec![7; 100]));
            }
            commit(&s, 1, writes);
            for i in 0..300u64 {
                let rec = crate::store::records::TokenCommitment {
                    temp_x: [1; 32],
                    temp_y: [2; 32],
                    created_s: 10,
                    data: "d".repeat(200),
                    sig: [3; 65],
                    revealed_s: 0,
                    seq: 0,
                };
                s.put_token_if_absent("v", &format!("{i:064x}"), &rec)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            s.sync().unwrap_or_else(|e| panic!("{e}"));
            s.sync_if_dirty().unwrap_or_else(|e| panic!("{e}"));
            s.close();
            let file = d.path().join(sub).join("data.mdb");
            let len = std::fs::metadata(&file)
                .unwrap_or_else(|e| panic!("{e}"))
                .len();
            let cut = pages.map_or(len / 2, |p| p * 4096);
            assert!(cut < len, "{sub}: {len} bytes");
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .and_then(|f| f.set_len(cut))
                .unwrap_or_else(|e| panic!("{e}"));
            match super::Store::open(d.path(), &key, 64 << 20) {
                Err(e @ super::StoreError::Truncated { have, need, .. }) => {
                    assert_eq!(have, cut, "{sub}");
                    assert!(need > have, "{sub}");
                    let text = e.to_string();
                    assert!(
                        text.contains(&format!("{sub}/data.mdb is truncated")),
                        "{text}"
                    );
                    assert!(
                        text.contains("Restore the directory from a backup"),
                        "{text}"
                    );
                }
                Err(e) => panic!("{sub} cut to {cut} of {len}: another error: {e}"),
                Ok(_) => panic!("{sub} cut to {cut} of {len} bytes opened"),
            }
        }
    }

    #[test]
    fn store_sizes_count_each_database_records_and_grow_with_what_is_written() {
        let (_d, s) = store();
        let before = s.sizes().unwrap_or_else(|e| panic!("{e}"));
        let state_before = before.iter().find(|d| d.name == "state").map(|d| d.bytes);
        let mut writes = BTreeMap::new();
        for i in 0..2000u64 {
            writes.insert(keys::with_u64(keys::KEY, i), Some(vec![7; 100]));
        }
        commit(&s, 1, writes);
        let after = s.sizes().unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = after.iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            [
                "state",
                "meta",
                "shares",
                "next_shares",
                "tokens",
                "progress",
                "keygen",
                "blocks",
                "proposals",
                "client"
            ]
        );
        let state = after
            .iter()
            .find(|d| d.name == "state")
            .copied()
            .unwrap_or_else(|| panic!("no state"));
        assert!(state.entries >= 2000, "{state:?}");
        // 2,000 records of about 110 bytes need at least 220 kB of pages.
        assert!(state.bytes >= 220_000, "{state:?}");
        assert!(Some(state.bytes) > state_before);
        // The head went to meta.
        assert!(after.iter().any(|d| d.name == "meta" && d.entries >= 1));
    }
}
