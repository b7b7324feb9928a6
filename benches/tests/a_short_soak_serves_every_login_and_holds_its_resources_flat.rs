//! Issue #14's soak in CI: `torus-bench soak` for two minutes on five real node
//! processes at 10 logins per second (returning users: lookup, CommitmentRequest and
//! ShareRequest at every node). Every login must go through, and after the warm-up (the
//! first fifth) no node may gain more than a few file descriptors (a leaked connection
//! per login would add hundreds), nor grow its memory or LMDB file by more than the
//! bounds below. The 10-minute run and its plot are in `benches/RESULTS.md`.

use std::path::PathBuf;
use std::time::Duration;

use torus_bench::soak::SoakBench;

/// Descriptors a node may gain after the warm-up (connections come and go).
const FD_SLACK: f64 = 10.0;
/// Relative growth of resident memory after the warm-up.
const RSS_SLACK: f64 = 0.25;
/// Relative growth of the LMDB file after the warm-up.
const LMDB_SLACK: f64 = 0.10;

fn node_binary() -> PathBuf {
    let me = std::env::current_exe().expect("the test's path");
    let dir = me
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    let bin = dir.join("torus-node");
    if !bin.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "torus-node", "--bin", "torus-node"])
            .status()
            .expect("cargo build -p torus-node");
        assert!(st.success(), "cargo build -p torus-node failed");
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_serves_every_login_and_holds_its_resources_flat() {
    let dir = tempfile::tempdir().unwrap();
    let out = torus_bench::soak::run(SoakBench {
        nodes: 5,
        run: Duration::from_secs(120),
        rate: 10.0,
        users: 50,
        new_users_per_s: 0.0,
        keys: 200,
        batch_keys: 100,
        node_binary: node_binary(),
        plot: Some(dir.path().join("soak.png")),
    })
    .await
    .expect("the soak run");
    let summary: serde_json::Map<_, _> = out
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "samples")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    eprintln!("{}", serde_json::to_string_pretty(&summary).unwrap());
    assert_eq!(out["logins_failed"], 0, "{}", out["login_errors"]);
    let ok = out["logins_ok"].as_u64().unwrap();
    assert!(ok >= 1_000, "only {ok} logins in two minutes at 10/s");
    let fd = out["after_warm_max_fd_growth"].as_f64().unwrap();
    assert!(
        fd <= FD_SLACK,
        "a node gained {fd} descriptors after the warm-up"
    );
    let rss = out["after_warm_max_relative_growth"]["rss"]
        .as_f64()
        .unwrap();
    assert!(
        rss <= RSS_SLACK,
        "a node's memory grew {:.0} % after the warm-up",
        rss * 100.0
    );
    let lmdb = out["after_warm_max_relative_growth"]["lmdb"]
        .as_f64()
        .unwrap();
    assert!(
        lmdb <= LMDB_SLACK,
        "a node's LMDB file grew {:.0} % after the warm-up",
        lmdb * 100.0
    );
    assert!(dir.path().join("soak.png").exists());
}
