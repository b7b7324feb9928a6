//! A node's published `gs = s*G` and `gshr = s*G + s'*H` are exactly the
//! commitments to its secret shares, although `gshr` is now computed from the
//! public commitment vectors `D` (`sum_j i^j D[j]`) instead of the secrets.
use group::Group;
use torus_engine::avss::{self, SendRef};
use torus_engine::dkg;
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

fn gshr_is_the_pedersen_commitment_of_the_shares<S: Suite>(params: Params, keys: usize) {
    let e = Engine::new();
    let dealings: Vec<_> = (1..=params.n)
        .map(|d| avss::deal::<S>(&e, params, d, keys, None, [d as u8 + 40; 32]).unwrap())
        .collect();
    for node in 1..=params.n {
        let slices: Vec<_> = dealings
            .iter()
            .map(|d| d.slice(&e, node).unwrap())
            .collect();
        let sends: Vec<SendRef<'_, S>> = dealings
            .iter()
            .zip(&slices)
            .map(|(d, s)| SendRef::new(d, s))
            .collect();
        let shares = dkg::aggregate(&e, &params, node, &sends).unwrap();
        let public = dkg::public_shares(&e, &shares, [node as u8; 32]).unwrap();
        for key in 0..keys {
            let (s, sp) = shares.share(key).unwrap();
            let want_gs = S::generator() * s;
            let want_gshr = want_gs + S::h() * sp;
            assert_eq!(
                S::from_affine(&public.gs[key]),
                want_gs,
                "node {node} key {key}"
            );
            assert_eq!(
                S::from_affine(&public.gshr[key]),
                want_gshr,
                "node {node} key {key}"
            );
            assert!(!bool::from(want_gshr.is_identity()));
        }
        dkg::verify_public_shares(&e, &params, &shares.commitments, &[&public]).unwrap();
    }
}

#[test]
fn secp256k1_gshr_is_the_pedersen_commitment_of_the_shares() {
    gshr_is_the_pedersen_commitment_of_the_shares::<Secp256k1>(Params::torus(9).unwrap(), 3);
    gshr_is_the_pedersen_commitment_of_the_shares::<Secp256k1>(Params::new(4, 3, 1).unwrap(), 1);
}

#[test]
fn bls12_381_gshr_is_the_pedersen_commitment_of_the_shares() {
    gshr_is_the_pedersen_commitment_of_the_shares::<Bls12381>(Params::new(5, 3, 1).unwrap(), 2);
}
