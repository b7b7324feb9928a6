//! Node configuration: one TOML file per node, then `TORUS_*` environment
//! overrides, validated at start with errors that name the field.
//!
//! ```toml
//! data_dir = "/var/lib/torus"       # TORUS_DATA_DIR
//! dev_mode = false                  # TORUS_DEV_MODE (enables the `test` verifier)
//! key_file = "node.key"             # TORUS_KEY_FILE (relative to data_dir; created 0600)
//! genesis = "genesis.toml"          # TORUS_GENESIS (relative to the config file), or [node_list]
//! hw_profile = "hw-profiles/cpu-2core.toml"   # TORUS_HW_PROFILE (optional)
//!
//! [rpc]
//! listen = "127.0.0.1:8000"         # TORUS_RPC_LISTEN
//! max_body_bytes = 1048576
//! request_timeout_ms = 15000
//! key_assign_timeout_ms = 10000
//! key_assign_auth_pubkey = "04..."  # optional: the KeyAssign signer's key (spec §10.5)
//!
//! [grpc]
//! listen = "127.0.0.1:9000"         # TORUS_GRPC_LISTEN
//!
//! # Instead of `genesis`: the committee of an epoch of the NodeList contract (`eth` feature).
//! # Exactly one of the two must be given.
//! # [node_list]
//! # eth_rpc = "http://127.0.0.1:8545"
//! # contract = "0x..."
//! # epoch = 1
//! # poll_s = 10                     # optional: seconds between polls while the epoch fills
//! # wait_s = 600                    # optional: give up after this many seconds
//!
//! [[verifiers]]
//! name = "google"
//! kind = "oidc"
//! issuer = "https://accounts.google.com"
//! jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
//! audience = "client-id"
//! verifier_id_claim = "email"
//! max_token_age_s = 600             # optional: largest token age (now - iat); default 600
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crypto::NodePub;
use crate::tx::{EpochInfo, NodeEntry};
use crate::verifier::VerifierConfig;

/// A configuration error, naming the field and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {err}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        err: std::io::Error,
    },
    /// TOML syntax or an unknown/mistyped field.
    #[error("{path}: {err}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// Cause.
        err: String,
    },
    /// A field's value is invalid.
    #[error("config field `{field}`: {problem}")]
    Invalid {
        /// Field name.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// `[rpc]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Listen address of the client JSON-RPC (and /healthz, /metrics).
    pub listen: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Per-request time limit.
    pub request_timeout_ms: u64,
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

/// The whole node configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Data directory (LMDB, key file).
    pub data_dir: PathBuf,
    /// Development mode (allows the `test` verifier).
    #[serde(default)]
    pub dev_mode: bool,
    /// Key file, relative to `data_dir` unless absolute.
    #[serde(default = "default_key_file")]
    pub key_file: PathBuf,
    /// Genesis file, relative to the config file unless absolute; empty when the genesis
    /// comes from `[node_list]` (exactly one of the two is given).
    #[serde(default)]
    pub genesis: PathBuf,
    /// Read the genesis committee from the NodeList contract instead of a file.
    #[serde(default)]
    pub node_list: Option<NodeListConfig>,
    /// Hardware profile (optional).
    #[serde(default)]
    pub hw_profile: Option<PathBuf>,
    /// Client JSON-RPC.
    #[serde(default)]
    pub rpc: RpcConfig,
    /// Operator gRPC.
    #[serde(default)]
    pub grpc: GrpcConfig,
    /// ABCI server.
    #[serde(default)]
    pub abci: AbciConfig,
    /// OIDC verifiers.
    #[serde(default)]
    pub verifiers: Vec<VerifierConfig>,
    /// Node-to-node network (AVSS messages, mempool gossip).
    #[serde(default)]
    pub p2p: P2pSection,
    /// Embedded consensus engine (malachite).
    #[serde(default)]
    pub consensus: ConsensusSection,
    /// Key buffer and key generation.
    #[serde(default)]
    pub keygen: crate::keygen::KeygenConfig,
}

/// `[p2p]`: the node-to-node network.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct P2pSection {
    /// Listen multiaddr (`/ip4/0.0.0.0/tcp/4001`); empty = the port of this node's
    /// genesis `p2p` address on all interfaces.
    pub listen: String,
    /// Largest message in MiB (0 = 256).
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

fn default_key_file() -> PathBuf {
    PathBuf::from("node.key")
}

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

    fn validate(&self) -> Result<(), ConfigError> {
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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(invalid(field, format!("expected true/false, got {v:?}"))),
    }
}

fn check_listen(field: &str, v: &str) -> Result<(), ConfigError> {
    v.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
        invalid(
            field,
            format!("{v:?} is not HOST:PORT (an IP address and a port 0-65535)"),
        )
    })
}

impl NodeConfig {
    /// Reads `path`, applies `TORUS_*` overrides, resolves relative paths and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        let mut cfg: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            err: e.to_string(),
        })?;
        cfg.apply_env()?;
        let base = path.parent().unwrap_or(Path::new("."));
        if !cfg.genesis.as_os_str().is_empty() && cfg.genesis.is_relative() {
            cfg.genesis = base.join(&cfg.genesis);
        }
        if let Some(p) = &cfg.hw_profile {
            if p.is_relative() {
                cfg.hw_profile = Some(base.join(p));
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies `TORUS_DATA_DIR`, `TORUS_DEV_MODE`, `TORUS_KEY_FILE`, `TORUS_GENESIS`,
    /// `TORUS_HW_PROFILE`, `TORUS_RPC_LISTEN`, `TORUS_GRPC_LISTEN`, `TORUS_ABCI_LISTEN`.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        if let Some(v) = env("TORUS_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("TORUS_DEV_MODE") {
            self.dev_mode = parse_bool("TORUS_DEV_MODE", &v)?;
        }
        if let Some(v) = env("TORUS_KEY_FILE") {
            self.key_file = v.into();
        }
        if let Some(v) = env("TORUS_GENESIS") {
            self.genesis = v.into();
        }
        if let Some(v) = env("TORUS_HW_PROFILE") {
            self.hw_profile = Some(v.into());
        }
        if let Some(v) = env("TORUS_RPC_LISTEN") {
            self.rpc.listen = v;
        }
        if let Some(v) = env("TORUS_GRPC_LISTEN") {
            self.grpc.listen = v;
        }
        if let Some(v) = env("TORUS_ABCI_LISTEN") {
            self.abci.listen = v;
        }
        Ok(())
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "missing"));
        }
        match (&self.node_list, self.genesis.as_os_str().is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    "genesis",
                    "give either `genesis` (a file) or `[node_list]` (the contract), not both",
                ))
            }
            (None, true) => {
                return Err(invalid(
                    "genesis",
                    "missing: give `genesis` (a file) or a `[node_list]` table",
                ))
            }
            (Some(nl), true) => nl.validate()?,
            (None, false) => {}
        }
        check_listen("rpc.listen", &self.rpc.listen)?;
        if !self.grpc.listen.is_empty() {
            check_listen("grpc.listen", &self.grpc.listen)?;
        }
        if !self.abci.listen.is_empty() {
            check_listen("abci.listen", &self.abci.listen)?;
        }
        if self.rpc.max_body_bytes < 1024 || self.rpc.max_body_bytes > 64 << 20 {
            return Err(invalid(
                "rpc.max_body_bytes",
                "must be between 1 KiB and 64 MiB",
            ));
        }
        if self.rpc.request_timeout_ms == 0 || self.rpc.key_assign_timeout_ms == 0 {
            return Err(invalid("rpc.*_timeout_ms", "must be positive"));
        }
        if let Some(pk) = &self.rpc.key_assign_auth_pubkey {
            let raw = hex::decode(pk.trim_start_matches("0x"))
                .map_err(|_| invalid("rpc.key_assign_auth_pubkey", "not hex"))?;
            NodePub::from_sec1(&raw)
                .map_err(|_| invalid("rpc.key_assign_auth_pubkey", "not a secp256k1 point"))?;
        }
        for (field, v) in [
            ("p2p.listen", &self.p2p.listen),
            ("consensus.listen", &self.consensus.listen),
        ] {
            if !v.is_empty() && !v.starts_with('/') {
                return Err(invalid(
                    field,
                    format!("{v:?} is not a multiaddr (/ip4/HOST/tcp/PORT)"),
                ));
            }
        }
        for (i, v) in self
            .p2p
            .peer_addrs
            .iter()
            .chain(self.consensus.peer_addrs.iter())
        {
            if i.parse::<u32>().is_err() || !v.starts_with('/') {
                return Err(invalid(
                    "peer_addrs",
                    format!("{i:?} = {v:?}: keys are node indexes, values multiaddrs"),
                ));
            }
        }
        if self.consensus.timeout_propose_ms == 0
            || self.consensus.timeout_prevote_ms == 0
            || self.consensus.timeout_precommit_ms == 0
        {
            return Err(invalid("consensus.timeout_*_ms", "must be positive"));
        }
        if self.consensus.idle_block_ms * 2 >= self.consensus.timeout_propose_ms {
            return Err(invalid(
                "consensus.idle_block_ms",
                "must be under half of timeout_propose_ms",
            ));
        }
        if self.keygen.faults.is_active() && !self.dev_mode {
            return Err(invalid(
                "keygen.faults",
                "a test hook: only with dev_mode = true",
            ));
        }
        self.keygen
            .faults
            .dealer()
            .map_err(|e| invalid("keygen.faults.dealer", e))?;
        let mut names = std::collections::HashSet::new();
        for (i, v) in self.verifiers.iter().enumerate() {
            v.validate(self.dev_mode)
                .map_err(|e| invalid(&format!("verifiers[{i}]"), e.to_string()))?;
            if !names.insert(v.name.clone()) {
                return Err(invalid(
                    &format!("verifiers[{i}].name"),
                    format!("duplicate verifier {:?}", v.name),
                ));
            }
        }
        Ok(())
    }

    /// The key file's absolute path.
    pub fn key_path(&self) -> PathBuf {
        if self.key_file.is_absolute() {
            self.key_file.clone()
        } else {
            self.data_dir.join(&self.key_file)
        }
    }
}

/// Loads the node key from `path`, or creates it (mode 0600) on first start.
/// The file holds the 32-byte secret as 64 hex characters.
pub fn load_or_create_key(path: &Path) -> Result<crate::crypto::NodeKey, ConfigError> {
    use crate::crypto::NodeKey;
    use zeroize::Zeroizing;
    if path.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(path) {
                if m.permissions().mode() & 0o077 != 0 {
                    return Err(invalid(
                        "key_file",
                        format!("{} is readable by others; chmod 600 it", path.display()),
                    ));
                }
            }
        }
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
                    path: path.to_path_buf(),
                    err,
                })?,
            );
        let raw = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| invalid("key_file", "not 64 hex characters"))?,
        );
        let arr: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| invalid("key_file", "not 64 hex characters"))?;
        let arr = Zeroizing::new(arr);
        return NodeKey::from_bytes(&arr)
            .map_err(|_| invalid("key_file", "not a valid secret key"));
    }
    let key = NodeKey::random();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| ConfigError::Read {
            path: dir.to_path_buf(),
            err,
        })?;
    }
    let text = Zeroizing::new(hex::encode(*key.to_bytes()));
    write_private(path, text.as_bytes()).map_err(|err| ConfigError::Read {
        path: path.to_path_buf(),
        err,
    })?;
    Ok(key)
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn errors_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        let base = "data_dir = \"/tmp/x\"\ngenesis = \"g.toml\"\n";
        let p = write(
            d.path(),
            "a.toml",
            &format!("{base}[rpc]\nlisten = \"127.0.0.1:99999\"\n"),
        );
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("rpc.listen"), "{e}");
        let p = write(d.path(), "b.toml", "genesis = \"g.toml\"\n");
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("data_dir"), "{e}");
        let p = write(
            d.path(),
            "c.toml",
            &format!("{base}[[verifiers]]\nname = \"x\"\nkind = \"saml\"\n"),
        );
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("saml") || e.contains("kind"), "{e}");
        let p = write(d.path(), "d.toml", &format!("{base}bogus = 1\n"));
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let p = write(d.path(), "e.toml", base);
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.genesis, d.path().join("g.toml"));
    }

    #[test]
    fn genesis_comes_from_exactly_one_of_file_and_node_list() {
        let d = tempfile::tempdir().unwrap();
        let load = |name: &str, body: &str| {
            NodeConfig::load(&write(
                d.path(),
                name,
                &format!("data_dir = \"/tmp/x\"\n{body}"),
            ))
        };
        let nl = "[node_list]\neth_rpc = \"http://127.0.0.1:8545\"\n\
                  contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nepoch = 1\n";
        let c = load("nl.toml", nl).unwrap();
        assert!(c.genesis.as_os_str().is_empty());
        let n = c.node_list.unwrap();
        assert_eq!((n.epoch, n.poll_interval().as_secs()), (1, 10));
        let e = load("both.toml", &format!("genesis = \"g.toml\"\n{nl}")).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = load("none.toml", "").unwrap_err().to_string();
        assert!(e.contains("`genesis`") && e.contains("missing"), "{e}");
        for (bad, field) in [
            (
                nl.replace("0x5FbDB2315678afecb367f032d93F642f64180aa3", "0x5FbD"),
                "contract",
            ),
            (nl.replace("epoch = 1", "epoch = 0"), "epoch"),
            (nl.replace("http://", "ws://"), "eth_rpc"),
            (format!("{nl}poll_s = 0\n"), "poll_s"),
        ] {
            let e = load("bad.toml", &bad).unwrap_err().to_string();
            assert!(e.contains(&format!("node_list.{field}")), "{e}");
        }
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k/node.key");
        let k1 = load_or_create_key(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let k2 = load_or_create_key(&p).unwrap();
        assert_eq!(k1.public(), k2.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(load_or_create_key(&p)
                .unwrap_err()
                .to_string()
                .contains("chmod"));
        }
    }
}
