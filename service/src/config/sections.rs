//! The `[rpc]`, `[grpc]`, `[abci]`, `[p2p]` and `[consensus]` sections.

use serde::{Deserialize, Serialize};

/// `[rpc]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Listen address of the client JSON-RPC (and /healthz, /metrics).
    pub listen: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Per-request time limit, from the end of the headers: reading the body counts.
    pub request_timeout_ms: u64,
    /// A connection must deliver a request's complete headers within this time after
    /// it opens or after its previous response (slow-header clients are dropped).
    pub header_timeout_ms: u64,
    /// Open client connections at most; more are closed on accept.
    pub max_connections: usize,
    /// How long KeyAssign waits for its transaction to commit.
    pub key_assign_timeout_ms: u64,
    /// If set, KeyAssign requires the signer's signature (hex SEC1 public key).
    pub key_assign_auth_pubkey: Option<String>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: "127.0.0.1:8000".into(),
            max_body_bytes: 1 << 20,
            request_timeout_ms: 15_000,
            header_timeout_ms: 10_000,
            max_connections: 1024,
            key_assign_timeout_ms: 10_000,
            key_assign_auth_pubkey: None,
        }
    }
}

/// `[grpc]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Listen address of the operator gRPC API; empty disables it.
    pub listen: String,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            listen: "127.0.0.1:9000".into(),
        }
    }
}

/// `[abci]`: serve the consensus app to CometBFT instead of the embedded engine.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbciConfig {
    /// Listen address for CometBFT's ABCI connections; empty = embedded engine.
    pub listen: String,
    /// CometBFT's RPC URL, where the node broadcasts its transactions.
    pub cometbft_rpc: String,
}

impl Default for AbciConfig {
    fn default() -> Self {
        AbciConfig {
            listen: String::new(),
            cometbft_rpc: "http://127.0.0.1:26657".into(),
        }
    }
}

/// `[p2p]`: the node-to-node network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct P2pSection {
    /// Listen multiaddr (`/ip4/0.0.0.0/tcp/4001`); empty = the port of this node's
    /// genesis `p2p` address on all interfaces.
    pub listen: String,
    /// Largest message in MiB (0 = 256; otherwise at least 65, see
    /// [`crate::tx::MAX_BATCH_MESSAGE_BYTES`]).
    pub max_message_mib: usize,
    /// Per-peer dial addresses that replace the genesis ones (keyed by node index;
    /// used to put links behind relays, e.g. in partition tests).
    pub peer_addrs: std::collections::BTreeMap<String, String>,
}

/// `[consensus]`: the embedded BFT engine.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    /// Listen multiaddr; empty = the port of this node's genesis `consensus` address.
    pub listen: String,
    /// Per-peer dial addresses that replace the genesis ones (keyed by node index).
    pub peer_addrs: std::collections::BTreeMap<String, String>,
    /// Propose timeout, milliseconds.
    pub timeout_propose_ms: u64,
    /// Prevote timeout, milliseconds.
    pub timeout_prevote_ms: u64,
    /// Precommit timeout, milliseconds.
    pub timeout_precommit_ms: u64,
    /// How long a proposer waits for transactions before proposing an empty block, ms.
    pub idle_block_ms: u64,
    /// Relaunch the engine (redialing every peer) after this many seconds without a
    /// decided block; 0 disables the watchdog.
    pub stall_restart_s: u64,
    /// Consensus peer ids of non-validators allowed to connect and follow (they
    /// receive votes, proposals and synced blocks); every other non-validator is
    /// refused at connection establishment. Empty: validators only.
    pub observers: Vec<String>,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        ConsensusSection {
            listen: String::new(),
            peer_addrs: std::collections::BTreeMap::new(),
            timeout_propose_ms: 2000,
            timeout_prevote_ms: 500,
            timeout_precommit_ms: 500,
            idle_block_ms: 300,
            stall_restart_s: 15,
            observers: Vec::new(),
        }
    }
}

/// The listen multiaddr of a genesis address: the same transport and port on
/// all interfaces (`/ip4/127.0.0.1/tcp/4001` → `/ip4/0.0.0.0/tcp/4001`) unless
/// it is a loopback address, which is kept.
pub fn listen_from(addr: &str) -> String {
    let parts: Vec<&str> = addr.split('/').collect();
    match parts.as_slice() {
        ["", "ip4", ip, rest @ ..] if !ip.starts_with("127.") => {
            format!("/ip4/0.0.0.0/{}", rest.join("/"))
        }
        _ => addr.to_string(),
    }
}
