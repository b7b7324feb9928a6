//! WGSL compute kernels for the engine's variable-time MSM, and their wgpu host code.
//!
//! - [`shaders`]: the WGSL sources (`kernels/shaders/*.wgsl`, loaded with
//!   `include_str!`), composed into the modules the host compiles, plus their
//!   metadata (workgroup size, limb layout, bindings).
//! - [`GpuContext`]: adapter discovery and device creation within the adapter's limits.
//! - [`GpuMsm`]: Pippenger MSM over secp256k1 on the GPU; implements the engine's
//!   [`torus_engine::VartimeMsmOffload`] hook.
//! - [`select`]: the backend choice a hardware profile asks for, with the reason.
//!
//! Only PUBLIC data reaches the GPU (commitments and verification weights): the
//! entry points are `vartime_*`, and secret scalars stay on the engine's
//! constant-time CPU paths. GPU buffers are not zeroized.
//!
//! Nothing here panics on a missing or failing device: every failure is a
//! [`GpuError`], and the engine recomputes on the CPU.

#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
#![deny(clippy::indexing_slicing)]

mod device;
mod error;
mod msm;
pub mod select;
pub mod shaders;

pub use device::{AdapterSummary, GpuContext, GpuOptions};
pub use error::GpuError;
pub use msm::{GpuMsm, MsmPlan};
pub use select::{engine_from_profile, BackendChoice};
