//! malachite's codec traits for every message type, over the record writers and
//! readers of [`super`].

#[allow(clippy::wildcard_imports)]
use super::*;

// ---- malachite's codec traits ----

impl Codec<ProposalPart> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ProposalPart, CodecError> {
        let mut r = open(&bytes, K_PART, "proposal part")?;
        let p = read_part(&mut r)?;
        finish(r, p)
    }

    fn encode(&self, msg: &ProposalPart) -> Result<Bytes, CodecError> {
        let mut w = header(K_PART);
        write_part(&mut w, msg);
        Ok(w.finish().into())
    }
}

impl Codec<SignedConsensusMsg<TorusContext>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<SignedConsensusMsg<TorusContext>, CodecError> {
        let mut r = open(&bytes, K_SIGNED_MSG, "consensus message")?;
        let m = match r.u8("consensus message")? {
            0 => SignedConsensusMsg::Vote(read_signed_vote(&mut r)?),
            1 => {
                let p = read_proposal(&mut r)?;
                SignedConsensusMsg::Proposal(SignedMessage::new(p, read_sig(&mut r)?))
            }
            t => {
                return Err(CodecError::Tag {
                    what: "consensus message",
                    got: t,
                })
            }
        };
        finish(r, m)
    }

    fn encode(&self, msg: &SignedConsensusMsg<TorusContext>) -> Result<Bytes, CodecError> {
        let mut w = header(K_SIGNED_MSG);
        match msg {
            SignedConsensusMsg::Vote(v) => {
                w.u8(0);
                write_signed_vote(&mut w, v);
            }
            SignedConsensusMsg::Proposal(p) => {
                w.u8(1);
                write_proposal(&mut w, &p.message);
                w.raw(&p.signature.0);
            }
        }
        Ok(w.finish().into())
    }
}

impl Codec<LivenessMsg<TorusContext>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<LivenessMsg<TorusContext>, CodecError> {
        let mut r = open(&bytes, K_LIVENESS, "liveness message")?;
        let m = match r.u8("liveness message")? {
            0 => LivenessMsg::Vote(read_signed_vote(&mut r)?),
            1 => LivenessMsg::PolkaCertificate(read_polka_cert(&mut r)?),
            2 => LivenessMsg::SkipRoundCertificate(read_round_cert(&mut r)?),
            t => {
                return Err(CodecError::Tag {
                    what: "liveness message",
                    got: t,
                })
            }
        };
        finish(r, m)
    }

    fn encode(&self, msg: &LivenessMsg<TorusContext>) -> Result<Bytes, CodecError> {
        let mut w = header(K_LIVENESS);
        match msg {
            LivenessMsg::Vote(v) => {
                w.u8(0);
                write_signed_vote(&mut w, v);
            }
            LivenessMsg::PolkaCertificate(c) => {
                w.u8(1);
                write_polka_cert(&mut w, c);
            }
            LivenessMsg::SkipRoundCertificate(c) => {
                w.u8(2);
                write_round_cert(&mut w, c);
            }
        }
        Ok(w.finish().into())
    }
}

impl Codec<StreamMessage<ProposalPart>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<StreamMessage<ProposalPart>, CodecError> {
        let mut r = open(&bytes, K_STREAM, "stream message")?;
        let id = StreamId::new(Bytes::copy_from_slice(r.bytes("stream id", MAX_STREAM_ID)?));
        let seq = r.u64("sequence")?;
        let content = match r.u8("stream content")? {
            0 => StreamContent::Data(read_part(&mut r)?),
            1 => StreamContent::Fin,
            t => {
                return Err(CodecError::Tag {
                    what: "stream content",
                    got: t,
                })
            }
        };
        finish(r, StreamMessage::new(id, seq, content))
    }

    fn encode(&self, msg: &StreamMessage<ProposalPart>) -> Result<Bytes, CodecError> {
        let mut w = header(K_STREAM);
        w.bytes(&msg.stream_id.to_bytes()).u64(msg.sequence);
        match &msg.content {
            StreamContent::Data(p) => {
                w.u8(0);
                write_part(&mut w, p);
            }
            StreamContent::Fin => {
                w.u8(1);
            }
        }
        Ok(w.finish().into())
    }
}

impl Codec<Status<TorusContext>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Status<TorusContext>, CodecError> {
        let mut r = open(&bytes, K_STATUS, "status")?;
        let peer_id = PeerId::from_bytes(r.bytes("peer id", MAX_PEER_ID)?)
            .map_err(|_| CodecError::Invalid("peer id"))?;
        let tip_height = read_height(&mut r)?;
        let history_min_height = read_height(&mut r)?;
        finish(
            r,
            Status {
                peer_id,
                tip_height,
                history_min_height,
            },
        )
    }

    fn encode(&self, msg: &Status<TorusContext>) -> Result<Bytes, CodecError> {
        let mut w = header(K_STATUS);
        w.bytes(&msg.peer_id.to_bytes())
            .u64(msg.tip_height.0)
            .u64(msg.history_min_height.0);
        Ok(w.finish().into())
    }
}

impl Codec<Request<TorusContext>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Request<TorusContext>, CodecError> {
        let mut r = open(&bytes, K_REQUEST, "sync request")?;
        let m = match r.u8("sync request")? {
            0 => Request::ValueRequest(ValueRequest::new(read_height(&mut r)?)),
            t => {
                return Err(CodecError::Tag {
                    what: "sync request",
                    got: t,
                })
            }
        };
        finish(r, m)
    }

    fn encode(&self, msg: &Request<TorusContext>) -> Result<Bytes, CodecError> {
        let mut w = header(K_REQUEST);
        match msg {
            Request::ValueRequest(v) => {
                w.u8(0).u64(v.height.0);
            }
        }
        Ok(w.finish().into())
    }
}

impl Codec<Response<TorusContext>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<Response<TorusContext>, CodecError> {
        let mut r = open(&bytes, K_RESPONSE, "sync response")?;
        let m = match r.u8("sync response")? {
            0 => {
                let height = read_height(&mut r)?;
                let value = match r.u8("decided value")? {
                    0 => None,
                    1 => {
                        let value_bytes =
                            Bytes::copy_from_slice(r.bytes("value bytes", MAX_VALUE_BYTES)?);
                        let certificate = read_commit_cert(&mut r)?;
                        Some(RawDecidedValue::new(value_bytes, certificate))
                    }
                    t => {
                        return Err(CodecError::Tag {
                            what: "decided value",
                            got: t,
                        })
                    }
                };
                Response::ValueResponse(ValueResponse::new(height, value))
            }
            t => {
                return Err(CodecError::Tag {
                    what: "sync response",
                    got: t,
                })
            }
        };
        finish(r, m)
    }

    fn encode(&self, msg: &Response<TorusContext>) -> Result<Bytes, CodecError> {
        let mut w = header(K_RESPONSE);
        match msg {
            Response::ValueResponse(v) => {
                w.u8(0).u64(v.height.0);
                match &v.value {
                    None => {
                        w.u8(0);
                    }
                    Some(d) => {
                        w.u8(1).bytes(&d.value_bytes);
                        write_commit_cert(&mut w, &d.certificate);
                    }
                }
            }
        }
        Ok(w.finish().into())
    }
}

impl Codec<ProposedValue<TorusContext>> for BftCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ProposedValue<TorusContext>, CodecError> {
        let mut r = open(&bytes, K_PROPOSED, "proposed value")?;
        let height = read_height(&mut r)?;
        let round = read_round(&mut r)?;
        let valid_round = read_round(&mut r)?;
        let proposer = read_address(&mut r)?;
        let validity = read_validity(&mut r)?;
        let value = Block::read(&mut r)?;
        finish(
            r,
            ProposedValue {
                height,
                round,
                valid_round,
                proposer,
                value,
                validity,
            },
        )
    }

    fn encode(&self, msg: &ProposedValue<TorusContext>) -> Result<Bytes, CodecError> {
        let mut w = header(K_PROPOSED);
        w.u64(msg.height.0);
        put_round(&mut w, msg.round);
        put_round(&mut w, msg.valid_round);
        w.raw(&msg.proposer.0)
            .u8(validity_byte(msg.validity))
            .raw(&msg.value.encode());
        Ok(w.finish().into())
    }
}
