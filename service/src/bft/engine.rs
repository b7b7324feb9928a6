//! Starting and stopping malachite: the `Node` implementation, the engine
//! configuration, the libp2p identity, and the [`BftHandle`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use malachitebft_app_channel::app::config::{
    ConsensusConfig, DiscoveryConfig, P2pConfig, PubSubProtocol, TimeoutConfig, ValuePayload,
    ValueSyncConfig,
};
use malachitebft_app_channel::app::events::{RxEvent, TxEvent};
use malachitebft_app_channel::app::node::{self as mnode, EngineHandle};
use malachitebft_app_channel::app::types::Keypair;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::codec::BftCodec;
use super::context::{Address, Height, TorusContext, ValidatorSet};
use super::driver::Driver;
use super::signing::{PrivateKey, Signer};
use super::{BftConfig, BftError};
use crate::crypto::{NodeKey, NodePub};
use crate::mempool::Mempool;
use crate::node::NodeState;

/// The libp2p keypair of a node key (secp256k1, the same secret).
pub fn keypair(key: &NodeKey) -> Result<Keypair, BftError> {
    let mut secret = *key.to_bytes();
    let sk = libp2p_identity::secp256k1::SecretKey::try_from_bytes(&mut secret)
        .map_err(|e| BftError::Config(format!("node key as a libp2p key: {e}")))?;
    Ok(Keypair::from(libp2p_identity::secp256k1::Keypair::from(sk)))
}

/// The consensus peer id of a node's public key (what `/p2p/…` addresses name).
pub fn peer_id(pk: &NodePub) -> Result<libp2p_identity::PeerId, BftError> {
    let p = libp2p_identity::secp256k1::PublicKey::try_from_bytes(&pk.compressed())
        .map_err(|e| BftError::Config(format!("public key as a libp2p key: {e}")))?;
    Ok(libp2p_identity::PublicKey::from(p).to_peer_id())
}

/// The peers that may connect to the consensus network: every validator (peer
/// id from its node key) and each configured observer. Everyone else is denied
/// at connection establishment, so outsiders get no votes, no proposal parts and
/// no value sync (decided blocks carry users' verifier ids).
pub fn allowed_peers(
    vs: &ValidatorSet,
    observers: &[String],
) -> Result<Vec<libp2p_identity::PeerId>, BftError> {
    let mut out = Vec::with_capacity(vs.validators().len() + observers.len());
    for v in vs.validators() {
        out.push(peer_id(&v.public_key)?);
    }
    for o in observers {
        out.push(super::parse_observer(o)?);
    }
    Ok(out)
}

/// What malachite reads as its node configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Name in logs and metrics (the node's address).
    pub moniker: String,
    /// Consensus: timeouts, p2p.
    pub consensus: ConsensusConfig,
    /// Value sync.
    pub value_sync: ValueSyncConfig,
}

impl mnode::NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
}

impl EngineConfig {
    /// The engine configuration of `cfg` for the node with `address`.
    pub fn from_bft(cfg: &BftConfig, address: &Address) -> Result<Self, BftError> {
        let listen_addr = super::parse_tcp_multiaddr(&cfg.listen, "listen")?;
        let persistent_peers = cfg
            .peers
            .iter()
            .map(|p| super::parse_tcp_multiaddr(p, "peers"))
            .collect::<Result<Vec<_>, _>>()?;
        let protocol = if cfg.gossipsub {
            PubSubProtocol::default()
        } else {
            PubSubProtocol::Broadcast
        };
        let mut p2p = P2pConfig {
            listen_addr,
            persistent_peers,
            discovery: DiscoveryConfig {
                enabled: false,
                ..DiscoveryConfig::default()
            },
            protocol,
            ..P2pConfig::default()
        };
        // A sync response carries a whole block; gossip carries chunks.
        let need = bytesize_of(cfg.max_block_bytes + (1 << 20));
        if p2p.rpc_max_size < need {
            p2p.rpc_max_size = need;
        }
        let timeouts = TimeoutConfig {
            timeout_propose: cfg.timeout_propose,
            timeout_propose_delta: cfg.timeout_propose_delta,
            timeout_prevote: cfg.timeout_prevote,
            timeout_prevote_delta: cfg.timeout_prevote_delta,
            timeout_precommit: cfg.timeout_precommit,
            timeout_precommit_delta: cfg.timeout_precommit_delta,
            timeout_rebroadcast: cfg.timeout_propose + cfg.timeout_prevote + cfg.timeout_precommit,
        };
        Ok(EngineConfig {
            moniker: address.to_string(),
            consensus: ConsensusConfig {
                timeouts,
                p2p,
                value_payload: ValuePayload::PartsOnly,
                queue_capacity: 0,
            },
            value_sync: ValueSyncConfig {
                enabled: true,
                status_update_interval: cfg.sync_status_interval,
                request_timeout: cfg.sync_request_timeout,
                ..ValueSyncConfig::default()
            },
        })
    }
}

fn bytesize_of(n: usize) -> bytesize::ByteSize {
    bytesize::ByteSize::b(n as u64)
}

/// Where the driver is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineState {
    /// Running.
    Running,
    /// Stopped (shut down, or the engine went away).
    Stopped,
    /// Halted on a consensus-path failure (the reason).
    Halted(String),
}

/// A running embedded engine, with its stall watchdog.
pub struct BftHandle {
    inner: Arc<Inner>,
    watchdog: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One launch of malachite plus the driver task.
struct Launch {
    engine: EngineHandle,
    driver: tokio::task::JoinHandle<()>,
    events: TxEvent<TorusContext>,
}

struct Inner {
    bft: BftNode,
    launch: tokio::sync::Mutex<Option<Launch>>,
    events: Mutex<TxEvent<TorusContext>>,
    state: watch::Receiver<EngineState>,
    state_tx: Arc<watch::Sender<EngineState>>,
    address: Address,
    restarts: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for BftHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BftHandle")
            .field("address", &self.inner.address)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

impl BftHandle {
    /// This validator's address.
    pub fn address(&self) -> Address {
        self.inner.address
    }

    /// The driver's state now.
    pub fn state(&self) -> EngineState {
        self.inner.state.borrow().clone()
    }

    /// How many times the watchdog relaunched the engine.
    pub fn restarts(&self) -> u64 {
        self.inner
            .restarts
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until the driver stops or halts; the final state.
    pub async fn wait(&self) -> EngineState {
        let mut rx = self.inner.state.clone();
        loop {
            let s = rx.borrow_and_update().clone();
            if s != EngineState::Running {
                return s;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    /// Stops the watchdog, the engine (network, consensus, WAL, sync) and the
    /// driver, and waits until they are gone, so the node's LMDB can be closed
    /// and the same directory and port reused. Idempotent.
    pub async fn shutdown(&self) {
        let wd = self.watchdog.lock().ok().and_then(|mut g| g.take());
        if let Some(w) = wd {
            w.abort();
            let _ = w.await;
        }
        let launch = self.inner.launch.lock().await.take();
        if let Some(l) = launch {
            stop(l, &self.inner.address).await;
        }
        self.inner.state_tx.send_if_modified(|s| {
            let running = *s == EngineState::Running;
            if running {
                *s = EngineState::Stopped;
            }
            running
        });
        tracing::info!(address = %self.inner.address, "consensus engine shut down");
    }
}

/// Stops one launch and waits for it (a driver stuck on a slow call is aborted).
async fn stop(l: Launch, address: &Address) {
    let Launch {
        engine, mut driver, ..
    } = l;
    let EngineHandle { actor, handle } = engine;
    let limit = Some(Duration::from_secs(10));
    actor
        .stop_children_and_wait(Some("shutdown".into()), limit)
        .await;
    let _ = actor.stop_and_wait(Some("shutdown".into()), limit).await;
    if tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .is_err()
    {
        tracing::warn!(%address, "engine task did not stop in time");
    }
    // With the engine gone its channel closes and the driver returns.
    if tokio::time::timeout(Duration::from_secs(10), &mut driver)
        .await
        .is_err()
    {
        driver.abort();
        let _ = driver.await;
    }
}

/// How long the watchdog waits without a decided block before relaunch number
/// `attempt` (counted from the last decided block, from 0): `stall` plus a jitter
/// in `[0, stall)` drawn from the node's address and the attempt. A stall is
/// usually network-wide, and a relaunch drops the node's connections and dials
/// every peer once: nodes relaunching in lockstep dial peers that are
/// themselves restarting, nobody redials, and the network stalls again, round
/// after round (seen after links flapped: all five nodes relaunched within the
/// same second every 16 s for minutes). With the jitter they come back one
/// after another, and each one's dials reach peers that are up.
pub(crate) fn relaunch_after(stall: Duration, address: &Address, attempt: u64) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    address.0.hash(&mut h);
    attempt.hash(&mut h);
    let per_mille = u32::try_from(h.finish() % 1000).unwrap_or(0);
    stall + stall * per_mille / 1000
}

/// After a relaunch failed (the old engine's WAL lock not yet released, say),
/// the next try comes this soon instead of after a whole stall period.
const RELAUNCH_RETRY: Duration = Duration::from_secs(1);

/// Relaunches the engine when the committed height has not moved for
/// [`relaunch_after`] (see the module docs: malachite does not redial dropped
/// peers).
async fn watchdog(inner: Arc<Inner>, stall: Duration) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let now = tokio::time::Instant::now;
    let mut height = inner.bft.node.store().head().map(|h| h.height).unwrap_or(0);
    let mut attempt = 0u64;
    let mut deadline = now() + relaunch_after(stall, &inner.address, attempt);
    let mut since = now();
    loop {
        tick.tick().await;
        if *inner.state.borrow() != EngineState::Running {
            return;
        }
        let h = inner.bft.node.store().head().map(|h| h.height).unwrap_or(0);
        if h != height {
            height = h;
            attempt = 0;
            since = now();
            deadline = since + relaunch_after(stall, &inner.address, attempt);
            continue;
        }
        if now() < deadline {
            continue;
        }
        tracing::warn!(
            address = %inner.address,
            height = h,
            secs = since.elapsed().as_secs(),
            attempt,
            "no block decided for a while: relaunching the consensus engine to redial its peers"
        );
        let old = inner.launch.lock().await.take();
        if let Some(l) = old {
            stop(l, &inner.address).await;
        }
        if *inner.state.borrow() != EngineState::Running {
            return;
        }
        match inner.bft.launch(inner.state_tx.clone()).await {
            Ok(l) => {
                if let Ok(mut e) = inner.events.lock() {
                    *e = l.events.clone();
                }
                *inner.launch.lock().await = Some(l);
                inner
                    .restarts
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                attempt += 1;
                deadline = now() + relaunch_after(stall, &inner.address, attempt);
            }
            Err(e) => {
                tracing::error!(address = %inner.address, error = %e, "cannot relaunch the consensus engine; retrying");
                deadline = now() + RELAUNCH_RETRY;
            }
        }
    }
}

impl Drop for BftHandle {
    /// A handle dropped without [`BftHandle::shutdown`] still stops the
    /// engine (without waiting for it).
    fn drop(&mut self) {
        if let Some(w) = self.watchdog.get_mut().ok().and_then(|g| g.take()) {
            w.abort();
        }
        if let Ok(mut g) = self.inner.launch.try_lock() {
            if let Some(l) = g.take() {
                l.engine.actor.stop_children(Some("handle dropped".into()));
                l.engine.actor.stop(Some("handle dropped".into()));
                l.driver.abort();
            }
        }
    }
}

#[async_trait]
impl mnode::NodeHandle<TorusContext> for BftHandle {
    fn subscribe(&self) -> RxEvent<TorusContext> {
        match self.inner.events.lock() {
            Ok(e) => e.subscribe(),
            Err(p) => p.into_inner().subscribe(),
        }
    }

    async fn kill(&self, reason: Option<String>) -> eyre::Result<()> {
        if let Some(r) = reason {
            tracing::info!(address = %self.inner.address, reason = %r, "stopping consensus engine");
        }
        self.shutdown().await;
        Ok(())
    }
}

/// The malachite `Node` of a [`NodeState`].
#[derive(Clone)]
pub(crate) struct BftNode {
    pub(crate) node: Arc<NodeState>,
    pub(crate) mempool: Arc<Mempool>,
    pub(crate) cfg: BftConfig,
    pub(crate) key: Arc<NodeKey>,
    pub(crate) keypair: Keypair,
    pub(crate) chain: [u8; 32],
}

impl BftNode {
    /// Starts malachite at `head + 1` and a driver task answering it; a driver
    /// failure reports `Halted` on `state` and stops that engine.
    async fn launch(&self, state: Arc<watch::Sender<EngineState>>) -> eyre::Result<Launch> {
        use mnode::Node as _;
        let config = self.load_config()?;
        self.node.metrics().include_consensus(&config.moniker);
        let head = self.node.store().head()?;
        let start = Height(head.height + 1);
        let address = Address::of(&self.key.public());
        // Only the committee and the configured observers may hold a connection
        // to this engine's network (see `allowed_peers`), and the next committee
        // while a hand-over is pending. The committed committee, not the one of
        // the first launch: a relaunch after an epoch change allows the new one.
        let validators = ValidatorSet::from_epoch(&self.node.epoch()?)
            .map_err(|e| eyre::eyre!("validator set: {e}"))?;
        let allowed = allowed_peers(&validators, &self.cfg.observers)?;
        malachitebft_network::gate::allow_only(self.keypair.public().to_peer_id(), allowed);
        if let Some(next) = self.node.next_epoch()? {
            super::allow_committee(&self.node, &next);
        }
        let (channels, engine) = malachitebft_app_channel::start_engine(
            TorusContext,
            self.clone(),
            config,
            BftCodec,
            BftCodec,
            Some(start),
            validators.clone(),
        )
        .await?;
        let events = channels.events.clone();
        let driver = Driver::new(
            self.node.clone(),
            self.mempool.clone(),
            Signer::new(self.key.clone(), self.chain),
            self.cfg.clone(),
            validators,
        );
        let actor = engine.actor.clone();
        let task = tokio::spawn(async move {
            match driver.run(channels).await {
                // The engine went away: a shutdown or a relaunch; the handle
                // sets the final state.
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(%address, error = %e, "consensus halted; stopping the engine");
                    let _ = state.send(EngineState::Halted(e.to_string()));
                    actor.stop_children(Some("halted".into()));
                    actor.stop(Some("halted".into()));
                }
            }
        });
        tracing::info!(%address, height = start.0, listen = %self.cfg.listen, peers = self.cfg.peers.len(), "consensus engine started");
        Ok(Launch {
            engine,
            driver: task,
            events,
        })
    }
}

#[async_trait]
impl mnode::Node for BftNode {
    type Context = TorusContext;
    type Config = EngineConfig;
    type Genesis = crate::config::Genesis;
    /// The key is the node's own, already loaded by [`NodeState`].
    type PrivateKeyFile = ();
    type SigningProvider = Signer;
    type NodeHandle = BftHandle;

    async fn start(&self) -> eyre::Result<BftHandle> {
        let address = Address::of(&self.key.public());
        let (tx, rx) = watch::channel(EngineState::Running);
        let tx = Arc::new(tx);
        let first = self.launch(tx.clone()).await?;
        let inner = Arc::new(Inner {
            bft: self.clone(),
            events: Mutex::new(first.events.clone()),
            launch: tokio::sync::Mutex::new(Some(first)),
            state: rx,
            state_tx: tx,
            address,
            restarts: std::sync::atomic::AtomicU64::new(0),
        });
        let wd = if self.cfg.stall_restart.is_zero() {
            None
        } else {
            Some(tokio::spawn(watchdog(
                inner.clone(),
                self.cfg.stall_restart,
            )))
        };
        Ok(BftHandle {
            inner,
            watchdog: Mutex::new(wd),
        })
    }

    async fn run(self) -> eyre::Result<()> {
        let handle = self.start().await?;
        match handle.wait().await {
            EngineState::Halted(reason) => Err(eyre::eyre!("consensus halted: {reason}")),
            _ => Ok(()),
        }
    }

    fn get_home_dir(&self) -> PathBuf {
        self.cfg.home.clone()
    }

    fn load_config(&self) -> eyre::Result<EngineConfig> {
        EngineConfig::from_bft(&self.cfg, &Address::of(&self.key.public()))
            .map_err(|e| eyre::eyre!(e))
    }

    fn get_address(&self, pk: &NodePub) -> Address {
        Address::of(pk)
    }

    fn get_public_key(&self, pk: &PrivateKey) -> NodePub {
        pk.0.public()
    }

    /// The keypair derived from the node key when the engine was set up
    /// ([`keypair`]); `pk` is that same key.
    fn get_keypair(&self, _pk: PrivateKey) -> Keypair {
        self.keypair.clone()
    }

    fn load_private_key(&self, _file: ()) -> PrivateKey {
        PrivateKey(self.key.clone())
    }

    fn load_private_key_file(&self) -> eyre::Result<()> {
        Ok(())
    }

    fn load_genesis(&self) -> eyre::Result<crate::config::Genesis> {
        Ok(self.node.genesis().clone())
    }

    fn get_signing_provider(&self, pk: PrivateKey) -> Signer {
        Signer::new(pk.0, self.chain)
    }
}

#[cfg(test)]
mod relaunch_tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(15);

    #[test]
    fn a_relaunch_waits_between_one_and_two_stall_periods_and_the_same_node_always_waits_the_same()
    {
        for i in 0..200u8 {
            let a = Address([i; 20]);
            for attempt in 0..4 {
                let d = relaunch_after(STALL, &a, attempt);
                assert!(d >= STALL && d < STALL * 2, "{d:?}");
                assert_eq!(d, relaunch_after(STALL, &a, attempt));
            }
        }
    }

    #[test]
    fn nodes_that_stalled_together_do_not_relaunch_together() {
        // Five nodes of one network: their first relaunches are spread out, and
        // so are their second ones (the attempt changes the draw).
        for attempt in 0..3 {
            let mut d: Vec<Duration> = (1..=5u8)
                .map(|i| relaunch_after(STALL, &Address([i; 20]), attempt))
                .collect();
            d.sort();
            let spread = d[4] - d[0];
            assert!(spread >= Duration::from_secs(3), "attempt {attempt}: {d:?}");
        }
        // Over many nodes the jitter covers the whole period.
        let all: Vec<Duration> = (0..=255u8)
            .map(|i| relaunch_after(STALL, &Address([i; 20]), 0))
            .collect();
        let (lo, hi) = (all.iter().min().unwrap(), all.iter().max().unwrap());
        assert!(
            *lo < STALL + STALL / 10 && *hi > STALL * 2 - STALL / 10,
            "{lo:?} {hi:?}"
        );
    }
}
