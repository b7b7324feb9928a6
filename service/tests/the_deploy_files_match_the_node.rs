//! The operations files under `service/deploy/` agree with the node: the Grafana dashboard
//! queries only series (and labels) the node's metrics registry exports (its own `torus_*`
//! families and the consensus engine's `malachitebft_*` ones), and the systemd
//! unit passes `systemd-analyze verify` and runs the node with the sample config's paths.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use regex::Regex;
use serde_json::Value;
use torus_node::metrics::{MethodLabels, Metrics, P2pLabels, PhaseLabels, RpcLabels, TxLabels};

fn deploy(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

/// The series the node exports, each with its label names, from the registry's own text
/// exposition. Every labelled family gets one sample so that its labels show.
fn exported_series() -> BTreeMap<String, BTreeSet<String>> {
    let m = Metrics::new();
    let s = String::from;
    m.rpc_requests
        .get_or_create(&RpcLabels {
            method: s("Ping"),
            outcome: s("ok"),
        })
        .inc();
    m.rpc_latency
        .get_or_create(&MethodLabels { method: s("Ping") })
        .observe(0.001);
    m.txs
        .get_or_create(&TxLabels {
            kind: s("open_batch"),
            code: s("ok"),
        })
        .inc();
    m.verify_failures
        .get_or_create(&MethodLabels {
            method: s("expired"),
        })
        .inc();
    m.rpc_rate_limited
        .get_or_create(&MethodLabels {
            method: s("CommitmentRequest"),
        })
        .inc();
    for fam in [&m.p2p_in, &m.p2p_out] {
        fam.get_or_create(&P2pLabels {
            kind: s("send"),
            outcome: s("ok"),
        })
        .inc();
    }
    m.keygen_phase
        .get_or_create(&PhaseLabels { phase: s("deal") })
        .observe(0.5);
    // The consensus engine's metrics, registered as `start_engine` registers them.
    let moniker = "the-deploy-files-test";
    malachitebft_app_channel::app::metrics::Metrics::register(
        &malachitebft_app_channel::app::metrics::SharedRegistry::global().with_moniker(moniker),
    );
    m.include_consensus(moniker);
    let text = m.encode();
    let sample = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? ").unwrap();
    let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="#).unwrap();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(c) = sample.captures(line) else {
            continue;
        };
        let labels = out.entry(c[1].to_string()).or_default();
        if let Some(l) = c.get(2) {
            labels.extend(label.captures_iter(l.as_str()).map(|x| x[1].to_string()));
        }
    }
    out
}

/// Every PromQL expression of the dashboard: panel targets and variable queries.
fn dashboard_queries() -> Vec<String> {
    let d: Value =
        serde_json::from_slice(&std::fs::read(deploy("grafana-dashboard.json")).unwrap())
            .expect("the dashboard is JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("every target has an expr");
            out.push(expr.to_string());
        }
        if p["type"] != "row" {
            assert!(
                p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "panel {} has no query",
                p["title"]
            );
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["definition"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

/// Labels Prometheus adds, or that belong to the histogram encoding.
const OUTSIDE_LABELS: [&str; 3] = ["instance", "job", "le"];

/// What is wrong with `expr` against the exported series: unknown series, and label names
/// (in `by (...)` or `{...}` matchers) that no series of the expression carries.
fn problems(expr: &str, series: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let name = Regex::new(r"\b(?:torus|malachitebft)_[a-z0-9_]+").unwrap();
    let by = Regex::new(r"\bby\s*\(([^)]*)\)").unwrap();
    let matcher = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*""#).unwrap();
    let mut out = Vec::new();
    let used: Vec<&str> = name.find_iter(expr).map(|m| m.as_str()).collect();
    if used.is_empty() {
        out.push(format!("queries no torus_ or malachitebft_ series: {expr}"));
    }
    let mut labels = BTreeSet::new();
    for u in &used {
        match series.get(*u) {
            Some(l) => labels.extend(l.iter().cloned()),
            None => out.push(format!("{u} is not exported (in {expr})")),
        }
    }
    let mut named: Vec<String> = by
        .captures_iter(expr)
        .flat_map(|c| {
            c[1].split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    named.extend(matcher.captures_iter(expr).map(|c| c[1].to_string()));
    for l in named {
        if !OUTSIDE_LABELS.contains(&l.as_str()) && !labels.contains(&l) {
            out.push(format!("label {l} is not on {used:?} (in {expr})"));
        }
    }
    out
}

#[test]
fn the_grafana_dashboard_queries_only_series_and_labels_the_node_exports() {
    let series = exported_series();
    // The registry walk is real: the histogram and counter suffixes are there.
    for must in [
        "torus_height",
        "torus_rpc_requests_total",
        "torus_rpc_latency_seconds_bucket",
        "torus_keygen_phase_seconds_count",
        "malachitebft_core_consensus_height",
        "malachitebft_core_consensus_time_per_block_bucket",
    ] {
        assert!(series.contains_key(must), "{must} missing from {series:?}");
    }
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{} queries", queries.len());
    let all: Vec<String> = queries.iter().flat_map(|q| problems(q, &series)).collect();
    assert!(
        all.is_empty(),
        "dashboard queries that do not match /metrics:\n{}",
        all.join("\n")
    );
    // Every metric family of the node's own appears somewhere on the dashboard.
    let text = queries.join("\n");
    let unshown: Vec<&String> = series
        .keys()
        .filter(|s| s.starts_with("torus_"))
        .filter(|s| {
            let family = s
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            !text.contains(family)
        })
        .collect();
    assert!(
        unshown.is_empty(),
        "metrics not on the dashboard: {unshown:?}"
    );
}

#[test]
fn a_dashboard_query_for_an_unknown_series_or_label_is_caught() {
    let series = exported_series();
    assert!(problems("rate(torus_rpc_requests_total[5m])", &series).is_empty());
    assert_eq!(
        problems("rate(torus_no_such_metric_total[5m])", &series).len(),
        1
    );
    assert_eq!(
        problems(
            "sum by (verifier) (rate(torus_rpc_requests_total[5m]))",
            &series
        )
        .len(),
        1
    );
    assert_eq!(problems(r#"torus_keys_free{kind="x"}"#, &series).len(), 1);
    assert_eq!(problems("up", &series).len(), 1, "no torus_ series at all");
}

/// `systemd-analyze` when installed; otherwise the test skips with a notice.
fn systemd_analyze() -> bool {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the systemd unit check: no systemd-analyze here (Debian: systemd)"
        );
    }
    found
}

/// `systemd-analyze verify` of `unit` (with the node binary at its install path replaced
/// by the one just built): its complaints, empty when the unit is clean. The tool exits 0
/// for many problems and only prints them, so any output counts.
fn verify(unit: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torus-node.service");
    let unit = unit.replace(
        "/usr/local/bin/torus-node",
        env!("CARGO_BIN_EXE_torus-node"),
    );
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let mut said = String::from_utf8_lossy(&out.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() && said.is_empty() {
        said = format!("systemd-analyze verify exited with {}", out.status);
    }
    said
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(deploy("torus-node.service")).unwrap();
    // It runs the node on the sample config's install path, with its data_dir as the
    // state directory, as a dedicated user, sandboxed.
    let sample = std::fs::read_to_string(deploy("node.example.toml")).unwrap();
    assert!(sample.contains("\ndata_dir = \"/var/lib/torus-node\"\n"));
    for line in [
        "ExecStart=/usr/local/bin/torus-node run --config /etc/torus-node/node.toml",
        "StateDirectory=torus-node",
        "User=torus-node",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line:?}");
    }
    if !systemd_analyze() {
        return;
    }
    let said = verify(&unit);
    assert!(said.is_empty(), "systemd-analyze verify:\n{said}");
    // The check is real: a misspelt setting is reported.
    let bad = unit.replace("ProtectSystem=strict", "ProtectSystem=strictest");
    assert!(!verify(&bad).is_empty(), "a bad value goes unnoticed");
}
