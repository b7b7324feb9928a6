//! Consensus signatures: secp256k1 ECDSA with the node key.
//!
//! Every signature is over a 32-byte digest
//! `keccak256(DOMAIN ‖ kind ‖ chain ‖ payload)` where `DOMAIN` is
//! `"torus-node/bft/v1"`, `kind` is one byte (vote, proposal, part,
//! extension, proposal fin), and `chain` is [`chain_hash`] of the genesis,
//! so a signature from another network, another message kind or another
//! encoding version never verifies. Signatures are the node's usual raw
//! 65 bytes `r ‖ s ‖ v` (low-s, RFC 6979); verification ignores `v`.

use std::sync::Arc;

use bytes::Bytes;
use malachitebft_app_channel::app::types::core::{self as mc, Round, SignedMessage};

use super::codec::{put_nil_or_val, put_round, vote_type_byte};
use super::context::{Address, Height, Proposal, ProposalPart, TorusContext, Vote};
pub use super::context::{PrivateKey, Secp256k1Scheme, Signature};
use crate::codec::Writer;
use crate::crypto::{NodeKey, NodePub};
use crate::hexfmt::keccak256;

/// Domain prefix of every consensus digest.
pub const DOMAIN: &[u8] = b"torus-node/bft/v1";
const KIND_VOTE: u8 = 1;
const KIND_PROPOSAL: u8 = 2;
const KIND_PART: u8 = 3;
const KIND_EXTENSION: u8 = 4;
const KIND_FIN: u8 = 5;

/// The network a signature belongs to: keccak256 of the chain id and the
/// genesis committee's hash.
pub fn chain_hash(chain_id: &str, genesis_epoch_hash: &[u8]) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(DOMAIN).str(chain_id).bytes(genesis_epoch_hash);
    keccak256(&w.finish())
}

fn digest(kind: u8, chain: &[u8; 32], payload: impl FnOnce(&mut Writer)) -> [u8; 32] {
    let mut w = Writer::new();
    w.raw(DOMAIN).u8(kind).raw(chain);
    payload(&mut w);
    keccak256(&w.finish())
}

/// The digest a vote's signature covers (the extension is signed separately).
pub fn vote_digest(chain: &[u8; 32], v: &Vote) -> [u8; 32] {
    digest(KIND_VOTE, chain, |w| {
        w.u8(vote_type_byte(v.vote_type)).u64(v.height.0);
        put_round(w, v.round);
        put_nil_or_val(w, &v.value_id);
        w.raw(&v.validator_address.0);
    })
}

/// The digest a proposal's signature covers (the block by its id).
pub fn proposal_digest(chain: &[u8; 32], p: &Proposal) -> [u8; 32] {
    digest(KIND_PROPOSAL, chain, |w| {
        w.u64(p.height.0);
        put_round(w, p.round);
        put_round(w, p.pol_round);
        w.raw(&p.validator_address.0).raw(&p.value.id().0);
    })
}

/// The digest a single proposal part's signature covers.
pub fn part_digest(chain: &[u8; 32], part: &ProposalPart) -> [u8; 32] {
    digest(KIND_PART, chain, |w| super::codec::write_part(w, part))
}

/// The digest a vote extension's signature covers.
pub fn extension_digest(chain: &[u8; 32], ext: &Bytes) -> [u8; 32] {
    digest(KIND_EXTENSION, chain, |w| {
        w.bytes(ext);
    })
}

/// The digest a proposal stream's `Fin` signs: the hash of the `Init` and
/// `Data` parts ([`super::streaming::parts_hash`]), bound to the height,
/// round and proposer once more so that a hash collision between streams of
/// different rounds cannot be replayed.
pub fn fin_digest(
    chain: &[u8; 32],
    height: Height,
    round: Round,
    proposer: &Address,
    parts_hash: &[u8; 32],
) -> [u8; 32] {
    digest(KIND_FIN, chain, |w| {
        w.u64(height.0);
        put_round(w, round);
        w.raw(&proposer.0).raw(parts_hash);
    })
}

/// Signs and verifies consensus messages with the node key.
#[derive(Clone)]
pub struct Signer {
    key: Arc<NodeKey>,
    chain: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", &self.key)
            .field("chain", &hex::encode(self.chain))
            .finish()
    }
}

impl Signer {
    /// A signer for network `chain` ([`chain_hash`]).
    pub fn new(key: Arc<NodeKey>, chain: [u8; 32]) -> Self {
        Signer { key, chain }
    }
    /// The network hash.
    pub fn chain(&self) -> &[u8; 32] {
        &self.chain
    }
    /// This node's address.
    pub fn address(&self) -> Address {
        Address::of(&self.key.public())
    }
    /// Signs a digest.
    pub fn sign(&self, digest: &[u8; 32]) -> Signature {
        Signature(self.key.sign_prehash(digest))
    }
    /// Verifies a signature over a digest.
    pub fn verify(digest: &[u8; 32], sig: &Signature, pk: &NodePub) -> bool {
        pk.verify_prehash(digest, &sig.0).is_ok()
    }
}

impl mc::SigningProvider<TorusContext> for Signer {
    fn sign_vote(&self, vote: Vote) -> SignedMessage<TorusContext, Vote> {
        let sig = self.sign(&vote_digest(&self.chain, &vote));
        SignedMessage::new(vote, sig)
    }

    fn verify_signed_vote(&self, vote: &Vote, signature: &Signature, pk: &NodePub) -> bool {
        Self::verify(&vote_digest(&self.chain, vote), signature, pk)
    }

    fn sign_proposal(&self, proposal: Proposal) -> SignedMessage<TorusContext, Proposal> {
        let sig = self.sign(&proposal_digest(&self.chain, &proposal));
        SignedMessage::new(proposal, sig)
    }

    fn verify_signed_proposal(&self, p: &Proposal, signature: &Signature, pk: &NodePub) -> bool {
        Self::verify(&proposal_digest(&self.chain, p), signature, pk)
    }

    fn sign_proposal_part(&self, part: ProposalPart) -> SignedMessage<TorusContext, ProposalPart> {
        let sig = self.sign(&part_digest(&self.chain, &part));
        SignedMessage::new(part, sig)
    }

    fn verify_signed_proposal_part(
        &self,
        part: &ProposalPart,
        signature: &Signature,
        pk: &NodePub,
    ) -> bool {
        Self::verify(&part_digest(&self.chain, part), signature, pk)
    }

    fn sign_vote_extension(&self, ext: Bytes) -> SignedMessage<TorusContext, Bytes> {
        let sig = self.sign(&extension_digest(&self.chain, &ext));
        SignedMessage::new(ext, sig)
    }

    fn verify_signed_vote_extension(
        &self,
        ext: &Bytes,
        signature: &Signature,
        pk: &NodePub,
    ) -> bool {
        Self::verify(&extension_digest(&self.chain, ext), signature, pk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bft::context::ValueId;
    use malachitebft_app_channel::app::types::core::{NilOrVal, SigningProvider, VoteType};

    fn vote(addr: Address) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height: Height(7),
            round: Round::new(2),
            value_id: NilOrVal::Val(ValueId([9; 32])),
            validator_address: addr,
            extension: None,
        }
    }

    #[test]
    fn votes_verify_only_for_their_key_network_and_content() {
        let key = Arc::new(NodeKey::random());
        let pk = key.public();
        let s = Signer::new(key.clone(), chain_hash("a", b"g"));
        let signed = s.sign_vote(vote(s.address()));
        assert!(s.verify_signed_vote(&signed.message, &signed.signature, &pk));
        // Another network.
        let other = Signer::new(key, chain_hash("b", b"g"));
        assert!(!other.verify_signed_vote(&signed.message, &signed.signature, &pk));
        // Another key.
        let pk2 = NodeKey::random().public();
        assert!(!s.verify_signed_vote(&signed.message, &signed.signature, &pk2));
        // Another vote type or value.
        let mut v = signed.message.clone();
        v.vote_type = VoteType::Precommit;
        assert!(!s.verify_signed_vote(&v, &signed.signature, &pk));
        let mut v = signed.message.clone();
        v.value_id = NilOrVal::Nil;
        assert!(!s.verify_signed_vote(&v, &signed.signature, &pk));
    }

    #[test]
    fn kinds_are_separated() {
        // A part and an extension with the same bytes never share a digest.
        let chain = chain_hash("a", b"g");
        let ext = Bytes::from_static(b"x");
        let part = ProposalPart::Data(Bytes::from_static(b"x"));
        assert_ne!(extension_digest(&chain, &ext), part_digest(&chain, &part));
    }
}
