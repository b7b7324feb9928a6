//! The application loop: answers malachite's requests from the node's state.
//!
//! One task owns a [`Driver`] and handles [`AppMsg`]s in order:
//!
//! * `ConsensusReady`: start at `head + 1` with the current epoch's set.
//! * `StartedRound`: note the height and round; hand back any values already
//!   seen for it (complete streams that arrived early for this height).
//! * `GetValue`: re-use the block built for this height and round, else wait
//!   up to `idle_block` for a transaction, reap the mempool (skipping what
//!   `check_tx` calls undecodable, unauthorized or duplicate), and stream it.
//! * `ReceivedProposalPart`: reassemble; check the stream is from the
//!   round's proposer and its `Fin` signature; check the block's limits;
//!   answer Valid or Invalid.
//! * `Decided`: execute and persist the block with its commit certificate in
//!   one LMDB transaction, drop its transactions from the mempool, start the
//!   next height. A failure here would fork this node from the others, so
//!   the driver stops ([`BftError::Halted`]) instead of going on.
//! * `GetDecidedValue` / `GetHistoryMinHeight` / `ProcessSyncedValue`: value
//!   sync from the decided-block store, both ways.
//! * `RestreamProposal`: our own value is re-signed for the new round; a
//!   value proposed by another validator is re-sent with its original parts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use malachitebft_app_channel::app::engine::host::Next;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, Round, ValidatorSet as _, Validity,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, ProposedValue};
use malachitebft_app_channel::{AppMsg, Channels, NetworkMsg};

use super::codec::{decode_certificate, encode_certificate};
use super::context::{Address, Block, Height, ProposalPart, TorusContext, ValidatorSet, ValueId};
use super::signing::Signer;
use super::streaming::{build_parts, stream_id, stream_messages, Assembled, PartStreams};
use super::{BftConfig, BftError};
use crate::app::{App, AppError, TxCode};
use crate::hexfmt::keccak256;
use crate::mempool::Mempool;
use crate::node::NodeState;
use crate::store::DecidedRecord;
use crate::tx::SignedTx;

/// Most values kept per height (a byzantine proposer may equivocate).
const MAX_VALUES_PER_HEIGHT: usize = 256;
/// Most early (future-height) proposals kept.
const MAX_PENDING: usize = 64;
/// How far ahead an early proposal may be.
const MAX_HEIGHTS_AHEAD: u64 = 4;

type Key = (u64, i64, ValueId);

/// The application side of the engine.
pub(crate) struct Driver {
    node: Arc<NodeState>,
    mempool: Arc<Mempool>,
    signer: Signer,
    cfg: BftConfig,
    address: Address,
    height: Height,
    round: Round,
    vs: ValidatorSet,
    /// Blocks this node built, by (height, round).
    built: BTreeMap<(u64, i64), Block>,
    /// Values seen (proposed by anyone, or synced), by (height, round, id).
    values: BTreeMap<Key, ProposedValue<TorusContext>>,
    /// Original parts of values received from others, for re-streaming.
    parts: BTreeMap<Key, Vec<ProposalPart>>,
    /// Complete streams for heights not started yet.
    pending: Vec<Assembled>,
    streams: PartStreams,
    stream_counter: u32,
}

fn round_key(r: Round) -> i64 {
    r.as_i64()
}

/// `height ‖ round (offset so Nil sorts first) ‖ value id`, big-endian.
fn proposal_key(height: u64, round: i64, id: &ValueId) -> Vec<u8> {
    let mut k = Vec::with_capacity(48);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&(round as u64 ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&id.0);
    k
}

impl Driver {
    pub(crate) fn new(
        node: Arc<NodeState>,
        mempool: Arc<Mempool>,
        signer: Signer,
        cfg: BftConfig,
        vs: ValidatorSet,
    ) -> Self {
        let stream_bytes = cfg.max_block_bytes.saturating_add(1 << 20);
        // Proposal parts only from the committee (see `streaming`).
        let streams = PartStreams::for_peers(stream_bytes, super::streaming::committee_peers(&vs));
        Driver {
            address: signer.address(),
            node,
            mempool,
            signer,
            cfg,
            height: Height(0),
            round: Round::Nil,
            vs,
            built: BTreeMap::new(),
            values: BTreeMap::new(),
            parts: BTreeMap::new(),
            pending: Vec::new(),
            streams,
            stream_counter: 0,
        }
    }

    fn current_set(&self) -> Result<ValidatorSet, BftError> {
        let e = self.node.epoch()?;
        ValidatorSet::from_epoch(&e).map_err(BftError::Config)
    }

    /// Handles messages until the engine goes away (Ok) or a consensus-path
    /// failure makes it unsafe to go on (Err).
    pub(crate) async fn run(mut self, mut ch: Channels<TorusContext>) -> Result<(), BftError> {
        while let Some(msg) = ch.consensus.recv().await {
            self.handle(msg, &ch).await?;
        }
        tracing::info!("consensus engine stopped; driver exits");
        Ok(())
    }

    async fn handle(
        &mut self,
        msg: AppMsg<TorusContext>,
        ch: &Channels<TorusContext>,
    ) -> Result<(), BftError> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                if let Some(mut gate) = self.cfg.start_gate.take() {
                    let waited = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        gate.wait_for(|open| *open),
                    )
                    .await;
                    if !matches!(waited, Ok(Ok(_))) {
                        tracing::warn!("start gate did not open: starting consensus anyway");
                    }
                }
                let head = self.node.store().head()?;
                self.height = Height(head.height + 1);
                self.vs = self.current_set()?;
                self.load_proposals()?;
                tracing::info!(
                    height = self.height.0,
                    validators = self.vs.count(),
                    "consensus ready"
                );
                let _ = reply.send((self.height, self.vs.clone()));
            }
            AppMsg::StartedRound {
                height,
                round,
                proposer,
                role,
                reply_value,
            } => {
                tracing::debug!(height = height.0, %round, %proposer, ?role, "started round");
                if height != self.height {
                    self.prune_below(height);
                }
                self.height = height;
                self.round = round;
                let mut out: Vec<_> = self
                    .values
                    .range((height.0, round_key(round), ValueId([0; 32]))..)
                    .take_while(|((h, r, _), _)| *h == height.0 && *r == round_key(round))
                    .map(|(_, v)| v.clone())
                    .collect();
                let early = std::mem::take(&mut self.pending);
                for a in early {
                    if a.init.height == height && a.init.round == round {
                        if let Some(v) = self.accept(a) {
                            out.push(v);
                        }
                    } else if a.init.height >= height {
                        self.pending.push(a);
                    }
                }
                let _ = reply_value.send(out);
            }
            AppMsg::GetValue {
                height,
                round,
                timeout,
                reply,
            } => {
                let block = match self.built.get(&(height.0, round_key(round))) {
                    Some(b) => b.clone(),
                    None => {
                        let b = self.build_block(height, timeout).await?;
                        self.built.insert((height.0, round_key(round)), b.clone());
                        b
                    }
                };
                tracing::info!(height = height.0, %round, txs = block.txs().len(), id = %block.id(), "proposing");
                self.remember(ProposedValue {
                    height,
                    round,
                    valid_round: Round::Nil,
                    proposer: self.address,
                    value: block.clone(),
                    validity: Validity::Valid,
                });
                let _ = reply.send(LocallyProposedValue::new(height, round, block.clone()));
                let parts = build_parts(&self.signer, &block, round, Round::Nil);
                self.publish(ch, height, round, &parts).await;
            }
            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }
            AppMsg::VerifyVoteExtension { reply, .. } => {
                let _ = reply.send(Ok(()));
            }
            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                self.restream(ch, height, round, valid_round, address, value_id)
                    .await
            }
            AppMsg::GetHistoryMinHeight { reply } => {
                let min = match self.node.store().min_decided_height()? {
                    Some(h) => h,
                    None => self.node.store().head()?.height + 1,
                };
                let _ = reply.send(Height(min));
            }
            AppMsg::ReceivedProposalPart { from, part, reply } => {
                let value = self.streams.insert(from, part).and_then(|parts| {
                    match Assembled::from_parts(parts) {
                        Ok(a) => self.received(a),
                        Err(e) => {
                            tracing::debug!(peer = %from, error = %e, "unusable proposal stream");
                            None
                        }
                    }
                });
                let _ = reply.send(value);
            }
            AppMsg::GetValidatorSet { height, reply } => {
                // Only the current epoch is known; heights behind the head are
                // never asked for (sync starts at head + 1).
                tracing::trace!(height = height.0, "validator set requested");
                let _ = reply.send(Some(self.vs.clone()));
            }
            AppMsg::Decided {
                certificate,
                extensions: _,
                reply,
            } => {
                let next = self.decided(certificate)?;
                let _ = reply.send(next);
            }
            AppMsg::GetDecidedValue { height, reply } => {
                let _ = reply.send(self.decided_value(height)?);
            }
            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let value = match Block::decode(&value_bytes) {
                    Ok(b) if b.height() == height.0 => {
                        let v: ProposedValue<TorusContext> = ProposedValue {
                            height,
                            round,
                            valid_round: Round::Nil,
                            proposer,
                            validity: self.synced_validity(&b),
                            value: b,
                        };
                        self.remember(v.clone());
                        Some(v)
                    }
                    Ok(b) => {
                        tracing::warn!(
                            height = height.0,
                            got = b.height(),
                            "synced block for another height"
                        );
                        None
                    }
                    Err(e) => {
                        tracing::warn!(height = height.0, error = %e, "synced block does not decode");
                        None
                    }
                };
                let _ = reply.send(value);
            }
        }
        Ok(())
    }

    /// Reaps a block for `height`: waits for a transaction up to `idle_block`
    /// (never more than half the propose timeout), then filters with check_tx.
    async fn build_block(&mut self, height: Height, timeout: Duration) -> Result<Block, BftError> {
        let wait = self.cfg.idle_block.min(timeout / 2);
        self.mempool.wait_nonempty(wait).await;
        let candidates = self.mempool.reap(
            self.cfg
                .max_block_bytes
                .saturating_sub(crate::mempool::BLOCK_FRAMING),
            self.cfg.max_block_txs,
        );
        let mut txs = Vec::with_capacity(candidates.len());
        let mut evict = Vec::new();
        for tx in candidates {
            let o = self.node.check_tx(&tx)?;
            match o.code {
                TxCode::Decode | TxCode::Unauthorized | TxCode::Duplicate => {
                    tracing::debug!(code = ?o.code, log = %o.log, "dropping tx from the mempool");
                    evict.push(keccak256(&tx));
                }
                _ => txs.push(tx),
            }
        }
        if !evict.is_empty() {
            self.mempool.evict(&evict);
        }
        Ok(Block::new(height.0, txs))
    }

    async fn publish(
        &mut self,
        ch: &Channels<TorusContext>,
        height: Height,
        round: Round,
        parts: &[ProposalPart],
    ) {
        self.stream_counter = self.stream_counter.wrapping_add(1);
        let id = stream_id(height, round, self.stream_counter);
        for m in stream_messages(id, parts) {
            if ch
                .network
                .send(NetworkMsg::PublishProposalPart(m))
                .await
                .is_err()
            {
                tracing::warn!(height = height.0, "network gone while streaming a proposal");
                return;
            }
        }
    }

    async fn restream(
        &mut self,
        ch: &Channels<TorusContext>,
        height: Height,
        round: Round,
        valid_round: Round,
        address: Address,
        value_id: ValueId,
    ) {
        let key = (height.0, round_key(round), value_id);
        if let Some(parts) = self.parts.get(&key).cloned() {
            // Someone else's proposal: re-send it exactly as they signed it.
            self.publish(ch, height, round, &parts).await;
            return;
        }
        if address != self.address {
            tracing::debug!(height = height.0, %round, %address, "no parts to re-stream");
            return;
        }
        let block = self
            .values
            .range((height.0, i64::MIN, ValueId([0; 32]))..)
            .take_while(|((h, _, _), _)| *h == height.0)
            .find(|((_, _, id), _)| *id == value_id)
            .map(|(_, v)| v.value.clone());
        let Some(block) = block else {
            tracing::debug!(height = height.0, %round, "value to re-propose not found");
            return;
        };
        tracing::info!(height = height.0, %round, %valid_round, id = %value_id, "re-proposing");
        let parts = build_parts(&self.signer, &block, round, valid_round);
        self.publish(ch, height, round, &parts).await;
    }

    fn received(&mut self, a: Assembled) -> Option<ProposedValue<TorusContext>> {
        let h = a.init.height;
        if h < self.height {
            return None;
        }
        if h > self.height {
            if h.0 <= self.height.0 + MAX_HEIGHTS_AHEAD && self.pending.len() < MAX_PENDING {
                self.pending.push(a);
            }
            return None;
        }
        self.accept(a)
    }

    /// Verifies a stream for the current height and records its value.
    fn accept(&mut self, a: Assembled) -> Option<ProposedValue<TorusContext>> {
        let expected = self.vs.proposer(a.init.height, a.init.round);
        if expected.address != a.init.proposer {
            tracing::debug!(height = a.init.height.0, round = %a.init.round, proposer = %a.init.proposer,
                "proposal from a validator that is not the round's proposer");
            return None;
        }
        if !a.verify(self.signer.chain(), &expected.public_key) {
            tracing::warn!(height = a.init.height.0, round = %a.init.round, proposer = %a.init.proposer,
                "proposal with a bad signature");
            return None;
        }
        let validity = self.proposal_validity(&a.block);
        let v: ProposedValue<TorusContext> = ProposedValue {
            height: a.init.height,
            round: a.init.round,
            valid_round: a.init.pol_round,
            proposer: a.init.proposer,
            value: a.block.clone(),
            validity,
        };
        tracing::debug!(height = v.height.0, round = %v.round, id = %v.value.id(), ?validity, "received proposal");
        if self.remember(v.clone()) {
            self.parts
                .insert((v.height.0, round_key(v.round), v.value.id()), a.parts);
        }
        Some(v)
    }

    /// Within the block limits (bytes and transactions).
    fn fits(&self, b: &Block) -> bool {
        b.size() <= self.cfg.max_block_bytes && b.txs().len() <= self.cfg.max_block_txs
    }

    /// A value synced from a peer: decided already (it comes with a commit
    /// certificate), so only its limits and that every transaction decodes.
    fn synced_validity(&self, b: &Block) -> Validity {
        let ok = self.fits(b) && b.txs().iter().all(|t| SignedTx::decode(t).is_ok());
        Validity::from_bool(ok)
    }

    /// A proposal for the current height: within the limits, and every
    /// transaction authenticated against the committed state it builds on
    /// (`App::authenticate`: decodes, signed by a member of an active epoch).
    /// One pending in the mempool passed that rule on admission and its epoch
    /// was re-checked after the last block, so only the others are verified.
    fn proposal_validity(&self, b: &Block) -> Validity {
        if !self.fits(b) {
            tracing::debug!(
                height = b.height(),
                size = b.size(),
                txs = b.txs().len(),
                "proposal over the block limits"
            );
            return Validity::Invalid;
        }
        let snap = match self.node.store().snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the committed state to validate a proposal");
                return Validity::Invalid;
            }
        };
        for t in b.txs() {
            if self.mempool.contains(&keccak256(t)) {
                continue;
            }
            if let Err(o) = App.authenticate(&snap, t) {
                tracing::debug!(height = b.height(), code = ?o.code, log = %o.log, "proposal with an unauthenticated transaction");
                return Validity::Invalid;
            }
        }
        Validity::Valid
    }

    /// Records a value; false if the height already holds too many.
    fn remember(&mut self, v: ProposedValue<TorusContext>) -> bool {
        let h = v.height.0;
        let n = self
            .values
            .range((h, i64::MIN, ValueId([0; 32]))..)
            .take_while(|((vh, _, _), _)| *vh == h)
            .count();
        let key = (h, round_key(v.round), v.value.id());
        if n >= MAX_VALUES_PER_HEIGHT && !self.values.contains_key(&key) {
            return false;
        }
        if !self.values.contains_key(&key) {
            self.persist(&v);
        }
        self.values.insert(key, v);
        true
    }

    /// Stores a value until its height is decided, so that a restarted engine
    /// (crash, or the stall watchdog) still has what it may have voted for; our
    /// own proposals are flushed before they are sent (never two per round).
    fn persist(&self, v: &ProposedValue<TorusContext>) {
        use malachitebft_app_channel::app::types::codec::Codec as _;
        let Ok(bytes) = super::codec::BftCodec.encode(v) else {
            return;
        };
        let own = v.proposer == self.address;
        let key = proposal_key(v.height.0, round_key(v.round), &v.value.id());
        if let Err(e) = self.node.store().put_proposal(&key, &bytes, own) {
            tracing::error!(height = v.height.0, error = %e, "cannot store a proposal");
        }
    }

    /// Reloads the stored proposals of undecided heights (after a restart).
    fn load_proposals(&mut self) -> Result<(), BftError> {
        use malachitebft_app_channel::app::types::codec::Codec as _;
        let from = proposal_key(self.height.0, i64::MIN, &ValueId([0; 32]));
        let mut n = 0usize;
        for bytes in self.node.store().proposals_from(&from)? {
            let decoded: Result<ProposedValue<TorusContext>, _> =
                super::codec::BftCodec.decode(bytes.into());
            let Ok(v) = decoded else {
                tracing::warn!("a stored proposal does not decode; skipped");
                continue;
            };
            if v.proposer == self.address {
                self.built
                    .insert((v.height.0, round_key(v.round)), v.value.clone());
            }
            self.values
                .insert((v.height.0, round_key(v.round), v.value.id()), v);
            n += 1;
        }
        if n > 0 {
            tracing::info!(
                height = self.height.0,
                values = n,
                "reloaded undecided proposals"
            );
        }
        Ok(())
    }

    fn prune_below(&mut self, height: Height) {
        let h = height.0;
        self.values = self.values.split_off(&(h, i64::MIN, ValueId([0; 32])));
        self.parts = self.parts.split_off(&(h, i64::MIN, ValueId([0; 32])));
        self.built = self.built.split_off(&(h, i64::MIN));
        self.pending.retain(|a| a.init.height >= height);
    }

    /// Commits a decided block; `Err` halts the node.
    fn decided(
        &mut self,
        cert: CommitCertificate<TorusContext>,
    ) -> Result<Next<TorusContext>, BftError> {
        let h = cert.height;
        let block = self
            .values
            .range((h.0, i64::MIN, ValueId([0; 32]))..)
            .take_while(|((vh, _, _), _)| *vh == h.0)
            .find(|((_, _, id), _)| *id == cert.value_id)
            .map(|(_, v)| v.value.clone());
        let Some(block) = block else {
            // Decided without the value here (lost in a restart): run the
            // height again; value sync fetches it from the others.
            tracing::error!(height = h.0, id = %cert.value_id, "decided a value this node does not have; restarting the height");
            return Ok(Next::Restart(h, self.vs.clone()));
        };
        let rec = DecidedRecord {
            value: block.encode(),
            certificate: encode_certificate(&cert),
        };
        let committed = self
            .node
            .apply_block_with(h.0, block.txs(), Some(&rec))
            .map_err(|e| {
                tracing::error!(height = h.0, error = %e, "HALT: the decided block failed to apply; stopping consensus");
                BftError::Halted(format!("height {}: {e}", h.0))
            })?;
        let hashes: Vec<[u8; 32]> = block.txs().iter().map(|t| keccak256(t)).collect();
        self.mempool.remove(&hashes);
        match self
            .node
            .store()
            .snapshot()
            .map_err(|e| AppError::Storage(e.to_string()))
            .and_then(|snap| {
                Ok((
                    crate::app::current_epoch(&snap)?,
                    crate::app::next_epoch(&snap)?,
                ))
            }) {
            Ok((cur, next)) => {
                if let Some(next) = &next {
                    // Its fresh members follow the chain before they vote.
                    super::allow_committee(&self.node, next);
                }
                self.mempool
                    .after_block(h.0, cur.epoch, next.map(|e| e.epoch))
            }
            Err(e) => {
                tracing::warn!(height = h.0, error = %e, "mempool: cannot read the epochs after a block")
            }
        }
        tracing::info!(
            height = h.0,
            round = %cert.round,
            txs = block.txs().len(),
            app_hash = %hex::encode(committed.app_hash),
            signatures = cert.commit_signatures.len(),
            "committed block"
        );
        let next = Height(h.0 + 1);
        self.prune_below(next);
        if let Err(e) =
            self.node
                .store()
                .prune_proposals(&proposal_key(next.0, i64::MIN, &ValueId([0; 32])))
        {
            tracing::warn!(error = %e, "cannot prune stored proposals");
        }
        self.vs = self.current_set().map_err(|e| {
            tracing::error!(height = h.0, error = %e, "HALT: no validator set after the block");
            BftError::Halted(format!("validator set after height {}: {e}", h.0))
        })?;
        self.height = next;
        self.round = Round::Nil;
        Ok(Next::Start(next, self.vs.clone()))
    }

    fn decided_value(
        &self,
        height: Height,
    ) -> Result<Option<RawDecidedValue<TorusContext>>, BftError> {
        let Some(rec) = self.node.store().decided(height.0)? else {
            return Ok(None);
        };
        match decode_certificate(&rec.certificate) {
            Ok(certificate) => Ok(Some(RawDecidedValue::new(rec.value.into(), certificate))),
            Err(e) => {
                tracing::error!(height = height.0, error = %e, "stored certificate does not decode");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bft::context::Vote;
    use crate::bft::signing::chain_hash;
    use crate::config::{Genesis, GenesisNode, NodeConfig};
    use crate::crypto::NodeKey;
    use crate::mempool::{Limits, Refused};
    use crate::tx::TxBody;
    use malachitebft_app_channel::app::types::core::{
        CommitSignature, NilOrVal, SigningProvider, VoteType,
    };

    fn one_node(dir: &std::path::Path) -> (Arc<NodeState>, Driver) {
        let key = NodeKey::random();
        let genesis = Genesis {
            chain_id: "driver-test".into(),
            epoch: 1,
            n: 1,
            k: 1,
            t: 0,
            nodes: vec![GenesisNode {
                index: 1,
                pubkey: hex::encode(key.public().compressed()),
                p2p: String::new(),
                consensus: "/ip4/127.0.0.1/tcp/1".into(),
                rpc: String::new(),
            }],
        };
        let text = format!(
            "data_dir = {:?}\ngenesis = \"g.toml\"\ndev_mode = true\n",
            dir.display().to_string()
        );
        let cfg: NodeConfig = toml::from_str(&text).unwrap();
        let signer = Signer::new(
            Arc::new(NodeKey::from_bytes(&key.to_bytes()).unwrap()),
            chain_hash("driver-test", b"g"),
        );
        let node = NodeState::open_with(cfg, key, genesis).unwrap();
        let vs = ValidatorSet::from_epoch(&node.epoch().unwrap()).unwrap();
        let d = Driver::new(
            node.clone(),
            Mempool::for_node(&node, Limits::default()),
            signer,
            BftConfig::default(),
            vs,
        );
        (node, d)
    }

    fn certificate(d: &Driver, height: u64, block: &Block) -> CommitCertificate<TorusContext> {
        let vote = d.signer.sign_vote(Vote {
            vote_type: VoteType::Precommit,
            height: Height(height),
            round: Round::new(0),
            value_id: NilOrVal::Val(block.id()),
            validator_address: d.address,
            extension: None,
        });
        CommitCertificate {
            height: Height(height),
            round: Round::new(0),
            value_id: block.id(),
            commit_signatures: vec![CommitSignature::new(d.address, vote.signature)],
        }
    }

    fn value(d: &Driver, block: &Block) -> ProposedValue<TorusContext> {
        ProposedValue {
            height: Height(block.height()),
            round: Round::new(0),
            valid_round: Round::Nil,
            proposer: d.address,
            value: block.clone(),
            validity: Validity::Valid,
        }
    }

    #[tokio::test]
    async fn proposals_skip_bad_txs_and_decisions_commit_with_their_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (node, mut d) = one_node(dir.path());
        let tx = node
            .sign_tx(TxBody::KeyAssign {
                verifier: "test".into(),
                verifier_id: "a@b".into(),
            })
            .unwrap()
            .encode();
        assert_eq!(
            d.mempool.insert_from_peer(2, b"not a transaction".to_vec()),
            Err(Refused::Decode),
            "undecodable txs never enter the mempool"
        );
        d.mempool.submit_local(tx.clone()).unwrap();
        let block = d
            .build_block(Height(1), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(block.txs(), &[tx.clone()][..]);
        assert_eq!(d.mempool.len(), 1);

        d.remember(value(&d, &block));
        let cert = certificate(&d, 1, &block);
        match d.decided(cert.clone()).unwrap() {
            Next::Start(h, _) => assert_eq!(h, Height(2)),
            Next::Restart(..) => panic!("restarted"),
        }
        assert_eq!(node.store().head().unwrap().height, 1);
        assert!(d.mempool.is_empty(), "committed txs leave the mempool");
        let raw = d.decided_value(Height(1)).unwrap().unwrap();
        assert_eq!(Block::decode(&raw.value_bytes).unwrap(), block);
        assert_eq!(raw.certificate, cert);
        assert_eq!(node.store().min_decided_height().unwrap(), Some(1));
    }

    #[tokio::test]
    async fn undecided_values_survive_a_restart_and_are_pruned_once_decided() {
        let dir = tempfile::tempdir().unwrap();
        let (node, mut d) = one_node(dir.path());
        let ours = Block::new(1, vec![b"a".to_vec()]);
        let other = Block::new(1, vec![b"b".to_vec()]);
        let mut theirs = value(&d, &other);
        theirs.proposer = Address([9; 20]);
        theirs.round = Round::new(1);
        assert!(d.remember(value(&d, &ours)));
        assert!(d.remember(theirs));
        // A new driver (the engine relaunched) finds both, and its own as built.
        let vs = ValidatorSet::from_epoch(&node.epoch().unwrap()).unwrap();
        let mut again = Driver::new(
            node.clone(),
            Mempool::for_node(&node, Limits::default()),
            d.signer.clone(),
            BftConfig::default(),
            vs,
        );
        again.height = Height(1);
        again.load_proposals().unwrap();
        assert_eq!(again.values.len(), 2);
        assert_eq!(again.built.get(&(1, 0)), Some(&ours));
        // Decided: the stored values of that height go away.
        let cert = certificate(&again, 1, &ours);
        assert!(matches!(again.decided(cert).unwrap(), Next::Start(h, _) if h == Height(2)));
        assert!(node.store().proposals_from(&[]).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_decision_that_cannot_apply_halts_and_an_unknown_one_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (node, mut d) = one_node(dir.path());
        // Height 3 on top of head 0: the store refuses it, so the driver halts.
        let block = Block::new(3, Vec::new());
        d.remember(value(&d, &block));
        let err = d.decided(certificate(&d, 3, &block)).unwrap_err();
        assert!(matches!(err, BftError::Halted(_)), "{err}");
        assert_eq!(node.store().head().unwrap().height, 0);
        // A decided value the driver never saw restarts the height.
        let unseen = Block::new(1, vec![b"x".to_vec()]);
        assert!(matches!(
            d.decided(certificate(&d, 1, &unseen)).unwrap(),
            Next::Restart(h, _) if h == Height(1)
        ));
    }

    fn key_assign(node: &NodeState, who: &str) -> Vec<u8> {
        node.sign_tx(TxBody::KeyAssign {
            verifier: "test".into(),
            verifier_id: who.into(),
        })
        .unwrap()
        .encode()
    }

    /// The validity this driver gives a stream of `block` from the round's proposer.
    fn received_validity(d: &mut Driver, block: &Block) -> Validity {
        d.height = Height(block.height());
        let parts = build_parts(&d.signer, block, Round::new(0), Round::Nil);
        let a = Assembled::from_parts(parts).unwrap();
        d.accept(a).unwrap().validity
    }

    #[tokio::test]
    async fn a_proposal_with_an_unauthenticated_tx_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (node, mut d) = one_node(dir.path());
        let good = key_assign(&node, "a@b");
        // Signed by a key that is not the committee's, claiming member 1.
        let forged = SignedTx::sign(
            &NodeKey::random(),
            1,
            1,
            0,
            TxBody::KeyAssign {
                verifier: "test".into(),
                verifier_id: "c@d".into(),
            },
        )
        .encode();
        // An epoch that is not active, signed by the member itself.
        let mut stale = SignedTx::decode(&good).unwrap();
        stale.epoch = 5;
        let stale = SignedTx::sign(
            &NodeKey::from_bytes(&node.key().to_bytes()).unwrap(),
            5,
            1,
            0,
            stale.body,
        )
        .encode();

        assert_eq!(
            received_validity(&mut d, &Block::new(1, vec![good.clone()])),
            Validity::Valid
        );
        for bad in [forged, stale, b"junk".to_vec()] {
            let block = Block::new(1, vec![good.clone(), bad]);
            assert_eq!(received_validity(&mut d, &block), Validity::Invalid);
        }
        // Synced (decided) values keep the stateless check only.
        let decided = Block::new(1, vec![good.clone()]);
        assert_eq!(d.synced_validity(&decided), Validity::Valid);
        assert_eq!(
            d.synced_validity(&Block::new(1, vec![b"junk".to_vec()])),
            Validity::Invalid
        );
    }

    #[tokio::test]
    async fn a_proposal_over_the_block_limits_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (node, mut d) = one_node(dir.path());
        d.cfg.max_block_bytes = 2048;
        d.cfg.max_block_txs = 3;
        let txs: Vec<Vec<u8>> = (0..4)
            .map(|i| key_assign(&node, &format!("u{i}")))
            .collect();
        assert_eq!(
            received_validity(&mut d, &Block::new(1, txs[..3].to_vec())),
            Validity::Valid
        );
        assert_eq!(
            received_validity(&mut d, &Block::new(1, txs.clone())),
            Validity::Invalid,
            "more transactions than max_block_txs"
        );
        let big = key_assign(&node, &"x".repeat(2100));
        assert_eq!(
            received_validity(&mut d, &Block::new(1, vec![big])),
            Validity::Invalid,
            "larger than max_block_bytes"
        );
    }

    #[tokio::test]
    async fn a_built_block_from_a_full_mempool_fits_the_block_limits() {
        let dir = tempfile::tempdir().unwrap();
        let (node, mut d) = one_node(dir.path());
        d.cfg.max_block_bytes = 4096;
        d.cfg.max_block_txs = 1000;
        // Many small transactions: their length prefixes count too.
        for i in 0..200 {
            d.mempool
                .submit_local(key_assign(&node, &format!("{i}")))
                .unwrap();
        }
        let block = d
            .build_block(Height(1), Duration::from_secs(2))
            .await
            .unwrap();
        assert!(!block.txs().is_empty());
        assert!(block.size() <= 4096, "{} bytes", block.size());
        assert_eq!(block.size(), block.encode().len());
        assert_eq!(received_validity(&mut d, &block), Validity::Valid);
    }
}
