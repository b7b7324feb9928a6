//! What of the committed key buffer still needs this node: the decided batches of
//! the current epoch that are not settled here (public keys pending, or shares
//! missing), read from a cursor instead of from key 0.
//!
//! A batch is *settled* when its public keys are decided and this node holds its
//! shares, or when it belongs to another epoch: nothing is left to do for it. The
//! driver keeps the start of the first batch that is not settled, so that a view
//! costs the unsettled batches (a handful in flight), not every batch of a buffer
//! of millions of keys. Only the first view after a start-up (or an epoch change)
//! walks the whole buffer, one record read per batch.

use crate::app::{self, AppError, KvRead};
use crate::store::records::BatchRecord;
use crate::tx::BatchId;

/// Where the walk of the batch records may start: every batch below `below` was
/// settled when the cursor was last moved, for `epoch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SettledCursor {
    /// The epoch the cursor is for (another epoch starts from 0 again).
    pub epoch: u64,
    /// Batches starting below this are settled.
    pub below: u64,
}

/// The batch records of `epoch` from the cursor up to `next_batch_start` that are
/// not settled (in key order), and the cursor moved over the leading settled ones.
///
/// `has_shares` says whether this node stores a batch's shares (they are stored in
/// one transaction per batch, so its first key stands for the batch).
pub(super) fn unsettled_batches(
    state: &(impl KvRead + ?Sized),
    epoch: u64,
    next_batch_start: u64,
    cursor: SettledCursor,
    mut has_shares: impl FnMut(&BatchId) -> bool,
) -> Result<(Vec<BatchRecord>, SettledCursor), AppError> {
    let mut start = if cursor.epoch == epoch {
        cursor.below
    } else {
        0
    };
    let mut moved = SettledCursor {
        epoch,
        below: start,
    };
    let mut leading = true;
    let mut out = Vec::new();
    while start < next_batch_start {
        let Some(b) = app::batch_record(state, start)? else {
            break;
        };
        let next = b.batch.end();
        if next <= start {
            // A record that does not advance (cannot decode that way): stop rather than spin.
            break;
        }
        let settled = b.batch.epoch != epoch || (b.keys_hash.is_some() && has_shares(&b.batch));
        if settled && leading {
            moved.below = next;
        } else {
            leading = false;
        }
        if !settled {
            out.push(b);
        }
        start = next;
    }
    Ok((out, moved))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::app::keys;

    fn state(batches: &[(u64, u64, u32, bool)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut s = BTreeMap::new();
        for &(epoch, start, count, decided) in batches {
            let rec = BatchRecord {
                batch: BatchId {
                    epoch,
                    start,
                    count,
                },
                dealers: vec![(1, [1; 32])],
                keys_hash: decided.then_some([9; 32]),
                vectors_hash: None,
            };
            s.insert(keys::with_u64(keys::BATCH, start), rec.encode());
        }
        s
    }

    fn starts(v: &[BatchRecord]) -> Vec<u64> {
        v.iter().map(|b| b.batch.start).collect()
    }

    #[test]
    fn only_unsettled_batches_are_listed_and_the_cursor_stops_at_the_first_of_them() {
        // Batches of 10 keys: 0..30 decided, 30 pending, 40 decided, 50 decided but its
        // shares are missing here.
        let s = state(&[
            (1, 0, 10, true),
            (1, 10, 10, true),
            (1, 20, 10, true),
            (1, 30, 10, false),
            (1, 40, 10, true),
            (1, 50, 10, true),
        ]);
        let held: BTreeSet<u64> = [0, 10, 20, 30, 40].into();
        let mut reads = 0;
        let (out, cur) = unsettled_batches(&s, 1, 60, SettledCursor::default(), |b| {
            reads += 1;
            held.contains(&b.start)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(starts(&out), [30, 50]);
        assert_eq!(
            cur,
            SettledCursor {
                epoch: 1,
                below: 30
            }
        );
        assert_eq!(reads, 5);
        // From the cursor, the settled prefix is not walked again.
        let mut walked = Vec::new();
        let (out, cur2) = unsettled_batches(&s, 1, 60, cur, |b| {
            walked.push(b.start);
            held.contains(&b.start)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(starts(&out), [30, 50]);
        assert_eq!(cur2, cur);
        assert_eq!(walked, [40, 50]);
    }

    #[test]
    fn the_cursor_moves_on_once_a_pending_batch_settles_and_stops_at_a_missing_share() {
        let mut s = state(&[(1, 0, 10, true), (1, 10, 10, false), (1, 20, 10, true)]);
        let cur = SettledCursor {
            epoch: 1,
            below: 10,
        };
        let (_, cur) =
            unsettled_batches(&s, 1, 30, cur, |_| true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cur.below, 10);
        // Batch 10's public keys are decided: the cursor passes it and batch 20.
        s.extend(state(&[(1, 10, 10, true)]));
        let (out, cur) =
            unsettled_batches(&s, 1, 30, cur, |_| true).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.is_empty());
        assert_eq!(cur.below, 30);
        // A later batch whose shares this node lacks is listed and holds the cursor.
        s.extend(state(&[(1, 30, 10, true)]));
        let (out, cur) =
            unsettled_batches(&s, 1, 40, cur, |b| b.start != 30).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(starts(&out), [30]);
        assert_eq!(cur.below, 30);
    }

    #[test]
    fn another_epochs_batches_are_settled_and_a_new_epoch_walks_from_the_start() {
        let s = state(&[(1, 0, 10, false), (2, 10, 10, false), (2, 20, 10, true)]);
        // For epoch 2, epoch 1's pending batch is not this committee's to finish.
        let (out, cur) = unsettled_batches(&s, 2, 30, SettledCursor::default(), |_| false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(starts(&out), [10, 20]);
        assert_eq!(
            cur,
            SettledCursor {
                epoch: 2,
                below: 10
            }
        );
        // A cursor of epoch 1 is not trusted for epoch 2.
        let stale = SettledCursor {
            epoch: 1,
            below: 30,
        };
        let (out, _) =
            unsettled_batches(&s, 2, 30, stale, |_| false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(starts(&out), [10, 20]);
    }

    #[test]
    fn a_gap_in_the_records_ends_the_walk() {
        let s = state(&[(1, 0, 10, false), (1, 20, 10, false)]);
        let (out, _) = unsettled_batches(&s, 1, 30, SettledCursor::default(), |_| false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(starts(&out), [0]);
    }
}
