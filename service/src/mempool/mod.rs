//! The node's mempool: transactions waiting to be proposed.
//!
//! # Admission
//! Every transaction, submitted locally or gossiped by a peer, passes
//! [`admit`] before it is stored: it must fit a block
//! ([`Limits::max_tx_bytes`], the block size minus its framing), decode, and
//! be signed by a member of the epoch it names, that epoch being active in
//! the node's committed state ([`crate::app::App::authenticate`]). Size and
//! duplicates are checked before the signature. A peer cannot fill the pool
//! with blobs nobody signed or that no block can carry.
//!
//! # Lanes and quotas
//! Two lanes, each bounded by count and bytes: the nodes' own key generation
//! and epoch transactions ([`Lane::Keygen`]) and key assignments, one per
//! user login ([`Lane::User`]). The proposer reaps the keygen lane first, so a
//! flood of logins can neither evict nor starve key generation. Within a lane
//! each origin ([`Origin::Local`], or the connection-authenticated peer index)
//! holds at most `1 / origins` of it (never less than one largest
//! transaction): one peer, even a committee member signing its own junk,
//! cannot take the others' room. Quotas are per origin, not per signer: a
//! peer replaying another member's old transactions would otherwise use up
//! that member's share.
//!
//! # Leaving the pool
//! The proposer [`Mempool::reap`]s a block's worth without removing anything
//! (each transaction costs its length plus [`TX_FRAMING`]); what `check_tx`
//! calls undecodable, unauthorized or duplicate is [`Mempool::evict`]ed, and
//! what could not fit an empty block is dropped by the reap itself.
//! Committed transactions are [`Mempool::remove`]d on every node after each
//! decided block, and their hashes are remembered for a while so a late
//! gossip copy is not admitted again; then [`Mempool::after_block`] drops what
//! names an epoch that is no longer active and what has been pending for more
//! than [`Limits::max_age_blocks`] blocks.
//!
//! Locally submitted transactions (through [`MempoolSubmitter`], the node's
//! `Submitter`) are handed to the gossip hook ([`Mempool::set_gossip`]); the
//! p2p layer broadcasts them and calls [`Mempool::insert_from_peer`] for
//! copies received from peers. Every refusal is counted in
//! `torus_mempool_refused_total{reason}`, every drop in
//! `torus_mempool_dropped_total{reason}`.
//!
//! [`Pool`] and [`admit`] are sans-IO (no lock, clock or tokio) and build
//! without the `server` feature, for the fuzz target `mempool_admission`.

mod pool;
#[cfg(feature = "server")]
mod shared;

pub use pool::{
    admit, max_tx_bytes, Admitted, Dropped, Lane, Limits, Origin, Pool, Refused, Usage,
    BLOCK_FRAMING, DEFAULT_KEYGEN_BYTES, DEFAULT_KEYGEN_TXS, DEFAULT_MAX_AGE_BLOCKS,
    DEFAULT_MAX_BLOCK_BYTES, DEFAULT_USER_BYTES, DEFAULT_USER_TXS, RECENT_COMMITTED, TX_FRAMING,
};
#[cfg(feature = "server")]
pub use shared::{AdmitFn, GossipFn, Mempool, MempoolSubmitter};

#[cfg(all(test, feature = "server"))]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::app;
    use crate::crypto::NodeKey;
    use crate::hexfmt::keccak256;
    use crate::metrics::{Metrics, ReasonLabels};
    use crate::node::Submitter;
    use crate::tx::{BatchId, EpochInfo, SignedTx, TxBody};

    type State = BTreeMap<Vec<u8>, Vec<u8>>;

    /// A committee of three (epoch 1) and the state it is the genesis of.
    fn net() -> (Vec<NodeKey>, Arc<State>) {
        let (keys, epoch) = EpochInfo::random_for_tests(3);
        let state: State = app::genesis_writes(&epoch)
            .unwrap()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        (keys, Arc::new(state))
    }

    /// A login of `who`, signed by member `i` (0-based).
    fn assign(keys: &[NodeKey], i: usize, who: &str) -> Vec<u8> {
        let body = TxBody::KeyAssign {
            verifier: "test".into(),
            verifier_id: who.into(),
        };
        SignedTx::sign(&keys[i], 1, i as u32 + 1, 0, body).encode()
    }

    /// A keygen transaction of member `i`.
    fn open(keys: &[NodeKey], i: usize, start: u64) -> Vec<u8> {
        let batch = BatchId {
            epoch: 1,
            start,
            count: 1,
        };
        SignedTx::sign(&keys[i], 1, i as u32 + 1, 0, TxBody::OpenBatch { batch }).encode()
    }

    fn pool_on(state: Arc<State>, limits: Limits, metrics: Option<Arc<Metrics>>) -> Arc<Mempool> {
        let max = limits.max_tx_bytes;
        Mempool::new(limits, Arc::new(move |tx| admit(&*state, tx, max)), metrics)
    }

    fn small(origins: usize) -> Limits {
        Limits {
            max_tx_bytes: 4096,
            keygen: Usage {
                txs: 6,
                bytes: 1 << 20,
            },
            user: Usage {
                txs: 9,
                bytes: 1 << 20,
            },
            origins,
            max_age_blocks: 10,
        }
    }

    fn refusals(m: &Metrics, reason: &str) -> u64 {
        m.mempool_refused
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .get()
    }

    #[test]
    fn a_tx_larger_than_a_block_is_refused_on_admission() {
        let (keys, state) = net();
        // Blocks of 1 KiB carry transactions of at most 1 KiB - 17 bytes.
        let limits = Limits::for_block(1024, 3);
        assert_eq!(limits.max_tx_bytes, 1024 - BLOCK_FRAMING - TX_FRAMING);
        let metrics = Arc::new(Metrics::new());
        let m = pool_on(state.clone(), limits, Some(metrics.clone()));
        let big = assign(&keys, 1, &"x".repeat(2000));
        assert_eq!(
            admit(&*state, &big, limits.max_tx_bytes),
            Err(Refused::TooLarge)
        );
        assert_eq!(m.insert_from_peer(2, big), Err(Refused::TooLarge));
        assert_eq!(
            m.insert_from_peer(2, vec![0; 64 << 20]),
            Err(Refused::TooLarge),
            "a 64 MiB blob never reaches the pool"
        );
        assert_eq!(refusals(&metrics, "too_large"), 2);
        assert!(m.is_empty());
        // A transaction that fits is admitted, and the pool's reap fits a block.
        m.insert_from_peer(2, assign(&keys, 1, "a@b")).unwrap();
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_pending_tx_larger_than_the_block_is_dropped_by_the_reap() {
        let (keys, state) = net();
        let mut p = Pool::new(small(1));
        let tx = assign(&keys, 0, &"y".repeat(600));
        let meta = admit(&*state, &tx, 4096).unwrap();
        p.insert(tx.clone(), Origin::Local, meta).unwrap();
        // A block of 500 bytes can never carry it: dropped, not kept for ever.
        let (txs, dropped) = p.reap(500, 100);
        assert!(txs.is_empty());
        assert_eq!(dropped.never_fits, 1);
        assert!(p.is_empty());
        p.check_invariants().unwrap();
    }

    #[test]
    fn an_unsigned_gossiped_tx_is_refused() {
        let (keys, state) = net();
        let metrics = Arc::new(Metrics::new());
        let m = pool_on(state, small(3), Some(metrics.clone()));
        let outsider = NodeKey::random();
        let body = TxBody::KeyAssign {
            verifier: "test".into(),
            verifier_id: "a@b".into(),
        };
        // Claims to be member 1, signed by another key.
        let forged = SignedTx::sign(&outsider, 1, 1, 0, body.clone()).encode();
        assert_eq!(m.insert_from_peer(2, forged), Err(Refused::Unauthorized));
        // Not a member at all.
        let stranger = SignedTx::sign(&keys[0], 1, 9, 0, body.clone()).encode();
        assert_eq!(m.insert_from_peer(2, stranger), Err(Refused::Unauthorized));
        // An epoch that is not active.
        let other_epoch = SignedTx::sign(&keys[0], 7, 1, 0, body.clone()).encode();
        assert_eq!(
            m.insert_from_peer(2, other_epoch),
            Err(Refused::Unauthorized)
        );
        // A signature over other bytes.
        let mut tampered = SignedTx::sign(&keys[0], 1, 1, 0, body).encode();
        if let Some(b) = tampered.get_mut(20) {
            *b ^= 1;
        }
        assert!(matches!(
            m.insert_from_peer(2, tampered),
            Err(Refused::Unauthorized | Refused::Decode)
        ));
        assert_eq!(
            m.insert_from_peer(2, b"not a transaction".to_vec()),
            Err(Refused::Decode)
        );
        assert_eq!(
            m.submit_local(b"nor this".to_vec()),
            Err(Refused::Decode),
            "local submissions pass the same rule"
        );
        assert!(m.is_empty());
        assert!(refusals(&metrics, "unauthorized") >= 3);
        assert_eq!(
            refusals(&metrics, "decode") + refusals(&metrics, "unauthorized"),
            6
        );
        // The genuine one is admitted.
        m.insert_from_peer(2, assign(&keys, 0, "a@b")).unwrap();
    }

    #[test]
    fn one_peer_cannot_fill_the_pool() {
        let (keys, state) = net();
        let metrics = Arc::new(Metrics::new());
        // 9 user slots shared by 3 origins: 3 each.
        let m = pool_on(state, small(3), Some(metrics.clone()));
        let mut admitted = 0;
        for i in 0..100 {
            // Peer 2 floods with logins it signed itself (an insider).
            match m.insert_from_peer(2, assign(&keys, 1, &format!("u{i}"))) {
                Ok(_) => admitted += 1,
                Err(e) => assert_eq!(e, Refused::QuotaExceeded),
            }
        }
        assert_eq!(admitted, 3);
        assert_eq!(refusals(&metrics, "quota"), 97);
        // The others keep their share.
        for i in 0..3 {
            m.insert_from_peer(3, assign(&keys, 2, &format!("v{i}")))
                .unwrap();
            m.submit_local(assign(&keys, 0, &format!("w{i}"))).unwrap();
        }
        assert_eq!(m.lane_usage(Lane::User).txs, 9);
        // Byte quotas too: one origin's bytes are bounded by its share.
        let mut p = Pool::new(Limits {
            user: Usage {
                txs: 1000,
                bytes: 3 * 4096,
            },
            ..small(3)
        });
        let (keys, state) = net();
        let mut n = 0;
        for i in 0..100 {
            let tx = assign(&keys, 1, &format!("{i:01000}"));
            let meta = admit(&*state, &tx, 4096).unwrap();
            if p.insert(tx, Origin::Peer(2), meta).is_ok() {
                n += 1;
            }
        }
        assert!(p.origin_usage(Lane::User, Origin::Peer(2)).bytes <= 4096);
        assert!(n < 100);
        p.check_invariants().unwrap();
    }

    #[test]
    fn user_traffic_cannot_starve_keygen_txs() {
        let (keys, state) = net();
        let m = pool_on(state, small(3), None);
        // Every origin floods logins until the user lane is full.
        for i in 0..50 {
            let _ = m.submit_local(assign(&keys, 0, &format!("a{i}")));
            let _ = m.insert_from_peer(2, assign(&keys, 1, &format!("b{i}")));
            let _ = m.insert_from_peer(3, assign(&keys, 2, &format!("c{i}")));
        }
        assert_eq!(m.lane_usage(Lane::User).txs, 9);
        assert_eq!(
            m.insert_from_peer(4, assign(&keys, 2, "late")),
            Err(Refused::Full),
            "an origin beyond the committee finds the lane full"
        );
        // Keygen transactions still get in, after the logins...
        let kg = open(&keys, 1, 0);
        m.insert_from_peer(2, kg.clone()).unwrap();
        m.submit_local(open(&keys, 0, 1)).unwrap();
        assert_eq!(m.lane_usage(Lane::Keygen).txs, 2);
        // ...and come first in a block with room for only two transactions.
        let budget = 2 * (kg.len() + TX_FRAMING);
        let block = m.reap(budget, 100);
        assert_eq!(block.len(), 2);
        assert_eq!(block[0], kg);
        assert!(block.iter().all(|t| SignedTx::decode(t)
            .map(|t| Lane::of(&t.body) == Lane::Keygen)
            .unwrap_or(false)));
        // And a block of one transaction takes one of them, no login.
        assert_eq!(m.reap(budget, 1), vec![kg]);
    }

    #[test]
    fn stale_and_old_txs_leave_the_pool_after_a_block() {
        let (keys, state) = net();
        let mut p = Pool::new(small(3));
        let a = assign(&keys, 0, "a");
        p.insert(a.clone(), Origin::Local, admit(&*state, &a, 4096).unwrap())
            .unwrap();
        // Epoch 1 still current: kept; at the age limit: dropped.
        assert_eq!(p.after_block(1, 1, None), Dropped::default());
        let b = assign(&keys, 1, "b");
        p.insert(
            b.clone(),
            Origin::Peer(2),
            admit(&*state, &b, 4096).unwrap(),
        )
        .unwrap();
        let d = p.after_block(11, 1, None);
        assert_eq!(d.age, 1, "a is 11 blocks old");
        assert!(p.contains(&keccak256(&b)) && !p.contains(&keccak256(&a)));
        // Epoch 2 became current: b names epoch 1, dropped; epoch-1 copies admitted
        // against an older state are refused from now on.
        let d = p.after_block(12, 2, None);
        assert_eq!(d.epoch, 1);
        assert!(p.is_empty());
        let c = assign(&keys, 2, "c");
        assert_eq!(
            p.insert(
                c.clone(),
                Origin::Peer(3),
                admit(&*state, &c, 4096).unwrap()
            ),
            Err(Refused::Unauthorized)
        );
        p.check_invariants().unwrap();
    }

    #[test]
    fn dedups_removes_and_evicts_with_exact_accounting() {
        let (keys, state) = net();
        let m = pool_on(state, small(1), None);
        let (a, b, c) = (
            assign(&keys, 0, "a"),
            assign(&keys, 0, "b"),
            assign(&keys, 0, "c"),
        );
        m.submit_local(a.clone()).unwrap();
        assert_eq!(m.submit_local(a.clone()), Err(Refused::Duplicate));
        m.insert_from_peer(2, b.clone()).unwrap();
        m.insert_from_peer(2, c.clone()).unwrap();
        assert_eq!(m.bytes(), a.len() + b.len() + c.len());
        assert_eq!(m.reap(1 << 20, 100), vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(m.len(), 3, "reap removes nothing");
        m.remove(&[keccak256(&b)]);
        assert_eq!(m.reap(1 << 20, 100), vec![a.clone(), c.clone()]);
        // A committed tx is not admitted again; an evicted one is.
        assert_eq!(m.insert_from_peer(3, b), Err(Refused::Duplicate));
        m.evict(&[keccak256(&a)]);
        m.insert_from_peer(3, a.clone()).unwrap();
        assert_eq!(m.reap(1 << 20, 100), vec![c.clone(), a.clone()]);
        // Each tx costs its length plus its framing in a block.
        assert_eq!(m.bytes(), a.len() + c.len());
        assert_eq!(m.reap(c.len() + TX_FRAMING, 100), vec![c.clone()]);
        m.lock().check_invariants().unwrap();
        // A block that cannot carry them even alone: they are dropped.
        assert_eq!(m.reap(c.len() + TX_FRAMING - 1, 100), Vec::<Vec<u8>>::new());
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
        m.lock().check_invariants().unwrap();
    }

    #[test]
    fn local_submissions_are_gossiped_once() {
        let (keys, state) = net();
        let m = pool_on(state, small(1), None);
        let n = Arc::new(AtomicUsize::new(0));
        let n2 = n.clone();
        m.set_gossip(Arc::new(move |_tx| {
            n2.fetch_add(1, Ordering::SeqCst);
        }));
        let s = MempoolSubmitter(m.clone());
        s.submit(assign(&keys, 0, "x")).unwrap();
        s.submit(assign(&keys, 0, "x")).unwrap();
        assert!(s.submit(b"junk".to_vec()).is_err());
        m.insert_from_peer(2, assign(&keys, 1, "y")).unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 1, "peer copies are not gossiped");
        assert_eq!(m.len(), 2);
    }

    #[tokio::test]
    async fn wait_nonempty_wakes_on_insert_and_times_out() {
        let (keys, state) = net();
        let m = pool_on(state, small(1), None);
        assert!(!m.wait_nonempty(Duration::from_millis(20)).await);
        let m2 = m.clone();
        let t = tokio::spawn(async move { m2.wait_nonempty(Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        m.insert_from_peer(2, assign(&keys, 1, "z")).unwrap();
        assert!(tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap()
            .unwrap());
    }
}
