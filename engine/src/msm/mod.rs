//! The engine's execution entry point: which backend runs the batch kernels.
//!
//! A private [`BackendKind`] is chosen once when the [`Engine`] is built (rayon
//! available and more than one thread? a hardware profile forcing serial?) and
//! every kernel matches on it. Public types never name a backend; the chosen
//! backend is reported by [`Engine::backend_name`] and logged by callers.
//!
//! Large public-data MSMs can be handed to an offload backend (the GPU kernels of
//! the `torus-kernels` crate) through [`VartimeMsmOffload`] (defined in
//! [`crate::offload`], the seam that names no backend type): see
//! [`Engine::with_offload`]. The engine itself never depends on a GPU API; on any
//! offload error it logs the reason and computes the same result on the CPU.

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use group::Group;

use crate::error::{Error, Result};
use crate::group::{Affine, Point, Scalar, Suite};
use crate::profile::HwProfile;

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

pub use crate::offload::VartimeMsmOffload;

/// Where [`Engine::vartime_msm`] sends an MSM of a given size (diagnostics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsmRoute {
    /// The engine's CPU backend.
    Cpu,
    /// The attached offload backend (CPU again if it fails).
    Offload,
}

/// Entry point of the batch kernels. Cheap to clone (the offload backend is shared).
#[derive(Clone)]
pub struct Engine {
    kind: BackendKind,
    ct_chunk: usize,
    cpu_window: Option<usize>,
    offload: Option<Arc<dyn VartimeMsmOffload>>,
    crossover_points: usize,
    fallbacks: Arc<AtomicU64>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend_name())
            .field("ct_chunk", &self.ct_chunk)
            .field("cpu_window", &self.cpu_window)
            .field("offload", &self.offload_name())
            .field("crossover_points", &self.crossover_points)
            .finish()
    }
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
                return Self::with_kind(BackendKind::Parallel);
            }
        }
        Self::reference()
    }

    /// The single-threaded reference backend.
    pub fn reference() -> Self {
        Self::with_kind(BackendKind::Serial)
    }

    fn with_kind(kind: BackendKind) -> Self {
        Engine {
            kind,
            ct_chunk: DEFAULT_CT_CHUNK,
            cpu_window: None,
            offload: None,
            crossover_points: usize::MAX,
            fallbacks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The CPU engine a hardware profile asks for: serial for `threads = 1`, else
    /// the best available backend (the caller sizes the rayon pool from
    /// `threads`), with the profile's CPU MSM window. A GPU backend is attached
    /// separately with [`Engine::with_offload`] (see `torus-kernels`).
    pub fn from_profile(profile: &HwProfile) -> Self {
        let mut e = if profile.threads == 1 {
            Self::reference()
        } else {
            Self::new()
        };
        e.cpu_window = profile.msm.cpu_window.bits();
        e
    }

    /// The parallel backend if compiled in (even on one thread), else the reference.
    pub fn parallel() -> Self {
        #[cfg(feature = "parallel")]
        {
            Self::with_kind(BackendKind::Parallel)
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

    /// Fixes the CPU Pippenger window (`None`: the cost model decides).
    pub fn with_cpu_window(mut self, window: Option<usize>) -> Self {
        self.cpu_window = window.map(|w| w.clamp(2, 16));
        self
    }

    /// Attaches an offload backend for public-data MSMs of at least
    /// `crossover_points` points on the suites it supports (secp256k1).
    pub fn with_offload(
        mut self,
        offload: Arc<dyn VartimeMsmOffload>,
        crossover_points: usize,
    ) -> Self {
        self.offload = Some(offload);
        self.crossover_points = crossover_points.max(1);
        self
    }

    /// Name of the attached offload backend, if any.
    pub fn offload_name(&self) -> Option<&str> {
        self.offload.as_deref().map(|o| o.name())
    }

    /// How many offloaded MSMs failed and were recomputed on the CPU (shared by clones).
    pub fn offload_fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Where an MSM of `len` points on suite `S` goes first.
    pub fn vartime_msm_route<S: Suite>(&self, len: usize) -> MsmRoute {
        if self.offload.is_some() && S::OFFLOAD_MSM && len >= self.crossover_points {
            MsmRoute::Offload
        } else {
            MsmRoute::Cpu
        }
    }

    /// Name of the vector backend of the field arithmetic (`"avx512ifma"` or
    /// `"scalar"`), chosen once per process by CPU feature detection (see
    /// [`crate::backend::simd`]).
    pub fn simd_backend(&self) -> &'static str {
        crate::backend::simd::selected().name()
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
        if let (MsmRoute::Offload, Some(off)) =
            (self.vartime_msm_route::<S>(points.len()), &self.offload)
        {
            match S::vartime_msm_offload(off.as_ref(), points, scalars) {
                Some(Ok(p)) => return Ok(p),
                Some(Err(reason)) => {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        offload = off.name(),
                        points = points.len(),
                        %reason,
                        "offloaded MSM failed; computing it on the CPU"
                    );
                }
                None => {}
            }
        }
        Ok(self.vartime_msm_cpu::<S>(points, scalars))
    }

    /// The CPU MSM of the chosen backend (equal lengths checked by the caller).
    fn vartime_msm_cpu<S: Suite>(&self, points: &[Affine<S>], scalars: &[Scalar<S>]) -> Point<S> {
        let par = match self.kind {
            BackendKind::Serial => false,
            #[cfg(feature = "parallel")]
            BackendKind::Parallel => true,
        };
        match (self.cpu_window, par) {
            (Some(c), _) => S::vartime_msm_window(points, scalars, par, c),
            (None, false) => S::vartime_msm(points, scalars),
            (None, true) => S::vartime_msm_par(points, scalars),
        }
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
