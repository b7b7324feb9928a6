//! A byzantine dealer (node 5, through the test-only fault hook) corrupts one
//! node's row, deals (k+1) x (k+1) matrices, or equivocates (a different
//! dealing to one node). Each time the honest nodes file a complaint with
//! evidence, the consensus app checks it and blames the dealer, the dealer is
//! in no dealer set decided after its blame (the first batch's set may race the
//! complaint), every honest node ends with the same history and
//! the same public keys, and logins work.

#![allow(clippy::unwrap_used)]

mod net;

use std::sync::Arc;
use std::time::Duration;

use torus_node::devnet::Devnet;

async fn run(fault: &'static str) {
    let dir = net::test_dir();
    let mut o = net::opts(dir.path(), 5, 20, 10);
    o.tweak = Some(Arc::new(move |i, cfg| {
        if i == 5 {
            cfg.keygen.faults.dealer = fault.to_string();
        }
    }));
    let mut dn = Devnet::start(o).await.unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    dn.wait_for_keys(20, Duration::from_secs(180), |_| {})
        .await
        .unwrap();
    for i in 1..=5 {
        let s = net::status(&dn, i, None).await.unwrap();
        assert_eq!(
            s["blamed"],
            serde_json::json!([5]),
            "{fault}: node {i}: {s}"
        );
        let batches = s["batches"].as_array().unwrap();
        for b in batches {
            let dealers: Vec<u64> = b["dealers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .collect();
            // The first batch's dealer set can be decided before the complaint is
            // committed: with k + t readies from the other nodes the faulty dealer's
            // sharing is complete (node 2 interpolates its slice), and which of the two
            // transactions commits first is a race. Every later batch is dealt after
            // the blame and must exclude the dealer.
            if b["start"].as_u64() != Some(0) {
                assert!(
                    !dealers.contains(&5),
                    "{fault}: dealer 5 in a dealer set after its blame: {b}"
                );
            }
            assert!(dealers.len() >= 3, "{fault}: {b}");
        }
        assert!(batches.len() >= 2, "{fault}: {s}");
    }
    let m = net::metrics(&dn, 1).await;
    assert!(
        net::metric_sum(&m, "torus_txs_total", "kind=\"complaint\",code=\"Ok\"") >= 1.0,
        "{fault}: {m}"
    );
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    let alice = net::login(&dn, "alice@example.com").await;
    // The honest nodes' shares of the key are consistent (any 3 of nodes 1-4).
    let shares = net::all_shares(&dn, "alice@example.com").await;
    let honest: Vec<_> = shares.into_iter().filter(|(i, _)| *i <= 4).collect();
    assert!(
        net::consistent(&honest, 3),
        "{fault}: honest shares disagree"
    );
    assert!(alice.address.starts_with("0x"));
    dn.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_row_wrong_size_matrix_and_equivocation_are_blamed() {
    for fault in ["corrupt-row:2", "bad-matrix", "equivocate:3"] {
        run(fault).await;
    }
}
