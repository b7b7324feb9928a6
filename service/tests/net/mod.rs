//! Shared harness of the multi-process network tests: a devnet of real
//! `torus-node` processes on loopback, status queries, history comparison,
//! logins, and TCP relays with a kill switch (the partition tests' transport
//! filter).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod chain;
#[path = "../nodejs/mod.rs"]
pub mod nodejs;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use torus_node::client::{Client, Endpoint, Login};
use torus_node::devnet::netns::Links;
use torus_node::devnet::{Devnet, DevnetOptions};

/// A temporary directory for a test network; kept (and its path printed) when
/// `TORUS_TEST_KEEP=1`, for reading the node logs afterwards.
pub fn test_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    if std::env::var("TORUS_TEST_KEEP").as_deref() == Ok("1") {
        let p = d.keep();
        eprintln!("test network kept in {}", p.display());
        return tempfile::TempDir::new_in(p).unwrap();
    }
    d
}

/// The node binary, linked into `dir` so that a rebuild of the shared target
/// directory while the test runs (another build replaces the file) cannot swap
/// the binary of a node that restarts mid-test.
/// `TORUS_TEST_NODE_BIN` overrides the binary (a copy taken right after the build,
/// when other builds share the target directory).
pub fn node_binary(dir: &Path) -> std::path::PathBuf {
    let over = std::env::var("TORUS_TEST_NODE_BIN").ok();
    let src = match &over {
        Some(p) => Path::new(p),
        None => Path::new(env!("CARGO_BIN_EXE_torus-node")),
    };
    let dst = dir.join("torus-node");
    if std::fs::hard_link(src, &dst).is_err() {
        std::fs::copy(src, &dst).unwrap();
    }
    dst
}

/// A `torus-node devnet` command running as its own process (the README's main command),
/// with its data in `DIR/devnet` and its output in `DIR/devnet.log`; stopped with SIGTERM
/// (which stops its nodes) when dropped, killed if it does not exit within 30 s.
pub struct DevnetCommand {
    child: std::process::Child,
    /// Its `devnet.json`.
    pub manifest: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl DevnetCommand {
    /// Starts `torus-node devnet --nodes NODES --keys KEYS --batch-keys KEYS` in `dir` and
    /// waits (at most 300 s) until it has written `devnet.json` (written beside it and
    /// renamed, so it appears whole).
    pub async fn start(dir: &Path, nodes: u32, keys: u64) -> DevnetCommand {
        let data = dir.join("devnet");
        let log = dir.join("devnet.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(node_binary(dir))
            .arg("devnet")
            .args(["--nodes", &nodes.to_string()])
            .args(["--keys", &keys.to_string()])
            .args(["--batch-keys", &keys.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut d = DevnetCommand {
            child,
            manifest: data.join("devnet.json"),
            log,
        };
        let t0 = Instant::now();
        while !d.manifest.exists() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("torus-node devnet exited ({status}):\n{}", d.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "no devnet.json after 300 s:\n{}",
                d.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        d
    }

    /// Its data directory (the nodes' folders and logs).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.manifest.parent().unwrap().to_path_buf()
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Ctrl-C: sends SIGINT and waits (at most 60 s) for it to exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let t0 = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the devnet did not stop on Ctrl-C:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its `devnet.json`.
    pub fn manifest_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.manifest).unwrap()).unwrap()
    }
}

impl Drop for DevnetCommand {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `torus-node login --cluster MANIFEST --verifier devnet --user EMAIL` (the README's
/// login command, the whole client flow); its stdout. Panics when it fails.
pub async fn devnet_login(manifest: &Path, email: &str) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_torus-node"))
        .args(["login", "--cluster"])
        .arg(manifest)
        .args(["--verifier", "devnet", "--user", email])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "torus-node login failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the printed line starting with `name` (`address`, `key index`, ...), as
/// `torus-node login` and the example app print them.
pub fn printed(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} line in {text:?}"))
        .trim()
        .to_string()
}

/// Options for `nodes` nodes making `keys` keys in batches of `batch`.
pub fn opts(dir: &Path, nodes: u32, keys: u64, batch: u32) -> DevnetOptions {
    let mut o = DevnetOptions::new(nodes, keys, dir, node_binary(dir));
    o.batch_keys = Some(batch);
    o.log_filter = format!(
        "{},torus_node=debug",
        torus_node::devnet::DEFAULT_LOG_FILTER
    );
    o
}

/// A devnet of `nodes` started in `dir` whose buffer of `keys` keys (batches of
/// `batch`) is full, with the node logs printed if the test panics.
pub async fn full_devnet(dir: &Path, nodes: u32, keys: u64, batch: u32) -> (Devnet, LogsOnPanic) {
    let mut dn = Devnet::start(opts(dir, nodes, keys, batch)).await.unwrap();
    let logs = LogsOnPanic(dn.opts.data_dir.clone(), nodes);
    dn.wait_for_keys(keys, Duration::from_secs(240), |_| {})
        .await
        .unwrap();
    (dn, logs)
}

/// Waits until node 1 sees the first key generation batch open.
pub async fn wait_first_batch(dn: &Devnet) {
    wait_until(dn, 1, 120, "the first batch to open", |s| {
        !s["open_batch"].is_null() || s["keys_opened"].as_u64().unwrap_or(0) > 0
    })
    .await;
}

/// After faults: every node of `1..=nodes` holds a share of each of the `keys`
/// keys and blames nobody, all committed the same app hash at every height, and
/// two users log in twice to one address with shares on one polynomial (k = 3).
pub async fn assert_nothing_lost(dn: &Devnet, nodes: u32, keys: u64) {
    for i in 1..=nodes {
        let s = wait_until(dn, i, 300, "every share of every key", |s| {
            s["keys_created"].as_u64() >= Some(keys) && s["shares"].as_u64() >= Some(keys)
        })
        .await;
        assert_eq!(s["blamed"], serde_json::json!([]), "node {i}: {s}");
    }
    let all: Vec<u32> = (1..=nodes).collect();
    assert_same_history(dn, &all).await;
    for email in ["alice@example.com", "bob@example.com"] {
        let first = login(dn, email).await;
        let shares = all_shares(dn, email).await;
        assert_eq!(shares.len(), nodes as usize, "{email}");
        assert!(
            consistent(&shares, 3),
            "{email}: a node's share is not on the key's polynomial"
        );
        let again = login(dn, email).await;
        assert_eq!(again.address, first.address, "{email}");
    }
}

/// Runs `test` on a runtime of two threads built after `entered` (entering a
/// namespace: every runtime thread and node process then lives in it). If it
/// could not be entered, skips `what` with a notice, or fails when
/// `TORUS_REQUIRE_NETNS=1` (CI sets it).
pub fn run_in_namespace<F: std::future::Future<Output = ()>>(
    entered: Result<(), String>,
    what: &str,
    test: impl FnOnce() -> F,
) {
    if let Err(e) = entered {
        assert!(
            std::env::var("TORUS_REQUIRE_NETNS").as_deref() != Ok("1"),
            "TORUS_REQUIRE_NETNS=1 but {e}"
        );
        eprintln!("SKIPPED {what}: {e} (set TORUS_REQUIRE_NETNS=1 to fail instead)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(test());
}

/// Starts node `i` with the extra environment `env` and waits, at most `secs`,
/// until its process ends by itself: its exit status and what it logged since the
/// start. With `silent`, the node's RPC port must never answer meanwhile.
pub async fn start_until_exit(
    dn: &mut Devnet,
    i: u32,
    env: &[(&str, &str)],
    secs: u64,
    silent: bool,
) -> (std::process::ExitStatus, String) {
    let log_before = std::fs::metadata(dn.log_path(i))
        .map(|m| m.len() as usize)
        .unwrap_or(0);
    dn.start_node_with_env(i, env).unwrap();
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = dn.exited(i) {
            break s;
        }
        if silent {
            assert!(
                status(dn, i, None).await.is_none(),
                "node {i} answers its RPC port"
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "node {i} (extra environment {env:?}) still runs after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = std::fs::read(dn.log_path(i)).unwrap();
    let log = String::from_utf8_lossy(&log[log_before.min(log.len())..]).to_string();
    (status, log)
}

/// Node `i`'s height, 0 while it does not answer.
pub async fn height(dn: &Devnet, i: u32) -> u64 {
    status(dn, i, None)
        .await
        .and_then(|s| s["height"].as_u64())
        .unwrap_or(0)
}

/// How many keys node `i` has created, 0 while it does not answer.
pub async fn keys_created(dn: &Devnet, i: u32) -> u64 {
    status(dn, i, None)
        .await
        .and_then(|s| s["keys_created"].as_u64())
        .unwrap_or(0)
}

/// Copies the files of directory `from` into `to` (created if missing).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Prints the tail of every node log if the test panics (dropped while unwinding).
pub struct LogsOnPanic(pub std::path::PathBuf, pub u32);

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for i in 1..=self.1 {
            let p = self.0.join(format!("node{i}")).join("node.log");
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(60);
            eprintln!("===== node {i} ({}) =====", p.display());
            for l in &lines[from..] {
                eprintln!("{l}");
            }
        }
    }
}

/// `GET /bftStatus[?height=h]` of node `i` (None while it does not answer).
pub async fn status(net: &Devnet, i: u32, height: Option<u64>) -> Option<Value> {
    let p = net.layout.nodes.iter().find(|p| p.index == i)?;
    let mut url = format!("{}/bftStatus", net.http_base(p));
    if let Some(h) = height {
        url.push_str(&format!("?height={h}"));
    }
    let r = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// `GET /metrics` of node `i`.
pub async fn metrics(net: &Devnet, i: u32) -> String {
    let p = net.layout.nodes.iter().find(|p| p.index == i).unwrap();
    reqwest::get(format!("{}/metrics", net.http_base(p)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of a counter or gauge line (`name{labels} value`), summed over matches.
pub fn metric_sum(text: &str, name: &str, label_filter: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name) && l.contains(label_filter))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Waits until `cond(status of node i)` holds, or panics after `secs`.
pub async fn wait_until(
    net: &Devnet,
    i: u32,
    secs: u64,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = Instant::now();
    loop {
        if let Some(s) = status(net, i, None).await {
            if cond(&s) {
                return s;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "node {i}: timed out after {secs} s waiting for {what}; last status {:?}",
            status(net, i, None).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every node in `nodes` committed the same app hash at every height up to the
/// lowest head among them (no conflicting decisions). Returns that height.
pub async fn assert_same_history(net: &Devnet, nodes: &[u32]) -> u64 {
    let mut low = u64::MAX;
    for &i in nodes {
        let s = status(net, i, None).await.expect("node answers");
        low = low.min(s["height"].as_u64().unwrap());
    }
    assert!(low > 0 && low < u64::MAX);
    for h in 1..=low {
        let mut seen: Option<String> = None;
        for &i in nodes {
            let s = status(net, i, Some(h)).await.expect("node answers");
            let a = s["app_hash_at"].as_str().map(str::to_string);
            assert!(a.is_some(), "node {i} has no app hash at height {h}");
            match &seen {
                None => seen = a,
                Some(x) => assert_eq!(Some(x), a.as_ref(), "node {i} diverges at height {h}"),
            }
        }
    }
    low
}

/// Logs `email` in through every node's client API (lookup, KeyAssign, lookup,
/// commitments, shares, reconstruction).
/// KeyAssign is signed with the devnet's signer key, which the nodes require.
pub async fn login(net: &Devnet, email: &str) -> Login {
    login_at(net, net.endpoints(), email).await
}

/// [`login`] through the nodes of `endpoints` only (a committee that changed).
pub async fn login_at(net: &Devnet, endpoints: Vec<Endpoint>, email: &str) -> Login {
    let client = net.client_of(endpoints).unwrap();
    client
        .get_or_assign("devnet", email)
        .await
        .expect("lookup / KeyAssign");
    let token = net.mint(email).unwrap();
    client
        .retrieve(
            "devnet",
            serde_json::json!({ "verifier_id": email }),
            &token,
        )
        .await
        .expect("shares reconstruct the key")
}

/// A devnet of `nodes` nodes (`keys` keys in batches of `batch`), prepared but
/// not started, whose every directed link, for consensus and for p2p, runs
/// through its own relay (`links.nodes`, which the partition tests cut and heal), on
/// loopback and without delay.
pub async fn relayed_devnet(dir: &Path, nodes: u32, keys: u64, batch: u32) -> (Devnet, Links) {
    torus_node::devnet::netns::prepare_linked(
        opts(dir, nodes, keys, batch),
        torus_node::devnet::link::LinkShape::default(),
        1,
        false,
    )
    .await
    .unwrap()
}

/// Every node's answer to a ShareRequest for `email` (after a CommitmentRequest
/// round to all nodes with a fresh temporary key), with that key, which decrypts
/// the shares in them: the result, or the error (a JSON-RPC error or a transport
/// failure) as text.
pub async fn share_answers(
    net: &Devnet,
    email: &str,
) -> (k256::SecretKey, Vec<(u32, Result<Value, String>)>) {
    share_answers_at(net, net.endpoints(), net.endpoints(), email).await
}

/// [`share_answers`] with the commitments of the nodes of `committee` (the
/// current committee's signatures, as a client that knows it sends) asked of
/// the nodes of `asked`.
pub async fn share_answers_at(
    net: &Devnet,
    committee: Vec<Endpoint>,
    asked: Vec<Endpoint>,
    email: &str,
) -> (k256::SecretKey, Vec<(u32, Result<Value, String>)>) {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let client = Client::new(committee).unwrap();
    let token = net.mint(email).unwrap();
    let temp = k256::SecretKey::random(&mut rand_core::OsRng);
    let tp = temp.public_key().to_encoded_point(false);
    let commitment = hex::encode(torus_node::hexfmt::keccak256(token.as_bytes()));
    let commits = client
        .call_all(
            "CommitmentRequest",
            serde_json::json!({"messageprefix": "mug00", "tokencommitment": commitment,
                "temppubx": hex::encode(tp.x().unwrap()), "temppuby": hex::encode(tp.y().unwrap()),
                "verifieridentifier": "devnet"}),
        )
        .await;
    let sigs: Vec<Value> = commits
        .iter()
        .map(|c| match c {
            Ok(Ok(v)) => v.clone(),
            _ => Value::Null,
        })
        .collect();
    let item = serde_json::json!({"idtoken": token, "nodesignatures": sigs,
        "verifieridentifier": "devnet", "verifier_id": email});
    let asking = Client::new(asked.clone()).unwrap();
    let answers = asking
        .call_all(
            "ShareRequest",
            serde_json::json!({"encrypted": "yes", "item": [item]}),
        )
        .await;
    let out = asked
        .iter()
        .zip(answers)
        .map(|(ep, a)| {
            let r = match a {
                Ok(Ok(v)) => Ok(v),
                other => Err(format!("{other:?}")),
            };
            (ep.index, r)
        })
        .collect();
    (temp, out)
}

/// Every node's decrypted share of `email`'s key, by node index (panics if a
/// node does not answer with one).
pub async fn all_shares(net: &Devnet, email: &str) -> Vec<(u32, k256::Scalar)> {
    shares_at(net, net.endpoints(), email).await
}

/// The decrypted share of `email`'s key from each node of `committee` (panics when
/// one fails).
pub async fn shares_at(
    net: &Devnet,
    committee: Vec<Endpoint>,
    email: &str,
) -> Vec<(u32, k256::Scalar)> {
    let (temp, answers) = share_answers_at(net, committee.clone(), committee, email).await;
    answers
        .into_iter()
        .map(|(i, a)| {
            let v = a.unwrap_or_else(|e| panic!("node {i}: ShareRequest failed: {e}"));
            (
                i,
                torus_node::client::decrypt_share(&temp, &v["keys"][0]).unwrap(),
            )
        })
        .collect()
}

/// Whether every k-subset of `shares` reconstructs the same secret.
pub fn consistent(shares: &[(u32, k256::Scalar)], k: usize) -> bool {
    let n = shares.len();
    let mut first: Option<k256::Scalar> = None;
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize != k {
            continue;
        }
        let sel: Vec<(u32, k256::Scalar)> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| shares[i])
            .collect();
        let s = torus_node::client::lagrange_at_zero(&sel).unwrap();
        match first {
            None => first = Some(s),
            Some(f) if f != s => return false,
            _ => {}
        }
    }
    first.is_some()
}

/// Grows the devnet's committee to `n` nodes with thresholds `k`, `t`: prepares the
/// fresh nodes, writes the next committee's genesis to every member and starts the
/// fresh nodes; returns that genesis. The nodes then vote, reshare and switch.
pub fn grow(dn: &mut Devnet, n: u32, k: u32, t: u32) -> torus_node::config::Genesis {
    let mut next = dn.genesis.clone();
    let from = next.nodes.len() as u32;
    next.epoch += 1;
    next.n = n;
    next.k = k;
    next.t = t;
    for _ in from..n {
        next.nodes.push(dn.add_fresh_node().unwrap());
    }
    let text = toml::to_string(&next).unwrap();
    for i in 1..=n {
        std::fs::write(dn.node_dir(i).join("next-genesis.toml"), &text).unwrap();
    }
    for i in from + 1..=n {
        dn.start_node(i).unwrap();
    }
    next
}

/// At most this many tests of one test binary run their devnets at once (taken
/// with [`devnet_slot`]): a file of many multi-node tests would otherwise start
/// dozens of node processes together on CI's two cores, and consensus under that
/// load can miss a KeyAssign's 10 s.
const DEVNET_SLOTS: usize = 3;

/// Waits for one of the binary's [`DEVNET_SLOTS`]; hold it for the whole test.
pub async fn devnet_slot() -> tokio::sync::SemaphorePermit<'static> {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DEVNET_SLOTS);
    SLOTS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}
