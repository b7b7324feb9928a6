//! One node's whole work for a batch of K keys, phase by phase, and the same
//! work done the naive way.
//!
//! The measured node is any committee member `me` (the receiver). Which one
//! matters: the folded verification's scalars are a 128-bit weight times a power
//! `me^j` of the receiver's index, so node 1 (every power is 1) gets ~129-bit
//! scalars and a cheaper MSM than any other node; node n gets the longest
//! (~128 + (k-1) log2 n bits). `torus-bench engine` measures node n unless told
//! otherwise, and records which in its JSON (`measured_receivers`).

use std::collections::BTreeMap;

use rayon::prelude::*;
use torus_engine::avss::{self, Dealing, PointMsg, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::{naive, Affine, Engine, Params, Scalar, Suite};

use crate::{seed, timed};

/// Every dealer's dealing and slices for one batch, prepared once (untimed) and
/// shared by the inputs of every measured receiver.
pub struct Dealings<S: Suite> {
    /// The committee.
    pub params: Params,
    /// Keys in the batch.
    pub keys: usize,
    /// Dealings of nodes 1..=n (dealer d at index d - 1), seeds `seed(1, d)`.
    pub dealings: Vec<Dealing<S>>,
    /// `slices[d - 1][i - 1]`: dealer d's slice for receiver i.
    pub slices: Vec<Vec<Slice<S>>>,
}

impl<S: Suite> Dealings<S> {
    /// Every dealer's send to receiver `i` (in `1..=n`).
    pub fn sends_to(&self, i: u32) -> Vec<SendRef<'_, S>> {
        self.dealings
            .iter()
            .zip(&self.slices)
            .filter_map(|(d, s)| Some(SendRef::new(d, s.get((i as usize).checked_sub(1)?)?)))
            .collect()
    }
}

/// The other nodes' messages to node `me`, prepared before timing.
pub struct Inputs<S: Suite> {
    /// The committee.
    pub params: Params,
    /// Keys in the batch.
    pub keys: usize,
    /// The measured node's index (1-based).
    pub me: u32,
    /// The other dealers' indexes and commitments, by increasing index (node
    /// `me`'s own dealing is recomputed, timed, with the same seed).
    pub others: Vec<(u32, avss::Commitments<S>)>,
    /// The slice every other dealer sends to `me` (aligned with `others`).
    pub slices_to_me: Vec<Slice<S>>,
    /// Echo and ready points to `me`, per dealer in the order `[me, others..]`:
    /// the n messages of every sender (the ready points carry the same values
    /// as the echoes).
    pub points_to_me: Vec<Vec<PointMsg<S>>>,
    /// Public key shares of the other nodes, by increasing index.
    pub public_others: Vec<PublicShares<S>>,
    /// Node `me`'s own commitments and slice (what its timed dealing recomputes),
    /// for the naive path.
    pub own_commitments: avss::Commitments<S>,
    /// See `own_commitments`.
    pub own_slice: Slice<S>,
}

/// Deals for every node of the committee and slices every dealing (untimed).
pub fn prepare_dealings<S: Suite>(
    engine: &Engine,
    params: Params,
    keys: usize,
    progress: &dyn Fn(&str),
) -> Dealings<S> {
    progress("dealing for every node");
    let dealings: Vec<Dealing<S>> = (1..=params.n)
        .map(|d| {
            avss::deal::<S>(engine, params, d, keys, None, seed(1, u64::from(d))).expect("deal")
        })
        .collect();
    progress("slicing");
    let slices = dealings
        .iter()
        .map(|d| d.slices(engine).expect("slices"))
        .collect();
    Dealings {
        params,
        keys,
        dealings,
        slices,
    }
}

/// Node `me`'s inputs from the prepared dealings: the sends, echo and ready
/// points and public key shares the other nodes send it (untimed).
pub fn inputs_for<S: Suite>(
    engine: &Engine,
    all: &Dealings<S>,
    me: u32,
    progress: &dyn Fn(&str),
) -> Inputs<S> {
    let params = all.params;
    assert!((1..=params.n).contains(&me), "receiver {me} not in 1..=n");
    let mi = (me - 1) as usize;
    let order: Vec<usize> = std::iter::once(mi)
        .chain((0..params.n as usize).filter(|d| *d != mi))
        .collect();
    let others: Vec<(u32, avss::Commitments<S>)> = all
        .dealings
        .iter()
        .filter(|d| d.dealer != me)
        .map(|d| (d.dealer, d.commitments.clone()))
        .collect();
    let slices_to_me: Vec<Slice<S>> = order
        .iter()
        .skip(1)
        .map(|d| all.slices[*d][mi].clone())
        .collect();
    let points_to_me: Vec<Vec<PointMsg<S>>> = order
        .iter()
        .map(|d| {
            all.slices[*d]
                .iter()
                .map(|s| avss::echo_points(s, me))
                .collect()
        })
        .collect();
    progress("aggregating the other nodes' shares");
    let mut public_others = Vec::new();
    for i in (1..=params.n).filter(|i| *i != me) {
        let sh = dkg::aggregate(engine, &params, i, &all.sends_to(i)).expect("aggregate");
        public_others
            .push(dkg::public_shares(engine, &sh, seed(2, u64::from(i))).expect("public shares"));
    }
    Inputs {
        params,
        keys: all.keys,
        me,
        others,
        slices_to_me,
        points_to_me,
        public_others,
        own_commitments: all.dealings[mi].commitments.clone(),
        own_slice: all.slices[mi][mi].clone(),
    }
}

/// Builds node 1's inputs (untimed): every dealer deals, slices, and aggregates.
pub fn prepare<S: Suite>(
    engine: &Engine,
    params: Params,
    keys: usize,
    progress: &dyn Fn(&str),
) -> Inputs<S> {
    prepare_for(engine, params, keys, 1, progress)
}

/// Builds node `me`'s inputs (untimed).
pub fn prepare_for<S: Suite>(
    engine: &Engine,
    params: Params,
    keys: usize,
    me: u32,
    progress: &dyn Fn(&str),
) -> Inputs<S> {
    let all = prepare_dealings::<S>(engine, params, keys, progress);
    inputs_for(engine, &all, me, progress)
}

/// Seconds per phase.
pub type Phases = BTreeMap<&'static str, f64>;

/// What one timed run of the node's work produced (for checks and the naive path).
pub struct NodeOutput<S: Suite> {
    /// The node's final shares and commitment vectors.
    pub shares: KeyShares<S>,
    /// The public key shares whose proofs the node verified, by index: those of
    /// nodes 1..=k (the set the user public keys are interpolated from).
    pub verified: Vec<PublicShares<S>>,
}

/// Checks the echo and ready points of every dealer's sharing (`points[d]`:
/// one message from each of the nodes `1..=senders`, for `sends[d]`) against
/// the receiver's own slices, the way a node does: echoes, then readies (the
/// same values).
pub fn check_echo_ready<S: Suite>(
    engine: &Engine,
    params: &Params,
    senders: u32,
    sends: &[SendRef<'_, S>],
    points: &[Vec<PointMsg<S>>],
) -> torus_engine::Result<()> {
    let senders: Vec<u32> = (1..=senders).collect();
    for (send, msgs) in sends.iter().zip(points) {
        let expected = avss::ExpectedPoints::new(engine, send.slice, &senders);
        expected.check(params, msgs)?; // echoes
        expected.check(params, msgs)?; // readies
    }
    Ok(())
}

/// User public keys and the verified public key shares they came from.
pub type PublicKeys<S> = (Vec<Affine<S>>, Vec<PublicShares<S>>);

/// The public-key phases of a node holding `shares`, timed into `t`: its public
/// key shares with proofs (`public_shares`, from `seed`), the proofs of the k
/// lowest indexes among its own and `others` (`verify_proofs`), and the user
/// public keys interpolated from them (`public_keys`). Returns the keys and the
/// verified public key shares.
pub fn public_key_phases<S: Suite>(
    engine: &Engine,
    p: &Params,
    shares: &KeyShares<S>,
    seed: [u8; 32],
    others: &[PublicShares<S>],
    t: &mut Phases,
) -> torus_engine::Result<PublicKeys<S>> {
    let (r, s) = timed(|| dkg::public_shares(engine, shares, seed));
    let mine_pub = r?;
    t.insert("public_shares", s);
    // A node needs k verified public key shares (spec §1). It takes those of
    // the k lowest indexes (its own among them when me <= k; its own proof is
    // verified too, so the work is k proofs whoever it is): over {1..k} the
    // Lagrange coefficients at 0 are integers, and any k verified shares give
    // the same user public keys.
    let mut all_pub: Vec<&PublicShares<S>> = std::iter::once(&mine_pub)
        .chain(others.iter())
        .filter(|x| x.node <= p.k)
        .collect();
    all_pub.sort_by_key(|x| x.node);
    let (r, s) = timed(|| dkg::verify_public_shares(engine, p, &shares.commitments, &all_pub));
    r?;
    t.insert("verify_proofs", s);
    let (r, s) = timed(|| dkg::user_public_keys(engine, p, &all_pub));
    let pk = r?;
    t.insert("public_keys", s);
    Ok((pk, all_pub.into_iter().cloned().collect()))
}

/// Runs node `inputs.me`'s work on `inputs` with `engine`, timing each phase.
pub fn run_node<S: Suite>(engine: &Engine, inputs: &Inputs<S>) -> (Phases, KeyShares<S>) {
    let (t, out) = run_node_full(engine, inputs);
    (t, out.shares)
}

/// [`run_node`], also returning the verified public key shares.
pub fn run_node_full<S: Suite>(engine: &Engine, inputs: &Inputs<S>) -> (Phases, NodeOutput<S>) {
    let p = inputs.params;
    let me = inputs.me;
    let mut t = Phases::new();
    let ((mine, my_slices), s) = timed(|| {
        let d = avss::deal::<S>(engine, p, me, inputs.keys, None, seed(1, u64::from(me)))
            .expect("deal");
        let sl = d.slices(engine).expect("slices");
        (d, sl)
    });
    t.insert("deal", s);
    let sends: Vec<SendRef<'_, S>> = std::iter::once(SendRef {
        dealer: me,
        commitments: &mine.commitments,
        slice: &my_slices[(me - 1) as usize],
    })
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
    let (r, s) = timed(|| avss::verify_sends(engine, &p, me, &sends));
    r.expect("honest sends verify");
    t.insert("verify_sends", s);
    let (r, s) = timed(|| check_echo_ready(engine, &p, p.n, &sends, &inputs.points_to_me));
    r.expect("honest points");
    t.insert("echo_ready", s);
    let (shares, s) = timed(|| dkg::aggregate(engine, &p, me, &sends).expect("aggregate"));
    t.insert("aggregate", s);
    let (pk, verified) = public_key_phases(
        engine,
        &p,
        &shares,
        seed(2, u64::from(me)),
        &inputs.public_others,
        &mut t,
    )
    .expect("public key shares, proofs and keys");
    assert_eq!(pk.len(), inputs.keys);
    (t, NodeOutput { shares, verified })
}

/// The naive node on the first `keys` keys, on the current rayon pool (keys
/// spread over its threads, as the engine spreads its work): every send, every
/// echo/ready point and every proof checked on its own, one scalar
/// multiplication per term. It does the same checks as [`run_node`]: all n
/// dealers' sends and points (its own included) and the proofs of the same k
/// public key shares (`out.verified`). Returns seconds.
pub fn run_naive<S: Suite>(inputs: &Inputs<S>, out: &NodeOutput<S>, keys: usize) -> f64 {
    let (_, secs) = timed(|| {
        (0..keys)
            .into_par_iter()
            .with_max_len(1)
            .for_each(|key| naive_key(inputs, out, key));
    });
    secs
}

/// The naive node's work for one key.
fn naive_key<S: Suite>(inputs: &Inputs<S>, out: &NodeOutput<S>, key: usize) {
    let p = inputs.params;
    let k = p.ku();
    let me = inputs.me;
    // Dealing: two multiplications per coefficient.
    let f: Vec<Scalar<S>> = (0..k * k)
        .map(|i| Scalar::<S>::from((key * k * k + i) as u64 + 1))
        .collect();
    let c = naive::commit::<S>(&f, &f);
    assert_eq!(c.len(), f.len());
    // The dealers in the engine's order: me, then the others.
    let mine_c = sub_commitments(&inputs.own_commitments, key);
    let mine_slice = sub_slice(&inputs.own_slice, key);
    let dealers: Vec<(avss::Commitments<S>, Slice<S>)> = std::iter::once((mine_c, mine_slice))
        .chain(
            inputs
                .others
                .iter()
                .zip(&inputs.slices_to_me)
                .map(|((_, c), sl)| (sub_commitments(c, key), sub_slice(sl, key))),
        )
        .collect();
    // Verify-poly of every dealer's send.
    for (c, sl) in &dealers {
        assert!(naive::verify_send(&p, me, c, sl).iter().all(|x| *x));
    }
    // Verify-point of every echo and ready (alpha against the commitments).
    for ((c, _), msgs) in dealers.iter().zip(&inputs.points_to_me) {
        for m in msgs {
            for _ready in 0..2 {
                assert!(naive::verify_point::<S>(
                    c,
                    0,
                    m.sender,
                    me,
                    &m.alpha[key],
                    &m.alpha_p[key]
                ));
            }
        }
    }
    // The k proofs the engine verified (and their binding to D), then the public key.
    let dv = out.shares.commitment_vector(key);
    for pb in &out.verified {
        assert!(naive::verify_proof::<S>(
            pb.node,
            dv,
            &pb.gs[key],
            &pb.gshr[key],
            &pb.proofs[key]
        ));
    }
    let idx: Vec<u32> = out.verified.iter().map(|x| x.node).collect();
    let gs: Vec<_> = out.verified.iter().map(|x| x.gs[key]).collect();
    assert!(naive::public_key::<S>(&idx, &gs).is_some());
}

fn sub_commitments<S: Suite>(c: &avss::Commitments<S>, key: usize) -> avss::Commitments<S> {
    avss::Commitments::from_points(0, c.k(), c.matrix(key).to_vec()).expect("sub")
}

fn sub_slice<S: Suite>(s: &Slice<S>, key: usize) -> Slice<S> {
    let k = s.k();
    let (a, ap) = s.row(key);
    let (b, bp) = s.column(key);
    Slice::from_parts(
        s.receiver,
        k,
        a.to_vec(),
        ap.to_vec(),
        b.to_vec(),
        bp.to_vec(),
    )
    .expect("sub slice")
}
