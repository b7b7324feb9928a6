//! `torus-bench calibrate`: a quick measurement of this machine written as a
//! hardware profile (`hw-profiles/*.toml`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use torus_engine::profile::{GpuProfile, KeyBufferProfile, MsmProfile, Window};
use torus_engine::{Engine, HwProfile, Params, Secp256k1, VartimeMsmOffload};

use crate::msm::{self, MsmRun};
use crate::node;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Calibrate {
    /// Profile name.
    pub name: String,
    /// Tiny sizes and batch, CPU only (for tests).
    pub quick: bool,
    /// Skip the GPU even if an adapter exists.
    pub no_gpu: bool,
    /// Seconds of engine work a batch should take.
    pub batch_seconds: f64,
}

/// The measured profile and the figures behind it.
#[derive(Debug)]
pub struct Calibration {
    /// The profile (validated).
    pub profile: HwProfile,
    /// The MSM timings.
    pub msm: MsmRun,
    /// Keys per second of the short engine run (n = 9, or 5 when quick).
    pub keys_per_s: f64,
    /// Where and when it ran.
    pub machine: Machine,
}

/// Where, when and from what a calibration ran. Recorded in the profile's `description`, so
/// that a shipped profile says which machine and which code its figures come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// The CPU model (`model name` of /proc/cpuinfo), or the architecture when unknown.
    pub cpu_model: String,
    /// The source tree's git commit (12 hex digits, `+dirty` with uncommitted changes to
    /// tracked files), or `unknown` outside a git checkout. `TORUS_BUILD_COMMIT` overrides
    /// it, for a binary copied away from its checkout.
    pub commit: String,
    /// The UTC date of the run, `YYYY-MM-DD`.
    pub date: String,
}

impl Machine {
    /// This machine, now, and the checkout this binary was built from.
    pub fn detect() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            commit: git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
            date: utc_date(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
        }
    }

    /// `on DATE at commit C, CPU (N cores)`, as the description records it.
    pub fn describe(&self) -> String {
        format!(
            "on {} at commit {}, {} ({} cores)",
            self.date, self.commit, self.cpu_model, self.cores
        )
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == "model name")
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("unknown {} CPU", std::env::consts::ARCH))
}

fn git_commit(dir: &Path) -> String {
    if let Some(c) = std::env::var("TORUS_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
    {
        return c.trim().to_string();
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+dirty")
            } else {
                c
            }
        }
        _ => "unknown".into(),
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC), by the days-to-civil conversion of the proleptic
/// Gregorian calendar.
pub fn utc_date(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The crossover size: the smallest measured size from which the GPU is faster
/// than the CPU at that size and at every larger size measured with both.
/// `None` when the GPU is not faster at the largest such size (or nothing was
/// measured on both). A single fast size below a slower one (noise) does not
/// count.
pub fn crossover(run: &MsmRun) -> Option<usize> {
    let mut both: Vec<(usize, bool)> = run
        .samples
        .iter()
        .filter(|g| g.backend == "gpu")
        .filter_map(|g| {
            run.samples
                .iter()
                .find(|c| c.backend == "cpu" && c.points == g.points)
                .map(|c| (g.points, g.seconds < c.seconds))
        })
        .collect();
    both.sort_unstable();
    both.dedup_by_key(|(n, _)| *n);
    let mut cross = None;
    for &(n, gpu_faster) in both.iter().rev() {
        if !gpu_faster {
            break;
        }
        cross = Some(n);
    }
    cross
}

/// Runs the measurements.
pub fn calibrate(cfg: &Calibrate, log: &dyn Fn(&str)) -> Result<Calibration> {
    let threads = rayon::current_num_threads();
    let machine = Machine::detect();
    log(&format!("calibrating {}", machine.describe()));
    let mut sizes: Vec<usize> = if cfg.quick {
        vec![1 << 6, 1 << 8]
    } else {
        vec![1 << 10, 1 << 12, 1 << 14, 1 << 16]
    };
    let mut gpu_adapter = None;
    let mut gpu: Option<Arc<dyn VartimeMsmOffload>> = None;
    let mut gpu_reason = None;
    let mut gpu_software = false;
    if cfg.quick || cfg.no_gpu {
        gpu_reason = Some("not measured (--quick / --no-gpu)".to_string());
    } else {
        log("opening a GPU adapter (pipeline compilation can take minutes on llvmpipe)");
        match msm::open_gpu() {
            Ok(g) => {
                let a = g.context().adapter().clone();
                log(&format!(
                    "GPU: {} ({}, {}{})",
                    a.name,
                    a.backend,
                    a.device_type,
                    if a.software { ", software" } else { "" }
                ));
                // A hardware GPU may only win above 2^16 (the shipped H100
                // profile's estimate is 2^18); a software adapter is not worth
                // the minutes that larger sizes take on it.
                if !a.software {
                    sizes.push(1 << 18);
                }
                gpu_software = a.software;
                gpu_adapter = Some(a.name);
                gpu = Some(Arc::new(g));
            }
            Err(reason) => {
                log(&format!("no GPU: {reason}; CPU only"));
                gpu_reason = Some(reason);
            }
        }
    }
    // The MSM the engine offloads is the folded verification check of an
    // n = 9 batch: measure with scalars of that width, not full-width ones.
    let bits = msm::fold_scalar_bits(&Params::torus(9).context("committee parameters")?);
    let mut run = msm::run::<Secp256k1>(&sizes, true, gpu, bits, 1, log)?;
    run.adapter = gpu_adapter.clone();
    run.adapter_software = gpu_software;
    if run.gpu_skipped.is_none() {
        run.gpu_skipped = gpu_reason.clone();
    }
    // A GPU that failed at any size (fell back to the CPU or disagreed with it)
    // is not enabled, whatever its speed elsewhere.
    let cross = if run.gpu_failures.is_empty() {
        crossover(&run)
    } else {
        None
    };

    // A short engine run: keys/s of one node's whole batch work.
    let (n, keys) = if cfg.quick { (5, 4) } else { (9, 100) };
    let params = Params::torus(n).context("committee parameters")?;
    let engine = Engine::new();
    log(&format!("engine run: n={n}, {keys} keys"));
    let inputs = node::prepare::<Secp256k1>(&engine, params, keys, &|_| {});
    let (phases, _) = node::run_node::<Secp256k1>(&engine, &inputs);
    let total: f64 = phases.values().sum();
    let keys_per_s = keys as f64 / total.max(1e-9);
    let batch_keys = ((keys_per_s * cfg.batch_seconds) as usize).clamp(100, 1_000_000);
    let batch_keys = if batch_keys >= 1000 {
        batch_keys / 100 * 100
    } else {
        batch_keys
    };
    log(&format!(
        "engine: {keys_per_s:.0} keys/s -> batch_keys {batch_keys}"
    ));

    let cpu_desc: Vec<String> = run
        .samples
        .iter()
        .map(|s| format!("{} {}={:.0}ns/pt", s.backend, s.points, s.ns_per_point()))
        .collect();
    let cpu_desc = format!("msm ({bits}-bit scalars) {}", cpu_desc.join(", "));
    let gpu_profile = match (&gpu_adapter, cross) {
        (Some(a), Some(c)) => GpuProfile {
            enabled: true,
            adapter_pattern: a.clone(),
            crossover_points: c as u64,
        },
        _ => GpuProfile::default(),
    };
    let gpu_note = match (&gpu_adapter, cross) {
        (Some(a), Some(c)) => format!("gpu {a} faster from {c} points"),
        (Some(a), None) if !run.gpu_failures.is_empty() => {
            let at: Vec<String> = run
                .gpu_failures
                .iter()
                .map(|(n, _)| n.to_string())
                .collect();
            format!("gpu {a} failed at {} points: not enabled", at.join(", "))
        }
        (Some(a), None) => format!("gpu {a} never faster than the cpu at the sizes tried"),
        (None, _) => format!(
            "gpu {}",
            gpu_reason.unwrap_or_else(|| "not available".into())
        ),
    };
    let profile = HwProfile {
        name: cfg.name.clone(),
        description: format!(
            "measured by torus-bench calibrate{} {}: {threads} threads, {keys_per_s:.0} keys/s (n={n}); {}; {gpu_note}",
            if cfg.quick { " --quick" } else { "" },
            machine.describe(),
            cpu_desc
        ),
        threads,
        batch_keys,
        msm: MsmProfile {
            cpu_window: Window::Auto,
            gpu_window: Window::Auto,
        },
        gpu: gpu_profile,
        key_buffer: KeyBufferProfile {
            low_watermark: 2 * batch_keys as u64,
            high_watermark: 10 * batch_keys as u64,
        },
    };
    profile.validate().context("calibrated profile")?;
    Ok(Calibration {
        profile,
        msm: run,
        keys_per_s,
        machine,
    })
}

/// Writes `profile` as TOML to `path` and checks it loads back unchanged.
pub fn write_profile(profile: &HwProfile, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = format!(
        "# Written by `torus-bench calibrate`. The description records the run: date (UTC),\n\
         # commit, CPU model and cores, and the measured figures behind every value.\n{}",
        profile.to_toml()?
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    let back = HwProfile::load(path).with_context(|| format!("re-loading {}", path.display()))?;
    anyhow::ensure!(
        &back == profile,
        "{} does not load back as written",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msm::Sample;

    fn run_of(rows: &[(usize, f64, f64)]) -> MsmRun {
        let mut run = MsmRun::default();
        for &(points, cpu, gpu) in rows {
            for (backend, seconds) in [("cpu", cpu), ("gpu", gpu)] {
                run.samples.push(Sample {
                    points,
                    backend,
                    seconds,
                    reps: 1,
                });
            }
        }
        run
    }

    #[test]
    fn utc_dates_follow_the_gregorian_calendar() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(86_399), "1970-01-01");
        assert_eq!(
            utc_date(951_782_400),
            "2000-02-29",
            "a leap day of a 400-year"
        );
        assert_eq!(
            utc_date(4_107_542_400),
            "2100-03-01",
            "2100 is no leap year"
        );
        assert_eq!(utc_date(1_735_689_599), "2024-12-31");
        assert_eq!(utc_date(1_735_689_600), "2025-01-01");
    }

    #[test]
    fn the_machine_is_described_with_date_commit_model_and_cores() {
        let m = Machine {
            cores: 16,
            cpu_model: "AMD EPYC 9654 96-Core Processor".into(),
            commit: "0ae5572a1b2c".into(),
            date: "2026-12-04".into(),
        };
        assert_eq!(
            m.describe(),
            "on 2026-12-04 at commit 0ae5572a1b2c, AMD EPYC 9654 96-Core Processor (16 cores)"
        );
        let here = Machine::detect();
        assert!(here.cores >= 1);
        assert!(!here.cpu_model.is_empty() && !here.commit.is_empty());
        assert_eq!(here.date.len(), 10);
    }

    #[test]
    fn crossover_is_where_the_gpu_stays_faster() {
        // Slower, slower, faster, faster: from 2^14.
        let r = run_of(&[
            (1 << 10, 1.0, 5.0),
            (1 << 12, 2.0, 5.0),
            (1 << 14, 8.0, 6.0),
            (1 << 16, 30.0, 7.0),
        ]);
        assert_eq!(crossover(&r), Some(1 << 14));
        // A fast small size below a slower one is noise, not a crossover.
        let r = run_of(&[
            (1 << 10, 1.0, 0.5),
            (1 << 12, 2.0, 5.0),
            (1 << 14, 8.0, 6.0),
        ]);
        assert_eq!(crossover(&r), Some(1 << 14));
        // Never faster at the largest size: no crossover, GPU stays off.
        let r = run_of(&[(1 << 10, 1.0, 0.5), (1 << 12, 2.0, 5.0)]);
        assert_eq!(crossover(&r), None);
        // CPU only: nothing to compare.
        let mut r = run_of(&[(1 << 10, 1.0, 0.5)]);
        r.samples.retain(|s| s.backend == "cpu");
        assert_eq!(crossover(&r), None);
    }
}
