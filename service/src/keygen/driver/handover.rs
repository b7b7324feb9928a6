//! The hand-over to the next committee on the keygen thread (issue #12; README
//! "Resharing: who decides what"):
//!
//! 1. **Trigger.** The operator hands each running node the genesis of the next
//!    epoch at `<data_dir>/next-genesis.toml` (`torus-node devnet next-epoch`
//!    writes it); a member of the current committee checks it
//!    ([`handover_refusal`]) and votes it in with `EpochHandover`. k + t votes
//!    decide it and freeze assignment.
//! 2. **Old members deal.** For each created batch, in key order and at most
//!    [`RESHARE_WINDOW`] batches at a time, an old member reshares its stored
//!    shares (`run::reshare_dealing`, constant time) from a secret it persists
//!    first, and keeps the sends to answer a `Resync`.
//! 3. **New members receive.** For the same window, a new member runs the
//!    batch's resharing run (`BatchRun::new_reshare`) with what the old epoch
//!    decided (commitment vectors checked against the decided hash, public
//!    keys), stores its new shares apart from the current ones
//!    (`Store::put_next_batch_result`) and votes the unchanged public keys.
//! 4. **Switch.** Once every created batch is reshared, each new member votes
//!    `ReshareComplete`; at the switch it moves its new shares in
//!    (`Store::adopt_next_shares`), and a node that left erases every share
//!    (`Store::erase_shares`).
//! 5. **Abort.** A current member votes `HandoverAbort` once the hand-over has not
//!    completed `keygen.handover_timeout_s` after it saw it decided; at k + t votes
//!    consensus drops it and every node drops the new shares it stored for it
//!    ([`Keygen::aborted`]) and sets the trigger file aside
//!    ([`ABORTED_GENESIS`]), so that no restart votes it in again.
//!
//! Fresh members join at indexes no current member holds (a committee that
//! grows): every node connects to them once it reads the next committee
//! ([`Keygen::link_next`]: the p2p peers and the consensus allow list), they
//! follow the chain as non-voting consensus peers until the switch, and fetch
//! the old commitment vectors of each batch from old members
//! ([`Message::FetchVectors`], checked against the decided hash) since they hold
//! no old shares. Messages are addressed by index, so a member that moves to
//! another index, or a fresh node replacing a member at its index, is not
//! supported yet: [`handover_refusal`] refuses to vote such a committee in, so
//! the network is never frozen by a hand-over it cannot finish.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use torus_engine::group::Affine;
use torus_engine::Suite;
use torus_engine::{Params, Secp256k1};

use super::Keygen;
use crate::app::{self, Event};
use crate::config::Genesis;
use crate::keygen::run::{reshare_dealing, BatchRun, Cx, ReshareSource};
use crate::p2p::Message;
use crate::store::records::BatchRecord;
use crate::tx::{BatchId, EpochInfo, TxBody};

/// The file a node reads the next committee from.
pub const NEXT_GENESIS: &str = "next-genesis.toml";

/// Where [`NEXT_GENESIS`] goes when its hand-over is aborted (kept for the operator).
pub const ABORTED_GENESIS: &str = "next-genesis.aborted.toml";

/// Created batches reshared at once (dealt by old members, run by new ones):
/// bounds the memory and the p2p traffic of a hand-over of millions of keys.
const RESHARE_WINDOW: usize = 4;

/// How often one peer may get our resharing sends again (`Resync`).
const RESEND_EVERY: Duration = Duration::from_secs(1);

/// How often the trigger file is looked at.
const TRIGGER_EVERY: Duration = Duration::from_secs(2);

/// How often a fresh member asks old members again for a batch's old vectors.
const FETCH_VECTORS_EVERY: Duration = Duration::from_secs(1);

/// Why a fresh member cannot open a resharing run yet.
const NEEDS_VECTORS: &str = "old vectors not fetched yet";

/// The hand-over state of this node.
#[derive(Default)]
pub(super) struct Handover {
    /// The next committee, while a decided hand-over is in progress.
    next: Option<EpochInfo>,
    /// The resharing sends this node dealt, per batch start (answers `Resync`).
    dealt: BTreeMap<u64, Vec<(u32, Message)>>,
    /// When each peer last got our sends of a batch again.
    resent: BTreeMap<(u64, u32), Instant>,
    /// When the trigger file was last looked at, and the digest of the content
    /// last acted on (voted, refused or found unreadable): the same file is not
    /// acted on again, a changed one is (after an aborted hand-over, too).
    checked_at: Option<Instant>,
    voted: Option<[u8; 32]>,
    /// When this node first saw the pending hand-over, and whether it voted to
    /// abort it ([`Keygen::maybe_vote_abort`]).
    decided_at: Option<Instant>,
    abort_sent: bool,
    /// Whether this node voted `ReshareComplete` for the pending epoch.
    complete_sent: bool,
    /// The epoch whose fresh members this node connected to.
    linked: Option<u64>,
    /// A fresh member: the old vectors fetched and checked per batch start
    /// (the window's batches only), and when each was last asked for.
    vectors: BTreeMap<u64, Vec<Affine<Secp256k1>>>,
    asked: BTreeMap<u64, Instant>,
}

impl Handover {
    /// The next committee while a hand-over is in progress.
    pub(super) fn next(&self) -> Option<&EpochInfo> {
        self.next.as_ref()
    }
}

/// Why a member does not vote `next` in as the committee after `cur`, or None.
///
/// A member of `next` is either the member of `cur` at the same index, or a
/// fresh node at an index no member of `cur` holds (the committee grows, or
/// shrinks from the top, or changes k and t). Messages are addressed by index,
/// so a member moving to another index, or a fresh node taking a current
/// member's index, is not supported yet; voting such a committee in would
/// freeze assignment for a hand-over that cannot finish.
pub(crate) fn handover_refusal(cur: &EpochInfo, next: &EpochInfo) -> Option<String> {
    if cur.epoch.checked_add(1) != Some(next.epoch) {
        return Some(format!(
            "its epoch is {}, the next epoch is {}",
            next.epoch,
            cur.epoch.saturating_add(1)
        ));
    }
    if let Err(e) = next.validate() {
        return Some(format!("invalid committee: {e}"));
    }
    if next.k > next.n / 2 + 1 {
        // torus.js combines floor(n/2)+1 shares: a higher k makes no key.
        return Some(format!(
            "k = {} is above floor(n/2)+1 = {}: clients combine floor(n/2)+1 shares",
            next.k,
            next.n / 2 + 1
        ));
    }
    for n in &next.nodes {
        match (cur.node(n.index), cur.index_of(&n.pubkey)) {
            (Some(o), _) if o.pubkey == n.pubkey => {}
            (Some(_), _) => {
                return Some(format!(
                    "index {} names another node than in epoch {} (replacing a member at its \
                     index is not supported yet: give the fresh node an index no member holds)",
                    n.index, cur.epoch
                ))
            }
            // (Unreachable with indexes 1..=n in order, which `validate` checks:
            // kept so that a later relaxation cannot let a member move silently.)
            (None, Some(was)) => {
                return Some(format!(
                    "the member at index {was} of epoch {} moves to index {} (members keep \
                     their index)",
                    cur.epoch, n.index
                ))
            }
            (None, None) => {}
        }
    }
    None
}

impl Keygen {
    /// The hand-over state's next committee (for signing and routing).
    pub(super) fn next_committee(&self) -> Option<&EpochInfo> {
        self.handover.next()
    }

    /// Every [`TRIGGER_EVERY`]: votes the committee of `<data_dir>/next-genesis.toml` in
    /// when this node is a member of the current one and it is acceptable.
    pub(super) fn maybe_vote_handover(&mut self) {
        let now = Instant::now();
        if self
            .handover
            .checked_at
            .is_some_and(|t| now.duration_since(t) < TRIGGER_EVERY)
        {
            return;
        }
        self.handover.checked_at = Some(now);
        let path = Path::new(&self.node.config().data_dir).join(NEXT_GENESIS);
        if !path.exists() {
            return;
        }
        let Ok(snap) = self.node.store().snapshot() else {
            return;
        };
        let (Ok(cur), Ok(pending)) = (app::current_epoch(&snap), app::next_epoch(&snap)) else {
            return;
        };
        drop(snap);
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        let digest = crate::hexfmt::keccak256(&bytes);
        let (genesis, next) = match Genesis::load(&path).and_then(|g| {
            let e = g.epoch_info()?;
            Ok((g, e))
        }) {
            Ok(v) => v,
            Err(e) => {
                if self.handover.voted != Some(digest) {
                    tracing::error!(path = %path.display(), error = %e, "next committee file: refused");
                    self.handover.voted = Some(digest);
                }
                return;
            }
        };
        if next.epoch <= cur.epoch {
            // Already current (the file outlived its hand-over).
            return;
        }
        let refusal = handover_refusal(&cur, &next);
        if refusal.is_none() && self.handover.linked != Some(next.epoch) {
            self.handover.linked = Some(next.epoch);
            self.link_next(&cur, &next, &genesis);
        }
        let member = cur
            .index_of(&self.node.key().public().compressed())
            .is_some();
        if pending.is_some() || !member || self.handover.voted == Some(digest) {
            return;
        }
        self.handover.voted = Some(digest);
        if let Some(why) = refusal {
            tracing::error!(
                path = %path.display(),
                epoch = next.epoch,
                why,
                "next committee refused: not voting the hand-over"
            );
            return;
        }
        tracing::info!(
            epoch = next.epoch,
            n = next.n,
            k = next.k,
            t = next.t,
            "voting the hand-over to the next committee"
        );
        self.submit(TxBody::EpochHandover { next });
    }

    /// Connects this node to the fresh members of `next` (addresses from its
    /// genesis file `genesis`): p2p peers, and the consensus network's allow list.
    fn link_next(&mut self, cur: &EpochInfo, next: &EpochInfo, genesis: &Genesis) {
        let (members, _) = crate::config::peers::committee_members(
            cur,
            Some(next),
            &[self.node.genesis(), genesis],
        );
        let overrides = &self.node.config().p2p.peer_addrs;
        let fresh: Vec<crate::p2p::PeerInfo> = members
            .iter()
            .filter(|m| m.joining)
            .map(|m| crate::p2p::PeerInfo {
                index: m.index,
                pubkey: m.pubkey,
                addr: overrides
                    .get(&m.index.to_string())
                    .cloned()
                    .unwrap_or_else(|| m.p2p.clone()),
            })
            .collect();
        if !fresh.is_empty() {
            tracing::info!(
                epoch = next.epoch,
                fresh = ?fresh.iter().map(|p| p.index).collect::<Vec<_>>(),
                "connecting to the next committee's fresh members"
            );
            self.p2p.add_peers(fresh);
        }
        crate::bft::allow_committee(&self.node, next);
    }

    /// Starts or resumes this node's part of a decided hand-over from committed
    /// state: deals (old member) and runs (new member) the first unreshared
    /// batches, up to [`RESHARE_WINDOW`], and votes `ReshareComplete` once every
    /// created batch is reshared. Called at start-up, on `HandoverDecided` and
    /// after each reshared batch.
    pub(super) fn resume_handover(&mut self) {
        let Ok(snap) = self.node.store().snapshot() else {
            return;
        };
        let (Ok(cur), Ok(next), Ok(c)) = (
            app::current_epoch(&snap),
            app::next_epoch(&snap),
            app::counters(&snap),
        ) else {
            return;
        };
        let Some(next) = next else {
            return;
        };
        if self.handover.next.as_ref().map(|n| n.epoch) != Some(next.epoch) {
            self.handover = Handover {
                next: Some(next.clone()),
                checked_at: self.handover.checked_at,
                voted: self.handover.voted,
                linked: self.handover.linked,
                decided_at: Some(Instant::now()),
                ..Handover::default()
            };
        }
        let me = self.node.key().public().compressed();
        let (old_me, new_me) = (cur.index_of(&me), next.index_of(&me));
        // The window: the first created batches whose resharing is not decided.
        let mut todo = Vec::new();
        let mut start = 0;
        while start < c.last_created && todo.len() < RESHARE_WINDOW {
            let rec = match app::batch_record(&snap, start) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "hand-over cannot read a batch record");
                    return;
                }
            };
            let end = rec.batch.end();
            if end <= start {
                break;
            }
            let reshared = app::reshare_record(&snap, start)
                .ok()
                .flatten()
                .is_some_and(|r| r.keys_hash.is_some());
            if !reshared {
                todo.push(rec);
            }
            start = end;
        }
        let all_done = start >= c.last_created && todo.is_empty();
        drop(snap);
        for rec in &todo {
            if let Some(old) = old_me {
                self.deal_resharing(&cur, &next, old, rec);
            }
            if let Some(new) = new_me {
                self.ensure_reshare_run(&cur, &next, new, rec);
            }
        }
        if all_done && new_me.is_some() && !self.handover.complete_sent {
            self.handover.complete_sent = true;
            tracing::info!(
                epoch = next.epoch,
                keys = c.last_created,
                "every created key is reshared: voting the switch to the next committee"
            );
            self.submit(TxBody::ReshareComplete {
                epoch: next.epoch,
                keys: c.last_created,
            });
        }
    }

    /// Old member `old` deals its shares of the created batch `rec` to `next`
    /// (once per batch; again after a restart, from the same persisted secret).
    fn deal_resharing(&mut self, cur: &EpochInfo, next: &EpochInfo, old: u32, rec: &BatchRecord) {
        let start = rec.batch.start;
        if self.handover.dealt.contains_key(&start) {
            return;
        }
        let store = self.node.store();
        let blamed = store
            .snapshot()
            .ok()
            .and_then(|s| app::is_blamed(&s, cur.epoch, old).ok())
            .unwrap_or(false);
        if blamed {
            tracing::warn!(
                batch = start,
                "this node is blamed in this epoch: not resharing"
            );
            self.handover.dealt.insert(start, Vec::new());
            return;
        }
        let params = match Params::new(cur.n, cur.k, cur.t) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "current committee parameters");
                return;
            }
        };
        let shares = match store.key_shares(old, params, start, rec.batch.count) {
            Ok(s) => s,
            Err(e) => {
                // Recovery rebuilds them; the next resume deals.
                tracing::warn!(batch = start, error = %e, "no shares to reshare yet");
                return;
            }
        };
        let seed = match store.reshare_seed(start) {
            Ok(Some(s)) => s,
            Ok(None) => {
                let mut s = zeroize::Zeroizing::new([0u8; 32]);
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut s[..]);
                if let Err(e) = store.put_reshare_seed(start, &s) {
                    tracing::error!(error = %e, "cannot persist the resharing secret: not dealing");
                    return;
                }
                s
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the resharing secret: not dealing");
                return;
            }
        };
        let batch = BatchId {
            epoch: next.epoch,
            start,
            count: rec.batch.count,
        };
        let cx = Cx::new(
            self.node.engine(),
            self.node.key(),
            self.node.metrics(),
            Instant::now(),
        );
        let msgs = match reshare_dealing(&cx, batch, next, &shares, &seed) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(batch = start, error = %e, "cannot reshare the batch");
                return;
            }
        };
        drop(shares);
        for (to, msg) in &msgs {
            crate::failpoint::hit("reshare.send");
            self.p2p.send(*to, msg.clone());
        }
        tracing::info!(
            batch = start,
            keys = batch.count,
            to = next.n,
            "reshared batch to the next committee"
        );
        self.handover.dealt.insert(start, msgs);
    }

    /// New member `new` runs the resharing of `rec` (once; a restart rebuilds the run
    /// and rejoins the vote when its new shares are stored).
    fn ensure_reshare_run(
        &mut self,
        cur: &EpochInfo,
        next: &EpochInfo,
        new: u32,
        rec: &BatchRecord,
    ) {
        let start = rec.batch.start;
        if self.runs.contains_key(&start) {
            return;
        }
        let batch = BatchId {
            epoch: next.epoch,
            start,
            count: rec.batch.count,
        };
        let run = match self.open_reshare_run(cur, next, new, rec, batch) {
            Ok(r) => r,
            Err(e) if e == NEEDS_VECTORS => {
                self.fetch_vectors(cur, batch);
                return;
            }
            Err(e) => {
                tracing::error!(batch = start, error = %e, "cannot start the resharing of a batch");
                return;
            }
        };
        self.runs.insert(start, run);
        // Ask peers to resend what they already sent us (after a restart).
        self.p2p.broadcast(&Message::Resync { batch });
        let decided = self
            .node
            .store()
            .snapshot()
            .ok()
            .and_then(|s| app::reshare_record(&s, start).ok().flatten());
        let stored = self.node.store().has_next_share(start).unwrap_or(false);
        if let (Some(d), true) = (decided, stored) {
            let params = self.runs.get(&start).map(|r| r.params);
            let loaded = params.map(|p| {
                self.node
                    .store()
                    .next_key_shares(new, p, start, batch.count)
            });
            match loaded {
                Some(Ok(shares)) => self.with_run(start, |run, cx| run.restore(cx, &d, shares)),
                Some(Err(e)) => {
                    tracing::error!(batch = start, error = %e, "cannot reload next-epoch shares")
                }
                None => {}
            }
        }
    }

    fn open_reshare_run(
        &self,
        cur: &EpochInfo,
        next: &EpochInfo,
        new: u32,
        rec: &BatchRecord,
        batch: BatchId,
    ) -> Result<BatchRun, String> {
        let start = rec.batch.start;
        let vectors_hash = rec.vectors_hash.ok_or(
            "the batch's commitment vectors were not decided (created by an earlier version)",
        )?;
        let old_params = Params::new(cur.n, cur.k, cur.t).map_err(|e| e.to_string())?;
        // The old vectors: from this node's own shares (a member of both
        // committees), or fetched from old members (a fresh member); checked
        // against the decided hash by `ReshareSource::new` either way.
        let old_commitments: Vec<Affine<Secp256k1>> =
            match cur.index_of(&self.node.key().public().compressed()) {
                Some(old_me) => {
                    let shares = self
                        .node
                        .store()
                        .key_shares(old_me, old_params, start, rec.batch.count)
                        .map_err(|e| format!("old shares: {e}"))?;
                    (0..rec.batch.count as usize)
                        .flat_map(|k| shares.commitment_vector(k).iter().copied())
                        .collect()
                }
                None => self
                    .handover
                    .vectors
                    .get(&start)
                    .cloned()
                    .ok_or(NEEDS_VECTORS)?,
            };
        let snap = self.node.store().snapshot().map_err(|e| e.to_string())?;
        let mut public_keys = Vec::with_capacity(rec.batch.count as usize);
        for index in start..rec.batch.end() {
            let k = app::key_record(&snap, index)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no key record {index}"))?;
            public_keys.push(k.pubkey);
        }
        let mut blamed = std::collections::BTreeSet::new();
        for n in &next.nodes {
            if app::is_blamed(&snap, next.epoch, n.index).map_err(|e| e.to_string())? {
                blamed.insert(n.index);
            }
        }
        let decided = app::reshare_record(&snap, start).map_err(|e| e.to_string())?;
        drop(snap);
        let source =
            ReshareSource::new(cur, rec.batch, old_commitments, &vectors_hash, public_keys)
                .map_err(|e| e.to_string())?;
        BatchRun::new_reshare(next, batch, new, source, blamed, decided, Instant::now())
            .map_err(|e| e.to_string())
    }

    /// A fresh member asks the old members for the old vectors of `batch` (a
    /// resharing batch), at most once per [`FETCH_VECTORS_EVERY`].
    fn fetch_vectors(&mut self, cur: &EpochInfo, batch: BatchId) {
        let now = Instant::now();
        if self
            .handover
            .asked
            .get(&batch.start)
            .is_some_and(|t| now.duration_since(*t) < FETCH_VECTORS_EVERY)
        {
            return;
        }
        self.handover.asked.insert(batch.start, now);
        tracing::debug!(
            batch = batch.start,
            "asking old members for the old vectors"
        );
        for n in &cur.nodes {
            self.p2p.send(n.index, Message::FetchVectors { batch });
        }
    }

    /// Every tick: a current member votes to abort a hand-over that has not
    /// completed `keygen.handover_timeout_s` after it saw it decided (once).
    fn maybe_vote_abort(&mut self) {
        let timeout = Duration::from_secs(self.cfg.handover_timeout_s);
        let (Some(next), Some(at)) = (self.handover.next.as_ref(), self.handover.decided_at) else {
            return;
        };
        if self.cfg.handover_timeout_s == 0 || self.handover.abort_sent || at.elapsed() < timeout {
            return;
        }
        let epoch = next.epoch;
        let member = self
            .node
            .epoch()
            .is_ok_and(|c| c.index_of(&self.node.key().public().compressed()).is_some());
        if !member {
            return;
        }
        self.handover.abort_sent = true;
        tracing::error!(
            epoch,
            secs = timeout.as_secs(),
            "the hand-over did not complete in time: voting to abort it"
        );
        self.submit(TxBody::HandoverAbort { epoch });
    }

    /// Every tick: a fresh member asks again for vectors it still lacks.
    pub(super) fn handover_tick(&mut self) {
        self.maybe_vote_abort();
        let now = Instant::now();
        let due = self.handover.asked.iter().any(|(s, t)| {
            !self.handover.vectors.contains_key(s) && now.duration_since(*t) >= FETCH_VECTORS_EVERY
        });
        if due {
            self.resume_handover();
        }
    }

    /// An old member answers a member of the next committee with the old vectors
    /// of the resharing batch `batch` (public), from its own stored shares.
    pub(super) fn serve_vectors(&mut self, from: u32, batch: &BatchId) {
        let Some(next) = self.handover.next.as_ref() else {
            return;
        };
        if next.epoch != batch.epoch || next.node(from).is_none() {
            return;
        }
        let Ok(cur) = self.node.epoch() else {
            return;
        };
        let Some(old) = cur.index_of(&self.node.key().public().compressed()) else {
            return;
        };
        let same_batch = self
            .node
            .store()
            .snapshot()
            .ok()
            .and_then(|s| app::batch_record(&s, batch.start).ok().flatten())
            .is_some_and(|r| r.batch.count == batch.count && r.batch.epoch == cur.epoch);
        let Ok(params) = Params::new(cur.n, cur.k, cur.t) else {
            return;
        };
        if !same_batch {
            return;
        }
        let shares = match self
            .node
            .store()
            .key_shares(old, params, batch.start, batch.count)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(batch = batch.start, error = %e, "no old vectors to serve");
                return;
            }
        };
        let mut vectors = Vec::with_capacity(batch.count as usize * params.ku() * 33);
        for k in 0..batch.count as usize {
            for p in shares.commitment_vector(k) {
                Secp256k1::encode_point(p, &mut vectors);
            }
        }
        drop(shares);
        self.p2p.send(
            from,
            Message::Vectors {
                batch: *batch,
                vectors,
            },
        );
    }

    /// A fresh member gets the old vectors of `batch`: kept when they decode and
    /// hash to what the old epoch decided, and the batch's resharing run opens.
    pub(super) fn on_vectors(&mut self, from: u32, batch: &BatchId, bytes: &[u8]) {
        let Some(next) = self.handover.next.as_ref() else {
            return;
        };
        if next.epoch != batch.epoch
            || !self.handover.asked.contains_key(&batch.start)
            || self.handover.vectors.contains_key(&batch.start)
        {
            return;
        }
        let snap = match self.node.store().snapshot() {
            Ok(s) => s,
            Err(_) => return,
        };
        let (Ok(cur), Ok(Some(rec))) = (
            app::current_epoch(&snap),
            app::batch_record(&snap, batch.start),
        ) else {
            return;
        };
        drop(snap);
        let Ok(params) = Params::new(cur.n, cur.k, cur.t) else {
            return;
        };
        let want = batch.count as usize * params.ku() * 33;
        if rec.batch.count != batch.count || bytes.len() != want {
            tracing::warn!(
                from,
                batch = batch.start,
                "old vectors of the wrong size: ignored"
            );
            return;
        }
        let Ok(points) = bytes
            .chunks(33)
            .map(Secp256k1::decode_point)
            .collect::<Result<Vec<_>, _>>()
        else {
            tracing::warn!(
                from,
                batch = batch.start,
                "old vectors do not decode: ignored"
            );
            return;
        };
        let matches = crate::tx::digest::vector_hashes(&points, params.ku())
            .is_some_and(|(_, list)| Some(list) == rec.vectors_hash);
        if !matches {
            tracing::warn!(
                from,
                batch = batch.start,
                "old vectors differ from the decided ones: ignored"
            );
            return;
        }
        tracing::debug!(from, batch = batch.start, "old vectors fetched");
        self.handover.vectors.insert(batch.start, points);
        self.resume_handover();
    }

    /// A peer asks for our messages of `batch` again: our resharing sends to it,
    /// at most once per [`RESEND_EVERY`].
    pub(super) fn resend_resharing(&mut self, from: u32, batch: &BatchId) {
        if self.handover.next.as_ref().map(|n| n.epoch) != Some(batch.epoch) {
            return;
        }
        let Some(msgs) = self.handover.dealt.get(&batch.start) else {
            return;
        };
        let now = Instant::now();
        let key = (batch.start, from);
        if self
            .handover
            .resent
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < RESEND_EVERY)
        {
            return;
        }
        self.handover.resent.insert(key, now);
        for (to, msg) in msgs {
            if *to == from {
                self.p2p.send(*to, msg.clone());
            }
        }
    }

    /// The hand-over's events of a committed block.
    pub(super) fn on_handover_event(&mut self, e: &Event) {
        match e {
            Event::HandoverDecided { epoch } => {
                tracing::info!(epoch, "hand-over decided: resharing every key");
                self.resume_handover();
            }
            Event::ReshareDealerSet { batch, .. } => {
                let rec = self
                    .node
                    .store()
                    .snapshot()
                    .ok()
                    .and_then(|s| app::reshare_record(&s, batch.start).ok().flatten());
                if let Some(rec) = rec {
                    if self
                        .runs
                        .get(&batch.start)
                        .is_some_and(|r| r.batch == *batch)
                    {
                        self.with_run(batch.start, |run, cx| run.on_decided(cx, &rec));
                    }
                }
            }
            Event::ResharedPublicKeys { batch } => {
                if self
                    .runs
                    .get(&batch.start)
                    .is_some_and(|r| r.batch == *batch)
                {
                    self.with_run(batch.start, |run, cx| run.finish(cx));
                    self.runs.remove(&batch.start);
                }
                self.p2p.drop_batch(batch.start);
                self.handover.dealt.remove(&batch.start);
                self.handover.resent.retain(|(s, _), _| *s != batch.start);
                self.handover.vectors.remove(&batch.start);
                self.handover.asked.remove(&batch.start);
                tracing::info!(batch = batch.start, keys = batch.count, "batch reshared");
                self.resume_handover();
            }
            Event::EpochChanged { epoch } => self.switch(*epoch),
            Event::HandoverAborted { epoch } => self.aborted(*epoch),
            _ => {}
        }
    }

    /// The new committee took over: a member moves its new shares in, a node
    /// that left erases every share.
    pub(super) fn switch(&mut self, epoch: u64) {
        let me = self.node.key().public().compressed();
        let member = self
            .node
            .epoch()
            .ok()
            .filter(|e| e.epoch == epoch)
            .map(|e| e.index_of(&me).is_some());
        // Resharing runs and sends are over.
        self.end_handover(epoch);
        match member {
            Some(true) => match self.node.store().adopt_next_shares(epoch) {
                Ok(moved) => tracing::info!(
                    epoch,
                    shares = moved,
                    "the new committee serves: new shares in use"
                ),
                Err(e) => tracing::error!(epoch, error = %e, "cannot move the new shares in"),
            },
            Some(false) => self.retire(epoch),
            None => tracing::error!(epoch, "cannot read the committee after the switch"),
        }
        if member == Some(true) {
            // A batch whose new shares this member lacks (it was down during the
            // resharing) is recovered from its peers, like a missed DKG batch.
            self.resume();
        }
    }

    /// The hand-over to `epoch` is over (switched or aborted): its resharing runs
    /// and the messages queued for them end, and the hand-over state is reset but
    /// for the trigger file's bookkeeping.
    fn end_handover(&mut self, epoch: u64) {
        let old = std::mem::take(&mut self.handover);
        self.handover.checked_at = old.checked_at;
        self.handover.voted = old.voted;
        let gone: Vec<u64> = self
            .runs
            .iter()
            .filter(|(_, r)| r.batch.epoch == epoch)
            .map(|(s, _)| *s)
            .chain(old.dealt.keys().copied())
            .collect();
        for s in gone {
            self.runs.remove(&s);
            self.p2p.drop_batch(s);
        }
    }

    /// The hand-over to `epoch` was aborted: its resharing runs and sends end, the
    /// new shares stored for it are dropped, and the current shares serve on. The
    /// same next-genesis file is not voted again; a changed one is.
    pub(super) fn aborted(&mut self, epoch: u64) {
        self.end_handover(epoch);
        self.pending.retain(|p| match &p.tx {
            TxBody::DealerSet { batch, .. }
            | TxBody::PublicKeys { batch, .. }
            | TxBody::Complaint { batch, .. } => batch.epoch != epoch,
            TxBody::ReshareComplete { epoch: e, .. } | TxBody::HandoverAbort { epoch: e } => {
                *e != epoch
            }
            _ => true,
        });
        match self.node.store().drop_next_shares() {
            Ok(n) => tracing::error!(
                epoch,
                dropped = n,
                "hand-over aborted: the current committee serves on; change \
                 next-genesis.toml to try again"
            ),
            Err(e) => tracing::error!(epoch, error = %e, "cannot drop the aborted epoch's shares"),
        }
        // The trigger file is set aside, so that no restart votes it in again.
        let path = Path::new(&self.node.config().data_dir).join(NEXT_GENESIS);
        let names_it = Genesis::load(&path)
            .and_then(|g| g.epoch_info())
            .is_ok_and(|e| e.epoch == epoch);
        if names_it {
            let aside = path.with_file_name(ABORTED_GENESIS);
            match std::fs::rename(&path, &aside) {
                Ok(()) => tracing::warn!(
                    epoch,
                    path = %aside.display(),
                    "the aborted committee's file is set aside"
                ),
                Err(e) => {
                    tracing::warn!(epoch, error = %e, "cannot set the aborted committee's file aside")
                }
            }
        }
        // Key generation resumes where it stood (assignment is no longer frozen).
        self.resume();
    }

    /// This node left the committee at `epoch`: every share it held is erased.
    pub(super) fn retire(&mut self, epoch: u64) {
        match self.node.store().erase_shares() {
            Ok(n) => {
                self.node.metrics().shares_erased.inc_by(n);
                tracing::warn!(
                    epoch,
                    erased = n,
                    "this node left the committee: every share it held is erased"
                );
            }
            Err(e) => {
                tracing::error!(epoch, error = %e, "cannot erase the shares of a node that left")
            }
        }
    }

    /// At start-up: finishes a switch that happened while this node was down
    /// (its new shares not moved in yet, or a node that left still holding shares).
    pub(super) fn after_restart_switch(&mut self) {
        let Ok(snap) = self.node.store().snapshot() else {
            return;
        };
        let (Ok(cur), Ok(None)) = (app::current_epoch(&snap), app::next_epoch(&snap)) else {
            return;
        };
        drop(snap);
        let store = self.node.store();
        if cur
            .index_of(&self.node.key().public().compressed())
            .is_none()
        {
            if store.share_count().unwrap_or(0) > 0 {
                self.retire(cur.epoch);
            }
            return;
        }
        match store.next_share_count() {
            Ok(0) => {}
            Ok(_) => match store.adopt_next_shares(cur.epoch) {
                Ok(moved) => tracing::info!(
                    epoch = cur.epoch,
                    shares = moved,
                    "new shares moved in after a restart"
                ),
                Err(e) => tracing::error!(error = %e, "cannot move the new shares in"),
            },
            Err(e) => tracing::error!(error = %e, "cannot read the next-epoch shares"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::handover_refusal;
    use crate::crypto::NodeKey;
    use crate::tx::{EpochInfo, NodeEntry};

    fn committee(epoch: u64, keys: &[&NodeKey], k: u32, t: u32) -> EpochInfo {
        EpochInfo {
            epoch,
            n: keys.len() as u32,
            k,
            t,
            nodes: keys
                .iter()
                .enumerate()
                .map(|(i, key)| NodeEntry {
                    index: i as u32 + 1,
                    pubkey: key.public().compressed(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_member_votes_in_the_same_nodes_with_other_thresholds_members_leaving_or_fresh_ones_joining(
    ) {
        let owned: Vec<NodeKey> = (0..7).map(|_| NodeKey::random()).collect();
        let keys: Vec<&NodeKey> = owned.iter().collect();
        let cur = committee(1, &keys[..5], 3, 1);
        assert_eq!(
            handover_refusal(&cur, &committee(2, &keys[..5], 2, 1)),
            None
        );
        assert_eq!(
            handover_refusal(&cur, &committee(2, &keys[..4], 3, 1)),
            None
        );
        // Two fresh nodes at indexes 6 and 7.
        assert_eq!(handover_refusal(&cur, &committee(2, &keys, 4, 1)), None);
    }

    #[test]
    fn a_member_refuses_a_committee_it_could_not_hand_over_to() {
        let owned: Vec<NodeKey> = (0..7).map(|_| NodeKey::random()).collect();
        let keys: Vec<&NodeKey> = owned.iter().collect();
        let cur = committee(1, &keys[..5], 3, 1);
        // Not the next epoch.
        let why = handover_refusal(&cur, &committee(3, &keys[..5], 3, 1));
        assert!(why.is_some_and(|w| w.contains("next epoch is 2")));
        // A fresh node taking a member's index, or a member moving: messages are
        // addressed by index.
        let mut replaced = keys[..5].to_vec();
        replaced[1] = keys[5];
        let why = handover_refusal(&cur, &committee(2, &replaced, 3, 1));
        assert!(why.is_some_and(|w| w.contains("index 2 names another node")));
        let mut moved = keys[..5].to_vec();
        moved.swap(0, 1);
        let why = handover_refusal(&cur, &committee(2, &moved, 3, 1));
        assert!(why.is_some_and(|w| w.contains("index 1 names another node")));
        // A member moving up past a fresh node.
        let moved = [keys[0], keys[1], keys[2], keys[3], keys[5], keys[4]];
        let why = handover_refusal(&cur, &committee(2, &moved, 4, 1));
        assert!(why.is_some_and(|w| w.contains("index 5 names another node")));
        // Invalid thresholds, and a k clients cannot reach (they combine
        // floor(n/2)+1 shares).
        let why = handover_refusal(&cur, &committee(2, &keys[..5], 6, 1));
        assert!(why.is_some_and(|w| w.contains("invalid committee")));
        let why = handover_refusal(&cur, &committee(2, &keys, 6, 1));
        assert!(why.is_some_and(|w| w.contains("above floor(n/2)+1")));
    }
}
