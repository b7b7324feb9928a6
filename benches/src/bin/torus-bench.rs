//! `torus-bench`: speed of one node's batch work against baselines run in the
//! same process. See `benches/RESULTS.md` for recorded runs.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};
use torus_bench::{baselines, node, peak_rss_mib};
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

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
        /// Keys per batch K.
        #[arg(long, default_value_t = 2000)]
        keys: usize,
        /// Keys for the naive path (it is slow; compared per key).
        #[arg(long, default_value_t = 4)]
        naive_keys: usize,
        /// log2 of the MSM baseline size.
        #[arg(long, default_value_t = 16)]
        msm_log2: u32,
        /// Skip the external baselines (engine phases only).
        #[arg(long)]
        no_baselines: bool,
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
            msm_log2,
            no_baselines,
            json,
        } => {
            let params = Params::torus(nodes).context("committee parameters")?;
            if keys == 0 {
                bail!("--keys must be at least 1");
            }
            let out = match curve {
                Curve::Secp256k1 => engine_bench::<Secp256k1>(
                    params,
                    keys,
                    naive_keys.min(keys),
                    msm_log2,
                    !no_baselines,
                ),
                Curve::Bls12381 => engine_bench::<Bls12381>(
                    params,
                    keys,
                    naive_keys.min(keys),
                    msm_log2,
                    !no_baselines,
                ),
            };
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

fn engine_bench<S: Suite>(
    params: Params,
    keys: usize,
    naive_keys: usize,
    msm_log2: u32,
    baselines_on: bool,
) -> Value {
    let engine = Engine::new();
    let threads = rayon::current_num_threads();
    eprintln!(
        "torus-bench engine: curve {} n={} k={} t={} K={keys} backend={} threads={threads}",
        S::NAME,
        params.n,
        params.k,
        params.t,
        engine.backend_name()
    );
    let progress = |s: &str| eprintln!("  [setup] {s}");
    let inputs = node::prepare::<S>(&engine, params, keys, &progress);
    eprintln!("  [run] node work");
    let (phases, shares) = node::run_node::<S>(&engine, &inputs);
    let total: f64 = phases.values().sum();
    let node_keys_per_s = keys as f64 / total;
    eprintln!("  [run] naive node on {naive_keys} keys");
    let naive_s = node::run_naive::<S>(&inputs, &shares.commitments, naive_keys);
    let naive_keys_per_s = naive_keys as f64 / naive_s;
    let mut m = Map::new();
    m.insert("curve".into(), json!(S::NAME));
    m.insert("n".into(), json!(params.n));
    m.insert("k".into(), json!(params.k));
    m.insert("t".into(), json!(params.t));
    m.insert("keys".into(), json!(keys));
    m.insert("threads".into(), json!(threads));
    m.insert("backend".into(), json!(engine.backend_name()));
    m.insert("node_total_s".into(), json!(total));
    m.insert("node_keys_per_s".into(), json!(node_keys_per_s));
    m.insert("naive_keys".into(), json!(naive_keys));
    m.insert("naive_keys_per_s".into(), json!(naive_keys_per_s));
    m.insert(
        "speedup_vs_naive".into(),
        json!(node_keys_per_s / naive_keys_per_s),
    );
    let mut ph = Map::new();
    for (k, v) in &phases {
        ph.insert(format!("{k}_s"), json!(v));
        m.insert(format!("phase_{k}_s"), json!(v));
    }
    m.insert("phases".into(), Value::Object(ph));
    println!("{:<28} {:>12} {:>14}", "phase", "seconds", "keys/s");
    for (k, v) in &phases {
        println!("{:<28} {:>12.4} {:>14.1}", k, v, keys as f64 / v);
    }
    println!(
        "{:<28} {:>12.4} {:>14.1}",
        "node total", total, node_keys_per_s
    );
    println!(
        "{:<28} {:>12.4} {:>14.2}",
        format!("naive ({naive_keys} keys)"),
        naive_s,
        naive_keys_per_s
    );
    println!(
        "speedup vs naive: {:.1}x",
        node_keys_per_s / naive_keys_per_s
    );
    if baselines_on {
        let msm_n = 1usize << msm_log2;
        let ct_n = 20_000;
        eprintln!("  [baselines] fixed base ({ct_n} commitments) and libsecp256k1");
        let commit_us = baselines::commit_us::<S>(ct_n);
        let lib_us = baselines::libsecp256k1_gen_us(ct_n);
        m.insert("commit_us".into(), json!(commit_us));
        m.insert("libsecp256k1_gen_us".into(), json!(lib_us));
        m.insert(
            "commit_ratio_vs_libsecp256k1".into(),
            json!(commit_us / lib_us),
        );
        println!("commit f*G+f'*H: {commit_us:.2} us; libsecp256k1 gen mult: {lib_us:.2} us; ratio {:.2}", commit_us / lib_us);
        eprintln!("  [baselines] MSM at 2^{msm_log2} points");
        let (ours, ark) = baselines::secp_msm_vs_arkworks(msm_n, 256, 5);
        let bits_short =
            128 + ((params.k - 1) as f64 * f64::from(params.n).log2()).ceil() as u32 + 1;
        let (ours_short, ark_short) = baselines::secp_msm_vs_arkworks(msm_n, bits_short, 5);
        m.insert("msm_points".into(), json!(msm_n));
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
        println!("secp256k1 MSM 2^{msm_log2}: ours {ours:.1} ns/pt, arkworks {ark:.1} ns/pt, ratio {:.3}", ours / ark);
        println!(
            "secp256k1 MSM 2^{msm_log2} ({bits_short}-bit scalars): ours {ours_short:.1} ns/pt, arkworks {ark_short:.1} ns/pt, ratio {:.3}",
            ours_short / ark_short
        );
        let (bo, bb) = baselines::bls_msm_vs_blstrs(msm_n, 256, 5);
        let (bos, bbs) = baselines::bls_msm_vs_blstrs(msm_n, bits_short, 5);
        m.insert("bls_msm_ns_per_point".into(), json!(bo));
        m.insert("blstrs_msm_ns_per_point".into(), json!(bb));
        m.insert("bls_msm_ratio_vs_blstrs".into(), json!(bo / bb));
        m.insert("bls_msm_short_ratio_vs_blstrs".into(), json!(bos / bbs));
        println!(
            "bls12-381 MSM 2^{msm_log2}: ours {bo:.1} ns/pt, blstrs {bb:.1} ns/pt, ratio {:.3}",
            bo / bb
        );
        println!("bls12-381 MSM 2^{msm_log2} ({bits_short}-bit scalars): ours {bos:.1}, blstrs {bbs:.1}, ratio {:.3}", bos / bbs);
    }
    if let Some(rss) = peak_rss_mib() {
        m.insert("peak_rss_mib".into(), json!(rss));
        println!("peak RSS: {rss:.0} MiB");
    }
    Value::Object(m)
}
