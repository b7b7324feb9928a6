//! The assignment family: `KeyAssign` (a user gets the next free key, once).

use super::state::{assigned_index, counters, key_record, keys, KvRead, Overlay};
use super::{App, AppError, Event, TxCode, TxOutcome};
use crate::store::records;

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

impl App {
    pub(super) fn key_assign<R: KvRead + ?Sized>(
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
}
