//! The client store: token commitments (CommitmentRequest) and token reveals
//! (ShareRequest) in their own LMDB environment, `<data_dir>/client-lmdb` (issue #10,
//! finding 5).
//!
//! Anyone can write here (one record per CommitmentRequest), so this environment is kept
//! apart from the consensus one: its map size (`store.client_map_mib`) bounds its file,
//! and when it is full only client requests are refused (with a clear error), never a
//! block commit. Two more bounds keep it small:
//! - at most `store.max_token_commitments` live commitment records; one more is refused;
//! - new records are refused once data fills 75% of the map, so that pruning (which copies
//!   pages, as every LMDB write) always finds room;
//! - every record is pruned once its token can no longer be accepted: [`ClientStore::prune`]
//!   deletes records written more than the token-record lifetime ago (the largest
//!   `max_token_age_s` of the verifiers plus the `iat` skew and a margin, see
//!   `NodeConfig::token_record_lifetime_s`), oldest first, a bounded number per call.
//!
//! Why pruning is safe: a node reads a commitment record to answer a retry, to check the
//! temporary key of a reveal and to tell which encoding of a token was committed first; it
//! reads a reveal record to refuse a second reveal. A token committed (or revealed) at time
//! `c` existed at `c`, so its `iat` is at most `c` plus the issuer's clock skew, and a
//! verifier refuses it once `now - iat > max_token_age_s`. After the lifetime every token a
//! pruned record speaks about is refused by the verifier anyway.
//!
//! Databases: `commitments` (token key → `TokenCommitment`), `uses` (token-use key →
//! `TokenUse`), `expiry` (written-at seconds, big-endian ‖ kind ‖ record key → empty: the
//! prune order) and `meta` (the arrival counter, the creation time of this environment).

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RwTxn, WithoutTls};

use super::error::StoreError;
use super::records::{decode_u64, encode_u64, TokenCommitment, TokenUse};
use super::size::DbSize;

type Db = Database<Bytes, Bytes>;

/// Sizes of the client store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLimits {
    /// LMDB map size in bytes (the largest the file can grow).
    pub map_size: usize,
    /// Live token-commitment records at most.
    pub max_commitments: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            map_size: DEFAULT_CLIENT_MAP_SIZE,
            max_commitments: DEFAULT_MAX_TOKEN_COMMITMENTS,
        }
    }
}

/// Default client map size: 2 GiB.
pub const DEFAULT_CLIENT_MAP_SIZE: usize = 2 << 30;
/// Default bound on live token commitments (about 0.7 KiB each with their index).
pub const DEFAULT_MAX_TOKEN_COMMITMENTS: u64 = 1_000_000;

/// New records are refused once this share of the map holds data (the rest stays free for
/// the copy-on-write pages of pruning).
const MAX_FILL_PERCENT: u64 = 75;

const KIND_COMMITMENT: u8 = b'c';
const KIND_USE: u8 = b'u';
/// `meta` key of the commitments' arrival counter.
const TOKEN_SEQ: &[u8] = b"token-seq";
/// `meta` key of the unix second this environment was created (records of the consensus
/// environment's old `tokens` database are all older).
const CREATED: &[u8] = b"created";

/// Token commitments and reveals, in their own environment. Cheap to clone.
#[derive(Clone)]
pub struct ClientStore {
    env: Env<WithoutTls>,
    commitments: Db,
    uses: Db,
    expiry: Db,
    meta: Db,
    limits: ClientLimits,
    dirty: Arc<AtomicBool>,
}

impl std::fmt::Debug for ClientStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStore")
            .field("path", &self.env.path())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What one [`ClientStore::prune`] call removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Commitment records deleted.
    pub commitments: usize,
    /// Token-use records deleted.
    pub uses: usize,
    /// Whether records older than the cutoff remain (the call hit its bound).
    pub more: bool,
}

/// A heed error of a client write: a full map is the client store being full.
fn client_err(e: heed::Error) -> StoreError {
    match e {
        heed::Error::Mdb(heed::MdbError::MapFull) => StoreError::ClientFull("the map is full"),
        e => StoreError::Lmdb(e),
    }
}

fn expiry_key(written_s: u64, kind: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&written_s.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(key);
    k
}

fn corrupt(what: &'static str) -> impl Fn(crate::codec::CodecError) -> StoreError {
    move |e| StoreError::Corrupt {
        what,
        err: e.to_string(),
    }
}

impl ClientStore {
    /// Opens (creating if needed) the client store in `dir/client-lmdb`; `now_s` stamps a
    /// new environment's creation.
    pub fn open(dir: &Path, limits: ClientLimits, now_s: u64) -> Result<Self, StoreError> {
        let path = dir.join("client-lmdb");
        std::fs::create_dir_all(&path)?;
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(limits.map_size).max_dbs(8).max_readers(512);
        // SAFETY: as for the consensus environment (`Store::open`): MDB_NOSYNC only changes
        // when LMDB flushes, and `sync_if_dirty` runs every `SYNC_INTERVAL`.
        #[allow(unsafe_code)]
        unsafe {
            opts.flags(EnvFlags::NO_SYNC);
        }
        // SAFETY: the node owns its data directory; nothing else maps this file, and heed
        // de-duplicates environments opened twice in one process.
        #[allow(unsafe_code)]
        let env = unsafe { opts.open(&path)? };
        super::check::refuse_truncated(&env, &path)?;
        let mut w = env.write_txn()?;
        let commitments = env.create_database(&mut w, Some("commitments"))?;
        let uses = env.create_database(&mut w, Some("uses"))?;
        let expiry = env.create_database(&mut w, Some("expiry"))?;
        let meta = env.create_database(&mut w, Some("meta"))?;
        if meta.get(&w, CREATED)?.is_none() {
            meta.put(&mut w, CREATED, encode_u64(now_s).as_slice())?;
        }
        w.commit()?;
        env.force_sync()?;
        Ok(ClientStore {
            env,
            commitments,
            uses,
            expiry,
            meta,
            limits,
            dirty: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Records and page bytes of all its databases together, as `client` (LMDB
    /// statistics).
    pub fn size(&self) -> Result<DbSize, StoreError> {
        let r = self.env.read_txn()?;
        let mut stats = Vec::with_capacity(4);
        for db in [&self.commitments, &self.uses, &self.expiry, &self.meta] {
            stats.push(db.stat(&r)?);
        }
        Ok(DbSize::total("client", stats))
    }

    /// The unix second this environment was created.
    pub fn created_s(&self) -> Result<u64, StoreError> {
        let r = self.env.read_txn()?;
        match self.meta.get(&r, CREATED)? {
            Some(b) => decode_u64(b).map_err(corrupt("client store creation time")),
            None => Ok(0),
        }
    }

    /// Sets the arrival counter to at least `seq` (continuing the old `tokens` database's
    /// order when a node moves its records here).
    pub fn raise_seq(&self, seq: u64) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        if self.seq(&w)? < seq {
            self.meta
                .put(&mut w, TOKEN_SEQ, encode_u64(seq).as_slice())
                .map_err(client_err)?;
            w.commit().map_err(client_err)?;
        }
        Ok(())
    }

    fn seq(&self, w: &RwTxn<'_>) -> Result<u64, StoreError> {
        match self.meta.get(w, TOKEN_SEQ)? {
            Some(b) => decode_u64(b).map_err(corrupt("token sequence")),
            None => Ok(0),
        }
    }

    /// The commitment record under `key`.
    pub fn commitment(&self, key: &[u8]) -> Result<Option<TokenCommitment>, StoreError> {
        let r = self.env.read_txn()?;
        self.commitments
            .get(&r, key)?
            .map(|b| TokenCommitment::decode(b).map_err(corrupt("token")))
            .transpose()
    }

    /// Stores `rec` under `key` unless a record is there (returned instead); assigns its
    /// arrival order. Refused with [`StoreError::ClientFull`] at the commitment bound or a
    /// full map.
    pub fn insert_commitment(
        &self,
        key: &[u8],
        rec: &TokenCommitment,
    ) -> Result<Option<TokenCommitment>, StoreError> {
        self.check_room()?;
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.commitments.get(&w, key)? {
            return TokenCommitment::decode(b)
                .map(Some)
                .map_err(corrupt("token"));
        }
        if self.commitments.len(&w)? >= self.limits.max_commitments {
            return Err(StoreError::ClientFull("too many live token commitments"));
        }
        // Arrival order: write transactions are serialised, so the counter read and written
        // here orders every commitment this node stores.
        let seq = self.seq(&w)? + 1;
        self.meta
            .put(&mut w, TOKEN_SEQ, encode_u64(seq).as_slice())
            .map_err(client_err)?;
        let mut rec = rec.clone();
        rec.seq = seq;
        self.commitments
            .put(&mut w, key, &rec.encode())
            .map_err(client_err)?;
        self.expiry
            .put(
                &mut w,
                &expiry_key(rec.created_s, KIND_COMMITMENT, key),
                &[],
            )
            .map_err(client_err)?;
        w.commit().map_err(client_err)?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(None)
    }

    /// Refuses new records once the databases use [`MAX_FILL_PERCENT`] of the map: LMDB
    /// copies pages on write, so deleting needs free room too, and a map filled to the last
    /// page could not even be pruned.
    fn check_room(&self) -> Result<(), StoreError> {
        let used = self.env.non_free_pages_size()?;
        let map = self.env.info().map_size as u64;
        if used.saturating_mul(100) >= map.saturating_mul(MAX_FILL_PERCENT) {
            return Err(StoreError::ClientFull("the map is nearly full"));
        }
        Ok(())
    }

    /// Sets the reveal time of the commitment under `key` if it has none.
    pub fn mark_revealed(&self, key: &[u8], now_s: u64) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        let Some(b) = self.commitments.get(&w, key)? else {
            return Ok(());
        };
        let mut rec = TokenCommitment::decode(b).map_err(corrupt("token"))?;
        if rec.revealed_s == 0 {
            rec.revealed_s = now_s.max(1);
            self.commitments
                .put(&mut w, key, &rec.encode())
                .map_err(client_err)?;
            w.commit().map_err(client_err)?;
            self.dirty.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// The token-use record under `key`.
    pub fn token_use(&self, key: &[u8]) -> Result<Option<TokenUse>, StoreError> {
        let r = self.env.read_txn()?;
        self.uses
            .get(&r, key)?
            .map(|b| TokenUse::decode(b).map_err(corrupt("token use")))
            .transpose()
    }

    /// Stores `use_` under `key` unless a record is there (returned instead); `now_s` is the
    /// reveal time, from which the record's lifetime counts.
    pub fn insert_use(
        &self,
        key: &[u8],
        use_: &TokenUse,
        now_s: u64,
    ) -> Result<Option<TokenUse>, StoreError> {
        self.check_room()?;
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.uses.get(&w, key)? {
            return TokenUse::decode(b).map(Some).map_err(corrupt("token use"));
        }
        self.uses
            .put(&mut w, key, &use_.encode())
            .map_err(client_err)?;
        self.expiry
            .put(&mut w, &expiry_key(now_s, KIND_USE, key), &[])
            .map_err(client_err)?;
        w.commit().map_err(client_err)?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(None)
    }

    /// Deletes the records written before `now_s - lifetime_s`, oldest first, at most
    /// `max_records` of them (one write transaction: bounded work per call).
    pub fn prune(
        &self,
        now_s: u64,
        lifetime_s: u64,
        max_records: usize,
    ) -> Result<Pruned, StoreError> {
        let cutoff = now_s.saturating_sub(lifetime_s);
        let mut out = Pruned::default();
        let mut w = self.env.write_txn()?;
        let end = cutoff.to_be_bytes();
        let before: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Unbounded, Bound::Excluded(&end[..]));
        let due: Vec<Vec<u8>> = self
            .expiry
            .range(&w, &before)?
            .take(max_records.saturating_add(1))
            .map(|r| r.map(|(k, _)| k.to_vec()))
            .collect::<Result<_, _>>()?;
        out.more = due.len() > max_records;
        for k in due.iter().take(max_records) {
            let (Some(&kind), Some(key)) = (k.get(8), k.get(9..)) else {
                self.expiry.delete(&mut w, k)?;
                continue;
            };
            let deleted = match kind {
                KIND_COMMITMENT => self.commitments.delete(&mut w, key)?,
                KIND_USE => self.uses.delete(&mut w, key)?,
                _ => false,
            };
            if deleted && kind == KIND_COMMITMENT {
                out.commitments += 1;
            } else if deleted {
                out.uses += 1;
            }
            self.expiry.delete(&mut w, k)?;
        }
        w.commit()?;
        if out.commitments + out.uses > 0 {
            self.dirty.store(true, Ordering::SeqCst);
        }
        Ok(out)
    }

    /// Live commitment records.
    pub fn commitment_count(&self) -> Result<u64, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.commitments.len(&r)?)
    }

    /// Flushes if a write happened since the last flush.
    pub fn sync_if_dirty(&self) -> Result<(), StoreError> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            self.env.force_sync()?;
        }
        Ok(())
    }

    /// Closes the environment and waits until LMDB released it.
    pub fn close(self) {
        let ClientStore { env, .. } = self;
        env.prepare_for_closing().wait();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::crypto::NodeKey;
    use crate::store::Store;

    fn commitment(created_s: u64) -> TokenCommitment {
        TokenCommitment {
            temp_x: [1; 32],
            temp_y: [2; 32],
            created_s,
            data: "mug00".into(),
            sig: [0; 65],
            revealed_s: 0,
            seq: 0,
        }
    }

    fn use_() -> TokenUse {
        TokenUse {
            commitment: [1; 32],
            temp_x: [2; 32],
            temp_y: [3; 32],
            expires_s: u64::MAX,
        }
    }

    fn open(limits: ClientLimits) -> (tempfile::TempDir, ClientStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ClientStore::open(dir.path(), limits, 1).unwrap();
        (dir, s)
    }

    #[test]
    fn expired_token_commitments_are_pruned() {
        let (_d, s) = open(ClientLimits::default());
        let lifetime = 720;
        // Three commitments at 1,000, 1,100 and 2,000 s; a reveal at 1,050 s.
        for (i, t) in [1_000u64, 1_100, 2_000].into_iter().enumerate() {
            assert_eq!(
                s.insert_commitment(&[i as u8; 32], &commitment(t)).unwrap(),
                None
            );
        }
        assert_eq!(s.insert_use(&[9; 32], &use_(), 1_050).unwrap(), None);
        // At 1,720 s nothing is a lifetime old yet.
        assert_eq!(s.prune(1_720, lifetime, 100).unwrap(), Pruned::default());
        // At 1,800 s the commitment of 1,000 and the reveal of 1,050 are; one record per call.
        let p = s.prune(1_800, lifetime, 1).unwrap();
        assert_eq!((p.commitments, p.uses, p.more), (1, 0, true));
        let p = s.prune(1_800, lifetime, 1).unwrap();
        assert_eq!((p.commitments, p.uses, p.more), (0, 1, false));
        assert_eq!(s.commitment(&[0; 32]).unwrap(), None);
        assert_eq!(s.token_use(&[9; 32]).unwrap(), None);
        // The younger ones stay, with their data.
        assert_eq!(
            s.commitment(&[1; 32]).unwrap().map(|c| c.created_s),
            Some(1_100)
        );
        assert_eq!(
            s.commitment(&[2; 32]).unwrap().map(|c| c.created_s),
            Some(2_000)
        );
        assert_eq!(s.commitment_count().unwrap(), 2);
        // Much later everything is gone, and the order counter still only grows.
        let p = s.prune(100_000, lifetime, 100).unwrap();
        assert_eq!((p.commitments, p.more), (2, false));
        assert_eq!(s.commitment_count().unwrap(), 0);
        s.insert_commitment(&[7; 32], &commitment(100_000)).unwrap();
        assert_eq!(s.commitment(&[7; 32]).unwrap().map(|c| c.seq), Some(4));
    }

    #[test]
    fn live_commitments_are_bounded_and_pruning_makes_room() {
        let (_d, s) = open(ClientLimits {
            max_commitments: 3,
            ..ClientLimits::default()
        });
        for i in 0..3u8 {
            s.insert_commitment(&[i; 32], &commitment(10)).unwrap();
        }
        let e = s.insert_commitment(&[3; 32], &commitment(10)).unwrap_err();
        assert!(matches!(e, StoreError::ClientFull(_)), "{e}");
        // A retry of a stored commitment is still answered.
        assert!(s
            .insert_commitment(&[0; 32], &commitment(10))
            .unwrap()
            .is_some());
        s.prune(10 + 721, 720, 100).unwrap();
        assert_eq!(
            s.insert_commitment(&[3; 32], &commitment(800)).unwrap(),
            None
        );
    }

    #[test]
    fn a_full_client_store_never_fails_a_block_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path(),
            &NodeKey::random(),
            64 << 20,
            ClientLimits {
                map_size: 1 << 20,
                max_commitments: u64::MAX,
            },
        )
        .unwrap();
        // Fill the client environment to its map size.
        let mut stored = 0u32;
        let full = loop {
            let c = format!("{stored:064x}");
            match store.put_token_if_absent("v", &c, &commitment(1)) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 100_000, "a 1 MiB map never filled");
        };
        assert!(matches!(full, StoreError::ClientFull(_)), "{full}");
        assert!(stored > 100, "only {stored} records fit");
        // The consensus environment still commits blocks, large ones included.
        for height in 1..=3u64 {
            let mut writes = BTreeMap::new();
            writes.insert(height.to_be_bytes().to_vec(), Some(vec![7u8; 2 << 20]));
            crate::store::testing::commit_writes(&store, height, writes);
            assert_eq!(store.head().unwrap().height, height);
        }
        // And the client store still refuses clearly (a record may still fit in a page
        // with room left, but no other error appears and the store stays full).
        let mut refused = 0;
        for i in 0..50u32 {
            let c = format!("{:064x}", u64::MAX - u64::from(i));
            match store.put_token_if_absent("v", &c, &commitment(1)) {
                Ok(_) => {}
                Err(StoreError::ClientFull(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(refused > 0);
        // Pruning (at a later time) makes room again.
        store.prune_client_records(10_000, 720, usize::MAX).unwrap();
        assert_eq!(
            store
                .put_token_if_absent("v", &format!("{:064x}", u64::MAX), &commitment(9_999))
                .unwrap(),
            crate::store::TokenInsert::Inserted
        );
    }
}
