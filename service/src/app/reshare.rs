//! The resharing family: during a hand-over, each created batch of the current
//! epoch is reshared by a batch of the next epoch with the same start and count
//! (issue #12; README "Resharing"). The current committee deals, the next one
//! receives; the current committee's consensus decides, and the next committee
//! signs what its members see:
//!
//! - `DealerSet` of a resharing batch: at least k_old old dealers, none blamed in
//!   the old epoch, each with k' + t' ready signatures of new members;
//! - `PublicKeys` of a resharing batch: k' new members vote, and the only hash
//!   they may vote is the one the old epoch decided for the batch (public keys
//!   never change; nothing is written but the decision);
//! - `Complaint` on a resharing batch: evidence against an old dealer, checked
//!   against the old committee's keys ([`check_dealt_by`]); a guilty dealer is
//!   blamed in the old epoch (so no later dealer set may name it), a false
//!   accuser in the new one.
//!
//! `ReshareComplete` (in `epoch.rs`) needs every created batch reshared, and at the
//! switch each resharing record replaces its batch's record.

use super::complaint::record_blame;
use super::evidence::{check_dealt_by, Verdict};
use super::keygen::{check_dealers, keys_undecided};
use super::state::{
    batch_record, batch_round, clear_keys_round, current_epoch, keys, reshare_record, vote, KvRead,
    Overlay, VOTE_PUBKEYS,
};
use super::{App, AppError, Event, TxCode, TxOutcome};
use crate::store::records::BatchRecord;
use crate::tx::digest::vote_hash;
use crate::tx::{keys_hash, BatchId, DealerEvidence, EpochInfo, Evidence};

impl App {
    /// The created batch of the current epoch that `batch` reshares, or the
    /// refusal: same start and count, public keys decided.
    fn resharing_target<R: KvRead + ?Sized>(
        &self,
        st: &Overlay<'_, R>,
        batch: &BatchId,
    ) -> Result<Result<BatchRecord, TxOutcome>, AppError> {
        let cur = current_epoch(st)?;
        match batch_record(st, batch.start)? {
            Some(old)
                if old.batch.epoch == cur.epoch
                    && old.batch.count == batch.count
                    && old.keys_hash.is_some() =>
            {
                Ok(Ok(old))
            }
            _ => Ok(Err(TxOutcome::err(
                TxCode::Invalid,
                format!(
                    "keys {}..{} are not a created batch of epoch {}",
                    batch.start,
                    batch.end(),
                    cur.epoch
                ),
            ))),
        }
    }

    pub(super) fn reshare_dealer_set<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        next: &EpochInfo,
        batch: &BatchId,
        dealers: &[DealerEvidence],
    ) -> Result<TxOutcome, AppError> {
        if let Err(refused) = self.resharing_target(st, batch)? {
            return Ok(refused);
        }
        if reshare_record(st, batch.start)?.is_some() {
            return Ok(TxOutcome::err(
                TxCode::Duplicate,
                "resharing batch already decided",
            ));
        }
        let cur = current_epoch(st)?;
        if let Some(refused) = check_dealers(st, &cur, next, batch, dealers)? {
            return Ok(refused);
        }
        let rec = BatchRecord::of_dealer_set(*batch, dealers);
        st.put(keys::with_u64(keys::RESHARE, batch.start), rec.encode());
        Ok(TxOutcome::ok(vec![Event::ReshareDealerSet {
            batch: *batch,
            dealers: dealers.iter().map(|d| d.dealer).collect(),
        }]))
    }

    pub(super) fn reshare_public_keys<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        next: &EpochInfo,
        signer: u32,
        batch: &BatchId,
        (h, vectors): (&[u8; 32], &[u8; 32]),
        list: &[[u8; 33]],
    ) -> Result<TxOutcome, AppError> {
        let old = match self.resharing_target(st, batch)? {
            Ok(old) => old,
            Err(refused) => return Ok(refused),
        };
        let Some(mut rec) = reshare_record(st, batch.start)? else {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "no dealer set for the resharing batch",
            ));
        };
        if let Some(refused) = keys_undecided(&rec, batch) {
            return Ok(refused);
        }
        if old.keys_hash != Some(*h) {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "resharing must keep the batch's public keys",
            ));
        }
        if !list.is_empty() && keys_hash(list) != *h {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                "keys do not match their hash",
            ));
        }
        let round = batch_round(batch);
        // The new commitment vectors are new: the vote agrees on them too.
        let vh = vote_hash(h, vectors);
        let Some(count) = vote(st, VOTE_PUBKEYS, &round, signer, &vh)? else {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already voted"));
        };
        if count < u64::from(next.k) {
            return Ok(TxOutcome::ok(Vec::new()));
        }
        clear_keys_round(st, &round, next.nodes.iter().map(|n| n.index))?;
        rec.keys_hash = Some(*h);
        rec.vectors_hash = Some(*vectors);
        st.put(keys::with_u64(keys::RESHARE, batch.start), rec.encode());
        Ok(TxOutcome::ok(vec![Event::ResharedPublicKeys {
            batch: *batch,
        }]))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn reshare_complaint<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        next: &EpochInfo,
        accuser: u32,
        batch: &BatchId,
        dealer: u32,
        evidence: &Evidence,
    ) -> Result<TxOutcome, AppError> {
        let old = match self.resharing_target(st, batch)? {
            Ok(old) => old,
            Err(refused) => return Ok(refused),
        };
        let cur = current_epoch(st)?;
        // Dealer and accuser are in different committees: the same index is
        // two nodes (or the same node in two roles), never a self-accusation.
        let old_vectors = old.vectors_hash.as_ref();
        let verdict =
            match check_dealt_by(&cur, next, old_vectors, batch, dealer, accuser, evidence) {
                Ok(v) => v,
                Err(e) => {
                    return Ok(TxOutcome::err(
                        TxCode::Invalid,
                        format!("evidence proves nothing: {e}"),
                    ))
                }
            };
        let (node, epoch, as_dealer, reason) = match verdict {
            Verdict::DealerGuilty(r) => (dealer, cur.epoch, true, r),
            Verdict::FalseComplaint(r) => (accuser, next.epoch, false, r),
        };
        record_blame(st, epoch, node, as_dealer, batch, evidence, reason)
    }
}

/// The first created batch (below `last_created`) whose resharing is not
/// confirmed yet, if any.
pub fn first_unreshared(
    st: &(impl KvRead + ?Sized),
    last_created: u64,
) -> Result<Option<BatchId>, AppError> {
    let mut start = 0;
    while start < last_created {
        let Some(b) = batch_record(st, start)? else {
            return Err(AppError::Storage(format!(
                "no batch record at key {start} below the created count {last_created}"
            )));
        };
        match reshare_record(st, start)? {
            Some(r) if r.keys_hash.is_some() => {}
            _ => return Ok(Some(b.batch)),
        }
        start = b.batch.end();
    }
    Ok(None)
}

/// At the switch: each resharing record becomes its batch's record (the
/// decided dealers whose sub-sharings the new committee combined).
pub(super) fn adopt_resharing_records<R: KvRead + ?Sized>(
    st: &mut Overlay<'_, R>,
    last_created: u64,
) -> Result<(), AppError> {
    let mut start = 0;
    while start < last_created {
        let Some(r) = reshare_record(st, start)? else {
            return Err(AppError::Storage(format!(
                "no resharing record at key {start} at the switch"
            )));
        };
        st.put(keys::with_u64(keys::BATCH, start), r.encode());
        st.delete(keys::with_u64(keys::RESHARE, start));
        start = r.batch.end();
    }
    Ok(())
}
