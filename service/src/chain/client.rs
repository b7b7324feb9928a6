//! [`NodeListClient`]: reads epochs of the NodeList contract and lists a node in one.

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::{DynProvider, Provider};

use super::bindings::NodeList;
use super::endpoint::Endpoint;
use super::{
    node_address, parse_address, Address, ChainEpoch, ChainError, ChainNode, DEFAULT_POLL,
};
use crate::crypto::{NodeKey, NodePub};

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
