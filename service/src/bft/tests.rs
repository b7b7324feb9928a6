//! Codec round trips and hostile input for every message malachite exchanges.

use std::sync::Arc;

use bytes::Bytes;
use malachitebft_app_channel::app::consensus::LivenessMsg;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamMessage};
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, NilOrVal, PolkaCertificate, PolkaSignature, Round,
    RoundCertificate, RoundCertificateType, RoundSignature, SignedMessage, SigningProvider,
    Validity, VoteType,
};
use malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use malachitebft_app_channel::app::types::{PeerId, ProposedValue, SignedConsensusMsg};
use malachitebft_sync::{ValueRequest, ValueResponse};
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::codec::{decode_certificate, encode_certificate, BftCodec};
use super::context::*;
use super::signing::{chain_hash, Signer};
use super::streaming::{build_parts, stream_id, stream_messages};
use crate::crypto::NodeKey;

fn signer() -> Signer {
    Signer::new(Arc::new(NodeKey::random()), chain_hash("t", b"g"))
}

fn block() -> Block {
    Block::new(9, vec![b"one".to_vec(), vec![], vec![0xff; 300]])
}

fn vote(
    s: &Signer,
    t: VoteType,
    v: NilOrVal<ValueId>,
    ext: bool,
) -> SignedMessage<TorusContext, Vote> {
    let mut vote = Vote {
        vote_type: t,
        height: Height(9),
        round: Round::new(3),
        value_id: v,
        validator_address: s.address(),
        extension: None,
    };
    if ext {
        vote.extension = Some(s.sign_vote_extension(Bytes::from_static(b"ext")));
    }
    s.sign_vote(vote)
}

fn cert(s: &Signer) -> CommitCertificate<TorusContext> {
    let sv = vote(s, VoteType::Precommit, NilOrVal::Val(block().id()), false);
    CommitCertificate {
        height: Height(9),
        round: Round::new(3),
        value_id: block().id(),
        commit_signatures: vec![CommitSignature::new(s.address(), sv.signature); 3],
    }
}

fn peer() -> PeerId {
    let k = crate::bft::peer_id(&NodeKey::random().public()).unwrap();
    PeerId::from_bytes(&k.to_bytes()).unwrap()
}

/// Encodes, decodes, compares, and returns the encoding.
fn round_trip<T>(v: &T) -> Vec<u8>
where
    T: PartialEq + std::fmt::Debug,
    BftCodec: Codec<T>,
{
    let c = BftCodec;
    let bytes = c.encode(v).unwrap();
    let back: T = c.decode(bytes.clone()).unwrap();
    assert_eq!(&back, v);
    bytes.to_vec()
}

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let s = signer();
    let b = block();
    let mut out = Vec::new();
    for p in build_parts(&s, &b, Round::new(1), Round::new(0)) {
        out.push(("part", round_trip(&p)));
    }
    for m in stream_messages(
        stream_id(Height(9), Round::new(1), 7),
        &build_parts(&s, &b, Round::new(1), Round::Nil),
    ) {
        out.push(("stream", round_trip(&m)));
    }
    let fin: StreamMessage<ProposalPart> =
        StreamMessage::new(stream_id(Height(1), Round::Nil, 0), 4, StreamContent::Fin);
    out.push(("stream", round_trip(&fin)));
    for (t, v, e) in [
        (VoteType::Prevote, NilOrVal::Nil, false),
        (VoteType::Precommit, NilOrVal::Val(b.id()), true),
    ] {
        let sv = vote(&s, t, v, e);
        out.push((
            "signed vote",
            round_trip(&SignedConsensusMsg::Vote(sv.clone())),
        ));
        out.push(("liveness vote", round_trip(&LivenessMsg::Vote(sv))));
    }
    let proposal = Proposal {
        height: Height(9),
        round: Round::new(1),
        value: b.clone(),
        pol_round: Round::Nil,
        validator_address: s.address(),
    };
    out.push((
        "signed proposal",
        round_trip(&SignedConsensusMsg::Proposal(s.sign_proposal(proposal))),
    ));
    let pv = vote(&s, VoteType::Prevote, NilOrVal::Val(b.id()), false);
    out.push((
        "polka",
        round_trip(&LivenessMsg::PolkaCertificate(PolkaCertificate {
            height: Height(9),
            round: Round::new(3),
            value_id: b.id(),
            polka_signatures: vec![PolkaSignature::new(s.address(), pv.signature)],
        })),
    ));
    for ct in [RoundCertificateType::Skip, RoundCertificateType::Precommit] {
        out.push((
            "round cert",
            round_trip(&LivenessMsg::SkipRoundCertificate(RoundCertificate {
                height: Height(9),
                round: Round::new(3),
                cert_type: ct,
                round_signatures: vec![
                    RoundSignature::new(
                        VoteType::Prevote,
                        NilOrVal::Nil,
                        s.address(),
                        pv.signature,
                    ),
                    RoundSignature::new(
                        VoteType::Precommit,
                        NilOrVal::Val(b.id()),
                        s.address(),
                        pv.signature,
                    ),
                ],
            })),
        ));
    }
    out.push((
        "status",
        round_trip(&Status::<TorusContext> {
            peer_id: peer(),
            tip_height: Height(100),
            history_min_height: Height(1),
        }),
    ));
    out.push((
        "request",
        round_trip(&Request::<TorusContext>::ValueRequest(ValueRequest::new(
            Height(42),
        ))),
    ));
    for value in [
        None,
        Some(RawDecidedValue::new(b.encode().into(), cert(&s))),
    ] {
        out.push((
            "response",
            round_trip(&Response::<TorusContext>::ValueResponse(
                ValueResponse::new(Height(9), value),
            )),
        ));
    }
    for validity in [Validity::Valid, Validity::Invalid] {
        out.push((
            "proposed value",
            round_trip(&ProposedValue::<TorusContext> {
                height: Height(9),
                round: Round::new(2),
                valid_round: Round::new(1),
                proposer: s.address(),
                value: b.clone(),
                validity,
            }),
        ));
    }
    out
}

#[test]
fn every_message_round_trips() {
    let s = samples();
    assert!(s.len() > 15);
    let b = block();
    assert_eq!(Block::decode(&b.encode()).unwrap(), b);
    assert_eq!(b.size(), b.encode().len());
    let c = cert(&signer());
    assert_eq!(decode_certificate(&encode_certificate(&c)).unwrap(), c);
}

#[test]
fn block_ids_bind_height_and_every_byte() {
    let a = Block::new(1, vec![b"ab".to_vec()]);
    assert_ne!(a.id(), Block::new(2, vec![b"ab".to_vec()]).id());
    assert_ne!(
        a.id(),
        Block::new(1, vec![b"a".to_vec(), b"b".to_vec()]).id()
    );
    assert_ne!(a.id(), Block::new(1, vec![b"ac".to_vec()]).id());
    assert_eq!(a.id(), Block::new(1, vec![b"ab".to_vec()]).id());
}

/// Decodes `bytes` as every wire record type; how many accept it.
fn decode_wire(bytes: &[u8]) -> usize {
    let c = BftCodec;
    let b = Bytes::copy_from_slice(bytes);
    let ok = [
        Codec::<ProposalPart>::decode(&c, b.clone()).is_ok(),
        Codec::<SignedConsensusMsg<TorusContext>>::decode(&c, b.clone()).is_ok(),
        Codec::<LivenessMsg<TorusContext>>::decode(&c, b.clone()).is_ok(),
        Codec::<StreamMessage<ProposalPart>>::decode(&c, b.clone()).is_ok(),
        Codec::<Status<TorusContext>>::decode(&c, b.clone()).is_ok(),
        Codec::<Request<TorusContext>>::decode(&c, b.clone()).is_ok(),
        Codec::<Response<TorusContext>>::decode(&c, b.clone()).is_ok(),
        Codec::<ProposedValue<TorusContext>>::decode(&c, b.clone()).is_ok(),
        decode_certificate(bytes).is_ok(),
    ];
    ok.iter().filter(|x| **x).count()
}

/// As [`decode_wire`], plus the block encoding.
fn decode_all(bytes: &[u8]) -> usize {
    decode_wire(bytes) + usize::from(Block::decode(bytes).is_ok())
}

#[test]
fn truncations_and_extensions_are_rejected_without_panicking() {
    for (what, enc) in samples() {
        // Exactly one type accepts a valid encoding (kinds are separated).
        assert_eq!(decode_wire(&enc), 1, "{what}");
        for cut in 0..enc.len() {
            assert_eq!(decode_wire(&enc[..cut]), 0, "{what} truncated at {cut}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert_eq!(decode_wire(&longer), 0, "{what} with a trailing byte");
        let mut wrong_version = enc.clone();
        wrong_version[0] ^= 0xff;
        assert_eq!(
            decode_wire(&wrong_version),
            0,
            "{what} with another version"
        );
    }
}

#[test]
fn random_and_mutated_bytes_never_panic() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let samples = samples();
    for i in 0..3000 {
        let mut buf = if i % 2 == 0 {
            let mut b = vec![0u8; (rng.next_u32() % 400) as usize];
            rng.fill_bytes(&mut b);
            if b.len() >= 2 {
                // Valid header, random body: exercises the field decoders.
                b[0] = super::codec::WIRE_VERSION;
                b[1] = (rng.next_u32() % 10) as u8;
            }
            b
        } else {
            samples[(rng.next_u32() as usize) % samples.len()].1.clone()
        };
        if !buf.is_empty() {
            for _ in 0..1 + rng.next_u32() % 4 {
                let at = (rng.next_u32() as usize) % buf.len();
                buf[at] = rng.next_u32() as u8;
            }
        }
        decode_all(&buf);
    }
    // Huge counts and lengths are refused before allocating.
    let mut w = crate::codec::Writer::new();
    w.u8(super::codec::WIRE_VERSION)
        .u8(7)
        .u8(0)
        .u64(1)
        .u8(1)
        .u32(u32::MAX);
    assert_eq!(decode_wire(&w.finish()), 0);
    let mut w = crate::codec::Writer::new();
    w.u8(super::context::BLOCK_VERSION).u64(1).u32(u32::MAX);
    assert!(Block::decode(&w.finish()).is_err());
}
