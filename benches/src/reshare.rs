//! One node's resharing work for a batch of K keys (issue 12), phase by phase:
//! the node is a member of the old committee and of the new one (the common
//! case: committees overlap), so it deals its old shares to the new committee
//! and, as a new member, checks and combines every old dealer's sub-sharing.
//!
//! Untimed set-up: a DKG of the old committee (every old node's shares and the
//! user public keys), every other old node's resharing dealing, and the other
//! new nodes' combined shares and public key shares. Timed, for node `me`:
//!
//! - `deal`: [`pss::reshare_deal`] of its old shares, and the slices;
//! - `verify_sends`: every old dealer's send to it (folded MSM);
//! - `verify_old_commitments`: every dealer's `C[0][0]` against the old
//!   commitment vector at the dealer's index ([`pss::verify_reshare_secrets`]);
//! - `echo_ready`: the new committee's echo and ready points of every dealer;
//! - `combine`: its new shares and the new commitment vectors
//!   ([`pss::reshare_combine`], over every old dealer);
//! - `public_shares`, `verify_proofs`, `public_keys`: its new public key
//!   shares with proofs, the proofs of the k' lowest new nodes, and the user
//!   public keys interpolated from them, which must equal the old ones for
//!   every key (checked after the timing; a mismatch is an error).

use torus_engine::avss::{self, Dealing, PointMsg, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::group::Affine;
use torus_engine::{pss, Engine, Params, Suite};

use crate::node::{check_echo_ready, prepare_dealings, public_key_phases, Phases};
use crate::{seed, timed};

/// Everything node `me` receives during one resharing, prepared untimed.
pub struct ReshareInputs<S: Suite> {
    /// The old committee.
    pub old: Params,
    /// The new committee.
    pub new: Params,
    /// Keys in the batch.
    pub keys: usize,
    /// The measured node (in both committees).
    pub me: u32,
    /// Its old shares.
    pub my_old: KeyShares<S>,
    /// The old commitment vectors (`key * k_old + j`).
    pub old_commitments: Vec<Affine<S>>,
    /// The user public keys before the change.
    pub old_public_keys: Vec<Affine<S>>,
    /// The other old dealers' resharing dealings (by increasing index).
    pub others: Vec<Dealing<S>>,
    /// Their slices for `me` (aligned with `others`).
    pub slices_to_me: Vec<Slice<S>>,
    /// Echo and ready points to `me` per dealer, in the order `[me, others..]`:
    /// one message from every new node.
    pub points_to_me: Vec<Vec<PointMsg<S>>>,
    /// Public key shares of the other new nodes among `1..=k_new`.
    pub public_others: Vec<PublicShares<S>>,
}

/// The parameters the new committee checks sub-sharings with: the dealers'
/// indexes are old indexes, so the index range covers both committees.
fn check_params(old: &Params, new: &Params) -> Params {
    Params {
        n: new.n.max(old.n),
        ..*new
    }
}

/// Prepares node `me`'s inputs (untimed). `me` must be in both committees.
pub fn prepare<S: Suite>(
    engine: &Engine,
    old: Params,
    new: Params,
    keys: usize,
    me: u32,
    progress: &dyn Fn(&str),
) -> anyhow::Result<ReshareInputs<S>> {
    anyhow::ensure!(
        me >= 1 && me <= old.n.min(new.n),
        "the measured node {me} must be in both committees (1..={})",
        old.n.min(new.n)
    );
    progress("old committee: DKG");
    let all = prepare_dealings::<S>(engine, old, keys, progress);
    progress("old committee: every node's shares");
    let mut old_shares = Vec::new();
    for i in 1..=old.n {
        old_shares.push(dkg::aggregate(engine, &old, i, &all.sends_to(i))?);
    }
    let old_public: Vec<PublicShares<S>> = old_shares
        .iter()
        .take(old.ku())
        .map(|s| dkg::public_shares(engine, s, seed(2, u64::from(s.node))))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&PublicShares<S>> = old_public.iter().collect();
    let old_public_keys = dkg::user_public_keys(engine, &old, &refs)?;
    progress("old committee: every node's resharing dealing");
    let dealings: Vec<Dealing<S>> = old_shares
        .iter()
        .map(|s| pss::reshare_deal(engine, new, s, seed(3, u64::from(s.node))))
        .collect::<Result<_, _>>()?;
    let slices: Vec<Vec<Slice<S>>> = dealings
        .iter()
        .map(|d| d.slices(engine))
        .collect::<Result<_, _>>()?;
    progress("new committee: the other nodes' shares and public key shares");
    let mut public_others = Vec::new();
    for j in (1..=new.k).filter(|j| *j != me) {
        let sends: Vec<SendRef<'_, S>> = dealings
            .iter()
            .zip(&slices)
            .map(|(d, s)| SendRef::new(d, &s[(j - 1) as usize]))
            .collect();
        let sh = pss::reshare_combine(engine, &old, &new, j, &sends)?;
        public_others.push(dkg::public_shares(engine, &sh, seed(4, u64::from(j)))?);
    }
    let mi = (me - 1) as usize;
    let order: Vec<usize> = std::iter::once(mi)
        .chain((0..old.n as usize).filter(|d| *d != mi))
        .collect();
    let points_to_me = order
        .iter()
        .map(|&d| {
            (1..=new.n)
                .map(|j| avss::echo_points(&slices[d][(j - 1) as usize], me))
                .collect()
        })
        .collect();
    let slices_to_me = order
        .iter()
        .skip(1)
        .map(|&d| slices[d][mi].clone())
        .collect();
    let old_commitments = old_shares[mi].commitments.clone();
    let my_old = old_shares.swap_remove(mi);
    let others = dealings.into_iter().filter(|d| d.dealer != me).collect();
    Ok(ReshareInputs {
        old,
        new,
        keys,
        me,
        my_old,
        old_commitments,
        old_public_keys,
        others,
        slices_to_me,
        points_to_me,
        public_others,
    })
}

/// Runs node `me`'s resharing work once, timing each phase, and checks that
/// the user public keys did not change.
pub fn run<S: Suite>(engine: &Engine, inp: &ReshareInputs<S>) -> anyhow::Result<Phases> {
    let (old, new, me) = (inp.old, inp.new, inp.me);
    let chk = check_params(&old, &new);
    let mut t = Phases::new();
    let (r, s) = timed(|| {
        let d = pss::reshare_deal(engine, new, &inp.my_old, seed(3, u64::from(me)))?;
        let sl = d.slices(engine)?;
        Ok::<_, torus_engine::Error>((d, sl))
    });
    let (mine, my_slices) = r?;
    t.insert("deal", s);
    let my_send = my_slices
        .get((me - 1) as usize)
        .ok_or_else(|| anyhow::anyhow!("no slice of my own dealing for node {me}"))?;
    let sends: Vec<SendRef<'_, S>> = std::iter::once(SendRef {
        dealer: me,
        commitments: &mine.commitments,
        slice: my_send,
    })
    .chain(
        inp.others
            .iter()
            .zip(&inp.slices_to_me)
            .map(|(d, sl)| SendRef::new(d, sl)),
    )
    .collect();
    let (r, s) = timed(|| avss::verify_sends(engine, &chk, me, &sends));
    r?;
    t.insert("verify_sends", s);
    let pairs: Vec<(u32, &avss::Commitments<S>)> =
        sends.iter().map(|x| (x.dealer, x.commitments)).collect();
    let (r, s) = timed(|| pss::verify_reshare_secrets(engine, &old, &inp.old_commitments, &pairs));
    r?;
    t.insert("verify_old_commitments", s);
    let (r, s) = timed(|| check_echo_ready(engine, &chk, new.n, &sends, &inp.points_to_me));
    r?;
    t.insert("echo_ready", s);
    let (r, s) = timed(|| pss::reshare_combine(engine, &old, &new, me, &sends));
    let shares = r?;
    t.insert("combine", s);
    let (pk, _) = public_key_phases(
        engine,
        &new,
        &shares,
        seed(4, u64::from(me)),
        &inp.public_others,
        &mut t,
    )?;
    let changed = pk
        .iter()
        .zip(&inp.old_public_keys)
        .filter(|(a, b)| a != b)
        .count();
    anyhow::ensure!(
        pk.len() == inp.keys && changed == 0,
        "resharing changed {changed} of {} public keys ({} computed)",
        inp.keys,
        pk.len()
    );
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use torus_engine::Secp256k1;

    #[test]
    fn a_node_in_both_committees_reshares_a_batch_and_every_public_key_stays_the_same() {
        let engine = Engine::new();
        for (old, new) in [(5, 5), (5, 7), (7, 4)] {
            let (old, new) = (Params::torus(old).unwrap(), Params::torus(new).unwrap());
            let me = old.n.min(new.n);
            let inp = prepare::<Secp256k1>(&engine, old, new, 6, me, &|_| {}).unwrap();
            let phases = run(&engine, &inp).unwrap();
            assert_eq!(phases.len(), 8, "{phases:?}");
        }
    }

    #[test]
    fn a_measured_node_outside_either_committee_is_refused() {
        let engine = Engine::new();
        let (old, new) = (Params::torus(7).unwrap(), Params::torus(4).unwrap());
        let r = prepare::<Secp256k1>(&engine, old, new, 2, 5, &|_| {});
        assert!(r.is_err());
    }
}
