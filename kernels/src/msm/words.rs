//! The shader's word layout: packing the inputs, reading the window sums back.

use k256::{ProjectivePoint, Scalar};
use torus_engine::offload::{self, Secp256k1Xy};

use crate::error::GpuError;
use crate::shaders::{JAC_WORDS, POINT_WORDS};

/// A bind group entry binding all of `buf`.
pub(super) fn whole(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buf.as_entire_binding(),
    }
}

/// Packs a chunk into the shader's word layout (points: x then y; scalars: 8 limbs).
pub(super) fn pack(chunk: &[(&Secp256k1Xy, [u32; 8])]) -> (Vec<u32>, Vec<u32>) {
    let mut pts = Vec::with_capacity(chunk.len() * POINT_WORDS);
    let mut sc = Vec::with_capacity(chunk.len() * 8);
    for (p, s) in chunk {
        for fe in [p.x, p.y] {
            for limb in fe {
                pts.push(limb as u32);
                pts.push((limb >> 32) as u32);
            }
        }
        sc.extend_from_slice(s);
    }
    (pts, sc)
}

/// Little-endian 32-bit limbs of a scalar.
pub(super) fn scalar_words(s: &Scalar) -> [u32; 8] {
    let be = s.to_bytes();
    let mut w = [0u32; 8];
    for (i, c) in be.rchunks_exact(4).enumerate() {
        if let (Some(slot), Ok(b)) = (w.get_mut(i), <[u8; 4]>::try_from(c)) {
            *slot = u32::from_be_bytes(b);
        }
    }
    w
}

pub(super) fn bit_len(w: &[u32; 8]) -> usize {
    w.iter()
        .enumerate()
        .rev()
        .find(|(_, x)| **x != 0)
        .map_or(0, |(i, x)| 32 * i + 32 - x.leading_zeros() as usize)
}

fn limbs_from_words(w: &[u32]) -> Result<[u64; 4], GpuError> {
    let mut l = [0u64; 4];
    for (i, limb) in l.iter_mut().enumerate() {
        let lo = w.get(2 * i).copied();
        let hi = w.get(2 * i + 1).copied();
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Err(GpuError::Readback("short field element".into()));
        };
        *limb = u64::from(lo) | (u64::from(hi) << 32);
    }
    Ok(l)
}

/// A Jacobian point (24 words) from the GPU as a k256 point.
fn jac_to_projective(w: &[u32]) -> Result<ProjectivePoint, GpuError> {
    let (Some(x), Some(y), Some(z)) = (w.get(0..8), w.get(8..16), w.get(16..24)) else {
        return Err(GpuError::Readback("short point".into()));
    };
    let (x, y, z) = (
        limbs_from_words(x)?,
        limbs_from_words(y)?,
        limbs_from_words(z)?,
    );
    // An off-curve result is a kernel bug: refuse it.
    offload::secp256k1_from_jacobian(x, y, z)
        .ok_or_else(|| GpuError::Readback("GPU returned a point off the curve".into()))
}

/// Horner over the window sums: `sum_w 2^(c w) W_w`.
pub(super) fn combine_windows(words: &[u32], c: u32) -> Result<ProjectivePoint, GpuError> {
    let mut acc = ProjectivePoint::IDENTITY;
    for w in words.chunks(JAC_WORDS).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        acc += jac_to_projective(w)?;
    }
    Ok(acc)
}
