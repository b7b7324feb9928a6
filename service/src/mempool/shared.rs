//! The [`Pool`] shared between RPC, p2p and the consensus driver, with the
//! admission rule run outside its lock, the gossip hook and the metrics.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use super::pool::{admit, Admitted, Dropped, Lane, Limits, Origin, Pool, Refused, Usage};
use crate::hexfmt::keccak256;
use crate::metrics::{Metrics, ReasonLabels};
use crate::node::{NodeState, Submitter};

/// Broadcasts a locally submitted transaction to peers.
pub type GossipFn = Arc<dyn Fn(Vec<u8>) + Send + Sync>;

/// The admission rule applied to every transaction before it enters the pool
/// (production: [`admit`] against the node's committed state).
pub type AdmitFn = Arc<dyn Fn(&[u8]) -> Result<Admitted, Refused> + Send + Sync>;

/// Pending transactions, shared between RPC, p2p and the consensus driver.
pub struct Mempool {
    pool: Mutex<Pool>,
    admit: AdmitFn,
    max_tx_bytes: usize,
    notify: Notify,
    gossip: RwLock<Option<GossipFn>>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("len", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Mempool {
    /// A pool of `limits` admitting what `admit` accepts.
    pub fn new(limits: Limits, admit: AdmitFn, metrics: Option<Arc<Metrics>>) -> Arc<Self> {
        Arc::new(Mempool {
            max_tx_bytes: limits.max_tx_bytes,
            pool: Mutex::new(Pool::new(limits)),
            admit,
            notify: Notify::new(),
            gossip: RwLock::new(None),
            metrics,
        })
    }

    /// A pool of `limits` for `node`: transactions are authenticated against
    /// its committed state ([`admit`]); refusals are counted in its metrics.
    pub fn for_node(node: &Arc<NodeState>, limits: Limits) -> Arc<Self> {
        // Weak: the node holds the pool (as its submitter); a strong reference
        // back would keep both alive for ever.
        let weak: Weak<NodeState> = Arc::downgrade(node);
        let max = limits.max_tx_bytes;
        let admit_fn: AdmitFn = Arc::new(move |tx: &[u8]| {
            if tx.len() > max {
                return Err(Refused::TooLarge);
            }
            let node = weak.upgrade().ok_or(Refused::Unavailable)?;
            let snap = node.store().snapshot().map_err(|e| {
                tracing::warn!(error = %e, "mempool: cannot read the committed state");
                Refused::Unavailable
            })?;
            admit(&snap, tx, max)
        });
        Self::new(limits, admit_fn, Some(node.metrics().clone()))
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // A panic while holding the lock leaves consistent data (every update
        // is a few map operations), so a poisoned lock is still usable.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refused(&self, r: Refused) -> Refused {
        if let Some(m) = &self.metrics {
            m.mempool_refused
                .get_or_create(&ReasonLabels {
                    reason: r.reason().into(),
                })
                .inc();
        }
        r
    }

    fn dropped(&self, d: Dropped, check_tx: usize) {
        let Some(m) = &self.metrics else {
            return;
        };
        for (reason, n) in [
            ("epoch", d.epoch),
            ("age", d.age),
            ("never_fits", d.never_fits),
            ("check_tx", check_tx),
        ] {
            if n > 0 {
                m.mempool_dropped
                    .get_or_create(&ReasonLabels {
                        reason: reason.into(),
                    })
                    .inc_by(n as u64);
            }
        }
    }

    /// Admits `tx` from `origin`, saying why not if refused. Cheap refusals
    /// (size, duplicate) come before the signature check.
    fn try_insert(&self, origin: Origin, tx: Vec<u8>) -> Result<[u8; 32], Refused> {
        if tx.len() > self.max_tx_bytes {
            return Err(self.refused(Refused::TooLarge));
        }
        let h = keccak256(&tx);
        if self.lock().is_known(&h) {
            return Err(self.refused(Refused::Duplicate));
        }
        let meta = (self.admit)(&tx).map_err(|r| self.refused(r))?;
        self.lock()
            .insert(tx, origin, meta)
            .map_err(|r| self.refused(r))?;
        self.notify.notify_waiters();
        Ok(h)
    }

    /// Admits a transaction gossiped by committee peer `from`.
    pub fn insert_from_peer(&self, from: u32, tx: Vec<u8>) -> Result<[u8; 32], Refused> {
        self.try_insert(Origin::Peer(from), tx)
    }

    /// Admits a locally submitted `tx` and gossips it to peers.
    pub fn submit_local(&self, tx: Vec<u8>) -> Result<[u8; 32], Refused> {
        let h = self.try_insert(Origin::Local, tx.clone())?;
        let hook = self.gossip.read().ok().and_then(|g| g.clone());
        if let Some(gossip) = hook {
            gossip(tx);
        }
        Ok(h)
    }

    /// Sets the hook that broadcasts locally submitted transactions.
    pub fn set_gossip(&self, f: GossipFn) {
        if let Ok(mut g) = self.gossip.write() {
            *g = Some(f);
        }
    }

    /// A block's worth of pending transactions, keygen lane first (see
    /// [`Pool::reap`]): at most `max_txs`, costing at most `budget` bytes.
    pub fn reap(&self, budget: usize, max_txs: usize) -> Vec<Vec<u8>> {
        let (txs, dropped) = self.lock().reap(budget, max_txs);
        if dropped.never_fits > 0 {
            tracing::debug!(
                n = dropped.never_fits,
                "dropped transactions larger than a block"
            );
            self.dropped(dropped, 0);
        }
        txs
    }

    /// Removes committed transactions and remembers them so late copies are refused.
    pub fn remove(&self, hashes: &[[u8; 32]]) {
        self.lock().remove_committed(hashes);
    }

    /// Drops transactions `check_tx` found unusable (they stay admissible later).
    pub fn evict(&self, hashes: &[[u8; 32]]) {
        let n = self.lock().evict(hashes);
        self.dropped(Dropped::default(), n);
    }

    /// After the block at `height`: drops what names an epoch no longer
    /// active (`current`, or `next` for resharing votes) and what is too old.
    pub fn after_block(&self, height: u64, current: u64, next: Option<u64>) {
        let d = self.lock().after_block(height, current, next);
        if d != Dropped::default() {
            tracing::debug!(
                height,
                epoch = d.epoch,
                age = d.age,
                "dropped stale transactions"
            );
            self.dropped(d, 0);
        }
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.lock().contains(hash)
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bytes pending.
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
    }

    /// What `lane` holds.
    pub fn lane_usage(&self, lane: Lane) -> Usage {
        self.lock().lane_usage(lane)
    }

    /// Waits until something is pending or `timeout` passes; true if non-empty.
    pub async fn wait_nonempty(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking so an insert in between is not missed.
            notified.as_mut().enable();
            if !self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return !self.is_empty();
            }
        }
    }
}

/// The node's [`Submitter`] for the embedded engine: admit locally, then gossip.
#[derive(Clone, Debug)]
pub struct MempoolSubmitter(pub Arc<Mempool>);

impl Submitter for MempoolSubmitter {
    fn submit(&self, tx: Vec<u8>) -> Result<(), String> {
        match self.0.submit_local(tx) {
            Ok(_) => Ok(()),
            // Already pending: it will be proposed; waiting for it is still meaningful.
            Err(Refused::Duplicate) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}
