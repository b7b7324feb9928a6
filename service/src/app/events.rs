//! How a consensus [`Event`] reads for operators (progress stream, logs).

use super::Event;

impl Event {
    /// The event's progress kind (`"dealer_set"`, `"public_keys"`, `"key_assigned"`,
    /// `"epoch"`, `"reshare"`, `"batch_opened"`, `"batch_cancelled"`, `"blamed"`) and a one-line description.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Event::DealerSet { batch, dealers } => (
                "dealer_set",
                format!(
                    "keys {}..{} dealers {:?}",
                    batch.start,
                    batch.end(),
                    dealers
                ),
            ),
            Event::PublicKeys { batch } => (
                "public_keys",
                format!("keys {}..{} created", batch.start, batch.end()),
            ),
            Event::ReshareDealerSet { batch, dealers } => (
                "reshare",
                format!(
                    "keys {}..{} reshared to epoch {} by old dealers {:?}",
                    batch.start,
                    batch.end(),
                    batch.epoch,
                    dealers
                ),
            ),
            Event::ResharedPublicKeys { batch } => (
                "reshare",
                format!(
                    "keys {}..{} held by epoch {} with unchanged public keys",
                    batch.start,
                    batch.end(),
                    batch.epoch
                ),
            ),
            Event::KeyAssigned { index, new } => (
                "key_assigned",
                format!("key {index} ({})", if *new { "new" } else { "existing" }),
            ),
            Event::HandoverDecided { epoch } => {
                ("epoch", format!("hand-over to epoch {epoch} decided"))
            }
            Event::EpochChanged { epoch } => ("epoch", format!("epoch {epoch} is current")),
            Event::HandoverAborted { epoch } => (
                "epoch",
                format!("hand-over to epoch {epoch} aborted: the current committee serves on"),
            ),
            Event::BatchOpened { batch } => (
                "batch_opened",
                format!("keys {}..{} open for dealing", batch.start, batch.end()),
            ),
            Event::BatchCancelled { batch, opened_at } => (
                "batch_cancelled",
                format!(
                    "keys {}..{} cancelled: no dealer set within {} blocks of height {opened_at}",
                    batch.start,
                    batch.end(),
                    crate::tx::BATCH_DEADLINE_BLOCKS
                ),
            ),
            Event::Blamed {
                batch,
                node,
                as_dealer,
                reason,
            } => (
                "blamed",
                format!(
                    "node {node} blamed as {} in batch {}: {reason}",
                    if *as_dealer {
                        "dealer"
                    } else {
                        "false accuser"
                    },
                    batch.start
                ),
            ),
        }
    }
}
