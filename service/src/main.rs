//! `torus-node`: the Torus-style threshold key node.
//!
//! The node (consensus state machine, JSON-RPC, LMDB, libp2p, BFT engine and the
//! `devnet` main job) is built on top of `torus-engine` in the node-core and
//! network issues. Until then this binary only reports what it is.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("torus-node {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(cmd) => {
            eprintln!(
                "torus-node: '{cmd}' is not available in this build yet: the node service and `devnet` \
                 are being built (see README.md, \"Status\"). The batch engine runs today via `torus-bench engine`."
            );
            ExitCode::from(2)
        }
        None => {
            eprintln!(
                "usage: torus-node <devnet|run|login> [options]  (see README.md, \"Status\")"
            );
            ExitCode::from(2)
        }
    }
}
