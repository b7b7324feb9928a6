//! PSS: (n, k) -> (n', k') with k' != k, including disjoint committees.
use torus_engine::testing::check_reshare;
use torus_engine::{Bls12381, Engine, Params, Secp256k1};

#[test]
fn secp256k1_reshare_grow_and_shrink() {
    let e = Engine::new();
    check_reshare::<Secp256k1>(
        &e,
        Params::new(5, 3, 1).unwrap(),
        Params::new(7, 4, 1).unwrap(),
        4,
    );
    check_reshare::<Secp256k1>(
        &e,
        Params::new(7, 4, 1).unwrap(),
        Params::new(4, 3, 1).unwrap(),
        3,
    );
    check_reshare::<Secp256k1>(
        &e,
        Params::new(9, 5, 2).unwrap(),
        Params::new(9, 5, 2).unwrap(),
        2,
    );
}

#[test]
fn secp256k1_reshare_serial() {
    check_reshare::<Secp256k1>(
        &Engine::reference(),
        Params::new(4, 3, 1).unwrap(),
        Params::new(5, 2, 1).unwrap(),
        3,
    );
}

#[test]
fn bls12_381_reshare() {
    check_reshare::<Bls12381>(
        &Engine::new(),
        Params::new(4, 3, 1).unwrap(),
        Params::new(5, 4, 1).unwrap(),
        2,
    );
}
