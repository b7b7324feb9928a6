//! The `torus-bench` tool's library: one node's whole batch work, its naive
//! baseline and the external baselines, run side by side in one process.

pub mod baselines;
pub mod calibrate;
pub mod chaos;
pub mod devnet;
pub mod msm;
pub mod node;
pub mod reshare;
pub mod rpc;
pub mod soak;

use std::time::Instant;

/// Times `f`, returning its output and the elapsed seconds.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_secs_f64())
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), if known.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A deterministic 32-byte seed.
pub fn seed(a: u64, b: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&a.to_le_bytes());
    s[8..16].copy_from_slice(&b.to_le_bytes());
    s
}
