//! A real browser for the tests of the pages the node serves (the devnet's login page,
//! dashboards): the system's Chromium, driven by `playwright-core` from npm (this folder's
//! `package.json`; it never downloads a browser) through one driver script per page in
//! this folder. A driver prints one JSON line on stdout (and exits 1 on a failure).
//!
//! Chromium is `$TORUS_CHROMIUM`, else `chromium` or `chromium-browser` on PATH (Debian's
//! `chromium` package). Without it, or without Node.js, the tests skip with a one-line
//! notice on stderr, unless `TORUS_REQUIRE_BROWSER=1` (CI sets it) makes a missing
//! Chromium a failure (and `TORUS_REQUIRE_NODE=1` a missing Node.js).
//!
//! It uses the test crate's `nodejs` module (`tests/nodejs/mod.rs`), which the test
//! declares at its root, or imports from `net` (a file loaded as a module twice is a lint
//! error):
//!
//! ```ignore
//! #[path = "nodejs/mod.rs"]
//! mod nodejs; // or: mod net; use net::nodejs;
//! mod browser;
//!
//! let Some(b) = browser::ready("my_test") else { return };
//! let out = b.run("login.mjs", &[url, "alice@example.com"]);
//! ```

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::nodejs;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

/// Set to `1` to make a missing Chromium a failure instead of a skip.
pub const REQUIRE_BROWSER: &str = "TORUS_REQUIRE_BROWSER";
/// The Chromium binary to use (else `chromium` or `chromium-browser` on PATH).
pub const CHROMIUM: &str = "TORUS_CHROMIUM";
/// Names of Chromium on PATH, in order.
pub const NAMES: &[&str] = &["chromium", "chromium-browser"];

/// Chromium and the driver scripts, ready to run.
#[derive(Clone, Debug)]
pub struct Browser {
    /// The Chromium binary.
    pub chromium: PathBuf,
}

/// Whether a missing Chromium must fail the test ([`REQUIRE_BROWSER`]` = 1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_BROWSER).as_deref() == Ok("1")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Chromium's path, or why there is none.
pub fn find_chromium() -> Result<PathBuf, String> {
    let found = match std::env::var_os(CHROMIUM) {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Err(format!("{CHROMIUM}={} is not a file", p.display()));
            }
            p
        }
        None => NAMES
            .iter()
            .find_map(|n| on_path(n))
            .ok_or_else(|| format!("no {} on PATH and no {CHROMIUM}", NAMES.join(" or ")))?,
    };
    match Command::new(&found)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(found),
        Ok(out) => Err(format!(
            "`{} --version` failed ({})",
            found.display(),
            out.status
        )),
        Err(e) => Err(format!("{}: {e}", found.display())),
    }
}

/// The folder of the driver scripts (this one).
pub fn dir() -> PathBuf {
    nodejs::package_dir("browser")
}

/// Finds Chromium and Node.js and installs the drivers' npm packages (`npm ci`, once),
/// for the test `what`. `None` when the test must skip (the notice is printed); panics
/// when a missing piece is required or the install fails.
pub fn ready(what: &str) -> Option<Browser> {
    let chromium = match find_chromium() {
        Ok(c) => c,
        Err(why) => {
            assert!(
                !required(),
                "{what} needs Chromium: {why} ({REQUIRE_BROWSER}=1)"
            );
            // Straight to stderr, as in `nodejs::ready`: the harness would hide `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {what}: {why}; install Chromium (Debian: apt-get install chromium) \
                 or set {CHROMIUM}, or set {REQUIRE_BROWSER}=1 to make this a failure"
            );
            return None;
        }
    };
    if !nodejs::ready("browser", what) {
        return None;
    }
    Some(Browser { chromium })
}

impl Browser {
    /// Runs `node SCRIPT ARGS...` in this folder with [`CHROMIUM`] set, and returns the
    /// JSON line it printed last. Panics, with the driver's output, when it fails or
    /// prints no JSON. Blocking: call it from `spawn_blocking` in an async test.
    pub fn run(&self, script: &str, args: &[&str]) -> Value {
        let t0 = Instant::now();
        let out = Command::new("node")
            .arg(script)
            .args(args)
            .env(CHROMIUM, &self.chromium)
            .current_dir(dir())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("node {script}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let json = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        match json {
            Some(v) if out.status.success() => {
                let _ = writeln!(
                    std::io::stderr(),
                    "browser: {script} took {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                v
            }
            _ => panic!(
                "node {script} {args:?} failed ({}):\n{stdout}\n{stderr}",
                out.status
            ),
        }
    }
}

/// Copies `file` to `dest` (creating its folder) when `TORUS_SCREENSHOTS=1`: how the
/// screenshots in the docs are refreshed.
pub fn keep_screenshot(file: &Path, dest: &Path) {
    if std::env::var("TORUS_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(file, dest)
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", file.display(), dest.display()));
    let _ = writeln!(
        std::io::stderr(),
        "screenshot written to {}",
        dest.display()
    );
}
