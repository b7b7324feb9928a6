//! The client JSON-RPC server (`POST /jrpc`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
//! `GET /bftStatus`, and the operator's page `GET /dashboard`, see [`dashboard`]), speaking the legacy Torus client API (spec §4, §5, §10).
//!
//! Every answer to `/jrpc` is HTTP 200 with a JSON-RPC body, errors included
//! (§10.1); the only exception is KeyAssign's authentication failure (401,
//! text/plain): a request without a valid signer signature when signer keys are
//! configured, and every KeyAssign outside dev mode when none is (issue #10, finding 6).
//!
//! CommitmentRequest, ShareRequest and KeyAssign are rate-limited per client address
//! (`limit`); a refused request gets a JSON-RPC error and counts in
//! `torus_rpc_rate_limited_total{method}`. Token records are pruned here in the
//! background, a token lifetime after they were written (`Store::prune_client_records`).

mod assign;
mod commitment;
pub mod dashboard;
pub mod http;
pub mod limit;
mod lookup;
pub mod readiness;
pub mod release;
mod share;
mod status;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use tower_http::cors::{Any, CorsLayer};

pub use assign::{KeyAssignAuth, AUTH_MAX_AGE_S};
use release::SignerTables;

use crate::config::RpcConfig;
use crate::crypto::NodePub;
use crate::jrpc::{self, RpcError};
use crate::metrics::{MethodLabels, RpcLabels};
use crate::node::NodeState;

/// Shared state of the RPC server.
#[derive(Clone)]
pub struct RpcState {
    node: Arc<NodeState>,
    auth: KeyAssignGate,
    sig_keys: Arc<SignerTables>,
    limits: Arc<RateLimits>,
    trusted_proxies: Arc<Vec<IpAddr>>,
    history: Arc<Mutex<dashboard::history::History>>,
}

/// Who may call KeyAssign.
#[derive(Clone)]
pub(crate) enum KeyAssignGate {
    /// Anyone (dev mode without signer keys).
    Open,
    /// Requests signed by a configured signer (spec §10.5).
    Signed(Arc<KeyAssignAuth>),
    /// Nobody: outside dev mode without a signer key (or with keys that do not parse).
    NoSigner,
}

impl KeyAssignGate {
    fn from_config(cfg: &RpcConfig, dev_mode: bool) -> Self {
        match cfg.key_assign_signer_keys() {
            Ok(keys) if !keys.is_empty() => {
                KeyAssignGate::Signed(Arc::new(KeyAssignAuth::new(keys)))
            }
            Ok(_) if dev_mode => KeyAssignGate::Open,
            Ok(_) => {
                tracing::warn!(
                    "no KeyAssign signer key (rpc.key_assign_signers): every KeyAssign is refused outside dev mode"
                );
                KeyAssignGate::NoSigner
            }
            Err(e) => {
                tracing::error!(error = %e, "KeyAssign signer keys do not parse: every KeyAssign is refused");
                KeyAssignGate::NoSigner
            }
        }
    }
}

/// The per-client-address rate limits of the three methods that write or cost.
pub struct RateLimits {
    commitment: Mutex<limit::RateLimiter>,
    share: Mutex<limit::RateLimiter>,
    key_assign: Mutex<limit::RateLimiter>,
}

impl RateLimits {
    /// The limits `cfg` sets.
    pub fn from_config(cfg: &RpcConfig) -> Self {
        let l = |per_s, burst| {
            Mutex::new(limit::RateLimiter::new(
                limit::Budget { per_s, burst },
                cfg.rate_limit_clients,
            ))
        };
        RateLimits {
            commitment: l(cfg.commitment_per_s, cfg.commitment_burst),
            share: l(cfg.share_per_s, cfg.share_burst),
            key_assign: l(cfg.key_assign_per_s, cfg.key_assign_burst),
        }
    }

    /// Whether `method` from `client` is within its budget at `now` (methods without a
    /// limit always are).
    pub fn allow(&self, method: &str, client: IpAddr, now: Instant) -> bool {
        let limiter = match method {
            "CommitmentRequest" => &self.commitment,
            "ShareRequest" => &self.share,
            "KeyAssign" => &self.key_assign,
            _ => return true,
        };
        limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(client, now)
    }
}

/// How often expired token records are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(5);
/// Records deleted per write transaction of a prune pass.
const PRUNE_BATCH: usize = 5_000;
/// Write transactions per prune pass at most (then the next pass continues).
const PRUNE_ROUNDS: usize = 8;

/// One prune pass: token records older than their lifetime, a bounded number.
fn prune_pass(node: &NodeState, now_s: u64, lifetime_s: u64) {
    for _ in 0..PRUNE_ROUNDS {
        match node
            .store()
            .prune_client_records(now_s, lifetime_s, PRUNE_BATCH)
        {
            Ok(p) => {
                let n = (p.commitments + p.uses) as u64;
                node.metrics().client_records_pruned.inc_by(n);
                if n > 0 {
                    tracing::debug!(
                        commitments = p.commitments,
                        uses = p.uses,
                        "pruned token records"
                    );
                }
                if !p.more {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "pruning token records failed");
                return;
            }
        }
    }
}

/// Builds the HTTP router for `node`.
pub fn router(node: Arc<NodeState>) -> Router {
    router_with(node, Arc::new(SignerTables::default()), Arc::default())
}

fn router_with(
    node: Arc<NodeState>,
    sig_keys: Arc<SignerTables>,
    history: Arc<Mutex<dashboard::history::History>>,
) -> Router {
    let cfg = &node.config().rpc;
    let auth = KeyAssignGate::from_config(cfg, node.config().dev_mode);
    let limits = Arc::new(RateLimits::from_config(cfg));
    let trusted_proxies = Arc::new(cfg.trusted_proxy_addrs().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rpc.trusted_proxies do not parse: no proxy is trusted");
        Vec::new()
    }));
    let st = RpcState {
        node,
        auth,
        sig_keys,
        limits,
        trusted_proxies,
        history,
    };
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(Any)
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/jrpc", post(jrpc_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .route("/bftStatus", get(bft_status))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/page.js", get(dashboard::script))
        .route("/dashboard/page.css", get(dashboard::style))
        .route("/dashboard/data", get(dashboard_data))
        .layer(cors)
        .with_state(st)
}

/// Serves the router on `listener` until the future is dropped.
/// Also flushes token commitments to disk every [`crate::store::SYNC_INTERVAL`].
pub async fn serve(node: Arc<NodeState>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_until(node, listener, std::future::pending()).await
}

/// As [`serve`], until `stop` resolves: then new connections are refused, requests in
/// flight get `rpc.shutdown_grace_ms` to finish, the client store is flushed and this
/// returns.
pub async fn serve_until(
    node: Arc<NodeState>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let store = node.store().clone();
    // Build the committee's signature tables off the request path (a few
    // milliseconds per key); requests that come first build what they need.
    let sig_keys = Arc::new(SignerTables::default());
    if let Ok(epoch) = node.epoch() {
        let tables = sig_keys.clone();
        tokio::task::spawn_blocking(move || {
            for n in &epoch.nodes {
                if let Ok(pk) = NodePub::from_sec1(&n.pubkey) {
                    tables.get(&n.pubkey, &pk);
                }
            }
        });
    }
    let syncer = async move {
        let mut tick = tokio::time::interval(crate::store::SYNC_INTERVAL);
        loop {
            tick.tick().await;
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.sync_if_dirty()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "LMDB sync failed"),
                Err(e) => tracing::error!(error = %e, "LMDB sync task failed"),
                Ok(Ok(())) => {}
            }
        }
    };
    let pruner = {
        let node = node.clone();
        async move {
            let lifetime = node.config().token_record_lifetime_s();
            let mut tick = tokio::time::interval(PRUNE_INTERVAL);
            loop {
                tick.tick().await;
                let n = node.clone();
                let pass = tokio::task::spawn_blocking(move || {
                    prune_pass(&n, crate::node::unix_s(), lifetime)
                });
                if let Err(e) = pass.await {
                    tracing::error!(error = %e, "token record prune task failed");
                }
            }
        }
    };
    let history: Arc<Mutex<dashboard::history::History>> = Arc::default();
    let sampler = {
        let (node, history) = (node.clone(), history.clone());
        async move {
            let mut tick = tokio::time::interval(dashboard::history::SAMPLE_INTERVAL);
            loop {
                tick.tick().await;
                let (n, h) = (node.clone(), history.clone());
                let read = tokio::task::spawn_blocking(move || {
                    dashboard::sample(&n, &h, crate::node::unix_ms())
                });
                if let Err(e) = read.await {
                    tracing::error!(error = %e, "dashboard sampler task failed");
                }
            }
        }
    };
    let limits = http::HttpLimits {
        header_timeout: Duration::from_millis(node.config().rpc.header_timeout_ms),
        max_connections: node.config().rpc.max_connections,
        shutdown_grace: Duration::from_millis(node.config().rpc.shutdown_grace_ms),
    };
    let metrics = node.metrics().clone();
    let final_store = node.store().clone();
    let r = tokio::select! {
        r = http::serve_http(listener, router_with(node, sig_keys, history), limits, metrics, stop) => r,
        () = syncer => Ok(()),
        () = sampler => Ok(()),
        () = pruner => Ok(()),
    };
    // What the last requests wrote reaches the disk before the node stops.
    match tokio::task::spawn_blocking(move || final_store.sync_if_dirty()).await {
        Ok(Err(e)) => tracing::error!(error = %e, "LMDB sync failed"),
        Err(e) => tracing::error!(error = %e, "LMDB sync task failed"),
        Ok(Ok(())) => {}
    }
    r
}

async fn metrics_handler(State(st): State<RpcState>) -> Response {
    // LMDB's statistics: constant time, no record read.
    match st.node.store().sizes() {
        Ok(sizes) => st.node.metrics().set_store_sizes(&sizes),
        Err(e) => tracing::warn!(error = %e, "cannot read the store's sizes"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.node.metrics().encode(),
    )
        .into_response()
}

/// `GET /readyz`: 200 `{"ready":true}`, or 503 `{"ready":false,"reasons":[...]}` (see
/// [`readiness`]).
async fn readyz(State(st): State<RpcState>) -> Response {
    let node = &st.node;
    let committee = match node.epoch() {
        Ok(e) => e.nodes.len(),
        Err(e) => {
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::to_vec(&json!({
                    "ready": false,
                    "reasons": [format!("the current epoch does not load: {e}")],
                }))
                .unwrap_or_default(),
            )
        }
    };
    let m = node.metrics();
    let inputs = readiness::ReadinessInputs {
        committee,
        peers_connected: usize::try_from(m.p2p_peers.get()).unwrap_or(0),
        last_block: node.last_block(),
        now: Instant::now(),
        max_block_age: Duration::from_secs(node.config().rpc.ready_max_block_age_s),
        keys_free: u64::try_from(m.keys_free.get()).unwrap_or(0),
    };
    match readiness::readiness(&inputs) {
        readiness::Readiness::Ready => json_response(
            StatusCode::OK,
            serde_json::to_vec(&json!({"ready": true})).unwrap_or_default(),
        ),
        readiness::Readiness::NotReady(reasons) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::to_vec(&json!({"ready": false, "reasons": reasons})).unwrap_or_default(),
        ),
    }
}

/// `GET /bftStatus`: the consensus head and the key buffer; `?height=H` adds the
/// app hash this node committed at H (for cross-node comparisons).
async fn bft_status(
    State(st): State<RpcState>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let node = st.node.clone();
    let at = q.get("height").and_then(|h| h.parse::<u64>().ok());
    json_from_blocking(move || status::status_json(&node, at)).await
}

/// Runs `f` (which reads the store) off the async workers: 200 with its JSON, or 503
/// `{"error": ...}`.
async fn json_from_blocking(
    f: impl FnOnce() -> Result<Value, String> + Send + 'static,
) -> Response {
    let (status, v) = match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => (StatusCode::OK, v),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, json!({"error": e})),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": e.to_string()}),
        ),
    };
    json_response(status, serde_json::to_vec(&v).unwrap_or_default())
}

/// `GET /dashboard/data`: what the dashboard shows (see [`dashboard::data`]).
async fn dashboard_data(State(st): State<RpcState>) -> Response {
    let (node, history) = (st.node.clone(), st.history.clone());
    json_from_blocking(move || dashboard::data(&node, &history, crate::node::unix_ms())).await
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

async fn jrpc_handler(State(st): State<RpcState>, request: axum::extract::Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Without a peer address (a router served outside `http::serve_http`) every request
    // shares one budget.
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = limit::client_addr(
        peer,
        parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &st.trusted_proxies,
    );
    let limit = st.node.config().rpc.max_body_bytes;
    // The time limit starts with the headers: a body trickled in slowly counts against it.
    let timeout = Duration::from_millis(st.node.config().rpc.request_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    let read = tokio::time::timeout_at(deadline, axum::body::to_bytes(body, limit)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        bad => {
            let e = RpcError::invalid_request(match bad {
                Ok(_) => format!("request body larger than {limit} bytes"),
                Err(_) => "request body not received within the time limit".to_owned(),
            });
            record(&st, "invalid", Err(&e), started);
            return json_response(StatusCode::OK, jrpc::response_err(&Value::Null, &e));
        }
    };
    let req = match jrpc::parse_request(&bytes) {
        Ok(r) => r,
        Err((id, e)) => {
            record(&st, "invalid", Err(&e), started);
            return json_response(StatusCode::OK, jrpc::response_err(&id, &e));
        }
    };
    let method = req.method.clone();
    if !st.limits.allow(&method, client, Instant::now()) {
        let name = known_method(&method);
        st.node
            .metrics()
            .rpc_rate_limited
            .get_or_create(&MethodLabels {
                method: name.to_string(),
            })
            .inc();
        tracing::debug!(%client, method = name, "request refused by its rate limit");
        let e = RpcError::internal(format!(
            "rate limited: too many {name} requests from this address; retry later"
        ));
        record(&st, name, Err(&e), started);
        return json_response(StatusCode::OK, jrpc::response_err(&req.id, &e));
    }
    let out = tokio::time::timeout_at(deadline, dispatch(&st, &req, &bytes)).await;
    let result = match out {
        Ok(r) => r,
        Err(_) => Err(Reply::Rpc(RpcError::internal("request timed out"))),
    };
    let name = known_method(&method);
    match result {
        Ok(v) => {
            record(&st, name, Ok(()), started);
            json_response(StatusCode::OK, jrpc::response_ok(&req.id, v))
        }
        Err(Reply::Rpc(e)) => {
            record(&st, name, Err(&e), started);
            json_response(StatusCode::OK, jrpc::response_err(&req.id, &e))
        }
        Err(Reply::Unauthorized(text)) => {
            st.node
                .metrics()
                .rpc_requests
                .get_or_create(&RpcLabels {
                    method: name.to_string(),
                    outcome: "401".into(),
                })
                .inc();
            let mut r = Response::new(Body::from(format!("Error authenticating, err: {text}")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            r
        }
    }
}

fn known_method(m: &str) -> &'static str {
    match m {
        "Ping" => "Ping",
        "VerifierLookupRequest" => "VerifierLookupRequest",
        "KeyAssign" => "KeyAssign",
        "CommitmentRequest" => "CommitmentRequest",
        "ShareRequest" => "ShareRequest",
        "KeyLookupRequest" => "KeyLookupRequest",
        _ => "unknown",
    }
}

fn record(st: &RpcState, method: &str, r: Result<(), &RpcError>, started: Instant) {
    let outcome = match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.code.to_string(),
    };
    st.node
        .metrics()
        .rpc_requests
        .get_or_create(&RpcLabels {
            method: method.to_string(),
            outcome,
        })
        .inc();
    st.node
        .metrics()
        .rpc_latency
        .get_or_create(&MethodLabels {
            method: method.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
}

pub(crate) enum Reply {
    Rpc(RpcError),
    Unauthorized(String),
}

impl From<RpcError> for Reply {
    fn from(e: RpcError) -> Self {
        Reply::Rpc(e)
    }
}

/// The error of a client-store write that found the store full (counted).
pub(crate) fn client_full(st: &RpcState, what: &str) -> RpcError {
    st.node.metrics().client_store_full.inc();
    tracing::warn!(what, "client store full: request refused");
    RpcError::internal(format!(
        "node busy: its token store is full ({what}); retry later"
    ))
}

pub(crate) fn storage_err(e: impl std::fmt::Display) -> RpcError {
    tracing::error!(error = %e, "storage error while serving a request");
    RpcError::internal("node storage error")
}

async fn dispatch(st: &RpcState, req: &jrpc::Request, raw: &Bytes) -> Result<Value, Reply> {
    let p = &req.params;
    match req.method.as_str() {
        "Ping" => Ok(json!({"message": st.node.key().public().address()})),
        "VerifierLookupRequest" => Ok(lookup::lookup(st, p)?),
        "KeyAssign" => assign::key_assign(st, p, raw).await,
        "CommitmentRequest" => Ok(commitment::commitment(st, p)?),
        "ShareRequest" => Ok(share::share_request(st, p).await?),
        "KeyLookupRequest" => Ok(lookup::key_lookup(st, p)?),
        other => Err(RpcError::method_not_found(other).into()),
    }
}

/// A point's uncompressed hex x, y (64 characters each), as a client sends its temporary key.
pub fn padded_xy(pk: &k256::PublicKey) -> (String, String) {
    let e = pk.to_encoded_point(false);
    (
        e.x().map(hex::encode).unwrap_or_default(),
        e.y().map(hex::encode).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::NodeKey;

    #[test]
    fn key_assign_is_closed_outside_dev_mode_without_a_signer_key() {
        let none = RpcConfig::default();
        assert!(matches!(
            KeyAssignGate::from_config(&none, false),
            KeyAssignGate::NoSigner
        ));
        assert!(matches!(
            KeyAssignGate::from_config(&none, true),
            KeyAssignGate::Open
        ));
        // A key that does not parse never opens KeyAssign, not even in dev mode.
        let bad = RpcConfig {
            key_assign_signers: vec!["02zz".into()],
            ..RpcConfig::default()
        };
        assert!(matches!(
            KeyAssignGate::from_config(&bad, true),
            KeyAssignGate::NoSigner
        ));
        // The old single key and the list both count.
        let k = || hex::encode(NodeKey::random().public().compressed());
        let both = RpcConfig {
            key_assign_signers: vec![k(), k()],
            key_assign_auth_pubkey: Some(k()),
            ..RpcConfig::default()
        };
        match KeyAssignGate::from_config(&both, false) {
            KeyAssignGate::Signed(a) => assert_eq!(a.signer_count(), 3),
            _ => panic!("not signed"),
        }
    }

    #[test]
    fn each_method_has_its_own_budget_per_address() {
        let cfg = RpcConfig {
            commitment_per_s: 1,
            commitment_burst: 2,
            share_per_s: 1,
            share_burst: 1,
            key_assign_per_s: 1,
            key_assign_burst: 1,
            ..RpcConfig::default()
        };
        let l = RateLimits::from_config(&cfg);
        let (a, now) = (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), Instant::now());
        assert!(l.allow("CommitmentRequest", a, now));
        assert!(l.allow("CommitmentRequest", a, now));
        assert!(!l.allow("CommitmentRequest", a, now));
        // Spent commitments do not spend shares or KeyAssigns, and lookups are not limited.
        assert!(l.allow("ShareRequest", a, now));
        assert!(!l.allow("ShareRequest", a, now));
        assert!(l.allow("KeyAssign", a, now));
        assert!(!l.allow("KeyAssign", a, now));
        assert!((0..100).all(|_| l.allow("VerifierLookupRequest", a, now)));
    }
}
