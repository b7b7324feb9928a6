//! The login page's torus.js bundle, which the node embeds and serves
//! (`service/web/login/dist/torus.js`), is exactly what `npm ci && npm run build` makes
//! from `service/web/login/`'s lock file: nobody edited it by hand or forgot to rebuild it.
//!
//! Needs Node.js (it installs the packages, `npm ci`, once); without it the test skips with
//! a notice, unless `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

#[path = "nodejs/mod.rs"]
mod nodejs;

use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn the_login_page_bundle_is_built_from_its_lock_file() {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/login");
    if !nodejs::ready_dir(&web, "the_login_page_bundle_is_built_from_its_lock_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("torus.js");
    let out = Command::new("node")
        .arg("build.mjs")
        .arg(&built)
        .current_dir(&web)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node build.mjs failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let built = std::fs::read(&built).unwrap();
    let checked_in = std::fs::read(web.join("dist/torus.js")).unwrap();
    assert!(
        built == checked_in,
        "service/web/login/dist/torus.js ({} bytes) is not what `npm ci && npm run build` \
         makes there ({} bytes): rebuild it and commit the result",
        checked_in.len(),
        built.len()
    );
    assert_eq!(
        checked_in,
        torus_node::devnet::hosts::login::TORUS_JS.as_bytes(),
        "the node serves the checked-in bundle"
    );
}
