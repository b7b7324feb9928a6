//! Secret scalar containers: zeroized on drop, redacted in `Debug`.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).
//!
//! What is NOT zeroized (see also the README): encoded copies a caller makes with
//! the `wire` module, values the caller copies out of these containers, and
//! memory freed by reallocation before the container was built (we size every
//! vector once). Scalars are `Copy`, so temporaries on the stack are best effort.

use core::fmt;

use ff::Field;

/// Overwrites `v` with zeros in a way the optimizer cannot elide.
pub fn wipe<F: Field>(v: &mut [F]) {
    for x in v.iter_mut() {
        *x = F::ZERO;
    }
    core::hint::black_box(&*v);
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// A vector of secret scalars. Zeroized on drop; `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretVec<F: Field>(Vec<F>);

impl<F: Field> SecretVec<F> {
    /// Takes ownership of `v`.
    pub fn new(v: Vec<F>) -> Self {
        SecretVec(v)
    }
    /// `len` zeros.
    pub fn zeros(len: usize) -> Self {
        SecretVec(vec![F::ZERO; len])
    }
    /// Read access.
    pub fn as_slice(&self) -> &[F] {
        &self.0
    }
    /// Write access.
    pub fn as_mut_slice(&mut self) -> &mut [F] {
        &mut self.0
    }
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<F: Field> Drop for SecretVec<F> {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl<F: Field> fmt::Debug for SecretVec<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretVec(<redacted>; {})", self.0.len())
    }
}

impl<F: Field> core::ops::Deref for SecretVec<F> {
    type Target = [F];
    fn deref(&self) -> &[F] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::Scalar;

    #[test]
    fn debug_is_redacted() {
        let s = SecretVec::new(vec![Scalar::from(0x1234_5678_9abc_def1u64)]);
        let d = format!("{s:?}");
        assert!(
            !d.contains("123456789abcdef1") && !d.contains("123456789ABCDEF1"),
            "{d}"
        );
        assert!(d.contains("redacted"));
    }

    #[test]
    fn wipe_zeroes() {
        let mut v = vec![Scalar::ONE; 4];
        wipe(&mut v);
        assert!(v.iter().all(|x| bool::from(x.is_zero())));
    }
}
