//! Repeats one phase of a node's batch work (for `perf record` and callgrind):
//! `cargo run --release -p torus-bench --example phase_profile -- PHASE [KEYS] [RECEIVER] [REPS]`
//! with PHASE one of deal, verify_sends, echo_ready, aggregate, public_shares,
//! verify_proofs, public_keys. Setup is done first; each repetition is timed.
use torus_bench::node::{inputs_for, prepare_dealings};
use torus_bench::seed;
use torus_engine::avss::{self, SendRef};
use torus_engine::dkg::{self, PublicShares};
use torus_engine::{Engine, Params, Secp256k1};

type S = Secp256k1;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let phase = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "verify_sends".into());
    let keys: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let p = Params::torus(9).unwrap();
    let me: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(p.n);
    let reps: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5);
    let e = Engine::new();
    let all = prepare_dealings::<S>(&e, p, keys, &|_| {});
    let inputs = inputs_for(&e, &all, me, &|_| {});
    let mi = (me - 1) as usize;
    let sends: Vec<SendRef<'_, S>> =
        std::iter::once(SendRef::new(&all.dealings[mi], &all.slices[mi][mi]))
            .chain(
                inputs
                    .others
                    .iter()
                    .zip(&inputs.slices_to_me)
                    .map(|((d, c), s)| SendRef {
                        dealer: *d,
                        commitments: c,
                        slice: s,
                    }),
            )
            .collect();
    let shares = dkg::aggregate(&e, &p, me, &sends).unwrap();
    let mine = dkg::public_shares(&e, &shares, seed(2, u64::from(me))).unwrap();
    let mut all_pub: Vec<&PublicShares<S>> = std::iter::once(&mine)
        .chain(inputs.public_others.iter())
        .filter(|x| x.node <= p.k)
        .collect();
    all_pub.sort_by_key(|x| x.node);
    let senders: Vec<u32> = (1..=p.n).collect();
    eprintln!(
        "setup done; {phase} x {reps}, K={keys}, receiver {me}, {} threads",
        rayon::current_num_threads()
    );
    for _ in 0..reps {
        let t = std::time::Instant::now();
        match phase.as_str() {
            "deal" => {
                let d = avss::deal::<S>(&e, p, me, keys, None, seed(1, u64::from(me))).unwrap();
                std::hint::black_box(d.slices(&e).unwrap());
            }
            "verify_sends" => avss::verify_sends(&e, &p, me, &sends).unwrap(),
            "echo_ready" => {
                for (send, msgs) in sends.iter().zip(&inputs.points_to_me) {
                    let x = avss::ExpectedPoints::new(&e, send.slice, &senders);
                    x.check(&p, msgs).unwrap();
                    x.check(&p, msgs).unwrap();
                }
            }
            "aggregate" => {
                std::hint::black_box(dkg::aggregate(&e, &p, me, &sends).unwrap());
            }
            "public_shares" => {
                std::hint::black_box(dkg::public_shares(&e, &shares, seed(2, 1)).unwrap());
            }
            "verify_proofs" => {
                dkg::verify_public_shares(&e, &p, &shares.commitments, &all_pub).unwrap()
            }
            "public_keys" => {
                std::hint::black_box(dkg::user_public_keys(&e, &p, &all_pub).unwrap());
            }
            other => panic!("unknown phase {other}"),
        }
        println!("{phase}: {:.4} s", t.elapsed().as_secs_f64());
    }
}
