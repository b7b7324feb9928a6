//! The dealer side: sample, commit (constant time), slice.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use ff::Field;
use rand_chacha::rand_core::SeedableRng;

use super::{Commitments, Slice, SmallPoint};
use crate::error::{Error, Result};
use crate::group::{Scalar, Suite};
use crate::params::Params;
use crate::secret::SecretVec;
use crate::Engine;

/// Per-key secrets `(s, s')` a reshare dealer fixes as `f[0][0]` and `f'[0][0]`.
pub type SecretPair<'a, S> = (&'a [Scalar<S>], &'a [Scalar<S>]);

type MutPair<'a, S> = (&'a mut [Scalar<S>], &'a mut [Scalar<S>]);
type MutQuad<'a, S> = (MutPair<'a, S>, MutPair<'a, S>);

/// One dealer's sharing of a batch of keys: secret polynomials plus public commitments.
pub struct Dealing<S: Suite> {
    /// The dealer's 1-based index.
    pub dealer: u32,
    /// The committee the sharing is for.
    pub params: Params,
    f: SecretVec<Scalar<S>>,
    fp: SecretVec<Scalar<S>>,
    /// The public commitment matrices.
    pub commitments: Commitments<S>,
}

impl<S: Suite> core::fmt::Debug for Dealing<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dealing")
            .field("dealer", &self.dealer)
            .field("params", &self.params)
            .field("keys", &self.keys())
            .field("polynomials", &"<redacted>")
            .finish()
    }
}

/// Deals a batch of `keys` sharings (spec §1 "Dealer"; §2 for resharing, where
/// `secrets` fixes `f[0][0] = s` and `f'[0][0] = s'` per key).
///
/// Coefficients come from ChaCha20 seeded with `seed`, one stream per key, so the
/// serial and parallel backends produce bit-identical dealings. Pass a fresh seed
/// from the OS CSPRNG in production; a fixed one only in tests.
pub fn deal<S: Suite>(
    engine: &Engine,
    params: Params,
    dealer: u32,
    keys: usize,
    secrets: Option<SecretPair<'_, S>>,
    seed: [u8; 32],
) -> Result<Dealing<S>> {
    params.check_index(dealer)?;
    if let Some((s, sp)) = secrets {
        for (what, v) in [("reshare secrets", s), ("reshare blinding secrets", sp)] {
            if v.len() != keys {
                return Err(Error::LengthMismatch {
                    what,
                    expected: keys,
                    got: v.len(),
                });
            }
        }
    }
    let k = params.ku();
    let kk = k * k;
    let mut f = SecretVec::<Scalar<S>>::zeros(keys * kk);
    let mut fp = SecretVec::<Scalar<S>>::zeros(keys * kk);
    let sample = |key: usize, fm: &mut [Scalar<S>], fpm: &mut [Scalar<S>]| {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        rng.set_stream(key as u64);
        for x in fm.iter_mut() {
            *x = Scalar::<S>::random(&mut rng);
        }
        for x in fpm.iter_mut() {
            *x = Scalar::<S>::random(&mut rng);
        }
        if let Some((s, sp)) = secrets {
            if let (Some(a), Some(b), Some(sa), Some(sb)) =
                (fm.first_mut(), fpm.first_mut(), s.get(key), sp.get(key))
            {
                *a = *sa;
                *b = *sb;
            }
        }
    };
    {
        // Sample f and f' key by key (in parallel), each key from its own stream.
        let fps = fp.as_mut_slice();
        let mut pairs: Vec<MutPair<'_, S>> = f
            .as_mut_slice()
            .chunks_mut(kk)
            .zip(fps.chunks_mut(kk))
            .collect();
        engine.chunks_mut(&mut pairs, 16, |ci, chunk| {
            for (off, (a, b)) in chunk.iter_mut().enumerate() {
                sample(ci * 16 + off, a, b);
            }
        });
    }
    let points = engine.ct_commit::<S>(&f, &fp)?;
    let commitments = Commitments::from_points(dealer, k, points)?;
    Ok(Dealing {
        dealer,
        params,
        f,
        fp,
        commitments,
    })
}

/// Deals from given coefficient matrices (known-answer tests; `f[key*k*k + j*k + l]`).
pub fn deal_with_coefficients<S: Suite>(
    engine: &Engine,
    params: Params,
    dealer: u32,
    f: Vec<Scalar<S>>,
    fp: Vec<Scalar<S>>,
) -> Result<Dealing<S>> {
    params.check_index(dealer)?;
    let kk = params.ku() * params.ku();
    if !f.len().is_multiple_of(kk) || fp.len() != f.len() {
        return Err(Error::LengthMismatch {
            what: "coefficient matrices",
            expected: f.len() - f.len() % kk,
            got: fp.len(),
        });
    }
    let (f, fp) = (SecretVec::new(f), SecretVec::new(fp));
    let points = engine.ct_commit::<S>(&f, &fp)?;
    let commitments = Commitments::from_points(dealer, params.ku(), points)?;
    Ok(Dealing {
        dealer,
        params,
        f,
        fp,
        commitments,
    })
}

impl<S: Suite> Dealing<S> {
    /// Number of keys in the batch.
    pub fn keys(&self) -> usize {
        self.commitments.keys()
    }

    /// The secret `f[0][0]` of every key (tests and reconstruction checks only).
    pub fn secrets(&self) -> Vec<Scalar<S>> {
        let kk = self.params.ku() * self.params.ku();
        self.f.iter().step_by(kk.max(1)).copied().collect()
    }

    /// The slice for `receiver`: `a[l] = sum_j f[j][l] i^j`, `b[j] = sum_l f[j][l] i^l`.
    pub fn slice(&self, engine: &Engine, receiver: u32) -> Result<Slice<S>> {
        self.params.check_index(receiver)?;
        let k = self.params.ku();
        let kk = k * k;
        let keys = self.keys();
        let x = SmallPoint::<S>::new(receiver, k);
        let mut out = Slice {
            receiver,
            k,
            a: SecretVec::zeros(keys * k),
            ap: SecretVec::zeros(keys * k),
            b: SecretVec::zeros(keys * k),
            bp: SecretVec::zeros(keys * k),
        };
        let (f, fp) = (self.f.as_slice(), self.fp.as_slice());
        // One work item per key fills the four k-long vectors of that key.
        let mut rows: Vec<MutQuad<'_, S>> = out
            .a
            .as_mut_slice()
            .chunks_mut(k)
            .zip(out.ap.as_mut_slice().chunks_mut(k))
            .zip(
                out.b
                    .as_mut_slice()
                    .chunks_mut(k)
                    .zip(out.bp.as_mut_slice().chunks_mut(k)),
            )
            .collect();
        engine.chunks_mut(&mut rows, 64, |ci, chunk| {
            for (off, ((a, ap), (b, bp))) in chunk.iter_mut().enumerate() {
                let key = ci * 64 + off;
                let (Some(fm), Some(fpm)) = (
                    f.get(key * kk..(key + 1) * kk),
                    fp.get(key * kk..(key + 1) * kk),
                ) else {
                    continue;
                };
                // a[l] = sum_j f[j][l] i^j (column l), b[j] = sum_l f[j][l] i^l (row j).
                for (l, (al, apl)) in a.iter_mut().zip(ap.iter_mut()).enumerate() {
                    *al = x.eval(fm.iter().skip(l).step_by(k));
                    *apl = x.eval(fpm.iter().skip(l).step_by(k));
                }
                for ((bj, bpj), (frow, fprow)) in b
                    .iter_mut()
                    .zip(bp.iter_mut())
                    .zip(fm.chunks(k).zip(fpm.chunks(k)))
                {
                    *bj = x.eval(frow.iter());
                    *bpj = x.eval(fprow.iter());
                }
            }
        });
        drop(rows);
        Ok(out)
    }

    /// Slices for every receiver `1..=n`.
    pub fn slices(&self, engine: &Engine) -> Result<Vec<Slice<S>>> {
        (1..=self.params.n).map(|i| self.slice(engine, i)).collect()
    }

    /// Replaces the commitments (test-only fault injection: wrong-size or
    /// equivocating matrices).
    #[doc(hidden)]
    pub fn with_commitments_for_tests(mut self, c: Commitments<S>) -> Self {
        self.commitments = c;
        self
    }
}
