//! External baselines, run in the same process as our kernels:
//! libsecp256k1's generator multiplication, arkworks' MSM, blst's Pippenger
//! (the MSM behind blstrs' `multi_exp`).
//!
//! Fairness rules (issue 16): every figure is the median of several runs; both
//! sides get the same inputs, the same threads and the same scalar bit length;
//! conversions that a caller does once (to affine, to the library's scalar bytes)
//! stay outside the timed calls of both sides.

use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::PrimeField as ArkPrimeField;
use ff::Field;
use rand_core::OsRng;
use torus_engine::backend::secp256k1::point::Affine as SecpAffine;
use torus_engine::{Bls12381, Engine, Scalar, Secp256k1, Suite};

use crate::timed;

/// libsecp256k1's generator multiplication, single thread, microseconds: the
/// median of `reps` passes over `n` random keys.
#[derive(Clone, Copy, Debug)]
pub struct LibsecpGen {
    /// `PublicKey::from_secret_key` as the crate runs it: since 0.33 every call
    /// also re-randomizes the (thread-local) context with the key as seed.
    pub pubkey_create_us: f64,
    /// That re-randomization alone (`rerandomize_global_context`).
    pub rerandomize_us: f64,
    /// The generator multiplication itself: `pubkey_create_us - rerandomize_us`
    /// (the figure our commitments are compared with; the stricter one).
    pub gen_us: f64,
}

/// Measures [`LibsecpGen`].
pub fn libsecp256k1_gen(n: usize, reps: usize) -> LibsecpGen {
    let keys: Vec<secp256k1::SecretKey> = (0..n)
        .map(|_| loop {
            let mut b = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut b);
            if let Ok(k) = secp256k1::SecretKey::from_secret_bytes(b) {
                break k;
            }
        })
        .collect();
    let seeds: Vec<[u8; 32]> = keys.iter().map(|k| k.to_secret_bytes()).collect();
    let create = median_secs(reps, || {
        for k in &keys {
            std::hint::black_box(secp256k1::PublicKey::from_secret_key(k));
        }
    });
    let rerand = median_secs(reps, || {
        for s in &seeds {
            secp256k1::rerandomize_global_context(std::hint::black_box(s));
        }
    });
    let per = |t: f64| t * 1e6 / n as f64;
    LibsecpGen {
        pubkey_create_us: per(create),
        rerandomize_us: per(rerand),
        gen_us: per(create - rerand).max(f64::MIN_POSITIVE),
    }
}

/// Microseconds per libsecp256k1 generator multiplication (see [`LibsecpGen::gen_us`]).
pub fn libsecp256k1_gen_us(n: usize, reps: usize) -> f64 {
    libsecp256k1_gen(n, reps).gen_us
}

/// Version of libsecp256k1 bundled by the `secp256k1-sys` crate that the
/// `secp256k1` dependency pulls in (its `depend/secp256k1/CMakeLists.txt`);
/// `the_recorded_libsecp256k1_version_is_the_locked_one` checks it against
/// `Cargo.lock`.
pub const LIBSECP256K1_VERSION: &str = "0.8.0";
/// The `secp256k1-sys` release that bundles [`LIBSECP256K1_VERSION`].
pub const SECP256K1_SYS_VERSION: &str = "0.14.1";
/// The `secp256k1` (rust-secp256k1) release used for the baseline.
pub const SECP256K1_CRATE_VERSION: &str = "0.33.1";

/// Microseconds per constant-time commitment `f*G + f'*H`, single thread,
/// amortised over one call of `n` commitments (as the dealer makes them); the
/// median of `reps` calls.
pub fn commit_us<S: Suite>(n: usize, reps: usize) -> f64 {
    let f: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    let fp: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    let e = Engine::reference();
    let _ = e.ct_commit::<S>(&f[..n.min(64)], &fp[..n.min(64)]); // tables
    let s = median_secs(reps, || {
        std::hint::black_box(e.ct_commit::<S>(&f, &fp).expect("commit"));
    });
    s * 1e6 / n as f64
}

/// Microseconds per constant-time commitment made alone (one call per
/// commitment, as a caller with a single secret would), single thread: the
/// median over `n` calls.
pub fn commit_single_call_us<S: Suite>(n: usize) -> f64 {
    let f: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    let fp: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    let e = Engine::reference();
    let _ = e.ct_commit::<S>(&f[..1], &fp[..1]); // tables
    let mut times: Vec<f64> = f
        .iter()
        .zip(&fp)
        .map(|(a, b)| {
            let (a, b) = (core::slice::from_ref(a), core::slice::from_ref(b));
            timed(|| std::hint::black_box(e.ct_commit::<S>(a, b).expect("commit"))).1
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2] * 1e6
}

/// Microseconds per BLS12-381 commitment `f*G + f'*H` made the way the engine
/// made them before its fixed-base tables (issue 16): two of blst's
/// constant-time point multiplications per commitment, then one batch
/// normalization; single thread, median of `reps` calls of `n`.
pub fn bls_commit_blst_mult_us(n: usize, reps: usize) -> f64 {
    use group::{Curve, Group};
    let f: Vec<blstrs::Scalar> = (0..n).map(|_| blstrs::Scalar::random(OsRng)).collect();
    let fp: Vec<blstrs::Scalar> = (0..n).map(|_| blstrs::Scalar::random(OsRng)).collect();
    let (g, h) = (blstrs::G1Projective::generator(), Bls12381::h());
    let s = median_secs(reps, || {
        let pts: Vec<blstrs::G1Projective> =
            f.iter().zip(&fp).map(|(a, b)| g * a + h * b).collect();
        let mut out = vec![blstrs::G1Affine::default(); n];
        blstrs::G1Projective::batch_normalize(&pts, &mut out);
        std::hint::black_box(out);
    });
    s * 1e6 / n as f64
}

/// Random public points (affine) for MSM comparisons.
pub fn random_points<S: Suite>(n: usize) -> Vec<torus_engine::Affine<S>> {
    let e = Engine::new();
    let s: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    e.ct_mul_g::<S>(&s)
}

/// Scalars of `bits` bits (full field size when `bits >= 256`).
pub fn random_scalars<S: Suite>(n: usize, bits: u32) -> Vec<Scalar<S>> {
    (0..n)
        .map(|_| {
            if bits >= 256 {
                return Scalar::<S>::random(OsRng);
            }
            let mut b = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut b);
            let drop = 256 - bits as usize;
            for (i, byte) in b.iter_mut().enumerate() {
                let hi_bits = i * 8; // bits above this byte
                if hi_bits + 8 <= drop {
                    *byte = 0;
                } else if hi_bits < drop {
                    *byte &= 0xff >> (drop - hi_bits);
                }
            }
            S::scalar_from_hash(&b)
        })
        .collect()
}

/// Median of `reps` runs of `f`, in seconds.
pub fn median_secs(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..reps.max(1)).map(|_| timed(&mut f).1).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Our secp256k1 MSM vs arkworks' (parallel), ns per point: `(ours, arkworks)`.
pub fn secp_msm_vs_arkworks(n: usize, bits: u32, reps: usize) -> (f64, f64) {
    let pts = random_points::<Secp256k1>(n);
    let sc = random_scalars::<Secp256k1>(n, bits);
    let e = Engine::new();
    let ours = e.vartime_msm::<Secp256k1>(&pts, &sc).expect("msm");
    let ark_pts: Vec<ark_secp256k1::Affine> = pts.iter().map(to_ark_point).collect();
    let ark_sc: Vec<ark_secp256k1::Fr> = sc
        .iter()
        .map(|s| ark_secp256k1::Fr::from_be_bytes_mod_order(&Secp256k1::encode_scalar(s)))
        .collect();
    let ark = ark_secp256k1::Projective::msm(&ark_pts, &ark_sc).expect("ark msm");
    // Same inputs, same answer.
    assert_eq!(
        to_ark_point(&Secp256k1::to_affine(&ours)),
        ark.into_affine(),
        "MSM results differ from arkworks"
    );
    let t_ours = median_secs(reps, || {
        std::hint::black_box(e.vartime_msm::<Secp256k1>(&pts, &sc).expect("msm"));
    });
    let t_ark = median_secs(reps, || {
        let _ =
            std::hint::black_box(ark_secp256k1::Projective::msm(&ark_pts, &ark_sc).expect("ark"));
    });
    (t_ours * 1e9 / n as f64, t_ark * 1e9 / n as f64)
}

fn to_ark_point(p: &SecpAffine) -> ark_secp256k1::Affine {
    if p.infinity {
        return ark_secp256k1::Affine::identity();
    }
    let x = ark_secp256k1::Fq::from_be_bytes_mod_order(&p.x.to_bytes());
    let y = ark_secp256k1::Fq::from_be_bytes_mod_order(&p.y.to_bytes());
    ark_secp256k1::Affine::new_unchecked(x, y)
}

/// Our BLS12-381 MSM vs blst's Pippenger (what blstrs' `multi_exp` runs), ns
/// per point: `(ours, blst)`, each the median of `reps` runs on the same pool.
///
/// blstrs' `multi_exp` takes projective points, converts them to affine inside
/// the call and always processes 255-bit scalars. The baseline here calls blst's
/// `p1_affines::mult` directly: the affine points and the scalar bytes are
/// prepared outside the timed call, and it is told the scalars' real bit length
/// (`bits`), as our MSM finds it. Our side gets the same affine points and
/// scalars.
pub fn bls_msm_vs_blstrs(n: usize, bits: u32, reps: usize) -> (f64, f64) {
    use blst::MultiPoint;
    use group::Group;
    let pts = random_points::<Bls12381>(n);
    let sc = random_scalars::<Bls12381>(n, bits);
    let e = Engine::new();
    let ours = e.vartime_msm::<Bls12381>(&pts, &sc).expect("msm");
    let affine: Vec<blst::blst_p1_affine> = pts.iter().map(|p| *p.as_ref()).collect();
    let nbits = sc
        .iter()
        .map(|s| {
            let le = s.to_bytes_le();
            le.iter()
                .rposition(|b| *b != 0)
                .map_or(0, |i| i * 8 + 8 - le[i].leading_zeros() as usize)
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let nbytes = nbits.div_ceil(8);
    let mut bytes = Vec::with_capacity(n * nbytes);
    for s in &sc {
        bytes.extend_from_slice(&s.to_bytes_le()[..nbytes]);
    }
    let theirs = {
        let mut p = blstrs::G1Projective::identity();
        *p.as_mut() = affine.as_slice().mult(&bytes, nbits);
        p
    };
    if ours != theirs {
        let naive = torus_engine::naive::msm::<Bls12381>(&pts, &sc);
        panic!(
            "BLS MSM mismatch: ours==naive {}, blst==naive {}",
            ours == naive,
            theirs == naive
        );
    }
    let t_ours = median_secs(reps, || {
        std::hint::black_box(e.vartime_msm::<Bls12381>(&pts, &sc).expect("msm"));
    });
    let t_blst = median_secs(reps, || {
        std::hint::black_box(affine.as_slice().mult(&bytes, nbits));
    });
    (t_ours * 1e9 / n as f64, t_blst * 1e9 / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version recorded in the JSON must be the one the build links: the
    /// lockfile pins the `secp256k1-sys` release that bundles it.
    #[test]
    fn the_recorded_libsecp256k1_version_is_the_locked_one() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
            .expect("Cargo.lock");
        let locked = |name: &str| -> Vec<String> {
            lock.split("[[package]]")
                .filter(|p| p.contains(&format!("name = \"{name}\"\n")))
                .filter_map(|p| {
                    p.lines()
                        .find_map(|l| l.strip_prefix("version = \""))
                        .map(|v| v.trim_end_matches('"').to_string())
                })
                .collect()
        };
        assert!(locked("secp256k1-sys").contains(&SECP256K1_SYS_VERSION.to_string()));
        assert!(locked("secp256k1").contains(&SECP256K1_CRATE_VERSION.to_string()));
    }
}
