//! Shared fixtures of the fuzz targets and of `gen_corpus`: fixed node keys, a genesis
//! committee, and replicated states built by honest transactions.
//!
//! Everything here is deterministic (fixed keys, RFC 6979 signatures), so a crash input
//! reproduces on any machine.

use std::collections::BTreeMap;

use torus_node::app::{self, App, TxCode};
use torus_node::crypto::NodeKey;
use torus_node::tx::{
    keys_hash, ready_digest, BatchId, DealerEvidence, EpochInfo, NodeEntry, ReadySig, SignedTx,
    TxBody,
};

/// The in-memory replicated state the app runs on.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Epoch number of the genesis committee.
pub const GENESIS_EPOCH: u64 = 1;
/// Keys of the batch decided in [`Fixtures::populated`].
pub const BATCH_KEYS: u32 = 16;

/// Node key `i` (1-based): the scalar `i` repeated, valid for every `i` in 1..=255.
pub fn node_key(i: u8) -> NodeKey {
    #[allow(clippy::expect_used)]
    NodeKey::from_bytes(&[i; 32]).expect("fixed scalar is a valid secret key")
}

/// A committee of `n` nodes whose node `j` has key `node_key(first + j - 1)`.
/// `n = 1, k = 1, t = 0` lets one transaction decide a vote, which reaches the
/// deciding branches of every vote kind from a single fuzzed input.
pub fn committee(epoch: u64, first: u8) -> EpochInfo {
    EpochInfo {
        epoch,
        n: 1,
        k: 1,
        t: 0,
        nodes: vec![NodeEntry {
            index: 1,
            pubkey: node_key(first).public().compressed(),
        }],
    }
}

/// Applies `writes` (None = delete) to `state`.
pub fn apply(state: &mut State, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in writes {
        match v {
            Some(v) => {
                state.insert(k, v);
            }
            None => {
                state.remove(&k);
            }
        }
    }
}

/// The states a fuzzed transaction is checked against, and the keys that sign for them.
pub struct Fixtures {
    /// `app::genesis_writes` only: no batches, no keys.
    pub genesis: State,
    /// Genesis plus one decided batch of [`BATCH_KEYS`] keys, one of them assigned.
    pub populated: State,
    /// `populated` plus a decided hand-over to epoch 2 (assignment frozen).
    pub handover: State,
    /// The honest transactions that built `populated` and `handover`, in order.
    pub honest: Vec<SignedTx>,
    /// The key of the only node of the genesis committee.
    pub current_key: NodeKey,
    /// The key of the only node of the next committee (epoch 2).
    pub next_key: NodeKey,
}

/// A valid user public key for key index `i` (so `PublicKeys` accepts the batch).
pub fn user_pubkey(i: u8) -> [u8; 33] {
    node_key(100 + i).public().compressed()
}

/// The honest transactions, in order: open batch, dealer set, public keys, one
/// assignment (→ `populated`), then a hand-over vote (→ `handover`).
pub fn honest_txs() -> Vec<SignedTx> {
    let key = node_key(1);
    let batch = BatchId {
        epoch: GENESIS_EPOCH,
        start: 0,
        count: BATCH_KEYS,
    };
    let commitments = [7u8; 32];
    let ready = ReadySig {
        signer: 1,
        sig: key.sign_prehash(&ready_digest(&batch, 1, &commitments)),
    };
    let keys: Vec<[u8; 33]> = (0..BATCH_KEYS as u8).map(user_pubkey).collect();
    let bodies = vec![
        TxBody::OpenBatch { batch },
        TxBody::DealerSet {
            batch,
            dealers: vec![DealerEvidence {
                dealer: 1,
                commitments,
                readies: vec![ready],
            }],
        },
        TxBody::PublicKeys {
            batch,
            keys_hash: keys_hash(&keys),
            keys,
            vectors_hash: [7; 32],
        },
        TxBody::KeyAssign {
            verifier: "google".into(),
            verifier_id: "alice@example.com".into(),
        },
        TxBody::EpochHandover {
            next: committee(GENESIS_EPOCH + 1, 2),
        },
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| SignedTx::sign(&key, GENESIS_EPOCH, 1, i as u64, b))
        .collect()
}

impl Fixtures {
    /// Builds the three states by running the honest transactions through
    /// `App::finalize_block`, checking that each one succeeds.
    #[allow(clippy::expect_used, clippy::panic)]
    pub fn new() -> Self {
        let app = App;
        let mut genesis = State::new();
        let writes = app::genesis_writes(&committee(GENESIS_EPOCH, 1)).expect("valid genesis");
        apply(&mut genesis, writes);
        let honest = honest_txs();
        let mut state = genesis.clone();
        let mut populated = None;
        let mut prev = [0u8; 32];
        for (h, tx) in honest.iter().enumerate() {
            if h == 4 {
                populated = Some(state.clone());
            }
            let out = app
                .finalize_block(&state, h as u64 + 1, &prev, &[tx.encode()])
                .expect("honest block executes");
            if out.results[0].code != TxCode::Ok {
                panic!("honest tx {h} rejected: {:?}", out.results[0]);
            }
            prev = out.app_hash;
            apply(&mut state, out.writes);
        }
        Fixtures {
            genesis,
            populated: populated.expect("set at h = 4"),
            handover: state,
            honest,
            current_key: node_key(1),
            next_key: node_key(2),
        }
    }

    /// The state selected by `sel` (0 genesis, 1 populated, 2 hand-over).
    pub fn state(&self, sel: u64) -> &State {
        match sel % 3 {
            0 => &self.genesis,
            1 => &self.populated,
            _ => &self.handover,
        }
    }

    /// `tx` re-addressed and re-signed so that it authenticates against `state`:
    /// in the hand-over state, what the next committee may sign (a
    /// `ReshareComplete`, a resharing batch's dealer set, vote or complaint) is
    /// signed by it, everything else by the current committee. The body is kept
    /// as decoded.
    pub fn resign(&self, tx: &SignedTx, handover: bool) -> SignedTx {
        let next = GENESIS_EPOCH + 1;
        let (key, epoch) = if handover && tx.body.next_committee_may_sign(next) {
            (&self.next_key, next)
        } else {
            (&self.current_key, GENESIS_EPOCH)
        };
        SignedTx::sign(key, epoch, 1, tx.nonce, tx.body.clone())
    }
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}
