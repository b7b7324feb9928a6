//! The open-batch trigger: the refill rule (sans-IO) and the `OpenBatch`
//! submission it drives.

use std::time::{Duration, Instant};

use super::Keygen;
use crate::app;
use crate::tx::{BatchId, TxBody};

/// The buffer's refill state (sans-IO): a batch opens once fewer keys than the
/// low watermark are buffered, and batches keep opening until the high
/// watermark is reached (hysteresis), so a buffer between the two watermarks
/// is refilled to the top rather than left there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Refill {
    filling: bool,
}

impl Refill {
    /// With `buffered` free plus in-flight keys and no batch open: how many
    /// keys the next batch should bring (the need up to `high`), or `None`.
    fn want(&mut self, buffered: u64, low: u64, high: u64) -> Option<u64> {
        if buffered >= high {
            self.filling = false;
            return None;
        }
        if buffered < low {
            self.filling = true;
        }
        self.filling.then(|| high - buffered)
    }
}

impl Keygen {
    /// Submits `OpenBatch` when no batch is open and the buffer fell below its
    /// low watermark, or is still being filled up to its high one ([`Refill`]).
    pub(super) fn maybe_open(&mut self) {
        let Ok(snap) = self.node.store().snapshot() else {
            return;
        };
        let (Ok(epoch), Ok(open), Ok(c)) = (
            app::current_epoch(&snap),
            app::open_batch(&snap),
            app::counters(&snap),
        ) else {
            return;
        };
        if open.is_some() || c.frozen || !self.member_of(&epoch) {
            return;
        }
        let buffered = c.next_batch_start - c.last_unassigned;
        let Some(want) =
            self.refill
                .want(buffered, self.cfg.low_watermark, self.cfg.high_watermark)
        else {
            return;
        };
        let start = c.next_batch_start;
        if let Some((s, at)) = self.open_sent {
            if s == start && at.elapsed() < Duration::from_millis(self.cfg.resubmit_ms) {
                return;
            }
        }
        // The committee's bounds (halved after a cancel at this index): an honest
        // node always asks for a size consensus accepts, rounding a small need up.
        let limits = match app::open_batch_limits(&snap, &epoch, start) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "keygen cannot read the batch limits");
                return;
            }
        };
        drop(snap);
        let batch = BatchId {
            epoch: epoch.epoch,
            start,
            count: limits.pick(want, self.cfg.batch_keys),
        };
        tracing::info!(
            start,
            keys = batch.count,
            buffered,
            low = self.cfg.low_watermark,
            high = self.cfg.high_watermark,
            "key buffer refilling to its high watermark: opening a batch"
        );
        self.open_sent = Some((start, Instant::now()));
        match self.node.sign_tx(TxBody::OpenBatch { batch }) {
            Ok(tx) => {
                if let Err(e) = self.node.submit(tx.encode()) {
                    tracing::warn!(error = %e, "could not submit OpenBatch");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot sign OpenBatch"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Refill;
    use crate::keygen::config::refill_low_watermark;
    use crate::tx::BatchLimits;

    #[test]
    fn the_buffer_refills_once_below_the_low_watermark_and_keeps_filling_to_the_high_one() {
        let mut r = Refill::default();
        // Between the watermarks and never below the low one: nothing to do.
        assert_eq!(r.want(90, 80, 100), None);
        assert_eq!(r.want(80, 80, 100), None);
        // Below the low watermark: fill up to the high one.
        assert_eq!(r.want(79, 80, 100), Some(21));
        // A batch landed but the buffer is still short of the top: keep filling.
        assert_eq!(r.want(95, 80, 100), Some(5));
        // Full: stop, and stay idle between the watermarks again.
        assert_eq!(r.want(100, 80, 100), None);
        assert_eq!(r.want(99, 80, 100), None);
        assert_eq!(r.want(81, 80, 100), None);
    }

    #[test]
    fn an_empty_buffer_fills_to_the_high_watermark_in_successive_batches() {
        let (high, batch) = (48, 16);
        let low = refill_low_watermark(high, batch);
        let limits = BatchLimits::for_k(3);
        let mut r = Refill::default();
        let mut buffered = 0;
        let mut sizes = Vec::new();
        while let Some(want) = r.want(buffered, low, high) {
            let count = limits.pick(want, batch);
            sizes.push(count);
            buffered += u64::from(count);
        }
        assert_eq!(sizes, vec![16, 16, 16]);
        assert_eq!(buffered, high);
    }

    #[test]
    fn a_login_from_a_full_buffer_opens_no_batch_until_a_whole_batch_is_missing() {
        let (high, batch) = (10_000, 2_000);
        let low = refill_low_watermark(high, batch);
        let limits = BatchLimits::for_k(3);
        let mut r = Refill::default();
        assert_eq!(r.want(high, low, high), None);
        // Logins take keys one at a time; the first batch is opened only when
        // more than a whole batch is missing, and it is a full one.
        let mut buffered = high;
        let first = loop {
            buffered -= 1;
            if let Some(want) = r.want(buffered, low, high) {
                break limits.pick(want, batch);
            }
        };
        assert_eq!(buffered, high - u64::from(batch) - 1);
        assert_eq!(first, batch);
    }

    #[test]
    fn the_refill_low_watermark_sits_a_batch_below_the_high_one_or_at_half_a_small_buffer() {
        assert_eq!(refill_low_watermark(10_000, 2_000), 8_000);
        assert_eq!(refill_low_watermark(48, 16), 32);
        // A buffer smaller than two batches refills when half of it is taken.
        assert_eq!(refill_low_watermark(20, 16), 10);
        assert_eq!(refill_low_watermark(5, 16), 3);
        assert_eq!(refill_low_watermark(1, 16), 1);
        assert_eq!(refill_low_watermark(0, 16), 0);
        for high in [2, 3, 17, 100, 1 << 40] {
            for batch in [1, 16, 361, u32::MAX] {
                let low = refill_low_watermark(high, batch);
                assert!(low < high, "high {high} batch {batch}: low {low}");
                assert!(low >= high / 2, "high {high} batch {batch}: low {low}");
            }
        }
    }
}
