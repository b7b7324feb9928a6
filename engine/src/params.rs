//! Committee parameters.

use crate::error::{Error, Result};

/// Largest committee the engine accepts (indexes are `u32`, but matrices grow as n*k^2).
pub const MAX_NODES: u32 = 1024;

/// Committee parameters of one epoch: `n` nodes with 1-based indexes, `k`
/// polynomial coefficients (degree k-1; k shares reconstruct), `t` tolerated faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Params {
    /// Number of nodes.
    pub n: u32,
    /// Reconstruction threshold = number of polynomial coefficients.
    pub k: u32,
    /// Tolerated faulty nodes.
    pub t: u32,
}

impl Params {
    /// Validated parameters: `1 <= k <= n`, `k + t <= n`, `t < k` (else the `t`
    /// tolerated faulty nodes could reconstruct every key), `n >= 3t + 1` (the AVSS
    /// echo and ready quorums need it), `n <= MAX_NODES`.
    pub fn new(n: u32, k: u32, t: u32) -> Result<Self> {
        let bad = |reason| Err(Error::InvalidParams { n, k, t, reason });
        if n == 0 || n > MAX_NODES {
            return bad("n must be in 1..=1024");
        }
        if k == 0 || k > n {
            return bad("k must be in 1..=n");
        }
        if k.saturating_add(t) > n {
            return bad("k + t must not exceed n (a sharing completes with k + t readies)");
        }
        if t >= k {
            return bad("t must be below k (t faulty nodes must not hold k shares)");
        }
        if u64::from(n) < 3 * u64::from(t) + 1 {
            return bad("n must be at least 3t + 1 (AVSS quorums)");
        }
        Ok(Params { n, k, t })
    }

    /// The Torus rule for `n` nodes: `k = floor(n/2) + 1`, `t = floor((n-1)/4)`
    /// (n=5: k=3, t=1; n=9: k=5, t=2).
    pub fn torus(n: u32) -> Result<Self> {
        Self::new(n, n / 2 + 1, n.saturating_sub(1) / 4)
    }

    /// `k` as usize.
    pub fn ku(&self) -> usize {
        self.k as usize
    }

    /// Echo threshold `max(ceil((n+t+1)/2), k)` of the AVSS state machine.
    pub fn echo_threshold(&self) -> u32 {
        (self.n + self.t + 1).div_ceil(2).max(self.k)
    }

    /// Readies needed to complete a sharing: `k + t`.
    pub fn ready_threshold(&self) -> u32 {
        self.k + self.t
    }

    /// Checks that `index` is a node index of this committee.
    pub fn check_index(&self, index: u32) -> Result<()> {
        if index == 0 {
            return Err(Error::ZeroIndex);
        }
        if index > self.n {
            return Err(Error::IndexOutOfRange { index, n: self.n });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torus_rule() {
        assert_eq!(Params::torus(5).unwrap(), Params { n: 5, k: 3, t: 1 });
        assert_eq!(Params::torus(9).unwrap(), Params { n: 9, k: 5, t: 2 });
        assert_eq!(Params::torus(1).unwrap(), Params { n: 1, k: 1, t: 0 });
        assert!(Params::new(3, 4, 0).is_err());
        assert!(Params::new(5, 3, 3).is_err());
        assert!(Params::new(0, 0, 0).is_err());
    }

    #[test]
    fn parameters_that_let_the_faulty_nodes_reconstruct_or_break_quorums_are_refused() {
        // t faulty nodes holding k shares would reconstruct every key.
        assert!(Params::new(7, 2, 2).is_err());
        assert!(Params::new(7, 2, 3).is_err());
        // n < 3t + 1: echo and ready quorums cannot both hold.
        assert!(Params::new(5, 3, 2).is_err());
        assert!(Params::new(6, 3, 2).is_err());
        assert!(Params::new(7, 3, 2).is_ok());
        assert!(Params::new(u32::MAX, 3, u32::MAX / 2).is_err());
    }

    #[test]
    fn echo_thresholds() {
        assert_eq!(Params::new(5, 3, 1).unwrap().echo_threshold(), 4);
        assert_eq!(Params::new(9, 5, 2).unwrap().echo_threshold(), 6);
    }
}
