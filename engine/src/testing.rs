//! Generic test bodies (`check_*`), instantiated per suite and per backend by
//! the integration tests (frost's `test-impl` pattern). Enabled by the
//! `test-impl` feature.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::missing_panics_doc
)]

use ff::Field;
use group::Group;

use crate::avss::{self, Dealing, SendRef, Slice};
use crate::dkg::{self, KeyShares, PublicShares};
use crate::group::{Affine, Scalar, Suite};
use crate::{naive, pss, Engine, Error, Params};

pub use crate::avss::deal_with_coefficients;

/// A deterministic seed for dealer `d` of run `run`.
pub fn seed(run: u64, d: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&run.to_le_bytes());
    s[8..12].copy_from_slice(&d.to_le_bytes());
    s
}

/// Everything a full in-process DKG produced.
pub struct DkgRun<S: Suite> {
    pub params: Params,
    pub dealings: Vec<Dealing<S>>,
    /// `slices[d-1][i-1]`: dealer d's slice for receiver i.
    pub slices: Vec<Vec<Slice<S>>>,
    pub shares: Vec<KeyShares<S>>,
    pub public: Vec<PublicShares<S>>,
    pub public_keys: Vec<Affine<S>>,
}

/// Runs dealing, verification, aggregation, public shares and public keys for
/// every node of `params` over `keys` keys, with the given dealer set.
pub fn run_dkg<S: Suite>(engine: &Engine, params: Params, keys: usize, run: u64) -> DkgRun<S> {
    let dealings: Vec<Dealing<S>> = (1..=params.n)
        .map(|d| avss::deal::<S>(engine, params, d, keys, None, seed(run, d)).unwrap())
        .collect();
    let slices: Vec<Vec<Slice<S>>> = dealings.iter().map(|d| d.slices(engine).unwrap()).collect();
    let mut shares = Vec::new();
    for i in 1..=params.n {
        let sends: Vec<SendRef<'_, S>> = dealings
            .iter()
            .zip(&slices)
            .map(|(d, s)| SendRef::new(d, &s[(i - 1) as usize]))
            .collect();
        avss::verify_sends(engine, &params, i, &sends).unwrap();
        shares.push(dkg::aggregate(engine, &params, i, &sends).unwrap());
    }
    let public: Vec<PublicShares<S>> = shares
        .iter()
        .map(|s| dkg::public_shares(engine, s, seed(run ^ 0xabcd, s.node)).unwrap())
        .collect();
    let refs: Vec<&PublicShares<S>> = public.iter().collect();
    dkg::verify_public_shares(engine, &params, &shares[0].commitments, &refs).unwrap();
    let public_keys = dkg::user_public_keys(engine, &params, &refs).unwrap();
    DkgRun {
        params,
        dealings,
        slices,
        shares,
        public,
        public_keys,
    }
}

/// The master secret of every key: the sum of all dealers' secrets.
pub fn master_secrets<S: Suite>(run: &DkgRun<S>) -> Vec<Scalar<S>> {
    let keys = run.public_keys.len();
    let mut out = vec![Scalar::<S>::ZERO; keys];
    for d in &run.dealings {
        for (o, s) in out.iter_mut().zip(d.secrets()) {
            *o += s;
        }
    }
    out
}

/// Full DKG: any k shares reconstruct the master secret, k-1 do not, and the
/// public key is the master secret times G (checked with the naive path too).
pub fn check_dkg<S: Suite>(engine: &Engine, params: Params, keys: usize) {
    let run = run_dkg::<S>(engine, params, keys, 7);
    let secrets = master_secrets(&run);
    let g = S::generator();
    for (pk, s) in run.public_keys.iter().zip(&secrets) {
        assert_eq!(S::from_affine(pk), g * s);
    }
    let k = params.ku();
    // Windows of k consecutive nodes (wrapping) and the last k.
    for start in 0..params.n as usize {
        let pts: Vec<(u32, &[Scalar<S>])> = (0..k)
            .map(|o| {
                let sh = &run.shares[(start + o) % params.n as usize];
                (sh.node, sh.shares())
            })
            .collect();
        assert_eq!(
            dkg::reconstruct::<S>(&pts).unwrap(),
            secrets,
            "start {start}"
        );
        if k > 1 {
            let fewer = dkg::reconstruct::<S>(&pts[..k - 1]).unwrap();
            assert!(
                fewer.iter().zip(&secrets).all(|(a, b)| a != b),
                "k-1 shares must not reconstruct"
            );
        }
    }
    // Any k shares give the same public keys (the last k: other Lagrange
    // coefficients, not integers in general).
    let tail: Vec<&PublicShares<S>> = run.public.iter().rev().take(k).collect();
    assert_eq!(
        dkg::user_public_keys(engine, &params, &tail).unwrap(),
        run.public_keys
    );
    // Public keys against the naive Lagrange in the exponent.
    let idx: Vec<u32> = run.public.iter().take(k).map(|p| p.node).collect();
    for key in 0..keys {
        let gs: Vec<Affine<S>> = run.public.iter().take(k).map(|p| p.gs[key]).collect();
        assert_eq!(
            naive::public_key::<S>(&idx, &gs).unwrap(),
            run.public_keys[key]
        );
    }
}

/// Serial, parallel and naive agree: identical dealings, verdicts, shares,
/// commitment vectors and public keys.
pub fn check_backends_agree<S: Suite>(params: Params, keys: usize) {
    let serial = run_dkg::<S>(&Engine::reference(), params, keys, 11);
    let par = run_dkg::<S>(&Engine::parallel(), params, keys, 11);
    for (a, b) in serial.dealings.iter().zip(&par.dealings) {
        assert_eq!(a.commitments, b.commitments);
    }
    assert_eq!(serial.slices, par.slices);
    assert_eq!(serial.shares, par.shares);
    assert_eq!(serial.public_keys, par.public_keys);
    // The naive per-message verification accepts every send.
    for (d, sl) in serial.dealings.iter().zip(&serial.slices) {
        for s in sl {
            assert!(naive::verify_send(&params, s.receiver, &d.commitments, s)
                .iter()
                .all(|x| *x));
        }
    }
    // Naive proof checks accept every proof.
    for p in &serial.public {
        let d = &serial.shares[0];
        for key in 0..keys {
            assert!(naive::verify_proof::<S>(
                p.node,
                d.commitment_vector(key),
                &p.gs[key],
                &p.gshr[key],
                &p.proofs[key]
            ));
        }
    }
}

/// The fixed-base and MSM kernels agree with the naive path on edge inputs.
pub fn check_kernels<S: Suite>(engine: &Engine, len: usize) {
    use rand_core::OsRng;
    let mut f: Vec<Scalar<S>> = (0..len).map(|_| Scalar::<S>::random(OsRng)).collect();
    let mut fp: Vec<Scalar<S>> = (0..len).map(|_| Scalar::<S>::random(OsRng)).collect();
    if len > 0 {
        f[0] = Scalar::<S>::ZERO;
        fp[0] = Scalar::<S>::ZERO;
    }
    if len > 1 {
        f[1] = -Scalar::<S>::ONE;
        fp[1] = Scalar::<S>::ZERO;
    }
    if len > 2 {
        f[2] = Scalar::<S>::ONE;
        fp[2] = -Scalar::<S>::ONE;
    }
    let c = engine.ct_commit::<S>(&f, &fp).unwrap();
    assert_eq!(c, naive::commit::<S>(&f, &fp));
    let g = engine.ct_mul_g::<S>(&f);
    let h = engine.ct_mul_h::<S>(&fp);
    for i in 0..len {
        assert_eq!(S::from_affine(&g[i]), S::generator() * f[i]);
        assert_eq!(S::from_affine(&h[i]), S::h() * fp[i]);
    }
    // MSM over points including the identity and repeats.
    // Edge points: the identity, a repeated point, a point and its negation.
    let mut pts = c.clone();
    if len > 3 {
        pts[3] = pts[4 % len];
    }
    if len > 5 {
        pts[5] = Affine::<S>::default();
        assert!(S::is_identity(&pts[5]));
        pts[6 % len] = S::to_affine(&-S::from_affine(&pts[7 % len]));
    }
    let m = engine.vartime_msm::<S>(&pts, &f).unwrap();
    assert_eq!(m, naive::msm::<S>(&pts, &f));
    if len > 0 {
        assert!(matches!(
            engine.vartime_msm::<S>(&pts, &f[..len - 1]),
            Err(Error::LengthMismatch { .. })
        ));
    }
    assert!(bool::from(
        engine.vartime_msm::<S>(&[], &[]).unwrap().is_identity()
    ));
}

/// Negative cases of the sending phase: each gives a typed error naming the
/// culprit, and the honest dealers' result is unchanged.
pub fn check_bad_sends<S: Suite>(engine: &Engine, params: Params, keys: usize) {
    let run = run_dkg::<S>(engine, params, keys, 21);
    let me = 1u32;
    let mut my: Vec<Slice<S>> = run.slices.iter().map(|s| s[0].clone()).collect();
    fn refs<'a, S: Suite>(dealings: &'a [Dealing<S>], my: &'a [Slice<S>]) -> Vec<SendRef<'a, S>> {
        dealings
            .iter()
            .zip(my)
            .map(|(d, s)| SendRef::new(d, s))
            .collect()
    }
    // Corrupted row of dealer 2, key keys-1; corrupted column of dealer 3, key 0.
    my[1].corrupt_for_tests(keys - 1, false);
    if params.n >= 3 {
        my[2].corrupt_for_tests(0, true);
    }
    let err = avss::verify_sends(engine, &params, me, &refs(&run.dealings, &my)).unwrap_err();
    match &err {
        Error::InvalidSend(c) => {
            assert_eq!(c[0].node, 2);
            assert_eq!(c[0].keys, vec![keys - 1]);
            if params.n >= 3 {
                assert_eq!(c[1].node, 3);
                assert_eq!(c[1].keys, vec![0]);
            }
        }
        e => panic!("unexpected {e:?}"),
    }
    let mut blamed = err.culprits();
    blamed.sort_unstable();
    // The honest dealers (everyone else) verify, and their aggregate equals the one
    // computed from pristine slices.
    let honest: Vec<SendRef<'_, S>> = refs(&run.dealings, &my)
        .into_iter()
        .filter(|s| !blamed.contains(&s.dealer))
        .collect();
    avss::verify_sends(engine, &params, me, &honest).unwrap();
    if honest.len() >= params.ku() {
        let clean: Vec<Slice<S>> = run.slices.iter().map(|s| s[0].clone()).collect();
        let clean_refs: Vec<SendRef<'_, S>> = refs(&run.dealings, &clean)
            .into_iter()
            .filter(|s| !blamed.contains(&s.dealer))
            .collect();
        assert_eq!(
            dkg::aggregate(engine, &params, me, &honest).unwrap(),
            dkg::aggregate(engine, &params, me, &clean_refs).unwrap()
        );
    }
    // Duplicate dealer.
    let clean: Vec<Slice<S>> = run.slices.iter().map(|s| s[0].clone()).collect();
    let mut dup = refs(&run.dealings, &clean);
    dup.push(dup[0]);
    assert_eq!(
        avss::verify_sends(engine, &params, me, &dup),
        Err(Error::DuplicateDealer(1))
    );
    // Unknown dealer.
    let mut unk = refs(&run.dealings, &clean);
    unk[0].dealer = params.n + 1;
    assert_eq!(
        avss::verify_sends(engine, &params, me, &unk),
        Err(Error::UnknownDealer(params.n + 1))
    );
    // A commitment matrix of the wrong size (a (k+1)x(k+1) sharing: threshold raising).
    let bigger = Params::new(params.n, params.k + 1, 0).unwrap_or(Params {
        n: params.n + 1,
        k: params.k + 1,
        t: 0,
    });
    let big = avss::deal::<S>(
        engine,
        Params {
            n: bigger.n.max(params.n),
            ..bigger
        },
        2,
        keys,
        None,
        seed(99, 2),
    )
    .unwrap();
    let mut wrong = refs(&run.dealings, &clean);
    wrong[1].commitments = &big.commitments;
    match avss::verify_sends(engine, &params, me, &wrong) {
        Err(Error::MalformedSharing { dealer: 2, .. }) => {}
        e => panic!("unexpected {e:?}"),
    }
    // Identity commitments never construct.
    let mut pts = run.dealings[0].commitments.points().to_vec();
    pts[1] = Affine::<S>::default();
    assert!(S::is_identity(&pts[1]));
    assert!(matches!(
        avss::Commitments::<S>::from_points(4, params.ku(), pts),
        Err(Error::IdentityCommitment {
            dealer: 4,
            key: 0,
            entry: 1
        })
    ));
}

/// Echo/ready points: checks against the slice and against the commitments
/// agree, a corrupted point names its sender, and a missing send is recovered.
pub fn check_points<S: Suite>(engine: &Engine, params: Params, keys: usize) {
    let run = run_dkg::<S>(engine, params, keys, 31);
    let dealer = &run.dealings[0];
    let me = params.n; // receiver
    let my_slice = &run.slices[0][(me - 1) as usize];
    let msgs: Vec<avss::PointMsg<S>> = (1..=params.n)
        .map(|s| avss::echo_points(&run.slices[0][(s - 1) as usize], me))
        .collect();
    avss::check_points_with_slice(&params, my_slice, &msgs).unwrap();
    avss::verify_points(engine, &params, me, &dealer.commitments, &msgs).unwrap();
    let recovered = avss::recover_slice(engine, &params, me, &dealer.commitments, &msgs).unwrap();
    assert_eq!(&recovered, my_slice);
    // One sender lies about one key.
    let mut bad = msgs.clone();
    let liar = bad.len() - 1;
    bad[liar].alpha.as_mut_slice()[keys - 1] += Scalar::<S>::ONE;
    let liar_idx = bad[liar].sender;
    match avss::check_points_with_slice(&params, my_slice, &bad) {
        Err(Error::InvalidPoints(c)) => {
            assert_eq!((c[0].node, c[0].keys.clone()), (liar_idx, vec![keys - 1]))
        }
        e => panic!("unexpected {e:?}"),
    }
    match avss::verify_points(engine, &params, me, &dealer.commitments, &bad) {
        Err(Error::InvalidPoints(c)) => {
            assert_eq!((c[0].node, c[0].keys.clone()), (liar_idx, vec![keys - 1]))
        }
        e => panic!("unexpected {e:?}"),
    }
    // Recovery still works from the honest ones (when k of them remain).
    if params.n as usize > params.ku() {
        let r = avss::recover_slice(engine, &params, me, &dealer.commitments, &bad).unwrap();
        assert_eq!(&r, my_slice);
    }
    // Naive per-point check agrees.
    for m in &msgs {
        assert!(naive::verify_point::<S>(
            &dealer.commitments,
            0,
            m.sender,
            me,
            &m.alpha[0],
            &m.alpha_p[0]
        ));
        assert!(naive::verify_point::<S>(
            &dealer.commitments,
            0,
            me,
            m.sender,
            &m.beta[0],
            &m.beta_p[0]
        ));
    }
}

/// A bad public key share proof names its node; duplicate indexes are refused.
pub fn check_bad_proofs<S: Suite>(engine: &Engine, params: Params, keys: usize) {
    let run = run_dkg::<S>(engine, params, keys, 41);
    let d = &run.shares[0].commitments;
    let mut public = run.public.clone();
    let victim = 1usize.min(public.len() - 1);
    public[victim].proofs[keys - 1].u1 += Scalar::<S>::ONE;
    let refs: Vec<&PublicShares<S>> = public.iter().collect();
    match dkg::verify_public_shares(engine, &params, d, &refs) {
        Err(Error::InvalidProof(c)) => {
            assert_eq!(c.len(), 1);
            assert_eq!(
                (c[0].node, c[0].keys.clone()),
                (public[victim].node, vec![keys - 1])
            );
        }
        e => panic!("unexpected {e:?}"),
    }
    // A public key share that is not bound to the commitment vector.
    let mut public = run.public.clone();
    let other = run.public[0].gshr[0];
    public[victim].gshr[0] = other;
    let refs: Vec<&PublicShares<S>> = public.iter().collect();
    let err = dkg::verify_public_shares(engine, &params, d, &refs).unwrap_err();
    assert_eq!(err.culprits(), vec![public[victim].node]);
    let refs: Vec<&PublicShares<S>> = vec![&run.public[0], &run.public[0]];
    assert_eq!(
        dkg::verify_public_shares(engine, &params, d, &refs),
        Err(Error::DuplicateIndex(run.public[0].node))
    );
}

/// Resharing to a new committee with different (n, k): public keys unchanged, new
/// shares reconstruct the same secrets, old and new shares do not combine, and a
/// bad sub-share is blamed while the others finish.
pub fn check_reshare<S: Suite>(engine: &Engine, old: Params, new: Params, keys: usize) {
    let run = run_dkg::<S>(engine, old, keys, 51);
    let secrets = master_secrets(&run);
    let dealings: Vec<Dealing<S>> = run
        .shares
        .iter()
        .map(|s| pss::reshare_deal(engine, new, s, seed(52, s.node)).unwrap())
        .collect();
    let slices: Vec<Vec<Slice<S>>> = dealings.iter().map(|d| d.slices(engine).unwrap()).collect();
    let old_d = &run.shares[0].commitments;
    let pairs: Vec<(u32, &avss::Commitments<S>)> = dealings
        .iter()
        .map(|d| (d.dealer, &d.commitments))
        .collect();
    pss::verify_reshare_secrets(engine, &old, old_d, &pairs).unwrap();
    // A dealer that reshares a wrong secret is caught against the old commitments.
    let mut wrong_shares = run.shares[0].clone();
    wrong_shares.s.as_mut_slice()[keys - 1] += Scalar::<S>::ONE;
    let liar = pss::reshare_deal(engine, new, &wrong_shares, seed(53, 1)).unwrap();
    let mut bad_pairs = pairs.clone();
    bad_pairs[0] = (1, &liar.commitments);
    match pss::verify_reshare_secrets(engine, &old, old_d, &bad_pairs) {
        Err(Error::InvalidReshare(c)) => {
            assert_eq!((c[0].node, c[0].keys.clone()), (1, vec![keys - 1]))
        }
        e => panic!("unexpected {e:?}"),
    }
    // The new committee combines the other old dealers (all but dealer 1).
    let decided: Vec<usize> = (1..old.n as usize).collect();
    let mut new_shares = Vec::new();
    let mut recovery = Vec::new();
    for j in 1..=new.n {
        let sends: Vec<SendRef<'_, S>> = decided
            .iter()
            .map(|&d| SendRef {
                dealer: dealings[d].dealer,
                commitments: &dealings[d].commitments,
                slice: &slices[d][(j - 1) as usize],
            })
            .collect();
        avss::verify_sends(
            engine,
            &Params {
                n: new.n.max(old.n),
                ..new
            },
            j,
            &sends,
        )
        .unwrap();
        new_shares.push(pss::reshare_combine(engine, &old, &new, j, &sends).unwrap());
        recovery.push(pss::reshare_recovery(engine, &new, j, &sends).unwrap());
    }
    // The recovery material is the combined sharing: its row 0 holds the new
    // shares, its column 0 the new commitment vectors, every slice verifies
    // against the combined matrices, and k peers' points rebuild a lost slice.
    for (j, ((slice, mats), sh)) in (1..=new.n).zip(recovery.iter().zip(&new_shares)) {
        assert_eq!(mats.column0(), sh.commitments, "node {j}");
        for key in 0..keys {
            assert_eq!(slice.row(key).0[0], sh.shares()[key], "node {j} key {key}");
            assert_eq!(slice.row(key).1[0], sh.blinding_shares()[key]);
        }
        let send = SendRef {
            dealer: 1,
            commitments: mats,
            slice,
        };
        avss::verify_sends(engine, &new, j, &[send]).unwrap();
        let points: Vec<_> = recovery
            .iter()
            .filter(|(s, _)| s.receiver != j)
            .take(new.ku())
            .map(|(s, _)| avss::echo_points(s, j))
            .collect();
        assert_eq!(
            &avss::recover_slice(engine, &new, j, mats, &points).unwrap(),
            slice
        );
    }
    let kn = new.ku();
    let pts: Vec<(u32, &[Scalar<S>])> = new_shares
        .iter()
        .rev()
        .take(kn)
        .map(|s| (s.node, s.shares()))
        .collect();
    assert_eq!(dkg::reconstruct::<S>(&pts).unwrap(), secrets);
    // Public keys are unchanged.
    let public: Vec<PublicShares<S>> = new_shares
        .iter()
        .map(|s| dkg::public_shares(engine, s, seed(54, s.node)).unwrap())
        .collect();
    let refs: Vec<&PublicShares<S>> = public.iter().collect();
    dkg::verify_public_shares(engine, &new, &new_shares[0].commitments, &refs).unwrap();
    assert_eq!(
        dkg::user_public_keys(engine, &new, &refs).unwrap(),
        run.public_keys
    );
    // Old and new shares do not combine.
    let kmax = old.ku().max(kn);
    let mixed: Vec<(u32, &[Scalar<S>])> = (0..kmax)
        .map(|i| {
            if i % 2 == 0 {
                (
                    run.shares[i % old.n as usize].node,
                    run.shares[i % old.n as usize].shares(),
                )
            } else {
                (
                    new_shares[i % new.n as usize].node,
                    new_shares[i % new.n as usize].shares(),
                )
            }
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mixed: Vec<(u32, &[Scalar<S>])> = mixed.into_iter().filter(|p| seen.insert(p.0)).collect();
    if mixed.len() >= 2 {
        assert_ne!(dkg::reconstruct::<S>(&mixed).unwrap(), secrets);
    }
}
