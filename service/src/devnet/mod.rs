//! `torus-node devnet`: a local multi-node network on loopback, as real node
//! processes (`torus-node run`), with a development OIDC issuer serving its
//! JWKS over HTTP as verifier `devnet`.
//!
//! Layout of the data directory:
//! * `genesis.toml`, the committee (keys, p2p/consensus/RPC addresses);
//! * `node<i>/node.toml`, `node<i>/node.key`, `node<i>/node.log`, `node<i>/lmdb`,
//!   `node<i>/bft` per node;
//! * `devnet-layout.toml` (ports, thresholds), `dev-issuer.key` (the issuer's
//!   ES256 seed, 0600) and `dev-signer.key` (the KeyAssign signer's secp256k1 key,
//!   0600, trusted by every node: KeyAssign authentication is on), so a second start
//!   with the same directory brings the same network back;
//! * `metadata.json`, the metadata host's store ([`hosts`]: metadata, KeyAssign signer
//!   and allow check for torus.js apps, and the login page, on the layout's `hosts_port`);
//! * `devnet.json`, written once the network serves and the initial key
//!   buffer is full: the client-side description (`torus-node login` reads it),
//!   rewritten for the new committee by `torus-node devnet next-epoch`
//!   ([`next_epoch`]), which hands the nodes `node<i>/next-genesis.toml`.
//!
//! The same code runs the devnet command, `torus-bench devnet` and the
//! multi-process tests (which use [`DevnetOptions::tweak`] to inject faults
//! or relay addresses).

pub mod hosts;
pub mod link;
mod manifest;
pub mod netns;
pub mod next_epoch;
mod process;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use manifest::{login, node_key, read_verifiers};

use crate::config::{
    AbciConfig, ConsensusSection, Genesis, GenesisNode, GrpcConfig, NodeConfig, P2pSection,
    RpcConfig,
};
use crate::crypto::NodeKey;
use crate::keygen::config::refill_low_watermark;
use crate::keygen::KeygenConfig;
use crate::verifier::{
    DevIssuer, DevIssuerOptions, DevKey, VerifierConfig, VerifierKind, DEV_AUDIENCE, DEV_VERIFIER,
};

/// The nodes' default log filter: our own info logs, malachite's warnings (its
/// info level logs every vote).
pub const DEFAULT_LOG_FILTER: &str = "info,informalsystems_malachitebft_core_consensus=warn,\
informalsystems_malachitebft_engine=warn,informalsystems_malachitebft_network=warn,\
informalsystems_malachitebft_sync=warn,informalsystems_malachitebft_discovery=warn";

/// Devnet failures.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// I/O on the data directory or a process.
    #[error("{what}: {err}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        err: std::io::Error,
    },
    /// A bad option or an existing directory that does not fit.
    #[error("{0}")]
    Invalid(String),
    /// A node process exited.
    #[error("node {index} exited ({status}); see {log}")]
    NodeExited {
        /// Node index.
        index: u32,
        /// Exit status.
        status: String,
        /// Its log file.
        log: String,
    },
    /// Waiting for the network ran out of time.
    #[error("timed out after {secs} s: {what}")]
    Timeout {
        /// Seconds waited.
        secs: u64,
        /// What did not happen.
        what: String,
    },
    /// The login flow failed.
    #[error("login: {0}")]
    Login(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevnetError {
    let what = what.into();
    move |err| DevnetError::Io { what, err }
}

/// Adjusts node `i`'s configuration before it is written (tests).
pub type NodeTweak = Arc<dyn Fn(u32, &mut NodeConfig) + Send + Sync>;

/// What to start.
#[derive(Clone)]
pub struct DevnetOptions {
    /// Committee size.
    pub nodes: u32,
    /// Threshold (default `floor(n/2)+1`, what the legacy client expects).
    pub k: Option<u32>,
    /// Tolerated faults (default `(n-1)/4`, at least 0).
    pub t: Option<u32>,
    /// Keys in the initial buffer (the high watermark; the low one is
    /// [`refill_low_watermark`] of it and the batch size).
    pub keys: u64,
    /// Keys per batch (default: the profile's, at most `keys`).
    pub batch_keys: Option<u32>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The `torus-node` binary the nodes run.
    pub node_binary: PathBuf,
    /// Verifiers besides `devnet` (the `--verifiers` file).
    pub extra_verifiers: Vec<VerifierConfig>,
    /// Hardware profile for every node.
    pub hw_profile: Option<PathBuf>,
    /// `TORUS_LOG` of the nodes.
    pub log_filter: String,
    /// Per-node configuration changes (tests).
    pub tweak: Option<NodeTweak>,
    /// Where the processes run: `None`, every node on loopback; otherwise one host
    /// (network namespace) per node ([`netns`]).
    pub placement: Option<Placement>,
}

/// One host per node: where each node listens and how its process is started there,
/// and the address the devnet's own services (issuer, hosts) listen on for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The devnet process's address, as the nodes reach it.
    pub driver: Ipv4Addr,
    /// Per node, in index order.
    pub nodes: Vec<NodeHost>,
}

/// A node's host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHost {
    /// Its address (every listener of the node binds it).
    pub ip: Ipv4Addr,
    /// The command that runs a program there, put before the node's own command line
    /// (`ip netns exec NAME`).
    pub launcher: Vec<String>,
}

impl std::fmt::Debug for DevnetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetOptions")
            .field("nodes", &self.nodes)
            .field("keys", &self.keys)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl DevnetOptions {
    /// Defaults for `nodes` nodes and `keys` keys under `data_dir`.
    pub fn new(
        nodes: u32,
        keys: u64,
        data_dir: impl Into<PathBuf>,
        node_binary: impl Into<PathBuf>,
    ) -> Self {
        DevnetOptions {
            nodes,
            k: None,
            t: None,
            keys,
            batch_keys: None,
            data_dir: data_dir.into(),
            node_binary: node_binary.into(),
            extra_verifiers: Vec::new(),
            hw_profile: None,
            log_filter: DEFAULT_LOG_FILTER.into(),
            tweak: None,
            placement: None,
        }
    }
}

/// Ports of one node.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct NodePorts {
    /// Node index.
    pub index: u32,
    /// Client JSON-RPC.
    pub rpc: u16,
    /// Operator gRPC.
    pub grpc: u16,
    /// Node-to-node network.
    pub p2p: u16,
    /// Consensus network.
    pub consensus: u16,
}

/// The persisted shape of a devnet directory.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Layout {
    /// Chain id.
    pub chain_id: String,
    /// Committee size.
    pub n: u32,
    /// Threshold.
    pub k: u32,
    /// Tolerated faults.
    pub t: u32,
    /// Port of the development issuer.
    pub issuer_port: u16,
    /// Port of the torus.js hosts (metadata, signer, allow; [`hosts`]); 0 in layouts
    /// written before they existed, which get one at their next start.
    #[serde(default)]
    pub hosts_port: u16,
    /// Node ports.
    pub nodes: Vec<NodePorts>,
}

/// The file `devnet next-epoch` asks the running devnet for fresh nodes with.
pub const FRESH_REQUEST: &str = "fresh-nodes-request.json";
/// The running devnet's answer: the fresh nodes' genesis entries.
pub const FRESH_NODES: &str = "fresh-nodes.json";

/// Lowest port the devnet hands out.
const DEVNET_PORTS_FROM: u16 = 10_000;

/// Ports this process has handed out, so that two devnets in one process (tests run
/// in parallel) never get the same one.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The first port of the kernel's ephemeral range (`ip_local_port_range`; Linux's
/// default 32768 where it cannot be read).
fn ephemeral_ports_from() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A free loopback port for a node to listen on later, chosen below the ephemeral
/// range: a port reserved there by binding port 0 and releasing it can be taken by
/// any outgoing connection (the nodes dial each other while the next one starts), so
/// the node that was given it fails with "address already in use" (seen in CI). Falls
/// back to an ephemeral port when the range leaves no room below it.
fn free_port() -> Result<u16, DevnetError> {
    use std::hash::{BuildHasher, Hasher};
    let top = ephemeral_ports_from();
    if top > DEVNET_PORTS_FROM + 1_000 {
        let span = u64::from(top - DEVNET_PORTS_FROM);
        // A random start per call, so devnets in different processes rarely collide.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(u64::from(std::process::id()));
        let start = h.finish() % span;
        let mut taken = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        for i in 0..span.min(4_096) {
            let port = DEVNET_PORTS_FROM + ((start + i) % span) as u16;
            if taken.contains(&port) {
                continue;
            }
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                taken.insert(port);
                return Ok(port);
            }
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("reserve a port"))?;
    Ok(l.local_addr().map_err(io("reserve a port"))?.port())
}

fn write_private(path: &Path, text: &str) -> Result<(), DevnetError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(io(format!("write {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(io(format!("write {}", path.display())))
}

/// The multiaddr of a loopback TCP port.
pub fn loopback_multiaddr(port: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{port}")
}

/// Node `i`'s address under `placement` (loopback without one).
fn node_ip(placement: Option<&Placement>, i: u32) -> Ipv4Addr {
    placement
        .and_then(|p| p.nodes.get((i as usize).wrapping_sub(1)))
        .map_or(Ipv4Addr::LOCALHOST, |h| h.ip)
}

/// A node's status as `GET /bftStatus` reports it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// Committed height.
    pub height: u64,
    /// App hash (hex).
    pub app_hash: String,
    /// Keys with decided public keys.
    pub keys_created: u64,
    /// Keys assigned.
    pub keys_assigned: u64,
}

struct Proc {
    child: Option<Child>,
}

/// A running devnet.
pub struct Devnet {
    /// Options it was started with.
    pub opts: DevnetOptions,
    /// Its layout.
    pub layout: Layout,
    /// The genesis.
    pub genesis: Genesis,
    issuer: DevIssuer,
    issuer_seed: [u8; 32],
    signer: Arc<NodeKey>,
    hosts: hosts::Hosts,
    /// Keys per batch the nodes will use (the option or the profile's).
    batch_keys: u32,
    procs: Vec<Proc>,
    /// Fresh nodes (beyond the first committee) started once.
    fresh_started: std::collections::BTreeSet<u32>,
    http: reqwest::Client,
    /// The JSON-RPC URLs clients use, when they differ from the nodes' own (links that
    /// delay client traffic; [`Devnet::route_clients_through`]).
    client_urls: Vec<String>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// The devnet's per-client-address rate limits (requests per second and burst, every
/// method): high enough for the load benches, which send everything from 127.0.0.1.
pub const DEVNET_RATE: u32 = 100_000;

impl Devnet {
    /// Prepares the directory (or reuses the network already in it) and starts
    /// the issuer and every node process.
    pub async fn start(opts: DevnetOptions) -> Result<Devnet, DevnetError> {
        let mut d = Self::prepare(opts).await?;
        for i in 1..=d.layout.n {
            d.start_node(i)?;
        }
        Ok(d)
    }

    /// Writes (or reads back) the layout, keys and configs and starts the
    /// issuer, without starting nodes.
    pub async fn prepare(opts: DevnetOptions) -> Result<Devnet, DevnetError> {
        let n = opts.nodes;
        let k = opts.k.unwrap_or(n / 2 + 1);
        let t = opts.t.unwrap_or(n.saturating_sub(1) / 4);
        torus_engine::Params::new(n, k, t).map_err(|e| DevnetError::Invalid(e.to_string()))?;
        if opts.keys == 0 {
            return Err(DevnetError::Invalid("--keys must be at least 1".into()));
        }
        if let Some(p) = &opts.placement {
            if p.nodes.len() != n as usize {
                return Err(DevnetError::Invalid(format!(
                    "the placement has {} hosts for {n} nodes",
                    p.nodes.len()
                )));
            }
        }
        let driver_ip = IpAddr::V4(
            opts.placement
                .as_ref()
                .map_or(Ipv4Addr::LOCALHOST, |p| p.driver),
        );
        // The batch size the nodes resolve, for the refill watermark.
        let batch_keys = match (opts.batch_keys, &opts.hw_profile) {
            (Some(b), _) => b,
            (None, Some(path)) => torus_engine::profile::HwProfile::load(path)
                .map_err(|e| DevnetError::Invalid(format!("{}: {e}", path.display())))?
                .batch_keys
                .try_into()
                .unwrap_or(u32::MAX),
            (None, None) => torus_engine::profile::HwProfile::default()
                .batch_keys
                .try_into()
                .unwrap_or(u32::MAX),
        };
        let mut opts = opts;
        std::fs::create_dir_all(&opts.data_dir)
            .map_err(io(format!("create {}", opts.data_dir.display())))?;
        // Absolute, so the node processes find everything whatever their cwd.
        opts.data_dir = std::fs::canonicalize(&opts.data_dir)
            .map_err(io(format!("resolve {}", opts.data_dir.display())))?;
        let dir = &opts.data_dir;
        let layout_path = dir.join("devnet-layout.toml");
        let seed_path = dir.join("dev-issuer.key");
        let (layout, seed) = if layout_path.exists() {
            let text = std::fs::read_to_string(&layout_path).map_err(io("read the layout"))?;
            let layout: Layout = toml::from_str(&text)
                .map_err(|e| DevnetError::Invalid(format!("{}: {e}", layout_path.display())))?;
            if layout.n != n || layout.k != k || layout.t != t {
                return Err(DevnetError::Invalid(format!(
                    "{} holds a devnet with n={}, k={}, t={}; use another --data-dir or remove it",
                    dir.display(),
                    layout.n,
                    layout.k,
                    layout.t
                )));
            }
            let s = std::fs::read_to_string(&seed_path).map_err(io("read dev-issuer.key"))?;
            let seed = crate::hexfmt::parse_hex32(s.trim()).ok_or_else(|| {
                DevnetError::Invalid("dev-issuer.key is not 64 hex digits".into())
            })?;
            (layout, seed)
        } else {
            let mut nodes = Vec::new();
            for index in 1..=n {
                nodes.push(NodePorts {
                    index,
                    rpc: free_port()?,
                    grpc: free_port()?,
                    p2p: free_port()?,
                    consensus: free_port()?,
                });
            }
            let layout = Layout {
                chain_id: format!(
                    "torus-devnet-{}",
                    hex::encode(rand_core::RngCore::next_u32(&mut rand_core::OsRng).to_be_bytes())
                ),
                n,
                k,
                t,
                issuer_port: free_port()?,
                hosts_port: free_port()?,
                nodes,
            };
            let mut seed = [0u8; 32];
            // A valid P-256 scalar: retry the (astronomically unlikely) invalid draw.
            loop {
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
                if DevKey::es256_from_seed(seed).is_ok() {
                    break;
                }
            }
            write_private(&seed_path, &hex::encode(seed))?;
            let text = toml::to_string(&layout)
                .map_err(|e| DevnetError::Invalid(format!("layout: {e}")))?;
            std::fs::write(&layout_path, text).map_err(io("write the layout"))?;
            (layout, seed)
        };
        let mut layout = layout;
        if layout.hosts_port == 0 {
            layout.hosts_port = free_port()?;
            let text = toml::to_string(&layout)
                .map_err(|e| DevnetError::Invalid(format!("layout: {e}")))?;
            std::fs::write(&layout_path, text).map_err(io("write the layout"))?;
        }
        let signer = Arc::new(
            crate::config::load_or_create_key(&dir.join("dev-signer.key"))
                .map_err(|e| DevnetError::Invalid(format!("dev-signer.key: {e}")))?,
        );
        let listener = tokio::net::TcpListener::bind((driver_ip, layout.issuer_port))
            .await
            .map_err(io(format!(
                "bind the issuer on port {}",
                layout.issuer_port
            )))?;
        let issuer = DevIssuer::serve(
            listener,
            DevIssuerOptions {
                es256_seed: Some(seed),
                ..DevIssuerOptions::default()
            },
        )
        .await
        .map_err(|e| DevnetError::Invalid(format!("dev issuer: {e}")))?;
        let mut gnodes = Vec::new();
        let mut keys = Vec::new();
        for p in &layout.nodes {
            let ndir = dir.join(format!("node{}", p.index));
            std::fs::create_dir_all(&ndir).map_err(io(format!("create {}", ndir.display())))?;
            let key = crate::config::load_or_create_key(&ndir.join("node.key"))
                .map_err(|e| DevnetError::Invalid(e.to_string()))?;
            let ip = node_ip(opts.placement.as_ref(), p.index);
            gnodes.push(GenesisNode {
                index: p.index,
                pubkey: hex::encode(key.public().compressed()),
                p2p: format!("/ip4/{ip}/tcp/{}", p.p2p),
                consensus: format!("/ip4/{ip}/tcp/{}", p.consensus),
                rpc: format!("http://{ip}:{}/jrpc", p.rpc),
            });
            keys.push(key);
        }
        let hosts_listener = tokio::net::TcpListener::bind((driver_ip, layout.hosts_port))
            .await
            .map_err(io(format!(
                "bind the torus.js hosts on port {}",
                layout.hosts_port
            )))?;
        let mut verifier_names = vec![DEV_VERIFIER.to_string()];
        verifier_names.extend(opts.extra_verifiers.iter().map(|v| v.name.clone()));
        let hosts = hosts::Hosts::serve(
            hosts_listener,
            hosts::HostsOptions {
                signer: signer.clone(),
                nodes: keys.iter().map(NodeKey::public).collect(),
                verifiers: verifier_names,
                metadata_file: Some(dir.join("metadata.json")),
                mint: Some(manifest::token_minter(seed, issuer.issuer())),
            },
        )
        .await
        .map_err(|e| DevnetError::Invalid(e.to_string()))?;
        let genesis = Genesis {
            chain_id: layout.chain_id.clone(),
            epoch: 1,
            n,
            k,
            t,
            nodes: gnodes,
        };
        let gtext =
            toml::to_string(&genesis).map_err(|e| DevnetError::Invalid(format!("genesis: {e}")))?;
        std::fs::write(dir.join("genesis.toml"), gtext).map_err(io("write the genesis"))?;
        let d = Devnet {
            opts,
            layout,
            genesis,
            issuer,
            issuer_seed: seed,
            signer,
            hosts,
            batch_keys,
            procs: Vec::new(),
            fresh_started: Default::default(),
            client_urls: Vec::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| DevnetError::Invalid(e.to_string()))?,
        };
        for p in &d.layout.nodes {
            d.write_config(p)?;
        }
        let mut d = d;
        d.procs = (0..d.layout.n).map(|_| Proc { child: None }).collect();
        drop(keys);
        Ok(d)
    }

    /// The `devnet` verifier every node trusts.
    pub fn devnet_verifier(&self) -> VerifierConfig {
        VerifierConfig {
            name: DEV_VERIFIER.into(),
            kind: VerifierKind::Oidc,
            issuer: Some(self.issuer.issuer()),
            jwks_url: Some(self.issuer.jwks_url()),
            audience: Some(DEV_AUDIENCE.into()),
            verifier_id_claim: Some("email".into()),
            max_token_age_s: None,
        }
    }

    fn verifiers(&self) -> Vec<VerifierConfig> {
        let mut v = vec![self.devnet_verifier()];
        v.extend(self.opts.extra_verifiers.iter().cloned());
        v
    }

    /// Keys per batch the nodes use (the option, or the hardware profile's).
    pub fn batch_keys(&self) -> u32 {
        self.batch_keys
    }

    /// Each node's operator page (`/dashboard`), by node index.
    pub fn dashboards(&self) -> Vec<(u32, String)> {
        self.layout
            .nodes
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32 + 1, format!("{}/dashboard", self.http_base(p))))
            .collect()
    }

    /// Node `i`'s address (127.0.0.1 unless the devnet has a [`Placement`]).
    pub fn node_ip(&self, i: u32) -> Ipv4Addr {
        node_ip(self.opts.placement.as_ref(), i)
    }

    /// `http://IP:PORT` of a node's RPC listener (its own address, never a relay's).
    pub fn http_base(&self, p: &NodePorts) -> String {
        format!("http://{}:{}", self.node_ip(p.index), p.rpc)
    }

    /// Has clients (endpoints, `devnet.json`, the bench's timed logins) reach node `i`
    /// at `urls[i - 1]` (a JSON-RPC URL) instead of the node's own address: a relay
    /// that delays the client's link.
    pub fn route_clients_through(&mut self, urls: Vec<String>) -> Result<(), DevnetError> {
        if urls.len() != self.layout.n as usize {
            return Err(DevnetError::Invalid(format!(
                "{} client URLs for {} nodes",
                urls.len(),
                self.layout.n
            )));
        }
        self.client_urls = urls;
        Ok(())
    }

    /// The JSON-RPC URL clients use for node `p`.
    fn client_url(&self, p: &NodePorts) -> String {
        self.client_urls
            .get((p.index as usize).wrapping_sub(1))
            .cloned()
            .unwrap_or_else(|| format!("{}/jrpc", self.http_base(p)))
    }

    /// Node `i`'s data directory.
    pub fn node_dir(&self, i: u32) -> PathBuf {
        self.opts.data_dir.join(format!("node{i}"))
    }

    /// Node `i`'s log file.
    pub fn log_path(&self, i: u32) -> PathBuf {
        self.node_dir(i).join("node.log")
    }

    fn ports(&self, i: u32) -> Result<&NodePorts, DevnetError> {
        self.layout
            .nodes
            .iter()
            .find(|p| p.index == i)
            .ok_or_else(|| DevnetError::Invalid(format!("no node {i}")))
    }

    /// Node `i`'s configuration as written (see [`DEVNET_RATE`]).
    pub fn node_config(&self, p: &NodePorts) -> NodeConfig {
        let keys = self.opts.keys;
        let mut cfg = NodeConfig {
            data_dir: self.node_dir(p.index),
            dev_mode: true,
            key_file: PathBuf::from("node.key"),
            genesis: self.opts.data_dir.join("genesis.toml"),
            node_list: None,
            hw_profile: self.opts.hw_profile.clone(),
            // Every devnet client (tests, benches, torus.js) comes from 127.0.0.1 and the
            // benches load it on purpose: the per-address limits are raised here (a real
            // network keeps the defaults). KeyAssign needs the devnet signer's signature
            // (`dev-signer.key`, served by the hosts at /api/sign), as on a real network.
            rpc: RpcConfig {
                listen: format!("{}:{}", self.node_ip(p.index), p.rpc),
                key_assign_signers: vec![hex::encode(self.signer.public().compressed())],
                commitment_per_s: DEVNET_RATE,
                commitment_burst: DEVNET_RATE,
                share_per_s: DEVNET_RATE,
                share_burst: DEVNET_RATE,
                key_assign_per_s: DEVNET_RATE,
                key_assign_burst: DEVNET_RATE,
                ..RpcConfig::default()
            },
            grpc: GrpcConfig {
                listen: format!("{}:{}", self.node_ip(p.index), p.grpc),
            },
            store: Default::default(),
            abci: AbciConfig::default(),
            verifiers: self.verifiers(),
            p2p: P2pSection::default(),
            consensus: ConsensusSection::default(),
            keygen: KeygenConfig {
                batch_keys: self.opts.batch_keys.unwrap_or(0),
                // Refills in whole batches, up to `--keys` (not one batch per login).
                low_watermark: refill_low_watermark(keys, self.batch_keys),
                high_watermark: keys,
                ..KeygenConfig::default()
            },
        };
        if let Some(t) = &self.opts.tweak {
            t(p.index, &mut cfg);
        }
        cfg
    }

    fn write_config(&self, p: &NodePorts) -> Result<(), DevnetError> {
        let cfg = self.node_config(p);
        let text =
            toml::to_string(&cfg).map_err(|e| DevnetError::Invalid(format!("config: {e}")))?;
        let path = self.node_dir(p.index).join("node.toml");
        std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))
    }

    /// Prepares a fresh node for the next committee at the next free index: ports,
    /// a directory with a new key and a config on the devnet's first genesis (it
    /// follows the chain until it is a member). Returns its genesis entry for the
    /// next committee's file; start it with [`Devnet::start_node`] once that file
    /// is in its directory.
    pub fn add_fresh_node(&mut self) -> Result<GenesisNode, DevnetError> {
        let index = self.layout.nodes.iter().map(|p| p.index).max().unwrap_or(0) + 1;
        if self.opts.placement.is_some() {
            return Err(DevnetError::Invalid(
                "fresh nodes on separate hosts are not supported".into(),
            ));
        }
        let p = NodePorts {
            index,
            rpc: free_port()?,
            grpc: free_port()?,
            p2p: free_port()?,
            consensus: free_port()?,
        };
        let ndir = self.node_dir(index);
        std::fs::create_dir_all(&ndir).map_err(io(format!("create {}", ndir.display())))?;
        let key = crate::config::load_or_create_key(&ndir.join("node.key"))
            .map_err(|e| DevnetError::Invalid(e.to_string()))?;
        let ip = self.node_ip(index);
        let entry = GenesisNode {
            index,
            pubkey: hex::encode(key.public().compressed()),
            p2p: format!("/ip4/{ip}/tcp/{}", p.p2p),
            consensus: format!("/ip4/{ip}/tcp/{}", p.consensus),
            rpc: format!("http://{ip}:{}/jrpc", p.rpc),
        };
        self.write_config(&p)?;
        self.layout.nodes.push(p);
        self.procs.push(Proc { child: None });
        self.hosts.add_node(key.public());
        Ok(entry)
    }

    /// Serves `torus-node devnet next-epoch` while the devnet runs (called every
    /// second): a request for fresh nodes ([`FRESH_REQUEST`], `{"count": m}`)
    /// prepares them and answers with their genesis entries ([`FRESH_NODES`]); a
    /// fresh node starts once its directory holds the next committee's file, so
    /// Ctrl-C on the devnet stops it with the others.
    pub fn serve_next_epoch(&mut self) -> Result<(), DevnetError> {
        let request = self.opts.data_dir.join(FRESH_REQUEST);
        if request.exists() {
            let text = std::fs::read_to_string(&request).map_err(io("read the request"))?;
            let _ = std::fs::remove_file(&request);
            let count = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["count"].as_u64())
                .filter(|c| (1..=64).contains(c))
                .ok_or_else(|| {
                    DevnetError::Invalid(format!("{FRESH_REQUEST}: want {{\"count\": 1..=64}}"))
                })?;
            let mut entries = Vec::new();
            for _ in 0..count {
                entries.push(self.add_fresh_node()?);
            }
            let tmp = self.opts.data_dir.join(format!("{FRESH_NODES}.tmp"));
            let text = serde_json::to_string_pretty(&entries)
                .map_err(|e| DevnetError::Invalid(e.to_string()))?;
            std::fs::write(&tmp, text).map_err(io("write the fresh nodes"))?;
            std::fs::rename(&tmp, self.opts.data_dir.join(FRESH_NODES))
                .map_err(io("write the fresh nodes"))?;
            tracing::info!(count, "fresh nodes prepared for the next committee");
        }
        let waiting: Vec<u32> = self
            .layout
            .nodes
            .iter()
            .map(|p| p.index)
            .filter(|i| *i > self.layout.n && !self.fresh_started.contains(i))
            .filter(|i| self.node_dir(*i).join(crate::keygen::NEXT_GENESIS).exists())
            .collect();
        for i in waiting {
            self.fresh_started.insert(i);
            self.start_node(i)?;
            tracing::info!(node = i, "fresh node started");
        }
        Ok(())
    }

    /// Replaces the per-node configuration tweak and rewrites every node's config
    /// (for tests that need the layout's ports first, e.g. to put relays in between).
    pub fn set_tweak(&mut self, tweak: NodeTweak) -> Result<(), DevnetError> {
        self.opts.tweak = Some(tweak);
        for p in &self.layout.nodes {
            self.write_config(p)?;
        }
        Ok(())
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        // Never leave node processes behind (a failing test, a panic).
        for p in &mut self.procs {
            if let Some(mut c) = p.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn devnet_ports_are_distinct_and_below_the_ephemeral_range() {
        let top = ephemeral_ports_from();
        let ports: Vec<u16> = (0..64).map(|_| free_port().unwrap()).collect();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        if top > DEVNET_PORTS_FROM + 1_000 {
            assert!(
                ports.iter().all(|&p| (DEVNET_PORTS_FROM..top).contains(&p)),
                "ports {ports:?} not in {DEVNET_PORTS_FROM}..{top}"
            );
        }
    }
}
