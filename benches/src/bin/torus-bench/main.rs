//! `torus-bench`: speed of one node's batch work against baselines run in the
//! same process. See `benches/RESULTS.md` for recorded runs.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use torus_bench::{baselines, calibrate, msm, node, peak_rss_mib};
use torus_engine::{Bls12381, Engine, HwProfile, Params, Secp256k1, Suite, VartimeMsmOffload};

mod engine_cmd;
mod reshare_cmd;
use engine_cmd::{engine_bench, parse_receivers, EngineBench};
use reshare_cmd::{reshare_bench, ReshareBench};

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
    /// One node's resharing work for a batch (it is in the old committee and
    /// the new one): its dealing, every old dealer's checks, the combination,
    /// and the public keys, checked unchanged for every key.
    Reshare {
        #[arg(long, value_enum, default_value = "secp256k1")]
        curve: Curve,
        /// Old committee size n (k = floor(n/2)+1, t = floor((n-1)/4)).
        #[arg(long, default_value_t = 9)]
        nodes: u32,
        /// New committee size (default: --nodes).
        #[arg(long)]
        new_nodes: Option<u32>,
        /// Keys per batch K.
        #[arg(long, default_value_t = 2000)]
        keys: usize,
        /// rayon threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed runs (each phase reports the median).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        reps: u64,
        /// The measured node, in both committees (default: the largest index in
        /// both: the longest fold scalars).
        #[arg(long)]
        node: Option<u32>,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
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
        /// Users who log in once the buffer is full (and 20 s of quiet), one after
        /// another, for the lookup, CommitmentRequest and ShareRequest latencies (0: none).
        #[arg(long, default_value_t = 500)]
        logins: usize,
        /// Run each node on its own host (a Linux network namespace; needs root), every
        /// link between hosts, and between the client and each node, through a relay
        /// with the delay, jitter and loss below.
        #[arg(long)]
        netns: bool,
        /// One-way delay per link in milliseconds (--netns; a round trip costs twice).
        #[arg(long, default_value_t = 0, requires = "netns")]
        delay_ms: u64,
        /// Up to this much more or less delay per chunk, in milliseconds (--netns).
        #[arg(long, default_value_t = 0, requires = "netns")]
        jitter_ms: u64,
        /// Percentage of chunks that wait one retransmission timeout (--netns).
        #[arg(long, default_value_t = 0.0, requires = "netns")]
        loss_pct: f64,
        /// Seed of the links' jitter and loss draws (--netns).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// A network of `torus-node` processes under random kills, pauses, partitions and
    /// slow links (never more than t nodes at once) while users log in, with its
    /// invariants checked all along (needs `cargo build --release -p torus-node` first).
    Chaos {
        /// Committee size.
        #[arg(long, default_value_t = 7)]
        nodes: u32,
        /// Minutes of faults and logins (the last fifth without faults).
        #[arg(long, default_value_t = 2.0)]
        minutes: f64,
        /// Seed of the fault schedule (the same seed, the same schedule).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keys in each node's buffer.
        #[arg(long, default_value_t = 200)]
        keys: u64,
        /// Keys per batch.
        #[arg(long, default_value_t = 50)]
        batch_keys: u32,
        /// One host per node (network namespaces; needs root).
        #[arg(long)]
        netns: bool,
        /// One-way delay of every link in milliseconds, outside faults.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Up to this much more or less delay per chunk, in milliseconds.
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// Percentage of chunks that wait one retransmission timeout.
        #[arg(long, default_value_t = 0.0)]
        loss_pct: f64,
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
    /// A network of `torus-node` processes under steady login load for minutes: every
    /// node's memory, open descriptors and LMDB file every 10 s, and a PNG of them
    /// (needs `cargo build --release -p torus-node` first).
    Soak {
        /// Committee size.
        #[arg(long, default_value_t = 5)]
        nodes: u32,
        /// Minutes of load (the first fifth counts as warm-up).
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Logins per second of returning users (lookup, commitments and shares at every
        /// node).
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Returning users (keys assigned before the load starts).
        #[arg(long, default_value_t = 200)]
        users: usize,
        /// New users (new keys) per second on top.
        #[arg(long, default_value_t = 0.0)]
        new_users_per_s: f64,
        /// Keys in each node's buffer.
        #[arg(long, default_value_t = 1000)]
        keys: u64,
        /// Keys per batch.
        #[arg(long, default_value_t = 250)]
        batch_keys: u32,
        /// The node binary (default: torus-node beside this executable).
        #[arg(long)]
        node_binary: Option<PathBuf>,
        /// Write the results as JSON here (and the plot beside it as .png).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Where to draw the plot (default: the JSON's path with .png).
        #[arg(long)]
        plot: Option<PathBuf>,
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
            logins,
            netns,
            delay_ms,
            jitter_ms,
            loss_pct,
            seed,
            json,
        } => {
            let node_binary = match node_binary {
                Some(p) => p,
                None => torus_bench::devnet::default_node_binary()?,
            };
            let hosts = if netns {
                let shape =
                    torus_node::devnet::link::LinkShape::from_ms(delay_ms, jitter_ms, loss_pct)
                        .map_err(anyhow::Error::msg)?;
                // Before the runtime's threads exist, so that they all live in it.
                torus_node::devnet::netns::enter_private_network()
                    .context("--netns: a private network namespace")?;
                Some((shape, seed))
            } else {
                None
            };
            eprintln!(
                "torus-bench devnet: {nodes} nodes, {keys} keys, {}{}",
                node_binary.display(),
                if netns {
                    format!(", one host per node, links {delay_ms} ms ± {jitter_ms} ms, {loss_pct} % loss")
                } else {
                    String::new()
                }
            );
            let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let out = rt.block_on(torus_bench::devnet::run(torus_bench::devnet::DevnetBench {
                nodes,
                keys,
                batch_keys,
                hw_profile: profile,
                node_binary,
                data_dir,
                logins,
                hosts,
            }))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            write_json(json, &out)
        }
        Cmd::Chaos {
            nodes,
            minutes,
            seed,
            keys,
            batch_keys,
            netns,
            delay_ms,
            jitter_ms,
            loss_pct,
            node_binary,
            data_dir,
            json,
        } => {
            let links = torus_node::devnet::link::LinkShape::from_ms(delay_ms, jitter_ms, loss_pct)
                .map_err(anyhow::Error::msg)?;
            if !(0.1..=24.0 * 60.0).contains(&minutes) {
                bail!("--minutes must be 0.1 to 1440");
            }
            if keys == 0 || batch_keys == 0 {
                bail!("--keys and --batch-keys must be at least 1");
            }
            let node_binary = match node_binary {
                Some(p) => p,
                None => torus_bench::devnet::default_node_binary()?,
            };
            if netns {
                torus_node::devnet::netns::enter_private_network()
                    .context("--netns: a private network namespace")?;
            }
            eprintln!("torus-bench chaos: {nodes} nodes, {minutes} min, seed {seed}");
            let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let out = rt.block_on(torus_bench::chaos::run(torus_bench::chaos::ChaosBench {
                nodes,
                run: std::time::Duration::from_secs_f64(minutes * 60.0),
                seed,
                node_binary,
                keys,
                batch_keys,
                netns,
                links,
                data_dir,
            }))?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            write_json(json, &out)?;
            let v = out["violations"].as_u64().unwrap_or(u64::MAX);
            if v > 0 {
                bail!("{v} invariant violations (see violation_list)");
            }
            Ok(())
        }
        Cmd::Soak {
            nodes,
            minutes,
            rate,
            users,
            new_users_per_s,
            keys,
            batch_keys,
            node_binary,
            json,
            plot,
        } => {
            if !(0.1..=24.0 * 60.0).contains(&minutes) {
                bail!("--minutes must be 0.1 to 1440");
            }
            if keys == 0 || batch_keys == 0 {
                bail!("--keys and --batch-keys must be at least 1");
            }
            let node_binary = match node_binary {
                Some(p) => p,
                None => torus_bench::devnet::default_node_binary()?,
            };
            let plot = plot.or_else(|| json.as_ref().map(|j| j.with_extension("png")));
            eprintln!("torus-bench soak: {nodes} nodes, {minutes} min, {rate} logins/s");
            let rt = tokio::runtime::Runtime::new().context("tokio runtime")?;
            let out = rt.block_on(torus_bench::soak::run(torus_bench::soak::SoakBench {
                nodes,
                run: std::time::Duration::from_secs_f64(minutes * 60.0),
                rate,
                users,
                new_users_per_s,
                keys,
                batch_keys,
                node_binary,
                plot,
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
        Cmd::Reshare {
            curve,
            nodes,
            new_nodes,
            keys,
            threads,
            reps,
            node,
            json,
        } => {
            let old = Params::torus(nodes).context("old committee parameters")?;
            let new =
                Params::torus(new_nodes.unwrap_or(nodes)).context("new committee parameters")?;
            if keys == 0 {
                bail!("--keys must be at least 1");
            }
            if let Some(t) = threads {
                if t == 0 {
                    bail!("--threads must be at least 1");
                }
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build_global()
                    .context("sizing the rayon pool")?;
            }
            let both = old.n.min(new.n);
            let me = node.unwrap_or(both);
            if !(1..=both).contains(&me) {
                bail!("--node {me} is not in both committees (1..={both})");
            }
            let engine = Engine::new();
            let cfg = ReshareBench {
                old,
                new,
                keys,
                reps: reps as usize,
                me,
            };
            let out = match curve {
                Curve::Secp256k1 => reshare_bench::<Secp256k1>(&engine, &cfg)?,
                Curve::Bls12381 => reshare_bench::<Bls12381>(&engine, &cfg)?,
            };
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
