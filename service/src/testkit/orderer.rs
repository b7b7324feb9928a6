//! An in-process stand-in for a consensus engine (the test kit's mock consensus).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::app;
use crate::node::{NodeError, NodeState, Submitter};

/// An in-process stand-in for a consensus engine, used by the test suite's
/// multi-node harness: every node submits into one queue, and the orderer
/// applies the same ordered blocks to every attached node and checks that the
/// app hashes agree. Detached nodes (down, restarting) are caught up from the
/// block log when they are attached again. It is not a BFT engine and is never
/// used by `torus-node` itself.
pub struct LocalOrderer {
    queue: Mutex<Vec<Vec<u8>>>,
    nodes: Mutex<BTreeMap<u32, Arc<NodeState>>>,
    log: Mutex<Vec<Vec<Vec<u8>>>>,
    notify: tokio::sync::Notify,
    /// Largest number of transactions per block.
    pub max_block_txs: usize,
}

impl std::fmt::Debug for LocalOrderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalOrderer")
    }
}

/// A node's handle on a [`LocalOrderer`].
#[derive(Clone, Debug)]
pub struct OrdererHandle(pub Arc<LocalOrderer>);

impl Submitter for OrdererHandle {
    fn submit(&self, tx: Vec<u8>) -> Result<(), String> {
        self.0
            .queue
            .lock()
            .map_err(|_| "orderer poisoned".to_string())?
            .push(tx);
        self.0.notify.notify_one();
        Ok(())
    }
}

impl LocalOrderer {
    /// A new orderer with no nodes.
    pub fn new() -> Arc<Self> {
        Arc::new(LocalOrderer {
            queue: Mutex::new(Vec::new()),
            nodes: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
            max_block_txs: 10_000,
        })
    }

    /// Attaches a node under `id`, replaying the blocks it missed.
    pub fn attach(self: &Arc<Self>, id: u32, node: Arc<NodeState>) -> Result<(), NodeError> {
        node.set_submitter(Arc::new(OrdererHandle(self.clone())));
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        let head = node.store().head()?.height;
        for (i, txs) in log.iter().enumerate() {
            let h = i as u64 + 1;
            if h > head {
                node.apply_block(h, txs)?;
            }
        }
        if let Ok(mut n) = self.nodes.lock() {
            n.insert(id, node);
        }
        Ok(())
    }

    /// Detaches a node (it stops receiving blocks).
    pub fn detach(&self, id: u32) -> Option<Arc<NodeState>> {
        self.nodes.lock().ok().and_then(|mut n| n.remove(&id))
    }

    /// Orders everything queued so far into one block and applies it to every
    /// attached node. Returns the height, or None if nothing was queued.
    pub fn step(&self) -> Result<Option<u64>, NodeError> {
        let txs: Vec<Vec<u8>> = {
            let mut q = self
                .queue
                .lock()
                .map_err(|_| NodeError::Broadcast("orderer poisoned".into()))?;
            let n = q.len().min(self.max_block_txs);
            q.drain(..n).collect()
        };
        if txs.is_empty() {
            return Ok(None);
        }
        let height = {
            let mut log = self
                .log
                .lock()
                .map_err(|_| NodeError::Broadcast("orderer poisoned".into()))?;
            log.push(txs.clone());
            log.len() as u64
        };
        let nodes: Vec<(u32, Arc<NodeState>)> = self
            .nodes
            .lock()
            .map(|n| n.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        let mut hash: Option<[u8; 32]> = None;
        for (id, node) in nodes {
            let b = node.apply_block(height, &txs)?;
            match hash {
                None => hash = Some(b.app_hash),
                Some(h) if h != b.app_hash => {
                    return Err(NodeError::App(app::AppError::Storage(format!(
                        "app hash divergence at height {height} on node {id}"
                    ))))
                }
                _ => {}
            }
        }
        Ok(Some(height))
    }

    /// Runs [`Self::step`] whenever transactions arrive (or every `tick`).
    pub async fn run(self: Arc<Self>, tick: Duration) {
        loop {
            let _ = tokio::time::timeout(tick, self.notify.notified()).await;
            if let Err(e) = self.step() {
                tracing::error!(error = %e, "local orderer");
            }
        }
    }
}
