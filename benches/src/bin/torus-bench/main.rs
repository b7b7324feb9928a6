//! `torus-bench`: speed of one node's batch work against baselines run in the
//! same process. See `benches/RESULTS.md` for recorded runs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use torus_bench::{baselines, calibrate, msm, node, peak_rss_mib};
use torus_engine::{Bls12381, Engine, HwProfile, Params, Secp256k1, Suite, VartimeMsmOffload};

#[derive(Parser)]
#[command(
    name = "torus-bench",
    about = "Benchmarks of the Torus batch engine against baselines"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Curve {
    Secp256k1,
    #[value(name = "bls12-381")]
    Bls12381,
}

#[derive(Subcommand)]
enum Cmd {
    /// One node's whole work for a batch, phase by phase, plus all baselines.
    Engine {
        #[arg(long, value_enum, default_value = "secp256k1")]
        curve: Curve,
        /// Committee size n (k = floor(n/2)+1, t = floor((n-1)/4)).
        #[arg(long, default_value_t = 9)]
        nodes: u32,
        /// Keys per batch K (default: the profile's batch_keys, else 2000).
        #[arg(long)]
        keys: Option<usize>,
        /// Keys for the naive path (it is slow; compared per key; default: 4, or
        /// 2 per thread when that is more, so every thread has work).
        #[arg(long)]
        naive_keys: Option<usize>,
        /// rayon threads for the engine, the naive path and the parallel
        /// baselines (default: the profile's, else every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed runs per phase (each phase reports the median).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        reps: u64,
        /// Receivers whose node work is measured: `n` (the largest index, the
        /// longest fold scalars: the default), `all`, or a comma list of indexes.
        /// With several, the phases are averaged over them.
        #[arg(long, default_value = "n")]
        receivers: String,
        /// log2 of the MSM baseline size.
        #[arg(long, default_value_t = 16)]
        msm_log2: u32,
        /// Skip the external baselines (engine phases only).
        #[arg(long)]
        no_baselines: bool,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Hardware profile (hw-profiles/*.toml): engine backend (GPU included),
        /// rayon threads and the default --keys.
        #[arg(long)]
        profile: Option<PathBuf>,
    },
    /// `Engine::vartime_msm` at a range of sizes on the CPU and GPU backends
    /// (GPU results checked equal to the CPU's), as JSON and a PNG plot.
    Msm {
        #[arg(long, value_enum, default_value = "secp256k1")]
        curve: Curve,
        /// Sizes: `2^a..2^b` (powers of two), `2^a`, numbers, or a comma list.
        #[arg(long, default_value = "2^10..2^16")]
        sizes: String,
        /// Backends: cpu, gpu or cpu,gpu.
        #[arg(long, default_value = "cpu,gpu")]
        backend: String,
        /// Bits of the random scalars: 256 (full width), or e.g. 142 for the
        /// folded verification check at n = 9.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=256))]
        bits: u32,
        /// Minimum repetitions per size (the median is reported); fewer only
        /// when a single run takes more than a 20 s budget.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Draw ns/point against size (log-log) as a PNG here (default: the
        /// --json path with the extension .png).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Measure this machine (under a minute) and write a hardware profile.
    Calibrate {
        /// Where to write the profile, e.g. hw-profiles/mybox.toml.
        #[arg(long)]
        out: PathBuf,
        /// Profile name (default: the file stem of --out).
        #[arg(long)]
        name: Option<String>,
        /// Tiny sizes and batch, CPU only (seconds; for tests).
        #[arg(long)]
        quick: bool,
        /// Do not look for a GPU.
        #[arg(long)]
        no_gpu: bool,
        /// Seconds of engine work one batch should take (sets batch_keys).
        #[arg(long, default_value_t = 1.0)]
        batch_seconds: f64,
    },
    /// A fresh network of `torus-node` processes on loopback filling its key buffer:
    /// wall time and keys/s (needs `cargo build --release -p torus-node` first).
    Devnet {
        /// Committee size.
        #[arg(long, default_value_t = 5)]
        nodes: u32,
        /// Keys to generate.
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        /// Keys per batch (default: the nodes' hardware profile).
        #[arg(long)]
        batch_keys: Option<u32>,
        /// Hardware profile for the nodes.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// The node binary (default: torus-node beside this executable).
        #[arg(long)]
        node_binary: Option<PathBuf>,
        /// Keep the network here instead of a temporary directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The node's commit + share path on loopback: requests/s and p50/p99 at node 1 of an
    /// in-process 5-node cluster, open-loop load at a fixed rate.
    Rpc {
        /// Requests per second sent to node 1 (per phase).
        #[arg(long, default_value_t = 500)]
        rate: u32,
        /// Seconds of load per phase.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Distinct users (keys generated and assigned first).
        #[arg(long, default_value_t = 50)]
        users: usize,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

fn write_json(path: Option<PathBuf>, out: &Value) -> Result<()> {
    if let Some(path) = path {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(out)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Msm {
            curve,
            sizes,
            backend,
            bits,
            reps,
            json,
            plot,
        } => {
            let plot = plot.or_else(|| json.as_deref().map(msm::default_plot_path));
            msm_cmd(curve, &sizes, &backend, bits, reps, json, plot)
        }
        Cmd::Calibrate {
            out,
            name,
            quick,
            no_gpu,
            batch_seconds,
        } => {
            let name = match name {
                Some(n) => n,
                None => out
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("calibrated")
                    .to_string(),
            };
            if !(f64::MIN_POSITIVE..=3600.0).contains(&batch_seconds) {
                bail!("--batch-seconds must be in (0, 3600]");
            }
            let cfg = calibrate::Calibrate {
                name,
                quick,
                no_gpu,
                batch_seconds,
            };
            let log = |s: &str| eprintln!("  [calibrate] {s}");
            let c = calibrate::calibrate(&cfg, &log)?;
            calibrate::write_profile(&c.profile, &out)?;
            println!("{}", c.profile.to_toml()?);
            eprintln!(
                "wrote {} ({:.0} keys/s, batch_keys {}, gpu {})",
                out.display(),
                c.keys_per_s,
                c.profile.batch_keys,
                if c.profile.gpu.enabled {
                    format!("on from {} points", c.profile.gpu.crossover_points)
                } else {
                    "off".into()
                }
            );
            Ok(())
        }
        Cmd::Devnet {
            nodes,
            keys,
            batch_keys,
            profile,
            node_binary,
            data_dir,
            json,
        } => {
            let node_binary = match node_binary {
                Some(p) => p,
                None => torus_bench::devnet::default_node_binary()?,
            };
            eprintln!(
                "torus-bench devnet: {nodes} nodes, {keys} keys, {}",
                node_binary.display()
            );
            let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let out = rt.block_on(torus_bench::devnet::run(torus_bench::devnet::DevnetBench {
                nodes,
                keys,
                batch_keys,
                hw_profile: profile,
                node_binary,
                data_dir,
            }))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            write_json(json, &out)
        }
        Cmd::Rpc {
            rate,
            seconds,
            users,
            json,
        } => {
            if rate == 0 || seconds == 0 {
                bail!("--rate and --seconds must be at least 1");
            }
            eprintln!("torus-bench rpc: rate {rate}/s, {seconds} s per phase, {users} users");
            let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let out = rt.block_on(torus_bench::rpc::run(torus_bench::rpc::RpcBench {
                rate,
                seconds,
                users,
            }))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            write_json(json, &out)
        }
        Cmd::Engine {
            curve,
            nodes,
            keys,
            naive_keys,
            threads,
            reps,
            receivers,
            msm_log2,
            no_baselines,
            json,
            profile,
        } => {
            let params = Params::torus(nodes).context("committee parameters")?;
            let receivers = parse_receivers(&receivers, params.n)?;
            if threads == Some(0) {
                bail!("--threads must be at least 1");
            }
            let (engine, keys, chosen) = match profile {
                None => {
                    if let Some(t) = threads {
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(t)
                            .build_global()
                            .context("sizing the rayon pool")?;
                    }
                    (Engine::new(), keys.unwrap_or(2000), None)
                }
                Some(path) => {
                    let p = HwProfile::load(&path)?;
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads.unwrap_or(p.threads))
                        .build_global()
                        .context("sizing the rayon pool from the profile")?;
                    let (engine, choice) = torus_kernels::engine_from_profile(&p);
                    eprintln!(
                        "torus-bench engine: profile {} ({}): threads {} ({} in the pool), backend: {choice}",
                        p.name,
                        path.display(),
                        p.threads,
                        rayon::current_num_threads()
                    );
                    let chosen = json!({
                        "name": p.name,
                        "path": path.display().to_string(),
                        "threads": p.threads,
                        "batch_keys": p.batch_keys,
                        "gpu_enabled": p.gpu.enabled,
                        "gpu_crossover_points": p.gpu.crossover_points,
                        "backend_choice": choice.to_string(),
                        "gpu_attached": matches!(choice, torus_kernels::BackendChoice::Gpu { .. }),
                    });
                    (engine, keys.unwrap_or(p.batch_keys), Some(chosen))
                }
            };
            if keys == 0 {
                bail!("--keys must be at least 1");
            }
            let naive_keys = naive_keys
                .unwrap_or_else(|| 4.max(2 * rayon::current_num_threads()))
                .clamp(1, keys);
            let cfg = EngineBench {
                params,
                keys,
                naive_keys,
                reps: reps as usize,
                receivers,
                msm_log2,
                baselines: !no_baselines,
            };
            let mut out = match curve {
                Curve::Secp256k1 => engine_bench::<Secp256k1>(&engine, &cfg),
                Curve::Bls12381 => engine_bench::<Bls12381>(&engine, &cfg),
            };
            if let (Some(chosen), Value::Object(m)) = (chosen, &mut out) {
                m.insert("profile".into(), chosen);
                m.insert("offload".into(), json!(engine.offload_name()));
                // MSMs sent to the GPU that failed and ran on the CPU instead.
                m.insert(
                    "offload_fallbacks".into(),
                    json!(engine.offload_fallbacks()),
                );
            }
            if let Some(path) = json {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                std::fs::write(&path, serde_json::to_string_pretty(&out)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn msm_cmd(
    curve: Curve,
    sizes: &str,
    backend: &str,
    bits: u32,
    reps: usize,
    json: Option<PathBuf>,
    plot: Option<PathBuf>,
) -> Result<()> {
    let sizes = msm::parse_sizes(sizes)?;
    let (cpu, want_gpu) = msm::parse_backends(backend)?;
    let log = |s: &str| eprintln!("  [msm] {s}");
    let mut gpu: Option<Arc<dyn VartimeMsmOffload>> = None;
    let mut adapter = None;
    let mut software = false;
    let mut skipped = None;
    let mut setup_s = None;
    let offload_supported = match curve {
        Curve::Secp256k1 => Secp256k1::OFFLOAD_MSM,
        Curve::Bls12381 => Bls12381::OFFLOAD_MSM,
    };
    if want_gpu && !offload_supported {
        // Do not compile the pipelines (minutes on llvmpipe) for nothing.
        let why = "the GPU MSM supports secp256k1 only".to_string();
        eprintln!("torus-bench msm: {why}; running the CPU backend only");
        skipped = Some(why);
    } else if want_gpu {
        log("opening a GPU adapter (pipeline compilation takes minutes on llvmpipe)");
        let (res, s) = torus_bench::timed(msm::open_gpu);
        match res {
            Ok(g) => {
                let a = g.context().adapter().clone();
                log(&format!(
                    "GPU: {} ({}, {}){} ready in {s:.1} s",
                    a.name,
                    a.backend,
                    a.device_type,
                    if a.software { ", software" } else { "" }
                ));
                software = a.software;
                adapter = Some(a.name);
                setup_s = Some(s);
                gpu = Some(Arc::new(g));
            }
            Err(reason) => {
                eprintln!("torus-bench msm: no GPU ({reason}); running the CPU backend only");
                skipped = Some(reason);
            }
        }
    }
    let mut run = match curve {
        Curve::Secp256k1 => msm::run::<Secp256k1>(&sizes, cpu, gpu, bits, reps, &log)?,
        Curve::Bls12381 => msm::run::<Bls12381>(&sizes, cpu, gpu, bits, reps, &log)?,
    };
    run.adapter = adapter;
    run.adapter_software = software;
    run.gpu_setup_s = setup_s;
    if run.gpu_skipped.is_none() {
        run.gpu_skipped = skipped;
    }
    let name = match curve {
        Curve::Secp256k1 => Secp256k1::NAME,
        Curve::Bls12381 => Bls12381::NAME,
    };
    println!(
        "{:>10} {:>8} {:>14} {:>12}",
        "points", "backend", "ns/point", "ms"
    );
    for s in &run.samples {
        println!(
            "{:>10} {:>8} {:>14.1} {:>12.3}",
            s.points,
            s.backend,
            s.ns_per_point(),
            s.seconds * 1e3
        );
    }
    if run.gpu_checked > 0 {
        println!(
            "GPU results equal to the CPU's at {} sizes",
            run.gpu_checked
        );
    }
    for (n, why) in &run.gpu_failures {
        println!("GPU FAILED at {n} points: {why}");
    }
    let out = msm::to_json(name, &run);
    write_json(json, &out)?;
    if let Some(path) = plot {
        // The adapter's name up to its first parenthesis ("llvmpipe (LLVM ...)").
        let short = run
            .adapter
            .as_deref()
            .map(|a| a.split(" (").next().unwrap_or(a).to_string());
        let title = format!(
            "{name} MSM, {}-bit scalars: {}{}",
            run.scalar_bits,
            short.map_or("cpu".to_string(), |a| format!("cpu vs {a}")),
            if run.adapter_software {
                " (software: not GPU speed)"
            } else {
                ""
            }
        );
        msm::plot(&path, &title, &run)?;
    }
    if !run.gpu_failures.is_empty() {
        bail!(
            "the GPU MSM failed at {} of {} sizes (recorded in the output)",
            run.gpu_failures.len(),
            sizes.len()
        );
    }
    Ok(())
}

/// `--receivers`: `n`, `all`, or a comma list of indexes in `1..=n`.
fn parse_receivers(spec: &str, n: u32) -> Result<Vec<u32>> {
    let spec = spec.trim();
    if spec == "n" {
        return Ok(vec![n]);
    }
    if spec == "all" {
        return Ok((1..=n).collect());
    }
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let i: u32 = item
            .parse()
            .with_context(|| format!("bad receiver {item:?} (use n, all or indexes)"))?;
        if !(1..=n).contains(&i) {
            bail!("receiver {i} is not in 1..={n}");
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    if out.is_empty() {
        bail!("no receivers in {spec:?}");
    }
    Ok(out)
}

/// What `torus-bench engine` runs.
struct EngineBench {
    params: Params,
    keys: usize,
    naive_keys: usize,
    reps: usize,
    receivers: Vec<u32>,
    msm_log2: u32,
    baselines: bool,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn engine_bench<S: Suite>(engine: &Engine, cfg: &EngineBench) -> Value {
    let (params, keys, reps) = (cfg.params, cfg.keys, cfg.reps);
    let threads = rayon::current_num_threads();
    eprintln!(
        "torus-bench engine: curve {} n={} k={} t={} K={keys} backend={} simd={} threads={threads} reps={reps} receivers={:?}",
        S::NAME,
        params.n,
        params.k,
        params.t,
        engine.backend_name(),
        engine.simd_backend(),
        cfg.receivers,
    );
    let progress = |s: &str| eprintln!("  [setup] {s}");
    let all = node::prepare_dealings::<S>(engine, params, keys, &progress);
    // Per receiver: the median of `reps` runs per phase; then the mean over receivers.
    let mut per_receiver = Vec::new();
    let mut phase_means: node::Phases = node::Phases::new();
    let mut naive_s_sum = 0.0;
    for &me in &cfg.receivers {
        let inputs = node::inputs_for::<S>(engine, &all, me, &progress);
        let mut runs: Vec<node::Phases> = Vec::new();
        let mut last = None;
        for r in 0..reps {
            eprintln!("  [run] node {me}: run {}/{reps}", r + 1);
            let (ph, out) = node::run_node_full::<S>(engine, &inputs);
            runs.push(ph);
            last = Some(out);
        }
        let out = last.expect("at least one run");
        let mut med = node::Phases::new();
        for name in runs[0].keys() {
            let mut v: Vec<f64> = runs.iter().map(|r| r[name]).collect();
            med.insert(name, median(&mut v));
        }
        let mut totals: Vec<f64> = runs.iter().map(|r| r.values().sum()).collect();
        let total: f64 = med.values().sum();
        eprintln!(
            "  [run] naive node {me} on {} keys, {threads} threads",
            cfg.naive_keys
        );
        let mut naive: Vec<f64> = (0..reps)
            .map(|_| node::run_naive::<S>(&inputs, &out, cfg.naive_keys))
            .collect();
        let naive_s = median(&mut naive);
        naive_s_sum += naive_s;
        for (name, v) in &med {
            *phase_means.entry(name).or_insert(0.0) += v / cfg.receivers.len() as f64;
        }
        per_receiver.push(json!({
            "receiver": me,
            "node_total_s": total,
            "node_keys_per_s": keys as f64 / total,
            "run_totals_s": totals.clone(),
            "run_total_median_s": median(&mut totals),
            "phases": med.iter().map(|(k, v)| (format!("{k}_s"), json!(v))).collect::<Map<_, _>>(),
            "naive_s": naive_s,
            "naive_keys_per_s": cfg.naive_keys as f64 / naive_s,
        }));
    }
    let nrec = cfg.receivers.len() as f64;
    let total: f64 = phase_means.values().sum();
    let node_keys_per_s = keys as f64 / total;
    let naive_keys_per_s = cfg.naive_keys as f64 / (naive_s_sum / nrec);
    let mut m = Map::new();
    m.insert("curve".into(), json!(S::NAME));
    m.insert("n".into(), json!(params.n));
    m.insert("k".into(), json!(params.k));
    m.insert("t".into(), json!(params.t));
    m.insert("keys".into(), json!(keys));
    m.insert("threads".into(), json!(threads));
    m.insert("backend".into(), json!(engine.backend_name()));
    m.insert("simd_backend".into(), json!(engine.simd_backend()));
    m.insert("reps".into(), json!(reps));
    m.insert(
        "statistic".into(),
        json!("per phase: median of reps runs; then the mean over measured_receivers"),
    );
    m.insert("measured_receivers".into(), json!(cfg.receivers));
    m.insert(
        "fold_scalar_bits".into(),
        json!(torus_bench::msm::fold_scalar_bits(&params)),
    );
    m.insert("node_total_s".into(), json!(total));
    m.insert("node_keys_per_s".into(), json!(node_keys_per_s));
    m.insert(
        "node_keys_per_s_per_core".into(),
        json!(node_keys_per_s / threads as f64),
    );
    m.insert("naive_keys".into(), json!(cfg.naive_keys));
    m.insert("naive_threads".into(), json!(threads));
    m.insert("naive_keys_per_s".into(), json!(naive_keys_per_s));
    m.insert(
        "naive_keys_per_s_per_core".into(),
        json!(naive_keys_per_s / threads as f64),
    );
    m.insert(
        "speedup_vs_naive".into(),
        json!(node_keys_per_s / naive_keys_per_s),
    );
    let mut ph = Map::new();
    for (k, v) in &phase_means {
        ph.insert(format!("{k}_s"), json!(v));
        m.insert(format!("phase_{k}_s"), json!(v));
    }
    m.insert("phases".into(), Value::Object(ph));
    m.insert("receivers".into(), Value::Array(per_receiver));
    println!(
        "node work at receiver(s) {:?}, median of {reps} runs per phase, {threads} threads",
        cfg.receivers
    );
    println!("{:<28} {:>12} {:>14}", "phase", "seconds", "keys/s");
    for (k, v) in &phase_means {
        println!("{:<28} {:>12.4} {:>14.1}", k, v, keys as f64 / v);
    }
    println!(
        "{:<28} {:>12.4} {:>14.1}",
        "node total", total, node_keys_per_s
    );
    println!(
        "{:<28} {:>12} {:>14.1}",
        "node total per core",
        "",
        node_keys_per_s / threads as f64
    );
    println!(
        "{:<28} {:>12.4} {:>14.2}",
        format!("naive ({} keys)", cfg.naive_keys),
        cfg.naive_keys as f64 / naive_keys_per_s,
        naive_keys_per_s
    );
    println!(
        "speedup vs naive (both on {threads} threads): {:.1}x",
        node_keys_per_s / naive_keys_per_s
    );
    if cfg.baselines {
        baselines_json::<S>(&mut m, cfg, threads);
    }
    if let Some(rss) = peak_rss_mib() {
        m.insert("peak_rss_mib".into(), json!(rss));
        println!("peak RSS: {rss:.0} MiB");
    }
    Value::Object(m)
}

/// The external baselines, side by side with our kernels (medians of `cfg.reps`).
fn baselines_json<S: Suite>(m: &mut Map<String, Value>, cfg: &EngineBench, threads: usize) {
    let reps = cfg.reps.max(1);
    let msm_n = 1usize << cfg.msm_log2;
    let ct_n = 20_000;
    eprintln!(
        "  [baselines] fixed base ({ct_n} commitments) and libsecp256k1 {}",
        baselines::LIBSECP256K1_VERSION
    );
    let commit_us = baselines::commit_us::<S>(ct_n, reps);
    let commit_single_us = baselines::commit_single_call_us::<S>(2_000);
    let lib = baselines::libsecp256k1_gen(ct_n, reps);
    let lib_us = lib.gen_us;
    m.insert(
        "libsecp256k1_version".into(),
        json!(baselines::LIBSECP256K1_VERSION),
    );
    m.insert(
        "secp256k1_crate_version".into(),
        json!(baselines::SECP256K1_CRATE_VERSION),
    );
    m.insert(
        "secp256k1_sys_version".into(),
        json!(baselines::SECP256K1_SYS_VERSION),
    );
    m.insert("commit_us".into(), json!(commit_us));
    m.insert("commit_batch".into(), json!(ct_n));
    m.insert("commit_single_call_us".into(), json!(commit_single_us));
    m.insert("libsecp256k1_gen_us".into(), json!(lib_us));
    m.insert(
        "libsecp256k1_pubkey_create_us".into(),
        json!(lib.pubkey_create_us),
    );
    m.insert(
        "libsecp256k1_rerandomize_us".into(),
        json!(lib.rerandomize_us),
    );
    m.insert(
        "commit_ratio_vs_libsecp256k1_pubkey_create".into(),
        json!(commit_us / lib.pubkey_create_us),
    );
    m.insert(
        "commit_ratio_vs_libsecp256k1".into(),
        json!(commit_us / lib_us),
    );
    m.insert(
        "commit_single_call_ratio_vs_libsecp256k1".into(),
        json!(commit_single_us / lib_us),
    );
    println!(
        "commit f*G+f'*H (1 thread): {commit_us:.2} us amortised over {ct_n}, {commit_single_us:.2} us alone; libsecp256k1 {} gen mult: {lib_us:.2} us ({:.2} us per PublicKey::from_secret_key minus {:.2} us of context re-randomization); ratios {:.2} (amortised), {:.2} (single call)",
        baselines::LIBSECP256K1_VERSION,
        lib.pubkey_create_us,
        lib.rerandomize_us,
        commit_us / lib_us,
        commit_single_us / lib_us
    );
    if S::NAME == Bls12381::NAME {
        let n = 2_000;
        let old = baselines::bls_commit_blst_mult_us(n, reps);
        let new = baselines::commit_us::<Bls12381>(n, reps);
        m.insert("bls_commit_us".into(), json!(new));
        m.insert("bls_commit_blst_mult_us".into(), json!(old));
        m.insert("bls_commit_ratio_vs_blst_mult".into(), json!(new / old));
        println!(
            "bls12-381 commit f*G+f'*H (1 thread, {n} per call): fixed-base tables {new:.1} us, two blst multiplications {old:.1} us, ratio {:.2}",
            new / old
        );
    }
    let params = cfg.params;
    let msm_log2 = cfg.msm_log2;
    eprintln!("  [baselines] MSM at 2^{msm_log2} points on {threads} threads");
    let (ours, ark) = baselines::secp_msm_vs_arkworks(msm_n, 256, reps);
    let bits_short = torus_bench::msm::fold_scalar_bits(&params);
    let (ours_short, ark_short) = baselines::secp_msm_vs_arkworks(msm_n, bits_short, reps);
    m.insert("msm_points".into(), json!(msm_n));
    m.insert("msm_threads".into(), json!(threads));
    m.insert("msm_ns_per_point".into(), json!(ours));
    m.insert("arkworks_msm_ns_per_point".into(), json!(ark));
    m.insert("msm_ratio_vs_arkworks".into(), json!(ours / ark));
    m.insert("msm_short_scalar_bits".into(), json!(bits_short));
    m.insert("msm_short_ns_per_point".into(), json!(ours_short));
    m.insert("arkworks_msm_short_ns_per_point".into(), json!(ark_short));
    m.insert(
        "msm_short_ratio_vs_arkworks".into(),
        json!(ours_short / ark_short),
    );
    println!(
        "secp256k1 MSM 2^{msm_log2}: ours {ours:.1} ns/pt, arkworks {ark:.1} ns/pt, ratio {:.3}",
        ours / ark
    );
    println!(
        "secp256k1 MSM 2^{msm_log2} ({bits_short}-bit scalars): ours {ours_short:.1} ns/pt, arkworks {ark_short:.1} ns/pt, ratio {:.3}",
        ours_short / ark_short
    );
    let (bo, bb) = baselines::bls_msm_vs_blstrs(msm_n, 256, reps);
    let (bos, bbs) = baselines::bls_msm_vs_blstrs(msm_n, bits_short, reps);
    m.insert("bls_msm_ns_per_point".into(), json!(bo));
    m.insert("blstrs_msm_ns_per_point".into(), json!(bb));
    m.insert("bls_msm_ratio_vs_blstrs".into(), json!(bo / bb));
    m.insert("bls_msm_short_ns_per_point".into(), json!(bos));
    m.insert("blstrs_msm_short_ns_per_point".into(), json!(bbs));
    m.insert("bls_msm_short_ratio_vs_blstrs".into(), json!(bos / bbs));
    m.insert(
        "blstrs_baseline".into(),
        json!("blst p1_affines::mult (blstrs' multi_exp kernel): affine points and scalar bytes prepared outside the timed call, nbits = the scalars' real bit length"),
    );
    println!(
        "bls12-381 MSM 2^{msm_log2}: ours {bo:.1} ns/pt, blst {bb:.1} ns/pt, ratio {:.3}",
        bo / bb
    );
    println!("bls12-381 MSM 2^{msm_log2} ({bits_short}-bit scalars): ours {bos:.1}, blst {bbs:.1}, ratio {:.3}", bos / bbs);
}
