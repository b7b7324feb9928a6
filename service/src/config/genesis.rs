//! Where the first committee comes from: a genesis file, or an epoch of the
//! NodeList contract (`[node_list]`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};
use crate::crypto::NodePub;
use crate::tx::{EpochInfo, NodeEntry};

/// `[node_list]`: the genesis is the committee of `epoch` in the NodeList contract at
/// `contract` (see `chain::load_genesis`), read once all n nodes have listed themselves.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeListConfig {
    /// Ethereum JSON-RPC URL (`http://` or `https://`).
    pub eth_rpc: String,
    /// The contract's address, `0x` and 40 hex digits.
    pub contract: String,
    /// The epoch whose committee is the genesis (1 or more).
    pub epoch: u64,
    /// Seconds between polls while the epoch fills (default 10).
    #[serde(default)]
    pub poll_s: Option<u64>,
    /// Seconds to wait for the epoch to fill before the node gives up (default 600).
    #[serde(default)]
    pub wait_s: Option<u64>,
    /// If set (with `announce_consensus` and `announce_p2p`), the node lists itself in
    /// the epoch at start (`listNode`, once whitelisted) with these endpoints: its
    /// JSON-RPC URL (`http://host:port/jrpc`).
    #[serde(default)]
    pub announce_rpc: Option<String>,
    /// The consensus multiaddr the node announces.
    #[serde(default)]
    pub announce_consensus: Option<String>,
    /// The p2p multiaddr the node announces.
    #[serde(default)]
    pub announce_p2p: Option<String>,
}

impl NodeListConfig {
    /// Time between polls.
    pub fn poll_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.poll_s.unwrap_or(10))
    }

    /// How long to wait for the epoch to fill.
    pub fn wait_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.wait_s.unwrap_or(600))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !cfg!(feature = "eth") {
            return Err(invalid(
                "node_list",
                "this build has no `eth` feature; give a `genesis` file",
            ));
        }
        if !(self.eth_rpc.starts_with("http://") || self.eth_rpc.starts_with("https://")) {
            return Err(invalid(
                "node_list.eth_rpc",
                format!("{:?} is not an http:// or https:// URL", self.eth_rpc),
            ));
        }
        let hex = self.contract.strip_prefix("0x").unwrap_or("");
        if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "node_list.contract",
                format!("{:?} is not 0x and 40 hex digits", self.contract),
            ));
        }
        if self.epoch == 0 {
            return Err(invalid("node_list.epoch", "epochs start at 1"));
        }
        if self.poll_s == Some(0) {
            return Err(invalid("node_list.poll_s", "must be positive"));
        }
        let announce = [
            &self.announce_rpc,
            &self.announce_consensus,
            &self.announce_p2p,
        ];
        let given = announce.iter().filter(|a| a.is_some()).count();
        if given != 0 && given != 3 {
            return Err(invalid(
                "node_list.announce_*",
                "give all three of announce_rpc, announce_consensus and announce_p2p, or none",
            ));
        }
        Ok(())
    }

    /// The endpoints to list this node with, when all three are configured.
    pub fn announce(&self) -> Option<(&str, &str, &str)> {
        match (
            &self.announce_rpc,
            &self.announce_consensus,
            &self.announce_p2p,
        ) {
            (Some(r), Some(c), Some(p)) => Some((r, c, p)),
            _ => None,
        }
    }
}

/// One node of the genesis file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenesisNode {
    /// 1-based index.
    pub index: u32,
    /// Compressed or uncompressed SEC1 public key, hex.
    pub pubkey: String,
    /// libp2p multiaddr of the node's AVSS/mempool network (`/ip4/.../tcp/PORT`).
    #[serde(default)]
    pub p2p: String,
    /// libp2p multiaddr of the node's consensus (malachite) network.
    #[serde(default)]
    pub consensus: String,
    /// JSON-RPC endpoint (`http://host:port/jrpc`).
    #[serde(default)]
    pub rpc: String,
}

/// The genesis file: the first committee.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id (distinguishes networks).
    pub chain_id: String,
    /// First epoch number.
    pub epoch: u64,
    /// Committee size.
    pub n: u32,
    /// Threshold.
    pub k: u32,
    /// Tolerated faults.
    pub t: u32,
    /// Members.
    pub nodes: Vec<GenesisNode>,
}

impl Genesis {
    /// Reads and validates a genesis file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        let g: Genesis = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            err: e.to_string(),
        })?;
        g.epoch_info()?;
        Ok(g)
    }

    /// The consensus view of it.
    pub fn epoch_info(&self) -> Result<EpochInfo, ConfigError> {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut sorted = self.nodes.clone();
        sorted.sort_by_key(|n| n.index);
        for n in &sorted {
            let raw = hex::decode(n.pubkey.trim_start_matches("0x"))
                .map_err(|_| invalid(&format!("nodes[{}].pubkey", n.index), "not hex"))?;
            let pk = NodePub::from_sec1(&raw).map_err(|_| {
                invalid(
                    &format!("nodes[{}].pubkey", n.index),
                    "not a secp256k1 point",
                )
            })?;
            nodes.push(NodeEntry {
                index: n.index,
                pubkey: pk.compressed(),
            });
        }
        let e = EpochInfo {
            epoch: self.epoch,
            n: self.n,
            k: self.k,
            t: self.t,
            nodes,
        };
        e.validate().map_err(|p| invalid("genesis", p))?;
        Ok(e)
    }
}
