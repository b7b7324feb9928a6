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
        signed_dealer_set(&self.keys, batch, &[1, 2, 3], &[1, 2, 3, 4])
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
    let batch = c.decided_batch(MIN_BATCH_KEYS);
    // Node 5 proposes a list nobody else votes for; node 1 the one that wins.
    let bogus = user_keys(MIN_BATCH_KEYS);
    let good = user_keys(MIN_BATCH_KEYS);
    let vote = |keys: &[[u8; 33]], with_list: bool| TxBody::PublicKeys {
        batch,
        keys_hash: keys_hash(keys),
        keys: if with_list { keys.to_vec() } else { Vec::new() },
        vectors_hash: [7; 32],
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

// ---- every transaction, every rule: authentication, replays, epochs ----

use crate::tx::{DealHeader, Evidence};

impl Chain {
    /// A header of `dealer`'s send to `receiver` in `batch`, under `commitments`.
    fn header(&self, batch: BatchId, dealer: u32, receiver: u32, commitments: u8) -> DealHeader {
        DealHeader::sign(
            &self.keys[dealer as usize - 1],
            batch,
            dealer,
            receiver,
            self.epoch.k,
            batch.count,
            [commitments; 32],
            [7; 32],
        )
    }

    /// Dealer `dealer`'s two headers with different commitments: equivocation.
    fn equivocation(&self, batch: BatchId, dealer: u32) -> Evidence {
        Evidence::Equivocation {
            a: self.header(batch, dealer, 1, 1),
            b: self.header(batch, dealer, 2, 2),
        }
    }

    /// A batch of `count` keys opened and its dealer set decided.
    fn decided_batch(&mut self, count: u32) -> BatchId {
        let batch = self.batch(count);
        assert_eq!(self.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
        let ds = self.dealer_set(batch);
        assert_eq!(self.run(1, ds).code, TxCode::Ok);
        batch
    }

    /// A batch opened, decided and given its public keys: `count` free keys.
    fn create_keys(&mut self, count: u32) -> BatchId {
        let batch = self.decided_batch(count);
        let keys = user_keys(count);
        for signer in 1..=3 {
            let vote = TxBody::PublicKeys {
                batch,
                keys_hash: keys_hash(&keys),
                keys: keys.clone(),
                vectors_hash: [7; 32],
            };
            assert_eq!(self.run(signer, vote).code, TxCode::Ok);
        }
        assert_eq!(counters(&self.state).unwrap().last_created, batch.end());
        batch
    }

    /// The next committee: the same nodes as epoch 2.
    fn next_epoch(&self) -> EpochInfo {
        EpochInfo {
            epoch: self.epoch.epoch + 1,
            ..self.epoch.clone()
        }
    }

    /// One sample of every transaction kind.
    fn every_kind(&self) -> Vec<TxBody> {
        let batch = self.batch(MIN_BATCH_KEYS);
        let keys = user_keys(MIN_BATCH_KEYS);
        vec![
            TxBody::OpenBatch { batch },
            self.dealer_set(batch),
            TxBody::PublicKeys {
                batch,
                keys_hash: keys_hash(&keys),
                keys,
                vectors_hash: [7; 32],
            },
            TxBody::KeyAssign {
                verifier: "test".into(),
                verifier_id: "alice".into(),
            },
            TxBody::EpochHandover {
                next: self.next_epoch(),
            },
            TxBody::ReshareComplete { epoch: 2, keys: 0 },
            TxBody::Complaint {
                batch,
                dealer: 2,
                evidence: Box::new(self.equivocation(batch, 2)),
            },
            TxBody::HandoverAbort { epoch: 2 },
        ]
    }

    /// Runs raw transaction bytes in the next block; the outcome.
    fn run_bytes(&mut self, tx: Vec<u8>) -> TxOutcome {
        self.block(vec![tx]).results.remove(0)
    }

    /// Runs `body` signed by `key` as member `signer` of `epoch`.
    fn run_as(&mut self, key: &NodeKey, epoch: u64, signer: u32, body: TxBody) -> TxOutcome {
        self.nonce += 1;
        let tx = SignedTx::sign(key, epoch, signer, self.nonce, body).encode();
        self.run_bytes(tx)
    }

    /// The current committee votes the hand-over to `next` (k + t = 4 votes).
    fn hand_over(&mut self, next: &EpochInfo) {
        for signer in 1..=4 {
            self.run(signer, TxBody::EpochHandover { next: next.clone() });
        }
        assert!(counters(&self.state).unwrap().frozen);
    }
}

/// A next committee of seven (k = 4, t = 1): the five current members keep
/// their keys and indexes, nodes 6 and 7 are fresh.
fn grown(c: &Chain) -> (Vec<NodeKey>, EpochInfo) {
    let mut keys: Vec<NodeKey> = c
        .keys
        .iter()
        .map(|k| NodeKey::from_bytes(&k.to_bytes()).unwrap())
        .collect();
    keys.extend([NodeKey::random(), NodeKey::random()]);
    let nodes = keys
        .iter()
        .zip(1..)
        .map(|(k, index)| crate::tx::NodeEntry {
            index,
            pubkey: k.public().compressed(),
        })
        .collect();
    let next = EpochInfo {
        epoch: c.epoch.epoch + 1,
        n: 7,
        k: 4,
        t: 1,
        nodes,
    };
    (keys, next)
}

/// A dealer set of `batch` naming `dealers` (commitments digest `[d; 32]`), each
/// with readies of the members `signers` (signed with `keys`, by index).
fn signed_dealer_set(keys: &[NodeKey], batch: BatchId, dealers: &[u32], signers: &[u32]) -> TxBody {
    let dealers = dealers
        .iter()
        .map(|&d| {
            let commitments = [d as u8; 32];
            let readies = signers
                .iter()
                .map(|&s| ReadySig::sign(&keys[s as usize - 1], s, &batch, d, &commitments))
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

#[test]
fn every_transaction_kind_signed_by_an_outsider_is_unauthorized() {
    let mut c = Chain::new();
    let before = c.state.clone();
    for body in c.every_kind() {
        let kind = body.kind();
        let tx = SignedTx::sign(&NodeKey::random(), c.epoch.epoch, 9, 1, body).encode();
        assert_eq!(
            App.check_tx(&c.state, &tx).code,
            TxCode::Unauthorized,
            "{kind}"
        );
        let o = c.run_bytes(tx);
        assert_eq!(o.code, TxCode::Unauthorized, "{kind}: {o:?}");
        assert!(o.log.contains("unknown signer"), "{kind}: {}", o.log);
    }
    assert_eq!(c.state, before, "nothing written");
}

#[test]
fn every_transaction_kind_signed_with_another_members_key_is_unauthorized() {
    let mut c = Chain::new();
    let before = c.state.clone();
    for body in c.every_kind() {
        let kind = body.kind();
        // Node 3's key, claiming to be node 2.
        let tx = SignedTx::sign(&c.keys[2], c.epoch.epoch, 2, 1, body).encode();
        let o = c.run_bytes(tx);
        assert_eq!(o.code, TxCode::Unauthorized, "{kind}: {o:?}");
        assert!(o.log.contains("bad signature"), "{kind}: {}", o.log);
    }
    assert_eq!(c.state, before);
}

#[test]
fn every_transaction_kind_naming_an_inactive_epoch_is_unauthorized() {
    let mut c = Chain::new();
    let before = c.state.clone();
    for epoch in [0, 2, 7, u64::MAX] {
        for body in c.every_kind() {
            let kind = body.kind();
            let tx = SignedTx::sign(&c.keys[0], epoch, 1, 1, body).encode();
            let o = c.run_bytes(tx);
            assert_eq!(
                o.code,
                TxCode::Unauthorized,
                "{kind} in epoch {epoch}: {o:?}"
            );
        }
    }
    assert_eq!(c.state, before);
}

#[test]
fn a_tampered_transaction_is_refused_and_changes_nothing() {
    let mut c = Chain::new();
    let before = c.state.clone();
    for body in c.every_kind() {
        let kind = body.kind();
        let tx = c.tx(1, body);
        // Cut short: does not decode.
        let o = c.run_bytes(tx[..tx.len() / 2].to_vec());
        assert_eq!(o.code, TxCode::Decode, "{kind}: {o:?}");
        // One byte flipped in the middle: does not decode, or no longer verifies.
        let mut flipped = tx.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x40;
        let o = c.run_bytes(flipped);
        assert!(
            matches!(o.code, TxCode::Decode | TxCode::Unauthorized),
            "{kind}: {o:?}"
        );
    }
    assert_eq!(c.state, before);
}

#[test]
fn a_refused_transaction_in_a_block_leaves_no_writes_beside_a_valid_one() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    let bad = c.tx(
        2,
        TxBody::KeyAssign {
            verifier: String::new(),
            verifier_id: "x".into(),
        },
    );
    let good = c.tx(1, TxBody::OpenBatch { batch });
    let out = c.block(vec![bad, good]);
    assert_eq!(out.results[0].code, TxCode::Invalid);
    assert_eq!(out.results[1].code, TxCode::Ok);
    assert_eq!(open_batch(&c.state).unwrap(), Some(batch));
    assert!(c.keys_under(&[state::keys::ASSIGN]) == 0);
}

#[test]
fn a_second_open_batch_is_a_duplicate_and_another_one_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    // The same batch again (a replay, or another node's identical proposal).
    assert_eq!(
        c.run(2, TxBody::OpenBatch { batch }).code,
        TxCode::Duplicate
    );
    // Another shape while one is open.
    let other = BatchId {
        count: MIN_BATCH_KEYS + 1,
        ..batch
    };
    assert_eq!(
        c.run(2, TxBody::OpenBatch { batch: other }).code,
        TxCode::Invalid
    );
    assert_eq!(open_batch(&c.state).unwrap(), Some(batch));
}

#[test]
fn an_open_batch_at_another_start_or_of_another_epoch_is_refused() {
    let mut c = Chain::new();
    let first = c.create_keys(MIN_BATCH_KEYS);
    let next = c.batch(MIN_BATCH_KEYS);
    assert_eq!(next.start, first.end());
    let ahead = BatchId {
        start: next.start + 1,
        ..next
    };
    assert_eq!(
        c.run(1, TxBody::OpenBatch { batch: ahead }).code,
        TxCode::Invalid
    );
    // A start already passed: a late replay of the first batch.
    assert_eq!(
        c.run(1, TxBody::OpenBatch { batch: first }).code,
        TxCode::Duplicate
    );
    let other_epoch = BatchId { epoch: 2, ..next };
    let o = c.run(1, TxBody::OpenBatch { batch: other_epoch });
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("another epoch"), "{}", o.log);
    assert_eq!(open_batch(&c.state).unwrap(), None);
}

#[test]
fn a_replayed_dealer_set_is_a_duplicate() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let ds = c.dealer_set(batch);
    let tx = c.tx(1, ds);
    assert_eq!(c.run_bytes(tx.clone()).code, TxCode::Ok);
    let decided = c.state.clone();
    // The same bytes again, and another node's proposal for the decided batch.
    assert_eq!(c.run_bytes(tx).code, TxCode::Duplicate);
    let ds = c.dealer_set(batch);
    assert_eq!(c.run(4, ds).code, TxCode::Duplicate);
    assert_eq!(c.state, decided);
}

#[test]
fn a_dealer_set_with_fewer_than_k_dealers_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let TxBody::DealerSet { mut dealers, .. } = c.dealer_set(batch) else {
        unreachable!()
    };
    dealers.pop();
    let o = c.run(1, TxBody::DealerSet { batch, dealers });
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("need 3"), "{}", o.log);
    assert_eq!(batch_record(&c.state, batch.start).unwrap(), None);
}

#[test]
fn a_dealer_set_needs_k_plus_t_distinct_valid_ready_signatures_per_dealer() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let TxBody::DealerSet { dealers, .. } = c.dealer_set(batch) else {
        unreachable!()
    };
    let forged = |f: &dyn Fn(&mut DealerEvidence)| {
        let mut ds = dealers.clone();
        f(&mut ds[1]);
        TxBody::DealerSet { batch, dealers: ds }
    };
    let commitments = dealers[1].commitments;
    let variants: Vec<(&str, TxBody)> = vec![
        (
            "one signer four times",
            forged(&|d| {
                let one = d.readies[0].clone();
                d.readies = vec![one; 4];
            }),
        ),
        (
            "a signature by another key",
            forged(&|d| {
                d.readies[3] = ReadySig {
                    signer: 4,
                    sig: ReadySig::sign(&c.keys[0], 4, &batch, 2, &commitments).sig,
                }
            }),
        ),
        (
            "a signer outside the committee",
            forged(&|d| d.readies[3].signer = 9),
        ),
        (
            "a ready for other commitments",
            forged(&|d| d.commitments = [0xee; 32]),
        ),
        ("three readies", forged(&|d| d.readies.truncate(3))),
    ];
    for (what, body) in variants {
        let o = c.run(1, body);
        assert_eq!(o.code, TxCode::Invalid, "{what}: {o:?}");
        assert!(
            o.log.contains("valid ready signatures"),
            "{what}: {}",
            o.log
        );
    }
    assert_eq!(batch_record(&c.state, batch.start).unwrap(), None);
    let ds = c.dealer_set(batch);
    assert_eq!(c.run(1, ds).code, TxCode::Ok);
}

#[test]
fn a_dealer_set_out_of_order_or_naming_an_outsider_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let TxBody::DealerSet { dealers, .. } = c.dealer_set(batch) else {
        unreachable!()
    };
    let mut reversed = dealers.clone();
    reversed.reverse();
    let mut twice = dealers.clone();
    twice[1] = twice[0].clone();
    let mut outsider = dealers.clone();
    outsider[2].dealer = 6;
    for (what, ds) in [
        ("reversed", reversed),
        ("twice", twice),
        ("outsider", outsider),
    ] {
        let o = c.run(1, TxBody::DealerSet { batch, dealers: ds });
        assert_eq!(o.code, TxCode::Invalid, "{what}: {o:?}");
        assert!(
            o.log.contains("out of order or unknown"),
            "{what}: {}",
            o.log
        );
    }
}

#[test]
fn a_dealer_set_for_a_batch_that_is_not_open_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    let ds = c.dealer_set(batch);
    let o = c.run(1, ds);
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("not the open batch"), "{}", o.log);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let bigger = BatchId {
        count: MIN_BATCH_KEYS + 1,
        ..batch
    };
    let ds = c.dealer_set(bigger);
    assert_eq!(c.run(1, ds).code, TxCode::Invalid);
}

#[test]
fn a_dealer_set_naming_a_blamed_dealer_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let ev = c.equivocation(batch, 2);
    let o = c.run(
        4,
        TxBody::Complaint {
            batch,
            dealer: 2,
            evidence: Box::new(ev),
        },
    );
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
    assert!(is_blamed(&c.state, c.epoch.epoch, 2).unwrap());
    let ds = c.dealer_set(batch);
    let o = c.run(1, ds);
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("dealer 2 is blamed"), "{}", o.log);
}

#[test]
fn an_equivocation_blames_its_dealer_once_and_a_self_accusation_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let complaint = |c: &Chain, dealer: u32| TxBody::Complaint {
        batch,
        dealer,
        evidence: Box::new(c.equivocation(batch, dealer)),
    };
    let o = c.run(3, complaint(&c, 3));
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(!is_blamed(&c.state, c.epoch.epoch, 3).unwrap());
    let body = complaint(&c, 3);
    let tx = c.tx(1, body);
    let out = c.block(vec![tx]);
    assert_eq!(out.results[0].code, TxCode::Ok);
    assert!(matches!(
        out.results[0].events.as_slice(),
        [Event::Blamed {
            node: 3,
            as_dealer: true,
            ..
        }]
    ));
    // A second complaint (the same one replayed, or another accuser's).
    assert_eq!(c.run(5, complaint(&c, 3)).code, TxCode::Duplicate);
}

#[test]
fn a_complaint_with_evidence_of_nothing_blames_the_accuser_or_is_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    // Two headers with the same commitments: an honest dealer, a lying accuser.
    let honest = Evidence::Equivocation {
        a: c.header(batch, 2, 1, 1),
        b: c.header(batch, 2, 3, 1),
    };
    let o = c.run(
        4,
        TxBody::Complaint {
            batch,
            dealer: 2,
            evidence: Box::new(honest),
        },
    );
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
    assert!(matches!(
        o.events.as_slice(),
        [Event::Blamed {
            node: 4,
            as_dealer: false,
            ..
        }]
    ));
    assert!(!is_blamed(&c.state, c.epoch.epoch, 2).unwrap());
    // Headers not signed by the accused dealer prove nothing: refused, nobody blamed.
    let forged = Evidence::Equivocation {
        a: c.header(batch, 3, 1, 1),
        b: c.header(batch, 3, 2, 2),
    };
    let o = c.run(
        1,
        TxBody::Complaint {
            batch,
            dealer: 5,
            evidence: Box::new(forged),
        },
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(!is_blamed(&c.state, c.epoch.epoch, 5).unwrap());
    assert!(!is_blamed(&c.state, c.epoch.epoch, 1).unwrap());
    // Evidence about another epoch's batch.
    let old = BatchId { epoch: 0, ..batch };
    let o = c.run(
        1,
        TxBody::Complaint {
            batch: old,
            dealer: 2,
            evidence: Box::new(c.equivocation(old, 2)),
        },
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
}

#[test]
fn public_keys_before_the_dealer_set_or_for_another_shape_are_refused() {
    let mut c = Chain::new();
    let batch = c.batch(MIN_BATCH_KEYS);
    let keys = user_keys(MIN_BATCH_KEYS);
    let vote = |batch: BatchId| TxBody::PublicKeys {
        batch,
        keys_hash: keys_hash(&keys),
        keys: keys.clone(),
        vectors_hash: [7; 32],
    };
    assert_eq!(c.run(1, TxBody::OpenBatch { batch }).code, TxCode::Ok);
    let o = c.run(1, vote(batch));
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    let ds = c.dealer_set(batch);
    assert_eq!(c.run(1, ds).code, TxCode::Ok);
    let other = BatchId { epoch: 2, ..batch };
    assert_eq!(c.run(1, vote(other)).code, TxCode::Invalid);
    assert_eq!(c.keys_under(&[state::keys::VOTE]), 0);
}

#[test]
fn a_key_list_that_does_not_match_its_hash_or_holds_no_point_is_refused() {
    let mut c = Chain::new();
    let batch = c.decided_batch(MIN_BATCH_KEYS);
    let keys = user_keys(MIN_BATCH_KEYS);
    let mut short = keys.clone();
    short.pop();
    let mut not_a_point = keys.clone();
    not_a_point[0] = [0xff; 33];
    let cases = [
        ("wrong hash", keys_hash(&short), keys.clone()),
        ("short list", keys_hash(&short), short),
        ("not a point", keys_hash(&not_a_point), not_a_point),
    ];
    for (what, h, list) in cases {
        let o = c.run(
            2,
            TxBody::PublicKeys {
                batch,
                keys_hash: h,
                keys: list,
                vectors_hash: [7; 32],
            },
        );
        assert_eq!(o.code, TxCode::Invalid, "{what}: {o:?}");
    }
    assert_eq!(c.keys_under(&[state::keys::VOTE]), 0);
    assert_eq!(c.keys_under(&[state::keys::PROPOSAL]), 0);
}

#[test]
fn a_second_public_keys_vote_of_a_node_is_a_duplicate_even_for_other_keys() {
    let mut c = Chain::new();
    let batch = c.decided_batch(MIN_BATCH_KEYS);
    let a = user_keys(MIN_BATCH_KEYS);
    let b = user_keys(MIN_BATCH_KEYS);
    let vote = |keys: &[[u8; 33]]| TxBody::PublicKeys {
        batch,
        keys_hash: keys_hash(keys),
        keys: keys.to_vec(),
        vectors_hash: [7; 32],
    };
    assert_eq!(c.run(2, vote(&a)).code, TxCode::Ok);
    assert_eq!(c.run(2, vote(&a)).code, TxCode::Duplicate);
    assert_eq!(c.run(2, vote(&b)).code, TxCode::Duplicate);
    // Node 2 voting three times still counts once: two more votes decide.
    assert_eq!(c.run(3, vote(&a)).code, TxCode::Ok);
    assert_eq!(counters(&c.state).unwrap().last_created, batch.start);
    let o = c.run(4, vote(&a));
    assert_eq!(o.events, vec![Event::PublicKeys { batch }]);
}

#[test]
fn key_assign_gives_each_user_the_next_free_key_once() {
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    let assign = |id: &str| TxBody::KeyAssign {
        verifier: "test".into(),
        verifier_id: id.into(),
    };
    let o = c.run(1, assign("alice"));
    assert_eq!(
        o.events,
        vec![Event::KeyAssigned {
            index: batch.start,
            new: true
        }]
    );
    let o = c.run(2, assign("bob"));
    assert_eq!(
        o.events,
        vec![Event::KeyAssigned {
            index: batch.start + 1,
            new: true
        }]
    );
    // Alice again, through another node: the same key, nothing new taken.
    let o = c.run(3, assign("alice"));
    assert_eq!(
        o.events,
        vec![Event::KeyAssigned {
            index: batch.start,
            new: false
        }]
    );
    assert_eq!(counters(&c.state).unwrap().last_unassigned, batch.start + 2);
    assert_eq!(
        assigned_index(&c.state, "test", "alice").unwrap(),
        Some(batch.start)
    );
}

#[test]
fn key_assign_with_an_empty_buffer_says_so() {
    let mut c = Chain::new();
    let o = c.run(
        1,
        TxBody::KeyAssign {
            verifier: "test".into(),
            verifier_id: "alice".into(),
        },
    );
    assert_eq!(o.code, TxCode::NoFreeKeys, "{o:?}");
    assert_eq!(assigned_index(&c.state, "test", "alice").unwrap(), None);
}

#[test]
fn key_assign_with_an_empty_id_or_a_nul_in_the_verifier_is_invalid() {
    let mut c = Chain::new();
    c.create_keys(MIN_BATCH_KEYS);
    for (v, id) in [("", "alice"), ("test", ""), ("te\0st", "alice")] {
        let o = c.run(
            1,
            TxBody::KeyAssign {
                verifier: v.into(),
                verifier_id: id.into(),
            },
        );
        assert_eq!(o.code, TxCode::Invalid, "{v:?}/{id:?}: {o:?}");
    }
    assert_eq!(c.keys_under(&[state::keys::ASSIGN]), 0);
}

#[test]
fn a_hand_over_freezes_new_assignments_but_known_users_keep_their_keys() {
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    let assign = |id: &str| TxBody::KeyAssign {
        verifier: "test".into(),
        verifier_id: id.into(),
    };
    assert_eq!(c.run(1, assign("alice")).code, TxCode::Ok);
    let next = c.next_epoch();
    // k + t = 4 matching votes decide; the first three do not.
    for signer in 1..=3 {
        let o = c.run(signer, TxBody::EpochHandover { next: next.clone() });
        assert_eq!(o.code, TxCode::Ok);
        assert!(o.events.is_empty(), "decided after {signer} votes");
    }
    assert_eq!(
        c.run(2, TxBody::EpochHandover { next: next.clone() }).code,
        TxCode::Duplicate,
        "a node votes once"
    );
    let o = c.run(4, TxBody::EpochHandover { next: next.clone() });
    assert_eq!(o.events, vec![Event::HandoverDecided { epoch: 2 }]);
    assert!(counters(&c.state).unwrap().frozen);
    // Frozen: a new user waits, a known one keeps its key, no batch opens.
    assert_eq!(c.run(1, assign("bob")).code, TxCode::Frozen);
    let o = c.run(1, assign("alice"));
    assert_eq!(
        o.events,
        vec![Event::KeyAssigned {
            index: batch.start,
            new: false
        }]
    );
    let b = c.batch(MIN_BATCH_KEYS);
    assert_eq!(
        c.run(1, TxBody::OpenBatch { batch: b }).code,
        TxCode::Frozen
    );
    assert_eq!(
        c.run(5, TxBody::EpochHandover { next }).code,
        TxCode::Duplicate,
        "already decided"
    );
}

#[test]
fn an_aborted_hand_over_unfreezes_assignment_clears_its_resharing_and_can_be_voted_again() {
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    let abort = TxBody::HandoverAbort { epoch: 2 };
    let o = c.run(1, abort.clone());
    assert_eq!(o.code, TxCode::Invalid, "no hand-over yet: {o:?}");
    let (keys, next) = grown(&c);
    c.hand_over(&next);
    let rb = BatchId { epoch: 2, ..batch };
    let set = signed_dealer_set(&keys, rb, &[1, 2, 3], &[1, 2, 5, 6, 7]);
    assert_eq!(c.run_as(&keys[5], 2, 6, set).code, TxCode::Ok);
    assert_eq!(c.keys_under(&[state::keys::RESHARE]), 1);
    // Only the current committee aborts, and only the pending epoch.
    let o = c.run_as(&keys[5], 2, 6, abort.clone());
    assert_eq!(o.code, TxCode::Unauthorized, "{o:?}");
    let o = c.run(1, TxBody::HandoverAbort { epoch: 3 });
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    // k + t = 4 votes abort; the first three do not.
    for signer in 1..=3 {
        let o = c.run(signer, abort.clone());
        assert_eq!(o.code, TxCode::Ok, "{o:?}");
        assert!(o.events.is_empty(), "aborted after {signer} votes");
    }
    assert_eq!(c.run(3, abort.clone()).code, TxCode::Duplicate);
    let o = c.run(4, abort.clone());
    assert_eq!(o.events, vec![Event::HandoverAborted { epoch: 2 }]);
    assert!(!counters(&c.state).unwrap().frozen);
    assert_eq!(next_epoch(&c.state).unwrap(), None);
    assert_eq!(c.keys_under(&[state::keys::RESHARE]), 0);
    assert_eq!(current_epoch(&c.state).unwrap().epoch, 1);
    // Assignment resumes with the current committee.
    let o = c.run(
        1,
        TxBody::KeyAssign {
            verifier: "test".into(),
            verifier_id: "bob".into(),
        },
    );
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
    // The same epoch is voted in again from zero (no vote or count of the aborted
    // round is left: three votes do not decide), and can be aborted again.
    for signer in 1..=3 {
        let o = c.run(signer, TxBody::EpochHandover { next: next.clone() });
        assert_eq!(o.code, TxCode::Ok, "{o:?}");
        assert!(o.events.is_empty(), "decided again after {signer} votes");
    }
    let o = c.run(4, TxBody::EpochHandover { next: next.clone() });
    assert_eq!(o.events, vec![Event::HandoverDecided { epoch: 2 }]);
    for signer in 1..=3 {
        assert!(c.run(signer, abort.clone()).events.is_empty());
    }
    let o = c.run(4, abort);
    assert_eq!(o.events, vec![Event::HandoverAborted { epoch: 2 }]);
}

#[test]
fn a_hand_over_to_anything_but_the_next_epoch_is_refused() {
    let mut c = Chain::new();
    let mut skip = c.next_epoch();
    skip.epoch += 1;
    let mut broken = c.next_epoch();
    broken.k = broken.n + 1;
    for (what, next) in [("skips an epoch", skip), ("k above n", broken)] {
        let o = c.run(1, TxBody::EpochHandover { next });
        assert_eq!(o.code, TxCode::Invalid, "{what}: {o:?}");
    }
    assert!(!counters(&c.state).unwrap().frozen);
}

#[test]
fn reshare_complete_needs_a_hand_over_its_epoch_and_every_created_key() {
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    // No hand-over yet: nothing to complete, and epoch 2 is no committee yet, so
    // a vote signed in it comes from strangers.
    let o = c.run(
        1,
        TxBody::ReshareComplete {
            epoch: 2,
            keys: batch.end(),
        },
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("no hand-over"), "{}", o.log);
    let early = SignedTx::sign(
        &c.keys[0],
        2,
        1,
        99,
        TxBody::ReshareComplete {
            epoch: 2,
            keys: batch.end(),
        },
    )
    .encode();
    assert_eq!(c.run_bytes(early).code, TxCode::Unauthorized);
    let next = c.next_epoch();
    for signer in 1..=4 {
        c.run(signer, TxBody::EpochHandover { next: next.clone() });
    }
    assert!(counters(&c.state).unwrap().frozen);
    let vote = |c: &mut Chain, signer: u32, keys: u64| {
        c.nonce += 1;
        let tx = SignedTx::sign(
            &c.keys[signer as usize - 1],
            2,
            signer,
            c.nonce,
            TxBody::ReshareComplete { epoch: 2, keys },
        )
        .encode();
        c.run_bytes(tx)
    };
    let o = vote(&mut c, 1, batch.end() - 1);
    assert_eq!(o.code, TxCode::Invalid, "must cover every key: {o:?}");
    // Every created batch must be reshared first.
    let o = vote(&mut c, 1, batch.end());
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("not reshared yet"), "{}", o.log);
    let keys_hash = batch_record(&c.state, batch.start)
        .unwrap()
        .unwrap()
        .keys_hash
        .unwrap();
    let rb = BatchId { epoch: 2, ..batch };
    let keys = c
        .keys
        .iter()
        .map(|k| NodeKey::from_bytes(&k.to_bytes()).unwrap())
        .collect::<Vec<_>>();
    let set = signed_dealer_set(&keys, rb, &[1, 2, 3], &[1, 2, 3, 4]);
    assert_eq!(c.run_as(&keys[0], 2, 1, set).code, TxCode::Ok);
    for signer in 1..=3 {
        let body = TxBody::PublicKeys {
            batch: rb,
            keys_hash,
            keys: Vec::new(),
            vectors_hash: [7; 32],
        };
        assert_eq!(
            c.run_as(&keys[signer - 1], 2, signer as u32, body).code,
            TxCode::Ok
        );
    }
    for signer in 2..=3 {
        let o = vote(&mut c, signer, batch.end());
        assert_eq!(o.code, TxCode::Ok);
        assert!(o.events.is_empty());
    }
    assert_eq!(vote(&mut c, 2, batch.end()).code, TxCode::Duplicate);
    let o = vote(&mut c, 4, batch.end());
    assert_eq!(o.code, TxCode::Ok);
    assert_eq!(current_epoch(&c.state).unwrap().epoch, 2);
    assert!(!counters(&c.state).unwrap().frozen);
}

#[test]
fn a_created_batch_is_reshared_by_old_dealers_with_the_next_committees_readies_and_keeps_its_keys()
{
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    let old = batch_record(&c.state, batch.start).unwrap().unwrap();
    let keys_hash = old.keys_hash.unwrap();
    let key_records = c.keys_under(&[state::keys::KEY]);
    let (keys, next) = grown(&c);
    c.hand_over(&next);
    let rb = BatchId { epoch: 2, ..batch };
    // A fresh member (6) proposes: three old dealers (k_old), each with the
    // readies of five new members (k' + t').
    let set = signed_dealer_set(&keys, rb, &[1, 2, 3], &[1, 2, 5, 6, 7]);
    let o = c.run_as(&keys[5], 2, 6, set.clone());
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
    assert_eq!(
        o.events,
        vec![Event::ReshareDealerSet {
            batch: rb,
            dealers: vec![1, 2, 3]
        }]
    );
    assert_eq!(c.run_as(&keys[6], 2, 7, set).code, TxCode::Duplicate);
    // New members may only confirm the batch's own public keys.
    let other = user_keys(MIN_BATCH_KEYS);
    let o = c.run_as(
        &keys[0],
        2,
        1,
        TxBody::PublicKeys {
            batch: rb,
            keys_hash: crate::tx::keys_hash(&other),
            keys: other,
            vectors_hash: [7; 32],
        },
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("keep the batch's public keys"), "{}", o.log);
    let confirm = TxBody::PublicKeys {
        batch: rb,
        keys_hash,
        keys: Vec::new(),
        vectors_hash: [7; 32],
    };
    for signer in [1u32, 3, 6] {
        let o = c.run_as(&keys[signer as usize - 1], 2, signer, confirm.clone());
        assert_eq!(o.code, TxCode::Ok, "{o:?}");
        assert!(o.events.is_empty(), "k' = 4 votes decide");
    }
    let o = c.run_as(&keys[6], 2, 7, confirm);
    assert_eq!(o.events, vec![Event::ResharedPublicKeys { batch: rb }]);
    // Four new members complete; the resharing record becomes the batch's.
    let done = TxBody::ReshareComplete {
        epoch: 2,
        keys: batch.end(),
    };
    for signer in [2u32, 4, 6] {
        assert_eq!(
            c.run_as(&keys[signer as usize - 1], 2, signer, done.clone())
                .code,
            TxCode::Ok
        );
    }
    let o = c.run_as(&keys[6], 2, 7, done);
    assert_eq!(o.events, vec![Event::EpochChanged { epoch: 2 }]);
    let now = batch_record(&c.state, batch.start).unwrap().unwrap();
    assert_eq!(now.batch, rb);
    assert_eq!(now.keys_hash, Some(keys_hash));
    assert_eq!(c.keys_under(&[state::keys::RESHARE]), 0);
    assert_eq!(
        c.keys_under(&[state::keys::KEY]),
        key_records,
        "no key record changes"
    );
    assert_eq!(current_epoch(&c.state).unwrap(), next);
}

#[test]
fn a_resharing_dealer_set_needs_k_old_known_old_dealers_the_next_committees_readies_and_a_created_batch(
) {
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    let (keys, next) = grown(&c);
    let rb = BatchId { epoch: 2, ..batch };
    // Before the hand-over, epoch 2 is nobody's: its signers are strangers.
    let early = signed_dealer_set(&keys, rb, &[1, 2, 3], &[1, 2, 3, 4, 5]);
    assert_eq!(c.run_as(&keys[5], 2, 6, early).code, TxCode::Unauthorized);
    c.hand_over(&next);
    let refused = [
        (
            "two dealers",
            signed_dealer_set(&keys, rb, &[1, 2], &[1, 2, 3, 4, 5]),
        ),
        (
            "an old dealer 6",
            signed_dealer_set(&keys, rb, &[1, 2, 6], &[1, 2, 3, 4, 5]),
        ),
        (
            "four readies",
            signed_dealer_set(&keys, rb, &[1, 2, 3], &[1, 2, 3, 4]),
        ),
        (
            "keys never created",
            signed_dealer_set(
                &keys,
                BatchId {
                    start: batch.end(),
                    ..rb
                },
                &[1, 2, 3],
                &[1, 2, 3, 4, 5],
            ),
        ),
        (
            "another count",
            signed_dealer_set(
                &keys,
                BatchId {
                    count: batch.count + 1,
                    ..rb
                },
                &[1, 2, 3],
                &[1, 2, 3, 4, 5],
            ),
        ),
    ];
    for (what, body) in refused {
        let o = c.run_as(&keys[5], 2, 6, body);
        assert_eq!(o.code, TxCode::Invalid, "{what}: {o:?}");
    }
    // Readies signed by the old node keys at the fresh indexes 6 and 7 are not
    // the next committee's.
    let mut forged = keys
        .iter()
        .map(|k| NodeKey::from_bytes(&k.to_bytes()).unwrap())
        .collect::<Vec<_>>();
    forged[5] = NodeKey::from_bytes(&c.keys[0].to_bytes()).unwrap();
    forged[6] = NodeKey::from_bytes(&c.keys[1].to_bytes()).unwrap();
    let o = c.run_as(
        &keys[0],
        2,
        1,
        signed_dealer_set(&forged, rb, &[1, 2, 3], &[1, 2, 3, 6, 7]),
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert_eq!(c.keys_under(&[state::keys::RESHARE]), 0);
}

#[test]
fn a_complaint_on_a_resharing_batch_blames_the_old_dealer_and_keeps_it_out_of_the_dealer_set() {
    let mut c = Chain::new();
    let batch = c.create_keys(MIN_BATCH_KEYS);
    let (keys, next) = grown(&c);
    c.hand_over(&next);
    let rb = BatchId { epoch: 2, ..batch };
    // Old dealer 2 signed two commitment digests for the resharing batch.
    let complaint = TxBody::Complaint {
        batch: rb,
        dealer: 2,
        evidence: Box::new(c.equivocation(rb, 2)),
    };
    let o = c.run_as(&keys[6], 2, 7, complaint.clone());
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
    assert!(matches!(
        o.events.as_slice(),
        [Event::Blamed {
            node: 2,
            as_dealer: true,
            ..
        }]
    ));
    assert!(
        is_blamed(&c.state, 1, 2).unwrap(),
        "blamed in the old epoch"
    );
    assert!(!is_blamed(&c.state, 2, 2).unwrap());
    assert_eq!(c.run_as(&keys[5], 2, 6, complaint).code, TxCode::Duplicate);
    let o = c.run_as(
        &keys[5],
        2,
        6,
        signed_dealer_set(&keys, rb, &[1, 2, 3], &[1, 2, 3, 4, 5]),
    );
    assert_eq!(o.code, TxCode::Invalid, "{o:?}");
    assert!(o.log.contains("blamed"), "{}", o.log);
    let o = c.run_as(
        &keys[5],
        2,
        6,
        signed_dealer_set(&keys, rb, &[1, 3, 4], &[1, 2, 3, 4, 5]),
    );
    assert_eq!(o.code, TxCode::Ok, "{o:?}");
}

#[test]
fn public_key_votes_that_agree_on_the_keys_but_not_on_the_vectors_do_not_decide() {
    let mut c = Chain::new();
    let batch = c.decided_batch(MIN_BATCH_KEYS);
    let keys = user_keys(MIN_BATCH_KEYS);
    let vote = |vectors: u8| TxBody::PublicKeys {
        batch,
        keys_hash: keys_hash(&keys),
        keys: keys.clone(),
        vectors_hash: [vectors; 32],
    };
    // k = 3 votes on the keys, split over two vector hashes: nothing decided.
    for (signer, vectors) in [(1, 1), (2, 1), (3, 2)] {
        let o = c.run(signer, vote(vectors));
        assert_eq!(o.code, TxCode::Ok, "{o:?}");
        assert!(o.events.is_empty(), "decided at vote {signer}");
    }
    let o = c.run(4, vote(1));
    assert_eq!(o.events, vec![Event::PublicKeys { batch }]);
    let rec = batch_record(&c.state, batch.start).unwrap().unwrap();
    assert_eq!(rec.keys_hash, Some(keys_hash(&keys)));
    assert_eq!(rec.vectors_hash, Some([1; 32]));
}
