//! `torus-bench engine`: one node's whole batch work per phase (median of the
//! runs), its naive baseline on the same threads, and the external baselines.

use super::*;

/// `--receivers`: `n`, `all`, or a comma list of indexes in `1..=n`.
pub(crate) fn parse_receivers(spec: &str, n: u32) -> Result<Vec<u32>> {
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
pub(crate) struct EngineBench {
    pub(crate) params: Params,
    pub(crate) keys: usize,
    pub(crate) naive_keys: usize,
    pub(crate) reps: usize,
    pub(crate) receivers: Vec<u32>,
    pub(crate) msm_log2: u32,
    pub(crate) baselines: bool,
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(crate) fn engine_bench<S: Suite>(engine: &Engine, cfg: &EngineBench) -> Value {
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
