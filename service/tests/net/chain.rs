//! A local Ethereum chain for tests: ganache from `service/tests/eth` (installed by
//! [`tooling_present`]), killed when dropped.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use torus_node::chain::{Address, ChainError, NodeListClient};
use torus_node::crypto::NodeKey;

pub const CHAIN_ID: u64 = 1337;

pub fn eth_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/eth")
}

/// Whether the chain tooling can run: Node.js is found and the pinned npm packages of
/// `service/tests/eth` are installed (`npm ci`, once). Without Node.js the test skips with a
/// notice (returns `false`), unless `TORUS_REQUIRE_NODE=1`.
pub fn tooling_present(what: &str) -> bool {
    super::nodejs::ready("eth", what)
}

/// A ganache process on a free loopback port, killed when dropped (also on panic).
pub struct LocalChain {
    child: Child,
    pub url: String,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Drop for LocalChain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- ganache log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the chain with each key's account funded with 100 ETH.
pub async fn start_chain(funded: &[&NodeKey]) -> LocalChain {
    let port = free_port();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("ganache.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(eth_dir().join("node_modules/ganache/dist/node/cli.js"))
        .args(["--server.host", "127.0.0.1", "--server.port"])
        .arg(port.to_string())
        .args(["--chain.hardfork", "shanghai", "--chain.chainId"])
        .arg(CHAIN_ID.to_string())
        .args(["--logging.verbose", "--miner.instamine", "eager"]);
    for key in funded {
        cmd.arg("--wallet.accounts").arg(format!(
            "0x{},100000000000000000000",
            hex::encode(*key.to_bytes())
        ));
    }
    let child = cmd
        .current_dir(eth_dir())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("node is required for the NodeList chain test");
    let mut chain = LocalChain {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log: log_path.clone(),
        _log_dir: log_dir,
    };
    // The chain is up once it answers eth_chainId (any contract address will do for that).
    let probe = NodeListClient::new(&chain.url, &format!("{:#x}", Address::ZERO)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = chain.child.try_wait().unwrap() {
            panic!(
                "ganache exited ({status}): {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        match probe.chain_id().await {
            Ok(id) => {
                assert_eq!(id, CHAIN_ID);
                return chain;
            }
            Err(ChainError::Unreachable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!(
                "ganache did not come up: {e}\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ),
        }
    }
}
