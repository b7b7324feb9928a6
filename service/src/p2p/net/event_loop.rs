//! The p2p event loop: commands from the client, swarm events, per-peer send
//! queues pumped within the in-flight limit, and inbound frames checked and
//! handed to the node.

use super::*;

pub(super) struct EventLoop {
    /// This node's peer id.
    pub(super) own: PeerId,
    /// Each peer's share of the inbound pipeline (messages, bytes).
    pub(super) share: (usize, usize),
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) peers: HashMap<PeerId, Peer>,
    pub(super) by_index: HashMap<u32, PeerId>,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) max_inflight: usize,
    /// Most answers to its own requests queued for one peer (`2 (n + 1)`: one per
    /// dealer and digest it may be missing, twice).
    pub(super) max_answers: usize,
}

impl EventLoop {
    fn count_in(&self, kind: &str, outcome: &str) {
        self.metrics
            .p2p_in
            .get_or_create(&P2pLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
    fn count_out(&self, kind: &str, outcome: &str) {
        self.metrics
            .p2p_out
            .get_or_create(&P2pLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub(super) async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(c) => self.command(c),
                    None => break,
                },
                ev = self.swarm.select_next_some() => self.event(ev),
                _ = tick.tick() => {}
            }
            self.pump();
        }
        tracing::debug!("p2p event loop stopped");
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Send {
                to,
                batch,
                kind,
                bytes,
            } => {
                let Some(peer) = self.by_index.get(&to).and_then(|id| self.peers.get_mut(id))
                else {
                    tracing::warn!(to, kind, "message for an unknown node dropped");
                    return;
                };
                let out = Out {
                    id: rand_core::OsRng.next_u64(),
                    batch,
                    kind,
                    bytes,
                };
                if let Err(why) = peer.enqueue(out, self.max_answers) {
                    tracing::debug!(
                        to,
                        kind,
                        reason = why.reason(),
                        "message for a peer dropped by a bound"
                    );
                    self.metrics.dropped(why.reason());
                    self.count_out(kind, "dropped");
                }
            }
            Command::DropBatch(start) => {
                let mut dropped = 0usize;
                for p in self.peers.values_mut() {
                    let before = p.queue.len();
                    p.queue.retain(|o| o.batch != Some(start));
                    dropped += before - p.queue.len();
                }
                if dropped > 0 {
                    tracing::debug!(
                        batch = start,
                        dropped,
                        "dropped queued messages of a finished batch"
                    );
                }
            }
            Command::AddPeers(infos) => self.add_peers(infos),
            Command::Connected(reply) => {
                let mut v: Vec<u32> = self
                    .peers
                    .values()
                    .filter(|p| p.connected)
                    .map(|p| p.index)
                    .collect();
                v.sort_unstable();
                let _ = reply.send(v);
            }
        }
    }

    /// Admits new members (see [`P2pClient::add_peers`]).
    fn add_peers(&mut self, infos: Vec<PeerInfo>) {
        for p in infos {
            let id = match peer_id(&p.pubkey) {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!(node = p.index, error = %e, "new peer skipped");
                    continue;
                }
            };
            if id == self.own || self.peers.contains_key(&id) {
                continue;
            }
            if let Some(old) = self.by_index.get(&p.index).copied() {
                // A node that left the committee held this index; the caller
                // names members only, so the index is the new node's now.
                tracing::info!(node = p.index, left = %old, "index taken over by a new member");
                self.peers.remove(&old);
                self.swarm.behaviour_mut().allow.disallow_peer(old);
            }
            let addr: Multiaddr = match p.addr.parse() {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(node = p.index, addr = %p.addr, error = %e, "new peer skipped: bad address");
                    continue;
                }
            };
            self.swarm.behaviour_mut().allow.allow_peer(id);
            self.by_index.insert(p.index, id);
            self.peers.insert(
                id,
                Peer::new(p.index, addr, InboundShare::new(self.share.0, self.share.1)),
            );
            self.max_answers = 2 * (self.by_index.len() + 1);
            tracing::info!(node = p.index, peer_id = %id, "peer added");
        }
    }

    fn pump(&mut self) {
        let now = Instant::now();
        let mut queued = 0i64;
        let ids: Vec<PeerId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            while peer.inflight.len() < self.max_inflight && now >= peer.next_try {
                let Some(out) = peer.queue.pop_front() else {
                    break;
                };
                let frame = Frame {
                    id: out.id,
                    bytes: out.bytes.clone(),
                };
                let rid = self.swarm.behaviour_mut().rr.send_request_with_addresses(
                    &id,
                    frame,
                    vec![peer.addr.clone()],
                );
                peer.inflight.insert(rid, out);
            }
            queued += (peer.queue.len() + peer.inflight.len()) as i64;
        }
        self.metrics.p2p_queued.set(queued);
    }

    fn requeue(&mut self, peer: PeerId, rid: OutboundRequestId, why: &str) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if let Some(out) = p.inflight.remove(&rid) {
            let kind = out.kind;
            p.queue.push_front(out);
            p.failed();
            tracing::debug!(to = p.index, kind, why, "message will be retried");
            self.count_out(kind, "retried");
        }
    }

    fn event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::Behaviour(BehaviourEvent::Rr(e)) => self.rr_event(e),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    if !p.connected {
                        tracing::info!(peer = p.index, "peer connected");
                    }
                    p.connected = true;
                    p.backoff = BACKOFF_MIN;
                    p.next_try = Instant::now();
                }
                self.update_peers();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    if let Some(p) = self.peers.get_mut(&peer_id) {
                        tracing::info!(peer = p.index, "peer disconnected");
                        p.connected = false;
                    }
                }
                self.update_peers();
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection refused");
                self.count_in("connection", "refused");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!(%address, "p2p listening");
            }
            _ => {}
        }
    }

    fn update_peers(&self) {
        let n = self.peers.values().filter(|p| p.connected).count();
        self.metrics.p2p_peers.set(n as i64);
    }

    fn rr_event(&mut self, e: request_response::Event<Frame, Status>) {
        use request_response::{Event, Message as M};
        match e {
            Event::Message {
                peer,
                message: M::Request {
                    request, channel, ..
                },
                ..
            } => {
                let status = self.inbound(peer, request);
                let _ = self.swarm.behaviour_mut().rr.send_response(channel, status);
            }
            Event::Message {
                peer,
                message:
                    M::Response {
                        request_id,
                        response,
                    },
                ..
            } => match response {
                Status::Ack => {
                    if let Some(out) = self
                        .peers
                        .get_mut(&peer)
                        .and_then(|p| p.inflight.remove(&request_id))
                    {
                        self.count_out(out.kind, "acked");
                    }
                }
                Status::Busy => self.requeue(peer, request_id, "peer busy"),
                Status::Malformed => {
                    if let Some(p) = self.peers.get_mut(&peer) {
                        if let Some(out) = p.inflight.remove(&request_id) {
                            tracing::error!(
                                to = p.index,
                                kind = out.kind,
                                "peer refused a message as malformed"
                            );
                            self.count_out(out.kind, "refused");
                        }
                    }
                }
            },
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let why = error.to_string();
                self.requeue(peer, request_id, &why);
            }
            Event::InboundFailure { peer, error, .. } => {
                let index = self.peers.get(&peer).map(|p| p.index);
                let outcome = match &error {
                    request_response::InboundFailure::Io(e)
                        if e.to_string().contains("exceeds the limit") =>
                    {
                        "oversized"
                    }
                    request_response::InboundFailure::Io(_) => "malformed",
                    request_response::InboundFailure::Timeout => "timeout",
                    _ => "failed",
                };
                tracing::warn!(?index, %error, outcome, "inbound message failed");
                self.count_in("undecodable", outcome);
            }
            Event::ResponseSent { .. } => {}
        }
    }

    fn inbound(&mut self, peer: PeerId, frame: Frame) -> Status {
        let Some(p) = self.peers.get(&peer) else {
            self.count_in("undecodable", "unknown_peer");
            return Status::Malformed;
        };
        let from = p.index;
        if p.seen.contains(&frame.id) {
            let kind = Message::decode(&frame.bytes)
                .map(|m| m.kind())
                .unwrap_or("undecodable");
            self.count_in(kind, "duplicate");
            return Status::Ack;
        }
        let msg = match Message::decode(&frame.bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(from, error = %e, bytes = frame.bytes.len(), "malformed message dropped");
                self.count_in("undecodable", "malformed");
                return Status::Malformed;
            }
        };
        let kind = msg.kind();
        let Some(slot) = p.share.take(frame.bytes.len()) else {
            // This peer holds its whole share of the pipeline: it retries later.
            self.metrics.dropped("peer_share");
            self.count_in(kind, "busy");
            return Status::Busy;
        };
        let item = Inbound {
            from,
            msg,
            _slot: Some(slot),
        };
        match self.inbound.try_send(item) {
            Ok(()) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.remember(frame.id);
                }
                self.count_in(kind, "ok");
                Status::Ack
            }
            Err(_) => {
                self.count_in(kind, "busy");
                Status::Busy
            }
        }
    }
}
