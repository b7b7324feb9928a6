//! Batch AVSS engine.
#![forbid(unsafe_code)]

pub mod backend;
