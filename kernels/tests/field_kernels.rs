//! Field arithmetic kernels (secp256k1 and BLS12-381 base fields) against the CPU
//! on random and edge inputs.

mod common;

use common::{context, rng};
use ff::Field;
use rand_core::RngCore;
use torus_engine::backend::secp256k1::field::Fe;
use torus_kernels::shaders;

fn fe_words(f: &Fe) -> Vec<u32> {
    f.normalize()
        .0
        .iter()
        .flat_map(|l| [*l as u32, (*l >> 32) as u32])
        .collect()
}

fn fe_from_words(w: &[u32]) -> Fe {
    let mut l = [0u64; 4];
    for (i, x) in l.iter_mut().enumerate() {
        *x = u64::from(w[2 * i]) | (u64::from(w[2 * i + 1]) << 32);
    }
    Fe(l)
}

#[test]
fn secp256k1_field_ops_match_the_cpu() {
    let Some(ctx) = context() else { return };
    let mut r = rng(11);
    let p_minus = |k: u64| Fe::ZERO.sub(&Fe::from_u64(k)).normalize();
    let mut vals = vec![
        Fe::ZERO,
        Fe::ONE,
        Fe::from_u64(2),
        p_minus(1),
        p_minus(2),
        Fe::from_u64(u64::MAX),
        Fe([u64::MAX, u64::MAX, u64::MAX, 0]),
    ];
    while vals.len() < 200 {
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        vals.push(Fe::from_bytes_wide(&b).normalize());
    }
    // Every edge value against every other, then random pairs.
    let mut a = Vec::new();
    let mut b = Vec::new();
    for x in vals.iter().take(7) {
        for y in vals.iter().take(7) {
            a.push(*x);
            b.push(*y);
        }
    }
    for (x, y) in vals.iter().zip(vals.iter().rev()) {
        a.push(*x);
        b.push(*y);
    }
    let aw: Vec<u32> = a.iter().flat_map(fe_words).collect();
    let bw: Vec<u32> = b.iter().flat_map(fe_words).collect();
    let src = shaders::secp256k1_field_test(ctx.loops());
    let out = ctx
        .run_binary_kernel(&src, "field_ops", &aw, &bw, 8, a.len() * 32)
        .expect("kernel");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let o = &out[i * 32..i * 32 + 32];
        let want = [x.add(y), x.sub(y), x.mul(y), x.mul_small(3)];
        for (k, w) in want.iter().enumerate() {
            let got = fe_from_words(&o[k * 8..k * 8 + 8]);
            // The GPU keeps values fully reduced: compare words, not just classes.
            assert_eq!(
                fe_words(&got),
                &o[k * 8..k * 8 + 8],
                "non-canonical output, op {k}"
            );
            assert_eq!(fe_words(w), fe_words(&got), "op {k} on pair {i}");
        }
    }
}

fn fq_words(f: &blstrs::Fp) -> Vec<u32> {
    let le = f.to_bytes_le();
    le.chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn bls12_381_field_ops_match_blstrs() {
    let Some(ctx) = context() else { return };
    let mut r = rng(12);
    let mut vals = vec![
        blstrs::Fp::ZERO,
        blstrs::Fp::ONE,
        -blstrs::Fp::ONE,
        -blstrs::Fp::ONE - blstrs::Fp::ONE,
        blstrs::Fp::from(u64::MAX),
    ];
    while vals.len() < 150 {
        vals.push(blstrs::Fp::random(&mut r));
    }
    let mut a = Vec::new();
    let mut b = Vec::new();
    for x in vals.iter().take(5) {
        for y in vals.iter().take(5) {
            a.push(*x);
            b.push(*y);
        }
    }
    for (x, y) in vals.iter().zip(vals.iter().rev()) {
        a.push(*x);
        b.push(*y);
    }
    let aw: Vec<u32> = a.iter().flat_map(fq_words).collect();
    let bw: Vec<u32> = b.iter().flat_map(fq_words).collect();
    let src = shaders::bls12_381_field_test(ctx.loops());
    let out = ctx
        .run_binary_kernel(&src, "field_ops", &aw, &bw, 12, a.len() * 48)
        .expect("kernel");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let o = &out[i * 48..i * 48 + 48];
        let want = [*x + y, *x - y, *x * y, x.square()];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(fq_words(w), &o[k * 12..k * 12 + 12], "op {k} on pair {i}");
        }
    }
}
