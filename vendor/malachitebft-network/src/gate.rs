//! torus-node patch: an allow-list of the peers that may hold a connection.
//!
//! Upstream malachite 0.5 accepts a connection from any peer and serves it
//! consensus messages, proposal parts and value sync. A node registers, for its
//! own peer id, the peers it allows ([`allow_only`]) before it spawns the
//! network; the swarm built for that peer id then denies every other peer at
//! connection establishment ([`Gate`]), inbound and outbound. The set is read
//! at each connection, so a registration changed later ([`allow_only`],
//! [`allow_also`]) applies to the running network: a committee hand-over lets
//! the next committee's fresh members in without a restart. Connections already
//! established stay. Without a registration the network behaves as upstream.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

fn registry() -> &'static Mutex<HashMap<PeerId, HashSet<PeerId>>> {
    static R: OnceLock<Mutex<HashMap<PeerId, HashSet<PeerId>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Only `peers` may connect to (or be dialed by) the network of `local`, from
/// its next spawn on. Replaces an earlier registration.
pub fn allow_only(local: PeerId, peers: impl IntoIterator<Item = PeerId>) {
    let set = peers.into_iter().collect();
    let mut r = match registry().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    r.insert(local, set);
}

/// Adds `peers` to the peers `local` allows (registering them if it had none).
pub fn allow_also(local: PeerId, peers: impl IntoIterator<Item = PeerId>) {
    let mut r = match registry().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    r.entry(local).or_default().extend(peers);
}

/// Drops the registration of `local`: its next network allows any peer.
pub fn allow_any(local: &PeerId) {
    let mut r = match registry().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    r.remove(local);
}

/// The peers `local` allows, if it registered any.
pub(crate) fn allowed(local: &PeerId) -> Option<HashSet<PeerId>> {
    let r = match registry().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    r.get(local).cloned()
}

/// Whether `local` lets `peer` connect: registered and listed.
fn admits(local: &PeerId, peer: &PeerId) -> bool {
    let r = match registry().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    r.get(local).is_some_and(|set| set.contains(peer))
}

/// The connection gate of the network of `local`: every connection whose peer
/// `local`'s registration does not list at that moment is denied.
pub struct Gate {
    local: PeerId,
}

impl Gate {
    /// The gate of `local`'s network.
    pub fn new(local: PeerId) -> Self {
        Gate { local }
    }

    fn enforce(&self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        if admits(&self.local, peer) {
            Ok(())
        } else {
            Err(ConnectionDenied::new(NotAllowed(*peer)))
        }
    }
}

/// A peer the registration does not list.
#[derive(Debug)]
pub struct NotAllowed(pub PeerId);

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer {} is not allowed", self.0)
    }
}

impl std::error::Error for NotAllowed {}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.enforce(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(peer) = peer {
            self.enforce(&peer)?;
        }
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.enforce(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_added_after_the_registration_is_admitted_and_an_unlisted_one_is_not() {
        let local = PeerId::random();
        let (a, b) = (PeerId::random(), PeerId::random());
        allow_only(local, [a]);
        let gate = Gate::new(local);
        assert!(gate.enforce(&a).is_ok());
        assert!(gate.enforce(&b).is_err());
        allow_also(local, [b]);
        assert!(gate.enforce(&b).is_ok(), "the running gate reads the new set");
        allow_only(local, [b]);
        assert!(gate.enforce(&a).is_err());
        allow_any(&local);
        assert!(gate.enforce(&b).is_err(), "a gate whose registration is gone denies");
    }
}
