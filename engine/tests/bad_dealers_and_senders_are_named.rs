//! Negative cases: each gives a typed error naming the culprit; honest results
//! are unchanged.
use torus_engine::testing::{check_bad_proofs, check_bad_sends, check_points};
use torus_engine::{Bls12381, Engine, Params, Secp256k1};

#[test]
fn secp256k1_bad_sends() {
    for e in [Engine::reference(), Engine::parallel()] {
        check_bad_sends::<Secp256k1>(&e, Params::new(5, 3, 1).unwrap(), 6);
    }
}

#[test]
fn bls12_381_bad_sends() {
    check_bad_sends::<Bls12381>(&Engine::parallel(), Params::new(4, 3, 1).unwrap(), 3);
}

#[test]
fn secp256k1_points() {
    for e in [Engine::reference(), Engine::parallel()] {
        check_points::<Secp256k1>(&e, Params::new(5, 3, 1).unwrap(), 4);
    }
}

#[test]
fn bls12_381_points() {
    check_points::<Bls12381>(&Engine::parallel(), Params::new(5, 3, 1).unwrap(), 2);
}

#[test]
fn secp256k1_bad_proofs() {
    for e in [Engine::reference(), Engine::parallel()] {
        check_bad_proofs::<Secp256k1>(&e, Params::new(5, 3, 1).unwrap(), 5);
    }
}

#[test]
fn bls12_381_bad_proofs() {
    check_bad_proofs::<Bls12381>(&Engine::parallel(), Params::new(4, 3, 1).unwrap(), 2);
}
