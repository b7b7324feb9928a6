//! secp256k1 hot paths over our own 4x64-limb field arithmetic ([`field::Fe`]).
//!
//! - [`field`]: the constant-time base field `GF(p)`.
//! - [`point`]: the affine representation shared by the paths below.
//! - `pippenger`: variable-time MSM for public data (`vartime_*`).
//! - `fixed_base`: constant-time fixed-base multiplication of secret scalars by G and H.
//! - `ifma`: eight lanes of field arithmetic with AVX-512 IFMA for both kernels
//!   (the crate's one audited `unsafe` module; chosen at run time, see
//!   [`crate::backend::simd`]).

pub mod field;
pub mod fixed_base;
#[doc(hidden)]
pub mod ifma;
pub mod pippenger;
pub mod point;
