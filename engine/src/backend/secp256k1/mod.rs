//! secp256k1 hot paths over k256's exposed field arithmetic.
//!
//! - [`point`]: the affine representation shared by the paths below.
//! - `pippenger`: variable-time MSM for public data (`vartime_*`).
//! - `fixed_base`: constant-time fixed-base multiplication of secret scalars by G and H.

pub mod fixed_base;
pub mod pippenger;
pub mod point;
