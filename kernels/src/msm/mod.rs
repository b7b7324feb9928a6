//! Host side of the secp256k1 Pippenger MSM kernels (`shaders/msm_secp256k1.wgsl`).
//!
//! One call: identity points and zero scalars are dropped, the rest is cut into
//! chunks that fit the device limits (buffer binding size, dispatch size), and
//! every chunk is recorded as the eight passes of the shader in one command
//! buffer. Submission is asynchronous: while the GPU runs chunk `i`, the CPU packs
//! chunk `i + 1`; each chunk's window sums are copied into one readback buffer,
//! mapped once at the end. The CPU then combines the windows of every chunk
//! (Horner, `c` doublings per window), a few hundred point operations.

use std::sync::Arc;

use k256::{ProjectivePoint, Scalar};
use torus_engine::offload::Secp256k1Xy;
use torus_engine::VartimeMsmOffload;

mod host;
mod plan;
mod words;

pub use host::GpuMsm;
pub use plan::MsmPlan;

impl VartimeMsmOffload for GpuMsm {
    fn name(&self) -> &str {
        &self.name
    }

    fn vartime_msm_secp256k1(
        &self,
        points: &[Secp256k1Xy],
        scalars: &[Scalar],
    ) -> Result<ProjectivePoint, String> {
        self.vartime_msm_xy(points, scalars, self.window, self.max_chunk)
            .map_err(|e| e.to_string())
    }
}

/// A shared handle, as the engine takes it.
pub(crate) fn shared(m: GpuMsm) -> Arc<dyn VartimeMsmOffload> {
    Arc::new(m)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests;
