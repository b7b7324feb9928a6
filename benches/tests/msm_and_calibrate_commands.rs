//! `torus-bench msm`, `calibrate` and `engine --profile` run end to end and write
//! outputs that say what was measured. The GPU is kept out: the Vulkan loader is
//! pointed at a driver list that does not exist, so no adapter is found and the
//! commands must take their CPU fallbacks (compiling the MSM pipelines on llvmpipe
//! takes minutes; `kernels/tests` cover the GPU results themselves).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use torus_engine::HwProfile;

fn bench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_torus-bench"));
    // No Vulkan driver: wgpu sees no adapter (the loader honours both names).
    c.env("VK_ICD_FILENAMES", "/nonexistent/torus-bench-test-icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/torus-bench-test-icd.json");
    c
}

fn run_ok(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "torus-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn msm_writes_json_and_a_plot_next_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("msm.json");
    // --backend cpu,gpu without an adapter: the CPU runs and the JSON says why
    // the GPU did not. No --plot: the PNG goes next to the JSON.
    let out = run_ok(
        bench()
            .args(["msm", "--curve", "secp256k1", "--sizes", "2^6..2^7,100"])
            .args(["--backend", "cpu,gpu", "--bits", "142", "--reps", "1"])
            .arg("--json")
            .arg(&json),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no GPU"),
        "the missing adapter is reported"
    );
    let v = read_json(&json);
    assert_eq!(v["curve"], "secp256k1");
    assert_eq!(v["scalar_bits"], 142);
    assert!(v["adapter"].is_null());
    assert!(
        v["gpu_skipped"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert_eq!(v["gpu_results_checked_equal_to_cpu"], 0);
    let rows = v["results"].as_array().unwrap();
    let sizes: Vec<u64> = rows.iter().map(|r| r["points"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![64, 100, 128], "sorted, one cpu row per size");
    for r in rows {
        assert_eq!(r["backend"], "cpu");
        let (secs, ns) = (
            r["seconds"].as_f64().unwrap(),
            r["ns_per_point"].as_f64().unwrap(),
        );
        let n = r["points"].as_f64().unwrap();
        assert!(secs > 0.0);
        assert!((ns - secs * 1e9 / n).abs() <= 1e-6 * ns, "{r}");
        assert_eq!(r["log2_points"].as_f64().unwrap(), n.log2());
        assert!(r["reps"].as_u64().unwrap() >= 1);
    }
    let png = std::fs::read(dir.path().join("msm.png")).unwrap();
    assert_eq!(png_size(&png), (960, 600));
}

#[test]
fn msm_gpu_only_on_bls_falls_back_to_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bls.json");
    let png = dir.path().join("elsewhere").join("bls.png");
    run_ok(
        bench()
            .args(["msm", "--curve", "bls12-381", "--sizes", "2^5"])
            .args(["--backend", "gpu", "--reps", "1", "--json"])
            .arg(&json)
            .arg("--plot")
            .arg(&png),
    );
    let v = read_json(&json);
    assert!(v["gpu_skipped"].as_str().unwrap().contains("secp256k1"));
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "the CPU is measured when the GPU cannot be");
    assert_eq!(rows[0]["backend"], "cpu");
    assert!(png.exists() && !dir.path().join("bls.png").exists());
}

#[test]
fn calibrate_quick_writes_a_profile_from_its_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("tmp.toml");
    let out = run_ok(
        bench()
            .args(["calibrate", "--quick", "--batch-seconds", "5", "--out"])
            .arg(&path),
    );
    let p = HwProfile::load(&path).unwrap();
    assert_eq!(p.name, "tmp", "named after the file");
    assert!(!p.gpu.enabled, "--quick does not measure the GPU");
    assert!(p.batch_keys >= 100);
    assert_eq!(p.key_buffer.low_watermark, 2 * p.batch_keys as u64);
    assert_eq!(p.key_buffer.high_watermark, 10 * p.batch_keys as u64);
    // The description carries the figures the profile was derived from.
    assert!(p.description.contains("keys/s"), "{}", p.description);
    assert!(p.description.contains("ns/pt"), "{}", p.description);
    // ... and where, when and from which code it ran: date, commit, CPU model, cores.
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        p.description.contains(&format!("({cores} cores)")),
        "{}",
        p.description
    );
    let after_on = p.description.split(" on ").nth(1).unwrap_or_default();
    let date = &after_on[..10.min(after_on.len())];
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "no date: {}",
        p.description
    );
    assert!(p.description.contains(" at commit "), "{}", p.description);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with("# Written by `torus-bench calibrate`"),
        "{written}"
    );
    // What was printed is what was written.
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(HwProfile::from_toml(&printed).unwrap(), p);
}

#[test]
fn engine_with_a_profile_reports_the_backend_choice() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.toml");
    // The GPU is asked for by a pattern no adapter has: the engine must fall back
    // to the CPU and say so; threads = 1 selects the serial backend and
    // batch_keys the default --keys.
    std::fs::write(
        &profile,
        "name = \"test-fallback\"\nthreads = 1\nbatch_keys = 3\n\
         [gpu]\nenabled = true\nadapter_pattern = \"no-such-adapter\"\ncrossover_points = 16\n",
    )
    .unwrap();
    let json = dir.path().join("engine.json");
    run_ok(
        bench()
            .args([
                "engine",
                "--nodes",
                "5",
                "--naive-keys",
                "1",
                "--no-baselines",
            ])
            .arg("--profile")
            .arg(&profile)
            .arg("--json")
            .arg(&json),
    );
    let v = read_json(&json);
    assert_eq!(v["keys"], 3, "batch_keys of the profile");
    assert_eq!(v["backend"], "serial", "threads = 1");
    assert_eq!(v["threads"], 1);
    assert_eq!(v["profile"]["name"], "test-fallback");
    assert_eq!(v["profile"]["gpu_attached"], false);
    let choice = v["profile"]["backend_choice"].as_str().unwrap();
    assert!(choice.starts_with("cpu (gpu unavailable:"), "{choice}");
    assert!(v["offload"].is_null());
    assert!(v["node_keys_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    for args in [
        vec!["msm", "--sizes", "2^9..2^3", "--backend", "cpu"],
        vec!["msm", "--sizes", "2^6", "--backend", "tpu"],
        vec!["msm", "--sizes", "2^6", "--bits", "300"],
    ] {
        let out = bench().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let out = bench()
        .args(["msm", "--sizes", "2^9..2^3", "--backend", "cpu"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("2^a..2^b"));
}
