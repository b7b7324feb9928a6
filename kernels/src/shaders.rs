//! WGSL sources and their metadata.
//!
//! WGSL has no `#include`, so each module the host compiles is a concatenation of
//! the files below (shared 32-bit helpers first, then the field, the curve and the
//! entry points). The unit tests parse and validate every composed module with
//! naga, so CI without a GPU still catches shader errors.
//!
//! # Limb layout
//!
//! Field elements are little-endian arrays of 32-bit limbs: 8 for secp256k1's
//! base field (plain form, fully reduced, special reduction by `2^32 + 977`), 12
//! for BLS12-381's (Montgomery form, `R = 2^384`, CIOS multiplication). WGSL has
//! no wide multiply, so a 32x32-bit product is four 16x16-bit products
//! (`mul_wide` in `u32_math.wgsl`).

/// 32-bit limb helpers (`mul_wide`, `mac`, `adc`, `sbb`).
pub const U32_MATH: &str = include_str!("../shaders/u32_math.wgsl");
/// secp256k1 base field.
pub const SECP256K1_FIELD: &str = include_str!("../shaders/secp256k1_field.wgsl");
/// secp256k1 Jacobian point arithmetic.
pub const SECP256K1_CURVE: &str = include_str!("../shaders/secp256k1_curve.wgsl");
/// Pippenger MSM entry points (secp256k1).
pub const MSM_SECP256K1: &str = include_str!("../shaders/msm_secp256k1.wgsl");
/// Test entry point for the secp256k1 field.
pub const SECP256K1_FIELD_TEST: &str = include_str!("../shaders/secp256k1_field_test.wgsl");
/// BLS12-381 base field.
pub const BLS12_381_FIELD: &str = include_str!("../shaders/bls12_381_field.wgsl");
/// Test entry point for the BLS12-381 field.
pub const BLS12_381_FIELD_TEST: &str = include_str!("../shaders/bls12_381_field_test.wgsl");

/// Workgroup size of the per-point and per-bucket MSM passes (`WG` in the shader).
pub const WORKGROUP_SIZE: u32 = 64;
/// Workgroup size of the single-workgroup scan pass (`SCAN_WG`).
pub const SCAN_WORKGROUP_SIZE: u32 = 256;
/// Buckets per thread of the local scan pass (`SCAN_BLOCK`).
pub const SCAN_BLOCK: u32 = 64;
/// 32-bit words per secp256k1 field element.
pub const SECP256K1_LIMBS: usize = 8;
/// 32-bit words per BLS12-381 base field element.
pub const BLS12_381_LIMBS: usize = 12;
/// 32-bit words per affine input point (x then y).
pub const POINT_WORDS: usize = 2 * SECP256K1_LIMBS;
/// 32-bit words per Jacobian point in the `acc` buffer (x, y, z).
pub const JAC_WORDS: usize = 3 * SECP256K1_LIMBS;

/// MSM entry points, in dispatch order (`merge_partials` and `reduce_pairs` run
/// once per level, or not at all).
pub const MSM_ENTRY_POINTS: [&str; 9] = [
    "count_digits",
    "scan_local",
    "scan_blocks",
    "scan_add",
    "scatter",
    "accumulate",
    "merge_partials",
    "reduce_buckets",
    "reduce_pairs",
];

/// How a binding of the MSM module is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// A uniform buffer bound once per chunk.
    Uniform,
    /// A read-only storage buffer bound at a different dynamic offset per
    /// dispatch (not a uniform: llvmpipe re-specializes a shader for every new
    /// set of uniform values its branches and loop bounds depend on, which cost
    /// about 100 ms per dispatch of these kernels).
    DynamicStorage,
    /// A storage buffer.
    Storage {
        /// Whether the shader only reads it.
        read_only: bool,
    },
}

/// Bindings of the MSM module (group 0): `(binding, name, kind)`.
pub const MSM_BINDINGS: [(u32, &str, BindingKind); 8] = [
    (0, "params", BindingKind::Uniform),
    (1, "points", BindingKind::Storage { read_only: true }),
    (2, "scalars", BindingKind::Storage { read_only: true }),
    (3, "sorted", BindingKind::Storage { read_only: false }),
    (4, "idx", BindingKind::Storage { read_only: false }),
    (5, "acc", BindingKind::Storage { read_only: false }),
    (6, "keys", BindingKind::Storage { read_only: false }),
    (7, "lv", BindingKind::DynamicStorage),
];

/// 32-bit words of the per-dispatch `Level` parameters of the MSM module.
pub const LEVEL_WORDS: usize = 12;

/// How the limb loops (`nl()`, `nlq()` in the field code) are compiled.
///
/// The default is constant bounds, which drivers unroll into straight-line code.
/// `Rolled` reads the bounds from the module's uniform so that they cannot be
/// unrolled; it was tried to cut llvmpipe's compile time (minutes for the MSM
/// module on 2 cores) and did not help (the field test module compiled in 12 s
/// rolled against 7.6 s unrolled). The arithmetic is the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loops {
    /// Constant bounds (hardware GPUs).
    Unrolled,
    /// Bounds read at run time from the module's uniform (software adapters).
    Rolled,
}

fn prelude(loops: Loops, rolled_nl: &str, rolled_nlq: &str) -> String {
    let (nl, nlq) = match loops {
        Loops::Unrolled => ("8u", "12u"),
        Loops::Rolled => (rolled_nl, rolled_nlq),
    };
    format!(
        "// Limb loop bounds ({loops:?}).\nfn nl() -> u32 {{\n    return {nl};\n}}\n\
         fn nlq() -> u32 {{\n    return {nlq};\n}}\n\n"
    )
}

/// The composed MSM module.
pub fn msm_secp256k1(loops: Loops) -> String {
    [
        &prelude(loops, "params.limbs", "12u"),
        U32_MATH,
        SECP256K1_FIELD,
        SECP256K1_CURVE,
        MSM_SECP256K1,
    ]
    .concat()
}

/// The composed secp256k1 field test module (entry point `field_ops`).
pub fn secp256k1_field_test(loops: Loops) -> String {
    [
        &prelude(loops, "tparams.x", "tparams.y"),
        U32_MATH,
        SECP256K1_FIELD,
        SECP256K1_FIELD_TEST,
    ]
    .concat()
}

/// The composed BLS12-381 field test module (entry point `field_ops`).
pub fn bls12_381_field_test(loops: Loops) -> String {
    [
        &prelude(loops, "tparams.x", "tparams.y"),
        U32_MATH,
        BLS12_381_FIELD,
        BLS12_381_FIELD_TEST,
    ]
    .concat()
}

/// Every composed module in both loop modes, by name (for validation and tooling).
pub fn all_modules() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for loops in [Loops::Unrolled, Loops::Rolled] {
        v.push((format!("msm_secp256k1 {loops:?}"), msm_secp256k1(loops)));
        v.push((
            format!("secp256k1_field_test {loops:?}"),
            secp256k1_field_test(loops),
        ));
        v.push((
            format!("bls12_381_field_test {loops:?}"),
            bls12_381_field_test(loops),
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(name: &str, src: &str) {
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        );
        if let Err(e) = v.validate(&module) {
            panic!("{name}: {}", e.emit_to_string(src));
        }
    }

    #[test]
    fn every_module_parses_and_validates_with_naga() {
        for (name, src) in all_modules() {
            validate(&name, &src);
        }
    }

    #[test]
    fn metadata_matches_the_sources() {
        assert!(MSM_SECP256K1.contains(&format!("const WG: u32 = {WORKGROUP_SIZE}u;")));
        assert!(MSM_SECP256K1.contains(&format!("const SCAN_WG: u32 = {SCAN_WORKGROUP_SIZE}u;")));
        assert!(MSM_SECP256K1.contains(&format!("const SCAN_BLOCK: u32 = {SCAN_BLOCK}u;")));
        for e in MSM_ENTRY_POINTS {
            assert!(MSM_SECP256K1.contains(&format!("fn {e}(")), "{e}");
        }
        for (b, name, _) in MSM_BINDINGS {
            assert!(
                MSM_SECP256K1.contains(&format!("@binding({b}) var"))
                    && MSM_SECP256K1.contains(name),
                "{name}"
            );
        }
    }
}
