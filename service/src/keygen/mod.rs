//! Key buffer orchestration: batched AVSS key generation driven by committed
//! blocks and node-to-node messages.
//!
//! One batch of K consecutive key indexes at a time is *open* for dealing; the
//! next one opens as soon as the previous batch's dealer set is decided, so
//! dealing overlaps the previous batch's public-key phase. Per batch:
//!
//! 1. **Open.** When free keys plus keys in flight fall below the low
//!    watermark, nodes submit [`TxBody::OpenBatch`] for the next indexes, and
//!    keep opening batches until the high watermark is reached (hysteresis:
//!    [`config::refill_low_watermark`] puts the low watermark a whole batch
//!    below the high one, so refills come in full batches). Each asks for
//!    enough to reach the high watermark, at most `batch_keys`, brought into
//!    the committee's consensus bounds [`crate::tx::BatchLimits`]: a small need
//!    is rounded up, a send never outgrows a p2p message); the first one
//!    committed wins, so every node deals the same batch. A batch whose dealer
//!    set is not decided within [`crate::tx::BATCH_DEADLINE_BLOCKS`] blocks is
//!    cancelled by consensus; nodes drop its run and the next batch reopens at
//!    the same index with at most half the keys (the same persisted seed deals
//!    the same dealing again, so a reopen cannot look like equivocation).
//! 2. **Deal.** Every node that is not blamed deals the batch (constant-time
//!    commitments) from a seed it persists first, so a restart re-derives the
//!    same dealing, and sends each node its slice with a signed [`DealHeader`].
//! 3. **Echo / ready** (spec §1): a verified send is echoed to everyone; at the
//!    echo threshold (or k readies) a node sends signed readies; at k + t
//!    readies the dealer's sharing is complete for it (a node without a valid
//!    send interpolates its slice from verified points). A bad send, a
//!    malformed dealing or an equivocation produces a [`TxBody::Complaint`]
//!    with evidence; the app blames the dealer.
//! 4. **Dealer set.** With k + t complete, unblamed dealers (after a short
//!    grace period for the rest), a node proposes [`TxBody::DealerSet`] with
//!    k + t ready signatures per dealer.
//! 5. **Shares.** On the decided set, each node aggregates its shares, stores
//!    them with its aggregated slice and the dealers' commitments (one LMDB
//!    transaction), and broadcasts its public key shares with proofs.
//! 6. **Public keys.** With k verified public key shares a node computes the
//!    user public keys and votes [`TxBody::PublicKeys`]; k matching votes decide.
//!
//! Restarts: a node re-deals open batches from its stored seed and asks peers
//! to resend (`Resync`); for a decided batch it holds no shares of, it
//! rebuilds them from peers' points of their aggregated slices, verified
//! against the decided commitments (`recover`).
//!
//! The state machine runs on its own thread (the crypto is CPU-bound and uses
//! rayon inside the engine); it reads committed state from the store and never
//! writes replicated state itself: everything replicated goes through consensus.

mod byzantine;
pub mod config;
mod driver;
mod faults;
mod recover;
mod run;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

pub use config::{KeygenConfig, KeygenConfigError};
/// The file in a node's data directory that hands it the next committee (see the README, "Resharing").
pub use driver::handover::NEXT_GENESIS;
pub use faults::{DealerFault, Faults};

/// Why key generation, or one batch's run or recovery, cannot start.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The `[keygen]` section cannot run on this node.
    #[error(transparent)]
    Config(#[from] KeygenConfigError),
    /// `[keygen.faults]` names a fault outside dev mode.
    #[error("keygen.faults is a test hook and needs dev_mode")]
    FaultsNeedDevMode,
    /// The committee's (n, k, t) is not a valid sharing.
    #[error("committee parameters: {0}")]
    Params(#[from] torus_engine::Error),
    /// This node is not a member of the committee it would run for.
    #[error("node {me} is not a member of epoch {epoch}")]
    NotMember {
        /// This node's index.
        me: u32,
        /// The epoch.
        epoch: u64,
    },
    /// A resharing batch's old commitment vectors are not the ones the old
    /// epoch decided (their hash differs from the batch record's).
    #[error("old commitment vectors of keys {start}.. do not match the decided hash")]
    OldVectors {
        /// The batch's first key.
        start: u64,
    },
    /// The committed state could not be read.
    #[error("committed state: {0}")]
    State(#[from] crate::app::AppError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The keygen thread could not be started.
    #[error("cannot start the keygen thread: {0}")]
    Thread(#[source] std::io::Error),
}

use crate::node::{CommittedBlock, NodeState};
use crate::p2p::{Inbound, P2pClient};
use driver::Keygen;

/// Inputs waiting for the keygen thread. The queue is bounded: when it is full,
/// the message forwarder waits, the p2p inbound queue fills up and peers hear
/// "busy" (back-pressure to the senders), committed blocks wait (or lag, which
/// makes the thread re-read committed state), and ticks are skipped.
const INPUT_QUEUE: usize = 1024;

/// What the keygen thread reacts to.
enum Input {
    Msg(Box<Inbound>),
    Block(Arc<CommittedBlock>),
    Lagged,
    Tick,
}

/// A handle on the running key generation (dropping it does not stop it).
#[derive(Debug)]
pub struct KeygenHandle {
    thread: std::thread::JoinHandle<()>,
}

impl KeygenHandle {
    /// Whether the keygen thread has stopped (it only stops on a fatal error).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts key generation for `node`, with its p2p client and inbound messages.
pub fn start(
    node: Arc<NodeState>,
    p2p: P2pClient,
    mut inbound: mpsc::Receiver<Inbound>,
    cfg: KeygenConfig,
) -> Result<KeygenHandle, KeygenError> {
    let cfg = cfg.resolve(node.profile())?;
    if cfg.faults.is_active() && !node.config().dev_mode {
        return Err(KeygenError::FaultsNeedDevMode);
    }
    let (tx, mut rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(m) = inbound.recv().await {
                if tx.send(Input::Msg(Box::new(m))).await.is_err() {
                    break;
                }
            }
        });
    }
    {
        let tx = tx.clone();
        let mut blocks = node.subscribe_blocks();
        tokio::spawn(async move {
            loop {
                let item = match blocks.recv().await {
                    Ok(b) => Input::Block(b),
                    Err(broadcast::error::RecvError::Lagged(_)) => Input::Lagged,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut t = tokio::time::interval(Duration::from_millis(100));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                t.tick().await;
                match tx.try_send(Input::Tick) {
                    // A full queue: the thread is busy; a later tick will do.
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
    }
    let thread = std::thread::Builder::new()
        .name("keygen".into())
        .spawn(move || {
            let mut kg = Keygen::new(node, p2p, cfg);
            kg.resume();
            while let Some(input) = rx.blocking_recv() {
                // Drain bursts of ticks: one is enough.
                match input {
                    Input::Msg(m) => kg.on_message(*m),
                    Input::Block(b) => kg.on_block(&b),
                    Input::Lagged => kg.resume(),
                    Input::Tick => kg.on_tick(),
                }
            }
        })
        .map_err(KeygenError::Thread)?;
    Ok(KeygenHandle { thread })
}
