//! One node's whole work for a batch of K keys (node index 1 of n), phase by
//! phase, and the same work done the naive way.

use std::collections::BTreeMap;

use torus_engine::avss::{self, Dealing, PointMsg, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::{naive, Engine, Params, Scalar, Suite};

use crate::{seed, timed};

/// The other nodes' messages, prepared before timing.
pub struct Inputs<S: Suite> {
    pub params: Params,
    pub keys: usize,
    /// Dealings of nodes 2..=n (node 1's own dealing is timed).
    pub others: Vec<Dealing<S>>,
    /// Slices from every other dealer to node 1.
    pub slices_to_me: Vec<Slice<S>>,
    /// Echo and ready points to node 1, per dealer (2n messages each; the
    /// ready points carry the same values as the echoes).
    pub points_to_me: Vec<Vec<PointMsg<S>>>,
    /// Public key shares of nodes 2..=n.
    pub public_others: Vec<PublicShares<S>>,
}

/// Builds the inputs (untimed): every other dealer deals, slices, and aggregates.
pub fn prepare<S: Suite>(
    engine: &Engine,
    params: Params,
    keys: usize,
    progress: &dyn Fn(&str),
) -> Inputs<S> {
    progress("dealing for the other nodes");
    let others: Vec<Dealing<S>> = (2..=params.n)
        .map(|d| {
            avss::deal::<S>(engine, params, d, keys, None, seed(1, u64::from(d))).expect("deal")
        })
        .collect();
    // Our own dealing is recomputed (timed) with the same seed.
    let mine = avss::deal::<S>(engine, params, 1, keys, None, seed(1, 1)).expect("deal");
    let all: Vec<&Dealing<S>> = std::iter::once(&mine).chain(&others).collect();
    progress("slicing");
    let slices: Vec<Vec<Slice<S>>> = all
        .iter()
        .map(|d| d.slices(engine).expect("slices"))
        .collect();
    let slices_to_me: Vec<Slice<S>> = slices.iter().skip(1).map(|s| s[0].clone()).collect();
    let points_to_me: Vec<Vec<PointMsg<S>>> = slices
        .iter()
        .map(|per_dealer| {
            let echoes: Vec<PointMsg<S>> =
                per_dealer.iter().map(|s| avss::echo_points(s, 1)).collect();
            echoes
        })
        .collect();
    progress("aggregating the other nodes' shares");
    let mut public_others = Vec::new();
    for i in 2..=params.n {
        let sends: Vec<SendRef<'_, S>> = all
            .iter()
            .zip(&slices)
            .map(|(d, s)| SendRef::new(d, &s[(i - 1) as usize]))
            .collect();
        let sh = dkg::aggregate(engine, &params, i, &sends).expect("aggregate");
        public_others
            .push(dkg::public_shares(engine, &sh, seed(2, u64::from(i))).expect("public shares"));
    }
    Inputs {
        params,
        keys,
        others,
        slices_to_me,
        points_to_me,
        public_others,
    }
}

/// Seconds per phase.
pub type Phases = BTreeMap<&'static str, f64>;

/// Runs node 1's work on `inputs` with `engine`, timing each phase.
pub fn run_node<S: Suite>(engine: &Engine, inputs: &Inputs<S>) -> (Phases, KeyShares<S>) {
    let p = inputs.params;
    let mut t = Phases::new();
    let ((mine, my_slices), s) = timed(|| {
        let d = avss::deal::<S>(engine, p, 1, inputs.keys, None, seed(1, 1)).expect("deal");
        let sl = d.slices(engine).expect("slices");
        (d, sl)
    });
    t.insert("deal", s);
    let sends: Vec<SendRef<'_, S>> = std::iter::once(SendRef {
        dealer: 1,
        commitments: &mine.commitments,
        slice: &my_slices[0],
    })
    .chain(
        inputs
            .others
            .iter()
            .zip(&inputs.slices_to_me)
            .map(|(d, s)| SendRef::new(d, s)),
    )
    .collect();
    let (r, s) = timed(|| avss::verify_sends(engine, &p, 1, &sends));
    r.expect("honest sends verify");
    t.insert("verify_sends", s);
    let (r, s) = timed(|| {
        // Echo and ready points: 2n messages per dealer, checked against our slices.
        let senders: Vec<u32> = (1..=p.n).collect();
        for (send, msgs) in sends.iter().zip(&inputs.points_to_me) {
            let expected = avss::ExpectedPoints::new(engine, send.slice, &senders);
            expected.check(&p, msgs)?; // echoes
            expected.check(&p, msgs)?; // readies
        }
        Ok::<(), torus_engine::Error>(())
    });
    r.expect("honest points");
    t.insert("echo_ready", s);
    let (shares, s) = timed(|| dkg::aggregate(engine, &p, 1, &sends).expect("aggregate"));
    t.insert("aggregate", s);
    let (mine_pub, s) =
        timed(|| dkg::public_shares(engine, &shares, seed(2, 1)).expect("public shares"));
    t.insert("public_shares", s);
    // A node needs k verified public key shares (spec §1): its own and k-1 others'.
    let all_pub: Vec<&PublicShares<S>> = std::iter::once(&mine_pub)
        .chain(inputs.public_others.iter().take(p.ku() - 1))
        .collect();
    let (r, s) = timed(|| dkg::verify_public_shares(engine, &p, &shares.commitments, &all_pub));
    r.expect("proofs verify");
    t.insert("verify_proofs", s);
    let (pk, s) = timed(|| dkg::user_public_keys(engine, &p, &all_pub).expect("public keys"));
    t.insert("public_keys", s);
    assert_eq!(pk.len(), inputs.keys);
    (t, shares)
}

/// The naive node: every send, every echo/ready point and every proof checked on
/// its own, one scalar multiplication per term, on the first `keys` keys.
pub fn run_naive<S: Suite>(inputs: &Inputs<S>, d: &[torus_engine::Affine<S>], keys: usize) -> f64 {
    let p = inputs.params;
    let k = p.ku();
    let (_, secs) = timed(|| {
        // Dealing: two multiplications per coefficient.
        let f: Vec<Scalar<S>> = (0..keys * k * k)
            .map(|i| Scalar::<S>::from(i as u64 + 1))
            .collect();
        let c = naive::commit::<S>(&f, &f);
        assert_eq!(c.len(), f.len());
        // Verify-poly of every dealer's send.
        for (d, sl) in inputs.others.iter().zip(&inputs.slices_to_me) {
            let sub = sub_commitments(d, keys);
            let sub_slice = sub_slice(sl, keys);
            assert!(naive::verify_send(&p, 1, &sub, &sub_slice)
                .iter()
                .all(|x| *x));
        }
        // Verify-point of every echo and ready (alpha against the commitments).
        for (d, msgs) in inputs.others.iter().zip(inputs.points_to_me.iter().skip(1)) {
            for key in 0..keys {
                for m in msgs {
                    for _ready in 0..2 {
                        assert!(naive::verify_point::<S>(
                            &d.commitments,
                            key,
                            m.sender,
                            1,
                            &m.alpha[key],
                            &m.alpha_p[key]
                        ));
                    }
                }
            }
        }
        // Every other node's proof (and its binding to D), then the public key.
        for pb in &inputs.public_others {
            for key in 0..keys {
                let dv = &d[key * k..(key + 1) * k];
                assert!(naive::verify_proof::<S>(
                    pb.node,
                    dv,
                    &pb.gs[key],
                    &pb.gshr[key],
                    &pb.proofs[key]
                ));
            }
        }
        for key in 0..keys {
            let idx: Vec<u32> = inputs
                .public_others
                .iter()
                .take(k)
                .map(|x| x.node)
                .collect();
            let gs: Vec<_> = inputs
                .public_others
                .iter()
                .take(k)
                .map(|x| x.gs[key])
                .collect();
            assert!(naive::public_key::<S>(&idx, &gs).is_some());
        }
    });
    secs
}

fn sub_commitments<S: Suite>(d: &Dealing<S>, keys: usize) -> avss::Commitments<S> {
    let kk = d.commitments.k() * d.commitments.k();
    avss::Commitments::from_points(
        d.dealer,
        d.commitments.k(),
        d.commitments.points()[..keys * kk].to_vec(),
    )
    .expect("sub")
}

fn sub_slice<S: Suite>(s: &Slice<S>, keys: usize) -> Slice<S> {
    let k = s.k();
    let (mut a, mut ap, mut b, mut bp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for key in 0..keys {
        a.extend_from_slice(s.row(key).0);
        ap.extend_from_slice(s.row(key).1);
        b.extend_from_slice(s.column(key).0);
        bp.extend_from_slice(s.column(key).1);
    }
    Slice::from_parts(s.receiver, k, a, ap, b, bp).expect("sub slice")
}
