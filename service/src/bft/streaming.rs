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
//! Reassembly is bounded per peer, so one peer cannot evict another's stream:
//! streams come only from the committee's peers when the set is given
//! ([`PartStreams::for_peers`]); each peer has at most [`MAX_STREAMS_PER_PEER`]
//! open streams (a new one drops that peer's oldest); over all peers at most
//! [`MAX_STREAMS`] (a new one drops the oldest stream of the peer holding the
//! most, never one of a peer holding fewer than the newcomer); at most
//! [`MAX_PARTS`] messages and `max_bytes` of data per stream. A stream that
//! breaks a bound is dropped whole.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
/// Most open streams of one peer (a proposer streams one value per round; a
/// validator may re-stream another's).
pub const MAX_STREAMS_PER_PEER: usize = 4;
/// Most messages in one stream.
pub const MAX_PARTS: u64 = 4096;
/// Size of a `Data` chunk.
pub const CHUNK_BYTES: usize = 256 << 10;

/// The consensus peer ids of a validator set's members (their libp2p identity
/// is their node key, see [`super::peer_id`]); a key libp2p refuses is skipped.
pub fn committee_peers(vs: &super::ValidatorSet) -> Vec<PeerId> {
    vs.validators()
        .iter()
        .filter_map(|v| super::peer_id(&v.public_key).ok())
        .filter_map(|p| PeerId::from_bytes(&p.to_bytes()).ok())
        .collect()
}

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
    /// The only peers whose streams are taken (None: any peer).
    peers: Option<BTreeSet<PeerId>>,
    /// Messages ignored because their sender is not one of `peers`.
    refused: u64,
}

impl std::fmt::Debug for PartStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartStreams")
            .field("open", &self.open.len())
            .finish()
    }
}

impl PartStreams {
    /// Streams of at most `max_bytes` of parts each, from any peer.
    pub fn new(max_bytes: usize) -> Self {
        PartStreams {
            open: BTreeMap::new(),
            age: VecDeque::new(),
            dropped: VecDeque::new(),
            max_bytes,
            peers: None,
            refused: 0,
        }
    }

    /// Streams of at most `max_bytes` each, only from `peers` (the committee's
    /// consensus peer ids): parts from anyone else are ignored.
    pub fn for_peers(max_bytes: usize, peers: impl IntoIterator<Item = PeerId>) -> Self {
        PartStreams {
            peers: Some(peers.into_iter().collect()),
            ..PartStreams::new(max_bytes)
        }
    }

    /// Messages ignored so far because their sender is not a committee peer.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Open streams of `peer`.
    pub fn open_of(&self, peer: &PeerId) -> usize {
        self.age.iter().filter(|(p, _)| p == peer).count()
    }

    /// Makes room for a new stream of `from`: drops `from`'s oldest stream when it
    /// holds its cap; when every slot is taken, drops the oldest stream of the
    /// peer holding the most, unless `from` already holds as many (then the new
    /// stream is refused: false).
    fn make_room(&mut self, from: &PeerId) -> bool {
        if self.open_of(from) >= MAX_STREAMS_PER_PEER {
            if let Some(old) = self.age.iter().find(|(p, _)| p == from).cloned() {
                self.forget(&old);
            }
        }
        while self.open.len() >= MAX_STREAMS {
            let mut counts: BTreeMap<PeerId, usize> = BTreeMap::new();
            for (p, _) in &self.age {
                *counts.entry(*p).or_default() += 1;
            }
            let mine = counts.get(from).copied().unwrap_or(0);
            let Some((top, most)) = counts
                .iter()
                .max_by_key(|(_, c)| **c)
                .map(|(p, c)| (*p, *c))
            else {
                break;
            };
            if most <= mine {
                return false;
            }
            if let Some(old) = self.age.iter().find(|(p, _)| *p == top).cloned() {
                self.forget(&old);
            } else {
                break;
            }
        }
        true
    }

    fn forget(&mut self, key: &(PeerId, StreamId)) {
        self.open.remove(key);
        self.age.retain(|k| k != key);
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
        if self.peers.as_ref().is_some_and(|p| !p.contains(&from)) {
            self.refused = self.refused.saturating_add(1);
            tracing::debug!(peer = %from, "proposal part from a peer outside the committee; ignored");
            return None;
        }
        let key = (from, msg.stream_id.clone());
        if self.dropped.contains(&key) {
            return None;
        }
        if msg.sequence >= MAX_PARTS {
            self.drop_stream(&key);
            return None;
        }
        if !self.open.contains_key(&key) {
            if !self.make_room(&from) {
                tracing::debug!(peer = %from, "proposal stream refused: every slot is taken");
                return None;
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

    fn peer_n(i: u32) -> PeerId {
        let b = i.to_be_bytes();
        PeerId::from_bytes(&[0, 4, b[0], b[1], b[2], b[3]]).unwrap()
    }

    fn junk(i: u32) -> StreamMessage<ProposalPart> {
        StreamMessage::new(
            stream_id(Height(1), Round::new(0), i),
            0,
            StreamContent::Data(ProposalPart::Data(Bytes::from_static(b"x"))),
        )
    }

    #[test]
    fn open_streams_are_bounded() {
        let peer = peer_n(1);
        let mut streams = PartStreams::new(1 << 20);
        for i in 0..(MAX_STREAMS as u32 + 10) {
            assert!(streams.insert(peer, junk(i)).is_none());
        }
        assert_eq!(streams.len(), MAX_STREAMS_PER_PEER);
        // Many peers: never more than MAX_STREAMS in all.
        for p in 0..100 {
            for i in 0..3 {
                streams.insert(peer_n(100 + p), junk(i));
            }
        }
        assert_eq!(streams.len(), MAX_STREAMS);
    }

    #[test]
    fn a_flood_of_streams_from_one_peer_does_not_evict_the_proposers_stream() {
        let (s, pk) = signer();
        let block = Block::new(2, vec![vec![1u8; 100]]);
        let parts = build_parts(&s, &block, Round::new(0), Round::Nil);
        let mut msgs = stream_messages(stream_id(Height(2), Round::new(0), 0), &parts);
        let last = msgs.pop().unwrap();
        let (proposer, flooder) = (peer_n(1), peer_n(2));
        let mut streams = PartStreams::new(1 << 20);
        for m in msgs {
            assert!(streams.insert(proposer, m).is_none());
        }
        for i in 0..10_000 {
            streams.insert(flooder, junk(i));
        }
        assert_eq!(streams.open_of(&flooder), MAX_STREAMS_PER_PEER);
        let done = streams
            .insert(proposer, last)
            .expect("the proposer's stream survived");
        assert!(Assembled::from_parts(done).unwrap().verify(s.chain(), &pk));
    }

    #[test]
    fn when_every_slot_is_taken_the_largest_holder_gives_way() {
        let mut streams = PartStreams::new(1 << 20);
        let big = peer_n(1);
        for i in 0..MAX_STREAMS_PER_PEER as u32 {
            streams.insert(big, junk(i));
        }
        let mut p = 10;
        while streams.len() < MAX_STREAMS {
            streams.insert(peer_n(p), junk(0));
            p += 1;
        }
        // A newcomer takes a slot from the peer holding the most...
        let newcomer = peer_n(5000);
        streams.insert(newcomer, junk(0));
        assert_eq!(streams.open_of(&newcomer), 1);
        assert_eq!(streams.open_of(&big), MAX_STREAMS_PER_PEER - 1);
        assert_eq!(streams.len(), MAX_STREAMS);
        // ...but a peer already holding as many as anyone gets nothing more.
        while streams.open_of(&big) > 1 {
            streams.insert(peer_n(p), junk(0));
            p += 1;
        }
        let before = streams.len();
        streams.insert(newcomer, junk(1));
        assert_eq!(streams.open_of(&newcomer), 1);
        assert_eq!(streams.len(), before);
    }

    #[test]
    fn parts_from_outside_the_committee_are_ignored() {
        let (s, _) = signer();
        let block = Block::new(2, vec![vec![1u8; 10]]);
        let parts = build_parts(&s, &block, Round::new(0), Round::Nil);
        let (member, outsider) = (peer_n(1), peer_n(2));
        let mut streams = PartStreams::for_peers(1 << 20, [member]);
        let mut out = None;
        for m in stream_messages(stream_id(Height(2), Round::new(0), 0), &parts) {
            out = out.or(streams.insert(outsider, m));
        }
        assert!(out.is_none());
        assert!(streams.is_empty());
        assert_eq!(streams.refused(), parts.len() as u64 + 1);
        for m in stream_messages(stream_id(Height(2), Round::new(0), 0), &parts) {
            out = out.or(streams.insert(member, m));
        }
        assert!(out.is_some());
    }

    #[test]
    fn committee_peers_are_the_validators_consensus_peer_ids() {
        let (_, epoch) = crate::tx::EpochInfo::random_for_tests(4);
        let vs = crate::bft::ValidatorSet::from_epoch(&epoch).unwrap();
        let peers = committee_peers(&vs);
        assert_eq!(peers.len(), 4);
        for n in &epoch.nodes {
            let pk = NodePub::from_sec1(&n.pubkey).unwrap();
            let id = crate::bft::peer_id(&pk).unwrap();
            assert!(peers.contains(&PeerId::from_bytes(&id.to_bytes()).unwrap()));
        }
    }
}
