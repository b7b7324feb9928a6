//! The replicated state as the app sees it: key layout, read access, the write
//! overlay a block executes on, typed readers, the app hash, and the vote tally
//! shared by every voted transaction family.

use std::collections::BTreeMap;

use crate::codec::Writer;
use crate::hexfmt::keccak256;
use crate::store::records::{self, BatchRecord, Counters, KeyRecord};
use crate::tx::{BatchId, EpochInfo};

/// Replicated-state key prefixes.
pub mod keys {
    /// Genesis epoch.
    pub const GENESIS: &[u8] = b"g";
    /// Current epoch.
    pub const EPOCH: &[u8] = b"ec";
    /// Decided next epoch (hand-over in progress).
    pub const NEXT_EPOCH: &[u8] = b"en";
    /// Counters.
    pub const COUNTERS: &[u8] = b"c";
    /// `b ‖ start` → batch record.
    pub const BATCH: u8 = b'b';
    /// `k ‖ index` → key record.
    pub const KEY: u8 = b'k';
    /// `a ‖ keccak(verifier ‖ 0 ‖ verifier_id)` → key index.
    pub const ASSIGN: u8 = b'a';
    /// `x ‖ pubkey` → key index.
    pub const PUBKEY: u8 = b'x';
    /// `v ‖ kind ‖ round ‖ signer` → voted hash.
    pub const VOTE: u8 = b'v';
    /// `n ‖ kind ‖ round ‖ hash` → vote count.
    pub const COUNT: u8 = b'n';
    /// `p ‖ hash` → proposed value (keys list or epoch).
    pub const PROPOSAL: u8 = b'p';
    /// The batch opened for dealing (at most one at a time).
    pub const OPEN_BATCH: &[u8] = b"ob";
    /// `z ‖ epoch ‖ node` → blame record (a guilty dealer or a false accuser).
    pub const BLAME: u8 = b'z';
    /// The height of the block that opened the open batch (its deadline counts from it).
    pub const OPEN_BATCH_HEIGHT: &[u8] = b"oh";
    /// The last batch consensus cancelled at its deadline (a reopen at its index is smaller).
    pub const CANCELLED_BATCH: &[u8] = b"ox";
    /// `l ‖ round` → every keys hash voted in a `PublicKeys` round (32 bytes each,
    /// at most one per member), so the round's votes, counts and key lists can all
    /// be deleted once it is decided or abandoned.
    pub const ROUND_HASHES: u8 = b'l';
    /// `r ‖ start` → the record of the resharing batch of the created batch at
    /// `start` (during a hand-over; it replaces the batch record at the switch).
    pub const RESHARE: u8 = b'r';

    /// The blame key of `node` in `epoch`.
    pub fn blame(epoch: u64, node: u32) -> Vec<u8> {
        let mut k = Vec::with_capacity(13);
        k.push(BLAME);
        k.extend_from_slice(&epoch.to_be_bytes());
        k.extend_from_slice(&node.to_be_bytes());
        k
    }

    /// `prefix ‖ u64 BE`.
    pub fn with_u64(prefix: u8, v: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(9);
        k.push(prefix);
        k.extend_from_slice(&v.to_be_bytes());
        k
    }
    /// The assignment key of a user: `a ‖ keccak256(verifier ‖ 0 ‖ verifier_id)`
    /// (fixed length, well under LMDB's key size limit).
    pub fn assign(verifier: &str, verifier_id: &str) -> Vec<u8> {
        let mut m = Vec::with_capacity(1 + verifier.len() + verifier_id.len());
        m.extend_from_slice(verifier.as_bytes());
        m.push(0);
        m.extend_from_slice(verifier_id.as_bytes());
        let mut k = Vec::with_capacity(33);
        k.push(ASSIGN);
        k.extend_from_slice(&crate::hexfmt::keccak256(&m));
        k
    }
    /// The public-key index key.
    pub fn pubkey(pk: &[u8; 33]) -> Vec<u8> {
        let mut k = Vec::with_capacity(34);
        k.push(PUBKEY);
        k.extend_from_slice(pk);
        k
    }
}

/// Read access to the committed replicated state.
pub trait KvRead {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError>;
}

impl KvRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        Ok(BTreeMap::get(self, key).cloned())
    }
}

/// A failure that stops block execution (storage), as opposed to a rejected transaction.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AppError {
    /// The store failed or holds a record that does not decode.
    #[error("state storage: {0}")]
    Storage(String),
    /// The state was never initialised.
    #[error("state not initialised (no genesis)")]
    NoGenesis,
}

/// Pending writes over a base state.
pub(crate) struct Overlay<'a, R: KvRead + ?Sized> {
    pub(super) base: &'a R,
    pub(super) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<R: KvRead + ?Sized> KvRead for Overlay<'_, R> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, AppError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}

impl<R: KvRead + ?Sized> Overlay<'_, R> {
    pub(super) fn put(&mut self, key: Vec<u8>, v: Vec<u8>) {
        self.writes.insert(key, Some(v));
    }
    pub(super) fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

pub(super) fn storage<E: std::fmt::Display>(e: E) -> AppError {
    AppError::Storage(e.to_string())
}

/// Reads the current epoch.
pub fn current_epoch(s: &(impl KvRead + ?Sized)) -> Result<EpochInfo, AppError> {
    let b = s.get(keys::EPOCH)?.ok_or(AppError::NoGenesis)?;
    records::decode_epoch(&b).map_err(storage)
}

/// Reads the pending next epoch, if a hand-over was decided.
pub fn next_epoch(s: &(impl KvRead + ?Sized)) -> Result<Option<EpochInfo>, AppError> {
    s.get(keys::NEXT_EPOCH)?
        .map(|b| records::decode_epoch(&b).map_err(storage))
        .transpose()
}

/// Reads the counters.
pub fn counters(s: &(impl KvRead + ?Sized)) -> Result<Counters, AppError> {
    s.get(keys::COUNTERS)?
        .map(|b| Counters::decode(&b).map_err(storage))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Reads a key record.
pub fn key_record(s: &(impl KvRead + ?Sized), index: u64) -> Result<Option<KeyRecord>, AppError> {
    s.get(&keys::with_u64(keys::KEY, index))?
        .map(|b| KeyRecord::decode(&b).map_err(storage))
        .transpose()
}

/// The key index assigned to a user.
pub fn assigned_index(
    s: &(impl KvRead + ?Sized),
    verifier: &str,
    verifier_id: &str,
) -> Result<Option<u64>, AppError> {
    s.get(&keys::assign(verifier, verifier_id))?
        .map(|b| records::decode_u64(&b).map_err(storage))
        .transpose()
}

/// The key index of a user public key.
pub fn index_of_pubkey(s: &(impl KvRead + ?Sized), pk: &[u8; 33]) -> Result<Option<u64>, AppError> {
    s.get(&keys::pubkey(pk))?
        .map(|b| records::decode_u64(&b).map_err(storage))
        .transpose()
}

/// Reads a batch record.
pub fn batch_record(
    s: &(impl KvRead + ?Sized),
    start: u64,
) -> Result<Option<BatchRecord>, AppError> {
    s.get(&keys::with_u64(keys::BATCH, start))?
        .map(|b| BatchRecord::decode(&b).map_err(storage))
        .transpose()
}

/// Reads the record of a resharing batch (by the start of the batch it reshares).
pub fn reshare_record(
    s: &(impl KvRead + ?Sized),
    start: u64,
) -> Result<Option<BatchRecord>, AppError> {
    s.get(&keys::with_u64(keys::RESHARE, start))?
        .map(|b| BatchRecord::decode(&b).map_err(storage))
        .transpose()
}

/// The batch opened for dealing, if any.
pub fn open_batch(s: &(impl KvRead + ?Sized)) -> Result<Option<BatchId>, AppError> {
    s.get(keys::OPEN_BATCH)?
        .map(|b| records::decode_batch_id(&b).map_err(storage))
        .transpose()
}

/// The height at which the open batch was opened (None when no batch is open).
pub fn open_batch_height(s: &(impl KvRead + ?Sized)) -> Result<Option<u64>, AppError> {
    s.get(keys::OPEN_BATCH_HEIGHT)?
        .map(|b| records::decode_u64(&b).map_err(storage))
        .transpose()
}

/// The last batch consensus cancelled at its deadline, if any.
pub fn cancelled_batch(s: &(impl KvRead + ?Sized)) -> Result<Option<BatchId>, AppError> {
    s.get(keys::CANCELLED_BATCH)?
        .map(|b| records::decode_batch_id(&b).map_err(storage))
        .transpose()
}

/// Whether `node` was blamed in `epoch`.
pub fn is_blamed(s: &(impl KvRead + ?Sized), epoch: u64, node: u32) -> Result<bool, AppError> {
    Ok(s.get(&keys::blame(epoch, node))?.is_some())
}

/// The writes that initialise the state from a genesis epoch.
pub fn genesis_writes(genesis: &EpochInfo) -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>, String> {
    genesis.validate()?;
    let mut w = BTreeMap::new();
    let e = records::encode_epoch(genesis);
    w.insert(keys::GENESIS.to_vec(), Some(e.clone()));
    w.insert(keys::EPOCH.to_vec(), Some(e));
    w.insert(keys::COUNTERS.to_vec(), Some(Counters::default().encode()));
    Ok(w)
}

/// The app hash after `height` given the previous one and the block's writes.
pub fn chain_app_hash(
    prev: &[u8; 32],
    height: u64,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> [u8; 32] {
    let mut w = Writer::new();
    for (k, v) in writes {
        w.bytes(k);
        match v {
            Some(v) => w.u8(1).bytes(v),
            None => w.u8(0),
        };
    }
    let ws = keccak256(&w.buf);
    let mut h = Writer::new();
    h.raw(prev).u64(height).raw(&ws);
    keccak256(&h.buf)
}

pub(super) const VOTE_PUBKEYS: u8 = 1;
pub(super) const VOTE_HANDOVER: u8 = 2;
pub(super) const VOTE_RESHARE: u8 = 3;
pub(super) const VOTE_ABORT: u8 = 4;

/// Deletes every vote `signers` cast in a round of `kind` and the counts they
/// made (every count of such a round comes from one of their votes), so that the
/// round can be voted again from zero (an aborted hand-over's epoch).
pub(super) fn clear_vote_round<R: KvRead + ?Sized>(
    st: &mut Overlay<'_, R>,
    kind: u8,
    round: &[u8],
    signers: impl IntoIterator<Item = u32>,
) -> Result<(), AppError> {
    for s in signers {
        let vk = vote_key(keys::VOTE, kind, round, &s.to_be_bytes());
        let Some(hash) = st.get(&vk)? else {
            continue;
        };
        let ck = vote_key(keys::COUNT, kind, round, &hash);
        if st.get(&ck)?.is_some() {
            st.delete(ck);
        }
        st.delete(vk);
    }
    Ok(())
}

fn vote_key(prefix: u8, kind: u8, round: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + round.len() + tail.len());
    k.push(prefix);
    k.push(kind);
    k.extend_from_slice(round);
    k.extend_from_slice(tail);
    k
}

pub(super) fn batch_round(b: &BatchId) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&b.epoch.to_be_bytes());
    r[8..].copy_from_slice(&b.start.to_be_bytes());
    r
}

/// Where a `PublicKeys` round keeps the key list proposed under `hash`:
/// `p ‖ round ‖ hash` (per round, so cleaning one round never touches another's).
pub(super) fn keys_proposal_key(round: &[u8], hash: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + round.len() + 32);
    k.push(keys::PROPOSAL);
    k.extend_from_slice(round);
    k.extend_from_slice(hash);
    k
}

fn round_hashes_key(round: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + round.len());
    k.push(keys::ROUND_HASHES);
    k.extend_from_slice(round);
    k
}

/// Deletes everything a `PublicKeys` round stored: each member's vote, the
/// count and the key list of every hash voted, and the round's hash index.
/// Called when the round is decided (its keys are written as key records) or
/// abandoned (its batch dropped at an epoch change).
pub(super) fn clear_keys_round<R: KvRead + ?Sized>(
    st: &mut Overlay<'_, R>,
    round: &[u8],
    members: impl IntoIterator<Item = u32>,
) -> Result<(), AppError> {
    let idx = round_hashes_key(round);
    if let Some(list) = st.get(&idx)? {
        for h in list.chunks_exact(32) {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(h);
            for key in [
                vote_key(keys::COUNT, VOTE_PUBKEYS, round, &hash),
                keys_proposal_key(round, &hash),
            ] {
                if st.get(&key)?.is_some() {
                    st.delete(key);
                }
            }
        }
        st.delete(idx);
    }
    for m in members {
        let vk = vote_key(keys::VOTE, VOTE_PUBKEYS, round, &m.to_be_bytes());
        if st.get(&vk)?.is_some() {
            st.delete(vk);
        }
    }
    Ok(())
}

/// Records a vote by `signer` for `hash`; returns the new count, or None if the
/// signer already voted in this round.
pub(super) fn vote<R: KvRead + ?Sized>(
    st: &mut Overlay<'_, R>,
    kind: u8,
    round: &[u8],
    signer: u32,
    hash: &[u8; 32],
) -> Result<Option<u64>, AppError> {
    let vk = vote_key(keys::VOTE, kind, round, &signer.to_be_bytes());
    if st.get(&vk)?.is_some() {
        return Ok(None);
    }
    st.put(vk, hash.to_vec());
    let ck = vote_key(keys::COUNT, kind, round, hash);
    let c = match st.get(&ck)? {
        Some(b) => records::decode_u64(&b).map_err(storage)?,
        None => {
            if kind == VOTE_PUBKEYS {
                // First vote for this hash: index it for the round's clean-up
                // (at most one new hash per member, so at most n entries).
                let idx = round_hashes_key(round);
                let mut list = st.get(&idx)?.unwrap_or_default();
                list.extend_from_slice(hash);
                st.put(idx, list);
            }
            0
        }
    } + 1;
    st.put(ck, records::encode_u64(c));
    Ok(Some(c))
}
