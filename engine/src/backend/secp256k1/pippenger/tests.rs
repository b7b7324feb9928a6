//! Tests of the variable-time MSM (moved from `pippenger.rs`).

use super::batch_affine::{NEG, NONE};
use super::glv::glv_decompose;
use super::window::digit;
use super::*;
use k256::elliptic_curve::{Field, PrimeField};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn random_points(n: usize, r: &mut ChaCha20Rng) -> Vec<Affine> {
    if n == 0 {
        return Vec::new(); // k256's batch_normalize panics on an empty slice
    }
    // A random start and random small steps keep generation cheap.
    let step = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
    let mut acc = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
    let mut proj = Vec::with_capacity(n);
    for _ in 0..n {
        proj.push(acc);
        acc += step;
    }
    Affine::batch_from_projective(&proj)
}

fn random_scalars(n: usize, r: &mut ChaCha20Rng) -> Vec<Scalar> {
    (0..n).map(|_| Scalar::random(&mut *r)).collect()
}

/// A uniformly random scalar below 2^bits.
fn short_scalar(bits: usize, r: &mut ChaCha20Rng) -> Scalar {
    let s = Scalar::random(&mut *r);
    let mut b = s.to_bytes();
    let clear = 256 - bits;
    for (i, byte) in b.iter_mut().enumerate() {
        let lo = i * 8; // bits [lo, lo + 8) from the top
        if lo + 8 <= clear {
            *byte = 0;
        } else if lo < clear {
            *byte &= 0xff >> (clear - lo);
        }
    }
    Option::from(Scalar::from_repr(b)).unwrap()
}

fn naive(points: &[Affine], scalars: &[Scalar]) -> ProjectivePoint {
    points
        .iter()
        .zip(scalars)
        .fold(ProjectivePoint::IDENTITY, |acc, (p, s)| {
            acc + p.to_projective() * s
        })
}

/// Every SIMD backend this CPU has (the scalar one always).
fn backends() -> Vec<SimdBackend> {
    [SimdBackend::Scalar, SimdBackend::Avx512Ifma]
        .into_iter()
        .filter(|b| b.available())
        .collect()
}

fn check(points: &[Affine], scalars: &[Scalar]) {
    let want = naive(points, scalars);
    assert_eq!(
        vartime_msm(points, scalars),
        want,
        "serial, n={}",
        points.len()
    );
    assert_eq!(
        vartime_msm_par(points, scalars),
        want,
        "par, n={}",
        points.len()
    );
    for b in backends() {
        for par in [false, true] {
            let got = vartime_msm_on(b, points, scalars, par, None);
            assert_eq!(got, want, "{b:?} par={par} n={}", points.len());
        }
    }
}

fn check_all_plans(points: &[Affine], scalars: &[Scalar]) {
    let want = naive(points, scalars);
    for glv in [false, true] {
        for c in [2, 3, 5, 8, 11, 13, 16] {
            for par in [false, true] {
                for b in backends() {
                    let got = vartime_msm_on(b, points, scalars, par, Some((glv, c)));
                    assert_eq!(
                        got,
                        want,
                        "{b:?} glv={glv} c={c} par={par} n={}",
                        points.len()
                    );
                }
            }
        }
    }
}

fn minus_one() -> Scalar {
    -Scalar::ONE
}

#[test]
fn random_sizes() {
    let mut r = rng(1);
    for n in [0usize, 1, 2, 3, 100, 1000, 5000] {
        let p = random_points(n, &mut r);
        let s = random_scalars(n, &mut r);
        check(&p, &s);
    }
}

#[test]
fn short_scalars() {
    let mut r = rng(2);
    for n in [1usize, 3, 100, 1000, 5000] {
        let p = random_points(n, &mut r);
        let s: Vec<Scalar> = (0..n).map(|_| short_scalar(141, &mut r)).collect();
        check(&p, &s);
    }
    let p = random_points(300, &mut r);
    for bits in [1usize, 7, 64, 127, 128, 129, 200] {
        let s: Vec<Scalar> = (0..300).map(|_| short_scalar(bits, &mut r)).collect();
        check(&p, &s);
    }
}

#[test]
fn all_plans_small() {
    let mut r = rng(3);
    let p = random_points(200, &mut r);
    let s = random_scalars(200, &mut r);
    check_all_plans(&p, &s);
    let s: Vec<Scalar> = (0..200).map(|_| short_scalar(141, &mut r)).collect();
    check_all_plans(&p, &s);
}

#[test]
fn special_scalars() {
    let mut r = rng(4);
    let p = random_points(64, &mut r);
    // zero, one, q - 1
    for s in [Scalar::ZERO, Scalar::ONE, minus_one()] {
        let sc = vec![s; 64];
        check(&p, &sc);
        check_all_plans(&p[..5], &sc[..5]);
    }
    // mixture incl. 2^255-ish and small values
    let mut sc = random_scalars(64, &mut r);
    sc[0] = Scalar::ZERO;
    sc[1] = Scalar::ONE;
    sc[2] = minus_one();
    sc[3] = Scalar::from(2u64);
    sc[4] = -Scalar::from(2u64);
    sc[5] = Scalar::from(u64::MAX);
    check(&p, &sc);
    check_all_plans(&p, &sc);
    // all scalars equal (random)
    let s = Scalar::random(&mut r);
    check(&p, &vec![s; 64]);
}

#[test]
fn identity_points() {
    let mut r = rng(5);
    let mut p = random_points(100, &mut r);
    let s = random_scalars(100, &mut r);
    for i in (0..100).step_by(3) {
        p[i] = Affine::IDENTITY;
    }
    check(&p, &s);
    check_all_plans(&p, &s);
    let all_inf = vec![Affine::IDENTITY; 50];
    check(&all_inf, &s[..50]);
}

#[test]
fn repeated_and_negated_points() {
    let mut r = rng(6);
    let base = random_points(3, &mut r);
    // Same point many times with equal scalars: P == Q in every bucket (doubling path).
    let p = vec![base[0]; 300];
    let s = vec![Scalar::random(&mut r); 300];
    check(&p, &s);
    check_all_plans(&p[..40], &s[..40]);
    // Same point, random scalars (and +-P alternating): equal and opposite
    // partial sums inside the segmented bucket reduction.
    let s2 = random_scalars(300, &mut r);
    check(&p, &s2);
    check_all_plans(&p[..120], &s2[..120]);
    let alt: Vec<Affine> = (0..120)
        .map(|i| if i % 2 == 0 { base[0] } else { base[0].neg() })
        .collect();
    check_all_plans(&alt, &s2[..120]);
    // P and -P with equal scalars: P == -Q inside buckets; total is zero.
    let mut pn = Vec::new();
    for _ in 0..100 {
        pn.push(base[1]);
        pn.push(base[1].neg());
    }
    let s3 = vec![Scalar::random(&mut r); 200];
    assert_eq!(vartime_msm(&pn, &s3), ProjectivePoint::IDENTITY);
    check(&pn, &s3);
    check_all_plans(&pn[..30], &s3[..30]);
    // Mixed: P, -P, P, P, Q ... with small scalars.
    let mix: Vec<Affine> = (0..500)
        .map(|i| match i % 5 {
            0 | 2 | 3 => base[2],
            1 => base[2].neg(),
            _ => base[0],
        })
        .collect();
    let small: Vec<Scalar> = (0..500).map(|i| Scalar::from((i % 7) as u64)).collect();
    check(&mix, &small);
    check_all_plans(&mix[..60], &small[..60]);
}

#[test]
fn few_distinct_digits_use_overflow_path() {
    // Tiny scalars: only a handful of buckets, so most additions conflict and
    // take the deferred-queue and Jacobian-overflow paths.
    let mut r = rng(11);
    let p = random_points(2000, &mut r);
    let s: Vec<Scalar> = (0..2000u64).map(|i| Scalar::from(i % 5)).collect();
    check(&p, &s);
    let s: Vec<Scalar> = (0..2000u64).map(|i| -Scalar::from(1 + i % 3)).collect();
    check(&p, &s);
}

#[test]
fn small_msms_with_their_overflow_buckets_left_jacobian_match_the_naive_sum() {
    // A handful of points (a Lagrange combination of k public key shares): every
    // addition lands in overflow buckets of narrow windows, which the running sum
    // adds without folding them into the affine buckets first.
    let mut r = rng(12);
    for n in 2usize..=8 {
        for _ in 0..8 {
            let mut p = random_points(n, &mut r);
            let s = random_scalars(n, &mut r);
            check(&p, &s);
            check_all_plans(&p, &s);
            // The same point twice, and a point and its negation.
            p[1] = p[0];
            check(&p, &s);
            let mut neg = s.clone();
            neg[1] = -s[0];
            check(&p, &neg);
        }
    }
}

#[test]
fn serial_equals_parallel_large() {
    let mut r = rng(7);
    let p = random_points(3000, &mut r);
    let s = random_scalars(3000, &mut r);
    assert_eq!(vartime_msm(&p, &s), vartime_msm_par(&p, &s));
}

#[test]
fn mismatched_lengths_use_prefix() {
    if cfg!(debug_assertions) {
        return; // debug_assert_eq fires by design
    }
    let mut r = rng(8);
    let p = random_points(10, &mut r);
    let s = random_scalars(7, &mut r);
    assert_eq!(vartime_msm(&p, &s), naive(&p[..7], &s));
}

fn lambda() -> Scalar {
    const L: [u8; 32] = [
        0x53, 0x63, 0xad, 0x4c, 0xc0, 0x5c, 0x30, 0xe0, 0xa5, 0x26, 0x1c, 0x02, 0x88, 0x12, 0x64,
        0x5a, 0x12, 0x2e, 0x22, 0xea, 0x20, 0x81, 0x66, 0x78, 0xdf, 0x02, 0x96, 0x7c, 0x1b, 0x23,
        0xbd, 0x72,
    ];
    Option::from(Scalar::from_repr(L.into())).unwrap()
}

fn from_mag(neg: bool, m: &[u64; 2]) -> Scalar {
    let mut b = [0u8; 32];
    b[16..24].copy_from_slice(&m[1].to_be_bytes());
    b[24..32].copy_from_slice(&m[0].to_be_bytes());
    let s: Scalar = Option::from(Scalar::from_repr(b.into())).unwrap();
    if neg {
        -s
    } else {
        s
    }
}

#[test]
fn glv_decomposition() {
    let mut r = rng(9);
    let lam = lambda();
    let half = Scalar::from_repr(
        [
            0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46,
            0x68, 0x1b, 0x20, 0xa0,
        ]
        .into(),
    )
    .unwrap();
    let mut ks = vec![
        Scalar::ZERO,
        Scalar::ONE,
        minus_one(),
        half,
        half + Scalar::ONE,
        lam,
        -lam,
    ];
    ks.extend(random_scalars(2000, &mut r));
    for k in ks {
        let ((n1, k1), (n2, k2)) = glv_decompose(&limbs(&k));
        assert_eq!(from_mag(n1, &k1) + from_mag(n2, &k2) * lam, k);
    }
    // beta corresponds to lambda.
    let g = Affine::from_projective(&ProjectivePoint::GENERATOR);
    let phi = Affine::new_unchecked(g.x.mul(&beta()), g.y);
    assert_eq!(phi.to_projective(), ProjectivePoint::GENERATOR * lam);
}

#[test]
fn signed_digits_reconstruct() {
    let mut r = rng(10);
    for _ in 0..50 {
        let k = Scalar::random(&mut r);
        let kl = limbs(&k);
        for c in 2..=16usize {
            let nw = (256 + 1usize).div_ceil(c);
            let mut acc = Scalar::ZERO;
            for w in (0..nw).rev() {
                for _ in 0..c {
                    acc = acc.double();
                }
                let d = digit(&kl, w, c);
                if d != NONE {
                    let m = Scalar::from(((d & !NEG) + 1) as u64);
                    acc += if d & NEG != 0 { -m } else { m };
                }
            }
            assert_eq!(acc, k, "c={c}");
        }
    }
}

/// Timing only (`cargo test --release -p torus-engine --lib pippenger::tests::timing
/// -- --ignored --nocapture`): ns per point at 2^16 points, 142-bit scalars,
/// one thread, per backend.
#[test]
#[ignore]
fn timing() {
    let mut r = rng(9);
    let n: usize = std::env::var("TIMING_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 16);
    let points = random_points(n, &mut r);
    let scalars: Vec<Scalar> = (0..n).map(|_| short_scalar(142, &mut r)).collect();
    let only = std::env::var("TIMING_BACKEND").ok();
    for b in backends() {
        if only.as_deref().is_some_and(|o| o != b.name()) {
            continue;
        }
        let mut best = f64::INFINITY;
        let reps: usize = std::env::var("TIMING_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        for _ in 0..reps {
            let t0 = crate::backend::simd::thread_cpu_time();
            let plan = std::env::var("TIMING_C")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(|c| (false, c));
            std::hint::black_box(vartime_msm_on(b, &points, &scalars, false, plan));
            best = best.min(crate::backend::simd::thread_cpu_time() - t0);
        }
        println!("{b:?}: {:.0} ns per point", best * 1e9 / n as f64);
    }
}

/// Batch sums with every exceptional case (identities on either side, equal
/// points, opposite points) at positions across lane groups and chunks, on
/// every backend, against k256.
#[test]
fn add_assign_handles_every_case_on_every_backend() {
    let mut r = rng(21);
    for n in [0usize, 1, 7, 8, 9, 100, 1500] {
        let a = random_points(n, &mut r);
        let mut b = random_points(n, &mut r);
        let mut a2 = a.clone();
        for i in (0..n).step_by(13) {
            match i % 4 {
                0 => b[i] = a[i],
                1 => b[i] = a[i].neg(),
                2 => b[i] = Affine::IDENTITY,
                _ => a2[i] = Affine::IDENTITY,
            }
        }
        let want: Vec<ProjectivePoint> = a2
            .iter()
            .zip(&b)
            .map(|(x, y)| x.to_projective() + y.to_projective())
            .collect();
        for backend in backends() {
            let mut acc = a2.clone();
            vartime_add_assign_on(backend, &mut acc, &b);
            for (i, (got, w)) in acc.iter().zip(&want).enumerate() {
                assert_eq!(got.to_projective(), *w, "{backend:?} n={n} i={i}");
            }
        }
        // Without exceptional pairs the lanes do all the work.
        let c = random_points(n, &mut r);
        let want: Vec<ProjectivePoint> = a
            .iter()
            .zip(&c)
            .map(|(x, y)| x.to_projective() + y.to_projective())
            .collect();
        for backend in backends() {
            let mut acc = a.clone();
            vartime_add_assign_on(backend, &mut acc, &c);
            let got: Vec<ProjectivePoint> = acc.iter().map(Affine::to_projective).collect();
            assert_eq!(got, want, "{backend:?} n={n}");
        }
    }
}

#[test]
fn eval_small_is_horner_in_the_exponent() {
    let mut r = rng(22);
    for (n, k) in [(0usize, 3usize), (1, 1), (5, 2), (37, 5), (9, 4)] {
        let mut rows = random_points(n * k, &mut r);
        if n > 2 {
            rows[k] = Affine::IDENTITY; // an identity entry
        }
        for x in [0u64, 1, 2, 3, 9, 255, 1 << 40] {
            let mut out = vec![Affine::IDENTITY; n];
            vartime_eval_small(&rows, k, x, &mut out);
            for (i, o) in out.iter().enumerate() {
                let mut want = ProjectivePoint::IDENTITY;
                for j in (0..k).rev() {
                    want = want * Scalar::from(x) + rows[i * k + j].to_projective();
                }
                assert_eq!(o.to_projective(), want, "n={n} k={k} x={x} row {i}");
            }
        }
    }
    // Doubling in place, identities kept.
    let mut pts = random_points(20, &mut r);
    pts[3] = Affine::IDENTITY;
    let want: Vec<ProjectivePoint> = pts.iter().map(|p| p.to_projective().double()).collect();
    vartime_double_assign(&mut pts);
    let got: Vec<ProjectivePoint> = pts.iter().map(Affine::to_projective).collect();
    assert_eq!(got, want);
}

/// With more workers than windows, each window's points are split into
/// chunks (windows x chunks tasks); the result is unchanged.
#[cfg(feature = "parallel")]
#[test]
fn windows_times_chunks_on_many_workers() {
    let mut r = rng(23);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(12)
        .build()
        .unwrap();
    // The plans split where windows alone cannot fill the workers.
    assert!(msm_plan_parallel(3000, 142, 12).2 > 1);
    assert!(msm_plan_parallel(450_000, 142, 16).2 > 1);
    for (n, bits) in [(3000usize, 142usize), (5000, 256), (777, 64)] {
        let points = random_points(n, &mut r);
        let scalars: Vec<Scalar> = (0..n).map(|_| short_scalar(bits, &mut r)).collect();
        let want = naive(&points, &scalars);
        for b in backends() {
            let got = pool.install(|| vartime_msm_on(b, &points, &scalars, true, None));
            assert_eq!(got, want, "{b:?} n={n} bits={bits}");
        }
    }
    // One worker never splits.
    assert_eq!(msm_plan_parallel(450_000, 142, 1).2, 1);
}

#[test]
#[ignore]
fn print_plans() {
    for t in [1usize, 2, 12, 16] {
        for (n, b) in [
            (3000usize, 142usize),
            (65536, 142),
            (65536, 256),
            (450_000, 142),
            (4_500_000, 142),
        ] {
            println!(
                "threads {t} n {n} bits {b}: {:?}",
                msm_plan_parallel(n, b, t)
            );
        }
    }
}

/// Many points on the same bucket overflow the deferral queue into the
/// Jacobian buckets while the other buckets span a segmented reduction:
/// both paths meet in one window.
#[test]
fn overflow_buckets_meet_the_segmented_reduction() {
    let mut r = rng(24);
    let n = 6000;
    let points = random_points(n, &mut r);
    let mut scalars: Vec<Scalar> = (0..n).map(|_| short_scalar(64, &mut r)).collect();
    let same = short_scalar(64, &mut r);
    for s in scalars.iter_mut().step_by(2) {
        *s = same;
    }
    let want = naive(&points, &scalars);
    for b in backends() {
        for c in [10usize, 11] {
            let got = vartime_msm_on(b, &points, &scalars, false, Some((false, c)));
            assert_eq!(got, want, "{b:?} c={c}");
        }
    }
}
