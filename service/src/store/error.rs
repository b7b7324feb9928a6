//! Storage failures, shared by the consensus environment ([`super::env`]) and the client
//! store ([`super::client`]).

use crate::app::AppError;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// LMDB failed.
    #[error("lmdb: {0}")]
    Lmdb(#[from] heed::Error),
    /// I/O on the data directory failed.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// A record does not decode.
    #[error("corrupt record {what}: {err}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// Decoder error.
        err: String,
    },
    /// A share this node should hold is not stored.
    #[error("no share of key {0} is stored")]
    MissingShare(u64),
    /// A sealed share does not open (wrong node key or tampered record).
    #[error("share record for key {0} does not decrypt")]
    Seal(u64),
    /// The store was created for another genesis.
    #[error("data directory belongs to another network (genesis hash mismatch)")]
    GenesisMismatch,
    /// The consensus app failed.
    #[error(transparent)]
    App(#[from] AppError),
    /// The client store (token commitments and reveals) is full: client requests that
    /// would write there are refused until the prune task frees room. Never a consensus
    /// failure: the client store is another LMDB environment.
    #[error("client store full: {0}")]
    ClientFull(&'static str),
    /// An LMDB file is shorter than its newest snapshot needs (cut by a full disk, a
    /// failed copy or a restore that stopped early). Refused at open: LMDB reads pages
    /// straight from its memory map, and a page past the end of the file would kill the
    /// process with SIGBUS instead of returning an error.
    #[error(
        "{path} is truncated: {have} bytes, but its last committed transaction uses {need}; \
         the node will not start on it. Restore the directory from a backup. Moving it away \
         instead lets the node resync the chain from its peers, but it rebuilds only the \
         shares whose recovery material they still hold"
    )]
    Truncated {
        /// The data file.
        path: String,
        /// Its length.
        have: u64,
        /// The length its newest snapshot needs.
        need: u64,
    },
}
