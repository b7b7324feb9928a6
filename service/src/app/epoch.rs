//! The epoch family: `EpochHandover` (the current committee votes the next one in),
//! `ReshareComplete` (the next committee votes that resharing is done) and
//! `HandoverAbort` (the current committee drops a hand-over that did not finish).

use super::reshare::{adopt_resharing_records, first_unreshared};
use super::state::{
    batch_record, batch_round, clear_keys_round, clear_vote_round, counters, current_epoch, keys,
    next_epoch, reshare_record, vote, KvRead, Overlay, VOTE_ABORT, VOTE_HANDOVER, VOTE_RESHARE,
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

    /// A current member's vote to abort the pending hand-over to `epoch`. At k + t
    /// votes every trace of it goes: the next committee, its resharing records and
    /// their vote rounds, the votes of the hand-over, its completion and its abort
    /// (so the same epoch can be voted in again from zero), and the blames of the
    /// next epoch (false accusers among its members; old dealers found guilty stay
    /// blamed in the current epoch). Assignment resumes with the current committee.
    pub(super) fn handover_abort<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        signer: u32,
        epoch: u64,
    ) -> Result<TxOutcome, AppError> {
        let Some(next) = next_epoch(st)? else {
            return Ok(TxOutcome::err(TxCode::Invalid, "no hand-over in progress"));
        };
        if next.epoch != epoch {
            return Ok(TxOutcome::err(TxCode::Invalid, "not the pending epoch"));
        }
        let round = epoch.to_be_bytes();
        let h = keccak256(&round);
        let Some(count) = vote(st, VOTE_ABORT, &round, signer, &h)? else {
            return Ok(TxOutcome::err(TxCode::Duplicate, "already voted"));
        };
        let cur = current_epoch(st)?;
        if count < u64::from(cur.k + cur.t) {
            return Ok(TxOutcome::ok(Vec::new()));
        }
        let mut c = counters(st)?;
        let new_members = || next.nodes.iter().map(|n| n.index);
        let mut start = 0;
        while start < c.last_created {
            let Some(b) = batch_record(st, start)? else {
                break;
            };
            if b.batch.end() <= start {
                break;
            }
            if let Some(r) = reshare_record(st, start)? {
                clear_keys_round(st, &batch_round(&r.batch), new_members())?;
                st.delete(keys::with_u64(keys::RESHARE, start));
            }
            start = b.batch.end();
        }
        for n in new_members() {
            let k = keys::blame(epoch, n);
            if st.get(&k)?.is_some() {
                st.delete(k);
            }
        }
        let old_members = || cur.nodes.iter().map(|n| n.index);
        clear_vote_round(st, VOTE_HANDOVER, &round, old_members())?;
        clear_vote_round(st, VOTE_RESHARE, &round, new_members())?;
        clear_vote_round(st, VOTE_ABORT, &round, old_members())?;
        st.delete(keys::NEXT_EPOCH.to_vec());
        c.frozen = false;
        st.put(keys::COUNTERS.to_vec(), c.encode());
        Ok(TxOutcome::ok(vec![Event::HandoverAborted { epoch }]))
    }
}
