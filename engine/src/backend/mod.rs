//! Curve-specific fast paths. Public types never name a backend.

pub mod bls12_381;
pub mod secp256k1;
pub mod simd;
