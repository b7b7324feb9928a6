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
