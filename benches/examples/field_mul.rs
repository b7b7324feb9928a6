//! Latency of secp256k1 field multiplication: k256's 5x52 `FieldElement` vs the
//! engine's 4x64 `Fe` (timing only; `cargo run --release -p torus-bench --example field_mul`).
use k256::FieldElement;
use torus_engine::backend::secp256k1::field::Fe;

fn per_op(n: u64, f: impl FnOnce()) -> f64 {
    let t = std::time::Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn main() {
    let n = 20_000_000u64;
    let kb = FieldElement::from_u64(0x0fed_cba9_8765_4321)
        .invert()
        .unwrap();
    let mut ka = FieldElement::from_u64(0x1234_5678_9abc_def1);
    let k = per_op(n, || {
        for _ in 0..n {
            ka = ka.mul(std::hint::black_box(&kb));
        }
    });
    let fb = Fe::from_k256(&kb);
    let mut fa = Fe::from_k256(&ka);
    let f = per_op(n, || {
        for _ in 0..n {
            fa = fa.mul(std::hint::black_box(&fb));
        }
    });
    let s = per_op(n, || {
        for _ in 0..n {
            fa = fa.square();
        }
    });
    let inv = per_op(10_000, || {
        for _ in 0..10_000 {
            fa = std::hint::black_box(fa).invert();
        }
    });
    println!(
        "k256 mul {k:.1} ns | Fe mul {f:.1} ns, square {s:.1} ns, invert {inv:.0} ns ({})",
        fa.is_odd().unwrap_u8()
    );
}
