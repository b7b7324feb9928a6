//! Runs `verify_sends` of a K-key batch at n = 9 repeatedly (for `perf record`).
use torus_bench::seed;
use torus_engine::avss::{self, SendRef};
use torus_engine::{Engine, Params, Secp256k1};
fn main() {
    let keys: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let p = Params::torus(9).unwrap();
    let e = Engine::new();
    let dealings: Vec<_> = (1..=p.n)
        .map(|d| avss::deal::<Secp256k1>(&e, p, d, keys, None, seed(5, u64::from(d))).unwrap())
        .collect();
    let slices: Vec<_> = dealings.iter().map(|d| d.slice(&e, 1).unwrap()).collect();
    let sends: Vec<SendRef<'_, Secp256k1>> = dealings
        .iter()
        .zip(&slices)
        .map(|(d, s)| SendRef::new(d, s))
        .collect();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        avss::verify_sends(&e, &p, 1, &sends).unwrap();
        println!("verify_sends K={keys}: {:.3}s", t.elapsed().as_secs_f64());
    }
}
