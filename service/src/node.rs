//! A node's shared state and its interface to the consensus engine.
//!
//! The consensus engine (malachite embedded, CometBFT over ABCI, or in tests
//! the test kit's `LocalOrderer`) calls [`NodeState::apply_block`] (or the two-phase
//! [`NodeState::finalize`] + [`NodeState::commit`]) with each decided block; the
//! node submits its own transactions through a [`Submitter`].

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand_core::RngCore;
use tokio::sync::broadcast;

use crate::app::{self, App, BlockOutcome, TxCode, TxOutcome};
use crate::config::{Genesis, NodeConfig};
use crate::crypto::NodeKey;
use crate::hexfmt::keccak256;
use crate::metrics::{Metrics, TxLabels};
use crate::store::{DecidedRecord, Store, StoreError};
use crate::tx::{EpochInfo, SignedTx, TxBody};
use crate::verifier::Verifiers;

/// Node failures.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Verifier configuration.
    #[error("verifiers: {0}")]
    Verifiers(String),
    /// The consensus app.
    #[error(transparent)]
    App(#[from] app::AppError),
    /// This node is not a member of the current committee.
    #[error("this node's key {0} is not in the current committee")]
    NotMember(String),
    /// No consensus engine attached.
    #[error("no consensus engine attached")]
    NoConsensus,
    /// The engine refused the transaction.
    #[error("unable to broadcast: {0}")]
    Broadcast(String),
    /// The transaction did not commit in time.
    #[error("timed out")]
    Timeout,
}

/// Where a node sends its own transactions (the consensus engine's mempool).
pub trait Submitter: Send + Sync + 'static {
    /// Queues `tx` for ordering.
    fn submit(&self, tx: Vec<u8>) -> Result<(), String>;
}

/// A committed block as subscribers see it.
#[derive(Clone, Debug)]
pub struct CommittedBlock {
    /// Height.
    pub height: u64,
    /// App hash after it.
    pub app_hash: [u8; 32],
    /// `(tx hash, outcome)` in block order.
    pub txs: Vec<([u8; 32], TxOutcome)>,
}

/// A progress event for operators (gRPC stream, logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    /// Height it happened at.
    pub height: u64,
    /// "block", "dealer_set", "public_keys", "key_assigned", "epoch".
    pub kind: &'static str,
    /// Detail.
    pub detail: String,
    /// Unix milliseconds.
    pub unix_ms: u64,
}

/// Unix seconds now.
pub fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Everything a running node shares between its servers and its consensus driver:
/// opened once, then handed out read-only. Rooms take the parts they need
/// through the accessors below; nothing outside this file can replace a part.
pub struct NodeState {
    config: NodeConfig,
    key: NodeKey,
    genesis: Genesis,
    store: Store,
    verifiers: Verifiers,
    metrics: Arc<Metrics>,
    profile: torus_engine::profile::HwProfile,
    engine: torus_engine::Engine,
    blocks: broadcast::Sender<Arc<CommittedBlock>>,
    progress: broadcast::Sender<ProgressEvent>,
    started: Instant,
    last_block: Mutex<Instant>,
    submitter: RwLock<Option<Arc<dyn Submitter>>>,
    apply: Mutex<Option<BlockOutcome>>,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("address", &self.key.public().address())
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl NodeState {
    /// Opens a node from its configuration: key file, genesis, LMDB, verifiers.
    pub fn open(config: NodeConfig) -> Result<Arc<Self>, NodeError> {
        let key = crate::config::load_or_create_key(&config.key_path())?;
        let genesis = Genesis::load(&config.genesis)?;
        Self::open_with(config, key, genesis)
    }

    /// Opens a node with an explicit key and genesis.
    pub fn open_with(
        config: NodeConfig,
        key: NodeKey,
        genesis: Genesis,
    ) -> Result<Arc<Self>, NodeError> {
        let store = Store::open_with(
            &config.data_dir,
            &key,
            config.store.map_size(),
            config.store.client_limits(),
        )?;
        store.init_genesis(&genesis.epoch_info()?)?;
        let verifiers = Verifiers::new(&config.verifiers, config.dev_mode)
            .map_err(|e| NodeError::Verifiers(e.to_string()))?;
        let profile = match &config.hw_profile {
            Some(p) => torus_engine::profile::HwProfile::load(p).map_err(|e| {
                crate::config::ConfigError::Invalid {
                    field: "hw_profile".into(),
                    problem: format!("{}: {e}", p.display()),
                }
            })?,
            None => torus_engine::profile::HwProfile::default(),
        };
        let engine = torus_engine::Engine::from_profile(&profile);
        let (blocks, _) = broadcast::channel(1024);
        let (progress, _) = broadcast::channel(1024);
        let node = Arc::new(NodeState {
            config,
            key,
            genesis,
            store,
            verifiers,
            metrics: Arc::new(Metrics::new()),
            profile,
            engine,
            blocks,
            progress,
            started: Instant::now(),
            last_block: Mutex::new(Instant::now()),
            submitter: RwLock::new(None),
            apply: Mutex::new(None),
        });
        node.refresh_gauges()?;
        Ok(node)
    }

    /// Its configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Its identity key.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// The genesis it was opened with.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Its LMDB store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Its token verifiers.
    pub fn verifiers(&self) -> &Verifiers {
        &self.verifiers
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Its hardware profile (from `hw_profile`, else the defaults).
    pub fn profile(&self) -> &torus_engine::profile::HwProfile {
        &self.profile
    }

    /// The batch engine configured from the profile.
    pub fn engine(&self) -> &torus_engine::Engine {
        &self.engine
    }

    /// Committed blocks from now on.
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.blocks.subscribe()
    }

    /// Operator progress events from now on.
    pub fn subscribe_progress(&self) -> broadcast::Receiver<ProgressEvent> {
        self.progress.subscribe()
    }

    /// How long ago the node was opened.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// When this node last committed a block, or when it was opened if it has not since.
    pub fn last_block(&self) -> Instant {
        self.last_block
            .lock()
            .map(|g| *g)
            .unwrap_or_else(|p| *p.into_inner())
    }

    /// Closes the node's LMDB environment (after everything else it holds is dropped).
    pub fn close(self) {
        let store = self.store.clone();
        drop(self);
        store.close();
    }

    /// Attaches the consensus engine's submit path.
    pub fn set_submitter(&self, s: Arc<dyn Submitter>) {
        if let Ok(mut g) = self.submitter.write() {
            *g = Some(s);
        }
    }

    /// The current committee.
    pub fn epoch(&self) -> Result<EpochInfo, NodeError> {
        Ok(app::current_epoch(&self.store.snapshot()?)?)
    }

    /// The next committee while a hand-over to it is pending.
    pub fn next_epoch(&self) -> Result<Option<EpochInfo>, NodeError> {
        Ok(app::next_epoch(&self.store.snapshot()?)?)
    }

    /// This node's index in the current committee.
    pub fn index(&self) -> Result<u32, NodeError> {
        let e = self.epoch()?;
        e.index_of(&self.key.public().compressed())
            .ok_or_else(|| NodeError::NotMember(self.key.public().address()))
    }

    /// CheckTx against the committed state.
    pub fn check_tx(&self, bytes: &[u8]) -> Result<TxOutcome, NodeError> {
        Ok(App.check_tx(&self.store.snapshot()?, bytes))
    }

    /// Executes a decided block without persisting it (ABCI FinalizeBlock).
    pub fn finalize(&self, height: u64, txs: &[Vec<u8>]) -> Result<BlockOutcome, NodeError> {
        let head = self.store.head()?;
        let snap = self.store.snapshot()?;
        let out = App.finalize_block(&snap, height, &head.app_hash, txs)?;
        drop(snap);
        if let Ok(mut g) = self.apply.lock() {
            *g = Some(out.clone());
        }
        Ok(out)
    }

    /// Persists the block staged by [`Self::finalize`] (ABCI Commit) and notifies subscribers.
    pub fn commit(&self, txs: &[Vec<u8>]) -> Result<Arc<CommittedBlock>, NodeError> {
        let staged = self.apply.lock().ok().and_then(|mut g| g.take());
        let Some(out) = staged else {
            return Err(NodeError::App(app::AppError::Storage(
                "commit without a finalized block".into(),
            )));
        };
        self.persist(out, txs, None)
    }

    /// Executes and persists a decided block at `height` (must be head + 1; an
    /// already-committed height is ignored and its stored result returned as empty).
    pub fn apply_block(
        &self,
        height: u64,
        txs: &[Vec<u8>],
    ) -> Result<Arc<CommittedBlock>, NodeError> {
        self.apply_block_with(height, txs, None)
    }

    /// As [`Self::apply_block`], also storing the block's decided record (its
    /// encoding and commit certificate, for value sync) in the same LMDB
    /// transaction as its state writes and head.
    pub fn apply_block_with(
        &self,
        height: u64,
        txs: &[Vec<u8>],
        decided: Option<&DecidedRecord>,
    ) -> Result<Arc<CommittedBlock>, NodeError> {
        let head = self.store.head()?;
        if height <= head.height {
            return Ok(Arc::new(CommittedBlock {
                height,
                app_hash: head.app_hash,
                txs: Vec::new(),
            }));
        }
        let snap = self.store.snapshot()?;
        let out = App.finalize_block(&snap, height, &head.app_hash, txs)?;
        drop(snap);
        self.persist(out, txs, decided)
    }

    fn persist(
        &self,
        out: BlockOutcome,
        txs: &[Vec<u8>],
        decided: Option<&DecidedRecord>,
    ) -> Result<Arc<CommittedBlock>, NodeError> {
        self.store.commit_block_with(&out, decided)?;
        crate::failpoint::hit("block.committed");
        let hashes: Vec<[u8; 32]> = txs.iter().map(|t| keccak256(t)).collect();
        let now = unix_ms();
        for (bytes, r) in txs.iter().zip(&out.results) {
            let kind = SignedTx::decode(bytes)
                .map(|t| t.body.kind())
                .unwrap_or("undecodable");
            self.metrics
                .txs
                .get_or_create(&TxLabels {
                    kind: kind.to_string(),
                    code: format!("{:?}", r.code),
                })
                .inc();
            for e in &r.events {
                let (kind, detail) = e.describe();
                tracing::info!(height = out.height, kind, %detail, "consensus event");
                let _ = self.progress.send(ProgressEvent {
                    height: out.height,
                    kind,
                    detail,
                    unix_ms: now,
                });
            }
            if r.code != TxCode::Ok && r.code != TxCode::Duplicate {
                tracing::debug!(height = out.height, code = ?r.code, log = %r.log, "tx rejected");
            }
        }
        let block = Arc::new(CommittedBlock {
            height: out.height,
            app_hash: out.app_hash,
            txs: hashes.into_iter().zip(out.results).collect(),
        });
        self.refresh_gauges()?;
        match self.last_block.lock() {
            Ok(mut g) => *g = Instant::now(),
            Err(p) => *p.into_inner() = Instant::now(),
        }
        let _ = self.blocks.send(block.clone());
        let _ = self.progress.send(ProgressEvent {
            height: block.height,
            kind: "block",
            detail: hex::encode(block.app_hash),
            unix_ms: now,
        });
        Ok(block)
    }

    fn refresh_gauges(&self) -> Result<(), NodeError> {
        let snap = self.store.snapshot()?;
        let c = app::counters(&snap)?;
        drop(snap);
        let head = self.store.head()?;
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.metrics.height.set(g(head.height));
        self.metrics.keys_created.set(g(c.last_created));
        self.metrics.keys_assigned.set(g(c.last_unassigned));
        self.metrics
            .keys_free
            .set(g(c.last_created - c.last_unassigned));
        Ok(())
    }

    /// Builds and signs a transaction as this node in the current epoch.
    pub fn sign_tx(&self, body: TxBody) -> Result<SignedTx, NodeError> {
        self.sign_tx_in(&self.epoch()?, body)
    }

    /// Signs `body` as this node's member of committee `e` (the next committee's
    /// resharing transactions during a hand-over).
    pub fn sign_tx_in(&self, e: &EpochInfo, body: TxBody) -> Result<SignedTx, NodeError> {
        let idx = e
            .index_of(&self.key.public().compressed())
            .ok_or_else(|| NodeError::NotMember(self.key.public().address()))?;
        Ok(SignedTx::sign(
            &self.key,
            e.epoch,
            idx,
            rand_core::OsRng.next_u64(),
            body,
        ))
    }

    /// Hands an encoded transaction to the consensus engine's mempool without waiting.
    pub fn submit(&self, tx: Vec<u8>) -> Result<(), NodeError> {
        let sub = self
            .submitter
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(NodeError::NoConsensus)?;
        sub.submit(tx).map_err(NodeError::Broadcast)?;
        crate::failpoint::hit("tx.submitted");
        Ok(())
    }

    /// Submits a transaction and waits until a block containing it commits.
    pub async fn submit_and_wait(
        &self,
        tx: &SignedTx,
        timeout: Duration,
    ) -> Result<TxOutcome, NodeError> {
        let bytes = tx.encode();
        let hash = keccak256(&bytes);
        let mut rx = self.blocks.subscribe();
        let sub = self
            .submitter
            .read()
            .ok()
            .and_then(|g| g.clone())
            .ok_or(NodeError::NoConsensus)?;
        sub.submit(bytes).map_err(NodeError::Broadcast)?;
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(b) => {
                        if let Some((_, o)) = b.txs.iter().find(|(h, _)| *h == hash) {
                            return Ok(o.clone());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Err(NodeError::Timeout),
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| NodeError::Timeout)?
    }
}
