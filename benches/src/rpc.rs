//! `torus-bench rpc`: the commit + share path of one node under an open-loop
//! load on loopback.
//!
//! A 5-node in-process cluster (k = 3) is started with keys from the engine's
//! DKG and users assigned. Requests are prepared first (tokens minted by the
//! development issuer, commitments collected from the other nodes), then node 1
//! receives CommitmentRequests, and then ShareRequests, at a fixed rate. Each
//! latency is measured from the request's *scheduled* send time, so a stalled
//! server cannot hide queueing (no coordinated omission). The load generator
//! runs in the same process and shares the cores with the node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use torus_node::devcluster::{Cluster, DEV_VERIFIER};
use torus_node::hexfmt::keccak256;

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct RpcBench {
    /// Requests per second sent to node 1.
    pub rate: u32,
    /// Seconds of load per phase.
    pub seconds: u32,
    /// Distinct users.
    pub users: usize,
}

/// Latency summary of one phase.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PhaseStats {
    /// Requests sent.
    pub requests: usize,
    /// Successful answers.
    pub ok: usize,
    /// Target rate.
    pub target_rps: f64,
    /// Answers per second actually completed.
    pub achieved_rps: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Largest latency, ms.
    pub max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

async fn post(http: &reqwest::Client, url: &str, body: &str) -> bool {
    match http
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(r) => match r.json::<Value>().await {
            Ok(v) => v.get("result").is_some(),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// Sends `bodies` to `url` at `rate` per second (open loop) and summarises.
async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    bodies: Vec<String>,
    rate: u32,
) -> PhaseStats {
    let n = bodies.len();
    let start = Instant::now() + Duration::from_millis(50);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let at = start + period * i as u32;
        let http = http.clone();
        let url = url.to_string();
        tokio::time::sleep_until(at.into()).await;
        tasks.spawn(async move {
            let ok = post(&http, &url, &body).await;
            (ok, at.elapsed().as_secs_f64() * 1e3, Instant::now())
        });
    }
    let mut lat = Vec::with_capacity(n);
    let mut ok = 0;
    let mut last = start;
    while let Some(r) = tasks.join_next().await {
        if let Ok((good, ms, done)) = r {
            ok += usize::from(good);
            lat.push(ms);
            last = last.max(done);
        }
    }
    lat.sort_by(f64::total_cmp);
    let wall = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    PhaseStats {
        requests: n,
        ok,
        target_rps: f64::from(rate),
        achieved_rps: ok as f64 / wall,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
    }
}

/// Runs the benchmark; returns `{commit: PhaseStats, share: PhaseStats}` as JSON.
pub async fn run(opts: RpcBench) -> Result<Value> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let cluster = Cluster::start(dir.path(), 5, 3, 1)
        .await
        .context("cluster")?;
    let users = opts.users.max(1);
    eprintln!("  [setup] 5 nodes up; generating {} keys", users);
    cluster
        .generate_keys(users, 0)
        .await
        .context("key generation")?;
    let client = cluster.client().context("client")?;
    let eps = client.endpoints().to_vec();
    let Some(target) = eps.first().cloned() else {
        bail!("no endpoints");
    };
    for u in 0..users {
        let r = client
            .call(
                &target,
                "KeyAssign",
                json!({"verifier": DEV_VERIFIER, "verifier_id": format!("user{u}@bench.example")}),
            )
            .await
            .context("KeyAssign")?;
        if r.is_err() {
            bail!("KeyAssign failed: {r:?}");
        }
    }
    let total = (opts.rate * opts.seconds) as usize;
    eprintln!("  [setup] preparing {total} logins (tokens, commitments at nodes 2..5)");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .build()
        .context("http client")?;
    let mut commit_bodies = Vec::with_capacity(total);
    let mut share_items = Vec::with_capacity(total);
    let prepared = Arc::new(tokio::sync::Semaphore::new(64));
    let mut prep = tokio::task::JoinSet::new();
    for i in 0..total {
        let email = format!("user{}@bench.example", i % users);
        let token = cluster.mint(&email);
        let temp = k256::SecretKey::random(&mut rand_core::OsRng);
        let p = temp.public_key().to_encoded_point(false);
        let params = json!({"messageprefix":"mug00","tokencommitment": hex::encode(keccak256(token.as_bytes())),
            "temppubx": p.x().map(hex::encode).unwrap_or_default(), "temppuby": p.y().map(hex::encode).unwrap_or_default(),
            "verifieridentifier": DEV_VERIFIER});
        commit_bodies.push(
            json!({"jsonrpc":"2.0","method":"CommitmentRequest","id":10,"params": params})
                .to_string(),
        );
        let client = client.clone();
        let eps = eps.clone();
        let sem = prepared.clone();
        prep.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let mut sigs = vec![Value::Null];
            for ep in eps.iter().skip(1) {
                if let Ok(Ok(v)) = client.call(ep, "CommitmentRequest", params.clone()).await {
                    sigs.push(v);
                }
            }
            (i, token, email, sigs)
        });
    }
    let mut items: Vec<(usize, String, String, Vec<Value>)> = Vec::with_capacity(total);
    while let Some(r) = prep.join_next().await {
        items.push(r.context("prepare")?);
    }
    items.sort_by_key(|x| x.0);
    for (_, token, email, sigs) in items {
        share_items.push((token, email, sigs));
    }
    eprintln!(
        "  [run] CommitmentRequest at {} rps for {} s",
        opts.rate, opts.seconds
    );
    let commit = open_loop(&http, &target.url, commit_bodies, opts.rate).await;
    eprintln!("    {commit:?}");
    // Node 1's own commitment answers join the signatures (it stored them above).
    let share_bodies: Vec<String> = share_items
        .into_iter()
        .map(|(token, email, sigs)| {
            json!({"jsonrpc":"2.0","method":"ShareRequest","id":10,"params":{"encrypted":"yes","item":[{
                "idtoken": token, "nodesignatures": sigs, "verifieridentifier": DEV_VERIFIER, "verifier_id": email}]}})
            .to_string()
        })
        .collect();
    eprintln!(
        "  [run] ShareRequest at {} rps for {} s",
        opts.rate, opts.seconds
    );
    let share = open_loop(&http, &target.url, share_bodies, opts.rate).await;
    eprintln!("    {share:?}");
    cluster.shutdown().await;
    Ok(json!({
        "bench": "rpc",
        "nodes": 5,
        "k": 3,
        "target_node": 1,
        "rate_per_node": opts.rate,
        "seconds": opts.seconds,
        "users": users,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "commit": commit,
        "share": share,
    }))
}
