//! The (n, k) matrix: n in {3, 4, 5, 7, 9, 16}, k = floor(n/2)+1 and k = n, on
//! both curves and both backends.
use torus_engine::testing::check_dkg;
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

fn matrix<S: Suite>(engine: &Engine, keys: usize) {
    for n in [3u32, 4, 5, 7, 9, 16] {
        for k in [n / 2 + 1, n] {
            check_dkg::<S>(engine, Params::new(n, k, 0).unwrap(), keys);
        }
    }
}

#[test]
fn secp256k1_serial() {
    matrix::<Secp256k1>(&Engine::reference(), 2);
}

#[test]
fn secp256k1_parallel() {
    matrix::<Secp256k1>(&Engine::parallel(), 3);
}

#[test]
fn bls12_381_parallel() {
    matrix::<Bls12381>(&Engine::parallel(), 1);
}

#[test]
fn torus_thresholds_with_faults() {
    check_dkg::<Secp256k1>(&Engine::new(), Params::torus(9).unwrap(), 5);
    check_dkg::<Bls12381>(&Engine::new(), Params::torus(5).unwrap(), 2);
}
