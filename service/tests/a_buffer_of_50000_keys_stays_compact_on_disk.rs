//! Issue #15: a fresh five-node network fills a buffer of 50,000 keys, and node 1's
//! LMDB file holds at most 1,500 bytes per key (1,274 measured at 1,000,000 keys,
//! `benches/RESULTS.md`; 3,939 when every decided dealer's commitment matrices were
//! kept), of which the key generation material at most 800 (the aggregated slice and
//! one summed commitment matrix per key; 3,273 before). The target of the issue is 512
//! bytes per key: this bound guards what is reached, the rest is planned there.

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
async fn a_buffer_of_50000_keys_takes_at_most_1500_bytes_per_key_on_a_node() {
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
        "node 1: data.mdb {file} bytes ({} per key), keygen {} per key, shares {} per key",
        file / KEYS,
        keygen / KEYS,
        shares / KEYS
    );
    // Every key has its share record on node 1.
    assert!(shares >= KEYS * 100, "shares database of {shares} bytes");
    assert!(
        keygen <= KEYS * 800,
        "key generation material of {} bytes per key",
        keygen / KEYS
    );
    assert!(
        file <= KEYS * 1500,
        "node 1's LMDB file holds {} bytes per key",
        file / KEYS
    );
    dn.shutdown();
}
