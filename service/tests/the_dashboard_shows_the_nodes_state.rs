//! `/dashboard` on real sockets: the page and its assets come with a policy that allows
//! nothing from elsewhere, and `/dashboard/data` shows the node's state as `/bftStatus`
//! and `/metrics` give it (the committee, the key buffer, batches, client requests).
//! The page itself runs in Chromium in `the_dashboard_renders_in_chromium.rs`.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use torus_node::testkit::{Cluster, DEV_VERIFIER};

/// The JSON answer to `GET url`.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_committee_the_key_buffer_and_client_requests() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 4, 2, 1).await.unwrap();
    c.generate_keys(4, 7).await.unwrap();
    let client = c.client().unwrap();
    let ep = client.endpoints()[1].clone();
    for id in ["a@example.com", "b@example.com", "c@example.com"] {
        let params = json!({"verifier": DEV_VERIFIER, "verifier_id": id});
        let (status, _) = client
            .call_raw(&ep, "VerifierLookupRequest", params)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
    let base = ep.url.trim_end_matches("/jrpc").to_string();
    let http = reqwest::Client::new();

    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text().await.unwrap();
    for asset in ["/dashboard/page.js", "/dashboard/page.css"] {
        assert!(html.contains(asset), "{html}");
        let r = http.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    // Nothing on the page is loaded from another origin.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let data: Value = get_json(&http, format!("{base}/dashboard/data")).await;
    let status: Value = get_json(&http, format!("{base}/bftStatus")).await;
    assert_eq!(data["node"]["index"], json!(2));
    assert_eq!(data["node"]["commit"], json!(torus_node::metrics::COMMIT));
    let committee = data["epoch"]["committee"].as_array().unwrap();
    assert_eq!(committee.len(), 4);
    let me: Vec<&Value> = committee
        .iter()
        .filter(|n| n["me"] == json!(true))
        .collect();
    assert_eq!(me.len(), 1);
    assert_eq!(me[0]["index"], json!(2));
    assert!(committee
        .iter()
        .all(|n| n["address"].as_str().is_some_and(|a| a.starts_with("0x"))));
    assert_eq!(
        (data["epoch"]["n"].clone(), data["epoch"]["k"].clone()),
        (json!(4), json!(2))
    );
    // The key buffer as /bftStatus gives it, and as the chart's newest point.
    assert_eq!(data["keys"]["created"], status["keys_created"]);
    assert_eq!(data["keys"]["free"], status["keys_free"]);
    assert!(data["keys"]["created"].as_u64().unwrap() >= 4, "{data}");
    let newest = data["buffer"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(newest["created"], status["keys_created"], "{data}");
    assert_eq!(newest["free"], status["keys_free"], "{data}");
    assert!(data["consensus"]["height"].as_u64().unwrap() >= status["height"].as_u64().unwrap());
    let batches = data["batches"].as_array().unwrap();
    assert_eq!(batches.len(), status["batches"].as_array().unwrap().len());
    assert!(batches.iter().all(|b| b["phases"].is_array()), "{data}");
    // The three lookups this node answered.
    let lookups = data["rpc"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == json!("VerifierLookupRequest"))
        .unwrap_or_else(|| panic!("no VerifierLookupRequest in {data}"));
    assert_eq!(lookups["total"], json!(3), "{data}");
    assert!(lookups["p99_ms"].as_f64().unwrap() > 0.0, "{data}");
    c.shutdown().await;
}
