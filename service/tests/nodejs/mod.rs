//! Node.js for the tests that run JavaScript (the real torus.js client, solc-js, ganache):
//! finds `node` and `npm`, and installs a test folder's npm packages from its lock file
//! (`npm ci`) once, also when several test binaries or threads start at the same time.
//!
//! Without Node.js 18+ and npm the tests skip with a one-line notice on stderr, unless
//! `TORUS_REQUIRE_NODE=1` (CI sets it) makes that a failure. A failing `npm ci` (no
//! registry, a broken lock file) always fails the test: Node is there, so the test must run.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

/// Set to `1` to make a missing Node.js a failure instead of a skip.
pub const REQUIRE_NODE: &str = "TORUS_REQUIRE_NODE";

/// Oldest Node.js major version the tests support (torus.js 8, ganache 7, solc-js).
pub const MIN_NODE_MAJOR: u32 = 18;

/// Written into `node_modules` after a successful `npm ci`: the digest of the lock file
/// it installed. `npm ci` deletes `node_modules` first, so a half-finished install has none.
const STAMP: &str = "node_modules/.torus-npm-ci";

/// Held (exclusively) while one process checks the stamp and installs.
const LOCK: &str = ".npm-ci.lock";

/// The folder of a test's npm packages (with `package.json` and `package-lock.json`).
pub fn package_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Why Node.js cannot run the tests here, or `None` when `node` (18+) and `npm` are found.
pub fn missing() -> Option<String> {
    let version = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => return Some(format!("`node --version` failed ({})", out.status)),
        Err(e) => return Some(format!("no `node` on PATH ({e})")),
    };
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= MIN_NODE_MAJOR => {}
        _ => return Some(format!("Node.js {version} is older than {MIN_NODE_MAJOR}")),
    }
    match Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("`npm --version` failed ({s})")),
        Err(e) => Some(format!("no `npm` on PATH ({e})")),
    }
}

/// Whether Node.js must be present ([`REQUIRE_NODE`]` = 1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_NODE).as_deref() == Ok("1")
}

/// Makes sure `node` runs and the npm packages of `tests/<package>` are installed, for the
/// test `what`. Returns `false` when the test must skip (no Node.js; the notice is printed);
/// panics when Node.js is missing but required, or when the install fails.
pub fn ready(package: &str, what: &str) -> bool {
    ready_dir(&package_dir(package), what)
}

/// [`ready`] for the npm package in `dir` (for example one under `examples/`).
pub fn ready_dir(dir: &Path, what: &str) -> bool {
    if let Some(why) = missing() {
        assert!(
            !required(),
            "{what} needs Node.js {MIN_NODE_MAJOR}+ with npm: {why} ({REQUIRE_NODE}=1)"
        );
        // Straight to stderr: `eprintln!` is captured by the test harness and would not be
        // shown for a passing (skipped) test.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {what}: {why}; install Node.js {MIN_NODE_MAJOR}+ with npm, or set \
             {REQUIRE_NODE}=1 to make this a failure"
        );
        return false;
    }
    install(dir);
    true
}

/// `npm ci` in `dir` unless the stamp says that this lock file is installed. An exclusive
/// file lock serializes the check and the install across threads and processes, so the
/// second test to arrive waits and then finds the stamp.
pub fn install(dir: &Path) {
    let lock_file = std::fs::read(dir.join("package-lock.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("package-lock.json").display()));
    let digest = hex::encode(Sha256::digest(&lock_file));
    let stamp = dir.join(STAMP);
    let installed = || std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest);
    if installed() {
        return;
    }
    let lock = File::create(dir.join(LOCK))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(LOCK).display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", dir.join(LOCK).display()));
    if installed() {
        return;
    }
    let _ = writeln!(
        std::io::stderr(),
        "installing the npm packages of {} (npm ci, once)",
        dir.display()
    );
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        // The browser tests drive the system's Chromium: playwright must never fetch one.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("npm runs (it answered --version)");
    assert!(
        out.status.success(),
        "npm ci failed in {} ({}):\n{}{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&stamp, format!("{digest}\n"))
        .unwrap_or_else(|e| panic!("{}: {e}", stamp.display()));
    // The lock is released when `lock` is dropped here.
}
