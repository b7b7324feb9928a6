//! Shared helpers of the kernel tests: one device per test binary, random inputs.
#![allow(dead_code)]

use std::sync::OnceLock;

use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use torus_engine::backend::secp256k1::point::Affine;
use torus_kernels::{GpuContext, GpuMsm, GpuOptions};

/// Set to `1` to make a missing adapter a failure instead of a skip. CI installs Mesa's
/// llvmpipe and sets it, so the GPU tests always run there.
pub const REQUIRE_ADAPTER: &str = "TORUS_REQUIRE_GPU_ADAPTER";

/// Whether a missing adapter must fail the test ([`REQUIRE_ADAPTER`]` = 1`).
pub fn adapter_required() -> bool {
    std::env::var(REQUIRE_ADAPTER).as_deref() == Ok("1")
}

/// Fails without an adapter when one is required; otherwise announces the skip once per
/// test binary. The notice goes straight to stderr: `eprintln!` would be captured by the
/// test harness and never shown for a passing (skipped) test.
fn no_adapter(what: &str, e: &dyn std::fmt::Display) {
    if adapter_required() {
        panic!(
            "{what}: {e}. Install a Vulkan driver (Debian: mesa-vulkan-drivers for llvmpipe), \
             or unset {REQUIRE_ADAPTER} to skip the GPU tests"
        );
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the GPU tests of this binary: no GPU adapter ({what}: {e}); install \
             mesa-vulkan-drivers, or set {REQUIRE_ADAPTER}=1 to make this a failure"
        );
    });
}

/// The shared GPU MSM of this test binary, or `None` (the test skips, with a one-line
/// notice) when no adapter exists; panics instead when [`REQUIRE_ADAPTER`] is set.
pub fn gpu() -> Option<&'static GpuMsm> {
    static GPU: OnceLock<Option<GpuMsm>> = OnceLock::new();
    GPU.get_or_init(|| match GpuMsm::new() {
        Ok(g) => {
            eprintln!("adapter: {:?}", g.context().adapter());
            Some(g)
        }
        Err(e) => {
            no_adapter("GpuMsm::new", &e);
            None
        }
    })
    .as_ref()
}

/// A device for the field test kernels (same policy as [`gpu`]).
pub fn context() -> Option<GpuContext> {
    match GpuContext::new(&GpuOptions::any()) {
        Ok(c) => Some(c),
        Err(e) => {
            no_adapter("GpuContext::new", &e);
            None
        }
    }
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn random_points(n: usize, r: &mut ChaCha20Rng) -> Vec<Affine> {
    if n == 0 {
        return Vec::new();
    }
    let step = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
    let mut acc = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
    let mut proj = Vec::with_capacity(n);
    for _ in 0..n {
        proj.push(acc);
        acc += step;
    }
    Affine::batch_from_projective(&proj)
}

pub fn random_scalars(n: usize, r: &mut ChaCha20Rng) -> Vec<Scalar> {
    (0..n).map(|_| Scalar::random(&mut *r)).collect()
}

/// A uniformly random scalar below 2^bits.
pub fn short_scalar(bits: u32, r: &mut ChaCha20Rng) -> Scalar {
    let s = Scalar::random(&mut *r);
    let mut b: [u8; 32] = s.to_bytes().into();
    let clear = 256 - bits as usize;
    for (i, byte) in b.iter_mut().enumerate() {
        let lo = i * 8;
        if lo + 8 <= clear {
            *byte = 0;
        } else if lo < clear {
            *byte &= 0xff >> (clear - lo);
        }
    }
    use k256::elliptic_curve::PrimeField;
    Option::from(Scalar::from_repr(b.into())).expect("below q")
}
