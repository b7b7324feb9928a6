//! The backend choice follows the hardware profile, and every failure falls back
//! to the CPU with the reason reported.

mod common;

use std::sync::Arc;

use common::{random_points, random_scalars, rng};
use k256::{ProjectivePoint, Scalar};
use torus_engine::offload::Secp256k1Xy;
use torus_engine::profile::HwProfile;
use torus_engine::{Engine, MsmRoute, Secp256k1, VartimeMsmOffload};
use torus_kernels::{engine_from_profile, BackendChoice, GpuMsm, GpuOptions};

fn profile(enabled: bool, pattern: &str, crossover: u64) -> HwProfile {
    let mut p = HwProfile {
        name: "test".into(),
        ..HwProfile::default()
    };
    p.gpu.enabled = enabled;
    p.gpu.adapter_pattern = pattern.into();
    p.gpu.crossover_points = crossover;
    p
}

#[test]
fn gpu_disabled_by_profile_means_cpu() {
    let (engine, choice) = engine_from_profile(&profile(false, "", 1));
    assert_eq!(choice, BackendChoice::CpuByProfile);
    assert_eq!(engine.offload_name(), None);
    assert_eq!(
        engine.vartime_msm_route::<Secp256k1>(1 << 30),
        MsmRoute::Cpu
    );
}

#[test]
fn unavailable_adapter_falls_back_to_cpu_and_says_why() {
    let pattern = "no-such-adapter-3f9c";
    let (engine, choice) = engine_from_profile(&profile(true, pattern, 1));
    match &choice {
        BackendChoice::CpuFallback { reason } => {
            assert!(reason.contains("no GPU adapter"), "{reason}");
        }
        other => panic!("expected a CPU fallback, got {other:?}"),
    }
    assert!(choice.to_string().starts_with("cpu (gpu unavailable"));
    assert_eq!(engine.offload_name(), None);
    // And the engine still computes.
    let mut r = rng(1);
    let p = random_points(10, &mut r);
    let s = random_scalars(10, &mut r);
    assert_eq!(
        engine.vartime_msm::<Secp256k1>(&p, &s).expect("msm"),
        Engine::reference()
            .vartime_msm::<Secp256k1>(&p, &s)
            .expect("msm")
    );
    // GpuMsm::new with an impossible pattern is an error, not a panic.
    let e = GpuMsm::with_options(&GpuOptions {
        adapter_pattern: pattern.into(),
        allow_software: true,
    })
    .expect_err("no adapter");
    assert!(e.to_string().contains(pattern), "{e}");
}

/// An offload backend that always fails.
struct Broken;

impl VartimeMsmOffload for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn vartime_msm_secp256k1(
        &self,
        _: &[Secp256k1Xy],
        _: &[Scalar],
    ) -> Result<ProjectivePoint, String> {
        Err("device lost (simulated)".into())
    }
}

#[test]
fn offload_errors_fall_back_to_the_cpu_result() {
    let engine = Engine::new().with_offload(Arc::new(Broken), 8);
    let mut r = rng(2);
    let p = random_points(20, &mut r);
    let s = random_scalars(20, &mut r);
    let want = Engine::reference()
        .vartime_msm::<Secp256k1>(&p, &s)
        .expect("cpu");
    // Below the crossover: CPU directly, the offload is not asked.
    assert_eq!(engine.vartime_msm_route::<Secp256k1>(7), MsmRoute::Cpu);
    assert_eq!(
        engine
            .vartime_msm::<Secp256k1>(&p[..7], &s[..7])
            .expect("msm"),
        Engine::reference()
            .vartime_msm::<Secp256k1>(&p[..7], &s[..7])
            .expect("cpu")
    );
    assert_eq!(engine.offload_fallbacks(), 0);
    // Above: offload, which fails, then the CPU.
    assert_eq!(engine.vartime_msm_route::<Secp256k1>(20), MsmRoute::Offload);
    assert_eq!(engine.vartime_msm::<Secp256k1>(&p, &s).expect("msm"), want);
    assert_eq!(engine.offload_fallbacks(), 1);
    // BLS12-381 has no offload path: always the CPU.
    assert_eq!(
        engine.vartime_msm_route::<torus_engine::Bls12381>(1 << 20),
        MsmRoute::Cpu
    );
}
