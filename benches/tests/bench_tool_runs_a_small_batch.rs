//! The torus-bench node workload and its naive baseline run end to end on a
//! tiny batch (a smoke test of the tool itself; no timings are asserted).
use torus_bench::baselines;
use torus_bench::node::{inputs_for, prepare, prepare_dealings, run_naive, run_node_full};
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

fn small<S: Suite>() {
    let e = Engine::new();
    let p = Params::torus(5).unwrap();
    let inputs = prepare::<S>(&e, p, 3, &|_| {});
    let (phases, out) = run_node_full::<S>(&e, &inputs);
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
    assert_eq!(out.shares.keys(), 3);
    assert_eq!(out.verified.len(), p.ku());
    assert!(run_naive::<S>(&inputs, &out, 2) > 0.0);
}

#[test]
fn secp256k1_small_batch() {
    small::<Secp256k1>();
}

#[test]
fn bls12_381_small_batch() {
    small::<Bls12381>();
}

/// Any committee member can be the measured node: its sends, points and the
/// other nodes' public key shares all check out, on the engine and the naive path.
#[test]
fn every_receiver_can_be_measured() {
    let e = Engine::new();
    let p = Params::torus(5).unwrap();
    let all = prepare_dealings::<Secp256k1>(&e, p, 2, &|_| {});
    for me in 1..=p.n {
        let inputs = inputs_for(&e, &all, me, &|_| {});
        assert_eq!(inputs.me, me);
        assert_eq!(inputs.others.len(), (p.n - 1) as usize);
        assert!(inputs.others.iter().all(|(d, _)| *d != me));
        let (_, out) = run_node_full::<Secp256k1>(&e, &inputs);
        assert_eq!(out.shares.node, me);
        let verified: Vec<u32> = out.verified.iter().map(|x| x.node).collect();
        assert_eq!(verified, (1..=p.k).collect::<Vec<_>>());
        assert!(run_naive::<Secp256k1>(&inputs, &out, 1) > 0.0);
    }
}

#[test]
fn baselines_agree_with_ours() {
    // These assert inside that our MSM equals arkworks' / blst's on the same input.
    baselines::secp_msm_vs_arkworks(300, 256, 1);
    baselines::secp_msm_vs_arkworks(300, 142, 1);
    baselines::bls_msm_vs_blstrs(300, 256, 1);
    baselines::bls_msm_vs_blstrs(300, 142, 1);
    assert!(baselines::libsecp256k1_gen_us(10, 1) > 0.0);
    assert!(baselines::commit_us::<Secp256k1>(10, 1) > 0.0);
    assert!(baselines::commit_single_call_us::<Secp256k1>(3) > 0.0);
    assert!(baselines::bls_commit_blst_mult_us(3, 1) > 0.0);
}
