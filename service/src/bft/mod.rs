//! The embedded BFT engine: malachite 0.5 driving the node's state machine.
//!
//! [`start`] runs malachite (its libp2p network, Tendermint-style consensus,
//! write-ahead log and value sync) beside a [`NodeState`], and a driver task
//! that answers the engine's requests from the node's mempool and LMDB.
//!
//! # Context
//! Heights are the node's block heights. Validators are the current epoch's
//! committee, one vote each, identified by the Ethereum address of their node
//! key and sorted by it; the proposer of `(height, round)` is the member at
//! `(height + round) mod n`. The value is the block `{ height, txs }`; its id
//! is keccak256 of its encoding. See [`context`].
//!
//! # Proposals
//! Proposals travel only as streamed parts (`PartsOnly`): `Init`, `Data`
//! chunks of the transaction list, and `Fin` with the proposer's signature
//! over the hash of the other parts ([`streaming`]). A receiver accepts a
//! stream only from the round's proposer with a valid `Fin`; the block is
//! valid if it fits `max_block_bytes` and `max_block_txs` and every
//! transaction is authenticated against the committed state the block builds
//! on (it decodes and is signed by a member of an active epoch,
//! `App::authenticate`; a transaction already pending in this node's mempool
//! passed that rule on admission, and its epoch is re-checked after every
//! block). A block from a byzantine proposer carrying junk or forged
//! transactions is voted against. A value obtained by value sync carries a
//! commit certificate (decided already), so only its size and decoding are
//! checked. The proposer fills blocks from the mempool, its keygen lane
//! first, each lane in arrival order, skipping what `check_tx` finds
//! undecodable, unauthorized or duplicate; with an empty mempool it waits
//! `idle_block` and then proposes an empty block.
//!
//! # Codec
//! Every message malachite puts on the wire or in its WAL has a compact,
//! versioned, bounded binary encoding ([`codec`]); decoding never panics.
//!
//! # Signing
//! secp256k1 ECDSA with the node key over
//! `keccak256("torus-node/bft/v1" ‖ kind ‖ chain ‖ payload)`, `chain` being
//! keccak of the chain id and the genesis committee ([`signing`]). The libp2p
//! identity of the consensus network is the same secp256k1 key, so each
//! validator's peer id follows from the node list, and the peers built by
//! [`BftConfig::from_genesis`] carry `/p2p/<peer id>`: a dial reaching a
//! different key fails. Only the validators and the configured observers
//! ([`BftConfig::observers`]) may hold a connection: every other peer is denied
//! at connection establishment (an allow-list in the patched network crate,
//! `vendor/malachitebft-network`), so an outsider receives no votes, no
//! proposal parts and no synced blocks. During a hand-over the next committee
//! is allowed too, from the block that decides it on (its fresh members follow
//! the chain before they vote; `engine::allow_committee`). Proposal parts are reassembled only
//! from validators, with a bound per peer ([`streaming`]); every consensus
//! message is also checked against the validator set's keys.
//!
//! # Storage
//! A decided block is executed with `NodeState::apply_block_with`, which
//! writes its state changes, the new head and the block's decided record
//! (the block encoding and its commit certificate, table `blocks`) in one
//! LMDB transaction and syncs it. LMDB is therefore the point of durability:
//! after a crash the node restarts consensus at `head + 1` and serves every
//! committed block to peers that sync from it. Malachite's WAL (under
//! `home/wal`) only replays the votes of the height in progress.
//!
//! # Failure policy
//! If a decided block fails to apply (the app or LMDB errs), continuing would
//! fork this node from the others: the driver logs an error, stops the
//! engine and reports [`EngineState::Halted`]. Malformed or unsigned network
//! input is dropped (logged at debug); an invalid block from the right
//! proposer is voted against. A decision whose block this node never saw
//! (possible right after a restart) restarts the height, and value sync
//! fetches the block from the others.
//!
//! # Undecided values
//! Every value seen for a height not decided yet (received, synced, or built
//! by this node) is stored in LMDB (table `proposals`) until its height is
//! decided, and read back at `ConsensusReady`: after a restart malachite's WAL
//! restores this node's votes and the driver still has the values they name,
//! and a proposer re-proposes exactly what it built for that round (its own
//! values are flushed before they are sent).
//!
//! # Reconnecting
//! Malachite 0.5 dials its persistent peers at start but, with discovery off,
//! never again once a connection drops. A watchdog in [`BftHandle`]
//! relaunches the engine (same WAL, same LMDB) when no block was decided for
//! `stall_restart` plus a per-node jitter (`engine::relaunch_after`: nodes that
//! stalled together must not relaunch together); the new network dials every
//! peer again. In a healthy
//! network blocks come every few hundred milliseconds, so this only fires
//! after a partition or an outage.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use multiaddr::Multiaddr;

pub mod codec;
pub mod context;
mod driver;
pub mod engine;
pub mod signing;
pub mod streaming;
#[cfg(test)]
mod tests;

pub use context::{Address, Block, Height, TorusContext, ValidatorSet, ValueId};
pub use engine::{keypair, peer_id, BftHandle, EngineConfig, EngineState};

use crate::crypto::NodeKey;
use crate::mempool::{Mempool, MempoolSubmitter};
use crate::node::{NodeError, NodeState};

/// Failures to start the engine, or why it stopped.
#[derive(Debug, thiserror::Error)]
pub enum BftError {
    /// A configuration value is unusable.
    #[error("bft config: {0}")]
    Config(String),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Malachite failed to start.
    #[error("consensus engine: {0}")]
    Engine(String),
    /// A decided block could not be applied; the node stopped to avoid forking.
    #[error("consensus halted: {0}")]
    Halted(String),
}

/// The embedded engine's settings.
#[derive(Clone, Debug)]
pub struct BftConfig {
    /// Listen multiaddr of the consensus network, e.g. `/ip4/127.0.0.1/tcp/27000`.
    pub listen: String,
    /// The other validators' consensus multiaddrs (optionally ending in `/p2p/<peer id>`).
    pub peers: Vec<String>,
    /// Engine directory (the WAL), e.g. `data_dir/bft`.
    pub home: PathBuf,
    /// How long to wait for a proposal.
    pub timeout_propose: Duration,
    /// Added to `timeout_propose` each round.
    pub timeout_propose_delta: Duration,
    /// How long to wait after 2/3+ prevotes for anything.
    pub timeout_prevote: Duration,
    /// Added to `timeout_prevote` each round.
    pub timeout_prevote_delta: Duration,
    /// How long to wait after 2/3+ precommits for anything.
    pub timeout_precommit: Duration,
    /// Added to `timeout_precommit` each round.
    pub timeout_precommit_delta: Duration,
    /// How long a proposer waits for a transaction before proposing an empty
    /// block; must stay below `timeout_propose / 2`.
    pub idle_block: Duration,
    /// Largest block (its encoding), proposed and accepted.
    pub max_block_bytes: usize,
    /// Most transactions in a block, proposed and accepted (bounds the
    /// signatures a validator checks per proposal).
    pub max_block_txs: usize,
    /// How often sync status is exchanged with peers.
    pub sync_status_interval: Duration,
    /// How long a sync request may take.
    pub sync_request_timeout: Duration,
    /// Gossipsub instead of direct broadcast to every connected validator.
    pub gossipsub: bool,
    /// Relaunch the engine when no block was decided for this long (its network
    /// then dials every persistent peer again: malachite 0.5 with discovery off
    /// does not redial a peer whose connection dropped). Zero disables it.
    pub stall_restart: Duration,
    /// When set, the first height starts only once this turns true (the runner
    /// sets it when the node-to-node network reached every peer, or after a few
    /// seconds): the first proposer of a network started all at once otherwise
    /// proposes to nobody and height 1 costs a whole round of timeouts.
    pub start_gate: Option<tokio::sync::watch::Receiver<bool>>,
    /// Peer ids (base58, `12D3…` / `16Uiu2…`) of non-validators allowed to connect
    /// and follow (receive votes and proposals, value-sync blocks). Empty: only
    /// the validators.
    pub observers: Vec<String>,
}

impl Default for BftConfig {
    /// Settings for a loopback devnet: short timeouts, discovery off.
    fn default() -> Self {
        BftConfig {
            listen: "/ip4/127.0.0.1/tcp/27000".into(),
            peers: Vec::new(),
            home: PathBuf::from("bft"),
            timeout_propose: Duration::from_secs(2),
            timeout_propose_delta: Duration::from_millis(500),
            timeout_prevote: Duration::from_millis(500),
            timeout_prevote_delta: Duration::from_millis(250),
            timeout_precommit: Duration::from_millis(500),
            timeout_precommit_delta: Duration::from_millis(250),
            idle_block: Duration::from_millis(300),
            max_block_bytes: crate::mempool::DEFAULT_MAX_BLOCK_BYTES,
            max_block_txs: crate::mempool::DEFAULT_KEYGEN_TXS + crate::mempool::DEFAULT_USER_TXS,
            sync_status_interval: Duration::from_secs(1),
            sync_request_timeout: Duration::from_secs(5),
            gossipsub: false,
            stall_restart: Duration::from_secs(15),
            start_gate: None,
            observers: Vec::new(),
        }
    }
}

/// An observer's peer id, as configured.
pub(crate) fn parse_observer(s: &str) -> Result<libp2p_identity::PeerId, BftError> {
    s.parse()
        .map_err(|e| BftError::Config(format!("observers: `{s}` is not a peer id: {e}")))
}

pub(crate) fn parse_tcp_multiaddr(s: &str, field: &str) -> Result<Multiaddr, BftError> {
    let a: Multiaddr = s
        .parse()
        .map_err(|e| BftError::Config(format!("{field}: `{s}` is not a multiaddr: {e}")))?;
    if !a.protocol_stack().any(|p| p == "tcp") {
        return Err(BftError::Config(format!(
            "{field}: `{s}` is not a TCP multiaddr"
        )));
    }
    Ok(a)
}

impl BftConfig {
    /// The settings of `node` from its genesis: listen on its own `consensus`
    /// address, peers are the other members' (with their peer ids), home is
    /// `data_dir/bft`; timeouts are the defaults.
    pub fn from_genesis(node: &NodeState) -> Result<Self, BftError> {
        let me = node.key().public().compressed();
        let mut cfg = BftConfig {
            home: node.config().data_dir.join("bft"),
            ..BftConfig::default()
        };
        let mut found = false;
        for g in &node.genesis().nodes {
            let raw = hex::decode(g.pubkey.trim_start_matches("0x"))
                .map_err(|_| BftError::Config(format!("genesis node {}: pubkey", g.index)))?;
            let pk = crate::crypto::NodePub::from_sec1(&raw)
                .map_err(|_| BftError::Config(format!("genesis node {}: pubkey", g.index)))?;
            if pk.compressed() == me {
                if g.consensus.is_empty() {
                    return Err(BftError::Config(format!(
                        "genesis node {} (this node) has no consensus address",
                        g.index
                    )));
                }
                cfg.listen = g.consensus.clone();
                found = true;
            } else if !g.consensus.is_empty() {
                cfg.peers
                    .push(format!("{}/p2p/{}", g.consensus, engine::peer_id(&pk)?));
            }
        }
        if !found {
            return Err(BftError::Config(
                "this node is not in the genesis node list".into(),
            ));
        }
        Ok(cfg)
    }

    /// Checks the settings that malachite would otherwise panic or stall on.
    pub fn validate(&self) -> Result<(), BftError> {
        parse_tcp_multiaddr(&self.listen, "listen")?;
        for p in &self.peers {
            parse_tcp_multiaddr(p, "peers")?;
        }
        for o in &self.observers {
            parse_observer(o)?;
        }
        if self.timeout_propose.is_zero()
            || self.timeout_prevote.is_zero()
            || self.timeout_precommit.is_zero()
        {
            return Err(BftError::Config("timeouts must be positive".into()));
        }
        if self.idle_block >= self.timeout_propose / 2 {
            return Err(BftError::Config(format!(
                "idle_block ({:?}) must be below timeout_propose / 2 ({:?})",
                self.idle_block,
                self.timeout_propose / 2
            )));
        }
        if self.max_block_bytes < 1024 {
            return Err(BftError::Config("max_block_bytes below 1 KiB".into()));
        }
        if self.max_block_txs == 0 {
            return Err(BftError::Config("max_block_txs must be positive".into()));
        }
        Ok(())
    }
}

/// Starts the embedded engine for `node`: validates `cfg`, attaches the
/// mempool as the node's submitter, and runs malachite and the driver from
/// height `head + 1` with the current epoch's committee.
pub async fn start(
    node: Arc<NodeState>,
    mempool: Arc<Mempool>,
    cfg: BftConfig,
) -> Result<BftHandle, BftError> {
    use malachitebft_app_channel::app::node::Node as _;
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.home)
        .map_err(|e| BftError::Config(format!("home {}: {e}", cfg.home.display())))?;
    let epoch = node.epoch()?;
    // Checked here so a bad committee fails the start, not the first launch.
    ValidatorSet::from_epoch(&epoch).map_err(BftError::Config)?;
    let key = Arc::new(
        NodeKey::from_bytes(&node.key().to_bytes())
            .map_err(|e| BftError::Config(format!("node key: {e}")))?,
    );
    if node.index().is_err() {
        tracing::warn!(address = %node.key().public().address(), "not in the current committee; following without voting");
    }
    let genesis_epoch = node
        .genesis()
        .epoch_info()
        .map_err(|e| BftError::Config(e.to_string()))?;
    let chain = signing::chain_hash(&node.genesis().chain_id, &genesis_epoch.hash());
    let keypair = engine::keypair(&key)?;
    node.set_submitter(Arc::new(MempoolSubmitter(mempool.clone())));
    let bft = engine::BftNode {
        node,
        mempool,
        cfg,
        key,
        keypair,
        chain,
    };
    bft.start()
        .await
        .map_err(|e| BftError::Engine(format!("{e:#}")))
}

/// Lets the peers of `committee` connect to this node's running consensus
/// network too (the next committee during a hand-over: its fresh members follow
/// the chain before they vote). Peers only ever get added while the process runs;
/// the next launch registers the committed committees again.
pub fn allow_committee(node: &NodeState, committee: &crate::tx::EpochInfo) {
    let own = peer_id(&node.key().public());
    let mut ids = Vec::with_capacity(committee.nodes.len());
    for n in &committee.nodes {
        match crate::crypto::NodePub::from_sec1(&n.pubkey)
            .map_err(|e| BftError::Config(e.to_string()))
            .and_then(|pk| peer_id(&pk))
        {
            Ok(id) => ids.push(id),
            Err(e) => tracing::warn!(node = n.index, error = %e, "committee key is no peer id"),
        }
    }
    if let Ok(own) = own {
        malachitebft_network::gate::allow_also(own, ids);
    }
}
