//! Planning: window width and GLV decision.

use super::window::{BATCH_DIV, MAX_BATCH};

/// Relative cost of one bucket (running-sum) step vs one batch-affine addition.
const BUCKET_COST: f64 = 4.0;
/// Relative cost of one field inversion vs one batch-affine addition (~270M vs ~6M).
const INV_COST: f64 = 45.0;
/// Relative per-point cost of the GLV split (decomposition + point copies), in additions.
const GLV_COST: f64 = 2.0;

/// Modelled time (per worker) of one window width `c` for `n` points of `bits`
/// bits on `threads` workers, with each window's points split into `p` chunks
/// (every (window, chunk) task accumulates its own buckets and reduces them).
fn window_cost(n: usize, bits: usize, c: usize, p: usize, threads: usize) -> f64 {
    let nw = (bits + 1).div_ceil(c);
    let nb = 1usize << (c - 1);
    // One shared inversion per batch: amortized INV_COST / batch per addition.
    let batch = (nb / BATCH_DIV).clamp(8, MAX_BATCH) as f64;
    // Buckets beyond the L2 cache (8192 affine buckets are 576 KiB) make every
    // addition slower (measured on Zen 4: c = 14..16 lose to c = 13 serially).
    let cache = if nb > 4096 { 1.25 } else { 1.0 };
    let per_add = cache * (1.0 + INV_COST / batch);
    let rounds = (nw * p).div_ceil(threads.max(1)) as f64;
    rounds * ((n as f64 / p as f64) * per_add + BUCKET_COST * nb as f64)
}

/// Best `(window width, point chunks, modelled cost)` for `n` points of `bits`
/// bits on `threads` workers.
fn best_window(n: usize, bits: usize, threads: usize) -> (usize, usize, f64) {
    let mut best = (2usize, 1usize, f64::INFINITY);
    for c in 2..=16usize {
        let (p, cost) = best_chunks(n, bits, c, threads);
        if cost < best.2 {
            best = (c, p, cost);
        }
    }
    best
}

/// Best number of point chunks per window for width `c` (1 on one worker).
pub(super) fn best_chunks(n: usize, bits: usize, c: usize, threads: usize) -> (usize, f64) {
    let mut best = (1usize, window_cost(n, bits, c, 1, threads));
    // Chunks only pay for themselves in balancing the workers.
    for p in 2..=(4 * threads).min(n.max(1)) {
        let cost = window_cost(n, bits, c, p, threads);
        if cost < best.1 * 0.98 {
            best = (p, cost);
        }
    }
    best
}

/// The plan: `(use_glv, window width, point chunks per window)`.
pub(super) fn plan(n: usize, bits: usize, threads: usize) -> (bool, usize, usize) {
    let (c_plain, p_plain, cost_plain) = best_window(n, bits, threads);
    if bits <= 128 {
        return (false, c_plain, p_plain);
    }
    let (c_glv, p_glv, cost_glv) = best_window(2 * n, 128, threads);
    if cost_glv + GLV_COST * (n as f64) / (threads.max(1) as f64) < cost_plain {
        (true, c_glv, p_glv)
    } else {
        (false, c_plain, p_plain)
    }
}

/// Workers of the parallel MSM (the current rayon pool).
pub(super) fn workers(par: bool) -> usize {
    #[cfg(feature = "parallel")]
    if par {
        return rayon::current_num_threads().max(1);
    }
    let _ = par;
    1
}
