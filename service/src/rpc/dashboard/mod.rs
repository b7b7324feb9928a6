//! `GET /dashboard`: the operator's page of one node. It shows the epoch, the committee
//! and this node's peers, the consensus height, round and app hash, the key buffer over
//! the last hour as a chart (created, assigned, free), the recent key batches with their
//! phase durations and dealers, blamed dealers, and client request rates and latencies.
//!
//! Everything comes from what `/metrics` and `/bftStatus` serve: the page polls
//! `GET /dashboard/data`, which reads the metrics exposition and the consensus state
//! once per call, and the RPC server keeps a [`history::History`] of the exposition
//! (one reading every [`history::SAMPLE_INTERVAL`], at most an hour) for the chart and
//! the rates. The page is static (HTML, one script, one style sheet, embedded in the
//! binary), loads nothing from elsewhere and is served with a Content-Security-Policy
//! that allows only this origin. Nothing on it is secret: it is what `/metrics` and
//! `/bftStatus` already show on the same port.

pub mod history;

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::crypto::NodePub;
use crate::metrics::{COMMIT, VERSION};
use crate::node::NodeState;
use history::{History, Sample, RPC_WINDOW};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// The page's Content-Security-Policy: its own script, style and data, nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// `GET /dashboard`.
pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /dashboard/page.js`.
pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /dashboard/page.css`.
pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// Reads the metrics into `history` (the RPC server's sampler calls this every
/// [`history::SAMPLE_INTERVAL`]).
pub fn sample(node: &NodeState, history: &std::sync::Mutex<History>, now_ms: u64) {
    let s = Sample::read(now_ms, &node.metrics().encode());
    if let Ok(mut h) = history.lock() {
        h.push(s);
    }
}

/// What `GET /dashboard/data` answers: `/bftStatus`'s fields, this node, the committee,
/// consensus, the key buffer over time, the recent batches with their phase durations,
/// and request rates over the last [`RPC_WINDOW`].
pub fn data(
    node: &NodeState,
    history: &std::sync::Mutex<History>,
    now_ms: u64,
) -> Result<Value, String> {
    let status = super::status::status_json(node, None)?;
    let exposition = node.metrics().encode();
    let lines = history::parse(&exposition);
    let now = Sample::of_lines(now_ms, &lines);
    let round = lines
        .iter()
        .find(|l| l.name == "malachitebft_core_consensus_round")
        .map(|l| l.value);
    let (buffer, rpc) = match history.lock() {
        Ok(h) => (h.buffer(&now), h.rates(&now, RPC_WINDOW)),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let epoch = node.epoch().map_err(|e| e.to_string())?;
    let me = node.index().ok();
    let blamed: Vec<u64> = status["blamed"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let committee: Vec<Value> = epoch
        .nodes
        .iter()
        .map(|n| {
            json!({
                "index": n.index,
                "address": NodePub::from_sec1(&n.pubkey).map(|p| p.address()).ok(),
                "me": Some(n.index) == me,
                "blamed": blamed.contains(&u64::from(n.index)),
            })
        })
        .collect();
    let timings = node
        .metrics()
        .batch_timings
        .lock()
        .map(|t| {
            status["batches"]
                .as_array()
                .map(|bs| {
                    bs.iter()
                        .map(|b| {
                            let mut b = b.clone();
                            let phases = b["start"]
                                .as_u64()
                                .and_then(|s| t.get(s))
                                .map(|t| {
                                    t.phases
                                        .iter()
                                        .map(|(p, d)| json!({"phase": p, "seconds": d.seconds, "times": d.times}))
                                        .collect::<Vec<_>>()
                                })
                                .unwrap_or_default();
                            b["phases"] = Value::from(phases);
                            b
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let metrics = node.metrics();
    Ok(json!({
        "now_ms": now_ms,
        "node": {
            "index": me,
            "address": node.key().public().address(),
            "version": VERSION,
            "commit": COMMIT,
            "uptime_s": node.uptime().as_secs(),
        },
        "epoch": {
            "epoch": epoch.epoch,
            "n": epoch.n,
            "k": epoch.k,
            "t": epoch.t,
            "committee": committee,
        },
        "consensus": {
            "height": status["height"],
            "app_hash": status["app_hash"],
            "round": round,
            "last_block_s": node.last_block().elapsed().as_secs_f64(),
        },
        "peers": {
            "connected": metrics.p2p_peers.get(),
            "committee_peers": epoch.nodes.len().saturating_sub(1),
            "queued": metrics.p2p_queued.get(),
        },
        "keys": {
            "created": status["keys_created"],
            "assigned": status["keys_assigned"],
            "free": status["keys_free"],
            "opened": status["keys_opened"],
            "shares": status["shares"],
            "open_batch": status["open_batch"],
        },
        "buffer": buffer,
        "sample_interval_s": history::SAMPLE_INTERVAL.as_secs(),
        "batches": timings,
        "blamed": blamed,
        "complaints_filed": metrics.complaints_filed.get(),
        "rpc_window_s": RPC_WINDOW.as_secs(),
        "rpc": rpc,
    }))
}
