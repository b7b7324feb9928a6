//! DKG output over a decided dealer set (spec §1 "decide", "nizkp", "pubkey").
//!
//! - Final share `s_i = sum_d f_d(i, 0)` (and `s'_i`), commitment vector
//!   `D[j] = sum_d C_d[j][0]`.
//! - Public key share `gs_i = s_i*G` with a proof of knowledge binding it to the
//!   Pedersen commitment `gshr_i = s_i*G + s'_i*H = sum_j i^j D[j]`.
//! - User public key: Lagrange at 0 of k public key shares.
//!
//! # The proof
//! The spec's NIZKP ("DKG in the wild", `pvss/nizkpk.go`) proves knowledge of
//! `(s, r)` with `gs = s*G` and `gshr - gs = r*H`. We use the same relation and
//! the same challenge, `c = keccak256(pad64(G.x) || pad64(H.x) || pad64(gs.x) ||
//! pad64(gshr.x) || pad64(t1.x) || pad64(t2.x))` with PKCS#7 `pad64` of the
//! minimal big-endian x, but transmit the commitments `(t1, t2)` with the
//! responses `(u1, u2)` instead of `c` (the "batchable" form of the same
//! Chaum-Pedersen-style proof). Verification is then the linear equations
//! `u1*G + c*gs == t1`, `u2*H + c*(gshr - gs) == t2`, which fold with random
//! weights across all keys and all nodes into one MSM, together with the
//! binding `gshr == sum_j i^j D[j]`.

use ff::Field;

use sha3::{Digest, Keccak256};

use crate::avss::{bisect, culprits_from, fresh_seed, weights, Fold, SendRef};
use crate::error::{Error, Result};
use crate::group::{Affine, Scalar, Suite};
use crate::params::Params;
use crate::poly::{lagrange_at_zero, powers};
use crate::secret::SecretVec;
use crate::Engine;

/// A node's final shares for a batch of keys, with the public commitment vectors.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShares<S: Suite> {
    /// The node's 1-based index.
    pub node: u32,
    /// The committee.
    pub params: Params,
    pub(crate) s: SecretVec<Scalar<S>>,
    pub(crate) sp: SecretVec<Scalar<S>>,
    /// `D[key*k + j]`: the Pedersen commitment vector of every key.
    pub commitments: Vec<Affine<S>>,
}

impl<S: Suite> core::fmt::Debug for KeyShares<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyShares")
            .field("node", &self.node)
            .field("params", &self.params)
            .field("keys", &self.keys())
            .field("shares", &"<redacted>")
            .finish()
    }
}

impl<S: Suite> KeyShares<S> {
    /// Builds from parts (decoding from storage); checks lengths.
    pub fn from_parts(
        node: u32,
        params: Params,
        s: Vec<Scalar<S>>,
        sp: Vec<Scalar<S>>,
        commitments: Vec<Affine<S>>,
    ) -> Result<Self> {
        params.check_index(node)?;
        let keys = s.len();
        if sp.len() != keys || commitments.len() != keys * params.ku() {
            return Err(Error::LengthMismatch {
                what: "key share parts",
                expected: keys,
                got: sp.len(),
            });
        }
        Ok(KeyShares {
            node,
            params,
            s: SecretVec::new(s),
            sp: SecretVec::new(sp),
            commitments,
        })
    }
    /// Decodes stored shares: per key its share `s` and blinding share `s'`
    /// (canonical scalar encodings) and its k commitment-vector points (canonical
    /// compressed encodings, key-major). Any non-canonical value or wrong count is
    /// an error.
    pub fn decode_parts(
        node: u32,
        params: Params,
        s: &[&[u8]],
        sp: &[&[u8]],
        commitments: &[&[u8]],
    ) -> Result<Self> {
        let scalars = |v: &[&[u8]]| -> Result<Vec<Scalar<S>>> {
            v.iter()
                .map(|b| S::decode_scalar(b).map_err(Error::from))
                .collect()
        };
        let points = commitments
            .iter()
            .map(|b| S::decode_point(b).map_err(Error::from))
            .collect::<Result<Vec<_>>>()?;
        Self::from_parts(node, params, scalars(s)?, scalars(sp)?, points)
    }

    /// The shares a node holds of a summed sharing, from its slice of that sharing
    /// (the constant terms of its row polynomials) and the sharing's summed
    /// commitments (column 0 of every key): what a node that recovers a batch from
    /// its peers' points ends up with.
    pub fn from_aggregated(
        params: Params,
        slice: &crate::avss::Slice<S>,
        commitments: &crate::avss::Commitments<S>,
    ) -> Result<Self> {
        let keys = slice.keys();
        if commitments.keys() != keys || commitments.k() != params.ku() || slice.k() != params.ku()
        {
            return Err(Error::LengthMismatch {
                what: "aggregated slice and commitments",
                expected: keys,
                got: commitments.keys(),
            });
        }
        let mut s = Vec::with_capacity(keys);
        let mut sp = Vec::with_capacity(keys);
        for key in 0..keys {
            let (a, ap) = slice.try_row(key)?;
            let (Some(x), Some(y)) = (a.first(), ap.first()) else {
                return Err(Error::KeyOutOfRange { key, keys });
            };
            s.push(*x);
            sp.push(*y);
        }
        Self::from_parts(slice.receiver, params, s, sp, commitments.column0())
    }

    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.s.len()
    }
    /// The secret share `(s_i, s'_i)` of one key.
    pub fn share(&self, key: usize) -> Option<(Scalar<S>, Scalar<S>)> {
        Some((*self.s.get(key)?, *self.sp.get(key)?))
    }
    /// All shares `s_i` (secret).
    pub fn shares(&self) -> &[Scalar<S>] {
        &self.s
    }
    /// All blinding shares `s'_i` (secret).
    pub fn blinding_shares(&self) -> &[Scalar<S>] {
        &self.sp
    }
    /// The commitment vector `D[0..k]` of one key.
    pub fn commitment_vector(&self, key: usize) -> &[Affine<S>] {
        let k = self.params.ku();
        self.commitments.get(key * k..(key + 1) * k).unwrap_or(&[])
    }
}

/// Aggregates the verified sends of the decided dealers into this node's final
/// shares and the commitment vectors. Needs at least k dealers.
pub fn aggregate<S: Suite>(
    engine: &Engine,
    params: &Params,
    node: u32,
    decided: &[SendRef<'_, S>],
) -> Result<KeyShares<S>> {
    params.check_index(node)?;
    if decided.len() < params.ku() {
        return Err(Error::NotEnoughDealers {
            need: params.ku(),
            got: decided.len(),
        });
    }
    let keys = decided.first().map_or(0, |s| s.commitments.keys());
    let mut seen = std::collections::HashSet::new();
    for d in decided {
        if !seen.insert(d.dealer) {
            return Err(Error::DuplicateDealer(d.dealer));
        }
        crate::avss::check_send_structure(params, node, keys, d)?;
    }
    let ones = vec![Scalar::<S>::ONE; decided.len()];
    let (s, sp) = combine_shares(decided, keys, &ones);
    // D[key*k + j] = sum_d C_d[j][0]: batch-affine sums over the dealers, in
    // parallel over chunks of the (key, j) entries.
    let columns: Vec<Vec<Affine<S>>> = decided.iter().map(|d| d.commitments.column0()).collect();
    let mut sums = vec![Affine::<S>::default(); keys * params.ku()];
    const CHUNK: usize = 1024;
    engine.chunks_mut(&mut sums, CHUNK, |c, out| {
        let lo = c * CHUNK;
        let cols: Vec<&[Affine<S>]> = columns
            .iter()
            .map(|col| col.get(lo..lo + out.len()).unwrap_or(&[]))
            .collect();
        S::vartime_sum_columns(&cols, out.len(), |i, p| {
            if let Some(o) = out.get_mut(i) {
                *o = p;
            }
        });
    });
    Ok(KeyShares {
        node,
        params: *params,
        s,
        sp,
        commitments: sums,
    })
}

/// `sum_d coeffs[d] * f_d(i, 0)` and the same for f', per key: the constant
/// terms of the received rows, weighted (1 for DKG aggregation, Lagrange
/// coefficients for resharing).
pub(crate) fn combine_shares<S: Suite>(
    decided: &[SendRef<'_, S>],
    keys: usize,
    coeffs: &[Scalar<S>],
) -> (SecretVec<Scalar<S>>, SecretVec<Scalar<S>>) {
    let mut s = SecretVec::zeros(keys);
    let mut sp = SecretVec::zeros(keys);
    for (d, c) in decided.iter().zip(coeffs) {
        for key in 0..keys {
            let (a, ap) = d.slice.row(key);
            if let (Some(x), Some(y), Some(a0), Some(ap0)) = (
                s.as_mut_slice().get_mut(key),
                sp.as_mut_slice().get_mut(key),
                a.first(),
                ap.first(),
            ) {
                *x += *a0 * c;
                *y += *ap0 * c;
            }
        }
    }
    (s, sp)
}

/// A proof of knowledge of `(s, s')` behind `gs` and `gshr` (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof<S: Suite> {
    /// `t1 = v1*G`.
    pub t1: Affine<S>,
    /// `t2 = v2*H`.
    pub t2: Affine<S>,
    /// `u1 = v1 - c*s`.
    pub u1: Scalar<S>,
    /// `u2 = v2 - c*s'`.
    pub u2: Scalar<S>,
}

/// One node's public key shares for a batch, with proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicShares<S: Suite> {
    /// The node's index.
    pub node: u32,
    /// `gs = s*G` per key.
    pub gs: Vec<Affine<S>>,
    /// `gshr = s*G + s'*H` per key.
    pub gshr: Vec<Affine<S>>,
    /// One proof per key.
    pub proofs: Vec<Proof<S>>,
}

impl<S: Suite> PublicShares<S> {
    /// Number of keys.
    pub fn keys(&self) -> usize {
        self.gs.len()
    }
}

fn pad64(x: &[u8], out: &mut Vec<u8>) {
    let pad = 64 - (x.len() % 64);
    out.extend_from_slice(x);
    out.extend(std::iter::repeat_n(pad as u8, pad));
}

/// The spec's NIZKP challenge (integer from keccak-256, reduced mod q for arithmetic).
pub fn challenge<S: Suite>(
    gs: &Affine<S>,
    gshr: &Affine<S>,
    t1: &Affine<S>,
    t2: &Affine<S>,
) -> Scalar<S> {
    Challenger::<S>::new().challenge(gs, gshr, t1, t2)
}

/// [`challenge`] for many proofs: the fixed prefix `pad64(G.x) || pad64(H.x)`
/// (two conversions to affine, each an inversion) is computed once per batch.
struct Challenger<S: Suite> {
    prefix: Vec<u8>,
    _suite: core::marker::PhantomData<S>,
}

impl<S: Suite> Challenger<S> {
    fn new() -> Self {
        let mut prefix = Vec::with_capacity(2 * 64);
        for p in [S::to_affine(&S::generator()), S::to_affine(&S::h())] {
            pad64(&S::x_bytes_minimal(&p), &mut prefix);
        }
        Challenger {
            prefix,
            _suite: core::marker::PhantomData,
        }
    }

    fn challenge(
        &self,
        gs: &Affine<S>,
        gshr: &Affine<S>,
        t1: &Affine<S>,
        t2: &Affine<S>,
    ) -> Scalar<S> {
        let mut buf = Vec::with_capacity(6 * 64);
        buf.extend_from_slice(&self.prefix);
        for p in [gs, gshr, t1, t2] {
            pad64(&S::x_bytes_minimal(p), &mut buf);
        }
        let d: [u8; 32] = Keccak256::digest(&buf).into();
        S::scalar_from_hash(&d)
    }
}

/// Computes this node's public key shares and proofs, in constant time on the
/// secrets (`seed` drives the proof nonces: a fresh OS seed in production).
pub fn public_shares<S: Suite>(
    engine: &Engine,
    shares: &KeyShares<S>,
    seed: [u8; 32],
) -> Result<PublicShares<S>> {
    use rand_chacha::rand_core::SeedableRng;
    let keys = shares.keys();
    let gs = engine.ct_mul_g::<S>(&shares.s);
    let gshr = gshr_from_commitments::<S>(engine, shares)?;
    let mut v1 = SecretVec::<Scalar<S>>::zeros(keys);
    let mut v2 = SecretVec::<Scalar<S>>::zeros(keys);
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
    for (a, b) in v1.as_mut_slice().iter_mut().zip(v2.as_mut_slice()) {
        *a = Scalar::<S>::random(&mut rng);
        *b = Scalar::<S>::random(&mut rng);
    }
    let t1 = engine.ct_mul_g::<S>(&v1);
    let t2 = engine.ct_mul_h::<S>(&v2);
    let chal = Challenger::<S>::new();
    let proofs = engine.map(keys, |key| {
        let (Some(g1), Some(g2), Some(a1), Some(a2), Some(x1), Some(x2), Some((s, sp))) = (
            gs.get(key),
            gshr.get(key),
            t1.get(key),
            t2.get(key),
            v1.get(key),
            v2.get(key),
            shares.share(key),
        ) else {
            return None;
        };
        let c = chal.challenge(g1, g2, a1, a2);
        Some(Proof {
            t1: *a1,
            t2: *a2,
            u1: *x1 - c * s,
            u2: *x2 - c * sp,
        })
    });
    let proofs: Option<Vec<Proof<S>>> = proofs.into_iter().collect();
    Ok(PublicShares {
        node: shares.node,
        gs,
        gshr,
        proofs: proofs.ok_or(Error::LengthMismatch {
            what: "proofs",
            expected: keys,
            got: 0,
        })?,
    })
}

/// `gshr = s*G + s'*H` of every key, computed from PUBLIC data only: for shares
/// consistent with the verified sends it equals `sum_j i^j D[j]`, which is
/// evaluated in variable time (Horner by the small node index) instead of a
/// constant-time double-base multiplication of the secrets.
fn gshr_from_commitments<S: Suite>(
    engine: &Engine,
    shares: &KeyShares<S>,
) -> Result<Vec<Affine<S>>> {
    let k = shares.params.ku();
    let keys = shares.keys();
    if shares.commitments.len() != keys * k {
        return Err(Error::LengthMismatch {
            what: "commitment vectors",
            expected: keys * k,
            got: shares.commitments.len(),
        });
    }
    let mut out = vec![Affine::<S>::default(); keys];
    const CHUNK: usize = 512;
    let x = u64::from(shares.node);
    engine.chunks_mut(&mut out, CHUNK, |c, o| {
        if let Some(rows) = shares
            .commitments
            .get(c * CHUNK * k..(c * CHUNK + o.len()) * k)
        {
            S::vartime_eval_small(rows, k, x, o);
        }
    });
    Ok(out)
}

/// Verifies many nodes' public key shares and proofs for a batch against the
/// commitment vectors `D` (`commitments[key*k + j]`), in one folded MSM; bisection
/// names every (node, key) whose proof or binding fails.
pub fn verify_public_shares<S: Suite>(
    engine: &Engine,
    params: &Params,
    commitments: &[Affine<S>],
    shares: &[&PublicShares<S>],
) -> Result<()> {
    let k = params.ku();
    let keys = commitments.len() / k.max(1);
    if commitments.len() != keys * k {
        return Err(Error::LengthMismatch {
            what: "commitment vectors",
            expected: keys * k,
            got: commitments.len(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for p in shares {
        params.check_index(p.node)?;
        if !seen.insert(p.node) {
            return Err(Error::DuplicateIndex(p.node));
        }
        if p.gs.len() != keys || p.gshr.len() != keys || p.proofs.len() != keys {
            return Err(Error::InvalidProof(vec![crate::error::Culprit {
                node: p.node,
                keys: Vec::new(),
            }]));
        }
        let ids =
            p.gs.iter()
                .chain(&p.gshr)
                .chain(p.proofs.iter().flat_map(|x| [&x.t1, &x.t2]));
        if ids.into_iter().any(S::is_identity) {
            return Err(Error::InvalidProof(vec![crate::error::Culprit {
                node: p.node,
                keys: Vec::new(),
            }]));
        }
    }
    // Challenges are per proof; compute once.
    let challenger = Challenger::<S>::new();
    let chal: Vec<Vec<Scalar<S>>> = shares
        .iter()
        .map(|p| {
            engine.map(keys, |key| {
                match (p.gs.get(key), p.gshr.get(key), p.proofs.get(key)) {
                    (Some(a), Some(b), Some(pr)) => challenger.challenge(a, b, &pr.t1, &pr.t2),
                    _ => Scalar::<S>::ZERO,
                }
            })
        })
        .collect();
    let items: Vec<(usize, usize)> = (0..shares.len())
        .flat_map(|n| (0..keys).map(move |k| (n, k)))
        .collect();
    let check = |subset: &[(usize, usize)]| {
        let seed = fresh_seed();
        // Short scalars (128-bit weights): t1, t2, D. Full width (c * weight): gs, gshr.
        let mut fold = Fold::<S>::with_capacity(subset.len() * 2 + keys * k);
        let mut long = Fold::<S>::with_capacity(subset.len() * 2);
        let mut dcoef: std::collections::BTreeMap<usize, Vec<Scalar<S>>> =
            std::collections::BTreeMap::new();
        let mut w = [Scalar::<S>::ZERO; 3];
        for &(n, key) in subset {
            let (Some(p), Some(c)) = (shares.get(n), chal.get(n).and_then(|v| v.get(key))) else {
                continue;
            };
            let (Some(gs), Some(gshr), Some(pr)) =
                (p.gs.get(key), p.gshr.get(key), p.proofs.get(key))
            else {
                continue;
            };
            weights::<S>(&seed, (n * keys + key) as u64, &mut w);
            let [w1, w2, w3] = w;
            // w1 (u1 G + c gs - t1) + w2 (u2 H + c (gshr - gs) - t2) + w3 (gshr - sum_j i^j D[j]) = 0
            fold.g -= w1 * pr.u1;
            fold.h -= w2 * pr.u2;
            long.points.extend_from_slice(&[*gs, *gshr]);
            long.scalars
                .extend_from_slice(&[*c * (w1 - w2), *c * w2 + w3]);
            // Short scalars stay short: the points are negated, not the weights.
            fold.points
                .extend_from_slice(&[S::neg_affine(&pr.t1), S::neg_affine(&pr.t2)]);
            fold.scalars.extend_from_slice(&[w1, w2]);
            let ip = powers(Scalar::<S>::from(u64::from(p.node)), k);
            let e = dcoef
                .entry(key)
                .or_insert_with(|| vec![Scalar::<S>::ZERO; k]);
            for (x, pj) in e.iter_mut().zip(&ip) {
                *x += w3 * pj;
            }
        }
        for (key, coefs) in dcoef {
            if let Some(d) = commitments.get(key * k..(key + 1) * k) {
                fold.points.extend(d.iter().map(S::neg_affine));
                fold.scalars.extend_from_slice(&coefs);
            }
        }
        fold.holds_with_long(engine, long)
    };
    let bad = bisect(&items, &check);
    if bad.is_empty() {
        return Ok(());
    }
    let pairs: Vec<(u32, usize)> = bad
        .iter()
        .filter_map(|(n, k)| shares.get(*n).map(|p| (p.node, *k)))
        .collect();
    Err(Error::InvalidProof(culprits_from(&pairs)))
}

/// User public keys: Lagrange interpolation at 0 of k of the public key shares
/// given (which must have been verified): those of nodes `1..=k` when all are
/// given, else the first k.
pub fn user_public_keys<S: Suite>(
    engine: &Engine,
    params: &Params,
    shares: &[&PublicShares<S>],
) -> Result<Vec<Affine<S>>> {
    let k = params.ku();
    if shares.len() < k {
        return Err(Error::TooFewPoints {
            need: k,
            got: shares.len(),
        });
    }
    // Any k verified shares give the same keys. Over the indexes {1..k} the
    // Lagrange coefficients at 0 are small integers (a few doublings and
    // additions per key instead of a full multiplication), so that set is
    // preferred when it is among the shares given.
    let low: Vec<&&PublicShares<S>> = (1..=params.k)
        .filter_map(|i| shares.iter().find(|p| p.node == i))
        .collect();
    let used: Vec<&&PublicShares<S>> = if low.len() == k {
        low
    } else {
        shares.iter().take(k).collect()
    };
    let idx: Vec<u32> = used.iter().map(|p| p.node).collect();
    let lambda = lagrange_at_zero::<Scalar<S>>(&idx)?;
    let cols: Vec<&[Affine<S>]> = used.iter().map(|p| p.gs.as_slice()).collect();
    let pts = engine.vartime_lincomb::<S>(&lambda, &cols)?;
    Ok(S::batch_to_affine(&pts))
}

/// Reconstructs secrets from `(index, shares per key)` pairs by Lagrange at 0
/// over the given index set (tests and clients).
pub fn reconstruct<S: Suite>(points: &[(u32, &[Scalar<S>])]) -> Result<Vec<Scalar<S>>> {
    let idx: Vec<u32> = points.iter().map(|p| p.0).collect();
    let lambda = lagrange_at_zero::<Scalar<S>>(&idx)?;
    let keys = points.first().map_or(0, |p| p.1.len());
    if let Some(p) = points.iter().find(|p| p.1.len() != keys) {
        return Err(Error::LengthMismatch {
            what: "shares per node",
            expected: keys,
            got: p.1.len(),
        });
    }
    Ok((0..keys)
        .map(|key| {
            points
                .iter()
                .zip(&lambda)
                .map(|(p, l)| p.1.get(key).copied().unwrap_or(Scalar::<S>::ZERO) * l)
                .sum()
        })
        .collect())
}
