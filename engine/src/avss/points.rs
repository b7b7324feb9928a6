//! Echo and ready points (spec §1 "verify-point"), and recovery of a slice from
//! verified points when the dealer's send never arrived.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! Sender s tells receiver r, for every key, `alpha = f(s, r)`, `beta = f(r, s)`
//! (and primes). With a verified slice, r checks them in the scalar field:
//! `alpha == b_r(s)` and `beta == a_r(s)`, no curve arithmetic. Without one, they
//! are checked against the commitments, folded into one MSM.

use std::collections::HashSet;

use ff::Field;
use subtle::ConstantTimeEq;

use super::{bisect, culprits_from, fresh_seed, weights, Commitments, Fold, Slice, SmallPoint};
use crate::error::{Error, Result};
use crate::group::{Scalar, Suite};
use crate::params::Params;
use crate::poly::{lagrange_basis, powers};
use crate::secret::SecretVec;
use crate::Engine;

/// The points one node sends another in an echo or ready, for a batch. Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointMsg<S: Suite> {
    /// The sender's index s.
    pub sender: u32,
    /// `f(s, r)` per key.
    pub alpha: SecretVec<Scalar<S>>,
    /// `f'(s, r)` per key.
    pub alpha_p: SecretVec<Scalar<S>>,
    /// `f(r, s)` per key.
    pub beta: SecretVec<Scalar<S>>,
    /// `f'(r, s)` per key.
    pub beta_p: SecretVec<Scalar<S>>,
}

impl<S: Suite> PointMsg<S> {
    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.alpha.len()
    }
    fn well_formed(&self, keys: usize) -> bool {
        [
            self.alpha.len(),
            self.alpha_p.len(),
            self.beta.len(),
            self.beta_p.len(),
        ]
        .iter()
        .all(|l| *l == keys)
    }
}

/// The echo (or ready) points node `slice.receiver` sends to node `to`:
/// `alpha = a_i(to) = f(i, to)`, `beta = b_i(to) = f(to, i)`.
pub fn echo_points<S: Suite>(slice: &Slice<S>, to: u32) -> PointMsg<S> {
    let x = SmallPoint::<S>::new(to, slice.k());
    let keys = slice.keys();
    let mut m = PointMsg {
        sender: slice.receiver,
        alpha: SecretVec::zeros(keys),
        alpha_p: SecretVec::zeros(keys),
        beta: SecretVec::zeros(keys),
        beta_p: SecretVec::zeros(keys),
    };
    for key in 0..keys {
        let (a, ap) = slice.row(key);
        let (b, bp) = slice.column(key);
        if let (Some(x1), Some(x2), Some(x3), Some(x4)) = (
            m.alpha.as_mut_slice().get_mut(key),
            m.alpha_p.as_mut_slice().get_mut(key),
            m.beta.as_mut_slice().get_mut(key),
            m.beta_p.as_mut_slice().get_mut(key),
        ) {
            *x1 = x.eval(a.iter());
            *x2 = x.eval(ap.iter());
            *x3 = x.eval(b.iter());
            *x4 = x.eval(bp.iter());
        }
    }
    m
}

fn check_senders<S: Suite>(params: &Params, keys: usize, msgs: &[PointMsg<S>]) -> Result<()> {
    let mut seen = HashSet::new();
    for m in msgs {
        params.check_index(m.sender)?;
        if !seen.insert(m.sender) {
            return Err(Error::DuplicateIndex(m.sender));
        }
        if !m.well_formed(keys) {
            return Err(Error::InvalidPoints(vec![crate::error::Culprit {
                node: m.sender,
                keys: Vec::new(),
            }]));
        }
    }
    Ok(())
}

/// Our own polynomials evaluated at every sender's index, per key:
/// what an honest sender's echo and ready must carry. Computed once per dealer
/// and reused for the echo and the ready of every sender.
pub struct ExpectedPoints<S: Suite> {
    keys: usize,
    /// `values[(sender_pos * keys + key) * 4 ..][..4]` = `b(s), b'(s), a(s), a'(s)`.
    senders: Vec<u32>,
    values: SecretVec<Scalar<S>>,
}

impl<S: Suite> core::fmt::Debug for ExpectedPoints<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ExpectedPoints(<redacted>; {} senders, {} keys)",
            self.senders.len(),
            self.keys
        )
    }
}

impl<S: Suite> ExpectedPoints<S> {
    /// Evaluates `slice` at every index in `senders` (in parallel over keys).
    pub fn new(engine: &Engine, slice: &Slice<S>, senders: &[u32]) -> Self {
        let keys = slice.keys();
        let xs: Vec<SmallPoint<S>> = senders
            .iter()
            .map(|&s| SmallPoint::<S>::new(s, slice.k()))
            .collect();
        let mut values = SecretVec::zeros(senders.len() * keys * 4);
        let per_sender = keys * 4;
        engine.chunks_mut(values.as_mut_slice(), per_sender.max(1), |si, chunk| {
            let Some(x) = xs.get(si) else { return };
            for (key, out) in chunk.chunks_mut(4).enumerate() {
                let (a, ap) = slice.row(key);
                let (b, bp) = slice.column(key);
                if let [o0, o1, o2, o3] = out {
                    *o0 = x.eval(b.iter());
                    *o1 = x.eval(bp.iter());
                    *o2 = x.eval(a.iter());
                    *o3 = x.eval(ap.iter());
                }
            }
        });
        ExpectedPoints {
            keys,
            senders: senders.to_vec(),
            values,
        }
    }

    /// Compares messages with the expected values, in constant time per
    /// comparison, naming every (sender, key) that differs.
    pub fn check(&self, params: &Params, msgs: &[PointMsg<S>]) -> Result<()> {
        check_senders(params, self.keys, msgs)?;
        let mut bad = Vec::new();
        for m in msgs {
            let Some(pos) = self.senders.iter().position(|s| *s == m.sender) else {
                return Err(Error::UnknownDealer(m.sender));
            };
            let base = pos * self.keys * 4;
            for key in 0..self.keys {
                let (Some(al), Some(alp), Some(be), Some(bep)) = (
                    m.alpha.get(key),
                    m.alpha_p.get(key),
                    m.beta.get(key),
                    m.beta_p.get(key),
                ) else {
                    continue;
                };
                let Some([e0, e1, e2, e3]) = self.values.get(base + key * 4..base + key * 4 + 4)
                else {
                    continue;
                };
                let ok = e0.ct_eq(al) & e1.ct_eq(alp) & e2.ct_eq(be) & e3.ct_eq(bep);
                if !bool::from(ok) {
                    bad.push((m.sender, key));
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidPoints(culprits_from(&bad)))
        }
    }
}

/// Checks echo/ready points against our own verified slice, in the scalar field
/// and in constant time per comparison. Names every (sender, key) that differs.
/// For both the echo and the ready of many senders, build [`ExpectedPoints`] once.
pub fn check_points_with_slice<S: Suite>(
    params: &Params,
    slice: &Slice<S>,
    msgs: &[PointMsg<S>],
) -> Result<()> {
    check_senders(params, slice.keys(), msgs)?;
    let senders: Vec<u32> = msgs.iter().map(|m| m.sender).collect();
    ExpectedPoints::new(&Engine::reference(), slice, &senders).check(params, msgs)
}

/// Checks echo/ready points against the dealer's commitments, all senders and
/// keys folded into one MSM of K*k^2 points (the combined coefficient of each
/// `C[j][l]` accumulates over senders). Bisection names the culprits.
pub fn verify_points<S: Suite>(
    engine: &Engine,
    params: &Params,
    receiver: u32,
    commitments: &Commitments<S>,
    msgs: &[PointMsg<S>],
) -> Result<()> {
    params.check_index(receiver)?;
    let keys = commitments.keys();
    if commitments.k != params.ku() {
        return Err(Error::LengthMismatch {
            what: "commitment matrix size",
            expected: params.ku(),
            got: commitments.k,
        });
    }
    check_senders(params, keys, msgs)?;
    let items: Vec<(usize, usize)> = (0..msgs.len())
        .flat_map(|m| (0..keys).map(move |k| (m, k)))
        .collect();
    let check = |subset: &[(usize, usize)]| {
        fold_points(engine, params, receiver, commitments, msgs, subset).holds(engine)
    };
    let bad = bisect(&items, &check);
    if bad.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(u32, usize)> = bad
        .iter()
        .filter_map(|(m, k)| msgs.get(*m).map(|m| (m.sender, *k)))
        .collect();
    Err(Error::InvalidPoints(culprits_from(&pairs)))
}

fn fold_points<S: Suite>(
    engine: &Engine,
    params: &Params,
    receiver: u32,
    commitments: &Commitments<S>,
    msgs: &[PointMsg<S>],
    items: &[(usize, usize)],
) -> Fold<S> {
    let k = params.ku();
    let kk = k * k;
    let keys = commitments.keys();
    let seed = fresh_seed();
    let rp = powers(Scalar::<S>::from(u64::from(receiver)), k);
    let sp: Vec<Vec<Scalar<S>>> = msgs
        .iter()
        .map(|m| powers(Scalar::<S>::from(u64::from(m.sender)), k))
        .collect();
    // Per key: coefficient of every C[j][l], accumulated over the senders in `items`.
    let mut by_key: Vec<Vec<usize>> = vec![Vec::new(); keys];
    for &(m, key) in items {
        if let Some(v) = by_key.get_mut(key) {
            v.push(m);
        }
    }
    let parts = engine.map(keys, |key| {
        let mut fold = Fold::<S>::with_capacity(kk);
        let senders = by_key.get(key).map(Vec::as_slice).unwrap_or(&[]);
        if senders.is_empty() {
            return fold;
        }
        let mut coef = vec![Scalar::<S>::ZERO; kk];
        let mut w = [Scalar::<S>::ZERO; 2];
        for &m in senders {
            let (Some(msg), Some(spm)) = (msgs.get(m), sp.get(m)) else {
                continue;
            };
            weights::<S>(&seed, (m * keys + key) as u64, &mut w);
            let [w1, w2] = w;
            let (Some(al), Some(alp), Some(be), Some(bep)) = (
                msg.alpha.get(key),
                msg.alpha_p.get(key),
                msg.beta.get(key),
                msg.beta_p.get(key),
            ) else {
                continue;
            };
            fold.g += w1 * al + w2 * be;
            fold.h += w1 * alp + w2 * bep;
            // alpha = f(s, r): coefficient s^j r^l; beta = f(r, s): r^j s^l.
            for (e, c) in coef.iter_mut().enumerate() {
                let (j, l) = (e / k, e % k);
                let (Some(sj), Some(rl), Some(rj), Some(sl)) =
                    (spm.get(j), rp.get(l), rp.get(j), spm.get(l))
                else {
                    continue;
                };
                *c += w1 * sj * rl + w2 * rj * sl;
            }
        }
        fold.points.extend_from_slice(commitments.matrix(key));
        fold.scalars.extend_from_slice(&coef);
        fold
    });
    let mut all = Fold::<S>::with_capacity(keys * kk);
    for p in parts {
        all.append(p);
    }
    all
}

/// Rebuilds this node's slice from echo/ready points when the dealer's send was
/// missing (AVSS interpolation): the points are first verified against the
/// commitments (bad senders are dropped), then the row `a_r` is interpolated
/// from `(s, beta_s)` and the column `b_r` from `(s, alpha_s)`. Needs at least
/// k verified senders (AVSS waits for k + t before it gets here).
pub fn recover_slice<S: Suite>(
    engine: &Engine,
    params: &Params,
    receiver: u32,
    commitments: &Commitments<S>,
    msgs: &[PointMsg<S>],
) -> Result<Slice<S>> {
    let k = params.ku();
    let good: Vec<&PointMsg<S>> = match verify_points(engine, params, receiver, commitments, msgs) {
        Ok(()) => msgs.iter().collect(),
        Err(Error::InvalidPoints(culprits)) => {
            let bad: HashSet<u32> = culprits.iter().map(|c| c.node).collect();
            msgs.iter().filter(|m| !bad.contains(&m.sender)).collect()
        }
        Err(e) => return Err(e),
    };
    if good.len() < k {
        return Err(Error::TooFewPoints {
            need: k,
            got: good.len(),
        });
    }
    let use_set: Vec<&PointMsg<S>> = good.into_iter().take(k).collect();
    let xs: Vec<u32> = use_set.iter().map(|m| m.sender).collect();
    let basis = lagrange_basis::<Scalar<S>>(&xs)?;
    let keys = commitments.keys();
    let mut a = SecretVec::zeros(keys * k);
    let mut ap = SecretVec::zeros(keys * k);
    let mut b = SecretVec::zeros(keys * k);
    let mut bp = SecretVec::zeros(keys * k);
    for key in 0..keys {
        let interp = |pick: &dyn Fn(&PointMsg<S>) -> Option<Scalar<S>>, out: &mut [Scalar<S>]| {
            for (bi, m) in basis.iter().zip(&use_set) {
                let y = pick(m).unwrap_or(Scalar::<S>::ZERO);
                for (o, c) in out.iter_mut().zip(bi) {
                    *o += *c * y;
                }
            }
        };
        let r = key * k..(key + 1) * k;
        if let Some(o) = a.as_mut_slice().get_mut(r.clone()) {
            interp(&|m| m.beta.get(key).copied(), o);
        }
        if let Some(o) = ap.as_mut_slice().get_mut(r.clone()) {
            interp(&|m| m.beta_p.get(key).copied(), o);
        }
        if let Some(o) = b.as_mut_slice().get_mut(r.clone()) {
            interp(&|m| m.alpha.get(key).copied(), o);
        }
        if let Some(o) = bp.as_mut_slice().get_mut(r) {
            interp(&|m| m.alpha_p.get(key).copied(), o);
        }
    }
    Ok(Slice {
        receiver,
        k,
        a,
        ap,
        b,
        bp,
    })
}
