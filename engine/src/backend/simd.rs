//! Which vector backend the field arithmetic of the batch kernels uses, chosen
//! once per process by run-time CPU feature detection (as curve25519-dalek does).
//!
//! - [`SimdBackend::Avx512Ifma`]: 8 lanes of radix-2^52 secp256k1 field
//!   arithmetic with AVX-512 IFMA (`vpmadd52luq` / `vpmadd52huq`), in the one
//!   audited `unsafe` module `backend::secp256k1::ifma`.
//! - [`SimdBackend::Scalar`]: the portable 4x64-limb `Fe`, on every CPU; the
//!   reference the vector backend is tested against.
//!
//! The build targets baseline x86-64; nothing here depends on compile-time
//! target features. Every backend returns bit-identical results (the outputs are
//! canonical encodings of the same group elements).
//!
//! `TORUS_ENGINE_SIMD=scalar` in the environment forces the scalar backend (read
//! once, at the first use), e.g. to run the whole test suite on it; the
//! differential tests themselves run every backend the CPU has.

use std::sync::OnceLock;

/// A vector backend of the field arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimdBackend {
    /// One field operation at a time on 64-bit limbs (any CPU).
    Scalar,
    /// Eight field operations at once in AVX-512 IFMA lanes.
    Avx512Ifma,
}

impl SimdBackend {
    /// Name for logs, diagnostics and benchmark records.
    pub fn name(self) -> &'static str {
        match self {
            SimdBackend::Scalar => "scalar",
            SimdBackend::Avx512Ifma => "avx512ifma",
        }
    }

    /// Whether this CPU can run the backend.
    pub fn available(self) -> bool {
        match self {
            SimdBackend::Scalar => true,
            SimdBackend::Avx512Ifma => super::secp256k1::ifma::Ifma::detect().is_some(),
        }
    }
}

/// The environment variable that forces a backend (`scalar` or `avx512ifma`;
/// a backend the CPU lacks falls back to scalar).
pub const SIMD_ENV: &str = "TORUS_ENGINE_SIMD";

/// The backend the kernels use in this process (detected once).
pub fn selected() -> SimdBackend {
    static SEL: OnceLock<SimdBackend> = OnceLock::new();
    *SEL.get_or_init(|| {
        let forced = std::env::var(SIMD_ENV).ok();
        let choice = match forced.as_deref().map(str::trim) {
            Some("scalar") => SimdBackend::Scalar,
            _ if SimdBackend::Avx512Ifma.available() => SimdBackend::Avx512Ifma,
            _ => SimdBackend::Scalar,
        };
        tracing::debug!(simd = choice.name(), forced = ?forced, "engine SIMD backend");
        choice
    })
}

/// Seconds of CPU time this thread has run (Linux `/proc/thread-self/schedstat`),
/// for timing A/B tests on a loaded machine: unlike wall time it does not count
/// the time spent waiting for a core. 0 where unavailable.
#[doc(hidden)]
pub fn thread_cpu_time() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The diagnostic dalek's build tests make: the backend in use is the best
    /// one this CPU runs, unless the environment forces the scalar one.
    #[test]
    fn the_best_available_backend_is_selected_unless_forced() {
        let forced = std::env::var(SIMD_ENV).ok();
        let want = if forced.as_deref().map(str::trim) == Some("scalar") {
            SimdBackend::Scalar
        } else if SimdBackend::Avx512Ifma.available() {
            SimdBackend::Avx512Ifma
        } else {
            SimdBackend::Scalar
        };
        assert_eq!(selected(), want);
        assert!(SimdBackend::Scalar.available());
        assert_eq!(crate::Engine::new().simd_backend(), want.name());
    }
}
