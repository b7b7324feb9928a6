//! The node's storage: the versioned record encodings ([`records`], built
//! without the `server` feature for the fuzz targets) and, with `server`, the
//! LMDB store (heed) in four rooms: the environment and the replicated state
//! (`env`), sealed secrets and key generation material (`sealed`), token
//! commitments and reveals (`tokens`), decided blocks and proposals (`blocks`).
//!
//! The LMDB store:
//!
//! Databases in one environment under `<data_dir>/lmdb`:
//! * `state`: the replicated consensus state (see `crate::app::keys`);
//! * `meta`: the head (height, app hash) and the genesis hash;
//! * `shares`: this node's key shares, encrypted (`ShareRecord`);
//! * `tokens`: no longer written: token commitments and reveals moved to the client
//!   store (below); records a node wrote here before are still read until the client
//!   store is a token lifetime old, then deleted by the prune task;
//! * `progress`: local DKG/PSS progress per batch;
//! * `keygen`: this node's key generation material per batch: its dealing seed
//!   and its aggregated slice (both sealed like shares), and the sum of the
//!   decided dealers' commitment matrices (public, compressed points), kept to
//!   serve peers that recover a batch (batches finished by earlier versions keep
//!   every decided dealer's matrices instead, still served);
//! * `proposals`: values proposed for heights not decided yet (received, or
//!   built by this node), so that a restarted engine still has the values it
//!   may have voted for or must re-propose;
//! * `blocks`: decided blocks and their commit certificates, for the embedded
//!   engine's value sync (see `Store::commit_block_with`).
//!
//! Token commitments and reveals (`TokenCommitment`, `TokenUse`), which anyone can make
//! a node write, live in a second environment, `<data_dir>/client-lmdb` (`client`): its
//! own map size and a bound on live commitments, records pruned a token lifetime after
//! they were written. A full client store refuses client requests; it cannot make a
//! consensus write fail (issue #10, finding 5).
//!
//! A block's state writes and its head go in one write transaction, so a crash
//! leaves the node at the previous or the next height, never in between.
//!
//! Durability: the environment is opened with `MDB_NOSYNC` and synced
//! explicitly: after every consensus block and every batch of shares (before
//! the call returns), and for token commitments at most `SYNC_INTERVAL` later
//! (the RPC server runs `Store::sync_if_dirty` on that period). A killed
//! process loses nothing (the OS page cache holds every committed
//! transaction); a power loss can lose at most the last interval of token
//! commitments, which clients then simply make again. Without this, every
//! CommitmentRequest would wait for its own fsync.
//!
//! Shares at rest: `s ‖ s'` is sealed with ChaCha20-Poly1305 under
//! `keccak256("torus-node/share-at-rest/v1" ‖ node secret key)`, with a random
//! 96-bit nonce and the record's key index and epoch as associated data. The
//! LMDB file therefore holds no plaintext share, and a record moved to another
//! index or node does not open.

pub mod records;

#[cfg(feature = "server")]
mod blocks;
#[cfg(feature = "server")]
mod check;
#[cfg(feature = "server")]
mod client;
#[cfg(feature = "server")]
mod env;
#[cfg(feature = "server")]
mod error;
#[cfg(feature = "server")]
mod sealed;
#[cfg(feature = "server")]
mod size;
#[cfg(all(test, feature = "server"))]
mod testing;
#[cfg(feature = "server")]
mod tokens;

#[cfg(feature = "server")]
pub use client::{
    ClientLimits, ClientStore, Pruned, DEFAULT_CLIENT_MAP_SIZE, DEFAULT_MAX_TOKEN_COMMITMENTS,
};
#[cfg(feature = "server")]
pub use env::{Snapshot, Store, DEFAULT_MAP_SIZE, SYNC_INTERVAL};
#[cfg(feature = "server")]
pub use error::StoreError;
pub use records::DecidedRecord;
#[cfg(feature = "server")]
pub use size::DbSize;
#[cfg(feature = "server")]
pub use tokens::{TokenInsert, TokenUseBinding};
