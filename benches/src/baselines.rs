//! External baselines, run in the same process as our kernels:
//! libsecp256k1's generator multiplication, arkworks' MSM, blstrs' multi_exp.

use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::PrimeField as ArkPrimeField;
use ff::Field;
use rand_core::OsRng;
use torus_engine::backend::secp256k1::point::Affine as SecpAffine;
use torus_engine::{Bls12381, Engine, Scalar, Secp256k1, Suite};

use crate::timed;

/// Microseconds per libsecp256k1 `PublicKey::from_secret_key`, single thread.
pub fn libsecp256k1_gen_us(n: usize) -> f64 {
    let secp = secp256k1::Secp256k1::signing_only();
    let keys: Vec<secp256k1::SecretKey> = (0..n)
        .map(|_| secp256k1::SecretKey::new(&mut secp256k1::rand::thread_rng()))
        .collect();
    let (_, s) = timed(|| {
        for k in &keys {
            std::hint::black_box(secp256k1::PublicKey::from_secret_key(&secp, k));
        }
    });
    s * 1e6 / n as f64
}

/// Microseconds per constant-time commitment `f*G + f'*H`, single thread, in a batch of `n`.
pub fn commit_us<S: Suite>(n: usize) -> f64 {
    let f: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    let fp: Vec<Scalar<S>> = (0..n).map(|_| Scalar::<S>::random(OsRng)).collect();
    let e = Engine::reference();
    let _ = e.ct_commit::<S>(&f[..n.min(64)], &fp[..n.min(64)]); // tables
    let (_, s) = timed(|| std::hint::black_box(e.ct_commit::<S>(&f, &fp)));
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

/// Our BLS12-381 MSM vs blstrs' `multi_exp`, ns per point: `(ours, blstrs)`.
pub fn bls_msm_vs_blstrs(n: usize, bits: u32, reps: usize) -> (f64, f64) {
    let pts = random_points::<Bls12381>(n);
    let sc = random_scalars::<Bls12381>(n, bits);
    let proj: Vec<blstrs::G1Projective> = pts.iter().map(blstrs::G1Projective::from).collect();
    let e = Engine::new();
    let ours = e.vartime_msm::<Bls12381>(&pts, &sc).expect("msm");
    let theirs = blstrs::G1Projective::multi_exp(&proj, &sc);
    if ours != theirs {
        let naive = torus_engine::naive::msm::<Bls12381>(&pts, &sc);
        panic!(
            "BLS MSM mismatch: ours==naive {}, blstrs==naive {}",
            ours == naive,
            theirs == naive
        );
    }
    let t_ours = median_secs(reps, || {
        std::hint::black_box(e.vartime_msm::<Bls12381>(&pts, &sc).expect("msm"));
    });
    let t_blst = median_secs(reps, || {
        std::hint::black_box(blstrs::G1Projective::multi_exp(&proj, &sc));
    });
    (t_ours * 1e9 / n as f64, t_blst * 1e9 / n as f64)
}
