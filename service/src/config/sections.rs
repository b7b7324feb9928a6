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
    /// KeyAssign signer public keys (hex SEC1, spec §10.5): KeyAssign requires a signature
    /// by one of them. Outside dev mode a node without any refuses every KeyAssign.
    pub key_assign_signers: Vec<String>,
    /// One more KeyAssign signer key (the single key of older configurations); joins
    /// `key_assign_signers`.
    pub key_assign_auth_pubkey: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (IP addresses); empty:
    /// the connection's peer is the client.
    pub trusted_proxies: Vec<String>,
    /// CommitmentRequests per second per client address (sustained).
    pub commitment_per_s: u32,
    /// CommitmentRequest burst per client address.
    pub commitment_burst: u32,
    /// ShareRequests per second per client address (sustained).
    pub share_per_s: u32,
    /// ShareRequest burst per client address.
    pub share_burst: u32,
    /// KeyAssigns per second per client address (sustained).
    pub key_assign_per_s: u32,
    /// KeyAssign burst per client address.
    pub key_assign_burst: u32,
    /// Client addresses tracked per rate limit; the others share one budget.
    pub rate_limit_clients: usize,
    /// `/readyz` answers 503 when no block was committed for longer than this, seconds.
    pub ready_max_block_age_s: u64,
    /// On shutdown (SIGTERM, Ctrl-C), how long requests in flight may take to finish, ms.
    pub shutdown_grace_ms: u64,
}

impl RpcConfig {
    /// Every configured KeyAssign signer key (`key_assign_signers` and
    /// `key_assign_auth_pubkey`), parsed; the error names the field.
    pub fn key_assign_signer_keys(&self) -> Result<Vec<crate::crypto::NodePub>, String> {
        let mut out = Vec::new();
        let fields = self
            .key_assign_signers
            .iter()
            .map(|k| ("rpc.key_assign_signers", k))
            .chain(
                self.key_assign_auth_pubkey
                    .iter()
                    .map(|k| ("rpc.key_assign_auth_pubkey", k)),
            );
        for (field, k) in fields {
            let raw = hex::decode(k.trim_start_matches("0x"))
                .map_err(|_| format!("{field}: {k:?} is not hex"))?;
            let pk = crate::crypto::NodePub::from_sec1(&raw)
                .map_err(|_| format!("{field}: {k:?} is not a secp256k1 public key"))?;
            out.push(pk);
        }
        Ok(out)
    }

    /// The trusted proxies' addresses; the error names the entry.
    pub fn trusted_proxy_addrs(&self) -> Result<Vec<std::net::IpAddr>, String> {
        self.trusted_proxies
            .iter()
            .map(|p| p.parse().map_err(|_| format!("{p:?} is not an IP address")))
            .collect()
    }
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
            key_assign_signers: Vec::new(),
            key_assign_auth_pubkey: None,
            trusted_proxies: Vec::new(),
            commitment_per_s: 10,
            commitment_burst: 40,
            share_per_s: 10,
            share_burst: 40,
            key_assign_per_s: 1,
            key_assign_burst: 10,
            rate_limit_clients: 100_000,
            ready_max_block_age_s: 30,
            shutdown_grace_ms: 10_000,
        }
    }
}

/// `[store]`: the sizes of the node's two LMDB environments.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Map size of the consensus environment (`<data_dir>/lmdb`), MiB.
    pub map_mib: u64,
    /// Map size of the client environment (`<data_dir>/client-lmdb`: token commitments and
    /// reveals), MiB. When it is full, client requests are refused; consensus is not.
    pub client_map_mib: u64,
    /// Live token-commitment records at most (pruned a token lifetime after they arrive).
    pub max_token_commitments: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            map_mib: (crate::store::DEFAULT_MAP_SIZE >> 20) as u64,
            client_map_mib: (crate::store::DEFAULT_CLIENT_MAP_SIZE >> 20) as u64,
            max_token_commitments: crate::store::DEFAULT_MAX_TOKEN_COMMITMENTS,
        }
    }
}

impl StoreSection {
    /// The consensus environment's map size in bytes.
    pub fn map_size(&self) -> usize {
        usize::try_from(self.map_mib << 20).unwrap_or(usize::MAX)
    }

    /// The client store's limits.
    pub fn client_limits(&self) -> crate::store::ClientLimits {
        crate::store::ClientLimits {
            map_size: usize::try_from(self.client_map_mib << 20).unwrap_or(usize::MAX),
            max_commitments: self.max_token_commitments,
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
    /// decided block, plus a per-node jitter of up to as many again; 0 disables the
    /// watchdog.
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
