//! secp256k1 field multiplication: latency (each product feeds the next) and
//! throughput (independent products, as in a batch) of k256's 5x52
//! `FieldElement`, the engine's 4x64 `Fe`, and the engine's 8-lane IFMA
//! backend when the CPU has it. Timing only:
//! `cargo run --release -p torus-bench --example field_mul`.
use k256::FieldElement;
use torus_engine::backend::secp256k1::field::Fe;
use torus_engine::backend::secp256k1::ifma::{Fe8Mem, Ifma};

fn per_op(n: u64, f: impl FnOnce()) -> f64 {
    let t = std::time::Instant::now();
    f();
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// Median of five runs of `f`, ns per operation.
fn median(n: u64, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..5).map(|_| per_op(n, &mut f)).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[2]
}

fn main() {
    let n = 4_000_000u64;
    let kb = FieldElement::from_u64(0x0fed_cba9_8765_4321)
        .invert()
        .unwrap();
    let mut ka = FieldElement::from_u64(0x1234_5678_9abc_def1);
    let k_lat = median(n, || {
        for _ in 0..n {
            ka = ka.mul(std::hint::black_box(&kb));
        }
    });
    let fb = Fe::from_k256(&kb);
    let mut fa = Fe::from_k256(&ka);
    let f_lat = median(n, || {
        for _ in 0..n {
            fa = fa.mul(std::hint::black_box(&fb));
        }
    });
    let s_lat = median(n, || {
        for _ in 0..n {
            fa = fa.square();
        }
    });
    // Throughput: eight independent chains, interleaved.
    let mut many: [Fe; 8] = core::array::from_fn(|i| fa.mul_small(i as u64 + 2));
    let f_thr = median(n, || {
        for _ in 0..n / 8 {
            for x in many.iter_mut() {
                *x = x.mul(std::hint::black_box(&fb));
            }
        }
    });
    let s_thr = median(n, || {
        for _ in 0..n / 8 {
            for x in many.iter_mut() {
                *x = x.square();
            }
        }
    });
    let mut kmany: [FieldElement; 8] =
        core::array::from_fn(|i| ka * FieldElement::from_u64(i as u64 + 2));
    let k_thr = median(n, || {
        for _ in 0..n / 8 {
            for x in kmany.iter_mut() {
                *x = x.mul(std::hint::black_box(&kb));
            }
        }
    });
    let inv = median(10_000, || {
        for _ in 0..10_000 {
            fa = std::hint::black_box(fa).invert();
        }
    });
    println!("latency (ns/op):    k256 mul {k_lat:.1} | Fe mul {f_lat:.1}, square {s_lat:.1}, invert {inv:.0}");
    println!("throughput (ns/op): k256 mul {k_thr:.1} | Fe mul {f_thr:.1}, square {s_thr:.1} (8 independent chains)");
    if let Some(t) = Ifma::detect() {
        let lanes = |v: &Fe| -> Fe8Mem {
            let mut m = Fe8Mem::default();
            for (i, l) in v.to_limbs52().iter().enumerate() {
                m.0[i] = [*l; 8];
            }
            m
        };
        let b8 = lanes(&fb);
        let mut a8 = [
            lanes(&fa),
            lanes(&fa.double()),
            lanes(&fa.square()),
            lanes(&fb),
        ];
        let l_lat = median(n, || {
            for _ in 0..n / 8 {
                a8[0] = t.mul(&a8[0], std::hint::black_box(&b8));
            }
        });
        let l_thr = median(n, || {
            for _ in 0..n / 32 {
                for x in a8.iter_mut() {
                    *x = t.mul(x, std::hint::black_box(&b8));
                }
            }
        });
        let l_sq = median(n, || {
            for _ in 0..n / 32 {
                for x in a8.iter_mut() {
                    *x = t.square(x);
                }
            }
        });
        println!(
            "IFMA lanes (ns per field op, 8 per instruction stream): mul latency {l_lat:.2}, mul throughput {l_thr:.2}, square throughput {l_sq:.2}"
        );
    } else {
        println!("IFMA lanes: not on this CPU");
    }
    println!(
        "(checksum {})",
        fa.is_odd().unwrap_u8() ^ kmany[0].normalize().is_odd().unwrap_u8()
    );
}
