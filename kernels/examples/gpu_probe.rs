//! Times device setup and a few GPU MSMs: `cargo run --release -p torus-kernels --example gpu_probe [n...]`.

use std::time::Instant;

use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rand_chacha::rand_core::SeedableRng;
use torus_engine::backend::secp256k1::pippenger;
use torus_engine::backend::secp256k1::point::Affine;
use torus_kernels::GpuMsm;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = Instant::now();
    let g = GpuMsm::new()?;
    println!(
        "setup {:?}: {:.2?}",
        g.context().adapter().name,
        t.elapsed()
    );
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    for n in if sizes.is_empty() {
        vec![1, 64, 1000]
    } else {
        sizes
    } {
        let step = ProjectivePoint::GENERATOR * Scalar::random(&mut r);
        let mut acc = step;
        let proj: Vec<ProjectivePoint> = (0..n)
            .map(|_| {
                acc += step;
                acc
            })
            .collect();
        let p = Affine::batch_from_projective(&proj);
        let s: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut r)).collect();
        for _ in 0..2 {
            let t = Instant::now();
            let got = g.vartime_msm(&p, &s)?;
            let gpu = t.elapsed();
            let t = Instant::now();
            let want = pippenger::vartime_msm_par(&p, &s);
            println!(
                "n={n}: gpu {gpu:.2?} cpu {:.2?} equal={}",
                t.elapsed(),
                got == want
            );
        }
    }
    Ok(())
}
