//! Batches: the unit of key generation (consecutive key indexes dealt together).

use crate::codec::{CodecError, Reader, Writer};

use super::MAX_BATCH_KEYS;

/// A batch of consecutive key indexes generated together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId {
    /// Epoch whose committee deals.
    pub epoch: u64,
    /// First key index.
    pub start: u64,
    /// Number of keys.
    pub count: u32,
}

impl BatchId {
    /// Encodes.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.epoch).u64(self.start).u32(self.count);
    }
    /// Decodes (count 1..=[`MAX_BATCH_KEYS`]).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let b = BatchId {
            epoch: r.u64("batch epoch")?,
            start: r.u64("batch start")?,
            count: r.u32("batch count")?,
        };
        if b.count == 0 || u64::from(b.count) > MAX_BATCH_KEYS {
            return Err(CodecError::TooLarge {
                what: "batch count",
                got: u64::from(b.count),
                limit: MAX_BATCH_KEYS,
            });
        }
        Ok(b)
    }
    /// One past the last key index.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(u64::from(self.count))
    }
}

/// Fewest keys an `OpenBatch` may ask for (unless the committee's maximum is
/// lower): a byzantine opener cannot keep every batch at one key, so every
/// batch's fixed cost (n² messages, the dealer set, n votes) is spread over at
/// least this many keys. Honest nodes round a smaller need up to it.
pub const MIN_BATCH_KEYS: u32 = 16;

/// The largest node-to-node message a batch may need. A dealer's send to one
/// receiver carries every key's commitment matrix and the receiver's slice; the
/// committee's maximum batch keeps it under this, well under the default p2p
/// frame limit (`p2p.max_message_mib`, 256 MiB), so no honest send can be refused.
pub const MAX_BATCH_MESSAGE_BYTES: u64 = 64 << 20;

/// The largest transaction a batch may need: a `PublicKeys` vote carrying the
/// list (33 bytes per key) or a `BadSlice` complaint (64 bytes of hashes per
/// key plus one key's data). Half the default block (16 MiB), so either fits a
/// block beside other transactions.
pub const MAX_BATCH_TX_BYTES: u64 = 8 << 20;

/// Blocks after its `OpenBatch` at which consensus cancels a batch whose dealer
/// set is still undecided (about five minutes of idle 300 ms blocks; far more
/// than a batch of the hardware profiles' size needs). The next `OpenBatch` may
/// then start at the same index, with at most half the cancelled batch's keys.
pub const BATCH_DEADLINE_BLOCKS: u64 = 1_000;

/// Headers, signatures and framing around a batch's per-key payload.
const BATCH_OVERHEAD_BYTES: u64 = 64 << 10;

/// The batch sizes a committee accepts in `OpenBatch`: `min..=max` keys.
///
/// Derived only from the committee's `k` and the constants above, so every node
/// computes the same bounds (a consensus rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Fewest keys: `min(MIN_BATCH_KEYS, max)`.
    pub min: u32,
    /// Most keys (at least 1).
    pub max: u32,
}

impl BatchLimits {
    /// The limits of a committee whose polynomials have `k` coefficients.
    pub fn for_k(k: u32) -> Self {
        let k = u64::from(k.max(1));
        // A dealer's send: k x k commitment points per key (64-byte uncompressed
        // `x ‖ y` on the wire) and the receiver's 4k slice scalars. Public shares
        // with proofs (at most 6 points per key) bound the other messages.
        let send_per_key = (64 * k * k + 128 * k).max(6 * 64);
        let by_message =
            MAX_BATCH_MESSAGE_BYTES.saturating_sub(BATCH_OVERHEAD_BYTES) / send_per_key;
        // A complaint: 64 bytes of hashes per key plus one key's matrix and slice.
        let by_tx = MAX_BATCH_TX_BYTES
            .saturating_sub(BATCH_OVERHEAD_BYTES)
            .saturating_sub(33 * k * k + 128 * k)
            / 64;
        let max = by_message.min(by_tx).clamp(1, MAX_BATCH_KEYS);
        let max = u32::try_from(max).unwrap_or(u32::MAX);
        BatchLimits {
            min: MIN_BATCH_KEYS.min(max),
            max,
        }
    }

    /// Whether `count` keys is a batch size these limits accept.
    pub fn accepts(&self, count: u32) -> bool {
        (self.min..=self.max).contains(&count)
    }

    /// The most keys a batch may have when it reopens at the index of a batch
    /// of `cancelled` keys that missed its deadline: half of it (a batch too
    /// slow for the deadline shrinks until it fits), never below `min`.
    pub fn reopen_max(&self, cancelled: u32) -> u32 {
        (cancelled / 2).clamp(self.min, self.max)
    }

    /// The batch size an honest node asks for when it needs `want` keys and its
    /// configuration allows `configured` per batch: `want` capped by the
    /// configuration, then brought into `min..=max`.
    pub fn pick(&self, want: u64, configured: u32) -> u32 {
        let c = want.min(u64::from(configured)).max(1);
        let c = u32::try_from(c).unwrap_or(u32::MAX);
        c.clamp(self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_batch_keeps_a_send_and_a_complaint_under_their_limits() {
        for k in [1u32, 2, 3, 5, 11, 51, 257, 513] {
            let l = BatchLimits::for_k(k);
            assert!(l.min >= 1 && l.min <= l.max, "k={k}: {l:?}");
            let (k64, max) = (u64::from(k), u64::from(l.max));
            if l.max > 1 {
                assert!(
                    max * (64 * k64 * k64 + 128 * k64) <= MAX_BATCH_MESSAGE_BYTES,
                    "k={k}"
                );
                assert!(max * 64 + 33 * k64 * k64 <= MAX_BATCH_TX_BYTES, "k={k}");
            }
            assert!(max <= MAX_BATCH_KEYS);
        }
        // k = 3 (five nodes): 960 bytes of send per key.
        assert_eq!(BatchLimits::for_k(3).max, ((64 << 20) - (64 << 10)) / 960);
        assert_eq!(BatchLimits::for_k(3).min, MIN_BATCH_KEYS);
    }

    #[test]
    fn an_honest_pick_is_always_accepted_and_a_reopen_shrinks() {
        for k in [1u32, 3, 5, 300] {
            let l = BatchLimits::for_k(k);
            for want in [0u64, 1, 15, 16, 17, 361, 20_000, u64::MAX] {
                for configured in [1u32, 10, 361, 20_000, u32::MAX] {
                    assert!(
                        l.accepts(l.pick(want, configured)),
                        "k={k} {want} {configured}"
                    );
                }
            }
            assert!(l.accepts(l.reopen_max(l.max)));
            assert!(l.accepts(l.reopen_max(1)));
        }
        let l = BatchLimits::for_k(3);
        assert_eq!(l.reopen_max(1000), 500);
        assert_eq!(l.reopen_max(20), l.min);
        assert_eq!(l.pick(1, 361), l.min);
        assert_eq!(l.pick(5000, 361), 361);
    }
}
