//! The pool itself, without locks, clocks or I/O: admission, lanes, quotas,
//! reaping and eviction. [`super::Mempool`] shares one behind a mutex.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::app::{App, KvRead, TxCode};
use crate::hexfmt::keccak256;
use crate::tx::TxBody;

/// Bytes a block spends on each transaction besides the transaction itself
/// (its length prefix in the block encoding, `bft::Block`).
pub const TX_FRAMING: usize = 4;
/// Bytes of a block's encoding besides its transactions (version, height, count).
pub const BLOCK_FRAMING: usize = 13;
/// The default largest block (`bft::BftConfig::max_block_bytes`).
pub const DEFAULT_MAX_BLOCK_BYTES: usize = 16 << 20;
/// How many committed hashes are remembered to refuse late copies.
pub const RECENT_COMMITTED: usize = 100_000;
/// Default bound of the keygen lane: transactions.
pub const DEFAULT_KEYGEN_TXS: usize = 2_000;
/// Default bound of the keygen lane: bytes (dealer sets and public key votes are large).
pub const DEFAULT_KEYGEN_BYTES: usize = 64 << 20;
/// Default bound of the user lane: transactions.
pub const DEFAULT_USER_TXS: usize = 10_000;
/// Default bound of the user lane: bytes (a key assignment is at most a few KiB).
pub const DEFAULT_USER_BYTES: usize = 16 << 20;
/// Default age, in decided blocks, after which a pending transaction is dropped.
pub const DEFAULT_MAX_AGE_BLOCKS: u64 = 1_000;

/// The largest transaction a block of `max_block_bytes` can carry.
pub fn max_tx_bytes(max_block_bytes: usize) -> usize {
    max_block_bytes
        .saturating_sub(BLOCK_FRAMING + TX_FRAMING)
        .min(crate::tx::MAX_TX_BYTES)
}

/// Which share of the pool a transaction uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// The nodes' own key generation and epoch transactions: reaped first.
    Keygen,
    /// Key assignments, one per user login.
    User,
}

impl Lane {
    /// The lane of a transaction body.
    pub fn of(body: &TxBody) -> Self {
        match body {
            TxBody::KeyAssign { .. } => Lane::User,
            TxBody::DealerSet { .. }
            | TxBody::PublicKeys { .. }
            | TxBody::EpochHandover { .. }
            | TxBody::ReshareComplete { .. }
            | TxBody::OpenBatch { .. }
            | TxBody::Complaint { .. }
            | TxBody::HandoverAbort { .. } => Lane::Keygen,
        }
    }

    fn slot(self) -> usize {
        match self {
            Lane::Keygen => 0,
            Lane::User => 1,
        }
    }

    /// Name (logs, metrics).
    pub fn name(self) -> &'static str {
        match self {
            Lane::Keygen => "keygen",
            Lane::User => "user",
        }
    }
}

/// Who handed a transaction to this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// This node (its key generation, or a login it served).
    Local,
    /// A committee peer, by its (connection-authenticated) node index.
    Peer(u32),
}

/// Why a transaction was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Already pending, or committed recently.
    #[error("duplicate transaction")]
    Duplicate,
    /// Its lane is at its count or byte limit.
    #[error("mempool full")]
    Full,
    /// Larger than the largest transaction a block can carry.
    #[error("transaction larger than a block can carry")]
    TooLarge,
    /// Does not decode.
    #[error("transaction does not decode")]
    Decode,
    /// Its signer is not a member of an active epoch, or the signature is invalid.
    #[error("transaction not signed by a member of an active epoch")]
    Unauthorized,
    /// Its origin already has its share of the lane pending.
    #[error("mempool quota of this origin exceeded")]
    QuotaExceeded,
    /// The committed state could not be read to authenticate it.
    #[error("committed state unavailable")]
    Unavailable,
}

impl Refused {
    /// Metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::Duplicate => "duplicate",
            Refused::Full => "full",
            Refused::TooLarge => "too_large",
            Refused::Decode => "decode",
            Refused::Unauthorized => "unauthorized",
            Refused::QuotaExceeded => "quota",
            Refused::Unavailable => "unavailable",
        }
    }
}

/// What admission learned about an authenticated transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Its lane.
    pub lane: Lane,
    /// The epoch it names.
    pub epoch: u64,
    /// Its signer's index in that epoch.
    pub signer: u32,
    /// Signed by the next committee (its resharing transactions).
    pub reshare: bool,
}

/// The admission rule: `tx` fits a block of `max_tx_bytes`, decodes, and is
/// signed by a member of the epoch it names, that epoch being active in
/// `state` (the committed state): [`App::authenticate`].
pub fn admit<R: KvRead + ?Sized>(
    state: &R,
    tx: &[u8],
    max_tx_bytes: usize,
) -> Result<Admitted, Refused> {
    if tx.len() > max_tx_bytes {
        return Err(Refused::TooLarge);
    }
    let t = App.authenticate(state, tx).map_err(|o| match o.code {
        TxCode::Decode => Refused::Decode,
        TxCode::Unauthorized => Refused::Unauthorized,
        // Only a state read fails otherwise.
        _ => Refused::Unavailable,
    })?;
    Ok(Admitted {
        lane: Lane::of(&t.body),
        epoch: t.epoch,
        signer: t.signer,
        reshare: t.body.next_committee_may_sign(t.epoch),
    })
}

/// A count and a byte bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Transactions.
    pub txs: usize,
    /// Bytes.
    pub bytes: usize,
}

/// The pool's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest admissible transaction ([`max_tx_bytes`] of the block size).
    pub max_tx_bytes: usize,
    /// Bound of the keygen lane.
    pub keygen: Usage,
    /// Bound of the user lane.
    pub user: Usage,
    /// How many origins share each lane (the committee size: the peers and
    /// this node); each gets `1 / origins` of the lane, and never less than
    /// one transaction of `max_tx_bytes`.
    pub origins: usize,
    /// Decided blocks after which a pending transaction is dropped.
    pub max_age_blocks: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::for_block(DEFAULT_MAX_BLOCK_BYTES, 1)
    }
}

impl Limits {
    /// The default lanes for blocks of `max_block_bytes` and a committee of `origins`.
    pub fn for_block(max_block_bytes: usize, origins: usize) -> Self {
        Limits {
            max_tx_bytes: max_tx_bytes(max_block_bytes),
            keygen: Usage {
                txs: DEFAULT_KEYGEN_TXS,
                bytes: DEFAULT_KEYGEN_BYTES,
            },
            user: Usage {
                txs: DEFAULT_USER_TXS,
                bytes: DEFAULT_USER_BYTES,
            },
            origins: origins.max(1),
            max_age_blocks: DEFAULT_MAX_AGE_BLOCKS,
        }
    }

    /// The bound of `lane`.
    pub fn lane(&self, lane: Lane) -> Usage {
        match lane {
            Lane::Keygen => self.keygen,
            Lane::User => self.user,
        }
    }

    /// What one origin may have pending in `lane`.
    pub fn quota(&self, lane: Lane) -> Usage {
        let l = self.lane(lane);
        let n = self.origins.max(1);
        Usage {
            txs: l.txs.div_ceil(n).max(1).min(l.txs),
            bytes: l.bytes.div_ceil(n).max(self.max_tx_bytes).min(l.bytes),
        }
    }
}

struct Entry {
    tx: Vec<u8>,
    seq: u64,
    origin: Origin,
    meta: Admitted,
    /// The last decided height when it was admitted.
    since: u64,
}

/// Why [`Pool::after_block`] or [`Pool::reap`] dropped transactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Their epoch is no longer active.
    pub epoch: usize,
    /// Pending for more than `max_age_blocks`.
    pub age: usize,
    /// Larger than a whole block.
    pub never_fits: usize,
}

/// The pending transactions: two lanes, each bounded, each origin bounded
/// within a lane; deduplicated by keccak256 of the bytes.
pub struct Pool {
    limits: Limits,
    txs: HashMap<[u8; 32], Entry>,
    /// Arrival order per lane.
    order: [BTreeMap<u64, [u8; 32]>; 2],
    lanes: [Usage; 2],
    origins: HashMap<(Lane, Origin), Usage>,
    next: u64,
    height: u64,
    /// `(current, next)` epochs after the last decided block, once one was seen.
    active: Option<(u64, Option<u64>)>,
    committed: HashSet<[u8; 32]>,
    committed_order: VecDeque<[u8; 32]>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("len", &self.txs.len())
            .field("lanes", &self.lanes)
            .finish()
    }
}

impl Pool {
    /// An empty pool.
    pub fn new(limits: Limits) -> Self {
        Pool {
            limits,
            txs: HashMap::new(),
            order: [BTreeMap::new(), BTreeMap::new()],
            lanes: [Usage::default(); 2],
            origins: HashMap::new(),
            next: 0,
            height: 0,
            active: None,
            committed: HashSet::new(),
            committed_order: VecDeque::new(),
        }
    }

    /// Its bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `hash` is pending or was committed recently.
    pub fn is_known(&self, hash: &[u8; 32]) -> bool {
        self.txs.contains_key(hash) || self.committed.contains(hash)
    }

    /// Whether `hash` is pending.
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.txs.contains_key(hash)
    }

    fn epoch_active(&self, m: &Admitted) -> bool {
        match self.active {
            None => true,
            Some((cur, next)) => m.epoch == cur || (m.reshare && next == Some(m.epoch)),
        }
    }

    /// Adds `tx`, which [`admit`] accepted as `meta`, from `origin`.
    pub fn insert(
        &mut self,
        tx: Vec<u8>,
        origin: Origin,
        meta: Admitted,
    ) -> Result<[u8; 32], Refused> {
        if tx.len() > self.limits.max_tx_bytes {
            return Err(Refused::TooLarge);
        }
        let h = keccak256(&tx);
        if self.is_known(&h) {
            return Err(Refused::Duplicate);
        }
        // Admitted against a state older than the last block: its epoch may be gone.
        if !self.epoch_active(&meta) {
            return Err(Refused::Unauthorized);
        }
        let lane = meta.lane;
        let quota = self.limits.quota(lane);
        let used = self
            .origins
            .get(&(lane, origin))
            .copied()
            .unwrap_or_default();
        if used.txs >= quota.txs || used.bytes.saturating_add(tx.len()) > quota.bytes {
            return Err(Refused::QuotaExceeded);
        }
        let bound = self.limits.lane(lane);
        let l = self.lanes[lane.slot()];
        if l.txs >= bound.txs || l.bytes.saturating_add(tx.len()) > bound.bytes {
            return Err(Refused::Full);
        }
        let seq = self.next;
        self.next += 1;
        let len = tx.len();
        let u = self.origins.entry((lane, origin)).or_default();
        u.txs += 1;
        u.bytes += len;
        let l = &mut self.lanes[lane.slot()];
        l.txs += 1;
        l.bytes += len;
        self.order[lane.slot()].insert(seq, h);
        self.txs.insert(
            h,
            Entry {
                tx,
                seq,
                origin,
                meta,
                since: self.height,
            },
        );
        Ok(h)
    }

    fn take(&mut self, h: &[u8; 32]) -> bool {
        let Some(e) = self.txs.remove(h) else {
            return false;
        };
        let lane = e.meta.lane;
        self.order[lane.slot()].remove(&e.seq);
        let l = &mut self.lanes[lane.slot()];
        l.txs -= 1;
        l.bytes -= e.tx.len();
        let key = (lane, e.origin);
        if let Some(u) = self.origins.get_mut(&key) {
            u.txs -= 1;
            u.bytes -= e.tx.len();
            if u.txs == 0 {
                self.origins.remove(&key);
            }
        }
        true
    }

    /// Pending transactions for a block: the keygen lane first, then the user
    /// lane, each in arrival order, at most `max_txs` of them costing at most
    /// `budget` bytes (each costs its length plus [`TX_FRAMING`]); one that
    /// does not fit is skipped, later smaller ones are still taken. One that
    /// could not fit even an empty `budget` is dropped. Nothing else is removed.
    pub fn reap(&mut self, budget: usize, max_txs: usize) -> (Vec<Vec<u8>>, Dropped) {
        let mut out = Vec::new();
        let mut never = Vec::new();
        let mut used = 0usize;
        'lanes: for order in &self.order {
            for h in order.values() {
                if out.len() >= max_txs {
                    break 'lanes;
                }
                let Some(e) = self.txs.get(h) else {
                    continue;
                };
                let cost = e.tx.len().saturating_add(TX_FRAMING);
                if cost > budget {
                    never.push(*h);
                    continue;
                }
                if used.saturating_add(cost) > budget {
                    continue;
                }
                used += cost;
                out.push(e.tx.clone());
            }
        }
        for h in &never {
            self.take(h);
        }
        let dropped = Dropped {
            never_fits: never.len(),
            ..Dropped::default()
        };
        (out, dropped)
    }

    /// Removes committed transactions and remembers them so late copies are refused.
    pub fn remove_committed(&mut self, hashes: &[[u8; 32]]) {
        for h in hashes {
            self.take(h);
            if self.committed.insert(*h) {
                self.committed_order.push_back(*h);
            }
        }
        while self.committed_order.len() > RECENT_COMMITTED {
            if let Some(old) = self.committed_order.pop_front() {
                self.committed.remove(&old);
            }
        }
    }

    /// Drops transactions that can never be included (they stay admissible later).
    pub fn evict(&mut self, hashes: &[[u8; 32]]) -> usize {
        hashes.iter().filter(|h| self.take(h)).count()
    }

    /// After the block at `height`, whose state has `current` and `next`
    /// epochs: drops what names an epoch that is no longer active, and what
    /// has been pending for more than `max_age_blocks`.
    pub fn after_block(&mut self, height: u64, current: u64, next: Option<u64>) -> Dropped {
        self.height = self.height.max(height);
        self.active = Some((current, next));
        let max_age = self.limits.max_age_blocks;
        let mut dropped = Dropped::default();
        let mut gone = Vec::new();
        for (h, e) in &self.txs {
            if !self.epoch_active(&e.meta) {
                dropped.epoch += 1;
                gone.push(*h);
            } else if self.height.saturating_sub(e.since) > max_age {
                dropped.age += 1;
                gone.push(*h);
            }
        }
        for h in &gone {
            self.take(h);
        }
        dropped
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Total bytes pending.
    pub fn bytes(&self) -> usize {
        self.lanes.iter().map(|l| l.bytes).sum()
    }

    /// What `lane` holds.
    pub fn lane_usage(&self, lane: Lane) -> Usage {
        self.lanes[lane.slot()]
    }

    /// What `origin` has pending in `lane`.
    pub fn origin_usage(&self, lane: Lane, origin: Origin) -> Usage {
        self.origins
            .get(&(lane, origin))
            .copied()
            .unwrap_or_default()
    }

    /// Recomputes every count from the entries and checks it against the
    /// running totals and the bounds (tests and fuzzing).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut lanes = [Usage::default(); 2];
        let mut origins: HashMap<(Lane, Origin), Usage> = HashMap::new();
        for (h, e) in &self.txs {
            if keccak256(&e.tx) != *h {
                return Err("an entry under another hash".into());
            }
            if self.order[e.meta.lane.slot()].get(&e.seq) != Some(h) {
                return Err("an entry missing from its lane's order".into());
            }
            if e.tx.len() > self.limits.max_tx_bytes {
                return Err("an entry larger than a block can carry".into());
            }
            let l = &mut lanes[e.meta.lane.slot()];
            l.txs += 1;
            l.bytes += e.tx.len();
            let o = origins.entry((e.meta.lane, e.origin)).or_default();
            o.txs += 1;
            o.bytes += e.tx.len();
        }
        if self.order.iter().map(BTreeMap::len).sum::<usize>() != self.txs.len() {
            return Err("order and entries differ in length".into());
        }
        if lanes != self.lanes {
            return Err(format!("lane totals {:?} != {:?}", self.lanes, lanes));
        }
        if origins != self.origins {
            return Err("origin totals differ from the entries".into());
        }
        for lane in [Lane::Keygen, Lane::User] {
            let (u, b, q) = (
                self.lane_usage(lane),
                self.limits.lane(lane),
                self.limits.quota(lane),
            );
            if u.txs > b.txs || u.bytes > b.bytes {
                return Err(format!("{} lane over its bound", lane.name()));
            }
            for ((l, _), o) in &self.origins {
                if *l == lane && (o.txs > q.txs || o.bytes > q.bytes) {
                    return Err(format!("an origin over its {} quota", lane.name()));
                }
            }
        }
        if self.committed.len() != self.committed_order.len()
            || self.committed.len() > RECENT_COMMITTED
        {
            return Err("committed memory out of bounds".into());
        }
        Ok(())
    }
}
