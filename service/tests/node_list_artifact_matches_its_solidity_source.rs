//! The generated-code check for the NodeList contract: `service/contracts/NodeList.json`
//! (ABI and bytecode, embedded by the crate and deployed by `chain::deploy`) must be what
//! the pinned solc-js makes of `service/contracts/NodeList.sol` today. After editing the
//! contract, regenerate it with `node compile.js` in `service/tests/eth`.
//!
//! Needs Node.js: the pinned solc-js of `service/tests/eth` is installed by the test
//! (`npm ci`, once); without Node.js it skips with a notice, unless `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

mod nodejs;

use std::path::PathBuf;
use std::process::Command;

fn eth_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/eth")
}

#[test]
fn the_committed_artifact_is_what_solc_compiles_from_the_source() {
    if !nodejs::ready(
        "eth",
        "the_committed_artifact_is_what_solc_compiles_from_the_source",
    ) {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let fresh = out.path().join("NodeList.json");
    let run = Command::new("node")
        .arg("compile.js")
        .arg("--out")
        .arg(&fresh)
        .current_dir(eth_dir())
        .output()
        .expect("node is required for the NodeList artifact check");
    assert!(
        run.status.success(),
        "compile.js failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let fresh = std::fs::read_to_string(&fresh).unwrap();
    let committed = torus_node::chain::NODE_LIST_ARTIFACT;
    if fresh != committed {
        let at = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map(|i| format!("first difference at line {}", i + 1))
            .unwrap_or_else(|| "one is a prefix of the other".into());
        panic!(
            "service/contracts/NodeList.json is out of date with NodeList.sol ({at}); \
             run `node compile.js` in service/tests/eth and commit the result"
        );
    }
    // The artifact carries what deploy needs.
    let v: serde_json::Value = serde_json::from_str(committed).unwrap();
    assert!(v["bytecode"].as_str().unwrap().len() > 2);
    assert!(v["abi"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "listNode"));
}
