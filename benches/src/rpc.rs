//! `torus-bench rpc`: the commit + share path of one node under an open-loop
//! load on loopback.
//!
//! A 5-node in-process cluster (k = 3) is started with keys from the engine's
//! DKG and users assigned. Requests are prepared first (tokens minted by the
//! development issuer, commitments collected from the other nodes, every
//! request body serialized), a few warm-up logins go to node 1, and then node 1
//! alone receives CommitmentRequests, and then ShareRequests, at a fixed rate.
//! A ShareRequest carries the signatures of all five nodes, node 1's taken from
//! its answer in the commit phase, as the real client sends them. Each latency
//! is measured from the request's *scheduled* send time, so a stalled server
//! cannot hide queueing (no coordinated omission). The load generator runs in
//! the same process and shares the cores with the node; the process's CPU
//! time per request and the load average are recorded with the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use torus_node::hexfmt::keccak256;
use torus_node::testkit::{Cluster, DEV_VERIFIER};

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
    /// CPU time of the whole process (load generator and all five nodes) per
    /// request during the phase, ms.
    pub cpu_ms_per_request: Option<f64>,
    /// CPU seconds per second during the phase (of the 2 cores, say).
    pub cores_busy: Option<f64>,
}

/// The `p` quantile of ascending `sorted` (nearest rank; NaN when empty).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// Posts one prepared body; the JSON-RPC `result`, if the answer has one.
async fn post(http: &reqwest::Client, url: &str, body: String) -> Option<Value> {
    let r = http
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .ok()?;
    let mut v = r.json::<Value>().await.ok()?;
    v.get_mut("result").map(Value::take)
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (clock ticks, assumed 100 per second as on Linux x86);
/// `None` where that file does not exist.
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The 1-, 5- and 15-minute load averages, from `/proc/loadavg`.
fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Sends `bodies` to `url` at `rate` per second (open loop) and summarises;
/// also returns each request's `result` (in order; `None` for failures).
async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    bodies: Vec<String>,
    rate: u32,
) -> (PhaseStats, Vec<Option<Value>>) {
    let n = bodies.len();
    let cpu_before = process_cpu_s();
    let start = Instant::now() + Duration::from_millis(50);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let url: Arc<str> = Arc::from(url);
    let mut tasks = tokio::task::JoinSet::new();
    // The bodies are ready-made strings: sending one moves it into the request,
    // so the generator's own work per request is the HTTP client's.
    for (i, body) in bodies.into_iter().enumerate() {
        let at = start + period * i as u32;
        let http = http.clone();
        let url = url.clone();
        tokio::time::sleep_until(at.into()).await;
        tasks.spawn(async move {
            let result = post(&http, &url, body).await;
            (i, result, at.elapsed().as_secs_f64() * 1e3, Instant::now())
        });
    }
    let mut lat = Vec::with_capacity(n);
    let mut results = vec![None; n];
    let mut ok = 0;
    let mut last = start;
    while let Some(r) = tasks.join_next().await {
        if let Ok((i, result, ms, done)) = r {
            ok += usize::from(result.is_some());
            if let Some(slot) = results.get_mut(i) {
                *slot = result;
            }
            lat.push(ms);
            last = last.max(done);
        }
    }
    let cpu_s = match (cpu_before, process_cpu_s()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    lat.sort_by(f64::total_cmp);
    let wall = last
        .saturating_duration_since(start)
        .as_secs_f64()
        .max(1e-9);
    let stats = PhaseStats {
        requests: n,
        ok,
        target_rps: f64::from(rate),
        achieved_rps: ok as f64 / wall,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        cpu_ms_per_request: cpu_s.map(|c| c * 1e3 / n.max(1) as f64),
        cores_busy: cpu_s.map(|c| c / wall),
    };
    (stats, results)
}

/// One prepared login: its token and user, the CommitmentRequest body, and the
/// commitment answers of nodes 2..=n (node 1's is added once it answered).
struct Login {
    token: String,
    email: String,
    commit_body: String,
    other_sigs: Vec<Value>,
}

/// Mints `count` tokens and collects the commitments of nodes 2..=n for each,
/// before anything is timed.
async fn prepare(
    cluster: &Cluster,
    client: &torus_node::client::Client,
    eps: &[torus_node::client::Endpoint],
    users: usize,
    count: usize,
) -> Result<Vec<Login>> {
    let prepared = Arc::new(tokio::sync::Semaphore::new(64));
    let mut prep = tokio::task::JoinSet::new();
    for i in 0..count {
        let email = format!("user{}@bench.example", i % users);
        let token = cluster.mint(&email);
        let temp = k256::SecretKey::random(&mut rand_core::OsRng);
        let p = temp.public_key().to_encoded_point(false);
        let params = json!({"messageprefix":"mug00","tokencommitment": hex::encode(keccak256(token.as_bytes())),
            "temppubx": p.x().map(hex::encode).unwrap_or_default(), "temppuby": p.y().map(hex::encode).unwrap_or_default(),
            "verifieridentifier": DEV_VERIFIER});
        let commit_body =
            json!({"jsonrpc":"2.0","method":"CommitmentRequest","id":10,"params": params})
                .to_string();
        let client = client.clone();
        let eps = eps.to_vec();
        let sem = prepared.clone();
        prep.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let mut other_sigs = Vec::new();
            for ep in eps.iter().skip(1) {
                if let Ok(Ok(v)) = client.call(ep, "CommitmentRequest", params.clone()).await {
                    other_sigs.push(v);
                }
            }
            (
                i,
                Login {
                    token,
                    email,
                    commit_body,
                    other_sigs,
                },
            )
        });
    }
    let mut items: Vec<(usize, Login)> = Vec::with_capacity(count);
    while let Some(r) = prep.join_next().await {
        items.push(r.context("prepare")?);
    }
    items.sort_by_key(|x| x.0);
    Ok(items.into_iter().map(|(_, l)| l).collect())
}

/// The ShareRequest of a login, with node signatures in node order: node 1's
/// commitment answer (as a real client collects it from every node; `null` if
/// node 1 refused) and then those of nodes 2..=n.
fn share_body(login: &Login, node1: Option<Value>) -> String {
    let mut sigs = vec![node1.unwrap_or(Value::Null)];
    sigs.extend(login.other_sigs.iter().cloned());
    json!({"jsonrpc":"2.0","method":"ShareRequest","id":10,"params":{"encrypted":"yes","item":[{
        "idtoken": login.token, "nodesignatures": sigs, "verifieridentifier": DEV_VERIFIER,
        "verifier_id": login.email}]}})
    .to_string()
}

/// Logins sent (commit, then share, one at a time) before the timed phases, to
/// open connections and fill the caches a running node has warm: the issuer's
/// JWKS and the signature tables of the committee's keys.
pub const WARMUP_LOGINS: usize = 20;

/// Runs the benchmark; returns `{commit: PhaseStats, share: PhaseStats}` as JSON.
pub async fn run(opts: RpcBench) -> Result<Value> {
    let dir = tempfile::tempdir().context("temp dir")?;
    // Every request comes from 127.0.0.1 and the load is the point: the per-address rate
    // limits are raised as in the devnet (a real network keeps the defaults).
    let unlimited = |c: &mut torus_node::config::NodeConfig| {
        let r = torus_node::devnet::DEVNET_RATE;
        c.rpc.commitment_per_s = r;
        c.rpc.commitment_burst = r;
        c.rpc.share_per_s = r;
        c.rpc.share_burst = r;
        c.rpc.key_assign_per_s = r;
        c.rpc.key_assign_burst = r;
    };
    let cluster = Cluster::start_with(dir.path(), 5, 3, 1, std::sync::Arc::new(unlimited))
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
    eprintln!(
        "  [setup] preparing {total} logins + {WARMUP_LOGINS} for warm-up (tokens, commitments at nodes 2..5)"
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4096)
        .build()
        .context("http client")?;
    let mut logins = prepare(&cluster, &client, &eps, users, total + WARMUP_LOGINS).await?;
    let timed = logins.split_off(WARMUP_LOGINS);
    let mut warm_ok = 0;
    for login in &logins {
        let node1 = post(&http, &target.url, login.commit_body.clone()).await;
        if post(&http, &target.url, share_body(login, node1))
            .await
            .is_some()
        {
            warm_ok += 1;
        }
    }
    if warm_ok < logins.len() {
        bail!(
            "warm-up: only {warm_ok} of {} logins got their share",
            logins.len()
        );
    }
    let load_before = load_average();
    eprintln!(
        "  [run] CommitmentRequest at {} rps for {} s (load average {:?})",
        opts.rate, opts.seconds, load_before
    );
    let commit_bodies: Vec<String> = timed.iter().map(|l| l.commit_body.clone()).collect();
    let (commit, node1_sigs) = open_loop(&http, &target.url, commit_bodies, opts.rate).await;
    eprintln!("    {commit:?}");
    let share_bodies: Vec<String> = timed
        .iter()
        .zip(node1_sigs)
        .map(|(login, node1)| share_body(login, node1))
        .collect();
    eprintln!(
        "  [run] ShareRequest at {} rps for {} s",
        opts.rate, opts.seconds
    );
    let (share, _) = open_loop(&http, &target.url, share_bodies, opts.rate).await;
    eprintln!("    {share:?}");
    let load_after = load_average();
    cluster.shutdown().await;
    Ok(json!({
        "bench": "rpc",
        "nodes": 5,
        "k": 3,
        "target_node": 1,
        "rate_per_node": opts.rate,
        "seconds": opts.seconds,
        "users": users,
        "warmup_logins": WARMUP_LOGINS,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "commit": commit,
        "share": share,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short run end to end: every prepared login gets its commitment and its
    /// share from node 1 (the ShareRequests carry node 1's own answers), and the
    /// record says what was measured.
    #[test]
    fn short_run_serves_every_request() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let v = rt
            .block_on(run(RpcBench {
                rate: 25,
                seconds: 1,
                users: 3,
            }))
            .unwrap();
        assert_eq!(v["target_node"], 1);
        for phase in ["commit", "share"] {
            assert_eq!(v[phase]["requests"], 25, "{phase}: {v}");
            assert_eq!(v[phase]["ok"], 25, "{phase}: {v}");
            let p50 = v[phase]["p50_ms"].as_f64().unwrap();
            let p99 = v[phase]["p99_ms"].as_f64().unwrap();
            assert!(p50 > 0.0 && p50 <= p99, "{phase}: {v}");
        }
        if std::path::Path::new("/proc/loadavg").exists() {
            assert_eq!(v["load_average_before"].as_array().unwrap().len(), 3);
        }
    }

    #[test]
    fn share_body_puts_node_1_first() {
        let login = Login {
            token: "t.o.k".into(),
            email: "a@b.c".into(),
            commit_body: String::new(),
            other_sigs: vec![json!({"signature": "2"}), json!({"signature": "3"})],
        };
        let body: Value =
            serde_json::from_str(&share_body(&login, Some(json!({"signature": "1"})))).unwrap();
        let sigs = &body["params"]["item"][0]["nodesignatures"];
        assert_eq!(sigs[0]["signature"], "1");
        assert_eq!(sigs[2]["signature"], "3");
        let body: Value = serde_json::from_str(&share_body(&login, None)).unwrap();
        assert!(body["params"]["item"][0]["nodesignatures"][0].is_null());
    }
}
