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
        let mut w = env.write_txn()?;
        let state = env.create_database(&mut w, Some("state"))?;
        let meta = env.create_database(&mut w, Some("meta"))?;
        let shares = env.create_database(&mut w, Some("shares"))?;
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
