//! Secret hygiene in logs (scenario 39): a full key generation plus a login at
//! debug level leaves no id token, share or node key in the log output. Also checks
//! the browser CORS preflight on `/jrpc`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use torus_node::testkit::{Cluster, DEV_VERIFIER};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_tokens_shares_or_keys() {
    let buf = Buf::default();
    let w = buf.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || w.clone())
        .json()
        .init();
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 5, 3, 1).await.unwrap();
    c.generate_keys(3, 9).await.unwrap();
    let client = c.client().unwrap();
    let email = "ivan@example.com";
    client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let token = c.mint(email);
    let login = client
        .retrieve(DEV_VERIFIER, json!({"verifier_id": email}), &token)
        .await
        .unwrap();
    // A failing request too (its error path logs).
    let _ = client
        .retrieve(
            DEV_VERIFIER,
            json!({"verifier_id": "someone@else"}),
            &c.mint(email),
        )
        .await;

    // CORS preflight as a browser sends it.
    let http = reqwest::Client::new();
    let r = http
        .request(reqwest::Method::OPTIONS, &c.endpoints()[0].url)
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    let mut secrets: Vec<String> = vec![token.clone(), hex::encode(*login.private_key)];
    for i in 1..=5 {
        let node = c.node(i).unwrap();
        secrets.push(hex::encode(*node.key().to_bytes()));
        for k in 0..3 {
            let (s, sp, _) = node.store().share(k).unwrap().unwrap();
            secrets.push(hex::encode(*s));
            secrets.push(hex::encode(*sp));
        }
        assert!(!format!("{node:?}").contains(&hex::encode(*node.key().to_bytes())));
    }
    c.shutdown().await;
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.len() > 1000,
        "expected debug logs, got {} bytes",
        logs.len()
    );
    for s in &secrets {
        // Check the secret and any 16-character window of it.
        assert!(!logs.contains(s.as_str()), "secret found in logs");
        for w in (0..s.len().saturating_sub(16)).step_by(16) {
            assert!(
                !logs.contains(&s[w..w + 16]),
                "secret fragment found in logs"
            );
        }
    }
    assert!(!logs.contains(&format!("{:?}", login.private_key.as_slice())));
}
