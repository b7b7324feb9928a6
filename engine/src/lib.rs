#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used)]
#![deny(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod avss;
// The curve backends are private: public types never name one. The `internals`
// feature exposes them to benches and the kernels' differential tests only (not an
// API; it changes with the backends).
#[cfg(feature = "internals")]
pub mod backend;
#[cfg(not(feature = "internals"))]
#[allow(dead_code)]
mod backend;
pub mod dkg;
pub mod error;
pub mod group;
pub mod msm;
pub mod naive;
pub mod offload;
pub mod params;
pub mod poly;
pub mod profile;
pub mod pss;
pub mod secret;
#[cfg(feature = "test-impl")]
pub mod testing;
pub mod wire;

pub use error::{Culprit, DecodeError, Error, Result};
pub use group::{Affine, Bls12381, Point, Scalar, Secp256k1, Suite};
pub use msm::{Engine, MsmRoute};
pub use offload::VartimeMsmOffload;
pub use params::Params;
pub use profile::HwProfile;
