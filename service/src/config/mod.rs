//! Node configuration: one TOML file per node, then `TORUS_*` environment
//! overrides, validated at start with errors that name the field.
//!
//! Every key has an override, named by one rule ([`env`]): `TORUS_`, then the section and
//! the key joined by `_`, in upper case (`[rpc] max_connections` is
//! `TORUS_RPC_MAX_CONNECTIONS`, `data_dir` is `TORUS_DATA_DIR`, `[keygen.faults] dealer`
//! is `TORUS_KEYGEN_FAULTS_DEALER`). Strings are taken as they are; numbers, booleans,
//! arrays and tables as TOML values (`TORUS_RPC_TRUSTED_PROXIES='["127.0.0.1"]'`,
//! `TORUS_VERIFIERS='[{ name = "google", kind = "oidc", ... }]'`); empty values are ignored.
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
//! header_timeout_ms = 10000
//! max_connections = 1024
//! key_assign_timeout_ms = 10000
//! key_assign_signers = ["02..."]    # the KeyAssign signer keys (spec §10.5); outside
//!                                   # dev_mode KeyAssign is refused without one
//! key_assign_auth_pubkey = "04..."  # optional: one more signer key (older configurations)
//! trusted_proxies = ["127.0.0.1"]   # proxies whose X-Forwarded-For names the client
//! commitment_per_s = 10             # per client address (IPv6: per /64) rate limits:
//! commitment_burst = 40             # sustained per second and burst, per method
//! share_per_s = 10
//! share_burst = 40
//! key_assign_per_s = 1
//! key_assign_burst = 10
//! rate_limit_clients = 100000       # addresses tracked per limit; others share one budget
//! ready_max_block_age_s = 30        # /readyz: 503 after this long without a committed block
//! shutdown_grace_ms = 10000         # on SIGTERM: time for requests in flight to finish
//!
//! [store]
//! map_mib = 16384                   # consensus LMDB (<data_dir>/lmdb) map size
//! client_map_mib = 2048             # client LMDB (<data_dir>/client-lmdb: token records)
//! max_token_commitments = 1000000   # live token commitments at most
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

pub mod env;
mod genesis;
mod key;
pub mod peers;
mod sections;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use genesis::{Genesis, GenesisNode, NodeListConfig};
pub use key::{load_key, load_or_create_key};
pub use sections::{
    listen_from, AbciConfig, ConsensusSection, GrpcConfig, P2pSection, RpcConfig, StoreSection,
};

use crate::keygen::config::KeygenConfig;
use crate::verifier::VerifierConfig;

/// Added to the largest token age for the token-record lifetime: the verifiers' `iat`
/// skew allowance (60 s) and as much again for clocks.
pub const TOKEN_RECORD_MARGIN_S: u64 = 120;

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

pub(crate) fn invalid(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        problem: problem.into(),
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
    /// LMDB sizes (consensus and client environments).
    #[serde(default)]
    pub store: StoreSection,
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
    pub keygen: KeygenConfig,
}

fn default_key_file() -> PathBuf {
    PathBuf::from("node.key")
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
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            err: e.to_string(),
        };
        let mut tree: toml::Table = text.parse().map_err(parse_err)?;
        env::apply(&mut tree, env::process_vars()?)?;
        let mut cfg: NodeConfig = toml::Value::Table(tree).try_into().map_err(parse_err)?;
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
        if self.rpc.request_timeout_ms == 0
            || self.rpc.key_assign_timeout_ms == 0
            || self.rpc.header_timeout_ms == 0
        {
            return Err(invalid("rpc.*_timeout_ms", "must be positive"));
        }
        if self.rpc.max_connections == 0 || self.rpc.max_connections > 1 << 20 {
            return Err(invalid(
                "rpc.max_connections",
                "must be between 1 and 1048576",
            ));
        }
        // Every batch consensus accepts keeps a dealer's send under
        // MAX_BATCH_MESSAGE_BYTES; a smaller frame limit would refuse honest sends.
        let batch_mib = usize::try_from(crate::tx::MAX_BATCH_MESSAGE_BYTES >> 20)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if self.p2p.max_message_mib != 0 && self.p2p.max_message_mib < batch_mib {
            return Err(invalid(
                "p2p.max_message_mib",
                format!("must be 0 (256) or at least {batch_mib}: a batch's send may need 64 MiB"),
            ));
        }
        self.rpc
            .key_assign_signer_keys()
            .map_err(|e| invalid("rpc.key_assign_signers", e))?;
        self.rpc
            .trusted_proxy_addrs()
            .map_err(|e| invalid("rpc.trusted_proxies", e))?;
        for (field, v) in [
            ("rpc.commitment_per_s", self.rpc.commitment_per_s),
            ("rpc.commitment_burst", self.rpc.commitment_burst),
            ("rpc.share_per_s", self.rpc.share_per_s),
            ("rpc.share_burst", self.rpc.share_burst),
            ("rpc.key_assign_per_s", self.rpc.key_assign_per_s),
            ("rpc.key_assign_burst", self.rpc.key_assign_burst),
        ] {
            if v == 0 || v > 1_000_000 {
                return Err(invalid(field, "must be between 1 and 1000000"));
            }
        }
        if self.rpc.rate_limit_clients == 0 || self.rpc.rate_limit_clients > 10_000_000 {
            return Err(invalid(
                "rpc.rate_limit_clients",
                "must be between 1 and 10000000",
            ));
        }
        if self.rpc.shutdown_grace_ms > 600_000 {
            return Err(invalid(
                "rpc.shutdown_grace_ms",
                "must be at most 600000 (ten minutes)",
            ));
        }
        if self.rpc.ready_max_block_age_s == 0 || self.rpc.ready_max_block_age_s > 86_400 {
            return Err(invalid(
                "rpc.ready_max_block_age_s",
                "must be between 1 and 86400 (seconds)",
            ));
        }
        if self.store.map_mib < 64 || self.store.map_mib > 1 << 24 {
            return Err(invalid(
                "store.map_mib",
                "must be between 64 and 16777216 (MiB)",
            ));
        }
        if self.store.client_map_mib < 16 || self.store.client_map_mib > 1 << 24 {
            return Err(invalid(
                "store.client_map_mib",
                "must be between 16 and 16777216 (MiB)",
            ));
        }
        if self.store.max_token_commitments == 0 {
            return Err(invalid("store.max_token_commitments", "must be positive"));
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
        #[cfg(feature = "server")]
        for o in &self.consensus.observers {
            if o.parse::<libp2p_identity::PeerId>().is_err() {
                return Err(invalid(
                    "consensus.observers",
                    format!("{o:?} is not a libp2p peer id"),
                ));
            }
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

    /// How long token commitments and reveals are kept: past it every token they speak
    /// about is refused by its verifier (the largest `max_token_age_s` of the verifiers,
    /// plus [`TOKEN_RECORD_MARGIN_S`] for the `iat` skew the verifiers allow and clocks).
    pub fn token_record_lifetime_s(&self) -> u64 {
        self.verifiers
            .iter()
            .map(|v| {
                v.max_token_age_s
                    .unwrap_or(crate::verifier::DEFAULT_MAX_TOKEN_AGE_S)
            })
            .max()
            .unwrap_or(crate::verifier::DEFAULT_MAX_TOKEN_AGE_S)
            .max(crate::verifier::DEFAULT_MAX_TOKEN_AGE_S)
            .saturating_add(TOKEN_RECORD_MARGIN_S)
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
        let p = write(
            d.path(),
            "f.toml",
            &format!("{base}[p2p]\nmax_message_mib = 16\n"),
        );
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("p2p.max_message_mib"), "{e}");
        let p = write(d.path(), "e.toml", base);
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.genesis, d.path().join("g.toml"));
    }

    #[cfg(feature = "server")]
    #[test]
    fn consensus_observers_must_be_peer_ids() {
        let d = tempfile::tempdir().unwrap();
        let base = "data_dir = \"/tmp/x\"\ngenesis = \"g.toml\"\n[consensus]\n";
        let p = write(
            d.path(),
            "o.toml",
            &format!("{base}observers = [\"nope\"]\n"),
        );
        let e = NodeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("consensus.observers"), "{e}");
        let id = libp2p_identity::Keypair::generate_secp256k1()
            .public()
            .to_peer_id();
        let p = write(
            d.path(),
            "p.toml",
            &format!("{base}observers = [\"{id}\"]\n"),
        );
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.consensus.observers, vec![id.to_string()]);
    }

    #[test]
    fn rate_limits_signers_proxies_and_store_sizes_are_validated() {
        let d = tempfile::tempdir().unwrap();
        let base = "data_dir = \"/tmp/x\"\ngenesis = \"g.toml\"\n";
        for (body, field) in [
            ("[rpc]\ncommitment_per_s = 0\n", "rpc.commitment_per_s"),
            ("[rpc]\nkey_assign_burst = 0\n", "rpc.key_assign_burst"),
            ("[rpc]\nrate_limit_clients = 0\n", "rpc.rate_limit_clients"),
            (
                "[rpc]\nshutdown_grace_ms = 600001\n",
                "rpc.shutdown_grace_ms",
            ),
            (
                "[rpc]\nready_max_block_age_s = 0\n",
                "rpc.ready_max_block_age_s",
            ),
            (
                "[rpc]\ntrusted_proxies = [\"proxy\"]\n",
                "rpc.trusted_proxies",
            ),
            (
                "[rpc]\nkey_assign_signers = [\"02ab\"]\n",
                "rpc.key_assign_signers",
            ),
            ("[store]\nclient_map_mib = 1\n", "store.client_map_mib"),
            ("[store]\nmap_mib = 1\n", "store.map_mib"),
            (
                "[store]\nmax_token_commitments = 0\n",
                "store.max_token_commitments",
            ),
        ] {
            let p = write(d.path(), "r.toml", &format!("{base}{body}"));
            let e = NodeConfig::load(&p).unwrap_err().to_string();
            assert!(e.contains(field), "{body}: {e}");
        }
        let p = write(
            d.path(),
            "ok.toml",
            &format!("{base}[rpc]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n"),
        );
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.rpc.trusted_proxy_addrs().unwrap().len(), 2);
        // Token records outlive the longest token age of the verifiers.
        assert_eq!(c.token_record_lifetime_s(), 600 + TOKEN_RECORD_MARGIN_S);
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
