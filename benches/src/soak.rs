//! `torus-bench soak`: a network of real node processes under steady login load for
//! minutes, sampling every node's resident memory, open file descriptors and LMDB file
//! every 10 s (issue #14). After the warm-up (the first fifth of the run) every series
//! should be flat: the JSON has each series' growth from the end of the warm-up to the
//! end, and a PNG plots them.
//!
//! The load: `--users` users get keys first, then log in again and again (lookup,
//! CommitmentRequest and ShareRequest rounds to every node) at `--rate` logins per
//! second, open loop, at most [`MAX_IN_FLIGHT`] at once (a tick that finds them all busy
//! is counted as skipped, not queued). `--new-users-per-s` adds users who need a new key,
//! so that the buffer keeps refilling (their keys make the LMDB file grow by design).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use torus_node::devnet::{Devnet, DevnetOptions};

/// Logins in flight at most.
pub const MAX_IN_FLIGHT: usize = 64;
/// How often the resources are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// The share of the run counted as warm-up.
pub const WARM_SHARE: f64 = 0.2;

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct SoakBench {
    /// Committee size.
    pub nodes: u32,
    /// Length of the load.
    pub run: Duration,
    /// Returning logins per second.
    pub rate: f64,
    /// Users who log in again and again.
    pub users: usize,
    /// New users (new keys) per second on top.
    pub new_users_per_s: f64,
    /// Keys in each node's buffer.
    pub keys: u64,
    /// Keys per batch.
    pub batch_keys: u32,
    /// The `torus-node` binary.
    pub node_binary: PathBuf,
    /// Where to draw the plot (none: no plot).
    pub plot: Option<PathBuf>,
}

/// One sample of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Resident memory, MiB (mapped LMDB pages included).
    pub rss_mib: f64,
    /// Resident memory of the process's own (anonymous) pages, MiB.
    pub rss_anon_mib: f64,
    /// Open file descriptors.
    pub fds: f64,
    /// The consensus LMDB data file (`lmdb/data.mdb`), MiB.
    pub lmdb_mib: f64,
    /// The client store's LMDB data file (`client-lmdb/data.mdb`: token commitments and
    /// reveals, kept for the token-record lifetime), MiB.
    pub client_lmdb_mib: f64,
}

/// `(seconds, per node)` samples.
pub type Series = Vec<(f64, Vec<Sample>)>;

fn sample(pid: Option<u32>, node_dir: &Path) -> Sample {
    let Some(pid) = pid else {
        return Sample::default();
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as f64)
        .unwrap_or(0.0);
    let mib = |p: PathBuf| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1_048_576.0);
    Sample {
        rss_mib: kib("VmRSS") / 1024.0,
        rss_anon_mib: kib("RssAnon") / 1024.0,
        fds,
        lmdb_mib: mib(node_dir.join("lmdb").join("data.mdb")),
        client_lmdb_mib: mib(node_dir.join("client-lmdb").join("data.mdb")),
    }
}

/// Each node's growth of one quantity from the first sample at or after `warm_s` to the
/// last sample: `(absolute, relative)`.
pub fn growth_after(series: &Series, warm_s: f64, get: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    let Some(from) = series.iter().find(|s| s.0 >= warm_s) else {
        return Vec::new();
    };
    let Some(to) = series.last() else {
        return Vec::new();
    };
    from.1
        .iter()
        .zip(&to.1)
        .map(|(a, b)| {
            let (a, b) = (get(a), get(b));
            (b - a, if a > 0.0 { (b - a) / a } else { 0.0 })
        })
        .collect()
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    new_ok: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
    errors: Mutex<std::collections::BTreeMap<String, u64>>,
}

const VERIFIER: &str = "devnet";

/// Runs the soak.
pub async fn run(b: SoakBench) -> Result<Value> {
    if !b.node_binary.exists() {
        bail!(
            "{} not found: build the node first (`cargo build --release -p torus-node`)",
            b.node_binary.display()
        );
    }
    if b.users == 0
        || b.rate.is_nan()
        || b.rate <= 0.0
        || b.new_users_per_s.is_nan()
        || b.new_users_per_s < 0.0
    {
        bail!("--users, --rate must be positive and --new-users-per-s not negative");
    }
    let tmp = tempfile::tempdir().context("temporary directory")?;
    let mut opts = DevnetOptions::new(b.nodes, b.keys, tmp.path(), &b.node_binary);
    opts.batch_keys = Some(b.batch_keys);
    let mut dn = Devnet::start(opts).await.context("starting the devnet")?;
    dn.wait_for_keys(b.keys, Duration::from_secs(600), |_| {})
        .await
        .context("the initial buffer")?;
    let client = dn.client()?;
    let mint = dn.minter();
    let users: Vec<String> = (0..b.users)
        .map(|i| format!("soak-{i}@example.com"))
        .collect();
    eprintln!("  soak: assigning {} users", users.len());
    for chunk in users.chunks(25) {
        let mut set = tokio::task::JoinSet::new();
        for u in chunk {
            let (c, u) = (client.clone(), u.clone());
            set.spawn(async move { c.get_or_assign(VERIFIER, &u).await });
        }
        while let Some(r) = set.join_next().await {
            r.context("an assigning task")?.context("assigning a key")?;
        }
    }
    let counts = Arc::new(Counts::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mdbs: Vec<PathBuf> = (1..=dn.layout.n).map(|i| dn.node_dir(i)).collect();
    let pids: Vec<Option<u32>> = (1..=dn.layout.n).map(|i| dn.pid(i)).collect();
    let snapshot =
        || -> Vec<Sample> { pids.iter().zip(&mdbs).map(|(p, m)| sample(*p, m)).collect() };
    let mut series: Series = vec![(0.0, snapshot())];
    let period = Duration::from_secs_f64(1.0 / b.rate);
    let new_every =
        (b.new_users_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / b.new_users_per_s));
    let t0 = Instant::now();
    let mut next_login = Instant::now();
    let mut next_new = Instant::now();
    let mut next_sample = Instant::now() + SAMPLE_EVERY;
    let (mut i, mut fresh) = (0usize, 0u64);
    eprintln!(
        "  soak: {} logins/s over {} users for {:.0} s",
        b.rate,
        b.users,
        b.run.as_secs_f64()
    );
    while t0.elapsed() < b.run {
        let now = Instant::now();
        if now >= next_sample {
            let s = snapshot();
            let t = t0.elapsed().as_secs_f64();
            eprintln!(
                "  {t:6.0} s  rss {:.0} MiB (anon {:.0})  fds {:.0}  lmdb {:.1} MiB  client lmdb {:.1} MiB  (node 1)  logins ok {} failed {}",
                s[0].rss_mib,
                s[0].rss_anon_mib,
                s[0].fds,
                s[0].lmdb_mib,
                s[0].client_lmdb_mib,
                counts.ok.load(Ordering::Relaxed),
                counts.failed.load(Ordering::Relaxed)
            );
            series.push((t, s));
            next_sample += SAMPLE_EVERY;
        }
        let spawn = |user: String, new: bool| {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                counts.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let (c, counts, mint) = (client.clone(), counts.clone(), mint.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let t = Instant::now();
                let r = async {
                    if new {
                        c.get_or_assign(VERIFIER, &user)
                            .await
                            .map_err(|e| format!("assign: {e}"))?;
                    }
                    let token = mint(&user)?;
                    c.retrieve(VERIFIER, json!({ "verifier_id": user }), &token)
                        .await
                        .map_err(|e| format!("retrieve: {e}"))
                }
                .await;
                match r {
                    Ok(_) => {
                        counts.ok.fetch_add(1, Ordering::Relaxed);
                        if new {
                            counts.new_ok.fetch_add(1, Ordering::Relaxed);
                        }
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        let mut l = counts
                            .latencies_ms
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        // Bounded: a reservoir of the first 200,000 is plenty for percentiles.
                        if l.len() < 200_000 {
                            l.push(ms);
                        }
                    }
                    Err(e) => {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        let key: String = e
                            .chars()
                            .filter(|c| !c.is_ascii_digit())
                            .take(160)
                            .collect();
                        *counts
                            .errors
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(key)
                            .or_default() += 1;
                    }
                }
            });
        };
        if now >= next_login {
            let user = users[i % users.len()].clone();
            i += 1;
            spawn(user, false);
            next_login += period;
        }
        if let Some(every) = new_every {
            if now >= next_new {
                fresh += 1;
                spawn(format!("soak-new-{fresh}@example.com"), true);
                next_new += every;
            }
        }
        let wake = [
            Some(next_login),
            new_every.map(|_| next_new),
            Some(next_sample),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(next_login);
        tokio::time::sleep_until(wake.into()).await;
    }
    // Let the logins in flight finish.
    let _ = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
    series.push((t0.elapsed().as_secs_f64(), snapshot()));
    dn.check_alive().context("a node exited during the soak")?;
    dn.shutdown();
    let warm_s = b.run.as_secs_f64() * WARM_SHARE;
    let rss = growth_after(&series, warm_s, |s| s.rss_mib);
    let anon = growth_after(&series, warm_s, |s| s.rss_anon_mib);
    let fds = growth_after(&series, warm_s, |s| s.fds);
    let lmdb = growth_after(&series, warm_s, |s| s.lmdb_mib);
    let client = growth_after(&series, warm_s, |s| s.client_lmdb_mib);
    let mut lat = counts
        .latencies_ms
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    lat.sort_by(f64::total_cmp);
    if let Some(p) = &b.plot {
        plot(p, &series, warm_s)?;
        eprintln!("wrote {}", p.display());
    }
    let max_rel = |g: &[(f64, f64)]| g.iter().map(|x| x.1).fold(f64::MIN, f64::max);
    let max_abs = |g: &[(f64, f64)]| g.iter().map(|x| x.0).fold(f64::MIN, f64::max);
    Ok(json!({
        "bench": "soak",
        "nodes": dn.layout.n,
        "run_s": b.run.as_secs_f64(),
        "rate_per_s": b.rate,
        "users": b.users,
        "new_users_per_s": b.new_users_per_s,
        "keys": b.keys,
        "batch_keys": b.batch_keys,
        "logins_ok": counts.ok.load(Ordering::Relaxed),
        "logins_failed": counts.failed.load(Ordering::Relaxed),
        "ticks_skipped_all_slots_busy": counts.skipped.load(Ordering::Relaxed),
        "new_users_ok": counts.new_ok.load(Ordering::Relaxed),
        "login_errors": *counts.errors.lock().unwrap_or_else(|p| p.into_inner()),
        "login_ms": {
            "p50": crate::rpc::percentile(&lat, 0.5),
            "p99": crate::rpc::percentile(&lat, 0.99),
            "max": lat.last(),
        },
        "warm_s": warm_s,
        "token_record_lifetime_s": dn.layout.nodes.first().map(|p| dn.node_config(p).token_record_lifetime_s()),
        "after_warm_growth_by_node": {
            "rss_mib": rss,
            "rss_anon_mib": anon,
            "fds": fds,
            "lmdb_mib": lmdb,
            "client_lmdb_mib": client,
        },
        "after_warm_max_relative_growth": {
            "rss": max_rel(&rss),
            "rss_anon": max_rel(&anon),
            "lmdb": max_rel(&lmdb),
            "client_lmdb": max_rel(&client),
        },
        "after_warm_max_fd_growth": max_abs(&fds),
        "samples_columns": ["s", "per node: [rss_mib, rss_anon_mib, fds, lmdb_mib, client_lmdb_mib]"],
        "samples": series.iter().map(|(t, s)| json!([t, s.iter().map(|x| json!([x.rss_mib, x.rss_anon_mib, x.fds, x.lmdb_mib, x.client_lmdb_mib])).collect::<Vec<_>>()])).collect::<Vec<_>>(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}

/// How a plotted quantity is read from a sample.
type Quantity = fn(&Sample) -> f64;

/// Three panels over time, one line per node: resident memory, open descriptors and
/// the LMDB file; a vertical line marks the end of the warm-up.
pub fn plot(path: &Path, series: &Series, warm_s: f64) -> Result<()> {
    use plotters::prelude::*;
    let labels = crate::msm::register_font();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (960, 1200)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((4, 1));
        let nodes = series.first().map_or(0, |s| s.1.len());
        let end_min = series.last().map_or(1.0, |s| s.0 / 60.0).max(0.1);
        let quantities: [(&str, Quantity); 4] = [
            ("resident memory (MiB)", |s| s.rss_mib),
            ("open file descriptors", |s| s.fds),
            ("consensus LMDB file (MiB)", |s| s.lmdb_mib),
            ("client store LMDB file: token records (MiB)", |s| {
                s.client_lmdb_mib
            }),
        ];
        for (panel, (label, get)) in panels.iter().zip(quantities) {
            let top = series
                .iter()
                .flat_map(|s| s.1.iter().map(get))
                .fold(0.0f64, f64::max)
                * 1.15
                + 1.0;
            let mut b = ChartBuilder::on(panel);
            b.margin(10);
            // Without a font (no DejaVu installed) the chart is drawn without text.
            if labels {
                b.caption(label, ("sans-serif", 18))
                    .x_label_area_size(30)
                    .y_label_area_size(60);
            }
            let mut chart = b.build_cartesian_2d(0.0..end_min, 0.0..top)?;
            if labels {
                chart
                    .configure_mesh()
                    .x_desc("minutes")
                    .light_line_style(WHITE)
                    .draw()?;
            }
            chart.draw_series(LineSeries::new(
                [(warm_s / 60.0, 0.0), (warm_s / 60.0, top)],
                BLACK.mix(0.3),
            ))?;
            for n in 0..nodes {
                let color = Palette99::pick(n).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        series
                            .iter()
                            .filter_map(|(t, s)| s.get(n).map(|x| (t / 60.0, get(x)))),
                        color.stroke_width(2),
                    ))?
                    .label(format!("node {}", n + 1))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            if labels {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::LowerRight)
                    .draw()?;
            }
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("plot {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(rss: f64, fds: f64, lmdb: f64) -> Sample {
        Sample {
            rss_mib: rss,
            rss_anon_mib: rss / 2.0,
            fds,
            lmdb_mib: lmdb,
            client_lmdb_mib: lmdb * 2.0,
        }
    }

    #[test]
    fn growth_is_measured_from_the_first_sample_after_the_warm_up_to_the_last() {
        let series: Series = vec![
            (0.0, vec![s(10.0, 5.0, 1.0), s(20.0, 5.0, 1.0)]),
            (60.0, vec![s(100.0, 40.0, 4.0), s(200.0, 40.0, 4.0)]),
            (120.0, vec![s(110.0, 40.0, 4.0), s(200.0, 42.0, 4.0)]),
        ];
        let rss = growth_after(&series, 50.0, |x| x.rss_mib);
        assert_eq!(rss, vec![(10.0, 0.1), (0.0, 0.0)]);
        let fds = growth_after(&series, 50.0, |x| x.fds);
        assert_eq!(fds[1].0, 2.0);
        // No sample after the warm-up: nothing to say.
        assert!(growth_after(&series, 500.0, |x| x.rss_mib).is_empty());
    }

    #[test]
    fn a_process_is_sampled_from_proc_and_a_missing_one_gives_zeros() {
        let me = sample(Some(std::process::id()), Path::new("/nonexistent"));
        assert!(me.rss_mib > 0.0 && me.rss_anon_mib > 0.0 && me.fds > 0.0);
        assert!(me.rss_anon_mib <= me.rss_mib);
        assert_eq!((me.lmdb_mib, me.client_lmdb_mib), (0.0, 0.0));
        assert_eq!(sample(None, Path::new("/")), Sample::default());
    }

    #[test]
    fn the_plot_draws_every_node_and_quantity() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("soak.png");
        let series: Series = (0..10)
            .map(|i| {
                (
                    f64::from(i) * 10.0,
                    vec![s(50.0, 30.0, 2.0), s(60.0, 31.0, 2.5)],
                )
            })
            .collect();
        plot(&p, &series, 20.0).unwrap();
        assert!(std::fs::metadata(&p).unwrap().len() > 1_000);
    }
}
