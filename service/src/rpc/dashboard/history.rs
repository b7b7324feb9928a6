//! What `/dashboard` remembers: a reading of the node's metrics exposition every
//! [`SAMPLE_INTERVAL`], at most [`MAX_SAMPLES`] of them (one hour; the oldest goes first),
//! and what the page shows from them: the key buffer over time, and client request rates
//! and latencies over the last [`RPC_WINDOW`]. No I/O here: the RPC server takes the
//! readings and the page asks for the results.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

/// How often the RPC server reads the metrics into the history.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// Readings kept: one hour at [`SAMPLE_INTERVAL`].
pub const MAX_SAMPLES: usize = 720;
/// The span of the request rates and latencies the page shows.
pub const RPC_WINDOW: Duration = Duration::from_secs(60);

/// One sample line of an OpenMetrics text exposition: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Line<'a> {
    /// Metric name with its suffix (`_total`, `_bucket`, ...).
    pub name: &'a str,
    /// Label pairs in order (values unescaped only of `\"` and `\\`).
    pub labels: Vec<(&'a str, String)>,
    /// The value.
    pub value: f64,
}

impl Line<'_> {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The sample lines of an exposition; comments and lines that do not parse are skipped.
pub fn parse(exposition: &str) -> Vec<Line<'_>> {
    exposition.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = Vec::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key_start = 0;
        loop {
            // key="value",
            let (eq, _) = chars.by_ref().find(|(_, c)| *c == '=')?;
            let key = body.get(key_start..eq)?.trim_start_matches(',');
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '\\' => value.push(chars.next()?.1),
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.next()? {
                (i, '}') => break body.get(i + 1..)?,
                (i, ',') => key_start = i + 1,
                _ => return None,
            }
        }
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some(Line {
        name,
        labels,
        value,
    })
}

/// Client requests of one JSON-RPC method, counted since the node started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MethodCounts {
    /// Answered without an error.
    pub ok: u64,
    /// Answered with an error (refusals and rate limits included).
    pub errors: u64,
    /// The latency histogram: (upper bound in seconds, requests at most that long),
    /// ascending, `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
}

/// One reading of the metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// When (Unix time, milliseconds).
    pub t_ms: u64,
    /// Committed consensus height.
    pub height: u64,
    /// Keys with decided public keys.
    pub created: u64,
    /// Keys assigned to users.
    pub assigned: u64,
    /// Keys created and not assigned.
    pub free: u64,
    /// Requests by method.
    pub rpc: BTreeMap<String, MethodCounts>,
}

fn count(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

impl Sample {
    /// The reading of `exposition` (the node's `/metrics` text) at `t_ms`.
    pub fn read(t_ms: u64, exposition: &str) -> Sample {
        Sample::of_lines(t_ms, &parse(exposition))
    }

    /// The reading of an exposition's parsed sample lines at `t_ms`.
    pub fn of_lines(t_ms: u64, lines: &[Line<'_>]) -> Sample {
        let mut s = Sample {
            t_ms,
            ..Sample::default()
        };
        for line in lines {
            match line.name {
                "torus_height" => s.height = count(line.value),
                "torus_keys_created" => s.created = count(line.value),
                "torus_keys_assigned" => s.assigned = count(line.value),
                "torus_keys_free" => s.free = count(line.value),
                "torus_rpc_requests_total" => {
                    let (Some(method), Some(outcome)) =
                        (line.label("method"), line.label("outcome"))
                    else {
                        continue;
                    };
                    let m = s.rpc.entry(method.to_string()).or_default();
                    if outcome == "ok" {
                        m.ok += count(line.value);
                    } else {
                        m.errors += count(line.value);
                    }
                }
                "torus_rpc_latency_seconds_bucket" => {
                    let (Some(method), Some(le)) = (line.label("method"), line.label("le")) else {
                        continue;
                    };
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        match le.parse::<f64>() {
                            Ok(v) => v,
                            Err(_) => continue,
                        }
                    };
                    s.rpc
                        .entry(method.to_string())
                        .or_default()
                        .buckets
                        .push((le, count(line.value)));
                }
                _ => {}
            }
        }
        for m in s.rpc.values_mut() {
            m.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        s
    }
}

/// A point of the key buffer chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BufferPoint {
    /// Unix time, milliseconds.
    pub t_ms: u64,
    /// Consensus height.
    pub height: u64,
    /// Keys created.
    pub created: u64,
    /// Keys assigned.
    pub assigned: u64,
    /// Keys free.
    pub free: u64,
}

/// Requests of one method over the window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MethodRates {
    /// JSON-RPC method.
    pub method: String,
    /// Requests per second (all outcomes).
    pub per_s: f64,
    /// Errors per second.
    pub errors_per_s: f64,
    /// Median latency, milliseconds (`None`: no request in the window).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: Option<f64>,
    /// Requests since the node started.
    pub total: u64,
}

/// The readings, oldest first, at most [`MAX_SAMPLES`].
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// Adds a reading; the oldest goes when [`MAX_SAMPLES`] are kept. A reading older
    /// than the newest (a clock step back) replaces nothing and is dropped.
    pub fn push(&mut self, s: Sample) {
        if self.samples.back().is_some_and(|b| s.t_ms < b.t_ms) {
            return;
        }
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    /// Readings kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether nothing was read yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The key buffer over time, oldest first, with `now` (a fresh reading) last.
    pub fn buffer(&self, now: &Sample) -> Vec<BufferPoint> {
        self.samples
            .iter()
            .chain(std::iter::once(now))
            .filter(|s| s.t_ms <= now.t_ms)
            .map(|s| BufferPoint {
                t_ms: s.t_ms,
                height: s.height,
                created: s.created,
                assigned: s.assigned,
                free: s.free,
            })
            .collect()
    }

    /// Request rates and latencies of every method between `now` and the oldest reading
    /// at most `window` before it (all of them when the history is shorter). Without an
    /// earlier reading the rates are zero and the latencies those since the start.
    pub fn rates(&self, now: &Sample, window: Duration) -> Vec<MethodRates> {
        let from = now.t_ms.saturating_sub(window.as_millis() as u64);
        let base = self
            .samples
            .iter()
            .find(|s| s.t_ms >= from && s.t_ms < now.t_ms);
        let secs = base.map_or(0.0, |b| (now.t_ms - b.t_ms) as f64 / 1000.0);
        now.rpc
            .iter()
            .map(|(method, m)| {
                let before = base.and_then(|b| b.rpc.get(method));
                let (ok0, err0) = before.map_or((0, 0), |b| (b.ok, b.errors));
                let per = |d: u64| if secs > 0.0 { d as f64 / secs } else { 0.0 };
                let delta = bucket_delta(&m.buckets, before.map(|b| b.buckets.as_slice()));
                MethodRates {
                    method: method.clone(),
                    per_s: per((m.ok + m.errors).saturating_sub(ok0 + err0)),
                    errors_per_s: per(m.errors.saturating_sub(err0)),
                    p50_ms: quantile(&delta, 0.5).map(|s| s * 1000.0),
                    p99_ms: quantile(&delta, 0.99).map(|s| s * 1000.0),
                    total: m.ok + m.errors,
                }
            })
            .collect()
    }
}

/// `now - before`, bucket by bucket (same bounds; a bucket missing before counts 0).
fn bucket_delta(now: &[(f64, u64)], before: Option<&[(f64, u64)]>) -> Vec<(f64, u64)> {
    now.iter()
        .map(|&(le, n)| {
            let b = before
                .and_then(|b| b.iter().find(|(l, _)| *l == le))
                .map_or(0, |(_, c)| *c);
            (le, n.saturating_sub(b))
        })
        .collect()
}

/// The `q` quantile of a cumulative histogram, interpolated linearly inside its bucket
/// (as Prometheus' `histogram_quantile`); in the `+Inf` bucket, the largest finite bound.
/// `None` without observations.
pub fn quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(le, n) in buckets {
        if n as f64 >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let inside = (n - lower.1) as f64;
            let frac = if inside > 0.0 {
                (rank - lower.1 as f64) / inside
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * frac);
        }
        lower = (le, n);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(created: u64, free: u64, ok: u64, err: u64, fast: u64, slow: u64) -> String {
        format!(
            "# HELP torus_keys_created Keys.\n# TYPE torus_keys_created gauge\n\
             torus_keys_created {created}\ntorus_keys_free {free}\n\
             torus_keys_assigned {}\ntorus_height 42\n\
             torus_rpc_requests_total{{method=\"ShareRequest\",outcome=\"ok\"}} {ok}\n\
             torus_rpc_requests_total{{method=\"ShareRequest\",outcome=\"-32602\"}} {err}\n\
             torus_rpc_latency_seconds_bucket{{le=\"0.001\",method=\"ShareRequest\"}} {fast}\n\
             torus_rpc_latency_seconds_bucket{{method=\"ShareRequest\",le=\"0.002\"}} {fast}\n\
             torus_rpc_latency_seconds_bucket{{method=\"ShareRequest\",le=\"0.004\"}} {}\n\
             torus_rpc_latency_seconds_bucket{{method=\"ShareRequest\",le=\"+Inf\"}} {}\n\
             # EOF\n",
            created - free,
            fast + slow,
            fast + slow,
        )
    }

    #[test]
    fn sample_lines_parse_with_labels_escapes_and_values() {
        let lines =
            parse("# HELP a b\na_total{x=\"1\",y=\"q\\\"uo\\\\te\"} 3\nb 2.5\nbroken{x=1} 2\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].name, "a_total");
        assert_eq!(lines[0].label("y"), Some("q\"uo\\te"));
        assert_eq!(lines[0].value, 3.0);
        assert_eq!((lines[1].name, lines[1].value), ("b", 2.5));
        assert!(parse("x{y=\"unterminated} 1\nz{").is_empty());
    }

    #[test]
    fn a_reading_takes_the_buffer_and_requests_from_the_exposition() {
        let s = Sample::read(1_000, &exposition(100, 60, 8, 2, 9, 1));
        assert_eq!((s.height, s.created, s.assigned, s.free), (42, 100, 40, 60));
        let m = &s.rpc["ShareRequest"];
        assert_eq!((m.ok, m.errors), (8, 2));
        assert_eq!(
            m.buckets,
            vec![(0.001, 9), (0.002, 9), (0.004, 10), (f64::INFINITY, 10)]
        );
    }

    #[test]
    fn the_history_keeps_the_last_hour_and_ignores_readings_from_the_past() {
        let mut h = History::default();
        for i in 0..(MAX_SAMPLES as u64 + 10) {
            h.push(Sample {
                t_ms: i * 5_000,
                created: i,
                ..Sample::default()
            });
        }
        assert_eq!(h.len(), MAX_SAMPLES);
        h.push(Sample {
            t_ms: 1,
            ..Sample::default()
        });
        assert_eq!(h.len(), MAX_SAMPLES);
        let now = Sample {
            t_ms: (MAX_SAMPLES as u64 + 10) * 5_000,
            created: 999,
            ..Sample::default()
        };
        let b = h.buffer(&now);
        assert_eq!(b.len(), MAX_SAMPLES + 1);
        assert_eq!(b[0].created, 10);
        assert_eq!(b.last().map(|p| p.created), Some(999));
    }

    #[test]
    fn rates_and_latencies_cover_only_the_window() {
        let mut h = History::default();
        // Long ago: 1,000 slow requests, outside the window.
        h.push(Sample::read(0, &exposition(10, 10, 0, 0, 0, 1_000)));
        h.push(Sample::read(100_000, &exposition(10, 10, 0, 0, 0, 1_000)));
        // In the last 10 s: 100 fast requests, 10 of them errors.
        let now = Sample::read(110_000, &exposition(10, 10, 90, 10, 100, 1_000));
        let r = h.rates(&now, RPC_WINDOW);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].method, "ShareRequest");
        assert!((r[0].per_s - 10.0).abs() < 1e-9, "{r:?}");
        assert!((r[0].errors_per_s - 1.0).abs() < 1e-9, "{r:?}");
        assert_eq!(r[0].total, 100);
        // All 100 in the first bucket (at most 1 ms): interpolated inside it.
        let p50 = r[0].p50_ms.unwrap_or_default();
        let p99 = r[0].p99_ms.unwrap_or_default();
        assert!(
            (p50 - 0.5).abs() < 1e-9 && (p99 - 0.99).abs() < 1e-9,
            "{r:?}"
        );
    }

    #[test]
    fn without_an_earlier_reading_rates_are_zero_and_latencies_since_the_start() {
        let now = Sample::read(5_000, &exposition(1, 1, 1, 0, 0, 1));
        let r = History::default().rates(&now, RPC_WINDOW);
        assert_eq!(r[0].per_s, 0.0);
        // The one request was slower than 2 ms and at most 4 ms.
        let p = r[0].p50_ms.unwrap_or_default();
        assert!(p > 2.0 && p <= 4.0, "{r:?}");
    }

    #[test]
    fn quantiles_follow_prometheus_and_stop_at_the_largest_finite_bound() {
        let b = [(0.1, 50), (0.2, 100), (f64::INFINITY, 100)];
        assert_eq!(quantile(&b, 0.5), Some(0.1));
        assert!((quantile(&b, 0.75).unwrap_or_default() - 0.15).abs() < 1e-12);
        let slow = [(0.1, 0), (f64::INFINITY, 10)];
        assert_eq!(quantile(&slow, 0.99), Some(0.1));
        assert_eq!(quantile(&[(0.1, 0), (f64::INFINITY, 0)], 0.5), None);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
