//! Issue #15: a fresh five-node network fills a buffer of 50,000 keys, node 1's LMDB
//! file holds at most 900 bytes per key (677 measured; at this size the 256 decided
//! blocks every node keeps and the material of batches in flight still weigh: the
//! 1,000,000-key run in `benches/RESULTS.md` measures the target of 512), and once
//! every member holds every batch the key generation material (aggregated slices,
//! summed commitments, dealing seeds: what a member missing its shares recovers
//! from) is pruned to under a byte per key.

#![allow(clippy::unwrap_used)]

mod net;

use std::time::Duration;

use torus_node::devnet::Devnet;
use torus_node::metrics::labelled_samples;

const KEYS: u64 = 50_000;

/// `torus_store_bytes{db="DB"}` of a metrics text.
fn store_bytes(metrics: &str, db: &str) -> Option<u64> {
    labelled_samples(metrics, "torus_store_bytes", "db")
        .into_iter()
        .find(|(name, _)| name == db)
        .map(|(_, bytes)| bytes as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffer_of_50000_keys_takes_at_most_900_bytes_per_key_and_prunes_its_recovery_material() {
    let dir = net::test_dir();
    let mut opts = net::opts(dir.path(), 5, KEYS, 2000);
    opts.log_filter = torus_node::devnet::DEFAULT_LOG_FILTER.to_string();
    let mut dn = Devnet::start(opts).await.unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    dn.wait_for_keys(KEYS, Duration::from_secs(900), |_| {})
        .await
        .unwrap();
    let metrics = net::metrics(&dn, 1).await;
    let file = std::fs::metadata(dn.node_dir(1).join("lmdb").join("data.mdb"))
        .unwrap()
        .len();
    let keygen = store_bytes(&metrics, "keygen").expect("no keygen size in the metrics");
    let shares = store_bytes(&metrics, "shares").expect("no shares size in the metrics");
    eprintln!(
        "node 1 when full: data.mdb {file} bytes ({} per key), by database per key: {:?}",
        file / KEYS,
        labelled_samples(&metrics, "torus_store_bytes", "db")
            .into_iter()
            .map(|(db, b)| (db, b as u64 / KEYS))
            .collect::<Vec<_>>()
    );
    // Every key has its share record on node 1.
    assert!(shares >= KEYS * 100, "shares database of {shares} bytes");
    assert!(
        keygen <= KEYS * 800,
        "key generation material of {} bytes per key",
        keygen / KEYS
    );
    assert!(
        file <= KEYS * 900,
        "node 1's LMDB file holds {} bytes per key",
        file / KEYS
    );
    // At rest: every member holds every batch, so within a few announcements
    // (every 2 s) the recovery material of every batch is pruned.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let at_rest = loop {
        let m = net::metrics(&dn, 1).await;
        let keygen = store_bytes(&m, "keygen").unwrap_or(u64::MAX);
        if keygen <= KEYS || std::time::Instant::now() > deadline {
            break keygen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("node 1 at rest: keygen {at_rest} bytes");
    assert!(
        at_rest <= KEYS,
        "the recovery material of batches every member holds was not pruned: {at_rest} bytes"
    );
    dn.shutdown();
}
