//! The NodeList contract on Ethereum (spec §6): where each epoch's committee is registered.
//!
//! * [`NodeListClient`] reads an epoch ([`NodeListClient::epoch`]) and turns it into the
//!   node's [`Genesis`] ([`ChainEpoch::to_genesis`]); it also lists a node in an epoch with
//!   the node's own key ([`NodeListClient::list_node`]).
//! * [`deploy`] and [`NodeListOwner`] are the operator's side: deploy the contract from the
//!   embedded artifact (`contracts/NodeList.json`, compiled from `contracts/NodeList.sol`),
//!   open epochs, whitelist nodes, start resharing.
//! * [`load_genesis`] is what a node calls at start: the genesis file, or the committee of
//!   the `[node_list]` epoch once it is full.
//! * [`watch_next_epoch`] runs beside a node started from the contract: it lists the node
//!   in the next epoch and hands the next committee to keygen when the owner starts
//!   resharing (`getPssStatus == 1`).
//!
//! A node's index in an epoch is its 1-based place in the epoch's `nodeList` (the order in
//! which nodes called `listNode`). Its public key, JSON-RPC URL (`declaredIp`), consensus
//! multiaddr (`tmP2PListenAddress`) and AVSS multiaddr (`p2pListenAddress`) come from the
//! details it declared when it last listed itself.

mod client;
mod endpoint;
mod owner;
mod transport;
mod watch;

use std::time::Duration;

use alloy::network::{Ethereum, Network};

pub use alloy::primitives::Address;
pub use client::NodeListClient;
use endpoint::Endpoint;
pub use owner::{deploy, EpochUpdate, NodeListOwner};
pub use watch::watch_next_epoch;

use crate::config::{ConfigError, Genesis, GenesisNode, NodeConfig};
use crate::crypto::NodePub;

/// The contract's Rust bindings, generated from the committed artifact (`listNode` and
/// `updateEpoch` take more arguments than clippy likes; the ABI fixes them).
#[allow(clippy::too_many_arguments)]
mod bindings {
    alloy::sol!(
        #[sol(rpc)]
        NodeList,
        "contracts/NodeList.json"
    );
}

/// The compiled contract (ABI and bytecode) that [`deploy`] deploys and the bindings use.
pub const NODE_LIST_ARTIFACT: &str = include_str!("../../contracts/NodeList.json");

/// How long one JSON-RPC request may take.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`NodeListClient::wait_for_full_epoch`] polls by default (the original's 10 s).
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);
/// How long a sent transaction may take to be mined by default.
pub const DEFAULT_TX_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) type Receipt = <Ethereum as Network>::ReceiptResponse;

/// What can go wrong talking to the NodeList contract.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A URL, address or key given to this module is malformed.
    #[error("invalid {what}: {problem}")]
    Invalid {
        /// What was given.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The Ethereum JSON-RPC endpoint could not be reached (connection, timeout, HTTP error).
    #[error("Ethereum RPC {url} unreachable: {detail}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The transport's error.
        detail: String,
    },
    /// The endpoint answered with an error that is not a revert.
    #[error("Ethereum RPC error in {call}: {detail}")]
    Rpc {
        /// The contract function or RPC method.
        call: &'static str,
        /// The node's error.
        detail: String,
    },
    /// No contract is deployed at the address.
    #[error("no contract at {address} (wrong address or chain?)")]
    NotAContract {
        /// The address.
        address: Address,
    },
    /// The contract refused the call.
    #[error("NodeList.{call} reverted: {reason}")]
    Reverted {
        /// The contract function.
        call: &'static str,
        /// The contract's error name (`NotWhitelisted`, `AlreadyRegistered`, ...), `Error`
        /// for a revert string, `Panic`, or `unknown`.
        error: String,
        /// The decoded reason with its arguments.
        reason: String,
    },
    /// The epoch has not been created with `updateEpoch`.
    #[error("epoch {epoch} does not exist in the NodeList contract at {contract}")]
    EpochNotFound {
        /// The epoch.
        epoch: u64,
        /// The contract.
        contract: Address,
    },
    /// Fewer than n nodes have listed themselves in the epoch.
    #[error("epoch {epoch} has {registered} of its {n} nodes listed")]
    EpochIncomplete {
        /// The epoch.
        epoch: u64,
        /// Nodes listed so far.
        registered: usize,
        /// Committee size.
        n: u32,
    },
    /// [`NodeListClient::wait_for_full_epoch`] gave up.
    #[error("gave up after {}s waiting for epoch {epoch} to be full: {last}", waited.as_secs())]
    TimedOut {
        /// The epoch.
        epoch: u64,
        /// How long it waited.
        waited: Duration,
        /// The last answer: [`ChainError::EpochIncomplete`], [`ChainError::EpochNotFound`]
        /// or [`ChainError::Unreachable`].
        last: Box<ChainError>,
    },
    /// The epoch's parameters do not fit the node's types.
    #[error("epoch {epoch}: {problem}")]
    BadEpoch {
        /// The epoch.
        epoch: u64,
        /// What is wrong.
        problem: String,
    },
    /// A node entry of the epoch cannot be used.
    #[error("epoch {epoch}, node {position} ({address}): {problem}")]
    BadNode {
        /// The epoch.
        epoch: u64,
        /// 1-based position in the epoch's list.
        position: u32,
        /// The listed address.
        address: Address,
        /// What is wrong.
        problem: String,
    },
    /// The genesis built from the chain (or read from the genesis file) is invalid.
    #[error("genesis: {0}")]
    Genesis(#[from] ConfigError),
}

/// A node as an epoch of the contract lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainNode {
    /// 1-based index: the place in the epoch's list.
    pub position: u32,
    /// Its Ethereum address (the one that called `listNode`).
    pub address: Address,
    /// Its secp256k1 key (`pubKx`, `pubKy`), checked to belong to `address`.
    pub pubkey: NodePub,
    /// `declaredIp`: its client JSON-RPC URL (`http://host:port/jrpc`).
    pub declared_ip: String,
    /// `tmP2PListenAddress`: its consensus multiaddr.
    pub consensus: String,
    /// `p2pListenAddress`: its AVSS multiaddr.
    pub p2p: String,
}

/// An epoch as the contract holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEpoch {
    /// The epoch number.
    pub epoch: u64,
    /// Committee size.
    pub n: u32,
    /// Reconstruction threshold.
    pub k: u32,
    /// Tolerated faults.
    pub t: u32,
    /// Previous epoch (0 = none).
    pub prev: u64,
    /// Next epoch (0 = none yet).
    pub next: u64,
    /// The nodes listed so far, in position order.
    pub nodes: Vec<ChainNode>,
}

impl ChainEpoch {
    /// Whether all n nodes have listed themselves.
    pub fn is_full(&self) -> bool {
        self.nodes.len() >= self.n as usize
    }

    /// The node's genesis for this epoch: index = position, pubkey = uncompressed SEC1 hex
    /// of (pubKx, pubKy), rpc = `declaredIp`, consensus = `tmP2PListenAddress`, p2p =
    /// `p2pListenAddress`; checked with [`Genesis::epoch_info`].
    pub fn to_genesis(&self, chain_id: impl Into<String>) -> Result<Genesis, ChainError> {
        if self.nodes.len() < self.n as usize {
            return Err(ChainError::EpochIncomplete {
                epoch: self.epoch,
                registered: self.nodes.len(),
                n: self.n,
            });
        }
        let nodes = self
            .nodes
            .iter()
            .map(|node| {
                let (x, y) = node.pubkey.xy();
                let mut sec1 = [0u8; 65];
                sec1[0] = 4;
                sec1[1..33].copy_from_slice(&x);
                sec1[33..].copy_from_slice(&y);
                GenesisNode {
                    index: node.position,
                    pubkey: hex::encode(sec1),
                    p2p: node.p2p.clone(),
                    consensus: node.consensus.clone(),
                    rpc: node.declared_ip.clone(),
                }
            })
            .collect();
        let genesis = Genesis {
            chain_id: chain_id.into(),
            epoch: self.epoch,
            n: self.n,
            k: self.k,
            t: self.t,
            nodes,
        };
        genesis.epoch_info()?;
        Ok(genesis)
    }
}

/// The Ethereum address of a node key.
pub fn node_address(key: &NodePub) -> Address {
    Address::from(key.address_bytes())
}

/// Parses a `0x`-prefixed 20-byte hex address (any case).
pub fn parse_address(s: &str) -> Result<Address, ChainError> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| ChainError::Invalid {
            what: "address",
            problem: format!("{s:?} does not start with 0x"),
        })?;
    let bytes = hex::decode(hex).map_err(|_| ChainError::Invalid {
        what: "address",
        problem: format!("{s:?} is not hex"),
    })?;
    let raw: [u8; 20] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ChainError::Invalid {
            what: "address",
            problem: format!("{s:?} is not 20 bytes"),
        })?;
    Ok(Address::from(raw))
}

/// The genesis a node starts from: with a `[node_list]` table, the committee of its epoch
/// once all n nodes are listed (polling every `poll_s`, giving up after `wait_s`), with
/// chain id `nodelist-<eth chain id>-<contract address>`; otherwise the `genesis` file.
pub async fn load_genesis(cfg: &NodeConfig) -> Result<Genesis, ChainError> {
    let Some(nl) = &cfg.node_list else {
        return Ok(Genesis::load(&cfg.genesis)?);
    };
    let client =
        NodeListClient::new(&nl.eth_rpc, &nl.contract)?.with_poll_interval(nl.poll_interval());
    let epoch = client
        .wait_for_full_epoch(nl.epoch, nl.wait_timeout())
        .await?;
    let chain_id = client.chain_id().await?;
    epoch.to_genesis(format!(
        "nodelist-{chain_id}-0x{}",
        hex::encode(client.contract().as_slice())
    ))
}
