//! The key buffer's orchestration on the keygen thread: batch runs and
//! recoveries by batch, the open-batch trigger, transactions re-submitted until
//! decided, and the reaction to committed blocks, messages and ticks.
//!
//! This is the I/O shell around the sans-IO batch runs (`run`): it reads the
//! committed state and the store, feeds each run its inputs, and executes the
//! [`Action`]s the run returns (sends, submissions, durable writes) in order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::byzantine::Byzantine;
use super::recover::{self, Recovery};
use super::run::{Action, BatchRun, Cx, SharesToStore};
use super::KeygenConfig;
use crate::app::{self, Event};
use crate::node::{CommittedBlock, NodeState};
use crate::p2p::{Inbound, Message, P2pClient};
use crate::tx::{BatchId, EpochInfo, TxBody};

/// A batch whose dealer set was decided this long ago without our shares is
/// recovered from peers' points (in parallel with the normal path).
const RECOVER_AFTER: Duration = Duration::from_secs(3);

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
    /// A test dealer's misbehaviour over our outgoing messages (dev mode only).
    byzantine: Option<Byzantine>,
}

/// The buffer's refill state (sans-IO): a batch opens once fewer keys than the
/// low watermark are buffered, and batches keep opening until the high
/// watermark is reached (hysteresis), so a buffer between the two watermarks
/// is refilled to the top rather than left there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Refill {
    filling: bool,
}

impl Refill {
    /// With `buffered` free plus in-flight keys and no batch open: how many
    /// keys the next batch should bring (the need up to `high`), or `None`.
    fn want(&mut self, buffered: u64, low: u64, high: u64) -> Option<u64> {
        if buffered >= high {
            self.filling = false;
            return None;
        }
        if buffered < low {
            self.filling = true;
        }
        self.filling.then(|| high - buffered)
    }
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
        }
    }

    fn me(&self) -> u32 {
        self.p2p.index()
    }

    /// Calls run `start` (if there is one) with a fresh [`Cx`]; the actions it asked for.
    fn call(&mut self, start: u64, f: impl FnOnce(&mut BatchRun, &mut Cx<'_>)) -> Vec<Action> {
        let node = self.node.clone();
        let Some(run) = self.runs.get_mut(&start) else {
            return Vec::new();
        };
        let mut cx = Cx::new(node.engine(), node.key(), node.metrics(), Instant::now());
        f(run, &mut cx);
        cx.take()
    }

    /// Calls run `start` and executes what it asks for.
    fn with_run(&mut self, start: u64, f: impl FnOnce(&mut BatchRun, &mut Cx<'_>)) {
        let actions = self.call(start, f);
        self.execute(actions);
    }

    /// Executes a run's actions in order. A durable write is answered by
    /// calling the run again; its new actions run after the ones already queued.
    fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Send { to, msg } => {
                    let params = msg
                        .batch()
                        .and_then(|b| self.runs.get(&b.start))
                        .map(|r| r.params);
                    let msg = match (&mut self.byzantine, params) {
                        (Some(b), Some(params)) => {
                            b.outgoing(self.node.engine(), self.node.key(), params, to, msg)
                        }
                        _ => msg,
                    };
                    self.p2p.send(to, msg);
                }
                Action::Submit(body) => {
                    let kind = body.kind();
                    match self.node.sign_tx(body) {
                        Ok(tx) => {
                            if let Err(e) = self.node.submit(tx.encode()) {
                                tracing::warn!(error = %e, kind, "could not submit a transaction");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, kind, "cannot sign a transaction"),
                    }
                }
                Action::PersistSeed { start, seed } => {
                    if let Err(e) = self.node.store().put_dealing_seed(start, &seed) {
                        tracing::error!(error = %e, "cannot persist the dealing seed: not dealing");
                        continue;
                    }
                    queue.extend(self.call(start, |run, cx| run.deal(cx, Some(seed))));
                }
                Action::StoreShares(s) => {
                    let start = s.batch.start;
                    match self.store_shares(*s) {
                        Ok(shares) => queue
                            .extend(self.call(start, |run, cx| run.on_shares_stored(cx, shares))),
                        Err(()) => {
                            self.call(start, |run, _| run.on_shares_not_stored());
                        }
                    }
                }
                Action::Progress { batch, what } => {
                    if let Err(e) = self
                        .node
                        .store()
                        .set_progress(batch.start, batch.count, what)
                    {
                        tracing::error!(batch = batch.start, error = %e, "cannot record the batch's progress");
                    }
                }
            }
        }
    }

    /// Stores a run's shares (unless a recovery from peers stored them meanwhile)
    /// and hands them back.
    fn store_shares(
        &self,
        s: SharesToStore,
    ) -> Result<torus_engine::dkg::KeyShares<torus_engine::Secp256k1>, ()> {
        let store = self.node.store();
        let start = s.batch.start;
        let recovered = store.has_share(start).unwrap_or(false);
        if !recovered {
            let commitments: Vec<(u32, &[u8])> = s
                .commitments
                .iter()
                .map(|(d, c)| (*d, c.bytes.as_slice()))
                .collect();
            if let Err(e) = store.put_batch_result(
                s.batch.epoch,
                start,
                &s.shares,
                &s.aggregated_slice,
                &commitments,
            ) {
                tracing::error!(batch = start, error = %e, "cannot store shares");
                return Err(());
            }
            if let Err(e) = store.set_progress(start, s.batch.count, "shares stored") {
                tracing::error!(batch = start, error = %e, "cannot record the batch's progress");
            }
        }
        Ok(s.shares)
    }

    /// Reloads our stored shares of the decided batch `rec` into its run, which
    /// rejoins the public-key vote.
    fn restore_run(&mut self, rec: &crate::store::records::BatchRecord) {
        let Some(run) = self.runs.get(&rec.batch.start) else {
            return;
        };
        let loaded =
            self.node
                .store()
                .key_shares(self.me(), run.params, rec.batch.start, rec.batch.count);
        match loaded {
            Ok(shares) => self.with_run(rec.batch.start, |run, cx| run.restore(cx, rec, shares)),
            Err(e) => tracing::error!(batch = rec.batch.start, error = %e, "cannot reload shares"),
        }
    }

    pub(crate) fn submit(&mut self, body: TxBody) {
        if let TxBody::DealerSet { batch, .. } = &body {
            // A new proposal supersedes an earlier one of ours (a dealer was blamed).
            let start = batch.start;
            self.pending.retain(
                |p| !matches!(&p.tx, TxBody::DealerSet { batch, .. } if batch.start == start),
            );
        }
        match self.node.sign_tx(body.clone()) {
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

    #[allow(clippy::type_complexity)]
    fn committed_view(
        &self,
    ) -> Result<
        (
            EpochInfo,
            Option<BatchId>,
            Vec<crate::store::records::BatchRecord>,
        ),
        String,
    > {
        let snap = self.node.store().snapshot().map_err(|e| e.to_string())?;
        let epoch = app::current_epoch(&snap).map_err(|e| e.to_string())?;
        let open = app::open_batch(&snap).map_err(|e| e.to_string())?;
        let c = app::counters(&snap).map_err(|e| e.to_string())?;
        // Batches from the first not-yet-created key up to the next unopened index.
        let mut out = Vec::new();
        let mut start = 0u64;
        while start < c.next_batch_start {
            match app::batch_record(&snap, start).map_err(|e| e.to_string())? {
                Some(b) => {
                    start = b.batch.end();
                    if b.batch.epoch == epoch.epoch {
                        out.push(b);
                    }
                }
                None => break,
            }
        }
        Ok((epoch, open, out))
    }

    fn has_shares(&self, batch: &BatchId) -> bool {
        self.node.store().has_share(batch.start).unwrap_or(false)
    }

    fn ensure_run(&mut self, epoch: &EpochInfo, batch: BatchId, deal: bool) {
        if self.runs.contains_key(&batch.start) {
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
    fn open_run(&self, epoch: &EpochInfo, batch: BatchId) -> Result<BatchRun, String> {
        let snap = self.node.store().snapshot().map_err(|e| e.to_string())?;
        let mut blamed = BTreeSet::new();
        for n in &epoch.nodes {
            if app::is_blamed(&snap, epoch.epoch, n.index).map_err(|e| e.to_string())? {
                blamed.insert(n.index);
            }
        }
        let decided = app::batch_record(&snap, batch.start).map_err(|e| e.to_string())?;
        drop(snap);
        BatchRun::new(epoch, batch, self.me(), blamed, decided, Instant::now())
    }

    fn start_recovery(&mut self, epoch: &EpochInfo, rec: &crate::store::records::BatchRecord) {
        if self.recoveries.contains_key(&rec.batch.start) || self.has_shares(&rec.batch) {
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
        let Some(batch) = m.msg.batch() else {
            // Transactions are routed to the mempool before they get here.
            return;
        };
        let from = m.from;
        match m.msg {
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

    fn finish_recovery(&mut self, start: u64) {
        let Some(r) = self.recoveries.remove(&start) else {
            return;
        };
        tracing::info!(batch = start, "shares recovered from peers");
        let view = self.committed_view();
        if let (true, Ok((_, _, recs))) = (self.runs.contains_key(&start), view) {
            if let Some(rec) = recs.iter().find(|b| b.batch.start == start) {
                self.restore_run(rec);
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
            if let Ok((epoch, _, recs)) = self.committed_view() {
                if let Some(rec) = recs.iter().find(|b| b.batch.start == start) {
                    self.ensure_run(&epoch, rec.batch, false);
                    self.restore_run(rec);
                }
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
        if !stuck.is_empty() {
            if let Ok((epoch, _, recs)) = self.committed_view() {
                for s in stuck {
                    if let Some(rec) = recs.iter().find(|r| r.batch.start == s) {
                        self.start_recovery(&epoch, rec);
                    }
                }
            }
        }
        for r in self.recoveries.values_mut() {
            r.on_tick(&self.p2p);
        }
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
            if let Ok(tx) = self.node.sign_tx(body) {
                let _ = self.node.submit(tx.encode());
            }
        }
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
                    _ => {}
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
        let mut gone = Vec::new();
        for (start, run) in &self.runs {
            if open == Some(run.batch) {
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

    /// Submits `OpenBatch` when no batch is open and the buffer fell below its
    /// low watermark, or is still being filled up to its high one ([`Refill`]).
    fn maybe_open(&mut self) {
        let Ok(snap) = self.node.store().snapshot() else {
            return;
        };
        let (Ok(epoch), Ok(open), Ok(c)) = (
            app::current_epoch(&snap),
            app::open_batch(&snap),
            app::counters(&snap),
        ) else {
            return;
        };
        if open.is_some() || c.frozen {
            return;
        }
        let buffered = c.next_batch_start - c.last_unassigned;
        let Some(want) =
            self.refill
                .want(buffered, self.cfg.low_watermark, self.cfg.high_watermark)
        else {
            return;
        };
        let start = c.next_batch_start;
        if let Some((s, at)) = self.open_sent {
            if s == start && at.elapsed() < Duration::from_millis(self.cfg.resubmit_ms) {
                return;
            }
        }
        // The committee's bounds (halved after a cancel at this index): an honest
        // node always asks for a size consensus accepts, rounding a small need up.
        let limits = match app::open_batch_limits(&snap, &epoch, start) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "keygen cannot read the batch limits");
                return;
            }
        };
        drop(snap);
        let batch = BatchId {
            epoch: epoch.epoch,
            start,
            count: limits.pick(want, self.cfg.batch_keys),
        };
        tracing::info!(
            start,
            keys = batch.count,
            buffered,
            low = self.cfg.low_watermark,
            high = self.cfg.high_watermark,
            "key buffer refilling to its high watermark: opening a batch"
        );
        self.open_sent = Some((start, Instant::now()));
        match self.node.sign_tx(TxBody::OpenBatch { batch }) {
            Ok(tx) => {
                if let Err(e) = self.node.submit(tx.encode()) {
                    tracing::warn!(error = %e, "could not submit OpenBatch");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot sign OpenBatch"),
        }
    }
}

/// Whether committed state already settled what `tx` asked for.
fn is_settled(node: &NodeState, tx: &TxBody) -> bool {
    let Ok(snap) = node.store().snapshot() else {
        return false;
    };
    match tx {
        TxBody::DealerSet { batch, .. } => app::batch_record(&snap, batch.start)
            .ok()
            .flatten()
            .is_some(),
        TxBody::PublicKeys { batch, .. } => app::batch_record(&snap, batch.start)
            .ok()
            .flatten()
            .is_some_and(|b| b.keys_hash.is_some()),
        TxBody::Complaint { dealer, batch, .. } => {
            // Settled once the dealer (or, for a refuted complaint, this node) is blamed.
            let me = node.index().unwrap_or(0);
            app::is_blamed(&snap, batch.epoch, *dealer).unwrap_or(false)
                || app::is_blamed(&snap, batch.epoch, me).unwrap_or(false)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::Refill;
    use crate::keygen::config::refill_low_watermark;
    use crate::tx::BatchLimits;

    #[test]
    fn the_buffer_refills_once_below_the_low_watermark_and_keeps_filling_to_the_high_one() {
        let mut r = Refill::default();
        // Between the watermarks and never below the low one: nothing to do.
        assert_eq!(r.want(90, 80, 100), None);
        assert_eq!(r.want(80, 80, 100), None);
        // Below the low watermark: fill up to the high one.
        assert_eq!(r.want(79, 80, 100), Some(21));
        // A batch landed but the buffer is still short of the top: keep filling.
        assert_eq!(r.want(95, 80, 100), Some(5));
        // Full: stop, and stay idle between the watermarks again.
        assert_eq!(r.want(100, 80, 100), None);
        assert_eq!(r.want(99, 80, 100), None);
        assert_eq!(r.want(81, 80, 100), None);
    }

    #[test]
    fn an_empty_buffer_fills_to_the_high_watermark_in_successive_batches() {
        let (high, batch) = (48, 16);
        let low = refill_low_watermark(high, batch);
        let limits = BatchLimits::for_k(3);
        let mut r = Refill::default();
        let mut buffered = 0;
        let mut sizes = Vec::new();
        while let Some(want) = r.want(buffered, low, high) {
            let count = limits.pick(want, batch);
            sizes.push(count);
            buffered += u64::from(count);
        }
        assert_eq!(sizes, vec![16, 16, 16]);
        assert_eq!(buffered, high);
    }

    #[test]
    fn a_login_from_a_full_buffer_opens_no_batch_until_a_whole_batch_is_missing() {
        let (high, batch) = (10_000, 2_000);
        let low = refill_low_watermark(high, batch);
        let limits = BatchLimits::for_k(3);
        let mut r = Refill::default();
        assert_eq!(r.want(high, low, high), None);
        // Logins take keys one at a time; the first batch is opened only when
        // more than a whole batch is missing, and it is a full one.
        let mut buffered = high;
        let first = loop {
            buffered -= 1;
            if let Some(want) = r.want(buffered, low, high) {
                break limits.pick(want, batch);
            }
        };
        assert_eq!(buffered, high - u64::from(batch) - 1);
        assert_eq!(first, batch);
    }

    #[test]
    fn the_refill_low_watermark_sits_a_batch_below_the_high_one_or_at_half_a_small_buffer() {
        assert_eq!(refill_low_watermark(10_000, 2_000), 8_000);
        assert_eq!(refill_low_watermark(48, 16), 32);
        // A buffer smaller than two batches refills when half of it is taken.
        assert_eq!(refill_low_watermark(20, 16), 10);
        assert_eq!(refill_low_watermark(5, 16), 3);
        assert_eq!(refill_low_watermark(1, 16), 1);
        assert_eq!(refill_low_watermark(0, 16), 0);
        for high in [2, 3, 17, 100, 1 << 40] {
            for batch in [1, 16, 361, u32::MAX] {
                let low = refill_low_watermark(high, batch);
                assert!(low < high, "high {high} batch {batch}: low {low}");
                assert!(low >= high / 2, "high {high} batch {batch}: low {low}");
            }
        }
    }
}
