//! torus-node patch: an allow-list of the peers that may hold a connection.
//!
//! Upstream malachite 0.5 accepts a connection from any peer and serves it
//! consensus messages, proposal parts and value sync. A node registers, for its
//! own peer id, the peers it allows ([`allow_only`]) before it spawns the
//! network; the swarm built for that peer id then denies every other peer at
//! connection establishment (libp2p's `allow_block_list`), inbound and
//! outbound. Without a registration the network behaves as upstream.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use libp2p::PeerId;

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
