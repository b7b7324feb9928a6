//! The example app (`examples/torusjs-app`: the real `@toruslabs/torus.js` 8 on Node.js,
//! configured only from `devnet.json`) logs a user in against a devnet started with the
//! `torus-node devnet` command, through the devnet's own torus.js hosts (metadata,
//! KeyAssign signer, allow check) with KeyAssign authentication on, and gets the address
//! that `torus-node login` gives for the same user.
//!
//! Needs Node.js: the test installs the example's packages (`npm ci`, once); without
//! Node.js it skips with a notice, unless `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

mod net;

use std::path::{Path, PathBuf};
use std::process::Command;

use net::nodejs;
use serde_json::{json, Value};
use torus_node::client::{Client, Endpoint};

/// The `address` line of the example's or `torus-node login`'s output.
fn address(text: &str) -> String {
    net::printed(text, "address")
}

/// Runs `node index.js DEVNET_JSON EMAIL` in the example; its stdout.
fn run_example(app: &Path, manifest: &Path, email: &str) -> String {
    let out = Command::new("node")
        .arg("index.js")
        .arg(manifest)
        .arg(email)
        .current_dir(app)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the example app failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_logs_in_against_the_devnet() {
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/torusjs-app")
        .canonicalize()
        .unwrap();
    if !nodejs::ready_dir(&app, "the_example_app_logs_in_against_the_devnet") {
        return;
    }
    let dir = net::test_dir();
    let devnet = net::DevnetCommand::start(dir.path(), 5, 16).await;
    let _logs = net::LogsOnPanic(devnet.data_dir(), 5);
    let manifest = devnet.manifest.clone();
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let hosts = &m["torus_hosts"];
    for h in ["metadata", "signer", "allow"] {
        assert!(
            hosts[h].as_str().unwrap().starts_with("http://127.0.0.1:"),
            "{m}"
        );
    }

    // KeyAssign authentication is on: an unsigned KeyAssign is refused by every node.
    let endpoints: Vec<Endpoint> = m["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Endpoint {
            index: n["index"].as_u64().unwrap() as u32,
            url: n["endpoint"].as_str().unwrap().to_string(),
        })
        .collect();
    let client = Client::new(endpoints.clone()).unwrap();
    for ep in &endpoints {
        let (status, text) = client
            .call_raw(
                ep,
                "KeyAssign",
                json!({"verifier": "devnet", "verifier_id": "mallory@example.com"}),
            )
            .await
            .unwrap();
        assert_eq!(status, 401, "node {}: {text}", ep.index);
    }

    // A new user: torus.js looks up, gets KeyAssign signed by the devnet's signer,
    // retrieves the key; then `torus-node login` for the same user.
    let email = "carol@example.com";
    let from_app = address(&run_example(&app, &manifest, email));
    let from_login = address(&net::devnet_login(&manifest, email).await);
    assert!(
        from_app.starts_with("0x") && from_app.len() == 42,
        "{from_app}"
    );
    assert_eq!(from_app, from_login);

    // The other way round: a user whom `torus-node login` created (its KeyAssign signed
    // with dev-signer.key) gets the same address in the app.
    let dave = "dave@example.com";
    let dave_login = address(&net::devnet_login(&manifest, dave).await);
    assert_eq!(address(&run_example(&app, &manifest, dave)), dave_login);
    assert_ne!(dave_login, from_app);
    drop(devnet);
}
