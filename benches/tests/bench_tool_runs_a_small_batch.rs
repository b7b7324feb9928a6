//! The torus-bench node workload and its naive baseline run end to end on a
//! tiny batch (a smoke test of the tool itself; no timings are asserted).
use torus_bench::baselines;
use torus_bench::node::{prepare, run_naive, run_node};
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

fn small<S: Suite>() {
    let e = Engine::new();
    let p = Params::torus(5).unwrap();
    let inputs = prepare::<S>(&e, p, 3, &|_| {});
    let (phases, shares) = run_node::<S>(&e, &inputs);
    for ph in [
        "deal",
        "verify_sends",
        "echo_ready",
        "aggregate",
        "public_shares",
        "verify_proofs",
        "public_keys",
    ] {
        assert!(phases.contains_key(ph), "missing phase {ph}");
    }
    assert_eq!(shares.keys(), 3);
    assert!(run_naive::<S>(&inputs, &shares.commitments, 1) > 0.0);
}

#[test]
fn secp256k1_small_batch() {
    small::<Secp256k1>();
}

#[test]
fn bls12_381_small_batch() {
    small::<Bls12381>();
}

#[test]
fn baselines_agree_with_ours() {
    // These assert inside that our MSM equals arkworks' / blstrs' on the same input.
    baselines::secp_msm_vs_arkworks(300, 256, 1);
    baselines::secp_msm_vs_arkworks(300, 142, 1);
    baselines::bls_msm_vs_blstrs(300, 256, 1);
    baselines::bls_msm_vs_blstrs(300, 142, 1);
    assert!(baselines::libsecp256k1_gen_us(10) > 0.0);
    assert!(baselines::commit_us::<Secp256k1>(10) > 0.0);
}
