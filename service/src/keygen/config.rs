//! `[keygen]`: the key buffer's watermarks and the timing of a batch run.
//!
//! A leaf: it depends on no other room of the node (the configuration reads it,
//! key generation consumes it).

use serde::{Deserialize, Serialize};
use torus_engine::HwProfile;

use super::faults::Faults;
use crate::tx::MAX_BATCH_KEYS;

/// A `[keygen]` value that cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeygenConfigError {
    /// `batch_keys` outside `1..=MAX_BATCH_KEYS` (after the profile's default).
    #[error("keygen.batch_keys must be 1..={max}, got {0}", max = MAX_BATCH_KEYS)]
    BatchKeys(u32),
    /// The high watermark is below the low one.
    #[error("keygen.high_watermark ({high}) is below low_watermark ({low})")]
    Watermarks {
        /// Low watermark.
        low: u64,
        /// High watermark.
        high: u64,
    },
}

/// `[keygen]` settings (defaults from the hardware profile).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct KeygenConfig {
    /// Keys per batch (0 = the hardware profile's `batch_keys`).
    pub batch_keys: u32,
    /// Start a batch when free + in-flight keys fall below this (0 = profile).
    pub low_watermark: u64,
    /// Fill the buffer up to this many free + in-flight keys (0 = profile).
    pub high_watermark: u64,
    /// After k + t dealers completed, how long to wait for the others before
    /// proposing the dealer set, milliseconds.
    pub grace_ms: u64,
    /// Proposal stagger per position, milliseconds (spreads duplicate proposals).
    pub stagger_ms: u64,
    /// Re-submit an unanswered transaction after this many milliseconds.
    pub resubmit_ms: u64,
    /// A current member votes to abort a hand-over that has not completed this
    /// many seconds after this node saw it decided (k + t votes abort it); 0 never.
    pub handover_timeout_s: u64,
    /// Test-only misbehaviour (honoured only in dev mode).
    pub faults: Faults,
}

impl Default for KeygenConfig {
    fn default() -> Self {
        KeygenConfig {
            batch_keys: 0,
            low_watermark: 0,
            high_watermark: 0,
            grace_ms: 300,
            stagger_ms: 150,
            resubmit_ms: 5_000,
            handover_timeout_s: 3_600,
            faults: Faults::default(),
        }
    }
}

/// The low watermark that makes a buffer of `high` keys refill in whole
/// batches of `batch` keys: `high - min(batch, high / 2)`.
///
/// The driver opens a batch when fewer than the low watermark are buffered and
/// asks for the rest up to `high`, capped at `batch`: below this watermark that
/// need exceeds a whole batch, so every refill is a full batch, and the driver
/// keeps filling until `high` (see the driver's hysteresis). A buffer smaller
/// than two batches refills once half of it is taken, so logins never find it
/// empty while a refill is due. Below `high` whenever `high >= 2`.
pub fn refill_low_watermark(high: u64, batch: u32) -> u64 {
    high - u64::from(batch).min(high / 2)
}

impl KeygenConfig {
    /// Fills zero fields from the hardware profile and checks the result.
    pub fn resolve(&self, profile: &HwProfile) -> Result<KeygenConfig, KeygenConfigError> {
        let mut c = self.clone();
        if c.batch_keys == 0 {
            c.batch_keys = u32::try_from(profile.batch_keys).unwrap_or(u32::MAX);
        }
        if c.low_watermark == 0 {
            c.low_watermark = profile.key_buffer.low_watermark;
        }
        if c.high_watermark == 0 {
            c.high_watermark = profile.key_buffer.high_watermark;
        }
        if c.batch_keys == 0 || u64::from(c.batch_keys) > MAX_BATCH_KEYS {
            return Err(KeygenConfigError::BatchKeys(c.batch_keys));
        }
        if c.high_watermark < c.low_watermark {
            return Err(KeygenConfigError::Watermarks {
                low: c.low_watermark,
                high: c.high_watermark,
            });
        }
        Ok(c)
    }
}
