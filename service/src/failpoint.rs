//! Named crash points for the crash-consistency tests (issue #14, scenario 20).
//!
//! A node started with `TORUS_FAILPOINT=NAME:N` kills itself with SIGKILL the
//! `N`-th time it reaches the point `NAME` (counted from start-up; `NAME` alone
//! means `NAME:1`). Nothing is flushed, no destructor runs: the process dies as
//! under `kill -9` at exactly that step, and the test restarts it on the same data
//! directory. Without the variable a point costs one load of an initialised
//! `OnceLock` and a branch.
//!
//! The points are the steps whose interruption a restart must survive:
//!
//! | name | where the process dies |
//! |---|---|
//! | `block.in_commit` | inside the LMDB write transaction of a decided block, after its writes, before the commit |
//! | `block.committed` | after the block and its decided record are committed and synced, before the node reports it and consensus moves to the next height |
//! | `proposal.persisted` | after this node stored a proposal it made or received, before it is streamed or voted on |
//! | `seed.persisted` | after a batch's dealing seed is stored, before the dealing is sent |
//! | `shares.in_commit` | inside the LMDB write transaction of a batch's shares, after the writes, before the commit |
//! | `shares.stored` | after a batch's shares are committed, before the public-key vote is submitted |
//! | `p2p.send` | between two sends of a batch's fan-out: some peers got this node's message, others did not |
//! | `reshare.send` | between two sends of an old member's resharing dealing: some new members got it, others did not |
//! | `tx.submitted` | after a transaction of this node entered its mempool, before anything else |
//!
//! The variable is read once; an unknown name stops the node at start-up
//! ([`check`]), so that a test with a typo fails instead of never crashing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms a failpoint.
pub const ENV: &str = "TORUS_FAILPOINT";

/// Every point the node has (see the module table).
pub const NAMES: &[&str] = &[
    "block.in_commit",
    "block.committed",
    "proposal.persisted",
    "seed.persisted",
    "shares.in_commit",
    "shares.stored",
    "p2p.send",
    "reshare.send",
    "tx.submitted",
];

/// An armed point: its name and the hit that kills the process (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    /// One of [`NAMES`].
    pub name: &'static str,
    /// The hit that kills the process (1 is the first).
    pub at: u64,
}

/// Parses `NAME[:N]`; the error says what is wrong.
pub fn parse(spec: &str) -> Result<Armed, String> {
    let (name, at) = match spec.trim().split_once(':') {
        Some((n, a)) => {
            let at: u64 = a
                .parse()
                .map_err(|_| format!("{ENV}={spec}: the hit count `{a}` is not a number"))?;
            (n, at)
        }
        None => (spec.trim(), 1),
    };
    if at == 0 {
        return Err(format!("{ENV}={spec}: hits count from 1"));
    }
    let Some(name) = NAMES.iter().copied().find(|n| *n == name) else {
        return Err(format!(
            "{ENV}={spec}: no failpoint `{name}` (known: {})",
            NAMES.join(", ")
        ));
    };
    Ok(Armed { name, at })
}

/// The variable, read and parsed once for the process.
fn armed() -> &'static Result<Option<Armed>, String> {
    static ARMED: OnceLock<Result<Option<Armed>, String>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(ENV).ok().map(|s| parse(&s)).transpose())
}

/// Checks the variable at start-up: `Err` names a malformed or unknown point.
pub fn check() -> Result<Option<Armed>, String> {
    armed().clone()
}

static HITS: AtomicU64 = AtomicU64::new(0);

/// Marks that the process reached point `name` (one of [`NAMES`]); kills the
/// process if that point is armed and this is its fatal hit.
#[inline]
pub fn hit(name: &'static str) {
    debug_assert!(NAMES.contains(&name), "unlisted failpoint {name}");
    if let Ok(Some(a)) = armed() {
        if a.name == name {
            let n = HITS.fetch_add(1, Ordering::SeqCst) + 1;
            if n == a.at {
                die(name, n);
            }
        }
    }
}

#[cold]
fn die(name: &str, n: u64) -> ! {
    // Written straight to stderr (the node log), not through the logger, whose
    // buffered writer would die with the process.
    eprintln!("failpoint {name} reached (hit {n}): the process kills itself with SIGKILL");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    // SIGKILL cannot be caught; this only runs if sending it failed.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_parses_with_or_without_a_hit_count_and_typos_are_refused() {
        assert_eq!(
            parse("block.committed"),
            Ok(Armed {
                name: "block.committed",
                at: 1
            })
        );
        assert_eq!(
            parse(" shares.stored:7 "),
            Ok(Armed {
                name: "shares.stored",
                at: 7
            })
        );
        assert!(parse("block.comitted")
            .unwrap_err()
            .contains("no failpoint"));
        assert!(parse("p2p.send:x").unwrap_err().contains("not a number"));
        assert!(parse("p2p.send:0").unwrap_err().contains("from 1"));
    }

    #[test]
    fn every_listed_point_is_reached_somewhere_in_the_node() {
        // A listed name nobody calls would make a crash test wait forever.
        let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut text = String::new();
        let mut stack = vec![std::path::PathBuf::from(src)];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "rs")
                    && !path.ends_with("failpoint.rs")
                {
                    text.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        for n in NAMES {
            assert!(
                text.contains(&format!("failpoint::hit(\"{n}\")")),
                "failpoint {n} is listed but never hit"
            );
        }
    }
}
