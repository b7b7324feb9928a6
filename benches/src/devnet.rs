//! `torus-bench devnet`: wall time for a fresh network of real node processes
//! on loopback to fill its key buffer (the main job, `torus-node devnet`, under
//! measurement).
//!
//! The run starts the nodes from an empty directory (keys, genesis, ports as
//! the devnet command makes them), samples every node's `/bftStatus` until
//! every node reports the requested number of created keys, then logs a user
//! in to check the keys serve, and collects node 1's key generation phase
//! timings from its metrics. `wall_s` counts from before the first process
//! starts to the moment the last node reports the full buffer.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use torus_node::devnet::link::LinkShape;
use torus_node::devnet::{netns, Devnet, DevnetOptions};
use torus_node::metrics::labelled_samples;

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct DevnetBench {
    /// Committee size.
    pub nodes: u32,
    /// Keys to generate.
    pub keys: u64,
    /// Keys per batch (None: the nodes' hardware profile).
    pub batch_keys: Option<u32>,
    /// Hardware profile for the nodes.
    pub hw_profile: Option<PathBuf>,
    /// The `torus-node` binary.
    pub node_binary: PathBuf,
    /// Keep the network's directory here (default: a temporary one, removed).
    pub data_dir: Option<PathBuf>,
    /// Users who log in once the buffer is full (latencies; 0: none).
    pub logins: usize,
    /// One host per node with these links and the seed of their draws (the process
    /// must have called `netns::enter_private_network` first); `None`: loopback.
    pub hosts: Option<(LinkShape, u64)>,
}

/// The `torus-node` binary beside this executable (`target/release/torus-node`
/// for `cargo run --release -p torus-bench`).
pub fn default_node_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating torus-bench")?;
    let dir = me.parent().context("torus-bench has no directory")?;
    Ok(dir.join("torus-node"))
}

/// Node 1's seconds in each keygen phase, from its metrics text.
fn phase_sums(metrics: &str) -> Value {
    labelled_samples(metrics, "torus_keygen_phase_seconds_sum", "phase")
        .into_iter()
        .map(|(phase, x)| (phase, json!(x)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Runs the benchmark.
pub async fn run(b: DevnetBench) -> Result<Value> {
    if !b.node_binary.exists() {
        bail!(
            "{} not found: build the node first (`cargo build --release -p torus-node`) or pass --node-binary",
            b.node_binary.display()
        );
    }
    let tmp = tempfile::tempdir().context("temporary directory")?;
    let dir = b
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    if dir.join("devnet-layout.toml").exists() {
        bail!(
            "{} already holds a devnet: the benchmark needs a fresh one",
            dir.display()
        );
    }
    let mut opts = DevnetOptions::new(b.nodes, b.keys, &dir, &b.node_binary);
    opts.batch_keys = b.batch_keys;
    opts.hw_profile = b.hw_profile.clone();
    let load_before = load_average();
    let t0 = Instant::now();
    // Across hosts, the links live as long as the network (dropped after it).
    let (mut net, _links) = match b.hosts {
        None => (
            Devnet::start(opts).await.context("starting the devnet")?,
            None,
        ),
        Some((shape, seed)) => {
            let (mut net, links) = netns::prepare_across_hosts(opts, shape, seed)
                .await
                .context("setting up one host per node")?;
            for i in 1..=net.layout.n {
                net.start_node(i).context("starting a node")?;
            }
            (net, Some(links))
        }
    };
    let mut first_key: Option<f64> = None;
    let mut samples: Vec<(f64, u64)> = Vec::new();
    // Memory and node 1's LMDB file while the buffer fills, every RESOURCE_EVERY.
    let pids: Vec<u32> = (1..=net.layout.n).filter_map(|i| net.pid(i)).collect();
    let mdb = net.node_dir(1).join("lmdb").join("data.mdb");
    let mut resources: Vec<Value> = Vec::new();
    let mut last_resource: Option<f64> = None;
    let waited = net
        .wait_for_keys(b.keys, Duration::from_secs(1800), |m| {
            let t = t0.elapsed().as_secs_f64();
            if m > 0 && first_key.is_none() {
                first_key = Some(t);
            }
            if samples.last().map(|s| s.1) != Some(m) {
                samples.push((t, m));
                eprintln!("  {t:7.2} s  {m} keys");
            }
            if last_resource.is_none_or(|l| t - l >= RESOURCE_EVERY.as_secs_f64()) {
                last_resource = Some(t);
                resources.push(resource_sample(t, m, &pids, &mdb));
            }
        })
        .await;
    let wall = t0.elapsed().as_secs_f64();
    if let Err(e) = waited {
        net.shutdown();
        bail!("the devnet did not fill its buffer: {e}");
    }
    let status = net.status(1).await;
    let node1 = net.layout.nodes.first().context("no node 1")?;
    let metrics = reqwest::get(format!("{}/metrics", net.http_base(node1)))
        .await
        .context("node 1 metrics")?
        .text()
        .await
        .context("node 1 metrics")?;
    // Memory and storage at the end, before the login: peak RSS of every node
    // (VmHWM) and node 1's LMDB file and databases.
    let rss_mib: Vec<Option<f64>> = (1..=net.layout.n)
        .map(|i| net.pid(i).and_then(|p| proc_status_mib(p, "VmHWM")))
        .collect();
    let anon_mib: Vec<Option<f64>> = (1..=net.layout.n)
        .map(|i| net.pid(i).and_then(|p| proc_status_mib(p, "RssAnon")))
        .collect();
    let lmdb_bytes = std::fs::metadata(&mdb).map(|m| m.len()).ok();
    let store = store_bytes(&metrics);
    let login = torus_node::devnet::login(&net.write_manifest()?, "devnet", "bench@example.com")
        .await
        .context("logging in against the filled network")?;
    let latency = if b.logins > 0 {
        // Let the last batches' pruning and the load of the fill settle first, the
        // same for every buffer size.
        tokio::time::sleep(LOGIN_SETTLE).await;
        Some(
            login_latency(&net, b.logins)
                .await
                .context("timing logins against the filled network")?,
        )
    } else {
        None
    };
    let restart = restart_to_serving(&mut net, b.keys).await;
    net.shutdown();
    let first = first_key.unwrap_or(wall);
    let out = json!({
        "bench": "devnet",
        "hosts": match b.hosts {
            None => json!("loopback"),
            Some((shape, seed)) => json!({
                "kind": "one network namespace per node, links through user-space relays",
                "delay_ms": shape.delay.as_secs_f64() * 1e3,
                "jitter_ms": shape.jitter.as_secs_f64() * 1e3,
                "loss_pct": shape.loss * 100.0,
                "seed": seed,
            }),
        },
        "nodes": net.layout.n,
        "k": net.layout.k,
        "t": net.layout.t,
        "keys": b.keys,
        "batch_keys": b.batch_keys,
        "wall_s": wall,
        "keys_per_s": b.keys as f64 / wall,
        "first_keys_s": first,
        "after_first_keys_per_s": if wall > first { (b.keys as f64 - samples.first().map_or(0.0, |s| s.1 as f64)) / (wall - first) } else { 0.0 },
        "height": status.map(|s| s.height),
        "keys_per_s_last_10pct": rate_over_last(&samples, b.keys, 0.1),
        "node1_phase_seconds": phase_sums(&metrics),
        "rss_max_mib": largest(rss_mib.iter().flatten().copied()),
        "rss_mib_by_node": rss_mib,
        "rss_anon_mib_by_node_at_end": anon_mib,
        "node1_lmdb_file_bytes": lmdb_bytes,
        "bytes_per_key_at_rest": lmdb_bytes.map(|bytes| bytes as f64 / b_keys_nonzero(b.keys)),
        "node1_store_bytes_by_db": store,
        "restart_to_serving_s": restart,
        "login_latency": latency,
        "progress": samples.iter().map(|(t, k)| json!([t, k])).collect::<Vec<_>>(),
        "resources_columns": ["s", "keys", "rss_max_mib", "rss_anon_max_mib", "node1_lmdb_file_bytes"],
        "resources": resources,
        "login_address": login.address,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    });
    Ok(out)
}

/// Quiet time between the end of the fill and the timed logins.
const LOGIN_SETTLE: Duration = Duration::from_secs(20);

/// Logs `users` new users in against the filled network and times, one login after
/// another (nothing else running), the lookup of each user's key
/// (`VerifierLookupRequest` to every node), the CommitmentRequest round and the
/// ShareRequest round (each until the last node answered), after [`LOGIN_SETTLE`].
/// Keys are assigned first, 25 users at a time, untimed: KeyAssign waits for a block.
async fn login_latency(net: &Devnet, users: usize) -> Result<Value> {
    const VERIFIER: &str = "devnet";
    let client = net.client()?;
    let names: Vec<String> = (0..users)
        .map(|i| format!("latency-{i}@example.com"))
        .collect();
    for chunk in names.chunks(25) {
        let mut set = tokio::task::JoinSet::new();
        for u in chunk {
            let (c, u) = (client.clone(), u.clone());
            set.spawn(async move { c.get_or_assign(VERIFIER, &u).await });
        }
        while let Some(r) = set.join_next().await {
            r.context("an assigning task")?.context("assigning a key")?;
        }
    }
    let (mut lookup, mut commitment, mut share) = (Vec::new(), Vec::new(), Vec::new());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for u in &names {
        let t = Instant::now();
        let answers = client
            .call_all(
                "VerifierLookupRequest",
                json!({"verifier": VERIFIER, "verifier_id": u}),
            )
            .await;
        lookup.push(ms(t.elapsed()));
        match client.threshold_same(&answers) {
            Some(Ok(_)) => {}
            other => bail!("the lookup of {u} did not agree: {other:?}"),
        }
        let token = net.mint(u)?;
        let (_, times) = client
            .retrieve_timed(VERIFIER, json!({ "verifier_id": u }), &token)
            .await
            .with_context(|| format!("logging {u} in"))?;
        commitment.push(ms(times.commitment));
        share.push(ms(times.share));
    }
    let summary = |mut xs: Vec<f64>| {
        xs.sort_by(f64::total_cmp);
        json!({
            "p50_ms": crate::rpc::percentile(&xs, 0.5),
            "p99_ms": crate::rpc::percentile(&xs, 0.99),
            "max_ms": xs.last(),
        })
    };
    Ok(json!({
        "users": users,
        "lookup": summary(lookup),
        "commitment_request": summary(commitment),
        "share_request": summary(share),
    }))
}

/// Stops node 1 (SIGTERM), starts it again and times how long it takes until its RPC
/// answers `/bftStatus` with every key of the buffer created (seconds from the start of
/// the process; `None` if it does not within 60 s).
async fn restart_to_serving(net: &mut Devnet, keys: u64) -> Option<f64> {
    net.stop(1).ok()?;
    let t0 = Instant::now();
    net.start_node(1).ok()?;
    while t0.elapsed() < Duration::from_secs(60) {
        if net.status(1).await.is_some_and(|s| s.keys_created >= keys) {
            return Some(t0.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn b_keys_nonzero(keys: u64) -> f64 {
    keys.max(1) as f64
}

/// Keys per second over the last `fraction` of the target: from the first sample at or
/// past `(1 - fraction) × target` keys to the last sample.
pub fn rate_over_last(samples: &[(f64, u64)], target: u64, fraction: f64) -> Option<f64> {
    let from = (target as f64 * (1.0 - fraction)) as u64;
    let first = samples.iter().find(|s| s.1 >= from)?;
    let last = samples.last()?;
    (last.0 > first.0 && last.1 > first.1).then(|| (last.1 - first.1) as f64 / (last.0 - first.0))
}

/// How often the benchmark samples memory and the LMDB file while the buffer fills.
const RESOURCE_EVERY: Duration = Duration::from_secs(5);

/// `[s, keys, largest VmRSS, largest RssAnon, node 1's LMDB file bytes]` (MiB for memory).
fn resource_sample(t: f64, keys: u64, pids: &[u32], mdb: &std::path::Path) -> Value {
    let max = |field: &str| largest(pids.iter().filter_map(|p| proc_status_mib(*p, field)));
    json!([
        t,
        keys,
        max("VmRSS"),
        max("RssAnon"),
        std::fs::metadata(mdb).map(|m| m.len()).ok()
    ])
}

/// The largest of `xs` (None if there is none).
fn largest(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    xs.into_iter().reduce(f64::max)
}

/// A line of a process's `/proc/PID/status` in MiB: `VmHWM` (peak resident set, LMDB's
/// mapped pages included) or `RssAnon` (resident memory of its own, no file pages).
fn proc_status_mib(pid: u32, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `torus_store_bytes{db=...}` of a node's metrics text, by database.
fn store_bytes(metrics: &str) -> serde_json::Map<String, Value> {
    labelled_samples(metrics, "torus_store_bytes", "db")
        .into_iter()
        .map(|(db, bytes)| (db, json!(bytes as u64)))
        .collect()
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_tenth_rate_is_measured_from_the_first_sample_past_ninety_percent() {
        let samples = [(1.0, 0), (2.0, 500), (3.0, 900), (5.0, 950), (7.0, 1000)];
        // From (3.0 s, 900 keys) to (7.0 s, 1,000 keys): 25 keys/s.
        assert_eq!(rate_over_last(&samples, 1000, 0.1), Some(25.0));
        // Not enough samples in the window: no figure rather than a made-up one.
        assert_eq!(rate_over_last(&[(1.0, 1000)], 1000, 0.1), None);
        assert_eq!(rate_over_last(&[], 1000, 0.1), None);
    }

    #[test]
    fn a_status_field_is_read_by_its_exact_name_in_mib() {
        let me = std::process::id();
        assert!(proc_status_mib(me, "VmHWM").is_some_and(|m| m > 0.0));
        assert!(proc_status_mib(me, "RssAnon").is_some_and(|m| m > 0.0));
        // "Rss" is only a prefix of "RssAnon", "RssFile", ...: no such line.
        assert_eq!(proc_status_mib(me, "Rss"), None);
    }
}
