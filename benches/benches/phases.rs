//! Criterion benches per engine phase, generic over the suite, swept over batch
//! size. `cargo bench -p torus-bench --bench phases`. For whole-node figures and
//! ratios against baselines use `torus-bench engine` instead.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use torus_bench::baselines::{random_points, random_scalars};
use torus_bench::seed;
use torus_engine::avss::{self, SendRef};
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

fn fixed_base<S: Suite>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("{}/ct_commit", S::NAME));
    for n in [256usize, 4096] {
        let f = random_scalars::<S>(n, 256);
        let fp = random_scalars::<S>(n, 256);
        g.throughput(Throughput::Elements(n as u64));
        for (name, e) in [
            ("serial", Engine::reference()),
            ("parallel", Engine::parallel()),
        ] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| e.ct_commit::<S>(&f, &fp))
            });
        }
    }
    g.finish();
}

fn msm<S: Suite>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("{}/vartime_msm", S::NAME));
    g.sample_size(10);
    for log in [10u32, 14, 16] {
        let n = 1usize << log;
        let pts = random_points::<S>(n);
        for bits in [142u32, 256] {
            let sc = random_scalars::<S>(n, bits);
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("parallel/{bits}bit"), n),
                &n,
                |b, _| b.iter(|| Engine::parallel().vartime_msm::<S>(&pts, &sc)),
            );
        }
    }
    g.finish();
}

fn verify<S: Suite>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("{}/verify_sends", S::NAME));
    g.sample_size(10);
    let p = Params::torus(9).expect("params");
    let e = Engine::new();
    for keys in [16usize, 128] {
        let dealings: Vec<_> = (1..=p.n)
            .map(|d| avss::deal::<S>(&e, p, d, keys, None, seed(3, u64::from(d))).expect("deal"))
            .collect();
        let slices: Vec<_> = dealings
            .iter()
            .map(|d| d.slice(&e, 1).expect("slice"))
            .collect();
        let sends: Vec<SendRef<'_, S>> = dealings
            .iter()
            .zip(&slices)
            .map(|(d, s)| SendRef::new(d, s))
            .collect();
        g.throughput(Throughput::Elements(keys as u64));
        g.bench_with_input(BenchmarkId::new("n9", keys), &keys, |b, _| {
            b.iter(|| avss::verify_sends(&e, &p, 1, &sends).expect("verify"))
        });
        g.bench_with_input(BenchmarkId::new("deal_n9", keys), &keys, |b, _| {
            b.iter(|| avss::deal::<S>(&e, p, 1, keys, None, seed(4, 1)).expect("deal"))
        });
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    fixed_base::<Secp256k1>(c);
    fixed_base::<Bls12381>(c);
    msm::<Secp256k1>(c);
    msm::<Bls12381>(c);
    verify::<Secp256k1>(c);
    verify::<Bls12381>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
