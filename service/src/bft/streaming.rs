//! Proposal streams: splitting a block into signed parts and reassembling
//! the parts peers send.
//!
//! A stream is `Init`, one or more `Data` chunks of the block's encoded
//! transaction list, and `Fin`, sent as stream messages `0..n-1` followed by
//! the stream's end marker at `n`. The `Fin` signs
//! [`fin_digest`]`(height, round, proposer, parts_hash)` where `parts_hash`
//! is keccak256 of the `Init` and `Data` parts' encodings in order, so the
//! receiver checks the whole block against the proposer's key at once.
//!
//! Reassembly is bounded: at most [`MAX_STREAMS`] open streams (the oldest
//! is dropped), at most [`MAX_PARTS`] messages and `max_bytes` of data per
//! stream; a stream that breaks a bound is dropped whole.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::core::Round;
use malachitebft_app_channel::app::types::PeerId;

use super::codec::{part_bytes, write_part};
use super::context::{decode_txs, encode_txs, Block, Height, ProposalInit, ProposalPart};
use super::signing::{fin_digest, Signature, Signer};
use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::NodePub;
use crate::hexfmt::keccak256;

/// Most open (incomplete) streams kept at once.
pub const MAX_STREAMS: usize = 64;
/// Most messages in one stream.
pub const MAX_PARTS: u64 = 4096;
/// Size of a `Data` chunk.
pub const CHUNK_BYTES: usize = 256 << 10;

/// keccak256 of the `Init` and `Data` parts' encodings, in order.
pub fn parts_hash<'a>(parts: impl IntoIterator<Item = &'a ProposalPart>) -> [u8; 32] {
    let mut w = Writer::new();
    for p in parts {
        write_part(&mut w, p);
    }
    keccak256(&w.finish())
}

/// The parts of `block` proposed by `signer` at `round` (`pol_round` for a
/// re-proposal), ending with the signed `Fin`.
pub fn build_parts(
    signer: &Signer,
    block: &Block,
    round: Round,
    pol_round: Round,
) -> Vec<ProposalPart> {
    let init = ProposalInit {
        height: Height(block.height()),
        round,
        pol_round,
        proposer: signer.address(),
    };
    let mut w = Writer::new();
    encode_txs(&mut w, block.txs());
    let body = Bytes::from(w.finish());
    let mut parts = vec![ProposalPart::Init(init.clone())];
    let mut off = 0;
    while off < body.len() {
        let end = (off + CHUNK_BYTES).min(body.len());
        parts.push(ProposalPart::Data(body.slice(off..end)));
        off = end;
    }
    let h = parts_hash(&parts);
    let sig = signer.sign(&fin_digest(
        signer.chain(),
        init.height,
        round,
        &init.proposer,
        &h,
    ));
    parts.push(ProposalPart::Fin(sig));
    parts
}

/// Wraps parts as the messages of stream `id`: data `0..n-1`, then the end.
pub fn stream_messages(id: StreamId, parts: &[ProposalPart]) -> Vec<StreamMessage<ProposalPart>> {
    let mut out: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| StreamMessage::new(id.clone(), i as u64, StreamContent::Data(p.clone())))
        .collect();
    out.push(StreamMessage::new(
        id,
        parts.len() as u64,
        StreamContent::Fin,
    ));
    out
}

/// A stream id unique per sender: `height ‖ round ‖ counter`.
pub fn stream_id(height: Height, round: Round, counter: u32) -> StreamId {
    let mut w = Writer::new();
    w.u64(height.0)
        .u32(round.as_u32().unwrap_or(u32::MAX))
        .u32(counter);
    StreamId::new(w.finish().into())
}

/// A complete proposal as reassembled from its parts.
#[derive(Clone, Debug)]
pub struct Assembled {
    /// The header.
    pub init: ProposalInit,
    /// The block.
    pub block: Block,
    /// The proposer's signature.
    pub fin: Signature,
    /// Hash the `Fin` signs.
    pub parts_hash: [u8; 32],
    /// The parts as received (re-streamed verbatim when asked).
    pub parts: Vec<ProposalPart>,
}

/// Why a complete stream is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssembleError {
    /// Parts out of shape (no `Init` first, no `Fin` last, or a stray part).
    #[error("malformed stream: {0}")]
    Shape(&'static str),
    /// The data does not decode as a transaction list.
    #[error("data: {0}")]
    Data(#[from] CodecError),
}

impl Assembled {
    /// Checks the shape and decodes the block (no signature check yet).
    pub fn from_parts(parts: Vec<ProposalPart>) -> Result<Self, AssembleError> {
        let (Some(ProposalPart::Init(init)), Some(ProposalPart::Fin(fin))) =
            (parts.first(), parts.last())
        else {
            return Err(AssembleError::Shape(
                "must start with Init and end with Fin",
            ));
        };
        let (init, fin) = (init.clone(), *fin);
        let body = parts.get(1..parts.len() - 1).unwrap_or(&[]);
        let mut data = Vec::new();
        for p in body {
            match p {
                ProposalPart::Data(d) => data.extend_from_slice(d),
                _ => return Err(AssembleError::Shape("Init or Fin in the middle")),
            }
        }
        let mut r = Reader::new(&data);
        let txs = decode_txs(&mut r)?;
        r.end()?;
        let h = parts_hash(parts.get(..parts.len() - 1).unwrap_or(&[]));
        Ok(Assembled {
            block: Block::new(init.height.0, txs),
            init,
            fin,
            parts_hash: h,
            parts,
        })
    }

    /// Whether the `Fin` is `pk`'s signature (on network `chain`).
    pub fn verify(&self, chain: &[u8; 32], pk: &NodePub) -> bool {
        let d = fin_digest(
            chain,
            self.init.height,
            self.init.round,
            &self.init.proposer,
            &self.parts_hash,
        );
        Signer::verify(&d, &self.fin, pk)
    }
}

struct Partial {
    parts: BTreeMap<u64, ProposalPart>,
    end: Option<u64>,
    bytes: usize,
}

/// Open streams, keyed by (sender, stream id).
pub struct PartStreams {
    open: BTreeMap<(PeerId, StreamId), Partial>,
    age: VecDeque<(PeerId, StreamId)>,
    /// Recently dropped streams, whose later messages are ignored.
    dropped: VecDeque<(PeerId, StreamId)>,
    max_bytes: usize,
}

impl std::fmt::Debug for PartStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartStreams")
            .field("open", &self.open.len())
            .finish()
    }
}

impl PartStreams {
    /// Streams of at most `max_bytes` of parts each.
    pub fn new(max_bytes: usize) -> Self {
        PartStreams {
            open: BTreeMap::new(),
            age: VecDeque::new(),
            dropped: VecDeque::new(),
            max_bytes,
        }
    }

    /// Number of open streams.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no stream is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    fn drop_stream(&mut self, key: &(PeerId, StreamId)) {
        self.open.remove(key);
        self.age.retain(|k| k != key);
        if !self.dropped.contains(key) {
            if self.dropped.len() >= MAX_STREAMS {
                self.dropped.pop_front();
            }
            self.dropped.push_back(key.clone());
        }
    }

    /// Adds a message; returns the stream's parts in order once it is complete.
    pub fn insert(
        &mut self,
        from: PeerId,
        msg: StreamMessage<ProposalPart>,
    ) -> Option<Vec<ProposalPart>> {
        let key = (from, msg.stream_id.clone());
        if self.dropped.contains(&key) {
            return None;
        }
        if msg.sequence >= MAX_PARTS {
            self.drop_stream(&key);
            return None;
        }
        if !self.open.contains_key(&key) {
            while self.open.len() >= MAX_STREAMS {
                let Some(old) = self.age.pop_front() else {
                    break;
                };
                self.open.remove(&old);
            }
            self.open.insert(
                key.clone(),
                Partial {
                    parts: BTreeMap::new(),
                    end: None,
                    bytes: 0,
                },
            );
            self.age.push_back(key.clone());
        }
        let max = self.max_bytes;
        let partial = self.open.get_mut(&key)?;
        let mut broken = false;
        match msg.content {
            StreamContent::Fin => {
                if partial.end.is_some_and(|e| e != msg.sequence)
                    || partial
                        .parts
                        .keys()
                        .next_back()
                        .is_some_and(|&k| k >= msg.sequence)
                {
                    broken = true;
                }
                partial.end = Some(msg.sequence);
            }
            StreamContent::Data(part) => {
                if partial.end.is_some_and(|e| msg.sequence >= e) {
                    broken = true;
                }
                let len = part_bytes(&part).len();
                if partial.parts.insert(msg.sequence, part).is_none() {
                    partial.bytes = partial.bytes.saturating_add(len);
                }
                if partial.bytes > max {
                    broken = true;
                }
            }
        }
        if broken {
            tracing::debug!(peer = %key.0, stream = %key.1, "dropping malformed or oversized proposal stream");
            self.drop_stream(&key);
            return None;
        }
        let complete = partial.end.is_some_and(|e| partial.parts.len() as u64 == e);
        if !complete {
            return None;
        }
        let done = self.open.remove(&key)?;
        self.age.retain(|k| k != &key);
        Some(done.parts.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bft::signing::chain_hash;
    use crate::crypto::NodeKey;

    fn signer() -> (Signer, NodePub) {
        let k = Arc::new(NodeKey::random());
        let pk = k.public();
        (Signer::new(k, chain_hash("t", b"g")), pk)
    }

    #[test]
    fn parts_round_trip_in_any_order_and_verify() {
        let (s, pk) = signer();
        // A block larger than one chunk, with a tx spanning chunk borders.
        let txs = vec![vec![1u8; 10], vec![2u8; CHUNK_BYTES + 17], vec![]];
        let block = Block::new(5, txs);
        let parts = build_parts(&s, &block, Round::new(1), Round::Nil);
        assert!(parts.len() >= 4);
        let mut msgs = stream_messages(stream_id(Height(5), Round::new(1), 0), &parts);
        msgs.reverse();
        let peer = PeerId::from_bytes(&[0, 4, 1, 2, 3, 4]).unwrap();
        let mut streams = PartStreams::new(1 << 24);
        let mut out = None;
        for m in msgs {
            assert!(out.is_none(), "completed before the last message");
            out = streams.insert(peer, m);
        }
        let a = Assembled::from_parts(out.expect("complete")).unwrap();
        assert_eq!(a.block, block);
        assert_eq!(a.init.round, Round::new(1));
        assert!(a.verify(s.chain(), &pk));
        assert!(!a.verify(s.chain(), &NodeKey::random().public()));
        assert!(streams.is_empty());
    }

    #[test]
    fn tampered_data_fails_the_signature() {
        let (s, pk) = signer();
        let block = Block::new(3, vec![b"abc".to_vec(), b"def".to_vec()]);
        let mut parts = build_parts(&s, &block, Round::new(0), Round::Nil);
        let mut w = Writer::new();
        encode_txs(&mut w, &[b"abc".to_vec(), b"deg".to_vec()]);
        parts[1] = ProposalPart::Data(w.finish().into());
        let a = Assembled::from_parts(parts).unwrap();
        assert!(!a.verify(s.chain(), &pk));
    }

    #[test]
    fn oversized_and_malformed_streams_are_dropped() {
        let (s, _) = signer();
        let block = Block::new(3, vec![vec![7u8; 5000]]);
        let parts = build_parts(&s, &block, Round::new(0), Round::Nil);
        let peer = PeerId::from_bytes(&[0, 4, 1, 2, 3, 4]).unwrap();
        let mut streams = PartStreams::new(1000);
        let mut done = None;
        for m in stream_messages(stream_id(Height(3), Round::new(0), 0), &parts) {
            done = done.or(streams.insert(peer, m));
        }
        assert!(done.is_none());
        // A Fin without Init is refused by the assembler.
        let bad = vec![parts[1].clone(), parts[2].clone()];
        assert!(Assembled::from_parts(bad).is_err());
        // A sequence past the bound drops the stream.
        let m = StreamMessage::new(
            stream_id(Height(3), Round::new(0), 1),
            MAX_PARTS,
            StreamContent::Fin,
        );
        assert!(streams.insert(peer, m).is_none());
        assert!(streams.is_empty());
    }

    #[test]
    fn open_streams_are_bounded() {
        let peer = PeerId::from_bytes(&[0, 4, 1, 2, 3, 4]).unwrap();
        let mut streams = PartStreams::new(1 << 20);
        for i in 0..(MAX_STREAMS as u32 + 10) {
            let m = StreamMessage::new(
                stream_id(Height(1), Round::new(0), i),
                0,
                StreamContent::Data(ProposalPart::Data(Bytes::from_static(b"x"))),
            );
            assert!(streams.insert(peer, m).is_none());
        }
        assert_eq!(streams.len(), MAX_STREAMS);
    }
}
