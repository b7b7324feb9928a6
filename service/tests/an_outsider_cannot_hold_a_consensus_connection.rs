//! The consensus port serves only the committee and the configured observers:
//! a peer whose key is in neither is denied when its connection is
//! established, so it gets no identify answer, no votes, no proposal parts and
//! no synced blocks; an observer's connection (same dialer code, another key)
//! is served.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use torus_node::bft::{self, BftConfig};
use torus_node::config::{Genesis, GenesisNode, NodeConfig};
use torus_node::crypto::NodeKey;
use torus_node::mempool::{Limits, Mempool, DEFAULT_MAX_BLOCK_BYTES};
use torus_node::node::NodeState;
use torus_node::p2p::libp2p_keypair;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn prober(key: &NodeKey) -> Swarm<identify::Behaviour> {
    libp2p::SwarmBuilder::with_existing_identity(libp2p_keypair(key).unwrap())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|kp| {
            identify::Behaviour::new(identify::Config::new(
                "/malachitebft-core-consensus/v1beta1".into(),
                kp.public(),
            ))
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The node exchanged identify on the connection: it is served.
    Served,
    /// The connection came up and was closed by the node without an answer.
    Refused,
    /// The dial failed: nothing listens there (yet).
    Unreachable,
}

/// Dials `addr` as `key` and reports whether the node at `node` serves it.
/// A denied connection is closed by the node at establishment, before any
/// stream is opened on it.
async fn probe(key: &NodeKey, addr: &Multiaddr, node: PeerId) -> Outcome {
    let mut s = prober(key);
    s.dial(addr.clone()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut established = false;
    loop {
        let Ok(ev) = tokio::time::timeout_at(deadline, s.select_next_some()).await else {
            panic!("no outcome within 15 s");
        };
        match ev {
            // The node asked for our identity (we answered: `Sent`) or sent
            // its own: it opened streams on the connection, which a denied
            // connection never gets. The node may close a served connection
            // soon after, since this prober speaks none of its other
            // protocols (ping, broadcast), so either event counts.
            SwarmEvent::Behaviour(
                identify::Event::Received { peer_id, .. } | identify::Event::Sent { peer_id, .. },
            ) if peer_id == node => return Outcome::Served,
            SwarmEvent::ConnectionEstablished { .. } => established = true,
            SwarmEvent::ConnectionClosed { .. } if established => return Outcome::Refused,
            SwarmEvent::OutgoingConnectionError { .. } => return Outcome::Unreachable,
            _ => {}
        }
    }
}

/// Probes as the observer until it is served. The node may decide its first
/// blocks before its listener is bound on a loaded machine (`Unreachable`),
/// and it closes a served connection as soon as its handlers are idle, which
/// with a prober that speaks none of its other protocols can beat the
/// identify exchange (`Refused`); both are retried a bounded number of times.
/// A denied peer is refused at every attempt (see the outsider's probes).
async fn observe(key: &NodeKey, addr: &Multiaddr, node: PeerId) -> Outcome {
    let t0 = std::time::Instant::now();
    let mut refusals = 0;
    loop {
        match probe(key, addr, node).await {
            Outcome::Served => return Outcome::Served,
            Outcome::Unreachable if t0.elapsed() < Duration::from_secs(30) => {}
            Outcome::Refused if refusals < 10 => refusals += 1,
            other => return other,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_cannot_hold_a_consensus_connection_or_sync_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let key = NodeKey::random();
    let port = free_port();
    let genesis = Genesis {
        chain_id: "torus-gate-test".into(),
        epoch: 1,
        n: 1,
        k: 1,
        t: 0,
        nodes: vec![GenesisNode {
            index: 1,
            pubkey: hex::encode(key.public().compressed()),
            p2p: String::new(),
            consensus: format!("/ip4/127.0.0.1/tcp/{port}"),
            rpc: String::new(),
        }],
    };
    let text = format!(
        "data_dir = {:?}\ngenesis = \"g.toml\"\ndev_mode = true\n",
        tmp.path().display().to_string()
    );
    let cfg: NodeConfig = toml::from_str(&text).unwrap();
    let node_id = bft::peer_id(&key.public()).unwrap();
    let node = NodeState::open_with(cfg, key, genesis).unwrap();
    let observer = NodeKey::random();
    let outsider = NodeKey::random();
    let mut bcfg = BftConfig::from_genesis(&node).unwrap();
    bcfg.observers = vec![bft::peer_id(&observer.public()).unwrap().to_string()];
    let handle = bft::start(
        node.clone(),
        Mempool::for_node(&node, Limits::for_block(DEFAULT_MAX_BLOCK_BYTES, 1)),
        bcfg,
    )
    .await
    .unwrap();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    // The node decides blocks alone meanwhile: there is something to sync.
    let t0 = std::time::Instant::now();
    while node.store().head().unwrap().height < 2 {
        assert!(t0.elapsed() < Duration::from_secs(20), "no blocks decided");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The observer is served; an outsider, dialling the same way, never is.
    assert_eq!(observe(&observer, &addr, node_id).await, Outcome::Served);
    for _ in 0..5 {
        assert_eq!(probe(&outsider, &addr, node_id).await, Outcome::Refused);
    }
    assert_eq!(observe(&observer, &addr, node_id).await, Outcome::Served);
    handle.shutdown().await;
}
