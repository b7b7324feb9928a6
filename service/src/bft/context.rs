//! The malachite context: the concrete types consensus runs on.
//!
//! * [`Height`]: a block height (`u64`), the same numbering as the LMDB head.
//! * [`Address`]: a validator's 20-byte Ethereum address (keccak of its
//!   uncompressed public key), printed EIP-55.
//! * [`Block`]: the value decided at a height, `{ height, txs }`, whose
//!   [`ValueId`] is keccak256 of its encoding ([`Block::encode`]).
//! * [`Validator`] / [`ValidatorSet`]: the epoch's committee, one vote each,
//!   sorted by address; the proposer of `(height, round)` is the validator at
//!   `(height + round) mod n` in that order.
//! * [`Vote`], [`Proposal`], [`ProposalPart`]: consensus messages. Proposals
//!   travel only as parts (`PartsOnly`): `Init`, `Data` chunks of the
//!   encoded transaction list, and a `Fin` carrying the proposer's signature
//!   over the hash of the parts before it.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use malachitebft_app_channel::app::types::core::{
    self as mc, NilOrVal, Round, SignedExtension, VoteType, VotingPower,
};

use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::{NodeKey, NodePub};
use crate::hexfmt::{checksum_address, keccak256};
use crate::tx::EpochInfo;

/// Largest transaction a block may carry (the transaction codec's own limit).
pub const MAX_TX_BYTES: u64 = crate::tx::MAX_TX_BYTES as u64;
/// Largest number of transactions in one block.
pub const MAX_BLOCK_TXS: u64 = 1 << 20;
/// Version byte of [`Block::encode`].
pub const BLOCK_VERSION: u8 = 1;

/// A block height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: the 20-byte Ethereum address of its node key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of a node key.
    pub fn of(pk: &NodePub) -> Self {
        Address(pk.address_bytes())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&checksum_address(&self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl mc::Address for Address {}

/// The id of a [`Block`]: keccak256 of its encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValueId(pub [u8; 32]);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueId({})", hex::encode(self.0))
    }
}

/// The value consensus decides: the ordered transactions of one height.
///
/// Cheap to clone (the transactions are shared); the id is computed once.
#[derive(Clone)]
pub struct Block {
    height: u64,
    txs: Arc<Vec<Vec<u8>>>,
    id: ValueId,
    size: usize,
}

impl Block {
    /// A block of `txs` at `height`.
    pub fn new(height: u64, txs: Vec<Vec<u8>>) -> Self {
        let size = txs
            .iter()
            .map(|t| t.len() + crate::mempool::TX_FRAMING)
            .sum::<usize>()
            + crate::mempool::BLOCK_FRAMING;
        let mut b = Block {
            height,
            txs: Arc::new(txs),
            id: ValueId([0; 32]),
            size,
        };
        b.id = ValueId(keccak256(&b.encode()));
        b
    }
    /// Height.
    pub fn height(&self) -> u64 {
        self.height
    }
    /// Transactions, in order.
    pub fn txs(&self) -> &[Vec<u8>] {
        &self.txs
    }
    /// Id (keccak256 of the encoding).
    pub fn id(&self) -> ValueId {
        self.id
    }
    /// Size of the encoding in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// `version ‖ height ‖ tx list` (see [`encode_txs`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(BLOCK_VERSION).u64(self.height);
        encode_txs(&mut w, &self.txs);
        w.finish()
    }
    /// Decodes [`Self::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let b = Self::read(&mut r)?;
        r.end()?;
        Ok(b)
    }
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        r.version("block", BLOCK_VERSION)?;
        let height = r.u64("block height")?;
        let txs = decode_txs(r)?;
        Ok(Block::new(height, txs))
    }
}

/// The transaction list: a count, then each transaction length-prefixed.
pub fn encode_txs(w: &mut Writer, txs: &[Vec<u8>]) {
    w.count(txs.len());
    for t in txs {
        w.bytes(t);
    }
}

/// Decodes [`encode_txs`]'s output (bounded before allocating).
pub fn decode_txs(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, CodecError> {
    let n = r.count("block txs", MAX_BLOCK_TXS, 4)?;
    let mut txs = Vec::with_capacity(n);
    for _ in 0..n {
        txs.push(r.bytes("tx", MAX_TX_BYTES)?.to_vec());
    }
    Ok(txs)
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("height", &self.height)
            .field("txs", &self.txs.len())
            .field("id", &self.id)
            .finish()
    }
}

impl PartialEq for Block {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Block {}
impl PartialOrd for Block {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Block {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.height, self.id).cmp(&(other.height, other.id))
    }
}

impl mc::Value for Block {
    type Id = ValueId;
    fn id(&self) -> ValueId {
        self.id
    }
}

/// A committee member as consensus sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Address (of `public_key`).
    pub address: Address,
    /// Node key.
    pub public_key: NodePub,
    /// Always 1: every committee member has one vote.
    pub voting_power: VotingPower,
    /// 1-based index in the epoch.
    pub index: u32,
}

impl mc::Validator<TorusContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &NodePub {
        &self.public_key
    }
    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// The committee of an epoch, sorted by address. Never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    /// Epoch it belongs to.
    pub epoch: u64,
    validators: Arc<Vec<Validator>>,
}

impl ValidatorSet {
    /// The set of `epoch`'s members; fails on an empty committee or a bad key.
    pub fn from_epoch(epoch: &EpochInfo) -> Result<Self, String> {
        let mut vs = Vec::with_capacity(epoch.nodes.len());
        for n in &epoch.nodes {
            let pk = NodePub::from_sec1(&n.pubkey)
                .map_err(|_| format!("node {}: bad public key", n.index))?;
            vs.push(Validator {
                address: Address::of(&pk),
                public_key: pk,
                voting_power: 1,
                index: n.index,
            });
        }
        if vs.is_empty() {
            return Err("empty committee".into());
        }
        vs.sort_by_key(|v| v.address);
        if vs.windows(2).any(|w| w[0].address == w[1].address) {
            return Err("duplicate validator address".into());
        }
        Ok(ValidatorSet {
            epoch: epoch.epoch,
            validators: Arc::new(vs),
        })
    }
    /// The members, sorted by address.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }
    /// The proposer of `(height, round)`: round-robin over the sorted members.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        let r = u64::from(round.as_u32().unwrap_or(0));
        let n = self.validators.len() as u64;
        // `validators` is non-empty by construction and the index is reduced mod n.
        &self.validators[(height.0.wrapping_add(r) % n) as usize]
    }
}

impl mc::ValidatorSet<TorusContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> VotingPower {
        self.validators.iter().map(|v| v.voting_power).sum()
    }
    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
            .and_then(|i| self.validators.get(i))
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal (implicit: built by consensus from the streamed parts, never sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The proposed block.
    pub value: Block,
    /// Round of the polka the value was locked in, or nil.
    pub pol_round: Round,
    /// Proposer.
    pub validator_address: Address,
}

impl mc::Proposal<TorusContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &Block {
        &self.value
    }
    fn take_value(self) -> Block {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.validator_address
    }
}

/// First part of a proposal stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalInit {
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// Polka round of a re-proposed value, or nil.
    pub pol_round: Round,
    /// Proposer (whose key signs the `Fin`).
    pub proposer: Address,
}

/// One piece of a proposal stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalPart {
    /// Header.
    Init(ProposalInit),
    /// A chunk of the block's encoded transaction list ([`encode_txs`]).
    Data(Bytes),
    /// The proposer's signature over the hash of the parts before it.
    Fin(Signature),
}

impl mc::ProposalPart<TorusContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init(_))
    }
    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin(_))
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    /// Prevote or precommit.
    pub vote_type: VoteType,
    /// Height.
    pub height: Height,
    /// Round.
    pub round: Round,
    /// The block voted for, or nil.
    pub value_id: NilOrVal<ValueId>,
    /// Voter.
    pub validator_address: Address,
    /// Vote extension (unused: always `None` from this node).
    pub extension: Option<SignedExtension<TorusContext>>,
}

impl mc::Vote<TorusContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<ValueId> {
        &self.value_id
    }
    fn take_value(self) -> NilOrVal<ValueId> {
        self.value_id
    }
    fn vote_type(&self) -> VoteType {
        self.vote_type
    }
    fn validator_address(&self) -> &Address {
        &self.validator_address
    }
    fn extension(&self) -> Option<&SignedExtension<TorusContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<TorusContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<TorusContext>) -> Self {
        Vote {
            extension: Some(extension),
            ..self
        }
    }
}

/// The node's malachite context.
#[derive(Clone, Copy, Debug, Default)]
pub struct TorusContext;

impl mc::Context for TorusContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Value = Block;
    type Vote = Vote;
    type Extension = Bytes;
    type SigningScheme = Secp256k1Scheme;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        validator_set.proposer(height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: Block,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            validator_address: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<ValueId>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value_id,
            validator_address: address,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<ValueId>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value_id,
            validator_address: address,
            extension: None,
        }
    }
}

// ---- the signing scheme's types (the scheme's digests live in `signing`) ----

/// A 65-byte `r ‖ s ‖ v` signature.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 65]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..8]))
    }
}

/// The node key, shared (consensus wants a `Clone` private key).
#[derive(Clone)]
pub struct PrivateKey(pub Arc<NodeKey>);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// secp256k1 ECDSA over domain-separated keccak digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secp256k1Scheme;

impl mc::SigningScheme for Secp256k1Scheme {
    type DecodingError = CodecError;
    type Signature = Signature;
    type PublicKey = NodePub;
    type PrivateKey = PrivateKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, CodecError> {
        <[u8; 65]>::try_from(bytes)
            .map(Signature)
            .map_err(|_| CodecError::Invalid("signature length"))
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }
}
