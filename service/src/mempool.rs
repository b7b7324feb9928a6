//! The node's mempool: transactions waiting to be proposed.
//!
//! Transactions are kept in arrival order, deduplicated by keccak256 hash,
//! and bounded by count and total bytes (a full pool refuses new ones). The
//! proposer [`Mempool::reap`]s a block's worth without removing anything;
//! committed transactions are [`Mempool::remove`]d on every node after each
//! decided block, and their hashes are remembered for a while so a late
//! gossip copy is not admitted again.
//!
//! Locally submitted transactions (through [`MempoolSubmitter`], the node's
//! [`Submitter`]) are handed to the gossip hook ([`Mempool::set_gossip`]);
//! the p2p layer broadcasts them and calls [`Mempool::insert`] for copies
//! received from peers. Validity is not checked here: the proposer filters
//! with `check_tx` when it builds a block.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::hexfmt::keccak256;
use crate::node::Submitter;

/// Default largest number of pending transactions.
pub const DEFAULT_MAX_TXS: usize = 10_000;
/// Default largest total size of pending transactions.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// How many committed hashes are remembered to refuse late copies.
pub const RECENT_COMMITTED: usize = 100_000;

/// Broadcasts a locally submitted transaction to peers.
pub type GossipFn = Arc<dyn Fn(Vec<u8>) + Send + Sync>;

/// Why a transaction was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Already pending, or committed recently.
    #[error("duplicate transaction")]
    Duplicate,
    /// The pool is at its count or byte limit, or the tx alone exceeds it.
    #[error("mempool full")]
    Full,
}

#[derive(Default)]
struct Inner {
    order: BTreeMap<u64, [u8; 32]>,
    txs: HashMap<[u8; 32], (u64, Vec<u8>)>,
    bytes: usize,
    next: u64,
    committed: HashSet<[u8; 32]>,
    committed_order: VecDeque<[u8; 32]>,
}

/// Pending transactions, shared between RPC, p2p and the consensus driver.
pub struct Mempool {
    inner: Mutex<Inner>,
    notify: Notify,
    gossip: RwLock<Option<GossipFn>>,
    max_txs: usize,
    max_bytes: usize,
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
    /// A pool of at most `max_txs` transactions and `max_bytes` bytes.
    pub fn new(max_txs: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(Mempool {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            gossip: RwLock::new(None),
            max_txs,
            max_bytes,
        })
    }

    /// A pool with the default limits.
    pub fn with_defaults() -> Arc<Self> {
        Self::new(DEFAULT_MAX_TXS, DEFAULT_MAX_BYTES)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every update
        // is a few map operations), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits `tx`, saying why not if refused.
    pub fn try_insert(&self, tx: Vec<u8>) -> Result<[u8; 32], Refused> {
        let h = keccak256(&tx);
        {
            let mut g = self.lock();
            if g.txs.contains_key(&h) || g.committed.contains(&h) {
                return Err(Refused::Duplicate);
            }
            if g.txs.len() >= self.max_txs || g.bytes.saturating_add(tx.len()) > self.max_bytes {
                return Err(Refused::Full);
            }
            let seq = g.next;
            g.next += 1;
            g.bytes += tx.len();
            g.order.insert(seq, h);
            g.txs.insert(h, (seq, tx));
        }
        self.notify.notify_waiters();
        Ok(h)
    }

    /// Admits `tx`; false if it is a duplicate or the pool is full.
    pub fn insert(&self, tx: Vec<u8>) -> bool {
        self.try_insert(tx).is_ok()
    }

    /// Admits a locally submitted `tx` and gossips it to peers.
    pub fn submit_local(&self, tx: Vec<u8>) -> Result<[u8; 32], Refused> {
        let h = self.try_insert(tx.clone())?;
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

    /// Pending transactions in arrival order, as many as fit in `max_bytes`
    /// (one that does not fit is skipped, later smaller ones still taken).
    /// Nothing is removed.
    pub fn reap(&self, max_bytes: usize) -> Vec<Vec<u8>> {
        let g = self.lock();
        let mut out = Vec::new();
        let mut used = 0usize;
        for h in g.order.values() {
            let Some((_, tx)) = g.txs.get(h) else {
                continue;
            };
            if used.saturating_add(tx.len()) > max_bytes {
                continue;
            }
            used += tx.len();
            out.push(tx.clone());
        }
        out
    }

    fn take(g: &mut Inner, h: &[u8; 32]) -> bool {
        match g.txs.remove(h) {
            Some((seq, tx)) => {
                g.order.remove(&seq);
                g.bytes -= tx.len();
                true
            }
            None => false,
        }
    }

    /// Removes committed transactions and remembers them so late copies are refused.
    pub fn remove(&self, hashes: &[[u8; 32]]) {
        let mut g = self.lock();
        for h in hashes {
            Self::take(&mut g, h);
            if g.committed.insert(*h) {
                g.committed_order.push_back(*h);
            }
        }
        while g.committed_order.len() > RECENT_COMMITTED {
            if let Some(old) = g.committed_order.pop_front() {
                g.committed.remove(&old);
            }
        }
    }

    /// Drops transactions that can never be included (they stay admissible later).
    pub fn evict(&self, hashes: &[[u8; 32]]) {
        let mut g = self.lock();
        for h in hashes {
            Self::take(&mut g, h);
        }
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.lock().txs.contains_key(hash)
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.lock().txs.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bytes pending.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn dedups_bounds_and_keeps_order() {
        let m = Mempool::new(3, 100);
        assert!(m.insert(b"a".to_vec()));
        assert!(!m.insert(b"a".to_vec()));
        assert!(m.insert(b"b".to_vec()));
        assert!(m.insert(b"c".to_vec()));
        assert_eq!(m.try_insert(b"d".to_vec()), Err(Refused::Full));
        assert_eq!(
            m.reap(1000),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(m.len(), 3, "reap removes nothing");
        m.remove(&[keccak256(b"b")]);
        assert_eq!(m.reap(1000), vec![b"a".to_vec(), b"c".to_vec()]);
        // A committed tx is not admitted again.
        assert_eq!(m.try_insert(b"b".to_vec()), Err(Refused::Duplicate));
        // An evicted one is.
        m.evict(&[keccak256(b"a")]);
        assert!(m.insert(b"a".to_vec()));
        assert_eq!(m.reap(1000), vec![b"c".to_vec(), b"a".to_vec()]);
    }

    #[test]
    fn byte_limits() {
        let m = Mempool::new(100, 10);
        assert!(m.insert(vec![1; 6]));
        assert_eq!(m.try_insert(vec![2; 5]), Err(Refused::Full));
        assert!(m.insert(vec![3; 4]));
        assert_eq!(m.bytes(), 10);
        // Reap skips what does not fit and takes later smaller ones.
        assert_eq!(m.reap(5), vec![vec![3; 4]]);
        assert_eq!(m.reap(3), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn local_submissions_are_gossiped_once() {
        let m = Mempool::with_defaults();
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        m.set_gossip(Arc::new(move |_tx| {
            n2.fetch_add(1, Ordering::SeqCst);
        }));
        let s = MempoolSubmitter(m.clone());
        s.submit(b"x".to_vec()).unwrap();
        s.submit(b"x".to_vec()).unwrap();
        assert!(m.insert(b"y".to_vec()), "peer copies are not gossiped");
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert_eq!(m.len(), 2);
    }

    #[tokio::test]
    async fn wait_nonempty_wakes_on_insert_and_times_out() {
        let m = Mempool::with_defaults();
        assert!(!m.wait_nonempty(Duration::from_millis(20)).await);
        let m2 = m.clone();
        let t = tokio::spawn(async move { m2.wait_nonempty(Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        m.insert(b"z".to_vec());
        assert!(tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap()
            .unwrap());
    }
}
