//! Starts a whole node from its configuration: the node state (LMDB, verifiers,
//! engine), the node-to-node network, the mempool, the consensus engine
//! (embedded malachite, or CometBFT over ABCI), key generation, and the client
//! JSON-RPC and operator gRPC servers. `torus-node run` is a thin wrapper.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::bft::{self, BftConfig, BftHandle, EngineState};
use crate::config::{listen_from, NodeConfig};
use crate::keygen::{self, KeygenHandle};
use crate::mempool::{Limits, Mempool, MempoolSubmitter, Refused};
use crate::node::{NodeState, Submitter};
use crate::p2p::{self, Inbound, Message, P2pClient, P2pConfig, PeerInfo};

/// Start-up failures, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The node state (config, key, genesis, LMDB, verifiers).
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {err}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        err: std::io::Error,
    },
    /// The node-to-node network.
    #[error(transparent)]
    P2p(#[from] p2p::P2pError),
    /// The consensus engine.
    #[error("consensus engine: {0}")]
    Bft(String),
    /// Key generation.
    #[error("key generation: {0}")]
    Keygen(#[source] keygen::KeygenError),
    /// Configuration that only shows up when wiring things together.
    #[error("config: {0}")]
    Config(String),
}

/// For a halt caused by the store: how much room is left where it writes. A full
/// disk shows up from LMDB as a short write, which it reports as an I/O error
/// ("Input/output error"), not as "no space left".
fn storage_hint(reason: &str, data_dir: &std::path::Path) -> String {
    if !reason.contains("lmdb") {
        return String::new();
    }
    let dir = data_dir.join("lmdb");
    match nix::sys::statvfs::statvfs(&dir) {
        Ok(s) => format!(
            " (the filesystem holding {} has {} bytes free)",
            dir.display(),
            s.blocks_available().saturating_mul(s.fragment_size())
        ),
        Err(_) => String::new(),
    }
}

/// A running node.
pub struct RunningNode {
    /// Its state.
    pub node: Arc<NodeState>,
    /// Its network client (None when the node is not in the committee).
    pub p2p: Option<P2pClient>,
    bft: Option<BftHandle>,
    keygen: Option<KeygenHandle>,
    tasks: JoinSet<Result<(), String>>,
    rpc_stop: RpcStop,
}

/// Stops the client RPC server gracefully: `stop` asks it to, `done` is set (or its sender
/// dropped) once it returned.
struct RpcStop {
    stop: tokio::sync::watch::Sender<bool>,
    done: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
}

impl RpcStop {
    /// Refuses new client connections and waits (a grace period and a second at most)
    /// for the requests in flight to finish.
    async fn drain(&mut self) {
        let _ = self.stop.send(true);
        let wait = self.done.wait_for(|d| *d);
        if tokio::time::timeout(self.grace + Duration::from_secs(1), wait)
            .await
            .is_err()
        {
            tracing::warn!("the JSON-RPC server did not stop within its grace period");
        }
    }
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Sends transactions to CometBFT's RPC (`broadcast_tx_sync`).
struct CometSubmitter {
    url: String,
    http: reqwest::Client,
}

impl Submitter for CometSubmitter {
    fn submit(&self, tx: Vec<u8>) -> Result<(), String> {
        let url = format!("{}/broadcast_tx_sync?tx=0x{}", self.url, hex::encode(&tx));
        let http = self.http.clone();
        tokio::spawn(async move {
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = %r.status(), "CometBFT refused a transaction"),
                Err(e) => tracing::warn!(error = %e, "CometBFT unreachable"),
            }
        });
        Ok(())
    }
}

fn addr_of(
    overrides: &std::collections::BTreeMap<String, String>,
    index: u32,
    genesis: &str,
) -> String {
    overrides
        .get(&index.to_string())
        .cloned()
        .unwrap_or_else(|| genesis.to_string())
}

fn announce(node: &NodeState, me: Option<u32>) {
    tracing::info!(
        address = %node.key().public().address(),
        index = ?me,
        data_dir = %node.config().data_dir.display(),
        verifiers = ?node.verifiers().names(),
        hw_profile = %node.profile().name,
        engine = node.engine().backend_name(),
        "node started"
    );
}

/// Starts everything `cfg` asks for and returns once it serves. With
/// `[node_list]`, the genesis committee comes from the NodeList contract: the
/// node first lists itself there if `announce_*` is configured (waiting to be
/// whitelisted), then waits until the epoch is full.
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, RunError> {
    let key =
        crate::config::load_or_create_key(&cfg.key_path()).map_err(crate::node::NodeError::from)?;
    let genesis = load_genesis(&cfg, &key).await?;
    let node = NodeState::open_with(cfg, key, genesis)?;
    start_with(node).await
}

#[cfg(feature = "eth")]
async fn load_genesis(
    cfg: &NodeConfig,
    key: &crate::crypto::NodeKey,
) -> Result<crate::config::Genesis, RunError> {
    let Some(nl) = &cfg.node_list else {
        return crate::config::Genesis::load(&cfg.genesis).map_err(|e| RunError::Node(e.into()));
    };
    let chain = |e: crate::chain::ChainError| RunError::Config(format!("node list: {e}"));
    if let Some((rpc, consensus, p2p)) = nl.announce() {
        let client = crate::chain::NodeListClient::new(&nl.eth_rpc, &nl.contract)
            .map_err(chain)?
            .with_poll_interval(nl.poll_interval());
        let me = crate::chain::node_address(&key.public());
        let t0 = std::time::Instant::now();
        while !client.is_whitelisted(nl.epoch, me).await.map_err(chain)? {
            if t0.elapsed() >= nl.wait_timeout() {
                return Err(RunError::Config(format!(
                    "node list: {me:#x} is not whitelisted for epoch {} after {} s",
                    nl.epoch,
                    nl.wait_timeout().as_secs()
                )));
            }
            tracing::info!(epoch = nl.epoch, address = %format!("{me:#x}"), "waiting to be whitelisted");
            tokio::time::sleep(nl.poll_interval()).await;
        }
        let position = client
            .ensure_listed(key, nl.epoch, rpc, consensus, p2p)
            .await
            .map_err(chain)?;
        tracing::info!(
            epoch = nl.epoch,
            position,
            "listed in the NodeList contract"
        );
    }
    tracing::info!(epoch = nl.epoch, contract = %nl.contract, "waiting for the epoch's committee to fill");
    crate::chain::load_genesis(cfg).await.map_err(chain)
}

#[cfg(not(feature = "eth"))]
async fn load_genesis(
    cfg: &NodeConfig,
    _key: &crate::crypto::NodeKey,
) -> Result<crate::config::Genesis, RunError> {
    crate::config::Genesis::load(&cfg.genesis).map_err(|e| RunError::Node(e.into()))
}

/// Binds a TCP listener, naming the address in the error.
async fn bind(addr: &str) -> Result<tokio::net::TcpListener, RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| RunError::Listen {
            addr: addr.to_string(),
            err,
        })
}

/// As [`start`], for an already opened node state.
pub async fn start_with(node: Arc<NodeState>) -> Result<RunningNode, RunError> {
    let cfg = node.config().clone();
    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    // The committees this node connects to: the current one and, during a
    // hand-over, the next (committed, or named by the next-genesis file before
    // the hand-over is decided: a fresh member joins before it is a member).
    let next_file =
        crate::config::peers::later_genesis(&cfg.data_dir.join(crate::keygen::NEXT_GENESIS));
    let current = node.epoch()?.epoch;
    let next_committee = match node.next_epoch()? {
        Some(e) => Some(e),
        None => next_file
            .as_ref()
            .map(|(_, e)| e.clone())
            .filter(|e| Some(e.epoch) == current.checked_add(1)),
    };
    let own_key = node.key().public().compressed();
    let me = node
        .index()
        .ok()
        .or_else(|| next_committee.as_ref().and_then(|e| e.index_of(&own_key)));
    // Started from the NodeList contract: it also says when to hand over to the next epoch.
    #[cfg(feature = "eth")]
    if let Some(nl) = cfg.node_list.clone() {
        tokio::spawn(crate::chain::watch_next_epoch(node.clone(), nl));
    }
    let rpc = bind(&cfg.rpc.listen).await?;
    tracing::info!(listen = %cfg.rpc.listen, "client JSON-RPC listening");
    let rpc_stop = {
        let node = node.clone();
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        tasks.spawn(async move {
            let stop = async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            };
            let r = crate::rpc::serve_until(node, rpc, stop)
                .await
                .map_err(|e| format!("JSON-RPC server: {e}"));
            let _ = done_tx.send(true);
            r
        });
        RpcStop {
            stop: stop_tx,
            done: done_rx,
            grace: Duration::from_millis(cfg.rpc.shutdown_grace_ms),
        }
    };
    if !cfg.grpc.listen.is_empty() {
        let l = bind(&cfg.grpc.listen).await?;
        tracing::info!(listen = %cfg.grpc.listen, "operator gRPC listening");
        let node = node.clone();
        tasks.spawn(async move {
            crate::grpc::serve(node, l)
                .await
                .map_err(|e| format!("gRPC server: {e}"))
        });
    }
    let Some(me) = me else {
        tracing::warn!("this node's key is not in the committee: serving the client API only");
        announce(&node, None);
        return Ok(RunningNode {
            node,
            p2p: None,
            bft: None,
            keygen: None,
            tasks,
            rpc_stop,
        });
    };
    let genesis = node.genesis().clone();
    let epoch = node.epoch()?;
    let mut books = vec![&genesis];
    if let Some((g, _)) = &next_file {
        books.push(g);
    }
    let (members, clashing) =
        crate::config::peers::committee_members(&epoch, next_committee.as_ref(), &books);
    if !clashing.is_empty() {
        tracing::warn!(
            indexes = ?clashing,
            "next committee members at indexes current members hold: not reachable (moved or \
             replaced members are not supported yet)"
        );
    }
    let own = members
        .iter()
        .find(|m| m.pubkey == own_key)
        .cloned()
        .ok_or_else(|| RunError::Config(format!("node {me} missing from the genesis")))?;
    if own.joining {
        tracing::info!(
            index = me,
            epoch = next_committee.as_ref().map(|e| e.epoch),
            "joining the next committee: following the chain until the hand-over"
        );
    }
    if own.p2p.is_empty() && cfg.p2p.listen.is_empty() {
        tracing::warn!(
            "no p2p address for this node (genesis `p2p` or [p2p] listen): running without the \
             network layer, consensus and key generation (client API only)"
        );
        announce(&node, Some(me));
        return Ok(RunningNode {
            node,
            p2p: None,
            bft: None,
            keygen: None,
            tasks,
            rpc_stop,
        });
    }
    // Node-to-node network.
    let peers: Vec<PeerInfo> = members
        .iter()
        .map(|m| PeerInfo {
            index: m.index,
            pubkey: m.pubkey,
            addr: addr_of(&cfg.p2p.peer_addrs, m.index, &m.p2p),
        })
        .collect();
    let listen = if cfg.p2p.listen.is_empty() {
        listen_from(&own.p2p)
    } else {
        cfg.p2p.listen.clone()
    };
    if listen.is_empty() {
        return Err(RunError::Config(
            "no p2p address: set [p2p] listen or the genesis p2p address".into(),
        ));
    }
    let mut pcfg = P2pConfig::new(listen, peers);
    if cfg.p2p.max_message_mib > 0 {
        pcfg.max_message_bytes = cfg.p2p.max_message_mib << 20;
    }
    let (client, mut inbound) = p2p::start(node.key(), me, pcfg, node.metrics().clone()).await?;
    // Mempool with gossip, and the router of inbound messages. Its largest
    // transaction follows the block size; each committee member is one origin.
    let max_block_bytes = BftConfig::default().max_block_bytes;
    let mempool = Mempool::for_node(&node, Limits::for_block(max_block_bytes, members.len()));
    {
        let c = client.clone();
        mempool.set_gossip(Arc::new(move |tx: Vec<u8>| c.broadcast(&Message::Tx(tx))));
    }
    let (kg_tx, kg_rx) = tokio::sync::mpsc::channel::<Inbound>(4096);
    {
        let mempool = mempool.clone();
        tasks.spawn(async move {
            while let Some(m) = inbound.recv().await {
                match m.msg {
                    Message::Tx(tx) => {
                        // Authenticated, bounded and counted per peer by the pool.
                        if let Err(e) = mempool.insert_from_peer(m.from, tx) {
                            if e != Refused::Duplicate {
                                tracing::debug!(
                                    peer = m.from,
                                    reason = e.reason(),
                                    "refused a gossiped transaction"
                                );
                            }
                        }
                    }
                    _ => {
                        if kg_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                }
            }
            Ok(())
        });
    }
    // Consensus.
    let bft = if cfg.abci.listen.is_empty() {
        let c = &cfg.consensus;
        let listen = if c.listen.is_empty() {
            listen_from(&own.consensus)
        } else {
            c.listen.clone()
        };
        // Each peer's address with its peer id: a dial reaching another key fails.
        // The next committee's fresh members may connect before it is decided.
        let mut peers: Vec<String> = Vec::new();
        let mut observers = c.observers.clone();
        for m in members.iter().filter(|m| m.index != me) {
            let pk = crate::crypto::NodePub::from_sec1(&m.pubkey)
                .map_err(|_| RunError::Config(format!("node {}: bad public key", m.index)))?;
            let id = bft::peer_id(&pk).map_err(|e| RunError::Config(e.to_string()))?;
            if m.joining {
                observers.push(id.to_string());
            }
            let addr = addr_of(&c.peer_addrs, m.index, &m.consensus);
            if !addr.is_empty() {
                peers.push(format!("{addr}/p2p/{id}"));
            }
        }
        // A fresh member starts consensus only once the current committee lets it
        // in: its members admit it on both networks at once when they read the
        // next committee, and a consensus dial denied before that is not retried
        // soon. So it waits (up to 30 s) for the node-to-node network to reach
        // every current member.
        if own.joining {
            let current: Vec<u32> = members
                .iter()
                .filter(|m| !m.joining)
                .map(|m| m.index)
                .collect();
            let t0 = std::time::Instant::now();
            loop {
                let connected = client.connected().await;
                if current.iter().all(|i| connected.contains(i)) {
                    break;
                }
                if t0.elapsed() >= Duration::from_secs(30) {
                    tracing::warn!(
                        connected = ?connected,
                        "starting consensus before every current member let this node in"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Start height 1 once the node-to-node network reached every peer (both
        // networks dial at the same moment), or after 3 s whatever happened.
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
        {
            let client = client.clone();
            let others = members.len().saturating_sub(1);
            tokio::spawn(async move {
                let t0 = std::time::Instant::now();
                loop {
                    let up = client.connected().await.len();
                    if up >= others {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        break;
                    }
                    if t0.elapsed() >= Duration::from_secs(3) {
                        tracing::info!(
                            up,
                            of = others,
                            "starting consensus before every peer connected"
                        );
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                let _ = gate_tx.send(true);
            });
        }
        let bcfg = BftConfig {
            start_gate: Some(gate_rx),
            listen,
            peers,
            home: cfg.data_dir.join("bft"),
            timeout_propose: Duration::from_millis(c.timeout_propose_ms),
            timeout_prevote: Duration::from_millis(c.timeout_prevote_ms),
            timeout_precommit: Duration::from_millis(c.timeout_precommit_ms),
            idle_block: Duration::from_millis(c.idle_block_ms),
            stall_restart: Duration::from_secs(c.stall_restart_s),
            observers,
            max_block_bytes,
            ..BftConfig::default()
        };
        node.set_submitter(Arc::new(MempoolSubmitter(mempool.clone())));
        Some(
            bft::start(node.clone(), mempool.clone(), bcfg)
                .await
                .map_err(|e| RunError::Bft(e.to_string()))?,
        )
    } else {
        let app = crate::abci::AbciApp::new(node.clone());
        let addr = cfg.abci.listen.clone();
        node.set_submitter(Arc::new(CometSubmitter {
            url: cfg.abci.cometbft_rpc.clone(),
            http: reqwest::Client::new(),
        }));
        std::thread::spawn(move || {
            if let Err(e) = crate::abci::serve_blocking(app, &addr) {
                tracing::error!(error = %e, "ABCI server stopped");
            }
        });
        tracing::info!(listen = %cfg.abci.listen, "consensus app served over ABCI (CometBFT)");
        None
    };
    let kg = keygen::start(node.clone(), client.clone(), kg_rx, cfg.keygen.clone())
        .map_err(RunError::Keygen)?;
    announce(&node, Some(me));
    Ok(RunningNode {
        node,
        p2p: Some(client),
        bft,
        keygen: Some(kg),
        tasks,
        rpc_stop,
    })
}

impl RunningNode {
    /// Runs until a server fails, key generation stops, Ctrl-C or SIGTERM.
    pub async fn wait(mut self) -> Result<(), String> {
        let mut check = tokio::time::interval(Duration::from_secs(1));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot listen for SIGTERM: {e}"))?;
        let mut watch_bft = true;
        loop {
            tokio::select! {
                r = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match r {
                        Some(Ok(Err(e))) => return Err(e),
                        Some(Err(e)) => return Err(format!("task failed: {e}")),
                        _ => {}
                    }
                }
                state = async {
                    match &self.bft {
                        Some(b) if watch_bft => b.wait().await,
                        _ => std::future::pending().await,
                    }
                } => {
                    if let EngineState::Halted(reason) = state {
                        // A node whose consensus stopped must not go on serving a
                        // state that no longer moves (and retrying writes that fail):
                        // it stops, and says why.
                        let hint = storage_hint(&reason, &self.node.config().data_dir);
                        tracing::error!(%reason, "consensus halted: stopping the node");
                        self.shutdown().await;
                        let reason = reason.strip_prefix("consensus halted: ").unwrap_or(&reason);
                        return Err(format!("consensus halted: {reason}{hint}"));
                    }
                    watch_bft = false;
                }
                _ = check.tick() => {
                    if self.keygen.as_ref().is_some_and(KeygenHandle::is_finished) {
                        return Err("key generation stopped".into());
                    }
                }
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("interrupted: shutting down");
                    self.shutdown().await;
                    return Ok(());
                }
                _ = term.recv() => {
                    tracing::info!("terminated: shutting down");
                    self.shutdown().await;
                    return Ok(());
                }
            }
        }
    }

    /// Stops the client RPC server gracefully (new connections refused, requests in flight
    /// given `rpc.shutdown_grace_ms` to finish, consensus still running for them), then the
    /// consensus engine and the other servers.
    pub async fn shutdown(&mut self) {
        self.rpc_stop.drain().await;
        if let Some(b) = self.bft.take() {
            b.shutdown().await;
        }
        self.tasks.abort_all();
    }
}
