//! An in-process cluster of node services for tests and the RPC benchmark:
//! n nodes, each with its own LMDB directory and HTTP server on 127.0.0.1,
//! keys produced by the engine's batch DKG run in process, and the consensus
//! state machine driven by a [`LocalOrderer`] that applies the same ordered
//! blocks to every node (a mock consensus; the real engines are malachite and
//! CometBFT). A development OIDC issuer serves its JWKS over HTTP as verifier
//! `devnet`; the `test` verifier is enabled too (dev mode).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use torus_engine::avss::{self, Dealing, SendRef, Slice};
use torus_engine::dkg::{self, PublicShares};
use torus_engine::wire::Wire;
use torus_engine::{Engine, Params, Secp256k1};

use super::LocalOrderer;
use crate::client::{Client, Endpoint};
use crate::config::{AbciConfig, Genesis, GenesisNode, GrpcConfig, NodeConfig, RpcConfig};
use crate::crypto::NodeKey;
use crate::hexfmt::keccak256;
use crate::node::{NodeError, NodeState};
use crate::tx::{keys_hash, BatchId, DealerEvidence, ReadySig, TxBody};
use crate::verifier::DevIssuer;
use crate::verifier::{VerifierConfig, VerifierKind};

use crate::verifier::{DEV_AUDIENCE, DEV_VERIFIER};

/// A harness failure.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A node failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(#[from] torus_engine::Error),
    /// I/O.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

struct Member {
    key: [u8; 32],
    dir: PathBuf,
    addr: SocketAddr,
    /// The listener bound when the cluster was created, kept until the node first starts so
    /// that no other socket (another test's cluster in the same process) can take the port.
    reserved: Option<std::net::TcpListener>,
    state: Option<Arc<NodeState>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A running in-process cluster.
pub struct Cluster {
    members: Vec<Member>,
    /// The genesis all nodes share.
    pub genesis: Genesis,
    /// The block orderer.
    pub orderer: Arc<LocalOrderer>,
    orderer_task: tokio::task::JoinHandle<()>,
    /// The development OIDC issuer.
    pub issuer: DevIssuer,
    /// Verifier configuration every node has.
    pub verifiers: Vec<VerifierConfig>,
    engine: Engine,
    tweak: ConfigTweak,
}

/// Adjusts each node's configuration before it starts (tests).
pub type ConfigTweak = Arc<dyn Fn(&mut NodeConfig) + Send + Sync>;

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("n", &self.members.len())
            .finish()
    }
}

fn node_config(dir: &Path, addr: SocketAddr, verifiers: &[VerifierConfig]) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        dev_mode: true,
        key_file: PathBuf::from("node.key"),
        genesis: dir.join("genesis.toml"),
        node_list: None,
        hw_profile: None,
        rpc: RpcConfig {
            listen: addr.to_string(),
            ..RpcConfig::default()
        },
        grpc: GrpcConfig {
            listen: String::new(),
        },
        store: Default::default(),
        abci: AbciConfig::default(),
        verifiers: verifiers.to_vec(),
        p2p: Default::default(),
        consensus: Default::default(),
        keygen: Default::default(),
    }
}

impl Cluster {
    /// Starts `n` nodes with thresholds `k`, `t` under `base`.
    pub async fn start(base: &Path, n: u32, k: u32, t: u32) -> Result<Cluster, ClusterError> {
        Self::start_with(base, n, k, t, Arc::new(|_: &mut NodeConfig| {})).await
    }

    /// As [`Self::start`], with `tweak` applied to every node's configuration.
    pub async fn start_with(
        base: &Path,
        n: u32,
        k: u32,
        t: u32,
        tweak: ConfigTweak,
    ) -> Result<Cluster, ClusterError> {
        Params::new(n, k, t)?;
        let issuer = DevIssuer::start(
            "127.0.0.1:0"
                .parse()
                .map_err(|_| ClusterError::Other("addr".into()))?,
        )
        .await
        .map_err(|e| ClusterError::Other(e.to_string()))?;
        let verifiers = vec![
            VerifierConfig {
                name: DEV_VERIFIER.into(),
                kind: VerifierKind::Oidc,
                issuer: Some(issuer.issuer()),
                jwks_url: Some(issuer.jwks_url()),
                audience: Some(DEV_AUDIENCE.into()),
                verifier_id_claim: Some("email".into()),
                max_token_age_s: None,
            },
            VerifierConfig {
                name: "test".into(),
                kind: VerifierKind::Test,
                issuer: None,
                jwks_url: None,
                audience: None,
                verifier_id_claim: None,
                max_token_age_s: None,
            },
        ];
        let mut members = Vec::new();
        let mut gnodes = Vec::new();
        for i in 1..=n {
            let key = NodeKey::random();
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.set_nonblocking(true)?;
            let addr = l.local_addr()?;
            gnodes.push(GenesisNode {
                index: i,
                pubkey: hex::encode(key.public().compressed()),
                p2p: String::new(),
                consensus: String::new(),
                rpc: format!("http://{addr}/jrpc"),
            });
            members.push(Member {
                key: *key.to_bytes(),
                dir: base.join(format!("node{i}")),
                addr,
                reserved: Some(l),
                state: None,
                server: None,
            });
        }
        let genesis = Genesis {
            chain_id: "torus-test".into(),
            epoch: 1,
            n,
            k,
            t,
            nodes: gnodes,
        };
        let orderer = LocalOrderer::new();
        let orderer_task = tokio::spawn(orderer.clone().run(Duration::from_millis(5)));
        let mut c = Cluster {
            members,
            genesis,
            orderer,
            orderer_task,
            issuer,
            verifiers,
            engine: Engine::new(),
            tweak,
        };
        for i in 1..=n {
            c.start_node(i).await?;
        }
        Ok(c)
    }

    /// Starts (or restarts) node `i` from its data directory.
    pub async fn start_node(&mut self, i: u32) -> Result<(), ClusterError> {
        let verifiers = self.verifiers.clone();
        let genesis = self.genesis.clone();
        let tweak = self.tweak.clone();
        let m = self.member_mut(i)?;
        std::fs::create_dir_all(&m.dir)?;
        let mut cfg = node_config(&m.dir, m.addr, &verifiers);
        tweak(&mut cfg);
        let key = NodeKey::from_bytes(&m.key).map_err(|e| ClusterError::Other(e.to_string()))?;
        let state = NodeState::open_with(cfg, key, genesis)?;
        let listener = match m.reserved.take() {
            Some(l) => tokio::net::TcpListener::from_std(l)?,
            None => tokio::net::TcpListener::bind(m.addr).await?,
        };
        let st = state.clone();
        m.server = Some(tokio::spawn(async move {
            if let Err(e) = crate::rpc::serve(st, listener).await {
                tracing::error!(error = %e, "rpc server");
            }
        }));
        m.state = Some(state.clone());
        self.orderer.attach(i, state)?;
        Ok(())
    }

    /// Stops node `i` (server down, detached from consensus, LMDB closed).
    pub async fn stop_node(&mut self, i: u32) -> Result<(), ClusterError> {
        self.orderer.detach(i);
        let m = self.member_mut(i)?;
        if let Some(h) = m.server.take() {
            h.abort();
            let _ = h.await;
        }
        if let Some(state) = m.state.take() {
            // Wait for in-flight requests to drop their handles, then close LMDB.
            let mut state = state;
            for _ in 0..200 {
                match Arc::try_unwrap(state) {
                    Ok(s) => {
                        s.close();
                        return Ok(());
                    }
                    Err(back) => {
                        state = back;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            return Err(ClusterError::Other(format!("node {i} still referenced")));
        }
        Ok(())
    }

    fn member_mut(&mut self, i: u32) -> Result<&mut Member, ClusterError> {
        self.members
            .get_mut((i as usize).wrapping_sub(1))
            .ok_or_else(|| ClusterError::Other(format!("no node {i}")))
    }

    /// Node `i`'s state, if running.
    pub fn node(&self, i: u32) -> Option<Arc<NodeState>> {
        self.members
            .get((i as usize).wrapping_sub(1))
            .and_then(|m| m.state.clone())
    }

    /// Client endpoints of every node.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, m)| Endpoint {
                index: i as u32 + 1,
                url: format!("http://{}/jrpc", m.addr),
            })
            .collect()
    }

    /// A client for the whole cluster.
    pub fn client(&self) -> Result<Client, ClusterError> {
        Client::new(self.endpoints()).map_err(|e| ClusterError::Other(e.to_string()))
    }

    /// Generates `count` keys starting at the next key index (at least the
    /// committee's minimum batch, [`crate::tx::BatchLimits`]): every node deals a
    /// batch, every node verifies all sends and aggregates its shares (stored in
    /// its LMDB), readies are signed, and the dealer set and the public keys are
    /// decided through consensus transactions. Returns the public keys.
    pub async fn generate_keys(
        &self,
        count: usize,
        run: u64,
    ) -> Result<Vec<[u8; 33]>, ClusterError> {
        let g = &self.genesis;
        let params = Params::new(g.n, g.k, g.t)?;
        let any = self
            .members
            .iter()
            .find_map(|m| m.state.clone())
            .ok_or_else(|| ClusterError::Other("no node running".into()))?;
        let start = {
            let snap = any.store().snapshot().map_err(NodeError::from)?;
            crate::app::counters(&snap)
                .map_err(NodeError::from)?
                .next_batch_start
        };
        let epoch = any.epoch()?.epoch;
        let count = count.max(crate::tx::BatchLimits::for_k(g.k).min as usize);
        let batch = BatchId {
            epoch,
            start,
            count: u32::try_from(count)
                .map_err(|_| ClusterError::Other("batch too large".into()))?,
        };
        let engine = &self.engine;
        let mut seed = [0u8; 32];
        let dealings: Vec<Dealing<Secp256k1>> = (1..=g.n)
            .map(|d| {
                seed[..8].copy_from_slice(&run.to_le_bytes());
                seed[8..12].copy_from_slice(&d.to_le_bytes());
                seed[12..20].copy_from_slice(&start.to_le_bytes());
                let mut s = keccak256(&seed);
                if run == 0 {
                    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut s);
                }
                avss::deal::<Secp256k1>(engine, params, d, count, None, s)
            })
            .collect::<Result<_, _>>()?;
        let slices: Vec<Vec<Slice<Secp256k1>>> = dealings
            .iter()
            .map(|d| d.slices(engine))
            .collect::<Result<_, _>>()?;
        let digests: Vec<[u8; 32]> = dealings
            .iter()
            .map(|d| keccak256(&d.commitments.encode()))
            .collect();
        let mut public: Vec<PublicShares<Secp256k1>> = Vec::new();
        let mut commitments = Vec::new();
        for i in 1..=g.n {
            let sends: Vec<SendRef<'_, Secp256k1>> = dealings
                .iter()
                .zip(&slices)
                .filter_map(|(d, s)| s.get((i - 1) as usize).map(|sl| SendRef::new(d, sl)))
                .collect();
            avss::verify_sends(engine, &params, i, &sends)?;
            let shares = dkg::aggregate(engine, &params, i, &sends)?;
            if let Some(node) = self.node(i) {
                node.store()
                    .put_shares(epoch, start, &shares)
                    .map_err(NodeError::from)?;
                node.store()
                    .set_progress(start, batch.count, "shares stored")
                    .map_err(NodeError::from)?;
            }
            public.push(dkg::public_shares(engine, &shares, keccak256(&seed))?);
            if commitments.is_empty() {
                commitments = shares.commitments.clone();
            }
        }
        let refs: Vec<&PublicShares<Secp256k1>> = public.iter().collect();
        dkg::verify_public_shares(engine, &params, &commitments, &refs)?;
        let pks = dkg::user_public_keys(engine, &params, &refs)?;
        let keys: Vec<[u8; 33]> = pks
            .iter()
            .map(|a| {
                crate::tx::digest::compressed_point(a)
                    .ok_or_else(|| ClusterError::Other("a user public key is the identity".into()))
            })
            .collect::<Result<_, _>>()?;
        // Ready signatures from every running node, for every dealer.
        let running: Vec<Arc<NodeState>> = self
            .members
            .iter()
            .filter_map(|m| m.state.clone())
            .collect();
        let mut dealers = Vec::new();
        for (d, digest) in (1..=g.n).zip(&digests) {
            let mut readies = Vec::new();
            for node in &running {
                readies.push(ReadySig::sign(node.key(), node.index()?, &batch, d, digest));
            }
            dealers.push(DealerEvidence {
                dealer: d,
                commitments: *digest,
                readies,
            });
        }
        let proposer = running
            .first()
            .ok_or_else(|| ClusterError::Other("no node running".into()))?;
        let open = proposer.sign_tx(TxBody::OpenBatch { batch })?;
        let o = proposer
            .submit_and_wait(&open, Duration::from_secs(30))
            .await?;
        if o.code != crate::app::TxCode::Ok {
            return Err(ClusterError::Other(format!(
                "open batch rejected: {}",
                o.log
            )));
        }
        let tx = proposer.sign_tx(TxBody::DealerSet { batch, dealers })?;
        let o = proposer
            .submit_and_wait(&tx, Duration::from_secs(30))
            .await?;
        if o.code != crate::app::TxCode::Ok {
            return Err(ClusterError::Other(format!(
                "dealer set rejected: {}",
                o.log
            )));
        }
        let h = keys_hash(&keys);
        let vectors_hash = crate::tx::digest::vector_hashes(&commitments, params.ku())
            .ok_or_else(|| ClusterError::Other("a commitment vector holds the identity".into()))?
            .1;
        let mut waits = Vec::new();
        for (j, node) in running.iter().enumerate() {
            // The first voter carries the keys; the others vote by hash.
            let list = if j == 0 { keys.clone() } else { Vec::new() };
            let tx = node.sign_tx(TxBody::PublicKeys {
                batch,
                keys_hash: h,
                keys: list,
                vectors_hash,
            })?;
            let node = node.clone();
            waits.push(tokio::spawn(async move {
                node.submit_and_wait(&tx, Duration::from_secs(30)).await
            }));
        }
        for w in waits {
            w.await.map_err(|e| ClusterError::Other(e.to_string()))??;
        }
        for node in &running {
            node.store()
                .set_progress(start, batch.count, "public keys decided")
                .map_err(NodeError::from)?;
        }
        Ok(keys)
    }

    /// Mints a development id token for `email`.
    pub fn mint(&self, email: &str) -> String {
        let now = crate::node::unix_s();
        // A random nonce makes every token distinct (ES256 signing is deterministic).
        let nonce = hex::encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes());
        self.issuer.mint(
            &crate::verifier::DevClaims::new(DEV_AUDIENCE, now)
                .email(email)
                .subject(email)
                .claim("nonce", serde_json::Value::from(nonce)),
        )
    }

    /// Stops everything.
    pub async fn shutdown(mut self) {
        self.orderer_task.abort();
        let n = self.members.len() as u32;
        for i in 1..=n {
            let _ = self.stop_node(i).await;
        }
    }
}
