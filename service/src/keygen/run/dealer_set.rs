//! The dealer set: proposed once k + t sharings completed here (after a grace
//! period for the rest), and decided in consensus.

use std::time::Instant;

use super::{BatchRun, Cx};
use crate::keygen::KeygenConfig;
use crate::store::records::BatchRecord;
use crate::tx::{DealerEvidence, ReadySig, TxBody};

impl BatchRun {
    // ---- dealer set ----

    /// Whether the dealer set was decided more than `after` ago and this node
    /// still holds no shares (its peers may have moved on: time to recover).
    pub fn stuck_since_decided(&self, now: Instant, after: std::time::Duration) -> bool {
        self.shares.is_none()
            && self
                .decided_at
                .is_some_and(|t| now.saturating_duration_since(t) >= after)
    }

    /// Whether this node holds its shares of the batch.
    pub fn has_shares(&self) -> bool {
        self.shares.is_some()
    }

    pub fn on_blamed(&mut self, node: u32, as_dealer: bool) {
        if as_dealer && self.blamed.insert(node) && self.decided.is_none() {
            // A proposal naming this dealer is now invalid: propose again without it.
            self.proposed = false;
        }
    }

    /// The dealer-set proposal, once enough sharings completed here.
    pub fn dealer_set_proposal(&mut self, now: Instant, cfg: &KeygenConfig) -> Option<TxBody> {
        if self.decided.is_some() || self.proposed {
            return None;
        }
        let need_readies = self.params.ready_threshold() as usize;
        let eligible = (self.dealer_count() as usize).saturating_sub(self.blamed.len());
        let trigger = self.proposal_trigger().min(eligible);
        if trigger < self.min_dealers() {
            return None;
        }
        let complete: Vec<(u32, [u8; 32])> = self
            .dealers
            .iter()
            .filter(|(d, _)| !self.blamed.contains(d))
            .filter_map(|(d, st)| st.complete.map(|h| (*d, h)))
            .collect();
        if complete.len() < trigger {
            return None;
        }
        let at = *self.threshold_at.get_or_insert(now);
        let n = u64::from(self.params.n);
        let position =
            (self.batch.start / u64::from(self.batch.count.max(1)) + u64::from(self.me)) % n;
        let wait = std::time::Duration::from_millis(cfg.grace_ms + position * cfg.stagger_ms);
        if complete.len() < eligible && now.saturating_duration_since(at) < wait {
            return None;
        }
        let mut dealers = Vec::new();
        for (d, h) in complete {
            let Some(st) = self.dealers.get(&d) else {
                continue;
            };
            let Some(r) = st.readies.get(&h) else {
                continue;
            };
            let readies: Vec<ReadySig> = r
                .iter()
                .take(need_readies)
                .map(|(signer, (_, sig))| ReadySig {
                    signer: *signer,
                    sig: *sig,
                })
                .collect();
            if readies.len() < need_readies {
                continue;
            }
            dealers.push(DealerEvidence {
                dealer: d,
                commitments: h,
                readies,
            });
        }
        if dealers.len() < self.min_dealers() {
            return None;
        }
        self.proposed = true;
        tracing::info!(
            batch = self.batch.start,
            dealers = ?dealers.iter().map(|d| d.dealer).collect::<Vec<_>>(),
            ms = self.started.elapsed().as_millis() as u64,
            "proposing the dealer set"
        );
        Some(TxBody::DealerSet {
            batch: self.batch,
            dealers,
        })
    }

    /// Consensus decided the batch's dealer set.
    pub fn on_decided(&mut self, cx: &mut Cx<'_>, rec: &BatchRecord) {
        if rec.batch != self.batch {
            return;
        }
        self.decided = Some(rec.clone());
        self.decided_at = Some(cx.now);
        tracing::info!(
            batch = self.batch.start,
            dealers = ?rec.dealers.iter().map(|d| d.0).collect::<Vec<_>>(),
            "dealer set decided"
        );
        self.try_aggregate(cx);
    }
}
