//! The batch rules on a chain of blocks executed by the app alone (no engine,
//! no store): batch sizes, the deadline, and the clean-up of public-key rounds.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use super::*;
use crate::crypto::NodeKey;
use crate::tx::{
    keys_hash, BatchLimits, DealerEvidence, EpochInfo, ReadySig, BATCH_DEADLINE_BLOCKS,
    MAX_BATCH_KEYS, MIN_BATCH_KEYS,
};

/// A five-node committee (k = 3, t = 1) and its replicated state.
struct Chain {
    keys: Vec<NodeKey>,
    epoch: EpochInfo,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    height: u64,
    hash: [u8; 32],
    nonce: u64,
}

impl Chain {
    fn new() -> Self {
        let (keys, epoch) = EpochInfo::random_for_tests(5);
        let state = genesis_writes(&epoch)
            .unwrap()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        Chain {
            keys,
            epoch,
            state,
            height: 0,
            hash: [0; 32],
            nonce: 0,
        }
    }

    fn tx(&mut self, signer: u32, body: TxBody) -> Vec<u8> {
        self.nonce += 1;
        let key = &self.keys[signer as usize - 1];
        SignedTx::sign(key, self.epoch.epoch, signer, self.nonce, body).encode()
    }

    /// Executes a block of `txs` at `height` and commits its writes.
    fn block_at(&mut self, height: u64, txs: Vec<Vec<u8>>) -> BlockOutcome {
        let out = App
            .finalize_block(&self.state, height, &self.hash, &txs)
            .unwrap();
        for (k, v) in &out.writes {
            match v {
                Some(v) => self.state.insert(k.clone(), v.clone()),
                None => self.state.remove(k),
            };
        }
        self.height = height;
        self.hash = out.app_hash;
        out
    }

    fn block(&mut self, txs: Vec<Vec<u8>>) -> BlockOutcome {
        self.block_at(self.height + 1, txs)
    }

    /// Runs one transaction in the next block and returns its outcome.
    fn run(&mut self, signer: u32, body: TxBody) -> TxOutcome {
        let tx = self.tx(signer, body);
        self.block(vec![tx]).results.remove(0)
    }

    fn batch(&self, count: u32) -> BatchId {
        BatchId {
            epoch: self.epoch.epoch,
            start: counters(&self.state).unwrap().next_batch_start,
            count,
        }
    }

    /// A valid dealer set: dealers 1..=3, each with readies from nodes 1..=4.
    fn dealer_set(&self, batch: BatchId) -> TxBody {
        let dealers = (1..=3u32)
            .map(|d| {
                let commitments = [d as u8; 32];
                let readies = (1..=4u32)
                    .map(|s| ReadySig::sign(&self.keys[s as usize - 1], s, &batch, d, &commitments))
                    .collect();
                DealerEvidence {
                    dealer: d,
                    commitments,
                    readies,
                }
            })
            .collect();
        TxBody::DealerSet { batch, dealers }
    }

    fn keys_under(&self, prefix: &[u8]) -> usize {
        self.state.keys().filter(|k| k.starts_with(prefix)).count()
    }
}

fn user_keys(n: u32) -> Vec<[u8; 33]> {
    (0..n)
        .map(|_| NodeKey::random().public().compressed())
        .collect()
}

#[test]
fn an_open_batch_above_the_maximum_is_refused() {
    let mut c = Chain::new();
    let limits = BatchLimits::for_k(c.epoch.k);
    // The codec's bound (2^20 keys) is far above what one send can carry.
    assert!(u64::from(limits.max) < MAX_BATCH_KEYS);
    for count in [limits.max + 1, 466_000, MAX_BATCH_KEYS as u32] {
        let o = c.run(
            1,
            TxBody::OpenBatch {
                batch: c.batch(count),
            },
        );
        assert_eq!(o.code, TxCode::Invalid, "{count}: {o:?}");
        assert!(o.log.contains("outside"), "{}", o.log);
        assert_eq!(open_batch(&c.state).unwrap(), None);
    }
    let o = c.run(
        1,
        TxBody::OpenBatch {
            batch: c.batch(limits.max),
        },
    );
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
}

#[test]
fn an_open_batch_below_the_minimum_is_refused() {
    let mut c = Chain::new();
    for count in [1, MIN_BATCH_KEYS - 1] {
        let o = c.run(
            2,
            TxBody::OpenBatch {
                batch: c.batch(count),
            },
        );
        assert_eq!(o.code, TxCode::Invalid, "{count}: {o:?}");
        // Refused in the mempool too.
        let tx = c.tx(
            2,
            TxBody::OpenBatch {
                batch: c.batch(count),
            },
        );
        assert_eq!(App.check_tx(&c.state, &tx).code, TxCode::Invalid);
    }
    let o = c.run(
        2,
        TxBody::OpenBatch {
            batch: c.batch(MIN_BATCH_KEYS),
        },
    );
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
    assert_eq!(
        open_batch(&c.state).unwrap().map(|b| b.count),
        Some(MIN_BATCH_KEYS)
    );
}

#[test]
fn a_stuck_batch_is_cancelled_after_its_deadline() {
    let mut c = Chain::new();
    c.block_at(41, Vec::new());
    let stuck = c.batch(1000);
    let o = c.run(3, TxBody::OpenBatch { batch: stuck });
    assert_eq!(o.code, TxCode::Ok);
    let opened = c.height;
    assert_eq!(open_batch_height(&c.state).unwrap(), Some(opened));
    // A late dealer set in the deadline block loses: the batch is cancelled first.
    let late = c.dealer_set(stuck);
    let late = c.tx(1, late);
    let out = c.block_at(opened + BATCH_DEADLINE_BLOCKS, vec![late]);
    assert_eq!(
        out.events,
        vec![Event::BatchCancelled {
            batch: stuck,
            opened_at: opened
        }]
    );
    assert_eq!(out.results[0].code, TxCode::Invalid, "{:?}", out.results);
    assert_eq!(open_batch(&c.state).unwrap(), None);
    assert_eq!(open_batch_height(&c.state).unwrap(), None);
    assert_eq!(batch_record(&c.state, stuck.start).unwrap(), None);
    assert_eq!(counters(&c.state).unwrap().next_batch_start, stuck.start);
    // Only once.
    assert!(c.block(Vec::new()).events.is_empty());
    // The next batch starts at the same index with at most half the keys.
    let o = c.run(4, TxBody::OpenBatch { batch: stuck });
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    let o = c.run(
        4,
        TxBody::OpenBatch {
            batch: c.batch(501),
        },
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    let smaller = c.batch(500);
    assert_eq!(
        open_batch_limits(&c.state, &c.epoch, smaller.start)
            .unwrap()
            .max,
        500
    );
    assert_eq!(
        c.run(4, TxBody::OpenBatch { batch: smaller }).code,
        TxCode::Ok
    );
    // Its dealer set decides it; the cancel record goes with the index.
    let ds = c.dealer_set(smaller);
    assert_eq!(c.run(1, ds).code, TxCode::Ok);
    assert_eq!(cancelled_batch(&c.state).unwrap(), None);
    assert_eq!(counters(&c.state).unwrap().next_batch_start, smaller.end());
    let limits = open_batch_limits(&c.state, &c.epoch, smaller.end()).unwrap();
    assert_eq!(limits, BatchLimits::for_k(c.epoch.k));
}

#[test]
fn a_batch_is_not_cancelled_before_its_deadline() {
    let mut c = Chain::new();
    let batch = c.batch(20);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let opened = c.height;
    // One block short of the deadline: still open, and its dealer set decides it.
    let ds = c.dealer_set(batch);
    let ds = c.tx(2, ds);
    let out = c.block_at(opened + BATCH_DEADLINE_BLOCKS - 1, vec![ds]);
    assert!(out.events.is_empty());
    assert_eq!(out.results[0].code, TxCode::Ok, "{:?}", out.results);
    assert!(batch_record(&c.state, batch.start).unwrap().is_some());
    // A decided batch has no deadline.
    let out = c.block_at(opened + 10 * BATCH_DEADLINE_BLOCKS, Vec::new());
    assert!(out.events.is_empty());
    assert!(batch_record(&c.state, batch.start).unwrap().is_some());
    assert_eq!(open_batch_height(&c.state).unwrap(), None);
}

#[test]
fn undecided_key_lists_are_deleted_when_the_batch_is_decided() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let ds = c.dealer_set(batch);
    assert_eq!(c.run(1, ds).code, TxCode::Ok);
    // Node 5 proposes a list nobody else votes for; node 1 the one that wins.
    let bogus = user_keys(MIN_BATCH_KEYS);
    let good = user_keys(MIN_BATCH_KEYS);
    let vote = |keys: &[[u8; 33]], with_list: bool| TxBody::PublicKeys {
        batch,
        keys_hash: keys_hash(keys),
        keys: if with_list { keys.to_vec() } else { Vec::new() },
    };
    assert_eq!(c.run(5, vote(&bogus, true)).code, TxCode::Ok);
    assert_eq!(c.run(1, vote(&good, true)).code, TxCode::Ok);
    assert_eq!(c.run(2, vote(&good, false)).code, TxCode::Ok);
    // Two lists stored, two hashes indexed, three votes.
    assert_eq!(c.keys_under(&[state::keys::PROPOSAL]), 2);
    assert_eq!(c.keys_under(&[state::keys::ROUND_HASHES]), 1);
    assert_eq!(c.keys_under(&[state::keys::VOTE]), 3);
    let out = c.run(3, vote(&good, false));
    assert_eq!(out.events, vec![Event::PublicKeys { batch }]);
    // The good keys are key records; nothing of the round is left.
    for (i, pk) in good.iter().enumerate() {
        let kr = key_record(&c.state, batch.start + i as u64)
            .unwrap()
            .unwrap();
        assert_eq!(kr.pubkey, *pk);
    }
    assert_eq!(c.keys_under(&[state::keys::PROPOSAL]), 0);
    assert_eq!(c.keys_under(&[state::keys::ROUND_HASHES]), 0);
    assert_eq!(c.keys_under(&[state::keys::VOTE]), 0);
    assert_eq!(c.keys_under(&[state::keys::COUNT]), 0);
    // A late vote is a duplicate and stores nothing.
    let late = c.run(4, vote(&bogus, true));
    assert_eq!(late.code, TxCode::Duplicate);
    assert_eq!(c.keys_under(&[state::keys::PROPOSAL]), 0);
    assert_eq!(counters(&c.state).unwrap().last_created, batch.end());
}
