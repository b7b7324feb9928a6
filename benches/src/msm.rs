//! `torus-bench msm`: `Engine::vartime_msm` at a range of sizes on the CPU
//! backend and (when an adapter is available) on the GPU backend of
//! `torus-kernels`, with a JSON record and a PNG line plot.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use torus_engine::{Engine, Params, Suite, VartimeMsmOffload};
use torus_kernels::{GpuMsm, GpuOptions};

use crate::baselines::{median_secs, random_points, random_scalars};

/// Largest size accepted (2^26 points).
pub const MAX_POINTS: usize = 1 << 26;

/// Parses `2^a..2^b` (every power of two in the range), `2^a`, plain integers,
/// or a comma list of those. Sorted, deduplicated.
pub fn parse_sizes(spec: &str) -> Result<Vec<usize>> {
    fn one(s: &str) -> Result<usize> {
        let s = s.trim();
        let n = if let Some(e) = s.strip_prefix("2^") {
            let e: u32 = e
                .parse()
                .with_context(|| format!("bad exponent in {s:?}"))?;
            if e > 26 {
                bail!("{s} is above 2^26");
            }
            1usize << e
        } else {
            s.parse()
                .with_context(|| format!("bad size {s:?} (use 2^a..2^b, 2^a or a number)"))?
        };
        if n == 0 || n > MAX_POINTS {
            bail!("size {n} out of range 1..=2^26");
        }
        Ok(n)
    }
    let mut out = Vec::new();
    for item in spec.split(',').filter(|s| !s.trim().is_empty()) {
        if let Some((a, b)) = item.split_once("..") {
            let (a, b) = (one(a)?, one(b)?);
            if !a.is_power_of_two() || !b.is_power_of_two() || a > b {
                bail!("range {item:?} must be 2^a..2^b with a <= b");
            }
            let mut n = a;
            while n <= b {
                out.push(n);
                n <<= 1;
            }
        } else {
            out.push(one(item)?);
        }
    }
    if out.is_empty() {
        bail!("no sizes in {spec:?}");
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Parses `cpu`, `gpu` or `cpu,gpu`: `(cpu, gpu)`.
pub fn parse_backends(spec: &str) -> Result<(bool, bool)> {
    let (mut cpu, mut gpu) = (false, false);
    for b in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match b.to_ascii_lowercase().as_str() {
            "cpu" => cpu = true,
            "gpu" => gpu = true,
            other => bail!("unknown backend {other:?} (cpu, gpu)"),
        }
    }
    if !cpu && !gpu {
        bail!("no backend in {spec:?}");
    }
    Ok((cpu, gpu))
}

/// Opens the GPU MSM on any adapter (software ones included, hardware preferred).
pub fn open_gpu() -> std::result::Result<GpuMsm, String> {
    let adapters = torus_kernels::GpuContext::adapters();
    if adapters.is_empty() {
        return Err("no wgpu adapter found".into());
    }
    GpuMsm::with_options(&GpuOptions::any()).map_err(|e| e.to_string())
}

/// Bit length of the folded verification MSM's scalars for `params`: a 128-bit
/// weight times a combination of up to k powers of node indexes below n, i.e.
/// about `128 + (k-1)*log2(n)` bits (what the engine really sends to the MSM).
pub fn fold_scalar_bits(params: &Params) -> u32 {
    128 + ((params.k - 1) as f64 * f64::from(params.n).log2()).ceil() as u32 + 1
}

/// The PNG written next to a JSON record when `--plot` is not given
/// (`out.json` -> `out.png`).
pub fn default_plot_path(json: &Path) -> std::path::PathBuf {
    json.with_extension("png")
}

/// An engine that sends every MSM of `crossover` points or more to `gpu`.
pub fn gpu_engine(gpu: Arc<dyn VartimeMsmOffload>, crossover: usize) -> Engine {
    Engine::new().with_offload(gpu, crossover)
}

/// Repetitions for a size: more for small sizes, at least `min_reps`.
pub fn reps_for(n: usize, min_reps: usize) -> usize {
    ((1usize << 16) / n.max(1)).clamp(min_reps.max(1), 9)
}

/// Seconds of timed repetitions aimed for per size and backend: `reps` is cut
/// down (to one at least) when one run already takes a large part of it, so a
/// slow adapter (llvmpipe) does not stretch the run to hours.
pub const REPS_BUDGET_S: f64 = 20.0;

/// `reps`, reduced so that `reps * one_run_s` stays near [`REPS_BUDGET_S`].
pub fn reps_within_budget(reps: usize, one_run_s: f64) -> usize {
    if one_run_s <= 0.0 || !one_run_s.is_finite() {
        return reps.max(1);
    }
    let fit = (REPS_BUDGET_S / one_run_s).floor();
    if fit < 1.0 {
        1
    } else {
        reps.max(1).min(fit as usize)
    }
}

/// One measured point.
#[derive(Clone, Debug)]
pub struct Sample {
    /// MSM size in points.
    pub points: usize,
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    /// Median seconds per MSM.
    pub seconds: f64,
    /// Repetitions the median is over.
    pub reps: usize,
}

impl Sample {
    /// Nanoseconds per point.
    pub fn ns_per_point(&self) -> f64 {
        self.seconds * 1e9 / self.points as f64
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct MsmRun {
    /// Every sample, by size then backend.
    pub samples: Vec<Sample>,
    /// The GPU adapter used, if any.
    pub adapter: Option<String>,
    /// Why the GPU was not used, when it was asked for.
    pub gpu_skipped: Option<String>,
    /// GPU results compared with the CPU's and found equal (one per size).
    pub gpu_checked: usize,
    /// Sizes where the GPU failed (fell back to the CPU, or differed), and why.
    /// Those sizes have no gpu sample.
    pub gpu_failures: Vec<(usize, String)>,
    /// Seconds spent opening the GPU (adapter, device, pipeline compilation).
    pub gpu_setup_s: Option<f64>,
    /// Whether the adapter is a software (CPU) implementation such as llvmpipe:
    /// its timings check correctness only and say nothing about GPU speed.
    pub adapter_software: bool,
    /// Bit length of the random scalars.
    pub scalar_bits: u32,
}

/// Times `Engine::vartime_msm` on suite `S` at `sizes` with random `bits`-bit
/// scalars (256: full width); `gpu` is used only for suites the offload
/// supports (secp256k1), and when it is not used the CPU is measured even if
/// `cpu` is false. Every GPU result is compared with the CPU's; a difference or
/// a fallback to the CPU is recorded in [`MsmRun::gpu_failures`] (with the
/// device's reason) and the run goes on with the next size.
pub fn run<S: Suite>(
    sizes: &[usize],
    cpu: bool,
    gpu: Option<Arc<dyn VartimeMsmOffload>>,
    bits: u32,
    min_reps: usize,
    log: &dyn Fn(&str),
) -> Result<MsmRun> {
    let mut out = MsmRun {
        scalar_bits: bits.clamp(1, 256),
        ..MsmRun::default()
    };
    let cpu_engine = Engine::new();
    let gpu_eng = match gpu {
        Some(g) if S::OFFLOAD_MSM => Some((gpu_engine(g.clone(), 1), g)),
        Some(_) => {
            out.gpu_skipped = Some(format!("the GPU MSM does not support {}", S::NAME));
            None
        }
        None => None,
    };
    let cpu = cpu || gpu_eng.is_none();
    let max = *sizes.iter().max().context("no sizes")?;
    log(&format!(
        "generating {max} random points and {}-bit scalars",
        out.scalar_bits
    ));
    let points = random_points::<S>(max);
    let scalars = random_scalars::<S>(max, out.scalar_bits);
    for &n in sizes {
        let (p, s) = (&points[..n], &scalars[..n]);
        let reps = reps_for(n, min_reps);
        // Warm-up and the reference every GPU result must equal.
        let (want, cpu_once) = crate::timed(|| cpu_engine.vartime_msm::<S>(p, s));
        let want = want?;
        if cpu {
            let reps = reps_within_budget(reps, cpu_once);
            let seconds = median_secs(reps, || {
                std::hint::black_box(cpu_engine.vartime_msm::<S>(p, s).expect("lengths match"));
            });
            let smp = Sample {
                points: n,
                backend: "cpu",
                seconds,
                reps,
            };
            log(&format!(
                "n={n:>8} cpu {:>10.1} ns/point",
                smp.ns_per_point()
            ));
            out.samples.push(smp);
        }
        if let Some((ge, g)) = &gpu_eng {
            // Through the engine, as the node uses it; a fallback to the CPU is
            // a failure here, and its reason is asked of the device directly.
            let failed = |what: &str| -> String {
                let reason = match S::vartime_msm_offload(g.as_ref(), p, s) {
                    Some(Err(e)) => e,
                    Some(Ok(_)) => "failed once, then succeeded when retried".into(),
                    None => "no offload path for this curve".into(),
                };
                format!("{what}: {reason}")
            };
            let before = ge.offload_fallbacks();
            let (got, gpu_once) = crate::timed(|| ge.vartime_msm::<S>(p, s));
            let got = got?;
            if ge.offload_fallbacks() != before {
                let why = failed("fell back to the CPU");
                log(&format!("n={n:>8} gpu FAILED: {why}"));
                out.gpu_failures.push((n, why));
                continue;
            }
            if got != want {
                let why = "result differs from the CPU's".to_string();
                log(&format!("n={n:>8} gpu FAILED: {why}"));
                out.gpu_failures.push((n, why));
                continue;
            }
            out.gpu_checked += 1;
            let reps = reps_within_budget(reps, gpu_once);
            let seconds = median_secs(reps, || {
                std::hint::black_box(ge.vartime_msm::<S>(p, s).expect("lengths match"));
            });
            if ge.offload_fallbacks() != before {
                let why = failed("fell back to the CPU while timing");
                log(&format!("n={n:>8} gpu FAILED: {why}"));
                out.gpu_failures.push((n, why));
                continue;
            }
            let smp = Sample {
                points: n,
                backend: "gpu",
                seconds,
                reps,
            };
            log(&format!(
                "n={n:>8} gpu {:>10.1} ns/point (matches cpu)",
                smp.ns_per_point()
            ));
            out.samples.push(smp);
        }
    }
    Ok(out)
}

/// The run as JSON.
pub fn to_json(curve: &str, run: &MsmRun) -> Value {
    let rows: Vec<Value> = run
        .samples
        .iter()
        .map(|s| {
            json!({
                "points": s.points,
                "log2_points": (s.points as f64).log2(),
                "backend": s.backend,
                "seconds": s.seconds,
                "ns_per_point": s.ns_per_point(),
                "reps": s.reps,
            })
        })
        .collect();
    json!({
        "curve": curve,
        "scalar_bits": run.scalar_bits,
        "threads": rayon::current_num_threads(),
        "adapter": run.adapter,
        "adapter_software": run.adapter_software,
        "note": if run.adapter_software {
            "software adapter (a CPU rasterizer): the gpu rows check correctness and say nothing about GPU speed"
        } else {
            ""
        },
        "gpu_setup_s": run.gpu_setup_s,
        "gpu_skipped": run.gpu_skipped,
        "gpu_results_checked_equal_to_cpu": run.gpu_checked,
        "gpu_failures": run
            .gpu_failures
            .iter()
            .map(|(n, why)| json!({"points": n, "reason": why}))
            .collect::<Vec<_>>(),
        "results": rows,
    })
}

/// Loads a DejaVu TTF for plot labels, if installed; `false` when none is.
pub(crate) fn register_font() -> bool {
    const DIR: &str = "/usr/share/fonts/truetype/dejavu/";
    for f in [
        "DejaVuSans.ttf",
        "DejaVuSansCondensed.ttf",
        "DejaVuSansMono.ttf",
    ] {
        if let Ok(bytes) = std::fs::read(Path::new(DIR).join(f)) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .is_ok()
            {
                return true;
            }
        }
    }
    false
}

/// Draws ns/point (log scale) against log2(points), one line per backend.
/// Without a font the chart is drawn without labels.
pub fn plot(path: &Path, title: &str, run: &MsmRun) -> Result<()> {
    use plotters::prelude::*;
    if run.samples.is_empty() {
        bail!("nothing to plot");
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let labels = register_font();
    if !labels {
        eprintln!(
            "  [plot] no DejaVu font in /usr/share/fonts/truetype/dejavu/; drawing without labels"
        );
    }
    // x is log2(points), so that the ticks fall on the measured powers of two.
    let xs = run
        .samples
        .iter()
        .map(|s| s.points)
        .chain(run.gpu_failures.iter().map(|(n, _)| *n))
        .map(|n| (n as f64).log2());
    let ys = run.samples.iter().map(Sample::ns_per_point);
    let (xmin, xmax) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (ymin, ymax) = ys.fold((f64::MAX, 0f64), |(a, b), y| (a.min(y), b.max(y)));
    let (xmin, xmax) = (xmin.floor() - 0.5, xmax.ceil() + 0.5);
    let (ymin, ymax) = ((ymin / 2.0).max(1e-3), ymax * 2.0);
    let ticks = (xmax - xmin).round() as usize + 1;
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut b = ChartBuilder::on(&root);
        b.margin(20);
        if labels {
            b.caption(title, ("sans-serif", 20))
                .x_label_area_size(45)
                .y_label_area_size(80);
        }
        let mut chart = b.build_cartesian_2d(xmin..xmax, (ymin..ymax).log_scale())?;
        if labels {
            chart
                .configure_mesh()
                .x_desc("MSM size (points)")
                .y_desc("ns per point (log scale)")
                .x_labels(ticks)
                .x_label_formatter(&|x| {
                    if (x - x.round()).abs() < 1e-6 {
                        format!("2^{}", x.round())
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| {
                    if *y >= 100.0 {
                        format!("{y:.0}")
                    } else {
                        format!("{y:.1}")
                    }
                })
                .label_style(("sans-serif", 14))
                .draw()?;
        }
        // All measured sizes, in order: a line is broken where a backend has no
        // sample (a GPU failure), so that it never bridges a size it did not pass.
        let mut all: Vec<usize> = run.samples.iter().map(|s| s.points).collect();
        all.extend(run.gpu_failures.iter().map(|(n, _)| *n));
        all.sort_unstable();
        all.dedup();
        for (backend, color) in [("cpu", BLUE), ("gpu", RED)] {
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for &n in &all {
                match run
                    .samples
                    .iter()
                    .find(|s| s.backend == backend && s.points == n)
                {
                    Some(s) => {
                        if let Some(r) = runs.last_mut() {
                            r.push(((n as f64).log2(), s.ns_per_point()));
                        }
                    }
                    None => runs.push(Vec::new()),
                }
            }
            runs.retain(|r| !r.is_empty());
            for (i, pts) in runs.iter().enumerate() {
                let series =
                    chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
                if labels && i == 0 {
                    series
                        .label(backend)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                }
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
            }
        }
        if !run.gpu_failures.is_empty() {
            let y = ymax / 1.4;
            let series = chart.draw_series(
                run.gpu_failures
                    .iter()
                    .map(|(n, _)| Cross::new(((*n as f64).log2(), y), 7, RED.stroke_width(3))),
            )?;
            if labels {
                series
                    .label("gpu failed (reason in the JSON; cpu result used)")
                    .legend(|(x, y)| Cross::new((x + 10, y), 5, RED.stroke_width(2)));
            }
        }
        if labels {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
        }
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_sizes("2^2..2^4").unwrap(), vec![4, 8, 16]);
        assert_eq!(parse_sizes("2^3,100, 2^1").unwrap(), vec![2, 8, 100]);
        assert_eq!(parse_sizes("2^1..2^2,2^5").unwrap(), vec![2, 4, 32]);
        assert!(parse_sizes("2^4..2^2").is_err());
        assert!(parse_sizes("0").is_err());
        assert!(parse_sizes("2^30").is_err());
        assert!(parse_sizes("").is_err());
        assert_eq!(parse_backends("cpu,gpu").unwrap(), (true, true));
        assert_eq!(parse_backends("gpu").unwrap(), (false, true));
        assert!(parse_backends("tpu").is_err());
    }

    #[test]
    fn repetitions_stay_within_the_budget() {
        assert_eq!(reps_for(1 << 10, 3), 9);
        assert_eq!(reps_for(1 << 20, 3), 3);
        assert_eq!(reps_within_budget(9, 0.01), 9);
        assert_eq!(reps_within_budget(9, REPS_BUDGET_S / 4.0), 4);
        assert_eq!(reps_within_budget(9, REPS_BUDGET_S * 3.0), 1);
        assert_eq!(reps_within_budget(0, f64::NAN), 1);
    }

    #[test]
    fn plot_draws_gaps_and_failures() {
        let mut run = MsmRun {
            adapter: Some("llvmpipe (LLVM 15.0.6, 256 bits)".into()),
            adapter_software: true,
            scalar_bits: 256,
            ..MsmRun::default()
        };
        for (n, cpu, gpu) in [
            (1 << 10, 5e-3, Some(0.2)),
            (1 << 11, 9e-3, None),
            (1 << 12, 15e-3, Some(0.5)),
        ] {
            run.samples.push(Sample {
                points: n,
                backend: "cpu",
                seconds: cpu,
                reps: 1,
            });
            match gpu {
                Some(g) => run.samples.push(Sample {
                    points: n,
                    backend: "gpu",
                    seconds: g,
                    reps: 1,
                }),
                None => run
                    .gpu_failures
                    .push((n, "GPU returned a point off the curve".into())),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        plot(&path, "test", &run).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let v = to_json("secp256k1", &run);
        assert_eq!(v["gpu_failures"][0]["points"], 2048);
        assert!(v["note"].as_str().unwrap().contains("correctness"));
        assert!(plot(&path, "empty", &MsmRun::default()).is_err());
    }

    #[test]
    fn fold_width_and_plot_path() {
        // n = 9, k = 5: 128 + ceil(4 * log2 9) + 1 = 142 bits, as RESULTS.md uses.
        assert_eq!(fold_scalar_bits(&Params::torus(9).unwrap()), 142);
        assert_eq!(
            default_plot_path(Path::new("benches/results/msm.json")),
            Path::new("benches/results/msm.png")
        );
    }
}
