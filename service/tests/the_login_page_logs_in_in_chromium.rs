//! The devnet's login page (`login_page` in `devnet.json`), in headless Chromium, logs a
//! person in against a devnet started with the `torus-node devnet` command: the page gets
//! an id token from the devnet's issuer, the real torus.js (the checked-in browser bundle)
//! runs the whole flow, and the page shows the address and key index that `torus-node
//! login` gives for the same e-mail, an answer from every node, and a time for each step.
//!
//! Needs Chromium and Node.js (`service/tests/browser/`); without them it skips with a
//! notice, unless `TORUS_REQUIRE_BROWSER=1` / `TORUS_REQUIRE_NODE=1`. With
//! `TORUS_SCREENSHOTS=1` it refreshes the README's screenshot, `service/docs/login-page.png`.

#![allow(clippy::unwrap_used)]

mod browser;
mod net;

use net::nodejs;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_logs_in_in_chromium() {
    let Some(chromium) = browser::ready("the_login_page_logs_in_in_chromium") else {
        return;
    };
    let dir = net::test_dir();
    let n = 5;
    let devnet = net::DevnetCommand::start(dir.path(), n, 16).await;
    let _logs = net::LogsOnPanic(devnet.data_dir(), n);
    let manifest = devnet.manifest.clone();
    let devnet_log = || devnet.log();
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let url = m["login_page"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/login"),
        "{m}"
    );
    // The devnet prints the page's URL.
    let t1 = Instant::now();
    while !devnet_log().contains(&format!("login page (torus.js in the browser): {url}")) {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "the URL is not printed:\n{}",
            devnet_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let email = "erin@example.com";
    let shot = dir.path().join("login-page.png");
    let page = {
        let (url, shot) = (url.clone(), shot.display().to_string());
        tokio::task::spawn_blocking(move || chromium.run("login.mjs", &[&url, email, &shot]))
            .await
            .unwrap()
    };
    assert_eq!(page["status"], "logged in", "{page:#}");
    // No script error, no failed or refused request.
    assert_eq!(page["messages"], Value::Array(vec![]), "{page:#}");
    let address = page["address"].as_str().unwrap();
    assert!(address.starts_with("0x") && address.len() == 42, "{page:#}");

    // Every node answered the share request, and every step has a time.
    assert_eq!(page["n"], n, "{page:#}");
    assert_eq!(page["nodesAnswered"], n, "{page:#}");
    let requests = page["requests"].as_array().unwrap();
    let shares: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r["method"] == "ShareRequest" && r["status"] == "200")
        .map(|r| r["to"].as_str().unwrap())
        .collect();
    let nodes: BTreeSet<String> = (1..=n).map(|i| format!("node {i}")).collect();
    assert_eq!(
        shares,
        nodes.iter().map(String::as_str).collect(),
        "{page:#}"
    );
    for r in requests {
        assert!(r["ms"].as_str().unwrap().parse::<f64>().is_ok(), "{r}");
    }
    let steps: Vec<&str> = page["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["result"], "ok", "{s}");
            assert!(s["ms"].as_str().unwrap().parse::<f64>().is_ok(), "{s}");
            s["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        steps,
        [
            "devnet.json",
            "id token",
            "getPublicAddress",
            "retrieveShares"
        ]
    );
    let _ = writeln_stderr(&format!(
        "the login page logged {email} in in {} ms: {address}",
        page["ms"]
    ));

    // `torus-node login` gives the same address and key index for the same e-mail.
    let out = net::devnet_login(&manifest, email).await;
    assert_eq!(net::printed(&out, "address"), address, "{page:#}");
    assert_eq!(
        net::printed(&out, "key index"),
        page["keyIndex"],
        "{page:#}"
    );

    assert!(std::fs::metadata(&shot).unwrap().len() > 0);
    browser::keep_screenshot(
        &shot,
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/login-page.png"),
    );
    drop(devnet);
}

fn writeln_stderr(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{text}")
}
