//! The key buffer's orchestration on the keygen thread: batch runs and
//! recoveries by batch, the open-batch trigger, transactions re-submitted until
//! decided, and the reaction to committed blocks, messages and ticks.
//!
//! This is the I/O shell around the sans-IO batch runs (`run`): it reads the
//! committed state and the store, feeds each run its inputs, and executes the
//! [`Action`]s the run returns (sends, submissions, durable writes) in order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod execute;
pub(crate) mod handover;
mod held;
mod refill;
mod view;

use super::byzantine::Byzantine;
use super::recover::{self, Recovery};
use super::run::BatchRun;
use super::{KeygenConfig, KeygenError};
use crate::app::{self, Event};
use crate::node::{CommittedBlock, NodeState};
use crate::p2p::{Inbound, Message, P2pClient};
use crate::tx::{BatchId, EpochInfo, TxBody};
use refill::Refill;
use view::SettledCursor;

/// A batch whose dealer set was decided this long ago without our shares is
/// recovered from peers' points (in parallel with the normal path).
const RECOVER_AFTER: Duration = Duration::from_secs(3);

/// How often this node announces the batches it holds ([`Message::Held`]) and
/// prunes the recovery material of batches every member holds.
const HELD_EVERY: Duration = Duration::from_secs(2);

/// Most batches whose recovery material one prune deletes (a store written by an
/// earlier version may hold every batch's).
const PRUNE_BATCHES: usize = 64;

/// Decided blocks kept below the height every member committed (a margin for a
/// member whose announcement is a little stale).
const BLOCKS_KEPT: u64 = 256;

/// Most decided blocks one prune deletes.
const PRUNE_BLOCKS: u64 = 4096;

/// A transaction this node submitted and may re-submit until it is decided.
struct Pending {
    tx: TxBody,
    at: Instant,
}

pub(crate) struct Keygen {
    node: Arc<NodeState>,
    p2p: P2pClient,
    cfg: KeygenConfig,
    runs: BTreeMap<u64, BatchRun>,
    recoveries: BTreeMap<u64, Recovery>,
    open_sent: Option<(u64, Instant)>,
    pending: Vec<Pending>,
    refill: Refill,
    /// Batches below it are settled here (see `view`): committed views start there.
    settled: SettledCursor,
    /// The current committee, as of the last committed view.
    committee: Option<EpochInfo>,
    /// The members' announcements of the batches they hold.
    held: held::Held,
    /// When this node last announced (and pruned).
    held_at: Option<Instant>,
    /// Recovery material below this key index is pruned (since the start).
    pruned_below: u64,
    /// Decided blocks below this height are pruned (since the start).
    pruned_height: u64,
    /// A test dealer's misbehaviour over our outgoing messages (dev mode only).
    byzantine: Option<Byzantine>,
    /// The hand-over to the next committee (see `handover`).
    handover: handover::Handover,
}

impl Keygen {
    pub(super) fn new(node: Arc<NodeState>, p2p: P2pClient, cfg: KeygenConfig) -> Self {
        let byzantine = if node.config().dev_mode {
            match cfg.faults.dealer() {
                Ok(f) => Byzantine::new(f, p2p.index()),
                Err(e) => {
                    tracing::error!(error = %e, "keygen.faults: ignored");
                    None
                }
            }
        } else {
            None
        };
        Keygen {
            byzantine,
            node,
            p2p,
            cfg,
            runs: BTreeMap::new(),
            recoveries: BTreeMap::new(),
            open_sent: None,
            pending: Vec::new(),
            refill: Refill::default(),
            settled: SettledCursor::default(),
            committee: None,
            held: held::Held::default(),
            held_at: None,
            pruned_below: 0,
            pruned_height: 0,
            handover: handover::Handover::default(),
        }
    }

    fn me(&self) -> u32 {
        self.p2p.index()
    }

    /// Whether this node is the member of `epoch` at its network index: a fresh
    /// member of the next committee, or a node that left, takes no part in the
    /// current committee's key generation.
    fn member_of(&self, epoch: &EpochInfo) -> bool {
        epoch.index_of(&self.node.key().public().compressed()) == Some(self.me())
    }

    pub(crate) fn submit(&mut self, body: TxBody) {
        if let TxBody::DealerSet { batch, .. } = &body {
            // A new proposal supersedes an earlier one of ours (a dealer was blamed).
            let start = batch.start;
            self.pending.retain(
                |p| !matches!(&p.tx, TxBody::DealerSet { batch, .. } if batch.start == start),
            );
        }
        match self.sign(body.clone()) {
            Ok(tx) => {
                if let Err(e) = self.node.submit(tx.encode()) {
                    tracing::warn!(error = %e, kind = body.kind(), "could not submit a transaction");
                }
                self.pending.push(Pending {
                    tx: body,
                    at: Instant::now(),
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot sign a transaction"),
        }
    }

    /// Signs `body` as a member of the next committee when it is that committee's
    /// to sign (a resharing batch's transactions, `ReshareComplete`), else of the
    /// current one.
    pub(crate) fn sign(&self, body: TxBody) -> Result<crate::tx::SignedTx, crate::node::NodeError> {
        match self.next_committee() {
            Some(next) if body.next_committee_may_sign(next.epoch) => {
                self.node.sign_tx_in(next, body)
            }
            _ => self.node.sign_tx(body),
        }
    }

    /// Re-reads committed state and (re)starts whatever this node should be
    /// doing: the open batch, public keys of decided batches, recoveries.
    pub(super) fn resume(&mut self) {
        let (epoch, open, batches) = match self.committed_view() {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "keygen cannot read the committed state");
                return;
            }
        };
        self.after_restart_switch();
        self.resume_handover();
        if let Some(b) = open {
            self.ensure_run(&epoch, b, true);
        }
        for rec in batches {
            if rec.keys_hash.is_some() {
                // Decided: only shares may be missing.
                if !self.has_shares(&rec.batch) {
                    self.start_recovery(&epoch, &rec);
                }
                continue;
            }
            if self.has_shares(&rec.batch) {
                // Shares stored, public keys pending: rejoin the vote.
                self.ensure_run(&epoch, rec.batch, false);
                self.restore_run(&rec);
            } else {
                self.start_recovery(&epoch, &rec);
            }
        }
        self.maybe_open();
    }

    /// The current epoch, the open batch and the decided batches of the epoch that are
    /// not settled here (public keys pending or shares missing), from the settled cursor,
    /// which it moves on.
    #[allow(clippy::type_complexity)]
    fn committed_view(
        &mut self,
    ) -> Result<
        (
            EpochInfo,
            Option<BatchId>,
            Vec<crate::store::records::BatchRecord>,
        ),
        KeygenError,
    > {
        let snap = self.node.store().snapshot()?;
        let epoch = app::current_epoch(&snap)?;
        let open = app::open_batch(&snap)?;
        let c = app::counters(&snap)?;
        let (out, cursor) =
            view::unsettled_batches(&snap, epoch.epoch, c.next_batch_start, self.settled, |b| {
                self.has_shares(b)
            })?;
        drop(snap);
        self.settled = cursor;
        self.committee = Some(epoch.clone());
        Ok((epoch, open, out))
    }

    /// The current epoch and the decided record of batch `start` if it belongs to it.
    fn current_record(
        &self,
        start: u64,
    ) -> Option<(EpochInfo, crate::store::records::BatchRecord)> {
        let snap = self.node.store().snapshot().ok()?;
        let epoch = app::current_epoch(&snap).ok()?;
        let rec = app::batch_record(&snap, start).ok().flatten()?;
        (rec.batch.epoch == epoch.epoch).then_some((epoch, rec))
    }

    /// Whether this node holds its shares of `batch`, of the batch's epoch: after a
    /// switch, a share of the epoch before is not one (a member that missed the
    /// resharing recovers its new shares from peers).
    fn has_shares(&self, batch: &BatchId) -> bool {
        self.node
            .store()
            .share_epoch(batch.start)
            .is_ok_and(|e| e == Some(batch.epoch))
    }

    fn ensure_run(&mut self, epoch: &EpochInfo, batch: BatchId, deal: bool) {
        if self.runs.contains_key(&batch.start) || !self.member_of(epoch) {
            return;
        }
        let run = match self.open_run(epoch, batch) {
            Ok(run) => run,
            Err(e) => {
                tracing::error!(batch = batch.start, error = %e, "cannot start batch");
                return;
            }
        };
        self.runs.insert(batch.start, run);
        if deal {
            match self.node.store().dealing_seed(batch.start) {
                Ok(seed) => self.with_run(batch.start, |run, cx| run.deal(cx, seed)),
                // The run still verifies, echoes and aggregates; it only does not deal.
                Err(e) => tracing::error!(error = %e, "cannot read the dealing seed: not dealing"),
            }
        }
        // Ask peers to resend what they already sent us (after a restart).
        self.p2p.broadcast(&Message::Resync { batch });
    }

    /// A run of `batch` with what committed state knows of it: the dealers blamed
    /// so far in the epoch and its dealer set if decided.
    fn open_run(&self, epoch: &EpochInfo, batch: BatchId) -> Result<BatchRun, KeygenError> {
        let snap = self.node.store().snapshot()?;
        let mut blamed = BTreeSet::new();
        for n in &epoch.nodes {
            if app::is_blamed(&snap, epoch.epoch, n.index)? {
                blamed.insert(n.index);
            }
        }
        let decided = app::batch_record(&snap, batch.start)?;
        drop(snap);
        BatchRun::new(epoch, batch, self.me(), blamed, decided, Instant::now())
    }

    fn start_recovery(&mut self, epoch: &EpochInfo, rec: &crate::store::records::BatchRecord) {
        if self.recoveries.contains_key(&rec.batch.start)
            || self.has_shares(&rec.batch)
            || !self.member_of(epoch)
        {
            return;
        }
        tracing::warn!(
            batch = rec.batch.start,
            keys = rec.batch.count,
            "no shares for a decided batch: recovering them from peers"
        );
        match Recovery::new(epoch, rec, self.me()) {
            Ok(r) => {
                r.request(&self.p2p);
                self.recoveries.insert(rec.batch.start, r);
            }
            Err(e) => tracing::error!(batch = rec.batch.start, error = %e, "cannot recover batch"),
        }
    }

    pub(super) fn on_message(&mut self, m: Inbound) {
        if let Message::Held {
            epoch,
            below,
            height,
        } = m.msg
        {
            if let Some(c) = &self.committee {
                self.held.observe(c, m.from, epoch, below, height);
            }
            return;
        }
        let Some(batch) = m.msg.batch() else {
            // Transactions are routed to the mempool before they get here.
            return;
        };
        let from = m.from;
        if let Message::Resync { batch } = &m.msg {
            // Our resharing sends, which live outside any run.
            self.resend_resharing(from, batch);
        }
        match m.msg {
            Message::FetchVectors { batch } => {
                self.serve_vectors(from, &batch);
                return;
            }
            Message::Vectors { batch, vectors } => {
                self.on_vectors(from, &batch, &vectors);
                return;
            }
            Message::RecoverRequest { batch } => {
                recover::serve(&self.node, &self.p2p, from, &batch);
                return;
            }
            Message::RecoverPoints { batch, points } => {
                let done = match self.recoveries.get_mut(&batch.start) {
                    Some(r) => r.on_points(&self.node, &self.p2p, from, &batch, &points),
                    None => false,
                };
                if done {
                    self.finish_recovery(batch.start);
                }
                return;
            }
            Message::RecoverCommitments { batch, commitments } => {
                let done = match self.recoveries.get_mut(&batch.start) {
                    Some(r) => r.on_summed(&self.node, from, &batch, &commitments),
                    None => false,
                };
                if done {
                    self.finish_recovery(batch.start);
                }
                return;
            }
            Message::FetchCommitments {
                batch,
                dealer,
                digest,
            } => {
                let have = self
                    .runs
                    .get(&batch.start)
                    .and_then(|r| r.commitments_bytes(dealer, &digest));
                let bytes = match have {
                    Some(b) => Some(b),
                    None => recover::stored_commitments(&self.node, &batch, dealer, &digest),
                };
                if let Some(commitments) = bytes {
                    self.p2p.send(
                        from,
                        Message::Commitments {
                            batch,
                            dealer,
                            commitments,
                        },
                    );
                }
                return;
            }
            Message::Commitments {
                batch,
                dealer,
                commitments,
            } => {
                if let Some(r) = self.recoveries.get_mut(&batch.start) {
                    let done = r.on_commitments(&self.node, &self.p2p, dealer, &commitments);
                    if done {
                        self.finish_recovery(batch.start);
                    }
                    return;
                }
                if self.runs.contains_key(&batch.start) {
                    self.with_run(batch.start, |run, cx| {
                        run.on_commitments(cx, dealer, commitments)
                    });
                    self.after_progress(batch.start);
                }
                return;
            }
            _ => {}
        }
        let Some(run) = self.runs.get_mut(&batch.start) else {
            tracing::debug!(
                from,
                kind = m.msg.kind(),
                batch = batch.start,
                "message for a batch not open here"
            );
            return;
        };
        if run.batch != batch {
            tracing::warn!(
                from,
                batch = batch.start,
                "message names another batch shape; dropped"
            );
            return;
        }
        let msg = m.msg;
        self.with_run(batch.start, |run, cx| run.on_message(cx, from, msg));
        self.after_progress(batch.start);
    }

    /// Every [`HELD_EVERY`]: tells the committee which batches and blocks this node
    /// holds, prunes the recovery material of the batches every member holds, and
    /// the decided blocks well below the height every member committed (see `held`).
    fn announce_and_prune(&mut self) {
        let now = Instant::now();
        if self
            .held_at
            .is_some_and(|t| now.duration_since(t) < HELD_EVERY)
        {
            return;
        }
        self.held_at = Some(now);
        // Moves the settled cursor over the batches finished since the last view.
        if let Err(e) = self.committed_view() {
            tracing::warn!(error = %e, "keygen cannot read the committed state");
            return;
        }
        let height = match self.node.store().head() {
            Ok(h) => h.height,
            Err(e) => {
                tracing::warn!(error = %e, "keygen cannot read the committed height");
                return;
            }
        };
        let Some(c) = &self.committee else {
            return;
        };
        let own = if self.settled.epoch == c.epoch {
            self.settled.below
        } else {
            0
        };
        self.p2p.broadcast(&Message::Held {
            epoch: c.epoch,
            below: own,
            height,
        });
        let all = self.held.everyone_below(c, self.me(), own);
        if all > self.pruned_below {
            match self
                .node
                .store()
                .prune_recovery_material(all, PRUNE_BATCHES)
            {
                Ok(upto) => {
                    tracing::debug!(
                        below = upto,
                        "every member holds these batches: their recovery material is pruned"
                    );
                    self.pruned_below = upto;
                }
                Err(e) => tracing::warn!(error = %e, "cannot prune recovery material"),
            }
        }
        let synced = self
            .held
            .everyone_height(c, self.me(), height)
            .saturating_sub(BLOCKS_KEPT);
        if synced > self.pruned_height {
            match self.node.store().prune_decided_below(synced, PRUNE_BLOCKS) {
                Ok(upto) => {
                    tracing::debug!(
                        below = upto,
                        "every member committed these heights: their decided blocks are pruned"
                    );
                    self.pruned_height = upto;
                }
                Err(e) => tracing::warn!(error = %e, "cannot prune decided blocks"),
            }
        }
    }

    fn finish_recovery(&mut self, start: u64) {
        let Some(r) = self.recoveries.remove(&start) else {
            return;
        };
        tracing::info!(batch = start, "shares recovered from peers");
        if self.runs.contains_key(&start) {
            if let Some((_, rec)) = self.current_record(start) {
                self.restore_run(&rec);
                drop(r);
                return;
            }
        }
        // If the public keys are not decided yet, rejoin the vote.
        let decided = self
            .node
            .store()
            .snapshot()
            .ok()
            .and_then(|s| app::batch_record(&s, start).ok().flatten())
            .map(|b| b.keys_hash.is_some())
            .unwrap_or(true);
        if !decided {
            if let Some((epoch, rec)) = self.current_record(start) {
                self.ensure_run(&epoch, rec.batch, false);
                self.restore_run(&rec);
            }
        }
        drop(r);
    }

    /// After any progress on a batch: propose its dealer set when ready.
    fn after_progress(&mut self, start: u64) {
        let Some(run) = self.runs.get_mut(&start) else {
            return;
        };
        if let Some(body) = run.dealer_set_proposal(Instant::now(), &self.cfg) {
            self.submit(body);
        }
    }

    pub(super) fn on_tick(&mut self) {
        let starts: Vec<u64> = self.runs.keys().copied().collect();
        let mut stuck = Vec::new();
        for s in starts {
            self.after_progress(s);
            self.with_run(s, |run, cx| run.on_tick(cx));
            if let Some(run) = self.runs.get(&s) {
                if run.stuck_since_decided(Instant::now(), RECOVER_AFTER)
                    && !self.recoveries.contains_key(&s)
                {
                    stuck.push(s);
                }
            }
        }
        for s in stuck {
            if let Some((epoch, rec)) = self.current_record(s) {
                self.start_recovery(&epoch, &rec);
            }
        }
        for r in self.recoveries.values_mut() {
            r.on_tick(&self.p2p);
        }
        self.node
            .metrics()
            .keygen_recovering
            .set(i64::try_from(self.recoveries.len()).unwrap_or(i64::MAX));
        self.announce_and_prune();
        // Re-submit transactions that were lost (a restarted proposer's mempool).
        let resubmit = Duration::from_millis(self.cfg.resubmit_ms);
        let now = Instant::now();
        let due: Vec<TxBody> = self
            .pending
            .iter_mut()
            .filter(|p| now.duration_since(p.at) >= resubmit)
            .map(|p| {
                p.at = now;
                p.tx.clone()
            })
            .collect();
        for body in due {
            let kind = body.kind();
            let submitted = self
                .sign(body)
                .map_err(|e| e.to_string())
                .and_then(|tx| self.node.submit(tx.encode()).map_err(|e| e.to_string()));
            if let Err(e) = submitted {
                tracing::warn!(error = %e, kind, "could not re-submit a transaction");
            }
        }
        self.maybe_vote_handover();
        self.handover_tick();
        self.maybe_open();
    }

    pub(super) fn on_block(&mut self, b: &CommittedBlock) {
        let epoch = match self.node.epoch() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "keygen cannot read the epoch");
                return;
            }
        };
        // First, so that a batch reopened at the same index in this block (after
        // a cancel at its start) gets a fresh run below.
        self.drop_cancelled_runs();
        for (_, outcome) in &b.txs {
            for e in &outcome.events {
                match e {
                    Event::BatchOpened { batch } => {
                        self.open_sent = None;
                        self.ensure_run(&epoch, *batch, true);
                    }
                    Event::DealerSet { batch, .. } => {
                        let rec = self
                            .node
                            .store()
                            .snapshot()
                            .ok()
                            .and_then(|s| app::batch_record(&s, batch.start).ok().flatten());
                        let Some(rec) = rec else { continue };
                        if self.runs.contains_key(&batch.start) {
                            self.with_run(batch.start, |run, cx| run.on_decided(cx, &rec));
                        } else {
                            self.start_recovery(&epoch, &rec);
                        }
                    }
                    Event::PublicKeys { batch } => {
                        let mut missing = !self.has_shares(batch);
                        if let Some(has) = self.runs.get(&batch.start).map(BatchRun::has_shares) {
                            missing = !has && missing;
                            self.with_run(batch.start, |run, cx| run.finish(cx));
                            self.runs.remove(&batch.start);
                        }
                        self.p2p.drop_batch(batch.start);
                        if missing {
                            // The network finished without us (we were down or cut off).
                            let rec =
                                self.node.store().snapshot().ok().and_then(|s| {
                                    app::batch_record(&s, batch.start).ok().flatten()
                                });
                            if let Some(rec) = rec {
                                self.start_recovery(&epoch, &rec);
                            }
                        }
                    }
                    Event::Blamed {
                        node, as_dealer, ..
                    } => {
                        for run in self.runs.values_mut() {
                            run.on_blamed(*node, *as_dealer);
                        }
                    }
                    other => self.on_handover_event(other),
                }
            }
        }
        // Forget pending transactions the block decided one way or another.
        self.pending.retain(|p| !is_settled(&self.node, &p.tx));
        let starts: Vec<u64> = self.runs.keys().copied().collect();
        for s in starts {
            self.after_progress(s);
        }
        self.maybe_open();
    }

    /// Drops the runs of batches consensus no longer has: neither open nor
    /// decided (cancelled at their deadline, or abandoned at an epoch change).
    /// Their keys are never created; the next batch at the same index starts a
    /// fresh run (and deals the same dealing again, from the persisted seed).
    fn drop_cancelled_runs(&mut self) {
        let Ok(snap) = self.node.store().snapshot() else {
            return;
        };
        let Ok(open) = app::open_batch(&snap) else {
            return;
        };
        let resharing = self.next_committee().map(|n| n.epoch);
        let mut gone = Vec::new();
        for (start, run) in &self.runs {
            if open == Some(run.batch) || resharing == Some(run.batch.epoch) {
                // Open, or the resharing of a created batch (its own record).
                continue;
            }
            match app::batch_record(&snap, *start) {
                Ok(Some(rec)) if rec.batch == run.batch => continue,
                Ok(_) => gone.push(run.batch),
                Err(_) => continue,
            }
        }
        drop(snap);
        for batch in gone {
            tracing::warn!(
                start = batch.start,
                keys = batch.count,
                "batch cancelled by consensus (no dealer set before its deadline): dropping its run"
            );
            self.runs.remove(&batch.start);
            self.p2p.drop_batch(batch.start);
            // Its dealer set can never be decided; a complaint stays valid evidence.
            self.pending.retain(|p| {
                !matches!(&p.tx, TxBody::DealerSet { batch: b, .. } | TxBody::PublicKeys { batch: b, .. } if *b == batch)
            });
            if self.open_sent.is_some_and(|(s, _)| s == batch.start) {
                self.open_sent = None;
            }
        }
    }
}

/// Whether committed state already settled what `tx` asked for.
fn is_settled(node: &NodeState, tx: &TxBody) -> bool {
    let Ok(snap) = node.store().snapshot() else {
        return false;
    };
    let next = app::next_epoch(&snap).ok().flatten().map(|n| n.epoch);
    // A resharing batch's record is its own until the switch.
    let record = |b: &BatchId| {
        if next == Some(b.epoch) {
            app::reshare_record(&snap, b.start).ok().flatten()
        } else {
            app::batch_record(&snap, b.start)
                .ok()
                .flatten()
                .filter(|r| r.batch.epoch == b.epoch)
        }
    };
    match tx {
        TxBody::DealerSet { batch, .. } => record(batch).is_some(),
        TxBody::PublicKeys { batch, .. } => record(batch).is_some_and(|b| b.keys_hash.is_some()),
        TxBody::Complaint { dealer, batch, .. } => {
            // Settled once the dealer (or, for a refuted complaint, this node) is
            // blamed; a resharing dealer is blamed in the epoch before the batch's.
            let me = node.index().unwrap_or(0);
            let dealer_epoch = if next == Some(batch.epoch) {
                batch.epoch - 1
            } else {
                batch.epoch
            };
            app::is_blamed(&snap, dealer_epoch, *dealer).unwrap_or(false)
                || app::is_blamed(&snap, batch.epoch, me).unwrap_or(false)
        }
        TxBody::EpochHandover { next: n } => {
            next.is_some_and(|e| e >= n.epoch)
                || app::current_epoch(&snap).is_ok_and(|c| c.epoch >= n.epoch)
        }
        TxBody::ReshareComplete { epoch, .. } => {
            app::current_epoch(&snap).is_ok_and(|c| c.epoch >= *epoch)
        }
        // Decided either way once the epoch is no longer pending.
        TxBody::HandoverAbort { epoch } => next != Some(*epoch),
        _ => true,
    }
}
