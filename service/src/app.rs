//! The consensus state machine ("the app"), independent of the engine that
//! orders its transactions (malachite embedded, or CometBFT over ABCI).
//!
//! Execution is deterministic: it reads only the replicated state (through
//! [`KvRead`]) and the ordered transactions, and produces a write set. The
//! caller persists a block's write set, height and app hash in one LMDB
//! transaction ([`crate::store::Store::commit_block`]).
//!
//! App hash: `keccak256(prev_app_hash ‖ height ‖ keccak256(write set))`, where
//! the write set is encoded in key order (key, then value or a tombstone). The
//! state is the fold of all write sets, so equal app hashes at a height mean
//! equal histories and equal states; a node that diverges is detected at the
//! next block.

use std::collections::BTreeMap;

use crate::codec::Writer;
use crate::crypto::NodePub;
use crate::hexfmt::keccak256;
use crate::records::{self, BatchRecord, Counters, KeyRecord};
use crate::tx::{keys_hash, ready_digest, BatchId, EpochInfo, SignedTx, TxBody};

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

/// Result codes of a transaction (ABCI `code`; 0 = OK).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TxCode {
    /// Executed.
    Ok = 0,
    /// Bytes do not decode.
    Decode = 1,
    /// Signer unknown or signature invalid.
    Unauthorized = 2,
    /// Well-formed but not valid in this state.
    Invalid = 3,
    /// Already decided or already voted (a harmless replay).
    Duplicate = 4,
    /// No free key to assign.
    NoFreeKeys = 5,
    /// Key assignment frozen during an epoch hand-over.
    Frozen = 6,
}

/// The outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// Code.
    pub code: TxCode,
    /// Human-readable reason (deterministic).
    pub log: String,
    /// Events for subscribers.
    pub events: Vec<Event>,
}

impl TxOutcome {
    fn ok(events: Vec<Event>) -> Self {
        TxOutcome {
            code: TxCode::Ok,
            log: String::new(),
            events,
        }
    }
    fn err(code: TxCode, log: impl Into<String>) -> Self {
        TxOutcome {
            code,
            log: log.into(),
            events: Vec::new(),
        }
    }
}

/// Something a committed block did that the node or a client waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A dealer set was decided.
    DealerSet {
        /// Batch.
        batch: BatchId,
        /// Dealers.
        dealers: Vec<u32>,
    },
    /// A batch's public keys were decided.
    PublicKeys {
        /// Batch.
        batch: BatchId,
    },
    /// A key belongs to a user (new or existing assignment).
    KeyAssigned {
        /// Key index.
        index: u64,
        /// Whether this transaction created the assignment.
        new: bool,
    },
    /// Hand-over to the next epoch decided; assignment frozen.
    HandoverDecided {
        /// Next epoch.
        epoch: u64,
    },
    /// The next epoch became current.
    EpochChanged {
        /// New current epoch.
        epoch: u64,
    },
    /// A batch was opened for dealing.
    BatchOpened {
        /// Batch.
        batch: BatchId,
    },
    /// A node was blamed (a dealer with valid evidence against it, or an accuser
    /// whose complaint the evidence refuted).
    Blamed {
        /// Batch of the complaint.
        batch: BatchId,
        /// The blamed node.
        node: u32,
        /// Whether it was blamed as a dealer (else as a false accuser).
        as_dealer: bool,
        /// The evidence's verdict.
        reason: String,
    },
}

/// A block's effect: per-transaction outcomes, writes, and the app hash after it.
#[derive(Clone, Debug)]
pub struct BlockOutcome {
    /// Height.
    pub height: u64,
    /// One outcome per transaction, in order.
    pub results: Vec<TxOutcome>,
    /// Writes (None = delete), in key order.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// App hash after the block.
    pub app_hash: [u8; 32],
}

/// Pending writes over a base state.
struct Overlay<'a, R: KvRead + ?Sized> {
    base: &'a R,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
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
    fn put(&mut self, key: Vec<u8>, v: Vec<u8>) {
        self.writes.insert(key, Some(v));
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

fn storage<E: std::fmt::Display>(e: E) -> AppError {
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

/// The batch opened for dealing, if any.
pub fn open_batch(s: &(impl KvRead + ?Sized)) -> Result<Option<BatchId>, AppError> {
    s.get(keys::OPEN_BATCH)?
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

const VOTE_PUBKEYS: u8 = 1;
const VOTE_HANDOVER: u8 = 2;
const VOTE_RESHARE: u8 = 3;

fn vote_key(prefix: u8, kind: u8, round: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + round.len() + tail.len());
    k.push(prefix);
    k.push(kind);
    k.extend_from_slice(round);
    k.extend_from_slice(tail);
    k
}

fn batch_round(b: &BatchId) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&b.epoch.to_be_bytes());
    r[8..].copy_from_slice(&b.start.to_be_bytes());
    r
}

fn proposal_key(hash: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(keys::PROPOSAL);
    k.extend_from_slice(hash);
    k
}

/// Records a vote by `signer` for `hash`; returns the new count, or None if the
/// signer already voted in this round.
fn vote<R: KvRead + ?Sized>(
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
        None => 0,
    } + 1;
    st.put(ck, records::encode_u64(c));
    Ok(Some(c))
}

/// Limits on user ids (verifier names may not contain NUL: it separates the
/// assignment key).
fn check_user(verifier: &str, verifier_id: &str) -> Result<(), String> {
    if verifier.is_empty() || verifier_id.is_empty() {
        return Err("empty verifier or verifier_id".into());
    }
    if verifier.contains('\0') {
        return Err("verifier contains NUL".into());
    }
    Ok(())
}

/// The state machine. Stateless itself: everything lives in the store.
#[derive(Clone, Debug, Default)]
pub struct App;

impl App {
    /// Authenticates a transaction: decodes it, and checks that its signer is a
    /// member of the epoch it names (current, or next for resharing votes) and
    /// that the signature verifies.
    pub fn authenticate(
        &self,
        state: &(impl KvRead + ?Sized),
        bytes: &[u8],
    ) -> Result<SignedTx, TxOutcome> {
        let tx = SignedTx::decode(bytes)
            .map_err(|e| TxOutcome::err(TxCode::Decode, format!("decode: {e}")))?;
        let cur =
            current_epoch(state).map_err(|e| TxOutcome::err(TxCode::Invalid, e.to_string()))?;
        let committee = if tx.epoch == cur.epoch {
            Some(cur)
        } else if matches!(tx.body, TxBody::ReshareComplete { .. }) {
            next_epoch(state)
                .map_err(|e| TxOutcome::err(TxCode::Invalid, e.to_string()))?
                .filter(|e| e.epoch == tx.epoch)
        } else {
            None
        };
        let committee = committee.ok_or_else(|| {
            TxOutcome::err(
                TxCode::Unauthorized,
                format!("epoch {} is not an active committee", tx.epoch),
            )
        })?;
        let node = committee.node(tx.signer).ok_or_else(|| {
            TxOutcome::err(
                TxCode::Unauthorized,
                format!("unknown signer {}", tx.signer),
            )
        })?;
        let pk = NodePub::from_sec1(&node.pubkey)
            .map_err(|_| TxOutcome::err(TxCode::Unauthorized, "bad signer key"))?;
        pk.verify_prehash(&tx.signing_digest(), &tx.sig)
            .map_err(|_| TxOutcome::err(TxCode::Unauthorized, "bad signature"))?;
        Ok(tx)
    }

    /// CheckTx: authenticate and validate against the committed state without writing.
    pub fn check_tx(&self, state: &(impl KvRead + ?Sized), bytes: &[u8]) -> TxOutcome {
        let tx = match self.authenticate(state, bytes) {
            Ok(tx) => tx,
            Err(o) => return o,
        };
        let mut ov = Overlay {
            base: state,
            writes: BTreeMap::new(),
        };
        match self.execute(&mut ov, &tx) {
            Ok(o) => o,
            Err(e) => TxOutcome::err(TxCode::Invalid, e.to_string()),
        }
    }

    /// Executes a block of ordered transactions on top of `state` (the state
    /// after `height - 1`, whose app hash is `prev_hash`).
    pub fn finalize_block(
        &self,
        state: &(impl KvRead + ?Sized),
        height: u64,
        prev_hash: &[u8; 32],
        txs: &[Vec<u8>],
    ) -> Result<BlockOutcome, AppError> {
        let mut ov = Overlay {
            base: state,
            writes: BTreeMap::new(),
        };
        let mut results = Vec::with_capacity(txs.len());
        for bytes in txs {
            let tx = match self.authenticate(&ov, bytes) {
                Ok(tx) => tx,
                Err(o) => {
                    results.push(o);
                    continue;
                }
            };
            // Execute on a nested overlay so a rejected tx leaves no writes.
            let mut inner = Overlay {
                base: &ov,
                writes: BTreeMap::new(),
            };
            let out = self.execute(&mut inner, &tx)?;
            let writes = std::mem::take(&mut inner.writes);
            drop(inner);
            if out.code == TxCode::Ok {
                ov.writes.extend(writes);
            }
            results.push(out);
        }
        let app_hash = chain_app_hash(prev_hash, height, &ov.writes);
        Ok(BlockOutcome {
            height,
            results,
            writes: ov.writes,
            app_hash,
        })
    }

    fn execute<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        tx: &SignedTx,
    ) -> Result<TxOutcome, AppError> {
        match &tx.body {
            TxBody::DealerSet { batch, dealers } => self.dealer_set(st, batch, dealers),
            TxBody::PublicKeys {
                batch,
                keys_hash: h,
                keys,
            } => self.public_keys(st, tx.signer, batch, h, keys),
            TxBody::KeyAssign {
                verifier,
                verifier_id,
            } => self.key_assign(st, verifier, verifier_id),
            TxBody::EpochHandover { next } => self.handover(st, tx.signer, next),
            TxBody::ReshareComplete { epoch, keys } => {
                self.reshare_complete(st, tx.signer, *epoch, *keys)
            }
            TxBody::OpenBatch { batch } => self.open_batch(st, batch),
            TxBody::Complaint {
                batch,
                dealer,
                evidence,
            } => self.complaint(st, tx.signer, batch, *dealer, evidence),
        }
    }

    fn open_batch<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        batch: &BatchId,
    ) -> Result<TxOutcome, AppError> {
        let cur = current_epoch(st)?;
        let c = counters(st)?;
        if let Some(open) = open_batch(st)? {
            let code = if open == *batch {
                TxCode::Duplicate
            } else {
                TxCode::Invalid
            };
            return Ok(TxOutcome::err(
                code,
                format!("batch {}..{} is already open", open.start, open.end()),
            ));
        }
        if c.frozen {
            return Ok(TxOutcome::err(
                TxCode::Frozen,
                "epoch hand-over in progress",
            ));
        }
        if batch.epoch != cur.epoch {
            return Ok(TxOutcome::err(TxCode::Invalid, "batch of another epoch"));
        }
        if batch.start != c.next_batch_start {
            let code = if batch.start < c.next_batch_start {
                TxCode::Duplicate
            } else {
                TxCode::Invalid
            };
            return Ok(TxOutcome::err(
                code,
                format!("batch must start at {}", c.next_batch_start),
            ));
        }
        st.put(keys::OPEN_BATCH.to_vec(), records::encode_batch_id(batch));
        Ok(TxOutcome::ok(vec![Event::BatchOpened { batch: *batch }]))
    }

    fn complaint<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        accuser: u32,
        batch: &BatchId,
        dealer: u32,
        evidence: &crate::tx::Evidence,
    ) -> Result<TxOutcome, AppError> {
        let cur = current_epoch(st)?;
        if batch.epoch != cur.epoch {
            return Ok(TxOutcome::err(TxCode::Invalid, "batch of another epoch"));
        }
        if dealer == accuser {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "a node cannot accuse itself",
            ));
        }
        let verdict = match crate::evidence::check(&cur, batch, dealer, accuser, evidence) {
            Ok(v) => v,
            Err(e) => {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    format!("evidence proves nothing: {e}"),
                ))
            }
        };
        let (node, as_dealer, reason) = match verdict {
            crate::evidence::Verdict::DealerGuilty(r) => (dealer, true, r),
            crate::evidence::Verdict::FalseComplaint(r) => (accuser, false, r),
        };
        let key = keys::blame(cur.epoch, node);
        if st.get(&key)?.is_some() {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already blamed"));
        }
        let mut w = Writer::new();
        w.u8(1)
            .u8(u8::from(as_dealer))
            .u64(batch.start)
            .str(evidence.kind());
        st.put(key, w.finish());
        Ok(TxOutcome::ok(vec![Event::Blamed {
            batch: *batch,
            node,
            as_dealer,
            reason,
        }]))
    }

    fn dealer_set<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        batch: &BatchId,
        dealers: &[crate::tx::DealerEvidence],
    ) -> Result<TxOutcome, AppError> {
        let cur = current_epoch(st)?;
        let mut c = counters(st)?;
        if batch_record(st, batch.start)?.is_some() {
            return Ok(TxOutcome::err(TxCode::Duplicate, "batch already decided"));
        }
        if batch.epoch != cur.epoch {
            return Ok(TxOutcome::err(TxCode::Invalid, "batch of another epoch"));
        }
        if c.frozen {
            return Ok(TxOutcome::err(
                TxCode::Frozen,
                "epoch hand-over in progress",
            ));
        }
        if open_batch(st)? != Some(*batch) {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "batch is not the open batch",
            ));
        }
        let need_dealers = cur.k as usize;
        let need_readies = (cur.k + cur.t) as usize;
        if dealers.len() < need_dealers {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                format!("{} dealers, need {need_dealers}", dealers.len()),
            ));
        }
        let mut prev = 0u32;
        for d in dealers {
            if d.dealer <= prev || cur.node(d.dealer).is_none() {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    format!("dealer {} out of order or unknown", d.dealer),
                ));
            }
            prev = d.dealer;
            if is_blamed(st, cur.epoch, d.dealer)? {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    format!("dealer {} is blamed in this epoch", d.dealer),
                ));
            }
            let digest = ready_digest(batch, d.dealer, &d.commitments);
            let mut signers = std::collections::BTreeSet::new();
            for r in &d.readies {
                let Some(node) = cur.node(r.signer) else {
                    continue;
                };
                let Ok(pk) = NodePub::from_sec1(&node.pubkey) else {
                    continue;
                };
                if pk.verify_prehash(&digest, &r.sig).is_ok() {
                    signers.insert(r.signer);
                }
            }
            if signers.len() < need_readies {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    format!(
                        "dealer {}: {} valid ready signatures, need {need_readies}",
                        d.dealer,
                        signers.len()
                    ),
                ));
            }
        }
        let rec = BatchRecord {
            batch: *batch,
            dealers: dealers.iter().map(|d| (d.dealer, d.commitments)).collect(),
            keys_hash: None,
        };
        st.put(keys::with_u64(keys::BATCH, batch.start), rec.encode());
        st.delete(keys::OPEN_BATCH.to_vec());
        c.next_batch_start = batch.end();
        st.put(keys::COUNTERS.to_vec(), c.encode());
        Ok(TxOutcome::ok(vec![Event::DealerSet {
            batch: *batch,
            dealers: dealers.iter().map(|d| d.dealer).collect(),
        }]))
    }

    fn public_keys<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        signer: u32,
        batch: &BatchId,
        h: &[u8; 32],
        list: &[[u8; 33]],
    ) -> Result<TxOutcome, AppError> {
        let cur = current_epoch(st)?;
        let Some(mut rec) = batch_record(st, batch.start)? else {
            return Ok(TxOutcome::err(TxCode::Invalid, "no dealer set for batch"));
        };
        if rec.batch != *batch {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "batch does not match its dealer set",
            ));
        }
        if rec.keys_hash.is_some() {
            return Ok(TxOutcome::err(
                TxCode::Duplicate,
                "public keys already decided",
            ));
        }
        let pkey = proposal_key(h);
        let stored = st.get(&pkey)?.is_some();
        if !list.is_empty() {
            if list.len() != batch.count as usize || keys_hash(list) != *h {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    "keys do not match their hash",
                ));
            }
            // A list already stored under this hash was checked when it arrived
            // (each key decompressed: ~10 us, so 2,000 keys per vote add up).
            if !stored && list.iter().any(|k| NodePub::from_sec1(k).is_err()) {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    "invalid public key in batch",
                ));
            }
        }
        let Some(count) = vote(st, VOTE_PUBKEYS, &batch_round(batch), signer, h)? else {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already voted"));
        };
        if !list.is_empty() && !stored {
            st.put(pkey.clone(), records::encode_keys(list));
        }
        if count < u64::from(cur.k) {
            return Ok(TxOutcome::ok(Vec::new()));
        }
        let Some(kb) = st.get(&pkey)? else {
            // Decided by count but nobody sent the list yet: the next vote with keys decides.
            return Ok(TxOutcome::ok(Vec::new()));
        };
        let list = records::decode_keys(&kb).map_err(storage)?;
        for (i, pk) in list.iter().enumerate() {
            let index = batch.start + i as u64;
            let kr = KeyRecord {
                index,
                pubkey: *pk,
                owner: None,
            };
            st.put(keys::with_u64(keys::KEY, index), kr.encode());
            st.put(keys::pubkey(pk), records::encode_u64(index));
        }
        st.delete(pkey);
        rec.keys_hash = Some(*h);
        st.put(keys::with_u64(keys::BATCH, batch.start), rec.encode());
        // Advance the created counter over every contiguous decided batch.
        let mut c = counters(st)?;
        while let Some(b) = batch_record(st, c.last_created)? {
            if b.keys_hash.is_none() {
                break;
            }
            c.last_created = b.batch.end();
        }
        st.put(keys::COUNTERS.to_vec(), c.encode());
        Ok(TxOutcome::ok(vec![Event::PublicKeys { batch: *batch }]))
    }

    fn key_assign<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        verifier: &str,
        verifier_id: &str,
    ) -> Result<TxOutcome, AppError> {
        if let Err(e) = check_user(verifier, verifier_id) {
            return Ok(TxOutcome::err(TxCode::Invalid, e));
        }
        if let Some(index) = assigned_index(st, verifier, verifier_id)? {
            return Ok(TxOutcome::ok(vec![Event::KeyAssigned {
                index,
                new: false,
            }]));
        }
        let mut c = counters(st)?;
        if c.frozen {
            return Ok(TxOutcome::err(
                TxCode::Frozen,
                "epoch hand-over in progress",
            ));
        }
        if c.last_unassigned >= c.last_created {
            return Ok(TxOutcome::err(
                TxCode::NoFreeKeys,
                "no free keys in the buffer",
            ));
        }
        let index = c.last_unassigned;
        let Some(mut kr) = key_record(st, index)? else {
            return Err(AppError::Storage(format!(
                "key {index} counted but missing"
            )));
        };
        kr.owner = Some((verifier.to_string(), verifier_id.to_string()));
        st.put(keys::with_u64(keys::KEY, index), kr.encode());
        st.put(
            keys::assign(verifier, verifier_id),
            records::encode_u64(index),
        );
        c.last_unassigned += 1;
        st.put(keys::COUNTERS.to_vec(), c.encode());
        Ok(TxOutcome::ok(vec![Event::KeyAssigned { index, new: true }]))
    }

    fn handover<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        signer: u32,
        next: &EpochInfo,
    ) -> Result<TxOutcome, AppError> {
        let cur = current_epoch(st)?;
        if next_epoch(st)?.is_some() {
            return Ok(TxOutcome::err(
                TxCode::Duplicate,
                "hand-over already decided",
            ));
        }
        if next.epoch != cur.epoch + 1 {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "next epoch must be current + 1",
            ));
        }
        if let Err(e) = next.validate() {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                format!("next committee: {e}"),
            ));
        }
        let h = next.hash();
        let Some(count) = vote(st, VOTE_HANDOVER, &next.epoch.to_be_bytes(), signer, &h)? else {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already voted"));
        };
        if count < u64::from(cur.k + cur.t) {
            return Ok(TxOutcome::ok(Vec::new()));
        }
        st.put(keys::NEXT_EPOCH.to_vec(), records::encode_epoch(next));
        let mut c = counters(st)?;
        c.frozen = true;
        st.put(keys::COUNTERS.to_vec(), c.encode());
        Ok(TxOutcome::ok(vec![Event::HandoverDecided {
            epoch: next.epoch,
        }]))
    }

    fn reshare_complete<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        signer: u32,
        epoch: u64,
        keys_done: u64,
    ) -> Result<TxOutcome, AppError> {
        let Some(next) = next_epoch(st)? else {
            return Ok(TxOutcome::err(TxCode::Invalid, "no hand-over in progress"));
        };
        if next.epoch != epoch {
            return Ok(TxOutcome::err(TxCode::Invalid, "not the pending epoch"));
        }
        let mut c = counters(st)?;
        if keys_done != c.last_created {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                format!("resharing must cover {} keys", c.last_created),
            ));
        }
        let h = keccak256(&keys_done.to_be_bytes());
        let Some(count) = vote(st, VOTE_RESHARE, &epoch.to_be_bytes(), signer, &h)? else {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already voted"));
        };
        if count < u64::from(next.k) {
            return Ok(TxOutcome::ok(Vec::new()));
        }
        st.put(keys::EPOCH.to_vec(), records::encode_epoch(&next));
        st.delete(keys::NEXT_EPOCH.to_vec());
        c.frozen = false;
        // Batches opened but not finished by the old committee are abandoned:
        // the new committee restarts key generation after the last created key.
        let mut start = c.last_created;
        while let Some(b) = batch_record(st, start)? {
            st.delete(keys::with_u64(keys::BATCH, start));
            start = b.batch.end();
        }
        c.next_batch_start = c.last_created;
        st.put(keys::COUNTERS.to_vec(), c.encode());
        st.delete(keys::OPEN_BATCH.to_vec());
        Ok(TxOutcome::ok(vec![Event::EpochChanged { epoch }]))
    }
}
