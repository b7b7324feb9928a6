//! The wire and WAL codec of the embedded engine.
//!
//! Every message malachite sends, gossips, syncs or writes to its WAL is a
//! compact binary record built with [`crate::codec`]: one version byte
//! ([`WIRE_VERSION`]), one kind byte (so bytes of one message type never
//! decode as another), then the fields big-endian. Counts and lengths are
//! bounded and checked against the bytes left before anything is allocated;
//! decoding never panics and rejects trailing bytes.
//!
//! Field encodings: a round is `0` (nil) or `1 ‖ u32`; a value id is 32
//! bytes; an address 20; a signature 65; `NilOrVal` is `0` or `1 ‖ id`; a
//! block is [`Block::encode`].

use bytes::Bytes;
use malachitebft_app_channel::app::consensus::LivenessMsg;
use malachitebft_app_channel::app::streaming::{StreamContent, StreamId, StreamMessage};
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, CommitSignature, NilOrVal, PolkaCertificate, PolkaSignature, Round,
    RoundCertificate, RoundCertificateType, RoundSignature, SignedMessage, Validity, VoteType,
};
use malachitebft_app_channel::app::types::sync::{RawDecidedValue, Request, Response, Status};
use malachitebft_app_channel::app::types::{PeerId, ProposedValue, SignedConsensusMsg};
use malachitebft_sync::{ValueRequest, ValueResponse};

mod messages;

use super::context::{
    Address, Block, Height, Proposal, ProposalInit, ProposalPart, Signature, TorusContext, ValueId,
    Vote,
};
use crate::codec::{CodecError, Reader, Writer};

/// Version byte that starts every record.
pub const WIRE_VERSION: u8 = 1;
/// Largest number of signatures in a certificate (the node list's own bound).
pub const MAX_SIGNATURES: u64 = crate::tx::MAX_NODES;
/// Largest proposal data chunk.
pub const MAX_CHUNK: u64 = 4 << 20;
/// Largest vote extension.
pub const MAX_EXTENSION: u64 = 1 << 20;
/// Largest stream id.
pub const MAX_STREAM_ID: u64 = 64;
/// Largest encoded peer id.
pub const MAX_PEER_ID: u64 = 64;
/// Largest raw decided value in a sync response.
pub const MAX_VALUE_BYTES: u64 = 256 << 20;

const K_PART: u8 = 1;
const K_SIGNED_MSG: u8 = 2;
const K_LIVENESS: u8 = 3;
const K_STREAM: u8 = 4;
const K_STATUS: u8 = 5;
const K_REQUEST: u8 = 6;
const K_RESPONSE: u8 = 7;
const K_PROPOSED: u8 = 8;
const K_CERT: u8 = 9;

/// Signed-message size: the shortest vote (type, height, nil round, nil value,
/// address, no extension) plus a signature; used to bound list counts.
const MIN_SIGNED_ITEM: usize = 20 + 65;

/// The codec instance handed to malachite (network, sync and WAL).
#[derive(Clone, Copy, Debug, Default)]
pub struct BftCodec;

fn header(kind: u8) -> Writer {
    let mut w = Writer::new();
    w.u8(WIRE_VERSION).u8(kind);
    w
}

fn open<'a>(bytes: &'a [u8], kind: u8, what: &'static str) -> Result<Reader<'a>, CodecError> {
    let mut r = Reader::new(bytes);
    r.version(what, WIRE_VERSION)?;
    let k = r.u8(what)?;
    if k != kind {
        return Err(CodecError::Tag { what, got: k });
    }
    Ok(r)
}

fn finish<T>(r: Reader<'_>, v: T) -> Result<T, CodecError> {
    r.end()?;
    Ok(v)
}

// ---- field writers (shared with `signing`, whose digests cover the same bytes) ----

pub(crate) fn put_round(w: &mut Writer, r: Round) {
    match r.as_u32() {
        None => w.u8(0),
        Some(v) => w.u8(1).u32(v),
    };
}

pub(crate) fn put_nil_or_val(w: &mut Writer, v: &NilOrVal<ValueId>) {
    match v {
        NilOrVal::Nil => w.u8(0),
        NilOrVal::Val(id) => w.u8(1).raw(&id.0),
    };
}

pub(crate) fn vote_type_byte(t: VoteType) -> u8 {
    match t {
        VoteType::Prevote => 0,
        VoteType::Precommit => 1,
    }
}

// ---- field readers ----

fn read_round(r: &mut Reader<'_>) -> Result<Round, CodecError> {
    match r.u8("round")? {
        0 => Ok(Round::Nil),
        1 => Ok(Round::new(r.u32("round")?)),
        t => Err(CodecError::Tag {
            what: "round",
            got: t,
        }),
    }
}

fn read_height(r: &mut Reader<'_>) -> Result<Height, CodecError> {
    Ok(Height(r.u64("height")?))
}

fn read_address(r: &mut Reader<'_>) -> Result<Address, CodecError> {
    Ok(Address(r.array("address")?))
}

fn read_value_id(r: &mut Reader<'_>) -> Result<ValueId, CodecError> {
    Ok(ValueId(r.array("value id")?))
}

fn read_sig(r: &mut Reader<'_>) -> Result<Signature, CodecError> {
    Ok(Signature(r.array("signature")?))
}

fn read_nil_or_val(r: &mut Reader<'_>) -> Result<NilOrVal<ValueId>, CodecError> {
    match r.u8("value")? {
        0 => Ok(NilOrVal::Nil),
        1 => Ok(NilOrVal::Val(read_value_id(r)?)),
        t => Err(CodecError::Tag {
            what: "value",
            got: t,
        }),
    }
}

fn read_vote_type(r: &mut Reader<'_>) -> Result<VoteType, CodecError> {
    match r.u8("vote type")? {
        0 => Ok(VoteType::Prevote),
        1 => Ok(VoteType::Precommit),
        t => Err(CodecError::Tag {
            what: "vote type",
            got: t,
        }),
    }
}

// ---- votes and proposals ----

fn write_vote(w: &mut Writer, v: &Vote) {
    w.u8(vote_type_byte(v.vote_type)).u64(v.height.0);
    put_round(w, v.round);
    put_nil_or_val(w, &v.value_id);
    w.raw(&v.validator_address.0);
    match &v.extension {
        None => {
            w.u8(0);
        }
        Some(ext) => {
            w.u8(1).bytes(&ext.message).raw(&ext.signature.0);
        }
    }
}

fn read_vote(r: &mut Reader<'_>) -> Result<Vote, CodecError> {
    let vote_type = read_vote_type(r)?;
    let height = read_height(r)?;
    let round = read_round(r)?;
    let value_id = read_nil_or_val(r)?;
    let validator_address = read_address(r)?;
    let extension = match r.u8("extension")? {
        0 => None,
        1 => {
            let msg = Bytes::copy_from_slice(r.bytes("extension", MAX_EXTENSION)?);
            Some(SignedMessage::new(msg, read_sig(r)?))
        }
        t => {
            return Err(CodecError::Tag {
                what: "extension",
                got: t,
            })
        }
    };
    Ok(Vote {
        vote_type,
        height,
        round,
        value_id,
        validator_address,
        extension,
    })
}

fn write_signed_vote(w: &mut Writer, v: &SignedMessage<TorusContext, Vote>) {
    write_vote(w, &v.message);
    w.raw(&v.signature.0);
}

fn read_signed_vote(r: &mut Reader<'_>) -> Result<SignedMessage<TorusContext, Vote>, CodecError> {
    let v = read_vote(r)?;
    Ok(SignedMessage::new(v, read_sig(r)?))
}

fn write_proposal(w: &mut Writer, p: &Proposal) {
    w.u64(p.height.0);
    put_round(w, p.round);
    put_round(w, p.pol_round);
    w.raw(&p.validator_address.0).raw(&p.value.encode());
}

fn read_proposal(r: &mut Reader<'_>) -> Result<Proposal, CodecError> {
    let height = read_height(r)?;
    let round = read_round(r)?;
    let pol_round = read_round(r)?;
    let validator_address = read_address(r)?;
    let value = Block::read(r)?;
    Ok(Proposal {
        height,
        round,
        value,
        pol_round,
        validator_address,
    })
}

// ---- proposal parts ----

/// Appends a proposal part (also what a part signature covers).
pub(crate) fn write_part(w: &mut Writer, p: &ProposalPart) {
    match p {
        ProposalPart::Init(i) => {
            w.u8(0).u64(i.height.0);
            put_round(w, i.round);
            put_round(w, i.pol_round);
            w.raw(&i.proposer.0);
        }
        ProposalPart::Data(d) => {
            w.u8(1).bytes(d);
        }
        ProposalPart::Fin(s) => {
            w.u8(2).raw(&s.0);
        }
    }
}

fn read_part(r: &mut Reader<'_>) -> Result<ProposalPart, CodecError> {
    match r.u8("part")? {
        0 => Ok(ProposalPart::Init(ProposalInit {
            height: read_height(r)?,
            round: read_round(r)?,
            pol_round: read_round(r)?,
            proposer: read_address(r)?,
        })),
        1 => Ok(ProposalPart::Data(Bytes::copy_from_slice(
            r.bytes("part data", MAX_CHUNK)?,
        ))),
        2 => Ok(ProposalPart::Fin(read_sig(r)?)),
        t => Err(CodecError::Tag {
            what: "part",
            got: t,
        }),
    }
}

/// A part's encoding without the record header (hashed into the `Fin`).
pub fn part_bytes(p: &ProposalPart) -> Vec<u8> {
    let mut w = Writer::new();
    write_part(&mut w, p);
    w.finish()
}

// ---- certificates ----

fn write_commit_cert(w: &mut Writer, c: &CommitCertificate<TorusContext>) {
    w.u64(c.height.0);
    put_round(w, c.round);
    w.raw(&c.value_id.0).count(c.commit_signatures.len());
    for s in &c.commit_signatures {
        w.raw(&s.address.0).raw(&s.signature.0);
    }
}

fn read_commit_cert(r: &mut Reader<'_>) -> Result<CommitCertificate<TorusContext>, CodecError> {
    let height = read_height(r)?;
    let round = read_round(r)?;
    let value_id = read_value_id(r)?;
    let n = r.count("commit signatures", MAX_SIGNATURES, MIN_SIGNED_ITEM)?;
    let mut commit_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        commit_signatures.push(CommitSignature::new(read_address(r)?, read_sig(r)?));
    }
    Ok(CommitCertificate {
        height,
        round,
        value_id,
        commit_signatures,
    })
}

/// Encodes a commit certificate on its own (the decided-block store).
pub fn encode_certificate(c: &CommitCertificate<TorusContext>) -> Vec<u8> {
    let mut w = header(K_CERT);
    write_commit_cert(&mut w, c);
    w.finish()
}

/// Decodes [`encode_certificate`]'s output.
pub fn decode_certificate(bytes: &[u8]) -> Result<CommitCertificate<TorusContext>, CodecError> {
    let mut r = open(bytes, K_CERT, "certificate")?;
    let c = read_commit_cert(&mut r)?;
    finish(r, c)
}

fn write_polka_cert(w: &mut Writer, c: &PolkaCertificate<TorusContext>) {
    w.u64(c.height.0);
    put_round(w, c.round);
    w.raw(&c.value_id.0).count(c.polka_signatures.len());
    for s in &c.polka_signatures {
        w.raw(&s.address.0).raw(&s.signature.0);
    }
}

fn read_polka_cert(r: &mut Reader<'_>) -> Result<PolkaCertificate<TorusContext>, CodecError> {
    let height = read_height(r)?;
    let round = read_round(r)?;
    let value_id = read_value_id(r)?;
    let n = r.count("polka signatures", MAX_SIGNATURES, MIN_SIGNED_ITEM)?;
    let mut polka_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        polka_signatures.push(PolkaSignature::new(read_address(r)?, read_sig(r)?));
    }
    Ok(PolkaCertificate {
        height,
        round,
        value_id,
        polka_signatures,
    })
}

fn write_round_cert(w: &mut Writer, c: &RoundCertificate<TorusContext>) {
    w.u64(c.height.0);
    put_round(w, c.round);
    w.u8(match c.cert_type {
        RoundCertificateType::Skip => 0,
        RoundCertificateType::Precommit => 1,
    });
    w.count(c.round_signatures.len());
    for s in &c.round_signatures {
        w.u8(vote_type_byte(s.vote_type));
        put_nil_or_val(w, &s.value_id);
        w.raw(&s.address.0).raw(&s.signature.0);
    }
}

fn read_round_cert(r: &mut Reader<'_>) -> Result<RoundCertificate<TorusContext>, CodecError> {
    let height = read_height(r)?;
    let round = read_round(r)?;
    let cert_type = match r.u8("certificate type")? {
        0 => RoundCertificateType::Skip,
        1 => RoundCertificateType::Precommit,
        t => {
            return Err(CodecError::Tag {
                what: "certificate type",
                got: t,
            })
        }
    };
    let n = r.count("round signatures", MAX_SIGNATURES, MIN_SIGNED_ITEM + 2)?;
    let mut round_signatures = Vec::with_capacity(n);
    for _ in 0..n {
        let vote_type = read_vote_type(r)?;
        let value_id = read_nil_or_val(r)?;
        let address = read_address(r)?;
        let signature = read_sig(r)?;
        round_signatures.push(RoundSignature::new(vote_type, value_id, address, signature));
    }
    Ok(RoundCertificate {
        height,
        round,
        cert_type,
        round_signatures,
    })
}

fn validity_byte(v: Validity) -> u8 {
    match v {
        Validity::Valid => 1,
        Validity::Invalid => 0,
    }
}

fn read_validity(r: &mut Reader<'_>) -> Result<Validity, CodecError> {
    match r.u8("validity")? {
        0 => Ok(Validity::Invalid),
        1 => Ok(Validity::Valid),
        t => Err(CodecError::Tag {
            what: "validity",
            got: t,
        }),
    }
}
