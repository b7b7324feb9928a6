//! Hardware profiles: what a machine is told to do (threads, batch size, MSM
//! windows, GPU use and its crossover size, key-buffer watermarks).
//!
//! Profiles are TOML files (schema in `hw-profiles/README.md`); they are read by the
//! node and by `torus-bench`, and written by `torus-bench calibrate`. Unknown fields
//! and out-of-range values are rejected with an error naming the field, so a typo
//! never silently falls back to a default.
//!
//! ```toml
//! name = "cpu-2core"
//! threads = 2
//! batch_keys = 2000
//!
//! [msm]
//! cpu_window = "auto"
//! gpu_window = "auto"
//!
//! [gpu]
//! enabled = false
//! adapter_pattern = ""
//! crossover_points = 262144
//!
//! [key_buffer]
//! low_watermark = 20000
//! high_watermark = 100000
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Largest accepted thread count (a sanity bound, not a hardware limit).
pub const MAX_THREADS: usize = 4096;
/// Largest accepted batch size K.
pub const MAX_BATCH_KEYS: usize = 10_000_000;

/// Why a profile could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("reading hardware profile {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown field, a missing field or a wrong type.
    #[error("parsing hardware profile {path}: {message}")]
    Parse {
        /// The file (empty for in-memory input).
        path: PathBuf,
        /// The parser's message (names the field and line).
        message: String,
    },
    /// A field outside its allowed range.
    #[error("hardware profile {path}: {field} = {value} is out of range ({allowed})")]
    Range {
        /// The file (empty for in-memory input).
        path: PathBuf,
        /// Dotted field name, e.g. `gpu.crossover_points`.
        field: &'static str,
        /// The value found.
        value: String,
        /// The allowed range, in words.
        allowed: &'static str,
    },
    /// The profile could not be encoded (writing a calibrated profile).
    #[error("encoding hardware profile: {0}")]
    Encode(String),
}

/// MSM window width: chosen by the cost model (`"auto"`) or fixed (2..=16 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    /// Chosen per MSM from the number of points and the scalar length.
    #[default]
    Auto,
    /// A fixed window width in bits.
    Bits(u8),
}

impl Window {
    /// The fixed width, if any.
    pub fn bits(self) -> Option<usize> {
        match self {
            Window::Auto => None,
            Window::Bits(b) => Some(usize::from(b)),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Auto => f.write_str("auto"),
            Window::Bits(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Window::Auto => s.serialize_str("auto"),
            Window::Bits(b) => s.serialize_u8(*b),
        }
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Num(i64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(t) if t == "auto" => Ok(Window::Auto),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "window must be \"auto\" or an integer in 2..=16, got {t:?}"
            ))),
            Raw::Num(n) => u8::try_from(n)
                .ok()
                .filter(|b| (2..=16).contains(b))
                .map(Window::Bits)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("window must be in 2..=16, got {n}"))
                }),
        }
    }
}

/// MSM tuning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsmProfile {
    /// Window of the CPU Pippenger (`"auto"`: the engine's cost model).
    #[serde(default)]
    pub cpu_window: Window,
    /// Window of the GPU Pippenger (`"auto"`: chosen by the kernel host code).
    #[serde(default)]
    pub gpu_window: Window,
}

/// GPU use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuProfile {
    /// Whether to look for an adapter at all.
    pub enabled: bool,
    /// Case-insensitive substring the adapter name must contain (empty: any adapter,
    /// software adapters such as llvmpipe included only when named here).
    #[serde(default)]
    pub adapter_pattern: String,
    /// Smallest MSM (in points) sent to the GPU; smaller ones stay on the CPU.
    pub crossover_points: u64,
}

impl Default for GpuProfile {
    fn default() -> Self {
        GpuProfile {
            enabled: false,
            adapter_pattern: String::new(),
            crossover_points: 1 << 18,
        }
    }
}

/// Key-buffer watermarks (pre-generated keys held by the node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBufferProfile {
    /// Start generating a new batch when fewer keys than this are buffered.
    pub low_watermark: u64,
    /// Stop generating when this many keys are buffered.
    pub high_watermark: u64,
}

impl Default for KeyBufferProfile {
    fn default() -> Self {
        KeyBufferProfile {
            low_watermark: 20_000,
            high_watermark: 100_000,
        }
    }
}

/// A hardware profile. See the module documentation for the TOML form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HwProfile {
    /// Profile name (for logs).
    pub name: String,
    /// Free-form description (where the figures come from).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Worker threads for the engine (0: all available cores; 1: the serial backend).
    pub threads: usize,
    /// Keys per batch K.
    pub batch_keys: usize,
    /// MSM tuning.
    #[serde(default)]
    pub msm: MsmProfile,
    /// GPU use.
    #[serde(default)]
    pub gpu: GpuProfile,
    /// Key-buffer watermarks.
    #[serde(default)]
    pub key_buffer: KeyBufferProfile,
}

impl Default for HwProfile {
    fn default() -> Self {
        HwProfile {
            name: "default".into(),
            description: String::new(),
            threads: 0,
            batch_keys: 2000,
            msm: MsmProfile::default(),
            gpu: GpuProfile::default(),
            key_buffer: KeyBufferProfile::default(),
        }
    }
}

impl HwProfile {
    /// Reads and validates a profile file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ProfileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_at(&text, path)
    }

    /// Parses and validates a profile from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        Self::parse_at(text, Path::new(""))
    }

    fn parse_at(text: &str, path: &Path) -> Result<Self, ProfileError> {
        let p: HwProfile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        p.validate_at(path)?;
        Ok(p)
    }

    /// Checks every range; `load` and `from_toml` call it.
    pub fn validate(&self) -> Result<(), ProfileError> {
        self.validate_at(Path::new(""))
    }

    fn validate_at(&self, path: &Path) -> Result<(), ProfileError> {
        let range = |field, value: String, allowed| ProfileError::Range {
            path: path.to_path_buf(),
            field,
            value,
            allowed,
        };
        if self.name.trim().is_empty() {
            return Err(range("name", "\"\"".into(), "a non-empty string"));
        }
        if self.threads > MAX_THREADS {
            return Err(range("threads", self.threads.to_string(), "0..=4096"));
        }
        if self.batch_keys == 0 || self.batch_keys > MAX_BATCH_KEYS {
            return Err(range(
                "batch_keys",
                self.batch_keys.to_string(),
                "1..=10000000",
            ));
        }
        if self.gpu.crossover_points == 0 {
            return Err(range("gpu.crossover_points", "0".into(), ">= 1"));
        }
        let kb = &self.key_buffer;
        if kb.high_watermark == 0 || kb.low_watermark >= kb.high_watermark {
            return Err(range(
                "key_buffer.low_watermark",
                format!(
                    "{} (high_watermark {})",
                    kb.low_watermark, kb.high_watermark
                ),
                "0 <= low_watermark < high_watermark",
            ));
        }
        Ok(())
    }

    /// The profile as TOML text (what `torus-bench calibrate` writes).
    pub fn to_toml(&self) -> Result<String, ProfileError> {
        toml::to_string_pretty(self).map_err(|e| ProfileError::Encode(e.to_string()))
    }

    /// Whether `adapter_name` matches [`GpuProfile::adapter_pattern`]
    /// (case-insensitive substring; an empty pattern matches any name).
    pub fn adapter_matches(&self, adapter_name: &str) -> bool {
        let pat = self.gpu.adapter_pattern.to_lowercase();
        pat.is_empty() || adapter_name.to_lowercase().contains(&pat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
threads = 2
batch_keys = 100
[msm]
cpu_window = "auto"
gpu_window = 12
[gpu]
enabled = true
adapter_pattern = "H100"
crossover_points = 65536
[key_buffer]
low_watermark = 10
high_watermark = 20
"#;

    #[test]
    fn parses_and_round_trips() {
        let p = HwProfile::from_toml(GOOD).unwrap();
        assert_eq!(p.msm.gpu_window, Window::Bits(12));
        assert_eq!(p.msm.cpu_window, Window::Auto);
        assert!(p.adapter_matches("NVIDIA H100 80GB HBM3"));
        assert!(!p.adapter_matches("llvmpipe (LLVM 15.0.6, 256 bits)"));
        let again = HwProfile::from_toml(&p.to_toml().unwrap()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn defaults_for_optional_sections() {
        let p = HwProfile::from_toml("name = \"x\"\nthreads = 0\nbatch_keys = 5\n").unwrap();
        assert!(!p.gpu.enabled);
        assert_eq!(p.msm.cpu_window, Window::Auto);
    }

    #[test]
    fn rejects_unknown_fields() {
        let bad = GOOD.replace("crossover_points", "crosover_points");
        let e = HwProfile::from_toml(&bad).unwrap_err();
        assert!(e.to_string().contains("crosover_points"), "{e}");
        let bad = format!("{GOOD}\n[extra]\nx = 1\n");
        assert!(HwProfile::from_toml(&bad).is_err());
    }

    #[test]
    fn rejects_out_of_range() {
        for (from, to, field) in [
            ("gpu_window = 12", "gpu_window = 17", "window"),
            ("gpu_window = 12", "gpu_window = \"big\"", "window"),
            ("batch_keys = 100", "batch_keys = 0", "batch_keys"),
            ("threads = 2", "threads = 100000", "threads"),
            (
                "crossover_points = 65536",
                "crossover_points = 0",
                "crossover",
            ),
            ("low_watermark = 10", "low_watermark = 30", "watermark"),
        ] {
            let e = HwProfile::from_toml(&GOOD.replace(from, to)).unwrap_err();
            assert!(e.to_string().contains(field), "{to}: {e}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let e = HwProfile::load("/nonexistent/profile.toml").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/profile.toml"));
    }
}
