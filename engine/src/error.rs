//! Typed errors. Protocol violations carry the culprits (1-based node indexes and
//! key positions within the batch) so that the node can file complaints.

use thiserror::Error;

/// A decoding failure of a wire or stored value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Wrong byte length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The identity point, which is never a valid commitment or key.
    #[error("identity point is not allowed")]
    Identity,
    /// An encoding that is not the canonical one.
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
    /// The bytes do not name a point of the group.
    #[error("point is not on the curve or not in the prime-order subgroup")]
    NotOnCurve,
    /// Unknown format version or curve tag.
    #[error("unsupported {what}: {got}")]
    Unsupported {
        /// Field that was unsupported.
        what: &'static str,
        /// Value found.
        got: u32,
    },
    /// A length prefix that exceeds the configured limit.
    #[error("{what} count {got} exceeds the limit {limit}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// Value found.
        got: u64,
        /// Maximum allowed.
        limit: u64,
    },
    /// Bytes left after the value.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// One blamed dealer (or sender) with the batch positions of the keys at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    /// 1-based node index of the party at fault.
    pub node: u32,
    /// Positions (0-based, within the batch) of the keys at fault; empty when the
    /// fault is not per key (a structural one).
    pub keys: Vec<usize>,
}

/// Errors of the engine's protocol operations.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Parameters that cannot describe a committee.
    #[error("invalid parameters n={n} k={k} t={t}: {reason}")]
    InvalidParams {
        /// Committee size.
        n: u32,
        /// Reconstruction threshold (coefficients).
        k: u32,
        /// Tolerated faults.
        t: u32,
        /// Why.
        reason: &'static str,
    },
    /// Index 0 is the secret's x-coordinate and never a node index.
    #[error("index 0 is not a valid node index")]
    ZeroIndex,
    /// The same index appears twice in a set of points.
    #[error("duplicate index {0}")]
    DuplicateIndex(u32),
    /// An index above the committee size.
    #[error("index {index} out of range 1..={n}")]
    IndexOutOfRange {
        /// Offending index.
        index: u32,
        /// Committee size.
        n: u32,
    },
    /// A key position beyond the batch.
    #[error("key {key} out of range: the batch has {keys} keys")]
    KeyOutOfRange {
        /// Offending key position.
        key: usize,
        /// Keys in the batch.
        keys: usize,
    },
    /// Not enough points or shares to interpolate.
    #[error("need {need} points, got {got}")]
    TooFewPoints {
        /// Minimum needed.
        need: usize,
        /// Supplied.
        got: usize,
    },
    /// Inputs whose lengths disagree.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// Which input.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A dealer index that is not in the committee.
    #[error("unknown dealer {0}")]
    UnknownDealer(u32),
    /// Two messages from the same dealer in one batch.
    #[error("duplicate dealer {0}")]
    DuplicateDealer(u32),
    /// A commitment matrix that is not exactly k x k for every key (the
    /// threshold-raising attack), or whose slices have the wrong length.
    #[error("dealer {dealer}: malformed sharing: {reason}")]
    MalformedSharing {
        /// Dealer at fault.
        dealer: u32,
        /// What was wrong.
        reason: String,
    },
    /// A commitment that is the identity point.
    #[error("dealer {dealer}: identity commitment (key {key}, entry {entry})")]
    IdentityCommitment {
        /// Dealer at fault.
        dealer: u32,
        /// Key position in the batch.
        key: usize,
        /// Flat entry index j*k+l.
        entry: usize,
    },
    /// Row/column slices inconsistent with the dealer's commitments.
    #[error("inconsistent sends from dealers {:?}", culprit_nodes(.0))]
    InvalidSend(Vec<Culprit>),
    /// Echo/ready points inconsistent with the commitments or with our verified slices.
    #[error("invalid points from senders {:?}", culprit_nodes(.0))]
    InvalidPoints(Vec<Culprit>),
    /// Public key share proofs (or their binding to the commitment vector) that fail.
    #[error("invalid public key share proofs from {:?}", culprit_nodes(.0))]
    InvalidProof(Vec<Culprit>),
    /// Reshare sub-sharings whose secret does not match the old commitment vector.
    #[error("invalid reshare dealings from {:?}", culprit_nodes(.0))]
    InvalidReshare(Vec<Culprit>),
    /// Fewer good contributions than the threshold needs.
    #[error("only {got} qualified dealers, need {need}")]
    NotEnoughDealers {
        /// Needed.
        need: usize,
        /// Available.
        got: usize,
    },
    /// A malformed encoding.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
}

fn culprit_nodes(c: &[Culprit]) -> Vec<u32> {
    c.iter().map(|c| c.node).collect()
}

impl Error {
    /// The nodes this error blames (empty for errors that blame nobody). The
    /// match is exhaustive so that a new variant forces a decision on blame.
    pub fn culprits(&self) -> Vec<u32> {
        match self {
            Error::InvalidSend(c)
            | Error::InvalidPoints(c)
            | Error::InvalidProof(c)
            | Error::InvalidReshare(c) => culprit_nodes(c),
            Error::UnknownDealer(d) | Error::DuplicateDealer(d) => vec![*d],
            Error::MalformedSharing { dealer, .. } | Error::IdentityCommitment { dealer, .. } => {
                vec![*dealer]
            }
            Error::InvalidParams { .. }
            | Error::ZeroIndex
            | Error::DuplicateIndex(_)
            | Error::IndexOutOfRange { .. }
            | Error::KeyOutOfRange { .. }
            | Error::TooFewPoints { .. }
            | Error::LengthMismatch { .. }
            | Error::NotEnoughDealers { .. }
            | Error::Decode(_) => Vec::new(),
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;
