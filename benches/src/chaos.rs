//! `torus-bench chaos`: a network of real node processes under faults that come
//! together, while users log in all along, with invariants checked as it runs and at
//! the end (issue #14).
//!
//! Faults, drawn from the seed ([`plan`]: the same seed, the same schedule): SIGKILL
//! and restart, SIGSTOP and SIGCONT, a partition (every link of a node cut, consensus
//! and p2p), and slow links (every link of a node delayed). Never more than `t` nodes
//! are faulty at once, and the last fifth of the run has no faults, so that recovery is
//! measured too. Every link runs through a relay ([`torus_node::devnet::link`]), on
//! loopback or, with `--netns`, between hosts.
//!
//! Invariants (each break is a violation in the JSON; there must be none):
//! * every node that answers commits the same app hash at every height (checked as
//!   blocks come and again over the whole chain at the end);
//! * every login of a user opens the same address;
//! * every share handed out lies on one polynomial with the others (every k-subset of
//!   the answers of a ShareRequest interpolates to the same secret);
//! * at the end, every node hands out a share for every user who logged in (no share
//!   lost across restarts), and every node's unassigned buffer is full again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use torus_node::client::{shares_consistent, Client};
use torus_node::devnet::link::LinkShape;
use torus_node::devnet::{netns, Devnet, DevnetOptions};

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    /// SIGKILL, restarted when the fault ends.
    Kill,
    /// SIGSTOP, SIGCONT when the fault ends.
    Pause,
    /// Every link of the node cut.
    Partition,
    /// Every link of the node delayed.
    Slow,
}

impl FaultKind {
    /// The name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Slow => "slow_links",
        }
    }
}

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Since the start of the faulty phase.
    pub at: Duration,
    /// What.
    pub kind: FaultKind,
    /// On which node.
    pub node: u32,
    /// For how long.
    pub lasts: Duration,
    /// One-way delay of the slowed links ([`FaultKind::Slow`]), else 0.
    pub delay_ms: u64,
}

impl Fault {
    /// When it ends.
    pub fn end(&self) -> Duration {
        self.at + self.lasts
    }
}

/// splitmix64, for a schedule that a seed replays.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The share of the run that may hold faults; the rest shows recovery.
pub const FAULTY_SHARE: f64 = 0.8;

/// The fault schedule of a run of `run` on `nodes` nodes tolerating `t` faults, from
/// `seed`: a fault every 2 to 6 s on a node that is not faulty, at most `t` at once, all
/// over before [`FAULTY_SHARE`] of the run.
pub fn plan(seed: u64, nodes: u32, t: u32, run: Duration) -> Vec<Fault> {
    let mut d = Draw(seed);
    let mut out: Vec<Fault> = Vec::new();
    let last_end = run.mul_f64(FAULTY_SHARE);
    let mut cursor = Duration::from_secs(2);
    if t == 0 || nodes == 0 {
        return out;
    }
    loop {
        let mut start = cursor + Duration::from_secs(d.range(2, 6));
        // Wait until fewer than t faults are active.
        loop {
            let active: Vec<&Fault> = out
                .iter()
                .filter(|f| f.at <= start && start < f.end())
                .collect();
            if active.len() < t as usize {
                break;
            }
            start = active.iter().map(|f| f.end()).min().unwrap_or(start);
        }
        let busy: Vec<u32> = out
            .iter()
            .filter(|f| f.at <= start && start < f.end())
            .map(|f| f.node)
            .collect();
        let free: Vec<u32> = (1..=nodes).filter(|i| !busy.contains(i)).collect();
        let node = free[(d.next() % free.len() as u64) as usize];
        let (kind, lasts, delay_ms) = match d.next() % 4 {
            0 => (FaultKind::Kill, d.range(3, 12), 0),
            1 => (FaultKind::Pause, d.range(2, 8), 0),
            2 => (FaultKind::Partition, d.range(3, 12), 0),
            _ => (FaultKind::Slow, d.range(5, 15), d.range(100, 400)),
        };
        let f = Fault {
            at: start,
            kind,
            node,
            lasts: Duration::from_secs(lasts),
            delay_ms,
        };
        if f.end() > last_end {
            return out;
        }
        cursor = start;
        out.push(f);
    }
}

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct ChaosBench {
    /// Committee size.
    pub nodes: u32,
    /// Length of the run (faults and logins), not counting the start and the final checks.
    pub run: Duration,
    /// Seed of the fault schedule and the links' draws.
    pub seed: u64,
    /// The `torus-node` binary.
    pub node_binary: PathBuf,
    /// Keys in each node's buffer (refilled as users take them).
    pub keys: u64,
    /// Keys per batch.
    pub batch_keys: u32,
    /// One host per node (the process must have called `netns::enter_private_network`).
    pub netns: bool,
    /// Every link's shape outside faults (a slow-links fault adds to its delay).
    pub links: LinkShape,
    /// Keep the network's directory here (default: a temporary one).
    pub data_dir: Option<PathBuf>,
}

/// What the checkers found, shared by the tasks.
#[derive(Default)]
struct Findings {
    violations: Mutex<Vec<String>>,
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    share_checks: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Each user's address, from its first login.
    users: Mutex<BTreeMap<String, String>>,
}

impl Findings {
    fn violation(&self, what: String) {
        eprintln!("  VIOLATION: {what}");
        self.violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }

    fn error(&self, e: String) {
        // Errors are grouped by their text without digits (indexes, heights, times).
        let key: String = e
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .take(160)
            .collect();
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }
}

const VERIFIER: &str = "devnet";
/// Users a run draws from (new ones until there are this many, then returning ones).
const MAX_USERS: usize = 400;
/// Users whose shares the end checks at every node.
const END_USERS: usize = 40;

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let r = http
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Heights whose app hash all answering nodes agree on are checked once; returns the
/// next unchecked height. A node without an app hash at a height it passed is a
/// violation too.
async fn check_history(
    http: &reqwest::Client,
    bases: &[String],
    from: u64,
    findings: &Findings,
) -> u64 {
    let mut heads = Vec::new();
    for (pos, b) in bases.iter().enumerate() {
        if let Some(s) = get_json(http, &format!("{b}/bftStatus")).await {
            if let Some(h) = s["height"].as_u64() {
                heads.push((pos as u32 + 1, h));
            }
        }
    }
    let Some(low) = heads.iter().map(|h| h.1).min() else {
        return from;
    };
    let mut h = from;
    while h <= low {
        let mut seen: Option<(u32, String)> = None;
        for &(i, _) in &heads {
            let Some(base) = bases.get(i as usize - 1) else {
                continue;
            };
            let Some(s) = get_json(http, &format!("{base}/bftStatus?height={h}")).await else {
                // Paused or killed since: the final check covers it.
                continue;
            };
            let Some(a) = s["app_hash_at"].as_str().map(str::to_string) else {
                findings.violation(format!("node {i} has no app hash at height {h}"));
                continue;
            };
            match &seen {
                None => seen = Some((i, a)),
                Some((j, x)) if *x != a => findings.violation(format!(
                    "nodes {j} and {i} committed different app hashes at height {h}: {x} / {a}"
                )),
                _ => {}
            }
        }
        h += 1;
    }
    h
}

/// Logs users in until `stop`, checking that a user's address never changes and that
/// the shares of every fifth login lie on one polynomial.
async fn logins(
    client: Client,
    mint: torus_node::devnet::hosts::login::TokenMinter,
    k: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
    f: Arc<Findings>,
) {
    let mut d = Draw(seed ^ 0x10_6105);
    let mut made = 0usize;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let known = f.users.lock().unwrap_or_else(|p| p.into_inner()).len();
        let user = if made < MAX_USERS && (known == 0 || d.next().is_multiple_of(3)) {
            made += 1;
            format!("chaos-{seed}-{made}@example.com")
        } else {
            format!("chaos-{seed}-{}@example.com", d.range(1, made as u64))
        };
        let r = async {
            client
                .get_or_assign(VERIFIER, &user)
                .await
                .map_err(|e| format!("lookup/assign: {e}"))?;
            let token = mint(&user)?;
            let login = client
                .retrieve(VERIFIER, json!({ "verifier_id": user }), &token)
                .await
                .map_err(|e| format!("retrieve: {e}"))?;
            Ok::<_, String>(login.address)
        }
        .await;
        match r {
            Ok(address) => {
                f.logins_ok.fetch_add(1, Ordering::Relaxed);
                let mut users = f.users.lock().unwrap_or_else(|p| p.into_inner());
                match users.get(&user) {
                    Some(a) if *a != address => {
                        let a = a.clone();
                        drop(users);
                        f.violation(format!("{user} logged in to {address}, earlier to {a}"));
                    }
                    Some(_) => {}
                    None => {
                        users.insert(user.clone(), address);
                    }
                }
            }
            Err(e) => {
                f.logins_failed.fetch_add(1, Ordering::Relaxed);
                f.error(e);
            }
        }
        if n.is_multiple_of(5) {
            if let Ok(token) = mint(&user) {
                if let Ok(shares) = client
                    .shares(VERIFIER, json!({ "verifier_id": user }), &token)
                    .await
                {
                    f.share_checks.fetch_add(1, Ordering::Relaxed);
                    if shares.len() >= k && !shares_consistent(&shares, k) {
                        f.violation(format!(
                            "the shares of {user} from nodes {:?} do not lie on one polynomial",
                            shares.iter().map(|s| s.0).collect::<Vec<_>>()
                        ));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fault that ended, and the height its node has to reach.
struct Recovery {
    fault: Fault,
    healed: Instant,
    /// The highest height any node had when the fault ended.
    target: u64,
}

/// Every node's height (None: no answer within a second), asked all at once.
async fn heights(http: &reqwest::Client, bases: &[String]) -> Vec<Option<u64>> {
    let mut set = tokio::task::JoinSet::new();
    for (pos, b) in bases.iter().enumerate() {
        let (http, url) = (http.clone(), format!("{b}/bftStatus"));
        set.spawn(async move {
            let r = async {
                let r = http
                    .get(&url)
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .ok()?;
                r.json::<Value>().await.ok()?["height"].as_u64()
            }
            .await;
            (pos, r)
        });
    }
    let mut out = vec![None; bases.len()];
    while let Some(Ok((pos, h))) = set.join_next().await {
        if let Some(slot) = out.get_mut(pos) {
            *slot = h;
        }
    }
    out
}

/// Moves the faults whose node is back at the network's height (as it was when the
/// fault ended; `heights` by node) from `waiting` to `recovered`, with the seconds
/// that took.
fn settle(heights: &[Option<u64>], waiting: &mut Vec<Recovery>, recovered: &mut Vec<(Fault, f64)>) {
    let mut left = Vec::new();
    for r in waiting.drain(..) {
        let h = heights
            .get((r.fault.node as usize).wrapping_sub(1))
            .copied()
            .flatten();
        if h.is_some_and(|h| h >= r.target) {
            recovered.push((r.fault, r.healed.elapsed().as_secs_f64()));
        } else {
            left.push(r);
        }
    }
    *waiting = left;
}

async fn apply(dn: &mut Devnet, links: &netns::Links, f: &Fault, base: LinkShape) -> Result<()> {
    match f.kind {
        FaultKind::Kill => dn.kill(f.node)?,
        FaultKind::Pause => dn.pause(f.node)?,
        FaultKind::Partition => links.of_node(f.node).for_each(|r| r.cut()),
        FaultKind::Slow => {
            let slow = LinkShape {
                delay: base.delay + Duration::from_millis(f.delay_ms),
                ..base
            };
            links.of_node(f.node).for_each(|r| r.set_shape(slow));
        }
    }
    Ok(())
}

async fn heal(dn: &mut Devnet, links: &netns::Links, f: &Fault, base: LinkShape) -> Result<()> {
    match f.kind {
        FaultKind::Kill => dn.start_node(f.node)?,
        FaultKind::Pause => dn.resume(f.node)?,
        FaultKind::Partition => links.of_node(f.node).for_each(|r| r.heal()),
        FaultKind::Slow => links.of_node(f.node).for_each(|r| r.set_shape(base)),
    }
    Ok(())
}

/// Runs the chaos bench.
pub async fn run(b: ChaosBench) -> Result<Value> {
    if !b.node_binary.exists() {
        bail!(
            "{} not found: build the node first (`cargo build --release -p torus-node`) or pass --node-binary",
            b.node_binary.display()
        );
    }
    let tmp = tempfile::tempdir().context("temporary directory")?;
    let dir = b.data_dir.clone().unwrap_or_else(|| tmp.path().into());
    let mut opts = DevnetOptions::new(b.nodes, b.keys, &dir, &b.node_binary);
    opts.batch_keys = Some(b.batch_keys);
    let base = b.links;
    let (mut dn, links) = netns::prepare_linked(opts, base, b.seed, b.netns)
        .await
        .context("preparing the network")?;
    let t_all = Instant::now();
    for i in 1..=dn.layout.n {
        dn.start_node(i).context("starting a node")?;
    }
    let (n, k, t) = (dn.layout.n, dn.layout.k, dn.layout.t);
    let schedule = plan(b.seed, n, t, b.run);
    eprintln!(
        "  chaos: {n} nodes (k {k}, t {t}), {} faults over {:.0} s, seed {}",
        schedule.len(),
        b.run.as_secs_f64(),
        b.seed
    );
    dn.wait_for_keys(b.keys, Duration::from_secs(600), |_| {})
        .await
        .context("the initial buffer")?;
    let fill_s = t_all.elapsed().as_secs_f64();
    let bases: Vec<String> = dn.layout.nodes.iter().map(|p| dn.http_base(p)).collect();
    let http = reqwest::Client::new();
    let findings = Arc::new(Findings::default());
    let stop = Arc::new(AtomicBool::new(false));
    let login_task = tokio::spawn(logins(
        dn.client()?,
        dn.minter(),
        k as usize,
        b.seed,
        stop.clone(),
        findings.clone(),
    ));

    // Checks the chain as blocks come, beside the faults (a paused node's timeouts
    // never hold up the fault schedule).
    let monitor = {
        let (http, bases, f, stop) = (http.clone(), bases.clone(), findings.clone(), stop.clone());
        tokio::spawn(async move {
            let mut checked = 1u64;
            while !stop.load(Ordering::SeqCst) {
                checked = check_history(&http, &bases, checked, &f).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };

    // The faulty phase. Faults start and end at their planned times, and ends come
    // first in a tick, so one node's faults never overlap even when a tick runs late.
    let t0 = Instant::now();
    let mut next = schedule.iter().peekable();
    let mut active: Vec<Fault> = Vec::new();
    let mut waiting: Vec<Recovery> = Vec::new();
    let mut recoveries: Vec<(Fault, f64)> = Vec::new();
    let mut top = 0u64;
    while t0.elapsed() < b.run || !active.is_empty() {
        let now = t0.elapsed();
        let mut still = Vec::new();
        for f in active.drain(..) {
            if now >= f.end() {
                heal(&mut dn, &links, &f, base).await?;
                waiting.push(Recovery {
                    fault: f,
                    healed: Instant::now(),
                    target: top,
                });
            } else {
                still.push(f);
            }
        }
        active = still;
        while let Some(f) = next.next_if(|f| f.at <= now) {
            eprintln!(
                "  {:6.1} s  {} node {} for {} s",
                now.as_secs_f64(),
                f.kind.name(),
                f.node,
                f.lasts.as_secs()
            );
            apply(&mut dn, &links, f, base).await?;
            active.push(f.clone());
        }
        let hs = heights(&http, &bases).await;
        top = top.max(hs.iter().flatten().copied().max().unwrap_or(0));
        // Recoveries: the faulted node is back at the height the network had.
        settle(&hs, &mut waiting, &mut recoveries);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let faulty_s = t0.elapsed().as_secs_f64();

    // Every node back: recoveries still open get up to 120 s.
    let t_end = Instant::now();
    while !waiting.is_empty() && t_end.elapsed() < Duration::from_secs(120) {
        let hs = heights(&http, &bases).await;
        settle(&hs, &mut waiting, &mut recoveries);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for r in &waiting {
        findings.violation(format!(
            "node {} did not catch up within 120 s after its {} ended",
            r.fault.node,
            r.fault.kind.name()
        ));
    }
    stop.store(true, Ordering::SeqCst);
    login_task.await.context("the login task")?;
    monitor.await.context("the chain monitor")?;

    // The buffer refills: every node's unassigned keys back to the high watermark.
    let t_refill = Instant::now();
    let refilled = loop {
        let mut full = true;
        for b_ in &bases {
            let s = get_json(&http, &format!("{b_}/bftStatus")).await;
            let free =
                s.and_then(|s| Some(s["keys_created"].as_u64()? - s["keys_assigned"].as_u64()?));
            full &= free.is_some_and(|f| f >= b.keys);
        }
        if full {
            break Some(t_refill.elapsed().as_secs_f64());
        }
        if t_refill.elapsed() > Duration::from_secs(300) {
            findings.violation("the key buffer did not refill within 300 s".into());
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The whole chain again, at every node.
    let final_check = check_history(&http, &bases, 1, &findings).await;
    // No share lost: every node answers for users who logged in.
    let users: Vec<String> = {
        let u = findings.users.lock().unwrap_or_else(|p| p.into_inner());
        let step = (u.len() / END_USERS).max(1);
        u.keys().step_by(step).cloned().collect()
    };
    let client = dn.client()?;
    let mint = dn.minter();
    for u in &users {
        let token = mint(u).map_err(anyhow::Error::msg)?;
        match client
            .shares(VERIFIER, json!({ "verifier_id": u }), &token)
            .await
        {
            Ok(shares) if shares.len() == n as usize => {
                if !shares_consistent(&shares, k as usize) {
                    findings.violation(format!("the shares of {u} do not lie on one polynomial"));
                }
            }
            Ok(shares) => findings.violation(format!(
                "only nodes {:?} hand out a share of {u}",
                shares.iter().map(|s| s.0).collect::<Vec<_>>()
            )),
            Err(e) => findings.violation(format!("the shares of {u}: {e}")),
        }
    }
    let wall = t_all.elapsed().as_secs_f64();
    dn.shutdown();
    drop(dn);
    drop(links);

    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &schedule {
        *by_kind.entry(f.kind.name()).or_default() += 1;
    }
    recoveries.sort_by_key(|r| r.0.at);
    let mut longest: BTreeMap<&str, f64> = BTreeMap::new();
    for (f, s) in &recoveries {
        let e = longest.entry(f.kind.name()).or_default();
        *e = e.max(*s);
    }
    let violations = findings
        .violations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let users_n = findings
        .users
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len();
    Ok(json!({
        "bench": "chaos",
        "nodes": n, "k": k, "t": t,
        "seed": b.seed,
        "hosts": if b.netns { "one network namespace per node" } else { "loopback" },
        "links": {
            "delay_ms": base.delay.as_secs_f64() * 1e3,
            "jitter_ms": base.jitter.as_secs_f64() * 1e3,
            "loss_pct": base.loss * 100.0,
        },
        "run_s": b.run.as_secs_f64(),
        "faulty_phase_s": faulty_s,
        "initial_fill_s": fill_s,
        "keys": b.keys,
        "batch_keys": b.batch_keys,
        "faults": schedule.len(),
        "faults_by_kind": by_kind,
        "fault_log": recoveries.iter().map(|(f, s)| json!({
            "at_s": f.at.as_secs_f64(), "kind": f.kind.name(), "node": f.node,
            "lasts_s": f.lasts.as_secs_f64(), "delay_ms": f.delay_ms, "recovered_after_s": s,
        })).collect::<Vec<_>>(),
        "longest_recovery_s": recoveries.iter().map(|r| r.1).fold(0.0, f64::max),
        "longest_recovery_s_by_kind": longest,
        "logins_ok": findings.logins_ok.load(Ordering::Relaxed),
        "logins_failed": findings.logins_failed.load(Ordering::Relaxed),
        "login_errors": *findings.errors.lock().unwrap_or_else(|p| p.into_inner()),
        "users": users_n,
        "share_checks_during_run": findings.share_checks.load(Ordering::Relaxed),
        "users_checked_at_every_node_at_end": users.len(),
        "heights_checked": final_check.saturating_sub(1),
        "buffer_refilled_after_s": refilled,
        "violations": violations.len(),
        "violation_list": violations,
        "wall_s": wall,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_never_has_more_than_t_faulty_nodes_and_ends_before_the_quiet_fifth() {
        for (nodes, t, seed) in [(7, 1, 1), (7, 1, 2), (9, 2, 3), (13, 3, 4)] {
            let run = Duration::from_secs(1800);
            let p = plan(seed, nodes, t, run);
            assert!(p.len() > 100, "{} faults in 30 minutes", p.len());
            for f in &p {
                let at_once: Vec<&Fault> = p
                    .iter()
                    .filter(|g| g.at <= f.at && f.at < g.end())
                    .collect();
                assert!(
                    at_once.len() <= t as usize,
                    "{} faults at {:?}",
                    at_once.len(),
                    f.at
                );
                let mut busy: Vec<u32> = at_once.iter().map(|g| g.node).collect();
                busy.sort_unstable();
                busy.dedup();
                assert_eq!(busy.len(), at_once.len(), "a node has two faults at once");
                assert!(f.end() <= run.mul_f64(FAULTY_SHARE));
                assert!((1..=nodes).contains(&f.node));
            }
            for kind in [
                FaultKind::Kill,
                FaultKind::Pause,
                FaultKind::Partition,
                FaultKind::Slow,
            ] {
                assert!(p.iter().any(|f| f.kind == kind), "no {kind:?}");
            }
        }
    }

    #[test]
    fn the_same_seed_replays_the_same_schedule() {
        let run = Duration::from_secs(120);
        assert_eq!(plan(5, 7, 1, run), plan(5, 7, 1, run));
        assert_ne!(plan(5, 7, 1, run), plan(6, 7, 1, run));
        assert!(plan(5, 7, 0, run).is_empty());
    }

    #[test]
    fn overlapping_faults_come_only_where_t_allows_them() {
        let run = Duration::from_secs(1800);
        let overlaps = |t| {
            let p = plan(9, 13, t, run);
            p.iter()
                .filter(|f| p.iter().any(|g| g != *f && g.at <= f.at && f.at < g.end()))
                .count()
        };
        assert_eq!(overlaps(1), 0);
        assert!(overlaps(3) > 0);
    }
}
