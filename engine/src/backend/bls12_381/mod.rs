//! BLS12-381 G1 fast paths (over blstrs / blst arithmetic).
//!
//! - [`fixed_base`]: constant-time fixed-base multiplication by G and H with
//!   precomputed window tables (dealing commitments, public key shares).

pub mod fixed_base;
