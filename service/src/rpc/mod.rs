//! The client JSON-RPC server (`POST /jrpc`, `GET /healthz`, `GET /metrics`,
//! `GET /bftStatus`), speaking the legacy Torus client API (spec §4, §5, §10).
//!
//! Every answer to `/jrpc` is HTTP 200 with a JSON-RPC body, errors included
//! (§10.1); the only exception is KeyAssign's authentication failure (401,
//! text/plain), when KeyAssign authentication is configured.

mod assign;
mod commitment;
pub mod http;
mod lookup;
pub mod release;
mod share;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use tower_http::cors::{Any, CorsLayer};

pub use assign::{KeyAssignAuth, AUTH_MAX_AGE_S};
use release::SignerTables;

use crate::crypto::NodePub;
use crate::jrpc::{self, RpcError};
use crate::metrics::{MethodLabels, RpcLabels};
use crate::node::NodeState;

/// Shared state of the RPC server.
#[derive(Clone)]
pub struct RpcState {
    node: Arc<NodeState>,
    auth: Option<Arc<KeyAssignAuth>>,
    sig_keys: Arc<SignerTables>,
}

/// Builds the HTTP router for `node`.
pub fn router(node: Arc<NodeState>) -> Router {
    router_with(node, Arc::new(SignerTables::default()))
}

fn router_with(node: Arc<NodeState>, sig_keys: Arc<SignerTables>) -> Router {
    let auth = node
        .config()
        .rpc
        .key_assign_auth_pubkey
        .as_deref()
        .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
        .and_then(|raw| NodePub::from_sec1(&raw).ok())
        .map(|pk| Arc::new(KeyAssignAuth::new(pk)));
    let st = RpcState {
        node,
        auth,
        sig_keys,
    };
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers(Any)
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/jrpc", post(jrpc_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_handler))
        .route("/bftStatus", get(bft_status))
        .layer(cors)
        .with_state(st)
}

/// Serves the router on `listener` until the future is dropped.
/// Also flushes token commitments to disk every [`crate::store::SYNC_INTERVAL`].
pub async fn serve(node: Arc<NodeState>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
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
    let limits = http::HttpLimits {
        header_timeout: Duration::from_millis(node.config().rpc.header_timeout_ms),
        max_connections: node.config().rpc.max_connections,
    };
    let metrics = node.metrics().clone();
    tokio::select! {
        r = http::serve_http(listener, router_with(node, sig_keys), limits, metrics) => r,
        () = syncer => Ok(()),
    }
}

async fn metrics_handler(State(st): State<RpcState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.node.metrics().encode(),
    )
        .into_response()
}

/// `GET /bftStatus`: the consensus head and the key buffer; `?height=H` adds the
/// app hash this node committed at H (for cross-node comparisons).
async fn bft_status(
    State(st): State<RpcState>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let node = st.node.clone();
    let at = q.get("height").and_then(|h| h.parse::<u64>().ok());
    let r = tokio::task::spawn_blocking(move || status::status_json(&node, at)).await;
    match r {
        Ok(Ok(v)) => json_response(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default()),
        Ok(Err(e)) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::to_vec(&json!({"error": e})).unwrap_or_default(),
        ),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::to_vec(&json!({"error": e.to_string()})).unwrap_or_default(),
        ),
    }
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

async fn jrpc_handler(State(st): State<RpcState>, body: Body) -> Response {
    let started = Instant::now();
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
