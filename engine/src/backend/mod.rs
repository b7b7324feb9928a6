//! Curve-specific fast paths. Public types never name a backend.

pub mod secp256k1;
pub mod simd;
