//! Every node's operator dashboard (`/dashboard`) in headless Chromium, on a network of
//! real `torus-node` processes after a login: the page renders the node, the committee,
//! consensus (height, round, app hash), the key buffer and its chart, the batches with
//! this node's phase durations and the client requests, with no script error and no
//! request refused by its Content-Security-Policy; and what it shows agrees with
//! `/bftStatus`.
//!
//! Needs Chromium and Node.js (`service/tests/browser/`); without them it skips with a
//! notice, unless `TORUS_REQUIRE_BROWSER=1` / `TORUS_REQUIRE_NODE=1`. With
//! `TORUS_SCREENSHOTS=1` it refreshes the README's screenshot, `service/docs/dashboard.png`.

#![allow(clippy::unwrap_used)]

mod browser;
mod net;

use net::nodejs;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use torus_node::devnet::Devnet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_renders_in_chromium() {
    let Some(chromium) = browser::ready("the_dashboard_renders_in_chromium") else {
        return;
    };
    let dir = net::test_dir();
    let (n, keys) = (4u32, 32u64);
    let mut dn = Devnet::start(net::opts(dir.path(), n, keys, 16))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), n);
    dn.wait_for_keys(keys, Duration::from_secs(240), |_| {})
        .await
        .unwrap();
    let login = net::login(&dn, "frank@example.com").await;
    let node = 2u32;
    let rpc = dn.layout.nodes[node as usize - 1].rpc;
    let url = format!("http://127.0.0.1:{rpc}/dashboard");
    let shot = dir.path().join("dashboard.png");
    let page = {
        let (url, shot) = (url.clone(), shot.display().to_string());
        let keys = keys.to_string();
        tokio::task::spawn_blocking(move || chromium.run("dashboard.mjs", &[&url, &keys, &shot]))
            .await
            .unwrap()
    };
    let status = net::status(&dn, node, None).await.unwrap();
    let shown = |field: &str| page[field].as_str().unwrap_or_default().replace(',', "");

    // No script error, no request the page's policy or the server refused.
    assert_eq!(page["messages"], Value::Array(vec![]), "{page:#}");
    assert_eq!(page["errorHidden"], true, "{page:#}");
    assert_eq!(page["node-index"], format!("node {node}"), "{page:#}");
    let thresholds = format!("n {n} · k {} · t ", dn.layout.k);
    assert!(
        page["thresholds"]
            .as_str()
            .unwrap()
            .starts_with(&thresholds),
        "{page:#}"
    );
    // The key buffer: all keys created, the login's key assigned.
    assert_eq!(
        shown("keys-created"),
        status["keys_created"].to_string(),
        "{page:#}"
    );
    assert!(
        shown("keys-assigned").parse::<u64>().unwrap() >= 1,
        "{page:#}"
    );
    assert!(shown("height").parse::<u64>().unwrap() > 0, "{page:#}");
    assert!(
        page["round"].as_str().unwrap().parse::<u64>().is_ok(),
        "{page:#}"
    );
    assert!(
        page["app-hash"].as_str().unwrap().starts_with("app hash "),
        "{page:#}"
    );
    // The chart: three series over the same readings.
    let series = page["series"].as_array().unwrap();
    assert_eq!(series.len(), 3, "{page:#}");
    assert!(
        series.iter().all(|s| s["points"].as_u64().unwrap() >= 2),
        "{page:#}"
    );
    // The committee, this node marked.
    let committee = page["committee"].as_array().unwrap();
    assert_eq!(committee.len(), n as usize, "{page:#}");
    let me: Vec<&Value> = committee.iter().filter(|r| r[2] == "this node").collect();
    assert_eq!(me.len(), 1, "{page:#}");
    assert_eq!(me[0][0], node.to_string(), "{page:#}");
    // The batches with this node's phase durations (it dealt in every one).
    let batches = page["batches"].as_array().unwrap();
    assert_eq!(
        batches.len(),
        status["batches"].as_array().unwrap().len(),
        "{page:#}"
    );
    assert!(
        batches
            .iter()
            .all(|b| b[4].as_str().unwrap().contains("deal ")),
        "{page:#}"
    );
    // The login's requests reached this node.
    let methods: Vec<&str> = page["rpc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    for m in ["CommitmentRequest", "ShareRequest"] {
        assert!(methods.contains(&m), "{m} missing: {page:#}");
    }
    assert!(login.address.starts_with("0x"));

    // `/metrics` carries the consensus engine's own families, of this node's engine only.
    let metrics = net::metrics(&dn, node).await;
    let me = page["node-address"].as_str().unwrap();
    let engine_height = format!("malachitebft_core_consensus_height{{moniker=\"{me}\"}}");
    assert!(metrics.contains(&engine_height), "{metrics}");
    assert_eq!(
        metrics.matches("moniker=").count(),
        metrics.matches(&format!("moniker=\"{me}\"")).count()
    );
    assert!(
        metrics.contains("malachitebft_core_consensus_time_per_block_bucket"),
        "{metrics}"
    );
    assert_eq!(metrics.matches("# EOF").count(), 1, "{metrics}");

    assert!(std::fs::metadata(&shot).unwrap().len() > 0);
    browser::keep_screenshot(
        &shot,
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png"),
    );
    dn.shutdown();
}
