//! The engine's execution entry point: which backend runs the batch kernels.
//!
//! A private [`BackendKind`] is chosen once when the [`Engine`] is built (rayon
//! available and more than one thread? a hardware profile forcing serial?) and
//! every kernel matches on it. Public types never name a backend; the chosen
//! backend is reported by [`Engine::backend_name`] and logged by callers.

pub(crate) mod generic;

use group::Group;

use crate::error::{Error, Result};
use crate::group::{Affine, Point, Scalar, Suite};

/// Default number of scalars per parallel work unit of the fixed-base kernels.
pub const DEFAULT_CT_CHUNK: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BackendKind {
    /// One thread; the reference every other backend must match bit for bit.
    Serial,
    /// rayon across all threads of the current pool.
    #[cfg(feature = "parallel")]
    Parallel,
}

/// Entry point of the batch kernels. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Engine {
    kind: BackendKind,
    ct_chunk: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// Picks the best available CPU backend: parallel when built with the
    /// `parallel` feature and the rayon pool has more than one thread.
    pub fn new() -> Self {
        #[cfg(feature = "parallel")]
        {
            if rayon::current_num_threads() > 1 {
                return Engine {
                    kind: BackendKind::Parallel,
                    ct_chunk: DEFAULT_CT_CHUNK,
                };
            }
        }
        Self::reference()
    }

    /// The single-threaded reference backend.
    pub fn reference() -> Self {
        Engine {
            kind: BackendKind::Serial,
            ct_chunk: DEFAULT_CT_CHUNK,
        }
    }

    /// The parallel backend if compiled in (even on one thread), else the reference.
    pub fn parallel() -> Self {
        #[cfg(feature = "parallel")]
        {
            Engine {
                kind: BackendKind::Parallel,
                ct_chunk: DEFAULT_CT_CHUNK,
            }
        }
        #[cfg(not(feature = "parallel"))]
        {
            Self::reference()
        }
    }

    /// Overrides the fixed-base chunk size (from a hardware profile).
    pub fn with_ct_chunk(mut self, chunk: usize) -> Self {
        self.ct_chunk = chunk.max(1);
        self
    }

    /// Name of the chosen backend, for logs and diagnostics.
    pub fn backend_name(&self) -> &'static str {
        match self.kind {
            BackendKind::Serial => "serial",
            #[cfg(feature = "parallel")]
            BackendKind::Parallel => "parallel",
        }
    }

    /// `(0..n).map(f)`, in parallel on the parallel backend; order preserved.
    pub(crate) fn map<T, F>(&self, n: usize, f: F) -> Vec<T>
    where
        T: Send,
        F: Fn(usize) -> T + Sync + Send,
    {
        match self.kind {
            BackendKind::Serial => (0..n).map(f).collect(),
            #[cfg(feature = "parallel")]
            BackendKind::Parallel => {
                use rayon::prelude::*;
                (0..n).into_par_iter().map(f).collect()
            }
        }
    }

    /// Runs `f(chunk_index, chunk)` over `chunk`-sized pieces of `data`.
    pub(crate) fn chunks_mut<T, F>(&self, data: &mut [T], chunk: usize, f: F)
    where
        T: Send,
        F: Fn(usize, &mut [T]) + Sync + Send,
    {
        let chunk = chunk.max(1);
        match self.kind {
            BackendKind::Serial => data
                .chunks_mut(chunk)
                .enumerate()
                .for_each(|(i, c)| f(i, c)),
            #[cfg(feature = "parallel")]
            BackendKind::Parallel => {
                use rayon::prelude::*;
                data.par_chunks_mut(chunk)
                    .enumerate()
                    .for_each(|(i, c)| f(i, c))
            }
        }
    }

    /// Variable-time MSM over public data. Length mismatch is a typed error.
    pub fn vartime_msm<S: Suite>(
        &self,
        points: &[Affine<S>],
        scalars: &[Scalar<S>],
    ) -> Result<Point<S>> {
        if points.len() != scalars.len() {
            return Err(Error::LengthMismatch {
                what: "msm scalars",
                expected: points.len(),
                got: scalars.len(),
            });
        }
        Ok(match self.kind {
            BackendKind::Serial => S::vartime_msm(points, scalars),
            #[cfg(feature = "parallel")]
            BackendKind::Parallel => S::vartime_msm_par(points, scalars),
        })
    }

    /// Constant-time `f[i]*G + fp[i]*H` for secret scalars, batch-normalized.
    pub fn ct_commit<S: Suite>(&self, f: &[Scalar<S>], fp: &[Scalar<S>]) -> Result<Vec<Affine<S>>> {
        if f.len() != fp.len() {
            return Err(Error::LengthMismatch {
                what: "commitment blinding scalars",
                expected: f.len(),
                got: fp.len(),
            });
        }
        let mut out = vec![Affine::<S>::default(); f.len()];
        let chunk = self.ct_chunk;
        self.chunks_mut(&mut out, chunk, |i, o| {
            let start = i * chunk;
            let end = start + o.len();
            if let (Some(a), Some(b)) = (f.get(start..end), fp.get(start..end)) {
                S::ct_commit_batch(a, b, o);
            }
        });
        Ok(out)
    }

    /// Constant-time `s[i]*G` for secret scalars, batch-normalized.
    pub fn ct_mul_g<S: Suite>(&self, s: &[Scalar<S>]) -> Vec<Affine<S>> {
        let mut out = vec![Affine::<S>::default(); s.len()];
        let chunk = self.ct_chunk;
        self.chunks_mut(&mut out, chunk, |i, o| {
            let start = i * chunk;
            if let Some(a) = s.get(start..start + o.len()) {
                S::ct_mul_g_batch(a, o);
            }
        });
        out
    }

    /// Constant-time `s[i]*H` for secret scalars, batch-normalized.
    pub fn ct_mul_h<S: Suite>(&self, s: &[Scalar<S>]) -> Vec<Affine<S>> {
        let mut out = vec![Affine::<S>::default(); s.len()];
        let chunk = self.ct_chunk;
        self.chunks_mut(&mut out, chunk, |i, o| {
            let start = i * chunk;
            if let Some(a) = s.get(start..start + o.len()) {
                S::ct_mul_h_batch(a, o);
            }
        });
        out
    }

    /// Variable-time linear combinations with shared coefficients over public
    /// points: `out[r] = sum_m coeffs[m] * columns[m][r]` for every row `r`.
    ///
    /// This is the shape of Lagrange interpolation in the exponent across a batch
    /// (the same index set for every key). Coefficients that are small integers
    /// (as Lagrange coefficients at 0 over `{1..k}` are) take a short
    /// double-and-add; others a per-row MSM.
    pub fn vartime_lincomb<S: Suite>(
        &self,
        coeffs: &[Scalar<S>],
        columns: &[&[Affine<S>]],
    ) -> Result<Vec<Point<S>>> {
        if coeffs.len() != columns.len() {
            return Err(Error::LengthMismatch {
                what: "lincomb columns",
                expected: coeffs.len(),
                got: columns.len(),
            });
        }
        let rows = columns.first().map_or(0, |c| c.len());
        for c in columns {
            if c.len() != rows {
                return Err(Error::LengthMismatch {
                    what: "lincomb column length",
                    expected: rows,
                    got: c.len(),
                });
            }
        }
        let small: Option<Vec<i64>> = coeffs.iter().map(small_int::<S>).collect();
        Ok(self.map(rows, |r| {
            if let Some(small) = &small {
                let mut acc = Point::<S>::identity();
                for (c, col) in small.iter().zip(columns) {
                    if let Some(p) = col.get(r) {
                        acc += mul_small::<S>(&S::from_affine(p), *c);
                    }
                }
                acc
            } else {
                let pts: Vec<Affine<S>> =
                    columns.iter().filter_map(|c| c.get(r).copied()).collect();
                S::vartime_msm(&pts, coeffs)
            }
        }))
    }
}

/// `Some(v)` when the scalar equals the signed integer `v` with `|v| < 2^62`.
fn small_int<S: Suite>(s: &Scalar<S>) -> Option<i64> {
    let as_u = |x: &Scalar<S>| -> Option<i64> {
        let be = S::encode_scalar(x);
        let (hi, lo) = be.split_at(24);
        if hi.iter().any(|b| *b != 0) {
            return None;
        }
        let mut w = [0u8; 8];
        w.copy_from_slice(lo);
        let v = u64::from_be_bytes(w);
        (v < (1 << 62)).then_some(v as i64)
    };
    as_u(s).or_else(|| as_u(&-*s).map(|v| -v))
}

/// `c * p` by double-and-add on a small public integer.
fn mul_small<S: Suite>(p: &Point<S>, c: i64) -> Point<S> {
    let mut acc = Point::<S>::identity();
    let m = c.unsigned_abs();
    for bit in (0..64 - m.leading_zeros()).rev() {
        acc = acc.double();
        if (m >> bit) & 1 == 1 {
            acc += p;
        }
    }
    if c < 0 {
        -acc
    } else {
        acc
    }
}
