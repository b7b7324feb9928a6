//! Differential tests of the GPU MSM against the engine's CPU Pippenger and the
//! naive reference, on whatever adapter exists (llvmpipe in CI).

mod common;

use common::{gpu, random_points, random_scalars, rng, short_scalar};
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use torus_engine::backend::secp256k1::pippenger;
use torus_engine::backend::secp256k1::point::Affine;
use torus_engine::profile::HwProfile;
use torus_engine::{naive, Engine, MsmRoute, Secp256k1};
use torus_kernels::{engine_from_profile, BackendChoice, GpuMsm};

/// Checks the GPU against the CPU Pippenger, and against the naive sum when small.
fn check(label: &str, points: &[Affine], scalars: &[Scalar]) {
    let Some(g) = gpu() else { return };
    let got = g.vartime_msm(points, scalars).expect("gpu msm");
    let cpu = pippenger::vartime_msm_par(points, scalars);
    assert_eq!(
        got,
        cpu,
        "{label}: gpu != cpu pippenger (n = {})",
        points.len()
    );
    if points.len() <= 300 {
        assert_eq!(
            got,
            naive::msm::<Secp256k1>(points, scalars),
            "{label}: gpu != naive"
        );
    }
    // Bit-identical encodings, not just equal group elements.
    assert_eq!(
        Affine::from_projective(&got),
        Affine::from_projective(&cpu),
        "{label}"
    );
}

#[test]
fn random_inputs_of_awkward_sizes() {
    let mut r = rng(1);
    // 1, 2, around the workgroup size (64), and non-multiples of it.
    for n in [1usize, 2, 3, 63, 64, 65, 129, 1000] {
        let p = random_points(n, &mut r);
        let s = random_scalars(n, &mut r);
        check(&format!("random n={n}"), &p, &s);
    }
}

#[test]
fn short_scalars_like_the_folded_check() {
    let mut r = rng(2);
    let p = random_points(500, &mut r);
    for bits in [1u32, 8, 64, 128, 142] {
        let s: Vec<Scalar> = (0..500).map(|_| short_scalar(bits, &mut r)).collect();
        check(&format!("{bits}-bit scalars"), &p, &s);
    }
}

#[test]
fn zero_one_and_q_minus_one() {
    let mut r = rng(3);
    let p = random_points(70, &mut r);
    for (label, s) in [
        ("zero", Scalar::ZERO),
        ("one", Scalar::ONE),
        ("q-1", -Scalar::ONE),
    ] {
        check(label, &p, &vec![s; 70]);
    }
    let mut s = random_scalars(70, &mut r);
    s[0] = Scalar::ZERO;
    s[1] = -Scalar::ONE;
    s[2] = Scalar::ONE;
    s[3] = -Scalar::from(2u64);
    s[69] = Scalar::ZERO;
    check("mixed", &p, &s);
    // All scalars zero: the identity, without touching the device.
    let g = gpu();
    if let Some(g) = g {
        assert_eq!(
            g.vartime_msm(&p, &vec![Scalar::ZERO; 70]).expect("msm"),
            ProjectivePoint::IDENTITY
        );
        assert_eq!(
            g.vartime_msm(&[], &[]).expect("empty"),
            ProjectivePoint::IDENTITY
        );
    }
}

#[test]
fn identity_points() {
    let mut r = rng(4);
    let mut p = random_points(100, &mut r);
    let s = random_scalars(100, &mut r);
    for i in (0..100).step_by(3) {
        p[i] = Affine::IDENTITY;
    }
    check("some identities", &p, &s);
    check("all identities", &vec![Affine::IDENTITY; 10], &s[..10]);
}

#[test]
fn repeated_and_opposite_points() {
    let mut r = rng(5);
    let base = random_points(2, &mut r);
    // Same point and scalar: every digit hits the same bucket (doubling path).
    let s = Scalar::random(&mut r);
    check(
        "repeated P, equal scalars",
        &vec![base[0]; 40],
        &vec![s; 40],
    );
    // Same point, random scalars.
    let p = vec![base[0]; 100];
    check("repeated P", &p, &random_scalars(100, &mut r));
    // P and -P with equal scalars: buckets cancel to the identity.
    let pn: Vec<Affine> = (0..60)
        .map(|i| if i % 2 == 0 { base[1] } else { base[1].neg() })
        .collect();
    let Some(g) = gpu() else { return };
    assert_eq!(
        g.vartime_msm(&pn, &vec![s; 60]).expect("msm"),
        ProjectivePoint::IDENTITY
    );
    check("P, -P", &pn, &random_scalars(60, &mut r));
}

#[test]
fn chunking_and_fixed_windows() {
    let Some(g) = gpu() else { return };
    let mut r = rng(6);
    let p = random_points(333, &mut r);
    let s = random_scalars(333, &mut r);
    let want = pippenger::vartime_msm_par(&p, &s);
    // 333 points in chunks of 100: four submissions, one readback.
    assert_eq!(
        g.vartime_msm_tuned(&p, &s, None, 100).expect("chunked"),
        want
    );
    for c in [2usize, 3, 7, 13] {
        let got = g.vartime_msm_tuned(&p, &s, Some(c), 200).expect("window");
        assert_eq!(got, want, "c={c}");
    }
    // The shared instance agrees too.
    assert_eq!(g.vartime_msm(&p, &s).expect("msm"), want);
}

/// Checks `GpuMsm::vartime_msm_tuned` (fixed window, chunk cap) against the CPU
/// Pippenger, encodings included.
fn check_tuned(
    g: &GpuMsm,
    label: &str,
    points: &[Affine],
    scalars: &[Scalar],
    window: Option<usize>,
    max_chunk: usize,
) {
    let got = g
        .vartime_msm_tuned(points, scalars, window, max_chunk)
        .unwrap_or_else(|e| panic!("{label}: gpu msm: {e}"));
    let cpu = pippenger::vartime_msm_par(points, scalars);
    assert_eq!(
        Affine::from_projective(&got),
        Affine::from_projective(&cpu),
        "{label}: gpu != cpu pippenger (n = {}, window {window:?}, chunk {max_chunk})",
        points.len()
    );
}

/// Regression: with 256-bit scalars the top window's digit is mostly the carry, so
/// one bucket holds about half the points (windows 8, 11 and 12 cover 264 bits).
/// Summed by one thread, such a bucket of 640+ points came back off the curve on
/// llvmpipe, which ends loops after 65535 iterations per invocation.
#[test]
fn full_width_scalars_at_2048_and_4096_points_with_windows_8_11_12() {
    let Some(g) = gpu() else { return };
    let mut r = rng(8);
    let p = random_points(4096, &mut r);
    let s = random_scalars(4096, &mut r);
    for n in [2048usize, 4096] {
        for c in [8usize, 11, 12] {
            check_tuned(
                g,
                &format!("n={n} c={c}"),
                &p[..n],
                &s[..n],
                Some(c),
                usize::MAX,
            );
        }
    }
}

/// Regression: every point in one bucket (all scalars equal), far more points
/// than one invocation sums, whole and in chunks.
#[test]
fn one_bucket_holding_many_points() {
    let Some(g) = gpu() else { return };
    let mut r = rng(9);
    let p = random_points(1500, &mut r);
    let ones = vec![Scalar::ONE; 1500];
    check_tuned(g, "all ones", &p, &ones, None, usize::MAX);
    check_tuned(g, "all ones c=8", &p, &ones, Some(8), usize::MAX);
    check_tuned(g, "all ones in chunks", &p, &ones, Some(8), 700);
    // One bucket per window holding every point.
    let s = vec![Scalar::random(&mut r); 1200];
    check_tuned(g, "all equal", &p[..1200], &s, None, usize::MAX);
    // One point many times: the bucket sum doubles along the way.
    check_tuned(
        g,
        "repeated P",
        &vec![p[0]; 1100],
        &ones[..1100],
        None,
        usize::MAX,
    );
}

/// Regression: q - 1 puts every point into the same bucket of every window.
#[test]
fn all_scalars_q_minus_one() {
    let Some(g) = gpu() else { return };
    let mut r = rng(10);
    let p = random_points(2048, &mut r);
    let s = vec![-Scalar::ONE; 2048];
    check_tuned(g, "q-1", &p, &s, None, usize::MAX);
    check_tuned(g, "q-1 c=8", &p, &s, Some(8), usize::MAX);
}

/// Regression: windows of 14 bits have 8192 buckets; reducing their 256 segments
/// in one invocation also ran past llvmpipe's loop limit.
#[test]
fn wide_windows_reduce_in_levels() {
    let Some(g) = gpu() else { return };
    let mut r = rng(11);
    let p = random_points(64, &mut r);
    let s = random_scalars(64, &mut r);
    check_tuned(g, "c=14", &p, &s, Some(14), usize::MAX);
}

#[test]
fn length_mismatch_is_an_error() {
    let Some(g) = gpu() else { return };
    let mut r = rng(7);
    let p = random_points(3, &mut r);
    let s = random_scalars(2, &mut r);
    assert!(g.vartime_msm(&p, &s).is_err());
}

fn profile(enabled: bool, pattern: &str, crossover: u64) -> HwProfile {
    let mut p = HwProfile {
        name: "test".into(),
        ..HwProfile::default()
    };
    p.gpu.enabled = enabled;
    p.gpu.adapter_pattern = pattern.into();
    p.gpu.crossover_points = crossover;
    p
}

/// Here rather than in `backend_selection.rs`: it compiles the MSM pipelines, which
/// takes minutes on llvmpipe, so it runs beside the other GPU tests of this binary.
#[test]
fn software_adapter_only_when_the_profile_names_it() {
    let adapters = torus_kernels::GpuContext::adapters();
    let Some(sw) = adapters.iter().find(|a| a.software) else {
        eprintln!("no software adapter here; nothing to check");
        return;
    };
    if adapters.iter().all(|a| a.software) {
        // An empty pattern never picks a software adapter for a node.
        let (_, choice) = engine_from_profile(&profile(true, "", 1));
        assert!(
            matches!(choice, BackendChoice::CpuFallback { .. }),
            "{choice}"
        );
    }
    // Naming it selects it, and the attached GPU computes the same MSM as the CPU.
    let first_word = sw.name.split_whitespace().next().unwrap_or("llvmpipe");
    let (engine, choice) = engine_from_profile(&profile(true, first_word, 16));
    assert!(matches!(choice, BackendChoice::Gpu { .. }), "{choice}");
    let mut r = rng(3);
    let p = random_points(40, &mut r);
    let s = random_scalars(40, &mut r);
    assert_eq!(engine.vartime_msm_route::<Secp256k1>(40), MsmRoute::Offload);
    assert_eq!(
        engine.vartime_msm::<Secp256k1>(&p, &s).expect("msm"),
        Engine::reference()
            .vartime_msm::<Secp256k1>(&p, &s)
            .expect("cpu")
    );
    assert_eq!(engine.offload_fallbacks(), 0);
}
