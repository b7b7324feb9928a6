//! The accountability family: `Complaint`. The evidence rules are in
//! [`super::evidence`]; this records the verdict as a blame.

use super::evidence::{check as check_evidence, Verdict};
use super::state::{current_epoch, keys, KvRead, Overlay};
use super::{App, AppError, Event, TxCode, TxOutcome};
use crate::codec::Writer;
use crate::tx::{BatchId, Evidence};

impl App {
    pub(super) fn complaint<R: KvRead + ?Sized>(
        &self,
        st: &mut Overlay<'_, R>,
        accuser: u32,
        batch: &BatchId,
        dealer: u32,
        evidence: &Evidence,
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
        let verdict = match check_evidence(&cur, batch, dealer, accuser, evidence) {
            Ok(v) => v,
            Err(e) => {
                return Ok(TxOutcome::err(
                    TxCode::Invalid,
                    format!("evidence proves nothing: {e}"),
                ))
            }
        };
        let (node, as_dealer, reason) = match verdict {
            Verdict::DealerGuilty(r) => (dealer, true, r),
            Verdict::FalseComplaint(r) => (accuser, false, r),
        };
        record_blame(st, cur.epoch, node, as_dealer, batch, evidence, reason)
    }
}

/// Blames `node` in `epoch` (once) for a complaint on `batch`.
pub(super) fn record_blame<R: KvRead + ?Sized>(
    st: &mut Overlay<'_, R>,
    epoch: u64,
    node: u32,
    as_dealer: bool,
    batch: &BatchId,
    evidence: &Evidence,
    reason: String,
) -> Result<TxOutcome, AppError> {
    let key = keys::blame(epoch, node);
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
