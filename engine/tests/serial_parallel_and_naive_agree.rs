//! Differential tests: serial vs parallel vs naive, on random and edge inputs.
use torus_engine::testing::{check_backends_agree, check_kernels};
use torus_engine::{Bls12381, Engine, Params, Secp256k1};

#[test]
fn secp256k1_dkg_backends_agree() {
    // A batch of one key, and a K that is not a multiple of any chunk size.
    check_backends_agree::<Secp256k1>(Params::new(4, 3, 1).unwrap(), 1);
    check_backends_agree::<Secp256k1>(Params::new(5, 3, 1).unwrap(), 37);
}

#[test]
fn bls12_381_dkg_backends_agree() {
    check_backends_agree::<Bls12381>(Params::new(4, 3, 1).unwrap(), 1);
    check_backends_agree::<Bls12381>(Params::new(3, 2, 0).unwrap(), 5);
}

#[test]
fn secp256k1_kernels_match_naive() {
    for len in [0usize, 1, 2, 3, 5, 8, 64, 1025] {
        check_kernels::<Secp256k1>(&Engine::reference(), len);
        check_kernels::<Secp256k1>(&Engine::parallel(), len);
    }
}

#[test]
fn bls12_381_kernels_match_naive() {
    for len in [0usize, 1, 2, 3, 5, 8, 130, 2100] {
        check_kernels::<Bls12381>(&Engine::reference(), len);
        check_kernels::<Bls12381>(&Engine::parallel(), len);
    }
}
