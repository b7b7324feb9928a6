//! The backend a hardware profile asks for, and why.
//!
//! [`engine_from_profile`] builds the engine's CPU backend from the profile and,
//! when `gpu.enabled` is set, tries to open an adapter matching
//! `gpu.adapter_pattern` and attach the GPU MSM for MSMs of at least
//! `gpu.crossover_points` points. Any failure keeps the CPU engine and says why
//! (also logged with `tracing`).

use torus_engine::profile::HwProfile;
use torus_engine::Engine;

use crate::device::GpuOptions;
use crate::msm::{shared, GpuMsm};

/// What [`engine_from_profile`] chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// CPU only, as the profile asks (`gpu.enabled = false`).
    CpuByProfile,
    /// The profile asked for a GPU that could not be opened; CPU only.
    CpuFallback {
        /// Why (no adapter, no adapter matching the pattern, device error).
        reason: String,
    },
    /// The GPU MSM is attached above the crossover size.
    Gpu {
        /// The adapter's name.
        adapter: String,
        /// Smallest MSM sent to the GPU.
        crossover_points: u64,
    },
}

impl core::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BackendChoice::CpuByProfile => f.write_str("cpu (gpu disabled by the profile)"),
            BackendChoice::CpuFallback { reason } => write!(f, "cpu (gpu unavailable: {reason})"),
            BackendChoice::Gpu {
                adapter,
                crossover_points,
            } => write!(
                f,
                "gpu {adapter} for MSMs >= {crossover_points} points, cpu below"
            ),
        }
    }
}

/// The engine a profile asks for, and the choice made.
pub fn engine_from_profile(profile: &HwProfile) -> (Engine, BackendChoice) {
    let engine = Engine::from_profile(profile);
    if !profile.gpu.enabled {
        return (engine, BackendChoice::CpuByProfile);
    }
    let opts = GpuOptions {
        adapter_pattern: profile.gpu.adapter_pattern.clone(),
        allow_software: false,
    };
    match GpuMsm::with_options(&opts) {
        Ok(gpu) => {
            let adapter = gpu.context().adapter().name.clone();
            let gpu = gpu.with_window(profile.msm.gpu_window.bits());
            let crossover = profile.gpu.crossover_points;
            tracing::info!(profile = %profile.name, %adapter, crossover, "GPU MSM enabled");
            let engine = engine.with_offload(
                shared(gpu),
                usize::try_from(crossover).unwrap_or(usize::MAX),
            );
            (
                engine,
                BackendChoice::Gpu {
                    adapter,
                    crossover_points: crossover,
                },
            )
        }
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(profile = %profile.name, %reason, "GPU unavailable; using the CPU");
            (engine, BackendChoice::CpuFallback { reason })
        }
    }
}
