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

mod assign;
mod complaint;
mod epoch;
mod events;
pub mod evidence;
mod keygen;
mod reshare;
mod state;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use keygen::open_batch_limits;
pub use reshare::first_unreshared;
use state::Overlay;
pub use state::{
    assigned_index, batch_record, cancelled_batch, chain_app_hash, counters, current_epoch,
    genesis_writes, index_of_pubkey, is_blamed, key_record, keys, next_epoch, open_batch,
    open_batch_height, reshare_record, AppError, KvRead,
};

use crate::crypto::NodePub;
use crate::tx::{BatchId, SignedTx, TxBody};

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
    /// The pending hand-over to `epoch` was aborted; assignment resumes with the
    /// current committee.
    HandoverAborted {
        /// The epoch that did not come.
        epoch: u64,
    },
    /// The next epoch became current.
    EpochChanged {
        /// New current epoch.
        epoch: u64,
    },
    /// The dealer set of a resharing batch was decided (old dealers).
    ReshareDealerSet {
        /// The resharing batch (of the next epoch).
        batch: BatchId,
        /// Old dealers.
        dealers: Vec<u32>,
    },
    /// The next committee confirmed a resharing batch's (unchanged) public keys.
    ResharedPublicKeys {
        /// The resharing batch (of the next epoch).
        batch: BatchId,
    },
    /// A batch was opened for dealing.
    BatchOpened {
        /// Batch.
        batch: BatchId,
    },
    /// Consensus cancelled the open batch: its dealer set was not decided within
    /// [`crate::tx::BATCH_DEADLINE_BLOCKS`] blocks of its opening. Its keys are never
    /// created; the next `OpenBatch` starts at the same index.
    BatchCancelled {
        /// Batch.
        batch: BatchId,
        /// Height of the block that opened it.
        opened_at: u64,
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
    /// What the block did before its transactions (a batch cancelled at its deadline).
    pub events: Vec<Event>,
    /// Writes (None = delete), in key order.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// App hash after the block.
    pub app_hash: [u8; 32],
}

/// The state machine. Stateless itself: everything lives in the store.
#[derive(Clone, Debug, Default)]
pub struct App;

impl App {
    /// Authenticates a transaction: decodes it, and checks that its signer is a
    /// member of the epoch it names (current, or next for what its members sign
    /// during a hand-over: [`TxBody::next_committee_may_sign`]) and
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
        } else if tx.body.next_committee_may_sign(tx.epoch) {
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
        // The height is unknown here; no rule reads it, and the writes are dropped.
        match self.execute(&mut ov, &tx, 0) {
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
        // Begin-block rule: a batch past its deadline is cancelled before any
        // transaction of this block runs (so a late dealer set in it is refused).
        let events = self
            .expire_open_batch(&mut ov, height)?
            .into_iter()
            .collect();
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
            let out = self.execute(&mut inner, &tx, height)?;
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
            events,
            writes: ov.writes,
            app_hash,
        })
    }

    fn execute<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        tx: &SignedTx,
        height: u64,
    ) -> Result<TxOutcome, AppError> {
        // A batch of the next epoch during a hand-over is a resharing batch.
        let resharing = |batch: &BatchId| -> Result<Option<crate::tx::EpochInfo>, AppError> {
            Ok(next_epoch(st)?.filter(|n| n.epoch == batch.epoch))
        };
        match &tx.body {
            TxBody::DealerSet { batch, dealers } => match resharing(batch)? {
                Some(next) => self.reshare_dealer_set(st, &next, batch, dealers),
                None => self.dealer_set(st, batch, dealers),
            },
            TxBody::PublicKeys {
                batch,
                keys_hash: h,
                keys,
                vectors_hash: v,
            } => match resharing(batch)? {
                Some(next) => self.reshare_public_keys(st, &next, tx.signer, batch, (h, v), keys),
                None => self.public_keys(st, tx.signer, batch, (h, v), keys),
            },
            TxBody::KeyAssign {
                verifier,
                verifier_id,
            } => self.key_assign(st, verifier, verifier_id),
            TxBody::EpochHandover { next } => self.handover(st, tx.signer, next),
            TxBody::ReshareComplete { epoch, keys } => {
                self.reshare_complete(st, tx.signer, *epoch, *keys)
            }
            TxBody::HandoverAbort { epoch } => self.handover_abort(st, tx.signer, *epoch),
            TxBody::OpenBatch { batch } => self.open_batch(st, batch, height),
            TxBody::Complaint {
                batch,
                dealer,
                evidence,
            } => match resharing(batch)? {
                Some(next) => {
                    self.reshare_complaint(st, &next, tx.signer, batch, *dealer, evidence)
                }
                None => self.complaint(st, tx.signer, batch, *dealer, evidence),
            },
        }
    }
}
