//! Typed errors of the GPU backend.

use thiserror::Error;

/// Why a GPU operation could not run. The engine logs it and uses the CPU.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter matched (none at all, or none matching the pattern).
    #[error("no GPU adapter available: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("requesting a device from {adapter}: {message}")]
    Device {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// A validation or out-of-memory error reported by the device.
    #[error("GPU error during {during}: {message}")]
    Runtime {
        /// What was running.
        during: &'static str,
        /// wgpu's message.
        message: String,
    },
    /// Waiting for the device failed (device lost or timeout).
    #[error("waiting for the GPU: {0}")]
    Poll(String),
    /// Reading results back failed.
    #[error("reading back GPU results: {0}")]
    Readback(String),
    /// An input the kernel cannot take within the device limits.
    #[error("input too large for the device: {0}")]
    Limits(String),
    /// Slices of different lengths.
    #[error("length mismatch: {points} points, {scalars} scalars")]
    LengthMismatch {
        /// Number of points.
        points: usize,
        /// Number of scalars.
        scalars: usize,
    },
}
