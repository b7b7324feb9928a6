//! The node's LMDB store (heed).
//!
//! Databases in one environment under `<data_dir>/lmdb`:
//! * `state`: the replicated consensus state (see [`crate::app::keys`]);
//! * `meta`: the head (height, app hash) and the genesis hash;
//! * `shares`: this node's key shares, encrypted ([`ShareRecord`]);
//! * `tokens`: token commitments and reveals ([`TokenCommitment`]);
//! * `progress`: local DKG/PSS progress per batch;
//! * `keygen`: this node's key generation material per batch: its dealing seed
//!   and its aggregated slice (both sealed like shares), and the decided
//!   dealers' commitments (public), kept to serve peers that recover a batch;
//! * `proposals`: values proposed for heights not decided yet (received, or
//!   built by this node), so that a restarted engine still has the values it
//!   may have voted for or must re-propose;
//! * `blocks`: decided blocks and their commit certificates, for the embedded
//!   engine's value sync (see [`Store::commit_block_with`]).
//!
//! A block's state writes and its head go in one write transaction, so a crash
//! leaves the node at the previous or the next height, never in between.
//!
//! Durability: the environment is opened with `MDB_NOSYNC` and synced
//! explicitly: after every consensus block and every batch of shares (before
//! the call returns), and for token commitments at most [`SYNC_INTERVAL`] later
//! (the RPC server runs [`Store::sync_if_dirty`] on that period). A killed
//! process loses nothing (the OS page cache holds every committed
//! transaction); a power loss can lose at most the last interval of token
//! commitments, which clients then simply make again. Without this, every
//! CommitmentRequest would wait for its own fsync.
//!
//! Shares at rest: `s ‖ s'` is sealed with ChaCha20-Poly1305 under
//! `keccak256("torus-node/share-at-rest/v1" ‖ node secret key)`, with a random
//! 96-bit nonce and the record's key index and epoch as associated data. The
//! LMDB file therefore holds no plaintext share, and a record moved to another
//! index or node does not open.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use ff::PrimeField;
use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, RoTxn, WithoutTls};
use k256::elliptic_curve::rand_core::RngCore;
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::{Zeroize, Zeroizing};

use crate::app::{self, AppError, BlockOutcome, KvRead};
use crate::crypto::NodeKey;
use crate::hexfmt::keccak256;
use crate::records::{Head, ShareRecord, TokenCommitment, TokenUse};
use crate::tx::EpochInfo;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// LMDB failed.
    #[error("lmdb: {0}")]
    Lmdb(#[from] heed::Error),
    /// I/O on the data directory failed.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// A record does not decode.
    #[error("corrupt record {what}: {err}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// Decoder error.
        err: String,
    },
    /// A sealed share does not open (wrong node key or tampered record).
    #[error("share record for key {0} does not decrypt")]
    Seal(u64),
    /// The store was created for another genesis.
    #[error("data directory belongs to another network (genesis hash mismatch)")]
    GenesisMismatch,
    /// The consensus app failed.
    #[error(transparent)]
    App(#[from] AppError),
}

type Db = Database<Bytes, Bytes>;

/// One open LMDB environment. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    env: Env<WithoutTls>,
    state: Db,
    meta: Db,
    shares: Db,
    tokens: Db,
    progress: Db,
    keygen: Db,
    blocks: Db,
    proposals: Db,
    seal_key: std::sync::Arc<Zeroizing<[u8; 32]>>,
    dirty: std::sync::Arc<AtomicBool>,
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

/// Result of recording a token commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInsert {
    /// New commitment stored.
    Inserted,
    /// Already seen; the stored record.
    Existing(TokenCommitment),
}

/// The key of the token commitments' arrival counter (token keys are 32-byte hashes).
const TOKEN_SEQ: &[u8] = b"token-seq";

/// Result of binding a token's first reveal ([`Store::bind_token_use`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUseBinding {
    /// First reveal of this token: bound to the given commitment and temporary key.
    Bound,
    /// Revealed before under the same commitment and temporary key (a client's retry).
    Same,
    /// Revealed before under another encoding or temporary key: the stored binding.
    Conflict(TokenUse),
}

/// The key of a token-use record: its own domain inside the `tokens` database. Not scoped by
/// verifier name: one signed token is one token under every name that would accept it.
fn token_use_key(token_id: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(42);
    m.extend_from_slice(b"token-use\0");
    m.extend_from_slice(token_id);
    keccak256(&m).to_vec()
}

fn token_key(verifier: &str, commitment: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(verifier.len() + commitment.len() + 1);
    m.extend_from_slice(verifier.as_bytes());
    m.push(0);
    m.extend_from_slice(commitment.as_bytes());
    keccak256(&m).to_vec()
}

impl Store {
    /// Opens (creating if needed) the store in `dir/lmdb`.
    pub fn open(dir: &Path, node_key: &NodeKey, map_size: usize) -> Result<Self, StoreError> {
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
        Ok(Store {
            env,
            state,
            meta,
            shares,
            tokens,
            progress,
            keygen,
            blocks,
            proposals,
            seal_key: std::sync::Arc::new(node_key.derive("torus-node/share-at-rest/v1")),
            dirty: std::sync::Arc::new(AtomicBool::new(false)),
        })
    }

    /// Flushes LMDB to disk now.
    pub fn sync(&self) -> Result<(), StoreError> {
        self.dirty.store(false, Ordering::SeqCst);
        self.env.force_sync()?;
        Ok(())
    }

    /// Flushes if a token write happened since the last flush.
    pub fn sync_if_dirty(&self) -> Result<(), StoreError> {
        if self.dirty.swap(false, Ordering::SeqCst) {
            self.env.force_sync()?;
        }
        Ok(())
    }

    /// Closes the environment and waits until LMDB released it (so the same
    /// directory can be reopened in this process, as a restart does).
    pub fn close(self) {
        let Store { env, .. } = self;
        env.prepare_for_closing().wait();
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

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&**self.seal_key).into())
    }

    /// Stores this node's shares of keys `start..start+shares.keys()` (one transaction).
    pub fn put_shares(
        &self,
        epoch: u64,
        start: u64,
        shares: &torus_engine::dkg::KeyShares<torus_engine::Secp256k1>,
    ) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        self.put_shares_in(&mut w, epoch, start, shares)?;
        w.commit()?;
        Ok(())
    }

    fn put_shares_in(
        &self,
        w: &mut heed::RwTxn<'_>,
        epoch: u64,
        start: u64,
        shares: &torus_engine::dkg::KeyShares<torus_engine::Secp256k1>,
    ) -> Result<(), StoreError> {
        use torus_engine::Suite;
        let cipher = self.cipher();
        let mut rng = rand_core::OsRng;
        for key in 0..shares.keys() {
            let Some((s, sp)) = shares.share(key) else {
                continue;
            };
            let index = start + key as u64;
            let mut plain = Zeroizing::new([0u8; 64]);
            plain[..32].copy_from_slice(&s.to_repr());
            plain[32..].copy_from_slice(&sp.to_repr());
            let mut nonce = [0u8; 12];
            rng.fill_bytes(&mut nonce);
            let aad = share_aad(index, epoch);
            let sealed = cipher
                .encrypt(
                    (&nonce).into(),
                    Payload {
                        msg: &plain[..],
                        aad: &aad,
                    },
                )
                .map_err(|_| StoreError::Seal(index))?;
            let commitments = shares
                .commitment_vector(key)
                .iter()
                .map(|a| {
                    let mut out = Vec::with_capacity(33);
                    torus_engine::Secp256k1::encode_point(a, &mut out);
                    let mut c = [0u8; 33];
                    c.copy_from_slice(out.get(..33).unwrap_or(&[0u8; 33]));
                    c
                })
                .collect();
            let rec = ShareRecord {
                index,
                epoch,
                nonce,
                sealed,
                commitments,
            };
            self.shares.put(w, &index.to_be_bytes(), &rec.encode())?;
        }
        Ok(())
    }

    /// This node's share of key `index`: `(s, s', commitment vector)`, decrypted.
    #[allow(clippy::type_complexity)]
    pub fn share(
        &self,
        index: u64,
    ) -> Result<Option<(Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>, ShareRecord)>, StoreError> {
        let r = self.env.read_txn()?;
        let Some(b) = self.shares.get(&r, &index.to_be_bytes())? else {
            return Ok(None);
        };
        let rec = ShareRecord::decode(b).map_err(|e| StoreError::Corrupt {
            what: "share",
            err: e.to_string(),
        })?;
        if rec.index != index {
            return Err(StoreError::Seal(index));
        }
        let aad = share_aad(index, rec.epoch);
        let mut plain = self
            .cipher()
            .decrypt(
                (&rec.nonce).into(),
                Payload {
                    msg: &rec.sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Seal(index))?;
        let mut s = Zeroizing::new([0u8; 32]);
        let mut sp = Zeroizing::new([0u8; 32]);
        if plain.len() != 64 {
            plain.zeroize();
            return Err(StoreError::Seal(index));
        }
        s.copy_from_slice(&plain[..32]);
        sp.copy_from_slice(&plain[32..]);
        plain.zeroize();
        Ok(Some((s, sp, rec)))
    }

    /// Number of share records held.
    pub fn share_count(&self) -> Result<u64, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.shares.len(&r)?)
    }

    /// Records a token commitment unless one exists for (verifier, commitment);
    /// atomic (one write transaction).
    pub fn put_token_if_absent(
        &self,
        verifier: &str,
        commitment: &str,
        rec: &TokenCommitment,
    ) -> Result<TokenInsert, StoreError> {
        let key = token_key(verifier, commitment);
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.tokens.get(&w, &key)? {
            // A record of an older format (no arrival order) is replaced below.
            if let Ok(old) = TokenCommitment::decode(b) {
                return Ok(TokenInsert::Existing(old));
            }
        }
        // Arrival order: the write transactions are serialised, so the counter read and
        // written here orders every commitment this node stores.
        let seq = match self.tokens.get(&w, TOKEN_SEQ)? {
            Some(b) => crate::records::decode_u64(b).map_err(|e| StoreError::Corrupt {
                what: "token sequence",
                err: e.to_string(),
            })?,
            None => 0,
        } + 1;
        self.tokens
            .put(&mut w, TOKEN_SEQ, &crate::records::encode_u64(seq))?;
        let mut rec = rec.clone();
        rec.seq = seq;
        self.tokens.put(&mut w, &key, &rec.encode())?;
        w.commit()?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(TokenInsert::Inserted)
    }

    /// The token commitment for (verifier, commitment).
    pub fn token(
        &self,
        verifier: &str,
        commitment: &str,
    ) -> Result<Option<TokenCommitment>, StoreError> {
        let r = self.env.read_txn()?;
        self.tokens
            .get(&r, &token_key(verifier, commitment))?
            .map(|b| {
                TokenCommitment::decode(b).map_err(|e| StoreError::Corrupt {
                    what: "token",
                    err: e.to_string(),
                })
            })
            .transpose()
    }

    /// Binds the first reveal of the signed token `token_id` (under any verifier name) to
    /// `use_`'s commitment and temporary key, or reports the earlier binding; atomic (one write
    /// transaction), so two concurrent reveals of one token cannot both be bound.
    pub fn bind_token_use(
        &self,
        token_id: &[u8; 32],
        use_: &TokenUse,
    ) -> Result<TokenUseBinding, StoreError> {
        let key = token_use_key(token_id);
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.tokens.get(&w, &key)? {
            let old = TokenUse::decode(b).map_err(|e| StoreError::Corrupt {
                what: "token use",
                err: e.to_string(),
            })?;
            let same = old.commitment == use_.commitment
                && old.temp_x == use_.temp_x
                && old.temp_y == use_.temp_y;
            return Ok(if same {
                TokenUseBinding::Same
            } else {
                TokenUseBinding::Conflict(old)
            });
        }
        self.tokens.put(&mut w, &key, &use_.encode())?;
        w.commit()?;
        // Durable like token commitments: a killed process loses nothing, a power loss at most
        // the last SYNC_INTERVAL (and the commitment order below still guards the token).
        self.dirty.store(true, Ordering::SeqCst);
        Ok(TokenUseBinding::Bound)
    }

    /// Marks a token as revealed (first successful ShareRequest) if not already.
    pub fn mark_revealed(
        &self,
        verifier: &str,
        commitment: &str,
        now_s: u64,
    ) -> Result<(), StoreError> {
        let key = token_key(verifier, commitment);
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.tokens.get(&w, &key)? {
            let mut rec = TokenCommitment::decode(b).map_err(|e| StoreError::Corrupt {
                what: "token",
                err: e.to_string(),
            })?;
            if rec.revealed_s == 0 {
                rec.revealed_s = now_s.max(1);
                self.tokens.put(&mut w, &key, &rec.encode())?;
                w.commit()?;
                self.dirty.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    /// Records the local progress of a batch (`phase` is a short label).
    pub fn set_progress(&self, start: u64, count: u32, phase: &str) -> Result<(), StoreError> {
        let mut w = self.env.write_txn()?;
        let mut v = Vec::with_capacity(4 + phase.len());
        v.extend_from_slice(&count.to_be_bytes());
        v.extend_from_slice(phase.as_bytes());
        self.progress.put(&mut w, &start.to_be_bytes(), &v)?;
        w.commit()?;
        Ok(())
    }

    /// Every batch's local progress: `(start, count, phase)`.
    pub fn progress(&self) -> Result<Vec<(u64, u32, String)>, StoreError> {
        let r = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.progress.iter(&r)? {
            let (k, v) = item?;
            let (Ok(kb), Some((cb, phase))) = (<[u8; 8]>::try_from(k), v.split_first_chunk::<4>())
            else {
                continue;
            };
            out.push((
                u64::from_be_bytes(kb),
                u32::from_be_bytes(*cb),
                String::from_utf8_lossy(phase).into_owned(),
            ));
        }
        Ok(out)
    }
}

// --- undecided proposals (the `proposals` database) ---

use std::ops::Bound;

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

// --- key generation material (the `keygen` database) ---

const KG_SEED: u8 = b's';
const KG_SLICE: u8 = b'a';
const KG_COMMITMENTS: u8 = b'c';

fn kg_key(tag: u8, start: u64, dealer: Option<u32>) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(tag);
    k.extend_from_slice(&start.to_be_bytes());
    if let Some(d) = dealer {
        k.extend_from_slice(&d.to_be_bytes());
    }
    k
}

impl Store {
    /// Seals `plain` under the node's at-rest key: `nonce ‖ ciphertext`.
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; 12];
        rand_core::OsRng.fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        let c = self
            .cipher()
            .encrypt((&nonce).into(), Payload { msg: plain, aad })
            .map_err(|_| StoreError::Corrupt {
                what: "sealed record",
                err: "encryption failed".into(),
            })?;
        out.extend_from_slice(&c);
        Ok(out)
    }

    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let corrupt = || StoreError::Corrupt {
            what: "sealed record",
            err: "does not decrypt".into(),
        };
        let (nonce, c) = sealed.split_first_chunk::<12>().ok_or_else(corrupt)?;
        self.cipher()
            .decrypt(nonce.into(), Payload { msg: c, aad })
            .map(Zeroizing::new)
            .map_err(|_| corrupt())
    }

    /// Stores the seed this node deals batch `start` with (sealed, synced), so
    /// that a restart re-derives the identical dealing instead of equivocating.
    pub fn put_dealing_seed(&self, start: u64, seed: &[u8; 32]) -> Result<(), StoreError> {
        let key = kg_key(KG_SEED, start, None);
        let sealed = self.seal(&key, seed)?;
        let mut w = self.env.write_txn()?;
        self.keygen.put(&mut w, &key, &sealed)?;
        w.commit()?;
        self.sync()
    }

    /// The dealing seed of batch `start`, if this node dealt it.
    pub fn dealing_seed(&self, start: u64) -> Result<Option<Zeroizing<[u8; 32]>>, StoreError> {
        let key = kg_key(KG_SEED, start, None);
        let r = self.env.read_txn()?;
        let Some(b) = self.keygen.get(&r, &key)? else {
            return Ok(None);
        };
        let plain = self.unseal(&key, b)?;
        let mut out = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(StoreError::Corrupt {
                what: "dealing seed",
                err: format!("{} bytes", plain.len()),
            });
        }
        out.copy_from_slice(&plain);
        Ok(Some(out))
    }

    /// Stores a finished batch in one transaction: this node's shares, its
    /// aggregated slice over the decided dealers (sealed; it answers peers'
    /// recovery requests) and the decided dealers' commitments. Synced.
    pub fn put_batch_result(
        &self,
        epoch: u64,
        start: u64,
        shares: &torus_engine::dkg::KeyShares<torus_engine::Secp256k1>,
        aggregated_slice: &[u8],
        commitments: &[(u32, &[u8])],
    ) -> Result<(), StoreError> {
        let skey = kg_key(KG_SLICE, start, None);
        let sealed = self.seal(&skey, aggregated_slice)?;
        let mut w = self.env.write_txn()?;
        self.put_shares_in(&mut w, epoch, start, shares)?;
        self.keygen.put(&mut w, &skey, &sealed)?;
        for (dealer, c) in commitments {
            self.keygen
                .put(&mut w, &kg_key(KG_COMMITMENTS, start, Some(*dealer)), c)?;
        }
        w.commit()?;
        self.sync()
    }

    /// This node's aggregated slice of batch `start` (engine encoding), if stored.
    pub fn aggregated_slice(&self, start: u64) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let key = kg_key(KG_SLICE, start, None);
        let r = self.env.read_txn()?;
        match self.keygen.get(&r, &key)? {
            Some(b) => self.unseal(&key, b).map(Some),
            None => Ok(None),
        }
    }

    /// A decided dealer's commitments of batch `start` (engine encoding), if stored.
    pub fn dealer_commitments(
        &self,
        start: u64,
        dealer: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self
            .keygen
            .get(&r, &kg_key(KG_COMMITMENTS, start, Some(dealer)))?
            .map(<[u8]>::to_vec))
    }

    /// The app hash after `height`, if this node committed that height.
    pub fn app_hash_at(&self, height: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self
            .meta
            .get(&r, &app_hash_key(height))?
            .and_then(|b| <[u8; 32]>::try_from(b).ok()))
    }

    /// Whether this node holds a share of key `index`.
    pub fn has_share(&self, index: u64) -> Result<bool, StoreError> {
        let r = self.env.read_txn()?;
        Ok(self.shares.get(&r, &index.to_be_bytes())?.is_some())
    }
}

// --- end key generation material ---

/// `meta` key of the app hash after a height (the head is stored separately).
fn app_hash_key(height: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'h';
    k[1..].copy_from_slice(&height.to_be_bytes());
    k
}

fn share_aad(index: u64, epoch: u64) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&index.to_be_bytes());
    a[8..].copy_from_slice(&epoch.to_be_bytes());
    a
}

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
    fn encode(&self) -> Vec<u8> {
        let mut w = crate::codec::Writer::new();
        w.u8(DECIDED_VERSION)
            .bytes(&self.value)
            .bytes(&self.certificate);
        w.finish()
    }

    fn decode(b: &[u8]) -> Result<Self, crate::codec::CodecError> {
        let mut r = crate::codec::Reader::new(b);
        r.version("decided block", DECIDED_VERSION)?;
        let value = r.bytes("decided value", u64::from(u32::MAX))?.to_vec();
        let certificate = r.bytes("certificate", u64::from(u32::MAX))?.to_vec();
        r.end()?;
        Ok(DecidedRecord { value, certificate })
    }
}

impl Store {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s =
            Store::open(dir.path(), &NodeKey::random(), 64 << 20).unwrap_or_else(|e| panic!("{e}"));
        (dir, s)
    }

    fn commitment(t: u8) -> TokenCommitment {
        TokenCommitment {
            temp_x: [t; 32],
            temp_y: [t; 32],
            created_s: 1_700_000_000,
            data: "mug00".into(),
            sig: [0; 65],
            revealed_s: 0,
            seq: 0,
        }
    }

    #[test]
    fn token_commitments_are_ordered_by_arrival_even_within_one_second() {
        let (_d, s) = store();
        for (i, c) in ["aa", "bb", "cc"].iter().enumerate() {
            assert_eq!(
                s.put_token_if_absent("v", c, &commitment(1)).ok(),
                Some(TokenInsert::Inserted)
            );
            let got = s.token("v", c).ok().flatten().map(|r| r.seq);
            assert_eq!(got, Some(i as u64 + 1));
        }
        // A repeat keeps its first arrival.
        match s.put_token_if_absent("v", "aa", &commitment(2)) {
            Ok(TokenInsert::Existing(old)) => assert_eq!((old.seq, old.temp_x), (1, [1; 32])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_use_binds_once_and_answers_only_the_same_reveal() {
        let (_d, s) = store();
        let first = TokenUse {
            commitment: [1; 32],
            temp_x: [2; 32],
            temp_y: [3; 32],
            expires_s: 10,
        };
        let id = [9; 32];
        assert_eq!(
            s.bind_token_use(&id, &first).ok(),
            Some(TokenUseBinding::Bound)
        );
        assert_eq!(
            s.bind_token_use(&id, &first).ok(),
            Some(TokenUseBinding::Same)
        );
        let other_key = TokenUse {
            temp_x: [4; 32],
            ..first.clone()
        };
        let other_encoding = TokenUse {
            commitment: [5; 32],
            ..first.clone()
        };
        for attempt in [other_key, other_encoding] {
            assert_eq!(
                s.bind_token_use(&id, &attempt).ok(),
                Some(TokenUseBinding::Conflict(first.clone()))
            );
        }
        // Another token binds on its own.
        assert_eq!(
            s.bind_token_use(&[8; 32], &first).ok(),
            Some(TokenUseBinding::Bound)
        );
    }
}
