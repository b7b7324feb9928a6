//! Node-to-node messages: one message carries a whole batch (every key of a
//! dealer's send, echo or ready; every public key share of a node).
//!
//! Encoding: `version ‖ kind ‖ fields` with the bounded [`crate::codec`];
//! engine payloads (commitments, slices, points, public shares) are the
//! engine's own versioned wire encodings, decoded and validated by the
//! keygen layer. Every message is authenticated by the connection (noise,
//! keyed by the sender's node key); what must convince third parties (a
//! dealer's [`DealHeader`], a node's ready signature) carries its own signature.

use zeroize::Zeroizing;

use crate::codec::{CodecError, Reader, Writer};
use crate::tx::{BatchId, DealHeader, MAX_TX_BYTES};

/// Message format version.
pub const P2P_VERSION: u8 = 1;
/// Largest engine payload in one message.
pub const MAX_PAYLOAD: u64 = 256 << 20;

/// A dealer's send to one receiver.
#[derive(Clone, PartialEq, Eq)]
pub struct SendMsg {
    /// What the dealer signed.
    pub header: DealHeader,
    /// Engine-encoded commitment matrices of every key.
    pub commitments: Vec<u8>,
    /// Engine-encoded slice for the receiver (secret).
    pub slice: Zeroizing<Vec<u8>>,
}

/// An echo or a ready: the sender's points for the receiver, for one dealer.
#[derive(Clone, PartialEq, Eq)]
pub struct PointsMsg {
    /// The batch.
    pub batch: BatchId,
    /// The dealer whose sharing this is about.
    pub dealer: u32,
    /// The commitments digest the sender vouches for.
    pub digest: [u8; 32],
    /// Echo only: the dealer's header of the sender's own send (equivocation evidence).
    pub header: Option<DealHeader>,
    /// Ready only: the sender's signature over the ready digest.
    pub ready_sig: Option<[u8; 65]>,
    /// Engine-encoded points (secret).
    pub points: Zeroizing<Vec<u8>>,
}

/// What a node sends another.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A consensus transaction for the mempool.
    Tx(Vec<u8>),
    /// A dealer's send.
    Send(SendMsg),
    /// An echo.
    Echo(PointsMsg),
    /// A ready.
    Ready(PointsMsg),
    /// A node's public key shares with proofs for a batch (engine-encoded).
    PubShares {
        /// The batch.
        batch: BatchId,
        /// Engine-encoded public shares.
        shares: Vec<u8>,
    },
    /// Asks for a dealer's commitments (when echoes arrive before the send).
    FetchCommitments {
        /// The batch.
        batch: BatchId,
        /// Dealer.
        dealer: u32,
        /// Digest wanted.
        digest: [u8; 32],
    },
    /// A dealer's commitments, answering [`Message::FetchCommitments`] or a recovery.
    Commitments {
        /// The batch.
        batch: BatchId,
        /// Dealer.
        dealer: u32,
        /// Engine-encoded commitments.
        commitments: Vec<u8>,
    },
    /// "Send me again what you sent me for this batch" (after a restart).
    Resync {
        /// The batch.
        batch: BatchId,
    },
    /// Asks for recovery points of a batch whose dealer set is decided.
    RecoverRequest {
        /// The batch.
        batch: BatchId,
    },
    /// The sender's points of its aggregated slice for the requester, over the
    /// decided dealers of the batch (engine-encoded, secret).
    RecoverPoints {
        /// The batch.
        batch: BatchId,
        /// Engine-encoded points.
        points: Zeroizing<Vec<u8>>,
    },
    /// The sender's sum of the decided dealers' commitments of a batch, sent with
    /// its [`Message::RecoverPoints`] (engine-encoded, public): the requester trusts
    /// a sum once t+1 members sent it the same.
    RecoverCommitments {
        /// The batch.
        batch: BatchId,
        /// Engine-encoded summed commitments.
        commitments: Vec<u8>,
    },
    /// "I hold my shares of every batch of `epoch` that starts below `below`, and
    /// every block up to `height`", announced every few seconds. Once every member
    /// holds a batch, nobody needs to recover it from peers, and each node prunes
    /// its recovery material for it (aggregated slice, summed commitments, dealing
    /// seed); once every member committed a height, nobody needs to sync it, and
    /// decided blocks well below it are pruned. A member can only speak for itself,
    /// so a false claim costs only the liar its own recovery or sync.
    Held {
        /// The epoch.
        epoch: u64,
        /// Batches starting below this key index are held.
        below: u64,
        /// The sender's committed height.
        height: u64,
    },
    /// A fresh member of the next committee asks an old member for the old
    /// commitment vectors of a batch being reshared (`batch` is the resharing's).
    FetchVectors {
        /// The resharing batch.
        batch: BatchId,
    },
    /// The old commitment vectors of a batch being reshared, `key * k_old + j`,
    /// compressed points (public): the asker checks them against the hash the
    /// old epoch decided.
    Vectors {
        /// The resharing batch.
        batch: BatchId,
        /// Concatenated 33-byte points.
        vectors: Vec<u8>,
    },
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Payloads are secret or large: show the kind, the batch and sizes only.
        write!(f, "{}", self.kind())?;
        if let Some(b) = self.batch() {
            write!(f, "(keys {}..{})", b.start, b.end())?;
        }
        Ok(())
    }
}

impl Message {
    /// Short name (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Tx(_) => "tx",
            Message::Send(_) => "send",
            Message::Echo(_) => "echo",
            Message::Ready(_) => "ready",
            Message::PubShares { .. } => "pub_shares",
            Message::FetchCommitments { .. } => "fetch_commitments",
            Message::Commitments { .. } => "commitments",
            Message::Resync { .. } => "resync",
            Message::RecoverRequest { .. } => "recover_request",
            Message::RecoverPoints { .. } => "recover_points",
            Message::RecoverCommitments { .. } => "recover_commitments",
            Message::Held { .. } => "held",
            Message::FetchVectors { .. } => "fetch_vectors",
            Message::Vectors { .. } => "vectors",
        }
    }

    /// The batch a message belongs to (None for transactions and announcements).
    pub fn batch(&self) -> Option<BatchId> {
        match self {
            Message::Tx(_) | Message::Held { .. } => None,
            Message::Send(s) => Some(s.header.batch),
            Message::Echo(p) | Message::Ready(p) => Some(p.batch),
            Message::PubShares { batch, .. }
            | Message::FetchCommitments { batch, .. }
            | Message::Commitments { batch, .. }
            | Message::Resync { batch }
            | Message::RecoverRequest { batch }
            | Message::RecoverPoints { batch, .. }
            | Message::RecoverCommitments { batch, .. }
            | Message::FetchVectors { batch }
            | Message::Vectors { batch, .. } => Some(*batch),
        }
    }

    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(P2P_VERSION);
        match self {
            Message::Tx(tx) => {
                w.u8(1).bytes(tx);
            }
            Message::Send(s) => {
                w.u8(2);
                s.header.encode(&mut w);
                w.bytes(&s.commitments).bytes(&s.slice);
            }
            Message::Echo(p) => {
                w.u8(3);
                encode_points(&mut w, p);
            }
            Message::Ready(p) => {
                w.u8(4);
                encode_points(&mut w, p);
            }
            Message::PubShares { batch, shares } => {
                w.u8(5);
                batch.encode(&mut w);
                w.bytes(shares);
            }
            Message::FetchCommitments {
                batch,
                dealer,
                digest,
            } => {
                w.u8(6);
                batch.encode(&mut w);
                w.u32(*dealer).raw(digest);
            }
            Message::Commitments {
                batch,
                dealer,
                commitments,
            } => {
                w.u8(7);
                batch.encode(&mut w);
                w.u32(*dealer).bytes(commitments);
            }
            Message::Resync { batch } => {
                w.u8(8);
                batch.encode(&mut w);
            }
            Message::RecoverRequest { batch } => {
                w.u8(9);
                batch.encode(&mut w);
            }
            Message::RecoverPoints { batch, points } => {
                w.u8(10);
                batch.encode(&mut w);
                w.bytes(points);
            }
            Message::RecoverCommitments { batch, commitments } => {
                w.u8(11);
                batch.encode(&mut w);
                w.bytes(commitments);
            }
            Message::Held {
                epoch,
                below,
                height,
            } => {
                w.u8(12).u64(*epoch).u64(*below).u64(*height);
            }
            Message::FetchVectors { batch } => {
                w.u8(13);
                batch.encode(&mut w);
            }
            Message::Vectors { batch, vectors } => {
                w.u8(14);
                batch.encode(&mut w);
                w.bytes(vectors);
            }
        }
        w.finish()
    }

    /// Decodes exactly `bytes`; never panics, allocates only what the input holds.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        r.version("p2p message", P2P_VERSION)?;
        let m = match r.u8("message kind")? {
            1 => Message::Tx(r.bytes("tx", MAX_TX_BYTES as u64)?.to_vec()),
            2 => Message::Send(SendMsg {
                header: DealHeader::decode(&mut r)?,
                commitments: r.bytes("commitments", MAX_PAYLOAD)?.to_vec(),
                slice: Zeroizing::new(r.bytes("slice", MAX_PAYLOAD)?.to_vec()),
            }),
            3 => Message::Echo(decode_points(&mut r)?),
            4 => Message::Ready(decode_points(&mut r)?),
            5 => Message::PubShares {
                batch: BatchId::decode(&mut r)?,
                shares: r.bytes("public shares", MAX_PAYLOAD)?.to_vec(),
            },
            6 => Message::FetchCommitments {
                batch: BatchId::decode(&mut r)?,
                dealer: r.u32("dealer")?,
                digest: r.array("digest")?,
            },
            7 => Message::Commitments {
                batch: BatchId::decode(&mut r)?,
                dealer: r.u32("dealer")?,
                commitments: r.bytes("commitments", MAX_PAYLOAD)?.to_vec(),
            },
            8 => Message::Resync {
                batch: BatchId::decode(&mut r)?,
            },
            9 => Message::RecoverRequest {
                batch: BatchId::decode(&mut r)?,
            },
            10 => Message::RecoverPoints {
                batch: BatchId::decode(&mut r)?,
                points: Zeroizing::new(r.bytes("points", MAX_PAYLOAD)?.to_vec()),
            },
            11 => Message::RecoverCommitments {
                batch: BatchId::decode(&mut r)?,
                commitments: r.bytes("commitments", MAX_PAYLOAD)?.to_vec(),
            },
            12 => Message::Held {
                epoch: r.u64("epoch")?,
                below: r.u64("held below")?,
                height: r.u64("height")?,
            },
            13 => Message::FetchVectors {
                batch: BatchId::decode(&mut r)?,
            },
            14 => Message::Vectors {
                batch: BatchId::decode(&mut r)?,
                vectors: r.bytes("vectors", MAX_PAYLOAD)?.to_vec(),
            },
            got => {
                return Err(CodecError::Tag {
                    what: "p2p message",
                    got,
                })
            }
        };
        r.end()?;
        Ok(m)
    }
}

fn encode_points(w: &mut Writer, p: &PointsMsg) {
    p.batch.encode(w);
    w.u32(p.dealer).raw(&p.digest);
    match &p.header {
        None => {
            w.u8(0);
        }
        Some(h) => {
            w.u8(1);
            h.encode(w);
        }
    }
    match &p.ready_sig {
        None => w.u8(0),
        Some(s) => w.u8(1).raw(s),
    };
    w.bytes(&p.points);
}

fn decode_points(r: &mut Reader<'_>) -> Result<PointsMsg, CodecError> {
    let batch = BatchId::decode(r)?;
    let dealer = r.u32("dealer")?;
    let digest = r.array("digest")?;
    let header = match r.u8("header flag")? {
        0 => None,
        1 => Some(DealHeader::decode(r)?),
        _ => return Err(CodecError::Invalid("header flag")),
    };
    let ready_sig = match r.u8("ready flag")? {
        0 => None,
        1 => Some(r.array("ready signature")?),
        _ => return Err(CodecError::Invalid("ready flag")),
    };
    Ok(PointsMsg {
        batch,
        dealer,
        digest,
        header,
        ready_sig,
        points: Zeroizing::new(r.bytes("points", MAX_PAYLOAD)?.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::NodeKey;

    pub(crate) fn samples() -> Vec<Message> {
        let batch = BatchId {
            epoch: 1,
            start: 10,
            count: 4,
        };
        let header = DealHeader::sign(
            &NodeKey::from_bytes(&[3u8; 32]).unwrap(),
            batch,
            2,
            1,
            3,
            4,
            [1; 32],
            [2; 32],
        );
        let pm = PointsMsg {
            batch,
            dealer: 2,
            digest: [1; 32],
            header: Some(header.clone()),
            ready_sig: None,
            points: Zeroizing::new(vec![9; 40]),
        };
        vec![
            Message::Tx(vec![1, 2, 3]),
            Message::Send(SendMsg {
                header,
                commitments: vec![4; 50],
                slice: Zeroizing::new(vec![5; 60]),
            }),
            Message::Echo(pm.clone()),
            Message::Ready(PointsMsg {
                header: None,
                ready_sig: Some([7; 65]),
                ..pm
            }),
            Message::PubShares {
                batch,
                shares: vec![8; 10],
            },
            Message::FetchCommitments {
                batch,
                dealer: 3,
                digest: [6; 32],
            },
            Message::Commitments {
                batch,
                dealer: 3,
                commitments: vec![1; 5],
            },
            Message::Resync { batch },
            Message::RecoverRequest { batch },
            Message::RecoverPoints {
                batch,
                points: Zeroizing::new(vec![2; 7]),
            },
            Message::RecoverCommitments {
                batch,
                commitments: vec![3; 6],
            },
            Message::Held {
                epoch: 1,
                below: 4000,
                height: 77,
            },
            Message::FetchVectors { batch },
            Message::Vectors {
                batch,
                vectors: vec![2; 66],
            },
        ]
    }

    #[test]
    fn round_trip_truncation_and_trailing_bytes() {
        for m in samples() {
            let b = m.encode();
            assert_eq!(Message::decode(&b).unwrap(), m, "{m:?}");
            for cut in 0..b.len() {
                assert!(Message::decode(&b[..cut]).is_err(), "{m:?} cut at {cut}");
            }
            let mut long = b.clone();
            long.push(0);
            assert!(Message::decode(&long).is_err());
            let mut other = b.clone();
            other[0] = 2;
            assert!(Message::decode(&other).is_err(), "other version accepted");
        }
    }

    #[test]
    fn debug_shows_no_payload() {
        let m = Message::RecoverPoints {
            batch: BatchId {
                epoch: 1,
                start: 0,
                count: 2,
            },
            points: Zeroizing::new(vec![0xab; 8]),
        };
        assert_eq!(format!("{m:?}"), "recover_points(keys 0..2)");
    }
}
