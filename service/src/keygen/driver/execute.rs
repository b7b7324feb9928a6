//! Executing what the batch runs ask for: the driver calls a run with a fresh
//! [`Cx`], then performs its [`Action`]s in order (sends through the byzantine
//! middleware when one is configured, submissions, the two durable writes, which
//! it answers by calling the run again).

use std::collections::VecDeque;
use std::time::Instant;

use super::Keygen;
use crate::keygen::run::{Action, BatchRun, Cx, SharesToStore};

impl Keygen {
    /// Calls run `start` (if there is one) with a fresh [`Cx`]; the actions it asked for.
    pub(super) fn call(
        &mut self,
        start: u64,
        f: impl FnOnce(&mut BatchRun, &mut Cx<'_>),
    ) -> Vec<Action> {
        let node = self.node.clone();
        let Some(run) = self.runs.get_mut(&start) else {
            return Vec::new();
        };
        let mut cx = Cx::new(node.engine(), node.key(), node.metrics(), Instant::now());
        f(run, &mut cx);
        cx.take()
    }

    /// Calls run `start` and executes what it asks for.
    pub(super) fn with_run(&mut self, start: u64, f: impl FnOnce(&mut BatchRun, &mut Cx<'_>)) {
        let actions = self.call(start, f);
        self.execute(actions);
    }

    /// Executes a run's actions in order. A durable write is answered by
    /// calling the run again; its new actions run after the ones already queued.
    pub(super) fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Send { to, msg } => {
                    // Only a node with a test fault looks up the batch's parameters.
                    let msg = match &mut self.byzantine {
                        Some(b) => match msg.batch().and_then(|x| self.runs.get(&x.start)) {
                            Some(run) => {
                                b.outgoing(self.node.engine(), self.node.key(), run.params, to, msg)
                            }
                            None => msg,
                        },
                        None => msg,
                    };
                    crate::failpoint::hit("p2p.send");
                    self.p2p.send(to, msg);
                }
                Action::Submit(body) => {
                    let kind = body.kind();
                    match self.sign(body) {
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
                    crate::failpoint::hit("seed.persisted");
                    queue.extend(self.call(start, |run, cx| run.deal(cx, Some(seed))));
                }
                Action::StoreShares(s) => {
                    let start = s.batch.start;
                    match self.store_shares(*s) {
                        Ok(shares) => {
                            crate::failpoint::hit("shares.stored");
                            queue.extend(
                                self.call(start, |run, cx| run.on_shares_stored(cx, shares)),
                            )
                        }
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
        if self.next_committee().map(|n| n.epoch) == Some(s.batch.epoch) {
            // A resharing batch: kept apart until the new committee takes over.
            if !store.has_next_share(start).unwrap_or(false) {
                if let Err(e) = store.put_next_batch_result(
                    s.batch.epoch,
                    start,
                    &s.shares,
                    &s.aggregated_slice,
                    &s.summed,
                ) {
                    tracing::error!(batch = start, error = %e, "cannot store next-epoch shares");
                    return Err(());
                }
            }
            return Ok(s.shares);
        }
        let recovered = store.has_share(start).unwrap_or(false);
        if !recovered {
            if let Err(e) = store.put_batch_result(
                s.batch.epoch,
                start,
                &s.shares,
                &s.aggregated_slice,
                &s.summed,
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
    pub(super) fn restore_run(&mut self, rec: &crate::store::records::BatchRecord) {
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
}
