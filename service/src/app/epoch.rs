//! The epoch family: `EpochHandover` (the current committee votes the next one in)
//! and `ReshareComplete` (the next committee votes that resharing is done).

use super::reshare::{adopt_resharing_records, first_unreshared};
use super::state::{
    batch_record, batch_round, clear_keys_round, counters, current_epoch, keys, next_epoch, vote,
    KvRead, Overlay, VOTE_HANDOVER, VOTE_RESHARE,
};
use super::{App, AppError, Event, TxCode, TxOutcome};
use crate::hexfmt::keccak256;
use crate::store::records;
use crate::tx::EpochInfo;

impl App {
    pub(super) fn handover<R: KvRead + ?Sized>(
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

    pub(super) fn reshare_complete<R: KvRead + ?Sized>(
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
        if let Some(b) = first_unreshared(st, c.last_created)? {
            return Ok(TxOutcome::err(
                TxCode::Invalid,
                format!("keys {}..{} are not reshared yet", b.start, b.end()),
            ));
        }
        let h = keccak256(&keys_done.to_be_bytes());
        let Some(count) = vote(st, VOTE_RESHARE, &epoch.to_be_bytes(), signer, &h)? else {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already voted"));
        };
        if count < u64::from(next.k) {
            return Ok(TxOutcome::ok(Vec::new()));
        }
        let old = current_epoch(st)?;
        adopt_resharing_records(st, c.last_created)?;
        st.put(keys::EPOCH.to_vec(), records::encode_epoch(&next));
        st.delete(keys::NEXT_EPOCH.to_vec());
        c.frozen = false;
        // Batches opened but not finished by the old committee are abandoned:
        // the new committee restarts key generation after the last created key.
        let mut start = c.last_created;
        // Their public-key rounds (votes and proposed key lists) go with them.
        while let Some(b) = batch_record(st, start)? {
            st.delete(keys::with_u64(keys::BATCH, start));
            clear_keys_round(
                st,
                &batch_round(&b.batch),
                old.nodes.iter().map(|n| n.index),
            )?;
            start = b.batch.end();
        }
        c.next_batch_start = c.last_created;
        st.put(keys::COUNTERS.to_vec(), c.encode());
        for k in [
            keys::OPEN_BATCH,
            keys::OPEN_BATCH_HEIGHT,
            keys::CANCELLED_BATCH,
        ] {
            if st.get(k)?.is_some() {
                st.delete(k.to_vec());
            }
        }
        Ok(TxOutcome::ok(vec![Event::EpochChanged { epoch }]))
    }
}
