//! The libp2p swarm: configuration, the client handle, per-peer queues and
//! start-up; its event loop is in `event_loop` (see the module docs of `p2p`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identify, identity, noise, tcp, yamux, Multiaddr, PeerId,
    Swarm,
};
use rand_core::RngCore;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use super::msg::Message;
use super::wire::{self, Frame, Status, WireCodec};

use crate::crypto::NodeKey;
use crate::metrics::{Metrics, P2pLabels};

mod event_loop;
use event_loop::EventLoop;

/// Network failures at start-up.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// A bad multiaddr or key in the configuration.
    #[error("p2p configuration: {0}")]
    Config(String),
    /// The transport could not be built or could not listen.
    #[error("p2p transport: {0}")]
    Transport(String),
}

/// A committee member as the network sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// 1-based node index.
    pub index: u32,
    /// 33-byte compressed secp256k1 key.
    pub pubkey: [u8; 33],
    /// Where to dial it (multiaddr, e.g. `/ip4/127.0.0.1/tcp/4001`).
    pub addr: String,
}

/// Network settings.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// Listen multiaddr.
    pub listen: String,
    /// Every committee member (this node is recognised by its key and skipped).
    pub peers: Vec<PeerInfo>,
    /// Largest message accepted or sent, bytes.
    pub max_message_bytes: usize,
    /// How long a request may take before it is retried.
    pub request_timeout: Duration,
    /// Requests in flight per peer.
    pub max_inflight: usize,
    /// Inbound messages buffered for the application before peers hear "busy".
    pub inbound_queue: usize,
}

impl P2pConfig {
    /// Defaults for `listen` and `peers`.
    pub fn new(listen: impl Into<String>, peers: Vec<PeerInfo>) -> Self {
        P2pConfig {
            listen: listen.into(),
            peers,
            max_message_bytes: 256 << 20,
            request_timeout: Duration::from_secs(120),
            max_inflight: 8,
            inbound_queue: 4096,
        }
    }
}

/// A message from a peer (or from this node to itself).
#[derive(Debug)]
pub struct Inbound {
    /// Sender's node index.
    pub from: u32,
    /// The message.
    pub msg: Message,
    /// The sender's share of the inbound pipeline this message holds until it is
    /// dropped (handled), see [`InboundShare`].
    _slot: Option<Slot>,
}

impl Inbound {
    /// A message from `from` that holds no share of any peer's inbound budget
    /// (this node's own messages, and tests).
    pub fn local(from: u32, msg: Message) -> Self {
        Inbound {
            from,
            msg,
            _slot: None,
        }
    }
}

/// What one peer's messages may hold of the inbound pipeline (the p2p queue, the
/// router and the keygen queue) at once: a count and their encoded bytes. A peer
/// over its share hears "busy" and retries later, so one peer cannot crowd out
/// the others.
#[derive(Debug)]
pub(crate) struct InboundShare {
    max_messages: usize,
    max_bytes: usize,
    used: std::sync::Mutex<(usize, usize)>,
}

impl InboundShare {
    /// A share of at most `max_messages` messages and `max_bytes` bytes.
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Arc<Self> {
        Arc::new(InboundShare {
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            used: std::sync::Mutex::new((0, 0)),
        })
    }

    /// Takes room for one message of `bytes`, or None when the share is used up
    /// (a single message larger than the whole byte share is still taken when the
    /// peer holds nothing else, so a large legal message always gets through).
    pub(crate) fn take(self: &Arc<Self>, bytes: usize) -> Option<Slot> {
        let mut used = match self.used.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (count, held) = *used;
        if count >= self.max_messages || (count > 0 && held.saturating_add(bytes) > self.max_bytes)
        {
            return None;
        }
        *used = (count + 1, held.saturating_add(bytes));
        Some(Slot {
            share: self.clone(),
            bytes,
        })
    }

    /// Messages and bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> (usize, usize) {
        match self.used.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }
}

/// One message's room in an [`InboundShare`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    share: Arc<InboundShare>,
    bytes: usize,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = match self.share.used.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        used.0 = used.0.saturating_sub(1);
        used.1 = used.1.saturating_sub(self.bytes);
    }
}

enum Command {
    Send {
        to: u32,
        batch: Option<u64>,
        kind: &'static str,
        bytes: Arc<Zeroizing<Vec<u8>>>,
    },
    DropBatch(u64),
    Connected(oneshot::Sender<Vec<u32>>),
    AddPeers(Vec<PeerInfo>),
}

/// The application's handle on the network. Cheap to clone.
#[derive(Clone)]
pub struct P2pClient {
    me: u32,
    others: Arc<std::sync::RwLock<Vec<u32>>>,
    cmd: mpsc::UnboundedSender<Command>,
    loopback: mpsc::Sender<Inbound>,
}

impl std::fmt::Debug for P2pClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P2pClient(node {})", self.me)
    }
}

impl P2pClient {
    /// This node's index.
    pub fn index(&self) -> u32 {
        self.me
    }

    /// Queues `msg` for node `to` until it is acknowledged. A message to this
    /// node itself is delivered locally.
    pub fn send(&self, to: u32, msg: Message) {
        if to == self.me {
            let item = Inbound::local(to, msg);
            if let Err(mpsc::error::TrySendError::Full(item)) = self.loopback.try_send(item) {
                let tx = self.loopback.clone();
                tokio::spawn(async move {
                    let _ = tx.send(item).await;
                });
            }
            return;
        }
        let _ = self.cmd.send(Command::Send {
            to,
            batch: msg.batch().map(|b| b.start),
            kind: msg.kind(),
            bytes: Arc::new(Zeroizing::new(msg.encode())),
        });
    }

    /// Sends `msg` to every other member (one encoding shared by all queues).
    pub fn broadcast(&self, msg: &Message) {
        let bytes = Arc::new(Zeroizing::new(msg.encode()));
        let others = match self.others.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for to in others {
            let _ = self.cmd.send(Command::Send {
                to,
                batch: msg.batch().map(|b| b.start),
                kind: msg.kind(),
                bytes: bytes.clone(),
            });
        }
    }

    /// Lets `peers` connect and dials them on demand, as members (the next
    /// committee's fresh members during a hand-over). A peer already known, or
    /// this node itself, is skipped; an index held by another key (a node that
    /// left the committee) passes to the new member.
    pub fn add_peers(&self, peers: Vec<PeerInfo>) {
        {
            let mut others = match self.others.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for p in &peers {
                if p.index != self.me && !others.contains(&p.index) {
                    others.push(p.index);
                }
            }
            others.sort_unstable();
        }
        let _ = self.cmd.send(Command::AddPeers(peers));
    }

    /// Forgets every queued message of the batch starting at `start`.
    pub fn drop_batch(&self, start: u64) {
        let _ = self.cmd.send(Command::DropBatch(start));
    }

    /// The members currently connected.
    pub async fn connected(&self) -> Vec<u32> {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Connected(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    limits: connection_limits::Behaviour,
    rr: request_response::Behaviour<WireCodec>,
    identify: identify::Behaviour,
}

/// The libp2p keypair of a node key.
pub fn libp2p_keypair(key: &NodeKey) -> Result<identity::Keypair, P2pError> {
    let mut secret = key.to_bytes();
    let sk = identity::secp256k1::SecretKey::try_from_bytes(&mut secret[..])
        .map_err(|e| P2pError::Config(format!("node key: {e}")))?;
    Ok(identity::Keypair::from(identity::secp256k1::Keypair::from(
        sk,
    )))
}

/// The peer id of a committee member's key.
pub fn peer_id(pubkey: &[u8; 33]) -> Result<PeerId, P2pError> {
    let pk = identity::secp256k1::PublicKey::try_from_bytes(pubkey)
        .map_err(|e| P2pError::Config(format!("peer key: {e}")))?;
    Ok(identity::PublicKey::from(pk).to_peer_id())
}

struct Out {
    id: u64,
    batch: Option<u64>,
    kind: &'static str,
    bytes: Arc<Zeroizing<Vec<u8>>>,
}

struct Peer {
    index: u32,
    addr: Multiaddr,
    queue: VecDeque<Out>,
    inflight: HashMap<OutboundRequestId, Out>,
    connected: bool,
    backoff: Duration,
    next_try: Instant,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
    /// This peer's share of the inbound pipeline.
    share: Arc<InboundShare>,
}

const SEEN_IDS: usize = 8192;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Most messages queued (or in flight) for one peer. The protocol itself queues
/// about `2n + 3` messages per batch for a peer; what grows past that comes from
/// peer requests or transaction gossip, both capped below.
pub(crate) const MAX_QUEUED_PER_PEER: usize = 8192;
/// Most transactions queued for one peer (gossip only: the node that received a
/// transaction proposes it itself, so a dropped copy loses nothing).
pub(crate) const MAX_QUEUED_TXS: usize = 2048;
/// Most pending frames one peer may have open on one connection (its requests
/// and ours); an honest peer has at most `max_inflight` requests in flight.
fn max_streams(max_inflight: usize) -> usize {
    2 * max_inflight + 4
}
/// Most connections one peer may hold (a simultaneous dial gives two).
const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Most incoming connections still in their handshake.
const MAX_PENDING_INCOMING: u32 = 64;

/// Answers to a peer's requests (`FetchCommitments`, `RecoverRequest`): the asker
/// asks again until it has them, so the copies queued for it are capped. `Held`
/// announcements are capped the same way: they repeat every few seconds and only
/// the newest matters, so a peer that is down does not collect them.
fn is_answer(kind: &str) -> bool {
    matches!(
        kind,
        "commitments" | "recover_points" | "recover_commitments" | "held" | "vectors"
    )
}

/// Why a message for a peer was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueRefusal {
    /// The peer's queue holds [`MAX_QUEUED_PER_PEER`] messages.
    Full,
    /// The peer's queue holds its cap of answers to its own requests.
    Answers,
    /// The peer's queue holds [`MAX_QUEUED_TXS`] transactions.
    Txs,
}

impl QueueRefusal {
    /// The metric reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            QueueRefusal::Full => "queue_full",
            QueueRefusal::Answers => "answers_queued",
            QueueRefusal::Txs => "tx_queued",
        }
    }
}

/// Whether one more message of `kind` may be queued for a peer with `queued`
/// messages of which `same_kind` are of that kind; `max_answers` caps answers.
pub(crate) fn admit(
    kind: &str,
    queued: usize,
    same_kind: usize,
    max_answers: usize,
) -> Result<(), QueueRefusal> {
    if queued >= MAX_QUEUED_PER_PEER {
        return Err(QueueRefusal::Full);
    }
    if is_answer(kind) && same_kind >= max_answers {
        return Err(QueueRefusal::Answers);
    }
    if kind == "tx" && same_kind >= MAX_QUEUED_TXS {
        return Err(QueueRefusal::Txs);
    }
    Ok(())
}

impl Peer {
    fn new(index: u32, addr: Multiaddr, share: Arc<InboundShare>) -> Self {
        Peer {
            index,
            addr,
            queue: VecDeque::new(),
            inflight: HashMap::new(),
            connected: false,
            backoff: BACKOFF_MIN,
            next_try: Instant::now(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            share,
        }
    }

    /// Queues `out` unless a bound refuses it (see [`admit`]).
    fn enqueue(&mut self, out: Out, max_answers: usize) -> Result<(), QueueRefusal> {
        let queued = self.queue.len() + self.inflight.len();
        let same_kind = if is_answer(out.kind) || out.kind == "tx" {
            self.queue
                .iter()
                .chain(self.inflight.values())
                .filter(|o| o.kind == out.kind)
                .count()
        } else {
            0
        };
        admit(out.kind, queued, same_kind, max_answers)?;
        self.queue.push_back(out);
        Ok(())
    }
    fn remember(&mut self, id: u64) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > SEEN_IDS {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
    fn failed(&mut self) {
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// Starts the network for node `me`: binds `cfg.listen`, dials the members on
/// demand, and returns the client plus the inbound message stream.
pub async fn start(
    key: &NodeKey,
    me: u32,
    cfg: P2pConfig,
    metrics: Arc<Metrics>,
) -> Result<(P2pClient, mpsc::Receiver<Inbound>), P2pError> {
    let keypair = libp2p_keypair(key)?;
    let own = keypair.public().to_peer_id();
    let listen: Multiaddr = cfg
        .listen
        .parse()
        .map_err(|e| P2pError::Config(format!("listen address {:?}: {e}", cfg.listen)))?;
    let mut peers: HashMap<PeerId, Peer> = HashMap::new();
    let mut by_index: HashMap<u32, PeerId> = HashMap::new();
    let (share_messages, share_bytes) = inbound_share(&cfg);
    for p in &cfg.peers {
        let id = peer_id(&p.pubkey)?;
        if id == own {
            continue;
        }
        let addr: Multiaddr = p.addr.parse().map_err(|e| {
            P2pError::Config(format!("address of node {} {:?}: {e}", p.index, p.addr))
        })?;
        by_index.insert(p.index, id);
        peers.insert(
            id,
            Peer::new(
                p.index,
                addr,
                InboundShare::new(share_messages, share_bytes),
            ),
        );
    }
    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for id in peers.keys() {
        allow.allow_peer(*id);
    }
    let codec = WireCodec {
        max_bytes: cfg.max_message_bytes,
        metrics: Some(metrics.clone()),
        budget: Some(wire::ReadBudget::new(
            INBOUND_BYTES.max(2 * cfg.max_message_bytes),
        )),
    };
    let rr_cfg = request_response::Config::default()
        .with_request_timeout(cfg.request_timeout)
        .with_max_concurrent_streams(max_streams(cfg.max_inflight.max(1)));
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
        .with_max_pending_incoming(Some(MAX_PENDING_INCOMING));
    let mut swarm: Swarm<Behaviour> = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| P2pError::Transport(e.to_string()))?
        .with_behaviour(|kp| Behaviour {
            allow,
            limits: connection_limits::Behaviour::new(limits),
            rr: request_response::Behaviour::with_codec(
                codec,
                [(wire::PROTOCOL, ProtocolSupport::Full)],
                rr_cfg,
            ),
            identify: identify::Behaviour::new(
                identify::Config::new("/torus-node/id/1".into(), kp.public())
                    .with_agent_version(format!("torus-node/{}", env!("CARGO_PKG_VERSION")))
                    .with_cache_size(0),
            ),
        })
        .map_err(|e| P2pError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    swarm
        .listen_on(listen.clone())
        .map_err(|e| P2pError::Transport(format!("listen on {listen}: {e}")))?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::channel(cfg.inbound_queue.max(16));
    let mut others: Vec<u32> = by_index.keys().copied().collect();
    others.sort_unstable();
    let client = P2pClient {
        me,
        others: Arc::new(std::sync::RwLock::new(others)),
        cmd: cmd_tx,
        loopback: in_tx.clone(),
    };
    let max_answers = 2 * (by_index.len() + 1);
    let lp = EventLoop {
        own,
        share: (share_messages, share_bytes),
        swarm,
        peers,
        by_index,
        inbound: in_tx,
        metrics,
        max_inflight: cfg.max_inflight.max(1),
        max_answers,
    };
    tokio::spawn(lp.run(cmd_rx));
    tracing::info!(node = me, listen = %cfg.listen, peer_id = %own, "p2p started");
    Ok((client, in_rx))
}

/// One peer's share of the inbound pipeline: its part of `inbound_queue` (at
/// least twice the requests a peer keeps in flight) and of the bytes those may
/// hold (at least two largest messages).
fn inbound_share(cfg: &P2pConfig) -> (usize, usize) {
    let peers = cfg.peers.len().max(2) - 1;
    let messages = (cfg.inbound_queue / peers).max(2 * cfg.max_inflight.max(1));
    let bytes = (INBOUND_BYTES / peers).max(2 * cfg.max_message_bytes);
    (messages, bytes)
}

/// Bytes of messages from all peers the inbound pipeline is sized for.
const INBOUND_BYTES: usize = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::new(
            2,
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            InboundShare::new(4, 1000),
        )
    }

    fn out(kind: &'static str) -> Out {
        Out {
            id: rand_core::OsRng.next_u64(),
            batch: Some(0),
            kind,
            bytes: Arc::new(Zeroizing::new(vec![0u8; 8])),
        }
    }

    #[test]
    fn one_peer_cannot_hold_more_than_its_share_of_the_inbound_pipeline() {
        let share = InboundShare::new(3, 1000);
        let held: Vec<Slot> = (0..3).map(|_| share.take(10).unwrap()).collect();
        assert!(share.take(10).is_none(), "a fourth message past the count");
        drop(held);
        assert_eq!(
            share.used(),
            (0, 0),
            "handled messages give their room back"
        );
        let a = share.take(600).unwrap();
        assert!(share.take(600).is_none(), "past the byte share");
        drop(a);
        // One message larger than the whole byte share still passes alone.
        let big = share.take(5000).unwrap();
        assert!(share.take(1).is_none());
        drop(big);
        assert_eq!(share.used(), (0, 0));
    }

    #[test]
    fn a_flood_of_requests_queues_a_bounded_number_of_answers_for_the_asker() {
        let mut p = peer();
        let max_answers = 10;
        let mut refused = 0;
        for _ in 0..1000 {
            if p.enqueue(out("commitments"), max_answers).is_err() {
                refused += 1;
            }
        }
        assert_eq!(p.queue.len(), max_answers);
        assert_eq!(refused, 1000 - max_answers);
        // The protocol's own messages still pass.
        assert!(p.enqueue(out("echo"), max_answers).is_ok());
        for _ in 0..(MAX_QUEUED_TXS + 10) {
            let _ = p.enqueue(out("tx"), max_answers);
        }
        let txs = p.queue.iter().filter(|o| o.kind == "tx").count();
        assert_eq!(txs, MAX_QUEUED_TXS);
    }

    #[test]
    fn the_queue_of_one_peer_is_bounded() {
        let mut p = peer();
        for _ in 0..(MAX_QUEUED_PER_PEER + 5) {
            let _ = p.enqueue(out("echo"), 10);
        }
        assert_eq!(p.queue.len(), MAX_QUEUED_PER_PEER);
        assert_eq!(p.enqueue(out("ready"), 10), Err(QueueRefusal::Full));
    }

    #[test]
    fn the_inbound_share_is_a_fraction_of_the_pipeline_but_never_below_two_rounds_of_requests() {
        let peers = |n: u32| -> Vec<PeerInfo> {
            (1..=n)
                .map(|index| PeerInfo {
                    index,
                    pubkey: [2; 33],
                    addr: String::new(),
                })
                .collect()
        };
        let small = P2pConfig::new("/ip4/127.0.0.1/tcp/1", peers(5));
        let (m, b) = inbound_share(&small);
        assert_eq!(m, small.inbound_queue / 4);
        assert!(b >= 2 * small.max_message_bytes);
        let big = P2pConfig::new("/ip4/127.0.0.1/tcp/1", peers(1000));
        let (m, _) = inbound_share(&big);
        assert_eq!(m, 2 * big.max_inflight);
    }
}
