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
//!
//! A node's index in an epoch is its 1-based place in the epoch's `nodeList` (the order in
//! which nodes called `listNode`). Its public key, JSON-RPC URL (`declaredIp`), consensus
//! multiaddr (`tmP2PListenAddress`) and AVSS multiaddr (`p2pListenAddress`) come from the
//! details it declared when it last listed itself.

mod owner;
mod transport;

use std::time::{Duration, Instant};

use alloy::network::{Ethereum, EthereumWallet, Network, ReceiptResponse};
use alloy::primitives::U256;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolInterface;
use alloy::transports::{RpcError, TransportErrorKind};

pub use alloy::primitives::Address;
pub use owner::{deploy, EpochUpdate, NodeListOwner};

use crate::config::{ConfigError, Genesis, GenesisNode, NodeConfig};
use crate::crypto::{NodeKey, NodePub};

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

use bindings::NodeList;

/// The compiled contract (ABI and bytecode) that [`deploy`] deploys and the bindings use.
pub const NODE_LIST_ARTIFACT: &str = include_str!("../../contracts/NodeList.json");

/// How long one JSON-RPC request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`NodeListClient::wait_for_full_epoch`] polls by default (the original's 10 s).
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);
/// How long a sent transaction may take to be mined by default.
pub const DEFAULT_TX_TIMEOUT: Duration = Duration::from_secs(120);

type Receipt = <Ethereum as Network>::ReceiptResponse;

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

fn parse_url(s: &str) -> Result<reqwest::Url, ChainError> {
    let url = reqwest::Url::parse(s).map_err(|e| ChainError::Invalid {
        what: "Ethereum RPC URL",
        problem: format!("{s:?}: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ChainError::Invalid {
            what: "Ethereum RPC URL",
            problem: format!("{s:?} is not http:// or https://"),
        });
    }
    Ok(url)
}

/// A connection to one endpoint: the read-only provider plus what writes need.
#[derive(Clone)]
struct Endpoint {
    url: reqwest::Url,
    provider: DynProvider,
    tx_timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    fn new(rpc_url: &str) -> Result<Self, ChainError> {
        let url = parse_url(rpc_url)?;
        let provider = ProviderBuilder::new()
            .connect_client(rpc_client(&url)?)
            .erased();
        Ok(Endpoint {
            url,
            provider,
            tx_timeout: DEFAULT_TX_TIMEOUT,
        })
    }

    /// A provider that signs and sends with `key` (nonce, gas and chain id filled in).
    ///
    /// The nonce is read from the chain for every transaction (alloy's default caches it,
    /// and a send that fails at gas estimation, such as a revert, would leave the cache one
    /// ahead: every later transaction would wait forever in the pool). Writes from one key
    /// are therefore sequential: each waits for its receipt.
    fn signing(&self, key: &NodeKey) -> Result<DynProvider, ChainError> {
        let secret = key.to_bytes();
        let signer =
            PrivateKeySigner::from_slice(secret.as_slice()).map_err(|e| ChainError::Invalid {
                what: "signing key",
                problem: e.to_string(),
            })?;
        Ok(ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_client(rpc_client(&self.url)?)
            .erased())
    }

    fn rpc_error(&self, call: &'static str, e: RpcError<TransportErrorKind>) -> ChainError {
        match &e {
            RpcError::Transport(_) => ChainError::Unreachable {
                url: self.url.to_string(),
                detail: e.to_string(),
            },
            RpcError::ErrorResp(payload) => match payload.as_revert_data() {
                Some(data) => reverted(call, &data),
                None => ChainError::Rpc {
                    call,
                    detail: e.to_string(),
                },
            },
            _ => ChainError::Rpc {
                call,
                detail: e.to_string(),
            },
        }
    }

    fn contract_error(
        &self,
        call: &'static str,
        contract: Address,
        e: alloy::contract::Error,
    ) -> ChainError {
        use alloy::contract::Error as E;
        match e {
            E::TransportError(t) => self.rpc_error(call, t),
            E::ZeroData(..) => ChainError::NotAContract { address: contract },
            E::PendingTransactionError(p) => ChainError::Rpc {
                call,
                detail: p.to_string(),
            },
            other => ChainError::Rpc {
                call,
                detail: other.to_string(),
            },
        }
    }

    /// Sends a transaction, waits for its receipt and checks that it succeeded.
    async fn transact<P, D>(
        &self,
        call: &'static str,
        contract: Address,
        builder: alloy::contract::CallBuilder<P, D>,
    ) -> Result<Receipt, ChainError>
    where
        P: Provider,
        D: alloy::contract::CallDecoder,
    {
        let pending = builder
            .send()
            .await
            .map_err(|e| self.contract_error(call, contract, e))?;
        let receipt = pending
            .with_timeout(Some(self.tx_timeout))
            .get_receipt()
            .await
            .map_err(|e| ChainError::Rpc {
                call,
                detail: e.to_string(),
            })?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                call,
                error: "unknown".into(),
                reason: format!("transaction {} failed on chain", receipt.transaction_hash()),
            });
        }
        Ok(receipt)
    }
}

fn rpc_client(url: &reqwest::Url) -> Result<RpcClient, ChainError> {
    let transport = transport::HttpTransport::new(url.clone(), REQUEST_TIMEOUT).map_err(|e| {
        ChainError::Invalid {
            what: "HTTP client",
            problem: e.to_string(),
        }
    })?;
    let local = alloy::transports::utils::guess_local_url(url.as_str());
    Ok(RpcClient::new(transport, local))
}

/// Decodes revert data: the contract's own errors, then `Error(string)` and `Panic(uint256)`.
fn reverted(call: &'static str, data: &[u8]) -> ChainError {
    use NodeList::NodeListErrors as E;
    let (error, reason) = match E::abi_decode(data) {
        Ok(e) => {
            let reason = match &e {
                E::NotOwner(x) => format!("{} is not the contract owner", x.caller),
                E::ZeroOwner(_) => "the new owner is the zero address".to_string(),
                E::ZeroEpoch(_) => "epoch 0 is reserved".to_string(),
                E::EpochNotFound(x) => format!("epoch {} does not exist", x.epoch),
                E::NotWhitelisted(x) => {
                    format!("{} is not whitelisted for epoch {}", x.node, x.epoch)
                }
                E::AlreadyRegistered(x) => {
                    format!("{} is already listed in epoch {}", x.node, x.epoch)
                }
                E::EpochFull(x) => format!("epoch {} already has its {} nodes", x.epoch, x.n),
                E::NotCallersKey(x) => format!(
                    "the public key belongs to {}, not to the caller {}",
                    x.keyAddress, x.caller
                ),
            };
            let name = match &e {
                E::NotOwner(_) => "NotOwner",
                E::ZeroOwner(_) => "ZeroOwner",
                E::ZeroEpoch(_) => "ZeroEpoch",
                E::EpochNotFound(_) => "EpochNotFound",
                E::NotWhitelisted(_) => "NotWhitelisted",
                E::AlreadyRegistered(_) => "AlreadyRegistered",
                E::EpochFull(_) => "EpochFull",
                E::NotCallersKey(_) => "NotCallersKey",
            };
            (name.to_string(), format!("{name}: {reason}"))
        }
        Err(_) => match alloy::sol_types::decode_revert_reason(data) {
            Some(text) if data.starts_with(&[0x4e, 0x48, 0x7b, 0x71]) => ("Panic".into(), text),
            Some(text) => ("Error".into(), text),
            None => (
                "unknown".into(),
                format!("unrecognised revert data 0x{}", hex::encode(data)),
            ),
        },
    };
    ChainError::Reverted {
        call,
        error,
        reason,
    }
}

fn to_u32(epoch: u64, field: &str, v: U256) -> Result<u32, ChainError> {
    u32::try_from(v).map_err(|_| ChainError::BadEpoch {
        epoch,
        problem: format!("{field} = {v} does not fit in 32 bits"),
    })
}

fn to_u64(epoch: u64, field: &str, v: U256) -> Result<u64, ChainError> {
    u64::try_from(v).map_err(|_| ChainError::BadEpoch {
        epoch,
        problem: format!("{field} = {v} does not fit in 64 bits"),
    })
}

/// Reads the NodeList contract, and lists nodes in it.
#[derive(Clone, Debug)]
pub struct NodeListClient {
    endpoint: Endpoint,
    contract: Address,
    poll: Duration,
}

impl NodeListClient {
    /// A client of the contract at `contract` (`0x…`) through `rpc_url` (`http(s)://…`).
    /// Connects lazily: nothing is sent until the first call.
    pub fn new(rpc_url: &str, contract: &str) -> Result<Self, ChainError> {
        Ok(NodeListClient {
            endpoint: Endpoint::new(rpc_url)?,
            contract: parse_address(contract)?,
            poll: DEFAULT_POLL,
        })
    }

    /// Sets how often [`Self::wait_for_full_epoch`] polls (default [`DEFAULT_POLL`]).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// Sets how long a sent transaction may take to be mined (default [`DEFAULT_TX_TIMEOUT`]).
    pub fn with_tx_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.tx_timeout = timeout;
        self
    }

    /// The contract's address.
    pub fn contract(&self) -> Address {
        self.contract
    }

    /// The chain's id (`eth_chainId`).
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.endpoint
            .provider
            .get_chain_id()
            .await
            .map_err(|e| self.endpoint.rpc_error("eth_chainId", e))
    }

    fn instance(&self) -> NodeList::NodeListInstance<&DynProvider> {
        NodeList::new(self.contract, &self.endpoint.provider)
    }

    fn err(&self, call: &'static str, e: alloy::contract::Error) -> ChainError {
        self.endpoint.contract_error(call, self.contract, e)
    }

    /// The epoch's parameters and the nodes listed so far, in position order. Each node's
    /// details must hold a valid public key that belongs to its address.
    pub async fn epoch(&self, epoch: u64) -> Result<ChainEpoch, ChainError> {
        let c = self.instance();
        let info = c
            .getEpochInfo(U256::from(epoch))
            .call()
            .await
            .map_err(|e| self.err("getEpochInfo", e))?;
        if info.id.is_zero() {
            return Err(ChainError::EpochNotFound {
                epoch,
                contract: self.contract,
            });
        }
        let mut nodes = Vec::with_capacity(info.nodeList.len());
        for (i, &address) in info.nodeList.iter().enumerate() {
            let position = u32::try_from(i + 1).map_err(|_| ChainError::BadEpoch {
                epoch,
                problem: "more than 2^32 nodes".into(),
            })?;
            let bad = |problem: &str| ChainError::BadNode {
                epoch,
                position,
                address,
                problem: problem.to_string(),
            };
            let d = c
                .getNodeDetails(address)
                .call()
                .await
                .map_err(|e| self.err("getNodeDetails", e))?;
            if d.pubKx.is_zero() && d.pubKy.is_zero() {
                return Err(bad("no details: it never listed itself"));
            }
            let pubkey = NodePub::from_xy(&d.pubKx.to_be_bytes(), &d.pubKy.to_be_bytes())
                .map_err(|_| bad("its public key is not a secp256k1 point"))?;
            if node_address(&pubkey) != address {
                return Err(bad("its public key belongs to another address"));
            }
            nodes.push(ChainNode {
                position,
                address,
                pubkey,
                declared_ip: d.declaredIp,
                consensus: d.tmP2PListenAddress,
                p2p: d.p2pListenAddress,
            });
        }
        Ok(ChainEpoch {
            epoch,
            n: to_u32(epoch, "n", info.n)?,
            k: to_u32(epoch, "k", info.k)?,
            t: to_u32(epoch, "t", info.t)?,
            prev: to_u64(epoch, "prevEpoch", info.prevEpoch)?,
            next: to_u64(epoch, "nextEpoch", info.nextEpoch)?,
            nodes,
        })
    }

    /// Polls [`Self::epoch`] until all n nodes are listed. An epoch that does not exist yet
    /// and an unreachable endpoint are waited out too; any other error ends the wait at once.
    /// After `timeout`, fails with [`ChainError::TimedOut`] carrying the last answer.
    pub async fn wait_for_full_epoch(
        &self,
        epoch: u64,
        timeout: Duration,
    ) -> Result<ChainEpoch, ChainError> {
        let start = Instant::now();
        loop {
            let last = match self.epoch(epoch).await {
                Ok(e) if e.is_full() => return Ok(e),
                Ok(e) => ChainError::EpochIncomplete {
                    epoch,
                    registered: e.nodes.len(),
                    n: e.n,
                },
                Err(e @ (ChainError::EpochNotFound { .. } | ChainError::Unreachable { .. })) => e,
                Err(e) => return Err(e),
            };
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(ChainError::TimedOut {
                    epoch,
                    waited,
                    last: Box::new(last),
                });
            }
            tracing::debug!(epoch, "waiting for the epoch to fill: {last}");
            tokio::time::sleep(self.poll.min(timeout - waited)).await;
        }
    }

    /// `getPssStatus(old, new)`: the resharing status from `old` to `new` (1 = start).
    pub async fn pss_status(&self, old: u64, new: u64) -> Result<u64, ChainError> {
        let v = self
            .instance()
            .getPssStatus(U256::from(old), U256::from(new))
            .call()
            .await
            .map_err(|e| self.err("getPssStatus", e))?;
        to_u64(new, "pssStatus", v)
    }

    /// `isWhitelisted(epoch, node)`.
    pub async fn is_whitelisted(&self, epoch: u64, node: Address) -> Result<bool, ChainError> {
        self.instance()
            .isWhitelisted(U256::from(epoch), node)
            .call()
            .await
            .map_err(|e| self.err("isWhitelisted", e))
    }

    /// `nodeRegistered(epoch, node)`: whether `node` is in the epoch's list.
    pub async fn node_registered(&self, epoch: u64, node: Address) -> Result<bool, ChainError> {
        self.instance()
            .nodeRegistered(U256::from(epoch), node)
            .call()
            .await
            .map_err(|e| self.err("nodeRegistered", e))
    }

    /// Lists the node of `key` in `epoch` (`listNode`, sent from the key's own account, which
    /// pays the gas) with its public key, its JSON-RPC URL as `declaredIp`, its consensus
    /// multiaddr as `tmP2PListenAddress` and its AVSS multiaddr as `p2pListenAddress`.
    /// Returns its 1-based position. The contract's refusals come back as
    /// [`ChainError::Reverted`] (`NotWhitelisted`, `AlreadyRegistered`, `EpochFull`, ...).
    pub async fn list_node(
        &self,
        key: &NodeKey,
        epoch: u64,
        rpc_url: &str,
        consensus: &str,
        p2p: &str,
    ) -> Result<u32, ChainError> {
        let (x, y) = key.public().xy();
        self.list_node_with_pubkey(key, epoch, rpc_url, (x, y), consensus, p2p)
            .await
    }

    /// As [`Self::list_node`], declaring `pubkey` (x, y) instead of the key's own; the
    /// contract refuses one that is not the caller's (`NotCallersKey`). For tests and tools.
    #[doc(hidden)]
    pub async fn list_node_with_pubkey(
        &self,
        key: &NodeKey,
        epoch: u64,
        rpc_url: &str,
        pubkey: ([u8; 32], [u8; 32]),
        consensus: &str,
        p2p: &str,
    ) -> Result<u32, ChainError> {
        let provider = self.endpoint.signing(key)?;
        let c = NodeList::new(self.contract, &provider);
        let call = c.listNode(
            U256::from(epoch),
            rpc_url.to_string(),
            U256::from_be_bytes(pubkey.0),
            U256::from_be_bytes(pubkey.1),
            consensus.to_string(),
            p2p.to_string(),
        );
        let receipt = self
            .endpoint
            .transact("listNode", self.contract, call)
            .await?;
        let listed = receipt
            .inner
            .logs()
            .iter()
            .find_map(|log| log.log_decode::<NodeList::NodeListed>().ok())
            .ok_or_else(|| ChainError::Rpc {
                call: "listNode",
                detail: "the receipt has no NodeListed event".into(),
            })?;
        to_u32(epoch, "position", listed.inner.data.position)
    }

    /// Lists the node in `epoch` unless it already is; returns its position either way.
    /// What a node runs at start, once it is whitelisted.
    pub async fn ensure_listed(
        &self,
        key: &NodeKey,
        epoch: u64,
        rpc_url: &str,
        consensus: &str,
        p2p: &str,
    ) -> Result<u32, ChainError> {
        let me = node_address(&key.public());
        if self.node_registered(epoch, me).await? {
            let e = self.epoch(epoch).await?;
            if let Some(node) = e.nodes.iter().find(|n| n.address == me) {
                return Ok(node.position);
            }
        }
        self.list_node(key, epoch, rpc_url, consensus, p2p).await
    }
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
