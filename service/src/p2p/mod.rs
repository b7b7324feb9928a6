//! The node-to-node network: libp2p over TCP with noise and yamux, a
//! request-response protocol carrying [`Message`]s, and identify.
//!
//! * **Identity.** The libp2p key is the node's secp256k1 key, so a peer id
//!   names a committee member. Only the epoch's members may connect (an allow
//!   list); every other connection is denied and counted.
//! * **Reliable delivery.** Every message gets a random id and stays queued for
//!   its peer until the peer acknowledges it; failures and disconnects are
//!   retried with exponential backoff, so a node that comes back catches up.
//!   Receivers drop duplicate ids. Messages of a finished batch are dropped
//!   with [`P2pClient::drop_batch`] (recovery takes over from there).
//! * **Limits.** Frames above `max_message_bytes` are refused before any
//!   allocation; a message that does not decode is answered "malformed",
//!   logged and counted, never retried; a full inbound queue answers "busy"
//!   (the sender retries later).
//! * **Addresses.** Peers are dialed only at the addresses given in the
//!   configuration (identify's address cache is off), which is what lets a test
//!   harness put links behind filtering relays.
//!
//! Shape: [`start`] returns a cloneable [`P2pClient`] (commands over a channel)
//! and the receiver of [`Inbound`] messages; the event loop owns the swarm.

pub mod msg;
#[cfg(feature = "server")]
mod net;
#[cfg(feature = "server")]
pub mod wire;

pub use msg::{Message, PointsMsg, SendMsg};
#[cfg(feature = "server")]
pub use net::{libp2p_keypair, peer_id, start, Inbound, P2pClient, P2pConfig, P2pError, PeerInfo};
