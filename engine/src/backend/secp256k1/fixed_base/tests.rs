//! Tests of the constant-time fixed-base multiplication (moved from `fixed_base.rs`).

use super::scan::recode;
use super::tables::{offset_point, Entry};
use super::*;
use k256::elliptic_curve::ops::MulByGenerator;
use k256::elliptic_curve::Field;
use k256::elliptic_curve::PrimeField;
use k256::ProjectivePoint;
use rand_chacha::rand_core::SeedableRng;

fn rng() -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(0x5eed)
}

fn h_proj() -> ProjectivePoint {
    h_affine().to_projective()
}

fn ref_commit(f: &Scalar, fp: &Scalar) -> Affine {
    Affine::from_projective(&(ProjectivePoint::GENERATOR * f + h_proj() * fp))
}

/// Scalars whose recoded digits are all extreme (all +max, all -max, alternating,
/// ...), plus the usual edge values.
fn special_scalars<const W: usize>() -> Vec<Scalar> {
    let t = Tables::<W>::new();
    let minus_one = -Scalar::ONE;
    let mut v_list: Vec<Scalar> = vec![Scalar::ZERO, Scalar::ONE, minus_one];
    // v with every window = given pattern (all ones => every digit = +max)
    for pat in [0xffu8, 0x00, 0xaa, 0x55, 0x0f, 0xf0, 0x80, 0x7f] {
        let mut bytes = [pat; 32];
        // keep v < n
        bytes[0] &= 0x7f;
        v_list.push(Scalar::from_repr(bytes.into()).unwrap());
    }
    let mut out: Vec<Scalar> = v_list
        .iter()
        .map(|v| (*v + *v) - t.recode_add) // s = 2v - (2^N - 1)
        .collect();
    let m = Tables::<W>::WINDOWS;
    let top = {
        let mut p = Scalar::ONE;
        for _ in 0..W * (m - 1) {
            p = p + p;
        }
        p
    };
    for d in [1u64, 3, (1 << W) - 1] {
        // s = 2 * d * 2^(W(m-1)): would be a doubling in the top window without R
        let q = top * Scalar::from(d);
        out.push(q + q);
        out.push(-(q + q));
    }
    out.extend([
        Scalar::ZERO,
        Scalar::ONE,
        Scalar::from(2u64),
        Scalar::from(3u64),
        -Scalar::ONE,
        -Scalar::from(2u64),
    ]);
    out
}

#[test]
fn h_matches_constants() {
    let h = h_affine();
    assert!(!h.infinity);
    assert_eq!(&h.x.to_bytes()[..], &H_X[..]);
    assert_eq!(&h.y.to_bytes()[..], &H_Y[..]);
    // on the curve: the conversion to k256 validates the equation
    let k = h.to_k256();
    assert_eq!(Affine::from_k256(&k), h);
    assert!(h.to_projective() != ProjectivePoint::IDENTITY);
}

#[test]
fn offset_is_on_curve() {
    let r = offset_point();
    let a = Affine::new_unchecked(r.x, r.y);
    assert_eq!(Affine::from_k256(&a.to_k256()), a);
}

#[test]
fn recode_roundtrip() {
    let t = Tables::<5>::new();
    let m = Tables::<5>::WINDOWS;
    let mut r = rng();
    let mut scalars = special_scalars::<5>();
    scalars.extend((0..20).map(|_| Scalar::random(&mut r)));
    for s in scalars {
        let mut codes = vec![0u8; m];
        recode::<5>(&t, &s, &mut codes, 1);
        let mut acc = Scalar::ZERO;
        let mut p = Scalar::ONE;
        for &c in &codes {
            let d = Scalar::from(2 * u64::from(c & 0x7f) + 1);
            acc += if c >> 7 == 1 { -d * p } else { d * p };
            for _ in 0..5 {
                p = p + p;
            }
        }
        assert_eq!(acc, s);
    }
}

/// Every SIMD backend this CPU has (the scalar one always).
fn backends() -> Vec<SimdBackend> {
    [SimdBackend::Scalar, SimdBackend::Avx512Ifma]
        .into_iter()
        .filter(|b| b.available())
        .collect()
}

/// Outputs as canonical bytes (x, y, infinity): "bit-identical" means equal here.
fn bytes(v: &[Affine]) -> Vec<([u8; 32], [u8; 32], bool)> {
    v.iter()
        .map(|p| (p.x.to_bytes(), p.y.to_bytes(), p.infinity))
        .collect()
}

fn check_all<const W: usize>(t: &Tables<W>, f: &[Scalar], fp: &[Scalar], chunk: usize) {
    let n = f.len();
    let mut first: Option<Vec<_>> = None;
    for backend in backends() {
        let mut out = vec![Affine::IDENTITY; n];
        let mut all = Vec::new();
        run_batch_on::<W>(t, Bases::GH, f, fp, &mut out, chunk, backend);
        for i in 0..n {
            assert_eq!(
                out[i],
                ref_commit(&f[i], &fp[i]),
                "{backend:?} commit i={i}"
            );
        }
        all.extend(bytes(&out));
        run_batch_on::<W>(t, Bases::G, f, &[], &mut out, chunk, backend);
        for i in 0..n {
            assert_eq!(
                out[i],
                ref_commit(&f[i], &Scalar::ZERO),
                "{backend:?} G i={i}"
            );
        }
        all.extend(bytes(&out));
        run_batch_on::<W>(t, Bases::H, fp, &[], &mut out, chunk, backend);
        for i in 0..n {
            assert_eq!(
                out[i],
                ref_commit(&Scalar::ZERO, &fp[i]),
                "{backend:?} H i={i}"
            );
        }
        all.extend(bytes(&out));
        match &first {
            None => first = Some(all),
            Some(f0) => assert!(f0 == &all, "{backend:?} differs from the scalar backend"),
        }
    }
}

#[test]
fn special_scalars_all_windows() {
    let mut r = rng();
    fn go<const W: usize>(r: &mut rand_chacha::ChaCha20Rng) {
        let t = Tables::<W>::new();
        let sp = special_scalars::<W>();
        let n = sp.len();
        // pair specials with specials (reversed), zeros and random values
        let rev: Vec<Scalar> = sp.iter().rev().copied().collect();
        check_all::<W>(&t, &sp, &rev, 7);
        check_all::<W>(&t, &sp, &vec![Scalar::ZERO; n], 1024);
        check_all::<W>(&t, &vec![Scalar::ZERO; n], &sp, 1024);
        let rnd: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut *r)).collect();
        check_all::<W>(&t, &rnd, &sp, 1024);
    }
    go::<4>(&mut r);
    go::<5>(&mut r);
    go::<6>(&mut r);
}

#[test]
fn public_api_batch_sizes() {
    let mut r = rng();
    for n in [0usize, 1, 2, 3, 257] {
        let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        let mut fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        if n == 3 {
            fp[1] = Scalar::ZERO;
        }
        let mut out = vec![Affine::IDENTITY; n];
        ct_commit_batch(&f, &fp, &mut out);
        for i in 0..n {
            assert_eq!(out[i], ref_commit(&f[i], &fp[i]));
        }
        ct_mul_g_batch(&f, &mut out);
        for i in 0..n {
            let e = Affine::from_projective(&ProjectivePoint::mul_by_generator(&f[i]));
            assert_eq!(out[i], e);
        }
        ct_mul_h_batch(&fp, &mut out);
        for i in 0..n {
            assert_eq!(out[i], Affine::from_projective(&(h_proj() * fp[i])));
        }
    }
}

#[test]
fn zero_scalars_give_identity() {
    let z = vec![Scalar::ZERO; 3];
    let mut out = vec![Affine::new_unchecked(Fe::ONE, Fe::ONE); 3];
    ct_commit_batch(&z, &z, &mut out);
    assert!(out.iter().all(|p| p.infinity && *p == Affine::IDENTITY));
    assert!(out
        .iter()
        .all(|p| bool::from(p.x.is_zero() & p.y.is_zero())));
    ct_mul_g_batch(&z, &mut out);
    assert!(out.iter().all(|p| p.infinity));
    ct_mul_h_batch(&z, &mut out);
    assert!(out.iter().all(|p| p.infinity));
}

#[test]
fn chunk_boundaries() {
    let mut r = rng();
    let t = Tables::<5>::new();
    let n = 11;
    let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
    let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
    for chunk in [1, 2, 4, 10, 11, 64] {
        check_all::<5>(&t, &f, &fp, chunk);
    }
}

/// Every batch length from 0 to 41 (all lane remainders, one to six lane
/// groups), around the thresholds between the paths (`SMALL_BATCH`,
/// `LANES_BELOW`) and around the chunk size, on every backend, against k256.
#[test]
fn every_size_on_every_backend() {
    let mut r = rng();
    let t = tables();
    for n in (0..=41).chain([47, 48, 49, 71, 72, 73, 1023, 1024, 1025]) {
        let mut f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        if n > 3 {
            f[n / 2] = Scalar::ZERO;
            f[1] = -Scalar::ONE;
        }
        if n > 100 {
            // The reference is slow: check a sample of the big sizes.
            let idx: Vec<usize> = (0..n).step_by(61).chain([n - 1]).collect();
            let mut outs = Vec::new();
            for backend in backends() {
                let mut out = vec![Affine::IDENTITY; n];
                run_batch_on::<WINDOW>(t, Bases::GH, &f, &fp, &mut out, CHUNK, backend);
                for &i in &idx {
                    assert_eq!(out[i], ref_commit(&f[i], &fp[i]), "{backend:?} n={n} i={i}");
                }
                outs.push(bytes(&out));
            }
            assert!(
                outs.windows(2).all(|w| w[0] == w[1]),
                "backends differ at n={n}"
            );
        } else {
            check_all::<WINDOW>(t, &f, &fp, CHUNK);
        }
    }
}

#[test]
fn mismatched_lengths_use_common_prefix() {
    // debug_assert fires in debug builds; the release behaviour is tested via the
    // hooks, which share `run_batch`.
    let mut r = rng();
    let t = Tables::<5>::new();
    let f: Vec<Scalar> = (0..4).map(|_| Scalar::random(&mut r)).collect();
    let fp: Vec<Scalar> = (0..2).map(|_| Scalar::random(&mut r)).collect();
    let n = 2;
    let mut out = vec![Affine::IDENTITY; n];
    commit_with::<5>(&t, &f[..n], &fp, &mut out, 1024);
    for i in 0..n {
        assert_eq!(out[i], ref_commit(&f[i], &fp[i]));
    }
}

/// Forces the "impossible" exceptional cases by using an offset with a known
/// discrete log (R = 3G): the careful mode and the fallback must still give the
/// right answer.
#[test]
fn exceptional_cases_fall_back_correctly() {
    let mut t = Tables::<5>::new();
    let r3 = Affine::from_projective(&(ProjectivePoint::GENERATOR * Scalar::from(3u64)));
    t.offset = Entry { x: r3.x, y: r3.y };
    t.neg_offset = Entry {
        x: r3.x,
        y: r3.y.neg(),
    };
    let mut r = rng();
    // scalars whose lowest digit is -3 or +3 (A = R = 3G meets T = -+3G in round 0),
    // s = -6 (S = -2R in the last round), 0 (identity), and random ones.
    let mut f: Vec<Scalar> = Vec::new();
    for _ in 0..4 {
        let base = Scalar::random(&mut r);
        // force digit 0 to +3 / -3 by adjusting the low window
        let mut codes = [0u8; 64];
        recode::<5>(&t, &base, &mut codes, 1);
        let d0 = 2 * i64::from(codes[0] & 0x7f) + 1;
        let d0 = if codes[0] >> 7 == 1 { -d0 } else { d0 };
        for target in [3i64, -3] {
            let delta = target - d0;
            let ds = if delta >= 0 {
                Scalar::from(delta as u64)
            } else {
                -Scalar::from((-delta) as u64)
            };
            f.push(base + ds);
        }
    }
    f.push(-Scalar::from(6u64));
    f.push(Scalar::ZERO);
    f.extend((0..5).map(|_| Scalar::random(&mut r)));
    // Below SMALL_BATCH (Jacobian path) and above LANES_BELOW (batch-affine paths).
    let small = f.clone();
    check_exceptional(&t, &small, &mut r);
    f.extend((0..60).map(|_| Scalar::random(&mut r)));
    assert!(f.len() >= LANES_BELOW.max(SMALL_BATCH));
    check_exceptional(&t, &f, &mut r);
}

fn check_exceptional(t: &Tables<5>, f: &[Scalar], r: &mut rand_chacha::ChaCha20Rng) {
    let fp: Vec<Scalar> = (0..f.len()).map(|_| Scalar::random(&mut *r)).collect();
    check_all::<5>(t, f, &fp, 1024);
}

/// Timing only (`cargo test --release -p torus-engine --lib fixed_base::tests::timing
/// -- --ignored --nocapture`): microseconds per commitment on each backend.
#[test]
#[ignore]
fn timing() {
    let mut r = rng();
    let n = 4096;
    let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
    let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
    init_tables();
    let only = std::env::var("TIMING_BACKEND").ok();
    for backend in backends() {
        if only.as_deref().is_some_and(|o| o != backend.name()) {
            continue;
        }
        let mut out = vec![Affine::IDENTITY; n];
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t0 = crate::backend::simd::thread_cpu_time();
            commit_on(backend, &f, &fp, &mut out);
            best = best.min(crate::backend::simd::thread_cpu_time() - t0);
        }
        println!(
            "{backend:?}: {:.2} us per commitment",
            best * 1e6 / n as f64
        );
    }
}

/// Timing only (`cargo test --release -p torus-engine --lib
/// fixed_base::tests::small_batch_timing -- --ignored --nocapture`): microseconds
/// per commitment for small batches, per backend (where the lane path and the
/// batch-affine lanes cross over, see `LANES_BELOW`).
#[test]
#[ignore]
fn small_batch_timing() {
    let mut r = rng();
    init_tables();
    for n in [1usize, 2, 4, 8, 15, 16, 32, 48, 63, 64, 96, 128] {
        let f: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        let fp: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        for backend in backends() {
            let mut out = vec![Affine::IDENTITY; n];
            let mut times = Vec::new();
            for _ in 0..(4000 / n).max(20) {
                let t0 = std::time::Instant::now();
                commit_on(backend, &f, &fp, &mut out);
                times.push(t0.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let med = times[times.len() / 2];
            println!(
                "n={n:4} {backend:?}: {:.2} us per commitment",
                med * 1e6 / n as f64
            );
        }
    }
}

fn g_times(k: i64) -> Entry {
    let s = if k >= 0 {
        Scalar::from(k as u64)
    } else {
        -Scalar::from((-k) as u64)
    };
    let a = Affine::from_projective(&(ProjectivePoint::GENERATOR * s));
    Entry { x: a.x, y: a.y }
}

fn scalar_of(k: i64) -> Scalar {
    if k >= 0 {
        Scalar::from(k as u64)
    } else {
        -Scalar::from((-k) as u64)
    }
}

/// Runs the lane path alone (no dispatch) and checks every output of every
/// base choice against k256; `None` where the CPU has no IFMA.
fn check_lanes<const W: usize>(t: &Tables<W>, f: &[Scalar], fp: &[Scalar]) -> Option<()> {
    let ifma = Ifma::detect()?;
    let n = f.len();
    for bases in [Bases::GH, Bases::G, Bases::H] {
        let mut out = vec![Affine::IDENTITY; n];
        assert!(lanes::run_chunk_lanes::<W>(ifma, t, bases, f, fp, &mut out));
        for i in 0..n {
            let want = match bases {
                Bases::GH => ref_commit(&f[i], &fp[i]),
                Bases::G => Affine::from_projective(&(ProjectivePoint::GENERATOR * f[i])),
                Bases::H => Affine::from_projective(&(h_proj() * f[i])),
            };
            assert_eq!(out[i], want, "n={n} i={i}");
        }
    }
    Some(())
}

#[test]
fn the_lane_path_matches_k256_for_edge_scalars_every_base_and_small_batch_sizes() {
    let mut r = rng();
    let mut f = special_scalars::<WINDOW>();
    let mut fp: Vec<Scalar> = f.iter().rev().copied().collect();
    // Both scalars zero (the identity), and each zero alone.
    f.extend([Scalar::ZERO, Scalar::ZERO, Scalar::random(&mut r)]);
    fp.extend([Scalar::ZERO, Scalar::random(&mut r), Scalar::ZERO]);
    if check_lanes::<WINDOW>(tables(), &f, &fp).is_none() {
        println!("SKIPPED: this CPU has no AVX-512 IFMA, so the lane path cannot run");
        return;
    }
    // Another window width: other round counts, other pad lanes.
    let t5 = Tables::<5>::new();
    for n in [1usize, 2, 7, 8, 9, 17] {
        let a: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        let b: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        check_lanes::<WINDOW>(tables(), &a, &b);
        check_lanes::<5>(&t5, &a, &b);
    }
}

/// With starting points and pads that are small known multiples of `G`, lane
/// accumulators do meet table points (`A = +-T`), the tree meets equal lane
/// sums, and the final correction meets `A = C` and `A = -C`: every such
/// output must still be right (flagged and recomputed, or the identity).
#[test]
fn the_lane_path_recomputes_outputs_whose_additions_meet_an_exceptional_case() {
    let mut t = Tables::<5>::new();
    // Lane l starts at (l + 1) G: lane 0 meets round 0's table point +-G or
    // +-3G...; lane 1 (2G) and lane 0 sums can coincide in the tree.
    let start: [Entry; 8] = core::array::from_fn(|l| g_times(l as i64 + 1));
    let pad: [Entry; 8] = core::array::from_fn(|l| g_times(100 + l as i64));
    let rounds_one = Tables::<5>::WINDOWS;
    t.lanes = tables::LaneConsts::from_points(start, pad, rounds_one);
    let mut r = rng();
    let mut f: Vec<Scalar> = Vec::new();
    // Digit 0 of +-1 and +-3 (lane 0 starts at G).
    for _ in 0..3 {
        let base = Scalar::random(&mut r);
        let mut codes = [0u8; 64];
        recode::<5>(&t, &base, &mut codes, 1);
        let d0 = 2 * i64::from(codes[0] & 0x7f) + 1;
        let d0 = if codes[0] >> 7 == 1 { -d0 } else { d0 };
        for target in [1i64, -1, 3, -3] {
            f.push(base + scalar_of(target - d0));
        }
    }
    // The lanes' sum is c G + s with c = sum of starts and pads of the G-only
    // schedule; s = -2c makes A = C (a doubling), s = 0 the identity.
    // Slots of the last step past the last round add the pads of their lanes.
    let c_of = |rounds: usize| -> i64 {
        let used = rounds % 8;
        let pads = if used == 0 {
            0
        } else {
            (used..8).map(|l| 100 + l as i64).sum()
        };
        (1..=8).sum::<i64>() + pads
    };
    let c_one = c_of(rounds_one);
    f.extend([scalar_of(-2 * c_one), Scalar::ZERO, scalar_of(c_one)]);
    f.extend((0..4).map(|_| Scalar::random(&mut r)));
    let fp: Vec<Scalar> = (0..f.len()).map(|_| Scalar::random(&mut r)).collect();
    if check_lanes::<5>(&t, &f, &fp).is_none() {
        println!("SKIPPED: this CPU has no AVX-512 IFMA, so the lane path cannot run");
        return;
    }
    // The same for commitments: with fp = 0 the G and H schedule's c applies.
    let c_two = c_of(2 * rounds_one);
    let f2 = vec![scalar_of(-2 * c_two), Scalar::ZERO, scalar_of(c_two)];
    let fp2 = vec![Scalar::ZERO; 3];
    check_lanes::<5>(&t, &f2, &fp2);
}
