//! What dealers and receivers sign during a batch's sharing: the dealer's
//! [`DealHeader`] for each send, and receivers' ready signatures, bundled per
//! dealer as [`DealerEvidence`] in a dealer-set transaction.

use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::{NodeKey, NodePub};
use crate::hexfmt::keccak256;

use super::digest::DEAL_DOMAIN;
use super::BatchId;

/// A node's signature on a `ready`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadySig {
    /// Signing node's index.
    pub signer: u32,
    /// 65-byte signature over [`ready_digest`].
    pub sig: [u8; 65],
}

impl ReadySig {
    /// `signer`'s ready for `dealer`'s sharing of `batch` under the commitments
    /// digest `commitments` (signed over [`super::ready_digest`]).
    pub fn sign(
        key: &NodeKey,
        signer: u32,
        batch: &BatchId,
        dealer: u32,
        commitments: &[u8; 32],
    ) -> Self {
        ReadySig {
            signer,
            sig: key.sign_prehash(&super::ready_digest(batch, dealer, commitments)),
        }
    }

    /// Whether `pubkey` (SEC1) signed this ready for `dealer`'s sharing of `batch`
    /// under `commitments`.
    pub fn verify(
        &self,
        pubkey: &[u8],
        batch: &BatchId,
        dealer: u32,
        commitments: &[u8; 32],
    ) -> bool {
        NodePub::from_sec1(pubkey)
            .and_then(|pk| {
                pk.verify_prehash(&super::ready_digest(batch, dealer, commitments), &self.sig)
            })
            .is_ok()
    }
}

/// One dealer of a decided set, with the ready evidence that its sharing completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealerEvidence {
    /// Dealer index.
    pub dealer: u32,
    /// keccak256 of the dealer's encoded commitment matrices.
    pub commitments: [u8; 32],
    /// At least k + t ready signatures from distinct nodes.
    pub readies: Vec<ReadySig>,
}

/// What a dealer signs for each receiver's `send`: the batch, the shape of the
/// sharing and digests of the commitments and of the receiver's slice. Receivers
/// keep it as evidence: two headers with different commitment digests for one
/// batch prove equivocation; a header with the wrong shape, or one whose slice
/// does not fit its commitments, proves a bad dealing (see [`Evidence`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealHeader {
    /// The batch.
    pub batch: BatchId,
    /// Dealer index.
    pub dealer: u32,
    /// Receiver index.
    pub receiver: u32,
    /// Matrix size the dealer used (must be the epoch's k).
    pub k: u32,
    /// Keys the dealer covered (must be the batch count).
    pub keys: u32,
    /// Commitments digest ([`commitments_digest`]).
    pub commitments: [u8; 32],
    /// Slice digest ([`slice_digest`]).
    pub slice: [u8; 32],
    /// The dealer's signature over [`DealHeader::digest`].
    pub sig: [u8; 65],
}

/// Encoded size of a [`DealHeader`].
pub const DEAL_HEADER_LEN: usize = 20 + 4 * 4 + 32 + 32 + 65;

impl DealHeader {
    /// The digest the dealer signs.
    pub fn digest(&self) -> [u8; 32] {
        let mut w = Writer::new();
        w.raw(DEAL_DOMAIN);
        self.batch.encode(&mut w);
        w.u32(self.dealer)
            .u32(self.receiver)
            .u32(self.k)
            .u32(self.keys)
            .raw(&self.commitments)
            .raw(&self.slice);
        keccak256(&w.buf)
    }
    /// Signs a header with the dealer's key.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &NodeKey,
        batch: BatchId,
        dealer: u32,
        receiver: u32,
        k: u32,
        keys: u32,
        commitments: [u8; 32],
        slice: [u8; 32],
    ) -> Self {
        let mut h = DealHeader {
            batch,
            dealer,
            receiver,
            k,
            keys,
            commitments,
            slice,
            sig: [0u8; 65],
        };
        h.sig = key.sign_prehash(&h.digest());
        h
    }
    /// Whether `pubkey` (SEC1) signed this header.
    pub fn verify(&self, pubkey: &[u8]) -> bool {
        NodePub::from_sec1(pubkey)
            .and_then(|pk| pk.verify_prehash(&self.digest(), &self.sig))
            .is_ok()
    }
    /// Encodes.
    pub fn encode(&self, w: &mut Writer) {
        self.batch.encode(w);
        w.u32(self.dealer)
            .u32(self.receiver)
            .u32(self.k)
            .u32(self.keys)
            .raw(&self.commitments)
            .raw(&self.slice)
            .raw(&self.sig);
    }
    /// Decodes.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(DealHeader {
            batch: BatchId::decode(r)?,
            dealer: r.u32("dealer")?,
            receiver: r.u32("receiver")?,
            k: r.u32("k")?,
            keys: r.u32("keys")?,
            commitments: r.array("commitments digest")?,
            slice: r.array("slice digest")?,
            sig: r.array("dealer signature")?,
        })
    }
}
