//! The key generation family: `OpenBatch`, `DealerSet`, `PublicKeys`.

use std::collections::BTreeSet;

use super::state::{
    batch_record, batch_round, cancelled_batch, clear_keys_round, counters, current_epoch,
    is_blamed, keys, keys_proposal_key, open_batch, open_batch_height, storage, vote, KvRead,
    Overlay, VOTE_PUBKEYS,
};
use super::{App, AppError, Event, TxCode, TxOutcome};
use crate::crypto::NodePub;
use crate::store::records::{self, BatchRecord, KeyRecord};
use crate::tx::digest::vote_hash;
use crate::tx::{
    keys_hash, ready_digest, BatchId, BatchLimits, DealerEvidence, EpochInfo, BATCH_DEADLINE_BLOCKS,
};

/// The sizes an `OpenBatch` for the next batch may have in this state: the
/// committee's [`BatchLimits`], with the maximum halved when the last batch
/// cancelled at its deadline started at the same index. Honest nodes pick their
/// count inside it (the keygen driver reads the same function).
pub fn open_batch_limits(
    state: &(impl KvRead + ?Sized),
    epoch: &EpochInfo,
    start: u64,
) -> Result<BatchLimits, AppError> {
    let mut l = BatchLimits::for_k(epoch.k);
    if let Some(x) = cancelled_batch(state)? {
        if x.epoch == epoch.epoch && x.start == start {
            l.max = l.reopen_max(x.count);
        }
    }
    Ok(l)
}

/// The dealer-set rule, for a DKG batch (`dealing` and `receiving` are the
/// current committee) and a resharing batch (the current committee deals to the
/// next one): at least k of the dealing committee, in increasing order, none
/// blamed in the dealing committee's epoch, each with k + t valid ready
/// signatures of the receiving committee. `Some` is the refusal.
pub(super) fn check_dealers<R: KvRead + ?Sized>(
    st: &Overlay<'_, R>,
    dealing: &EpochInfo,
    receiving: &EpochInfo,
    batch: &BatchId,
    dealers: &[DealerEvidence],
) -> Result<Option<TxOutcome>, AppError> {
    let need_dealers = dealing.k as usize;
    let need_readies = (receiving.k + receiving.t) as usize;
    if dealers.len() < need_dealers {
        return Ok(Some(TxOutcome::err(
            TxCode::Invalid,
            format!("{} dealers, need {need_dealers}", dealers.len()),
        )));
    }
    let mut prev = 0u32;
    for d in dealers {
        if d.dealer <= prev || dealing.node(d.dealer).is_none() {
            return Ok(Some(TxOutcome::err(
                TxCode::Invalid,
                format!("dealer {} out of order or unknown", d.dealer),
            )));
        }
        prev = d.dealer;
        if is_blamed(st, dealing.epoch, d.dealer)? {
            return Ok(Some(TxOutcome::err(
                TxCode::Invalid,
                format!("dealer {} is blamed in epoch {}", d.dealer, dealing.epoch),
            )));
        }
        let digest = ready_digest(batch, d.dealer, &d.commitments);
        let mut signers = BTreeSet::new();
        for r in &d.readies {
            let Some(node) = receiving.node(r.signer) else {
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
            return Ok(Some(TxOutcome::err(
                TxCode::Invalid,
                format!(
                    "dealer {}: {} valid ready signatures, need {need_readies}",
                    d.dealer,
                    signers.len()
                ),
            )));
        }
    }
    Ok(None)
}

/// A public-key vote needs `batch`'s decided dealer set `rec` and no decided
/// keys yet. `Some` is the refusal.
pub(super) fn keys_undecided(rec: &BatchRecord, batch: &BatchId) -> Option<TxOutcome> {
    if rec.batch != *batch {
        return Some(TxOutcome::err(
            TxCode::Invalid,
            "batch does not match its dealer set",
        ));
    }
    if rec.keys_hash.is_some() {
        return Some(TxOutcome::err(
            TxCode::Duplicate,
            "public keys already decided",
        ));
    }
    None
}

impl App {
    /// The begin-block deadline rule: the open batch is cancelled once `height`
    /// is [`BATCH_DEADLINE_BLOCKS`] past the block that opened it (its dealer set
    /// would have closed it). Nothing of it was created: no batch record, no keys,
    /// and the next batch starts at the same index.
    pub(super) fn expire_open_batch<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        height: u64,
    ) -> Result<Option<Event>, AppError> {
        let Some(batch) = open_batch(st)? else {
            return Ok(None);
        };
        // A batch opened before the height was recorded counts from height 0.
        let opened_at = open_batch_height(st)?.unwrap_or(0);
        if height < opened_at.saturating_add(BATCH_DEADLINE_BLOCKS) {
            return Ok(None);
        }
        st.delete(keys::OPEN_BATCH.to_vec());
        st.delete(keys::OPEN_BATCH_HEIGHT.to_vec());
        st.put(
            keys::CANCELLED_BATCH.to_vec(),
            records::encode_batch_id(&batch),
        );
        Ok(Some(Event::BatchCancelled { batch, opened_at }))
    }

    pub(super) fn open_batch<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        batch: &BatchId,
        height: u64,
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
        let limits = open_batch_limits(st, &cur, batch.start)?;
        if !limits.accepts(batch.count) {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                format!(
                    "a batch of {} keys is outside {}..={} for this committee",
                    batch.count, limits.min, limits.max
                ),
            ));
        }
        st.put(keys::OPEN_BATCH.to_vec(), records::encode_batch_id(batch));
        st.put(
            keys::OPEN_BATCH_HEIGHT.to_vec(),
            records::encode_u64(height),
        );
        Ok(TxOutcome::ok(vec![Event::BatchOpened { batch: *batch }]))
    }

    pub(super) fn dealer_set<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        batch: &BatchId,
        dealers: &[DealerEvidence],
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
        if let Some(refused) = check_dealers(st, &cur, &cur, batch, dealers)? {
            return Ok(refused);
        }
        let rec = BatchRecord::of_dealer_set(*batch, dealers);
        st.put(keys::with_u64(keys::BATCH, batch.start), rec.encode());
        st.delete(keys::OPEN_BATCH.to_vec());
        st.delete(keys::OPEN_BATCH_HEIGHT.to_vec());
        if st.get(keys::CANCELLED_BATCH)?.is_some() {
            // The index moved past any cancelled batch.
            st.delete(keys::CANCELLED_BATCH.to_vec());
        }
        c.next_batch_start = batch.end();
        st.put(keys::COUNTERS.to_vec(), c.encode());
        Ok(TxOutcome::ok(vec![Event::DealerSet {
            batch: *batch,
            dealers: dealers.iter().map(|d| d.dealer).collect(),
        }]))
    }

    pub(super) fn public_keys<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        signer: u32,
        batch: &BatchId,
        (h, vectors): (&[u8; 32], &[u8; 32]),
        list: &[[u8; 33]],
    ) -> Result<TxOutcome, AppError> {
        let cur = current_epoch(st)?;
        // The vote counts the keys and the commitment vectors together.
        let vh = vote_hash(h, vectors);
        let Some(mut rec) = batch_record(st, batch.start)? else {
            return Ok(TxOutcome::err(TxCode::Invalid, "no dealer set for batch"));
        };
        if let Some(refused) = keys_undecided(&rec, batch) {
            return Ok(refused);
        }
        let round = batch_round(batch);
        let pkey = keys_proposal_key(&round, &vh);
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
        let Some(count) = vote(st, VOTE_PUBKEYS, &round, signer, &vh)? else {
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
        // Decided: this round's votes, counts and every key list proposed in it
        // (the decided one is now key records; the others were never decided).
        clear_keys_round(st, &round, cur.nodes.iter().map(|n| n.index))?;
        rec.keys_hash = Some(*h);
        rec.vectors_hash = Some(*vectors);
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
}
