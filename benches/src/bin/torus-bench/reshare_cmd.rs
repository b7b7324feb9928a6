//! `torus-bench reshare`: one node's resharing work for a batch (issue 12), per
//! phase, the median of the runs.

use super::*;
use engine_cmd::median;
use torus_bench::reshare;

/// What `torus-bench reshare` runs.
pub(crate) struct ReshareBench {
    pub(crate) old: Params,
    pub(crate) new: Params,
    pub(crate) keys: usize,
    pub(crate) reps: usize,
    pub(crate) me: u32,
}

/// The goal of issue 12 for `--nodes 9 --keys 2000` on 2 cores.
const GOAL_KEYS_PER_S: f64 = 1500.0;

pub(crate) fn reshare_bench<S: Suite>(engine: &Engine, cfg: &ReshareBench) -> Result<Value> {
    let (old, new, keys, reps, me) = (cfg.old, cfg.new, cfg.keys, cfg.reps, cfg.me);
    let threads = rayon::current_num_threads();
    eprintln!(
        "torus-bench reshare: curve {} old n={} k={} t={} -> new n={} k={} t={}, K={keys}, node {me}, backend={} simd={} threads={threads} reps={reps}",
        S::NAME,
        old.n,
        old.k,
        old.t,
        new.n,
        new.k,
        new.t,
        engine.backend_name(),
        engine.simd_backend(),
    );
    let progress = |s: &str| eprintln!("  [setup] {s}");
    let inputs = reshare::prepare::<S>(engine, old, new, keys, me, &progress)?;
    let mut runs: Vec<node::Phases> = Vec::new();
    for r in 0..reps {
        eprintln!("  [run] node {me}: run {}/{reps}", r + 1);
        runs.push(reshare::run::<S>(engine, &inputs)?);
    }
    let mut med = node::Phases::new();
    if let Some(first) = runs.first() {
        for name in first.keys() {
            let mut v: Vec<f64> = runs.iter().filter_map(|r| r.get(name).copied()).collect();
            med.insert(name, median(&mut v));
        }
    }
    let mut totals: Vec<f64> = runs.iter().map(|r| r.values().sum()).collect();
    let total: f64 = med.values().sum();
    let keys_per_s = keys as f64 / total;
    println!("node {me} resharing, median of {reps} runs per phase, {threads} threads");
    println!("{:<26} {:>14} {:>14}", "phase", "seconds", "keys/s");
    for (name, s) in &med {
        println!("{name:<26} {s:>14.4} {:>14.1}", keys as f64 / s);
    }
    println!("{:<26} {total:>14.4} {keys_per_s:>14.1}", "node total");
    println!(
        "{:<26} {:>14} {:>14.1}",
        "node total per core",
        "",
        keys_per_s / threads as f64
    );
    println!("every one of the {keys} user public keys unchanged after resharing");
    let mut m = Map::new();
    m.insert("curve".into(), json!(S::NAME));
    m.insert("old".into(), json!({ "n": old.n, "k": old.k, "t": old.t }));
    m.insert("new".into(), json!({ "n": new.n, "k": new.k, "t": new.t }));
    m.insert("keys".into(), json!(keys));
    m.insert("threads".into(), json!(threads));
    m.insert("backend".into(), json!(engine.backend_name()));
    m.insert("simd_backend".into(), json!(engine.simd_backend()));
    m.insert("reps".into(), json!(reps));
    m.insert("statistic".into(), json!("per phase: median of reps runs"));
    m.insert("measured_node".into(), json!(me));
    m.insert(
        "dealers".into(),
        json!(format!("all {} old nodes deal and are combined", old.n)),
    );
    m.insert(
        "phases".into(),
        json!(med
            .iter()
            .map(|(k, v)| (format!("{k}_s"), json!(v)))
            .collect::<Map<_, _>>()),
    );
    m.insert("node_total_s".into(), json!(total));
    m.insert("run_total_median_s".into(), json!(median(&mut totals)));
    m.insert("run_totals_s".into(), json!(totals));
    m.insert("node_keys_per_s".into(), json!(keys_per_s));
    m.insert(
        "node_keys_per_s_per_core".into(),
        json!(keys_per_s / threads as f64),
    );
    m.insert("goal_node_keys_per_s".into(), json!(GOAL_KEYS_PER_S));
    m.insert("public_keys_unchanged".into(), json!(keys));
    if let Some(rss) = peak_rss_mib() {
        m.insert("peak_rss_mib".into(), json!(rss));
    }
    Ok(Value::Object(m))
}
