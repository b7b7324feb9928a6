//! Times one secp256k1 MSM of the size of a verify_sends fold (K*n*k^2 points).
use torus_bench::baselines::{random_points, random_scalars};
use torus_engine::{Engine, Secp256k1};
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(450_000);
    let bits: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(142);
    let pts = random_points::<Secp256k1>(n);
    let sc = random_scalars::<Secp256k1>(n, bits);
    let e = Engine::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let _ = e.vartime_msm::<Secp256k1>(&pts, &sc).unwrap();
        println!(
            "n={n} bits={bits}: {:.3}s ({:.0} ns/pt)",
            t.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64() * 1e9 / n as f64
        );
    }
}
