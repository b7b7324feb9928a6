//! Univariate polynomials over the scalar field, Lagrange coefficients and
//! interpolation. Indexes are 1-based node indexes (x-coordinates); 0 is where
//! the secret lives.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use ff::{Field, PrimeField};

use crate::error::{Error, Result};

/// Horner evaluation of `sum coeffs[j] * x^j`.
pub fn horner<F: Field>(coeffs: &[F], x: F) -> F {
    coeffs.iter().rev().fold(F::ZERO, |acc, c| acc * x + c)
}

/// `[1, x, x^2, ..., x^(len-1)]`.
pub fn powers<F: Field>(x: F, len: usize) -> Vec<F> {
    let mut out = Vec::with_capacity(len);
    let mut acc = F::ONE;
    for _ in 0..len {
        out.push(acc);
        acc *= x;
    }
    out
}

/// Checks an index set: no zero, no duplicates.
pub fn check_indexes(indexes: &[u32]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(indexes.len());
    for &i in indexes {
        if i == 0 {
            return Err(Error::ZeroIndex);
        }
        if !seen.insert(i) {
            return Err(Error::DuplicateIndex(i));
        }
    }
    Ok(())
}

/// Lagrange coefficients `lambda_i(at) = prod_{m != i} (at - x_m) / (x_i - x_m)` for the
/// given index set, in the order of `indexes`. One field inversion in all.
pub fn lagrange_coefficients<F: PrimeField>(indexes: &[u32], at: F) -> Result<Vec<F>> {
    check_indexes(indexes)?;
    if indexes.is_empty() {
        return Err(Error::TooFewPoints { need: 1, got: 0 });
    }
    let xs: Vec<F> = indexes.iter().map(|&i| F::from(u64::from(i))).collect();
    let mut nums = Vec::with_capacity(xs.len());
    let mut dens = Vec::with_capacity(xs.len());
    for (i, xi) in xs.iter().enumerate() {
        let mut num = F::ONE;
        let mut den = F::ONE;
        for (m, xm) in xs.iter().enumerate() {
            if m != i {
                num *= at - xm;
                den *= *xi - xm;
            }
        }
        nums.push(num);
        dens.push(den);
    }
    batch_invert(&mut dens);
    Ok(nums.into_iter().zip(dens).map(|(n, d)| n * d).collect())
}

/// Lagrange coefficients at 0.
pub fn lagrange_at_zero<F: PrimeField>(indexes: &[u32]) -> Result<Vec<F>> {
    lagrange_coefficients(indexes, F::ZERO)
}

/// Evaluates at `at` the polynomial through `(indexes[i], values[i])`.
pub fn interpolate_at<F: PrimeField>(indexes: &[u32], values: &[F], at: F) -> Result<F> {
    if indexes.len() != values.len() {
        return Err(Error::LengthMismatch {
            what: "interpolation values",
            expected: indexes.len(),
            got: values.len(),
        });
    }
    let l = lagrange_coefficients(indexes, at)?;
    Ok(l.iter().zip(values).map(|(l, v)| *l * v).sum())
}

/// Lagrange basis polynomials in coefficient form: `basis[i][j]` is the j-th
/// coefficient of the degree-(len-1) polynomial that is 1 at `indexes[i]` and 0 at
/// the others. Interpolating many value vectors over the same index set is then
/// one matrix-vector product each.
pub fn lagrange_basis<F: PrimeField>(indexes: &[u32]) -> Result<Vec<Vec<F>>> {
    check_indexes(indexes)?;
    let len = indexes.len();
    if len == 0 {
        return Err(Error::TooFewPoints { need: 1, got: 0 });
    }
    let xs: Vec<F> = indexes.iter().map(|&i| F::from(u64::from(i))).collect();
    // Full product P(x) = prod (x - x_m), coefficients low to high.
    let mut full = vec![F::ZERO; len + 1];
    if let Some(c) = full.first_mut() {
        *c = F::ONE;
    }
    for (deg, xm) in xs.iter().enumerate() {
        // multiply by (x - xm): new[j] = old[j-1] - xm*old[j]
        let mut prev = F::ZERO;
        for c in full.iter_mut().take(deg + 2) {
            let cur = *c;
            *c = prev - *xm * cur;
            prev = cur;
        }
    }
    let mut dens = Vec::with_capacity(len);
    for (i, xi) in xs.iter().enumerate() {
        let mut d = F::ONE;
        for (m, xm) in xs.iter().enumerate() {
            if m != i {
                d *= *xi - xm;
            }
        }
        dens.push(d);
    }
    batch_invert(&mut dens);
    let mut basis = Vec::with_capacity(len);
    for (xi, dinv) in xs.iter().zip(&dens) {
        // P(x) / (x - xi) by synthetic division, high to low.
        let mut q = vec![F::ZERO; len];
        let mut carry = F::ZERO;
        for j in (0..len).rev() {
            carry = full.get(j + 1).copied().unwrap_or(F::ZERO) + carry * xi;
            if let Some(slot) = q.get_mut(j) {
                *slot = carry * dinv;
            }
        }
        basis.push(q);
    }
    Ok(basis)
}

/// Coefficients of the polynomial of degree < len through the given points.
pub fn interpolate_coeffs<F: PrimeField>(indexes: &[u32], values: &[F]) -> Result<Vec<F>> {
    if indexes.len() != values.len() {
        return Err(Error::LengthMismatch {
            what: "interpolation values",
            expected: indexes.len(),
            got: values.len(),
        });
    }
    let basis = lagrange_basis::<F>(indexes)?;
    Ok(combine_basis(&basis, values))
}

/// `sum_i values[i] * basis[i]` (coefficient-wise).
pub fn combine_basis<F: Field>(basis: &[Vec<F>], values: &[F]) -> Vec<F> {
    let len = basis.first().map_or(0, Vec::len);
    let mut out = vec![F::ZERO; len];
    for (b, v) in basis.iter().zip(values) {
        for (o, c) in out.iter_mut().zip(b) {
            *o += *c * v;
        }
    }
    out
}

/// Montgomery's batch inversion; zero entries stay zero.
pub fn batch_invert<F: Field>(v: &mut [F]) {
    let mut prefix = Vec::with_capacity(v.len());
    let mut acc = F::ONE;
    for x in v.iter() {
        prefix.push(acc);
        if !bool::from(x.is_zero()) {
            acc *= x;
        }
    }
    let mut inv = acc.invert().unwrap_or(F::ZERO);
    for (x, p) in v.iter_mut().zip(prefix).rev() {
        if bool::from(x.is_zero()) {
            continue;
        }
        let xi = inv * p;
        inv *= *x;
        *x = xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::Scalar;
    use rand_core::OsRng;

    #[test]
    fn interpolation_round_trips() {
        for len in 1..8usize {
            let coeffs: Vec<Scalar> = (0..len).map(|_| Scalar::random(OsRng)).collect();
            let idx: Vec<u32> = (0..len as u32).map(|i| i * 3 + 2).collect();
            let vals: Vec<Scalar> = idx
                .iter()
                .map(|&i| horner(&coeffs, Scalar::from(u64::from(i))))
                .collect();
            assert_eq!(interpolate_coeffs(&idx, &vals).unwrap(), coeffs);
            assert_eq!(
                interpolate_at(&idx, &vals, Scalar::ZERO).unwrap(),
                coeffs[0]
            );
            let at = Scalar::from(77u64);
            assert_eq!(
                interpolate_at(&idx, &vals, at).unwrap(),
                horner(&coeffs, at)
            );
        }
    }

    #[test]
    fn typed_errors() {
        assert_eq!(lagrange_at_zero::<Scalar>(&[1, 0]), Err(Error::ZeroIndex));
        assert_eq!(
            lagrange_at_zero::<Scalar>(&[1, 2, 1]),
            Err(Error::DuplicateIndex(1))
        );
        assert!(matches!(
            lagrange_at_zero::<Scalar>(&[]),
            Err(Error::TooFewPoints { .. })
        ));
        assert!(matches!(
            interpolate_at::<Scalar>(&[1, 2], &[Scalar::ONE], Scalar::ZERO),
            Err(Error::LengthMismatch { .. })
        ));
    }

    #[test]
    fn batch_invert_skips_zero() {
        let mut v = vec![Scalar::from(3u64), Scalar::ZERO, Scalar::from(5u64)];
        batch_invert(&mut v);
        assert_eq!(v[0] * Scalar::from(3u64), Scalar::ONE);
        assert_eq!(v[1], Scalar::ZERO);
        assert_eq!(v[2] * Scalar::from(5u64), Scalar::ONE);
    }
}
