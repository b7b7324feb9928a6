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

/// A running embedded engine.
pub struct BftHandle {
    engine: Mutex<Option<EngineHandle>>,
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
    events: TxEvent<TorusContext>,
    state: watch::Receiver<EngineState>,
    state_tx: Arc<watch::Sender<EngineState>>,
    address: Address,
}

impl std::fmt::Debug for BftHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BftHandle")
            .field("address", &self.address)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl BftHandle {
    /// This validator's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The driver's state now.
    pub fn state(&self) -> EngineState {
        self.state.borrow().clone()
    }

    /// Waits until the driver stops or halts; the final state.
    pub async fn wait(&self) -> EngineState {
        let mut rx = self.state.clone();
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

    /// Stops the engine (network, consensus, WAL, sync) and the driver, and
    /// waits until they are gone, so the node's LMDB can be closed and the
    /// same directory and port reused. Idempotent.
    pub async fn shutdown(&self) {
        let engine = self.engine.lock().ok().and_then(|mut g| g.take());
        if let Some(EngineHandle { actor, handle }) = engine {
            let limit = Some(Duration::from_secs(10));
            actor
                .stop_children_and_wait(Some("shutdown".into()), limit)
                .await;
            let _ = actor.stop_and_wait(Some("shutdown".into()), limit).await;
            if tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .is_err()
            {
                tracing::warn!(address = %self.address, "engine task did not stop in time");
            }
        }
        let driver = self.driver.lock().ok().and_then(|mut g| g.take());
        if let Some(mut task) = driver {
            // With the engine gone its channel closes and the driver returns;
            // one stuck on a slow call is aborted.
            if tokio::time::timeout(Duration::from_secs(10), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
        self.state_tx.send_if_modified(|s| {
            let running = *s == EngineState::Running;
            if running {
                *s = EngineState::Stopped;
            }
            running
        });
        tracing::info!(address = %self.address, "consensus engine shut down");
    }
}

impl Drop for BftHandle {
    /// A handle dropped without [`BftHandle::shutdown`] still stops the
    /// engine (without waiting for it).
    fn drop(&mut self) {
        if let Some(e) = self.engine.get_mut().ok().and_then(|g| g.take()) {
            e.actor.stop_children(Some("handle dropped".into()));
            e.actor.stop(Some("handle dropped".into()));
        }
        if let Some(t) = self.driver.get_mut().ok().and_then(|g| g.take()) {
            t.abort();
        }
    }
}

#[async_trait]
impl mnode::NodeHandle<TorusContext> for BftHandle {
    fn subscribe(&self) -> RxEvent<TorusContext> {
        self.events.subscribe()
    }

    async fn kill(&self, reason: Option<String>) -> eyre::Result<()> {
        if let Some(r) = reason {
            tracing::info!(address = %self.address, reason = %r, "stopping consensus engine");
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
    pub(crate) validators: ValidatorSet,
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
        let config = self.load_config()?;
        let head = self.node.store.head()?;
        let start = Height(head.height + 1);
        let address = Address::of(&self.key.public());
        let (channels, engine) = malachitebft_app_channel::start_engine(
            TorusContext,
            self.clone(),
            config,
            BftCodec,
            BftCodec,
            Some(start),
            self.validators.clone(),
        )
        .await?;
        let events = channels.events.clone();
        let driver = Driver::new(
            self.node.clone(),
            self.mempool.clone(),
            Signer::new(self.key.clone(), self.chain),
            self.cfg.clone(),
            self.validators.clone(),
        );
        let (tx, rx) = watch::channel(EngineState::Running);
        let tx = Arc::new(tx);
        let state_tx = tx.clone();
        let actor = engine.actor.clone();
        let task = tokio::spawn(async move {
            match driver.run(channels).await {
                Ok(()) => {
                    let _ = tx.send(EngineState::Stopped);
                }
                Err(e) => {
                    tracing::error!(%address, error = %e, "consensus halted; stopping the engine");
                    let _ = tx.send(EngineState::Halted(e.to_string()));
                    actor.stop_children(Some("halted".into()));
                    actor.stop(Some("halted".into()));
                }
            }
        });
        tracing::info!(%address, height = start.0, listen = %self.cfg.listen, peers = self.cfg.peers.len(), "consensus engine started");
        Ok(BftHandle {
            engine: Mutex::new(Some(engine)),
            driver: Mutex::new(Some(task)),
            events,
            state: rx,
            state_tx,
            address,
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
        Ok(self.node.genesis.clone())
    }

    fn get_signing_provider(&self, pk: PrivateKey) -> Signer {
        Signer::new(pk.0, self.chain)
    }
}
