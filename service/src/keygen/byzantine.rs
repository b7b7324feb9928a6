//! Byzantine dealers for tests: a middleware over what the honest keygen core
//! sends (as malachite's test framework wraps its honest engine), so the core
//! itself has no fault branches. The driver puts it between the core and the
//! network only in dev mode, when `[keygen.faults] dealer` names a fault; unit
//! tests put it between two cores by hand.
//!
//! It rewrites this node's own dealing messages (`Message::Send`) and nothing
//! else: echoes, readies and public key shares stay honest, so what the other
//! nodes see is exactly a dealer that dealt badly. Each rewrite is a function of
//! the batch, the dealer and the receiver, so a replay after `Resync` carries the
//! same bad message again (a byzantine dealer that is consistent with itself).

use std::collections::BTreeMap;

use torus_engine::avss::{self, Dealing, Slice};
use torus_engine::wire::{Wire, WireXy};
use torus_engine::{Engine, Params, Secp256k1};
use zeroize::Zeroizing;

use super::faults::DealerFault;
use crate::crypto::NodeKey;
use crate::hexfmt::keccak256;
use crate::p2p::{Message, SendMsg};
use crate::tx::{digest, BatchId, DealHeader};

/// Second dealings kept (one per batch; batches are few at a time).
const CACHED_DEALINGS: usize = 4;

/// A dealer's misbehaviour over its outgoing sends.
pub(crate) struct Byzantine {
    fault: DealerFault,
    me: u32,
    /// The bad second dealing of each recent batch (equivocation, bad matrix).
    dealings: BTreeMap<BatchId, Dealing<Secp256k1>>,
}

impl Byzantine {
    /// The middleware for `fault` at dealer `me`; None when honest.
    pub fn new(fault: DealerFault, me: u32) -> Option<Self> {
        (fault != DealerFault::None).then(|| Byzantine {
            fault,
            me,
            dealings: BTreeMap::new(),
        })
    }

    /// The message actually sent in place of `msg` to `to`, in a batch dealt
    /// under `params` (the committee's).
    pub fn outgoing(
        &mut self,
        engine: &Engine,
        key: &NodeKey,
        params: Params,
        to: u32,
        msg: Message,
    ) -> Message {
        let Message::Send(s) = msg else {
            return msg;
        };
        if s.header.dealer != self.me {
            return Message::Send(s);
        }
        let out = match self.fault {
            DealerFault::None => None,
            DealerFault::CorruptRow(target) if target == to => corrupt_row(key, &s),
            DealerFault::CorruptRow(_) => None,
            DealerFault::Equivocate(target) if target == to => {
                tracing::warn!(to, "TEST FAULT: equivocating (a second dealing)");
                self.second_dealing(engine, key, &s, to, params, b"equivocate")
            }
            DealerFault::Equivocate(_) => None,
            DealerFault::BadMatrix => {
                tracing::warn!(to, "TEST FAULT: dealing (k+1) x (k+1) matrices");
                let bad = Params::new(params.n, params.k + 1, params.t).unwrap_or(params);
                self.second_dealing(engine, key, &s, to, bad, b"bad-matrix")
            }
        };
        Message::Send(out.unwrap_or(s))
    }

    /// The send of another dealing of the same batch under `params`, signed
    /// like an honest one (the receiver cannot tell it from one until it
    /// compares notes, or checks the shape).
    fn second_dealing(
        &mut self,
        engine: &Engine,
        key: &NodeKey,
        s: &SendMsg,
        to: u32,
        params: Params,
        tag: &[u8],
    ) -> Option<SendMsg> {
        let h = &s.header;
        let batch = h.batch;
        if !self.dealings.contains_key(&batch) {
            let mut m = Vec::new();
            m.extend_from_slice(b"torus-node/byzantine/");
            m.extend_from_slice(tag);
            m.extend_from_slice(&batch.epoch.to_be_bytes());
            m.extend_from_slice(&batch.start.to_be_bytes());
            m.extend_from_slice(&batch.count.to_be_bytes());
            m.extend_from_slice(&self.me.to_be_bytes());
            let seed = Zeroizing::new(keccak256(&m));
            let d =
                avss::deal::<Secp256k1>(engine, params, self.me, batch.count as usize, None, *seed)
                    .ok()?;
            while self.dealings.len() >= CACHED_DEALINGS {
                self.dealings.pop_first();
            }
            self.dealings.insert(batch, d);
        }
        let d = self.dealings.get(&batch)?;
        let slice = d.slice(engine, to).ok()?;
        let c = digest::dealing_digest(&batch, self.me, &d.commitments);
        let sd = digest::send_slice_digest(&batch, self.me, &slice).ok()?;
        let header = DealHeader::sign(key, batch, self.me, to, params.k, h.keys, c, sd);
        Some(SendMsg {
            header,
            commitments: d.commitments.encode_xy(),
            slice: Zeroizing::new(slice.encode()),
        })
    }
}

/// The send with the first key's row corrupted, re-signed (so the receiver can
/// prove the bad row with the dealer's own signature).
fn corrupt_row(key: &NodeKey, s: &SendMsg) -> Option<SendMsg> {
    tracing::warn!(to = s.header.receiver, "TEST FAULT: corrupting a row");
    let h = &s.header;
    let mut slice = Slice::<Secp256k1>::decode(&s.slice).ok()?;
    slice.corrupt_for_tests(0, false);
    let sd = digest::send_slice_digest(&h.batch, h.dealer, &slice).ok()?;
    let header = DealHeader::sign(
        key,
        h.batch,
        h.dealer,
        h.receiver,
        h.k,
        h.keys,
        h.commitments,
        sd,
    );
    Some(SendMsg {
        header,
        commitments: s.commitments.clone(),
        slice: Zeroizing::new(slice.encode()),
    })
}
