//! The client JSON-RPC server (`POST /jrpc`, `GET /healthz`, `GET /metrics`,
//! `GET /bftStatus`), speaking the legacy Torus client API (spec §4, §5, §10).
//!
//! Every answer to `/jrpc` is HTTP 200 with a JSON-RPC body, errors included
//! (§10.1); the only exception is KeyAssign's authentication failure (401,
//! text/plain), when KeyAssign authentication is configured.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Map, Value};
use tower_http::cors::{Any, CorsLayer};

use crate::app::{self, KvRead, TxCode};
use crate::crypto::{ecies_encrypt, sig_from_hex, sig_to_hex, NodePub, TableVerifier};
use crate::hexfmt::{checksum_address, eth_address, hex_min, hex_u64, keccak256, parse_hex32};
use crate::jrpc::{self, msg, CommitParams, RpcError, ShareItem, UserParams};
use crate::metrics::{MethodLabels, RpcLabels};
use crate::node::{unix_s, NodeError, NodeState};
use crate::store::records::{KeyRecord, TokenCommitment, TokenUse};
use crate::store::{TokenInsert, TokenUseBinding};
use crate::tx::TxBody;
use crate::verifier::{token_is_canonical, Verified};

/// Shared state of the RPC server.
#[derive(Clone)]
pub struct RpcState {
    node: Arc<NodeState>,
    auth: Option<Arc<KeyAssignAuth>>,
    sig_keys: Arc<SignerTables>,
}

/// Precomputed verification tables of the committee's node keys, which sign
/// every commitment a ShareRequest carries (`k` verifications per request).
/// Filled on first use; only keys of the current committee are added, and the
/// map is cleared when it outgrows a few committees (epoch changes).
#[derive(Default)]
struct SignerTables {
    keys: std::sync::RwLock<HashMap<[u8; 33], Arc<TableVerifier<k256::Secp256k1>>>>,
}

/// More entries than this and [`SignerTables`] starts again (a committee has
/// at most a few dozen nodes; a table takes about 1 MiB).
const MAX_SIGNER_TABLES: usize = 64;

impl SignerTables {
    fn get(&self, compressed: &[u8; 33], pk: &NodePub) -> Arc<TableVerifier<k256::Secp256k1>> {
        if let Some(v) = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(compressed)
        {
            return v.clone();
        }
        let v = Arc::new(pk.table_verifier());
        let mut map = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SIGNER_TABLES {
            map.clear();
        }
        map.entry(*compressed).or_insert(v).clone()
    }
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
    tokio::select! {
        r = axum::serve(listener, router_with(node, sig_keys)) => r,
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
    let r = tokio::task::spawn_blocking(move || status_json(&node, at)).await;
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

fn status_json(node: &NodeState, at: Option<u64>) -> Result<Value, String> {
    let h = node.store().head().map_err(|e| e.to_string())?;
    let snap = node.store().snapshot().map_err(|e| e.to_string())?;
    let c = app::counters(&snap).map_err(|e| e.to_string())?;
    let epoch = app::current_epoch(&snap).map_err(|e| e.to_string())?;
    let open = app::open_batch(&snap)
        .map_err(|e| e.to_string())?
        .map(|b| json!({"start": b.start, "count": b.count}));
    let mut blamed = Vec::new();
    for n in &epoch.nodes {
        if app::is_blamed(&snap, epoch.epoch, n.index).map_err(|e| e.to_string())? {
            blamed.push(n.index);
        }
    }
    // The most recent batches (at most 16), oldest first.
    let mut batches = Vec::new();
    let mut start = 0u64;
    while let Some(b) = app::batch_record(&snap, start).map_err(|e| e.to_string())? {
        batches.push(json!({
            "start": b.batch.start,
            "count": b.batch.count,
            "dealers": b.dealers.iter().map(|d| d.0).collect::<Vec<_>>(),
            "public_keys_decided": b.keys_hash.is_some(),
        }));
        start = b.batch.end();
        if batches.len() > 16 {
            batches.remove(0);
        }
    }
    drop(snap);
    let mut v = json!({
        "height": h.height,
        "app_hash": hex::encode(h.app_hash),
        "epoch": epoch.epoch,
        "keys_created": c.last_created,
        "keys_assigned": c.last_unassigned,
        "keys_free": c.last_created - c.last_unassigned,
        "keys_opened": c.next_batch_start,
        "open_batch": open,
        "shares": node.store().share_count().map_err(|e| e.to_string())?,
        "blamed": blamed,
        "batches": batches,
    });
    if let Some(at) = at {
        v["app_hash_at"] = match node.store().app_hash_at(at).map_err(|e| e.to_string())? {
            Some(a) => Value::from(hex::encode(a)),
            None => Value::Null,
        };
    }
    Ok(v)
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
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let e = RpcError::invalid_request(format!("request body larger than {limit} bytes"));
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
    let timeout = Duration::from_millis(st.node.config().rpc.request_timeout_ms);
    let method = req.method.clone();
    let out = tokio::time::timeout(timeout, dispatch(&st, &req, &bytes)).await;
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

enum Reply {
    Rpc(RpcError),
    Unauthorized(String),
}

impl From<RpcError> for Reply {
    fn from(e: RpcError) -> Self {
        Reply::Rpc(e)
    }
}

fn storage_err(e: impl std::fmt::Display) -> RpcError {
    tracing::error!(error = %e, "storage error while serving a request");
    RpcError::internal("node storage error")
}

async fn dispatch(st: &RpcState, req: &jrpc::Request, raw: &Bytes) -> Result<Value, Reply> {
    let p = &req.params;
    match req.method.as_str() {
        "Ping" => Ok(json!({"message": st.node.key().public().address()})),
        "VerifierLookupRequest" => Ok(lookup(st, p)?),
        "KeyAssign" => key_assign(st, p, raw).await,
        "CommitmentRequest" => Ok(commitment(st, p)?),
        "ShareRequest" => Ok(share_request(st, p).await?),
        "KeyLookupRequest" => Ok(key_lookup(st, p)?),
        other => Err(RpcError::method_not_found(other).into()),
    }
}

fn check_user(st: &RpcState, u: &UserParams) -> Result<(), RpcError> {
    if u.verifier_id.is_empty() {
        return Err(RpcError::input(msg::VERIFIER_ID_EMPTY));
    }
    if !st.node.verifiers().contains(&u.verifier) {
        return Err(RpcError::input(msg::VERIFIER_NOT_SUPPORTED));
    }
    Ok(())
}

fn pubkey_xy(pk: &[u8; 33]) -> Option<([u8; 32], [u8; 32])> {
    NodePub::from_sec1(pk).ok().map(|p| p.xy())
}

fn lookup_item(rec: &KeyRecord) -> Result<Value, RpcError> {
    let (x, y) = pubkey_xy(&rec.pubkey).ok_or_else(|| {
        RpcError::internal(format!(
            "Could not find address to key index error: bad public key at {}",
            rec.index
        ))
    })?;
    let mut xy = [0u8; 64];
    xy[..32].copy_from_slice(&x);
    xy[32..].copy_from_slice(&y);
    Ok(json!({
        "key_index": hex_u64(rec.index),
        "pub_key_X": hex_min(&x),
        "pub_key_Y": hex_min(&y),
        "address": checksum_address(&eth_address(&xy)),
    }))
}

fn assigned_record(st: &RpcState, u: &UserParams) -> Result<Option<KeyRecord>, RpcError> {
    let snap = st.node.store().snapshot().map_err(storage_err)?;
    let Some(index) =
        app::assigned_index(&snap, &u.verifier, &u.verifier_id).map_err(storage_err)?
    else {
        return Ok(None);
    };
    let rec = app::key_record(&snap, index)
        .map_err(storage_err)?
        .ok_or_else(|| {
            RpcError::internal(format!(
                "Could not find address to key index error: key {index} missing"
            ))
        })?;
    Ok(Some(rec))
}

fn lookup(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let u = UserParams::from_params(p)?;
    check_user(st, &u)?;
    match assigned_record(st, &u)? {
        Some(rec) => Ok(json!({"keys": [lookup_item(&rec)?]})),
        None => Err(RpcError::input_capital(msg::NOT_ASSIGNED)),
    }
}

async fn key_assign(st: &RpcState, p: &Map<String, Value>, raw: &Bytes) -> Result<Value, Reply> {
    if let Some(auth) = &st.auth {
        auth.check(&st.node, raw).map_err(Reply::Unauthorized)?;
    }
    let u = UserParams::from_params(p)?;
    check_user(st, &u)?;
    // Idempotent: a user who has a key gets it back without a transaction.
    if let Some(rec) = assigned_record(st, &u)? {
        return Ok(json!({"keys": [lookup_item(&rec)?]}));
    }
    let tx = st
        .node
        .sign_tx(TxBody::KeyAssign {
            verifier: u.verifier.clone(),
            verifier_id: u.verifier_id.clone(),
        })
        .map_err(|e| RpcError::internal(format!("Unable to broadcast: {e}")))?;
    let timeout = Duration::from_millis(st.node.config().rpc.key_assign_timeout_ms);
    let outcome = match st.node.submit_and_wait(&tx, timeout).await {
        Ok(o) => o,
        Err(NodeError::Timeout) => {
            return Err(RpcError::internal("key assignment error: timed out").into())
        }
        Err(e @ (NodeError::Broadcast(_) | NodeError::NoConsensus)) => {
            return Err(RpcError::internal(format!("Unable to broadcast: {e}")).into())
        }
        Err(e) => return Err(RpcError::internal(format!("key assignment error: {e}")).into()),
    };
    match outcome.code {
        TxCode::Ok => {}
        TxCode::NoFreeKeys => {
            return Err(RpcError::internal(
                "key assignment error: no free keys, key generation in progress; retry later",
            )
            .into())
        }
        TxCode::Frozen => {
            return Err(RpcError::internal(
                "key assignment error: epoch hand-over in progress; retry later",
            )
            .into())
        }
        _ => {
            return Err(RpcError::internal(format!("key assignment error: {}", outcome.log)).into())
        }
    }
    match assigned_record(st, &u)? {
        Some(rec) => Ok(json!({"keys": [lookup_item(&rec)?]})),
        None => Err(RpcError::internal("key assignment error: not visible after commit").into()),
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn commitment(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let c = CommitParams::from_params(p)?;
    if c.messageprefix != "mug00" {
        return Err(RpcError::internal(msg::BAD_PREFIX));
    }
    if c.tokencommitment.len() != 64 || !is_hex(&c.tokencommitment) {
        return Err(RpcError::input("tokencommitment must be 64 hex characters"));
    }
    if !st.node.verifiers().contains(&c.verifieridentifier) {
        return Err(RpcError::input(msg::VERIFIER_NOT_SUPPORTED));
    }
    let (Some(tx), Some(ty)) = (parse_hex32(&c.temppubx), parse_hex32(&c.temppuby)) else {
        return Err(RpcError::input("invalid temporary public key"));
    };
    if NodePub::from_xy(&tx, &ty).is_err() {
        return Err(RpcError::input("invalid temporary public key"));
    }
    let commitment = c.tokencommitment.to_ascii_lowercase();
    let now = unix_s();
    let d1 = "\u{1c}";
    let data = [
        c.messageprefix.as_str(),
        &c.tokencommitment,
        &c.temppubx,
        &c.temppuby,
        &c.verifieridentifier,
        &now.to_string(),
    ]
    .join(d1);
    let sig = st.node.key().sign(data.as_bytes());
    let rec = TokenCommitment {
        temp_x: tx,
        temp_y: ty,
        created_s: now,
        data,
        sig,
        revealed_s: 0,
        seq: 0, // assigned by the store
    };
    let (data, sig) = match st
        .node
        .store()
        .put_token_if_absent(&c.verifieridentifier, &commitment, &rec)
        .map_err(storage_err)?
    {
        TokenInsert::Inserted => (rec.data, rec.sig),
        // A retry with the same temporary key is answered again (same data and
        // signature); a different key for a seen commitment is refused.
        TokenInsert::Existing(old) if old.temp_x == tx && old.temp_y == ty => (old.data, old.sig),
        TokenInsert::Existing(_) => return Err(RpcError::internal(msg::DUPLICATE_TOKEN)),
    };
    let (px, py) = st.node.key().public().hex_xy();
    Ok(json!({
        "signature": sig_to_hex(&sig),
        "data": data,
        "nodepubx": px,
        "nodepuby": py,
    }))
}

/// The fields of a node's signed commitment `data`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SignedCommit {
    prefix: String,
    commitment: String,
    verifier: String,
    temp_x: [u8; 32],
    temp_y: [u8; 32],
}

fn parse_commit_data(data: &str) -> Option<SignedCommit> {
    let parts: Vec<&str> = data.split('\u{1c}').collect();
    let [prefix, commitment, tx, ty, verifier, _ts] = parts.as_slice() else {
        return None;
    };
    Some(SignedCommit {
        prefix: (*prefix).to_string(),
        commitment: commitment.to_ascii_lowercase(),
        verifier: (*verifier).to_string(),
        temp_x: parse_hex32(tx)?,
        temp_y: parse_hex32(ty)?,
    })
}

/// Counts valid node signatures, then picks the signed value with the most
/// signatures (ties broken by the smallest value, so every node picks the same).
fn commit_quorum(
    epoch: &crate::tx::EpochInfo,
    tables: &SignerTables,
    item: &ShareItem,
    k: usize,
) -> (usize, Option<(SignedCommit, usize)>) {
    let mut valid = 0usize;
    let mut seen_signers = std::collections::HashSet::new();
    let mut groups: BTreeMap<SignedCommit, usize> = BTreeMap::new();
    for s in &item.signatures {
        let (Some(x), Some(y)) = (parse_hex32(&s.nodepubx), parse_hex32(&s.nodepuby)) else {
            continue;
        };
        let Ok(pk) = NodePub::from_xy(&x, &y) else {
            continue;
        };
        let compressed = pk.compressed();
        let Some(idx) = epoch.index_of(&compressed) else {
            continue;
        };
        let Some(sig) = sig_from_hex(&s.signature) else {
            continue;
        };
        // A signer already counted is skipped before any curve arithmetic.
        if seen_signers.contains(&idx) {
            continue;
        }
        let verifier = tables.get(&compressed, &pk);
        if !verifier.verify_prehash(&keccak256(s.data.as_bytes()), &sig) {
            continue;
        }
        seen_signers.insert(idx);
        valid += 1;
        if let Some(sc) = parse_commit_data(&s.data) {
            let c = groups.entry(sc.clone()).or_insert(0);
            *c += 1;
            // k = floor(n/2)+1 signatures on one value: no other value can also
            // reach k, so the answer is already decided; skip the remaining checks.
            if *c >= k {
                return (valid, Some((sc, *c)));
            }
        }
    }
    let mut best: Option<(SignedCommit, usize)> = None;
    for (k, c) in groups {
        if best.as_ref().is_none_or(|(_, bc)| c > *bc) {
            best = Some((k, c));
        }
    }
    (valid, best)
}

async fn share_request(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let items = jrpc::share_items(p)?;
    let epoch = st.node.epoch().map_err(storage_err)?;
    let k = epoch.k as usize;
    let mut keys: BTreeMap<u64, Value> = BTreeMap::new();
    for item in &items {
        let verifier = match item.fields.get("verifieridentifier") {
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            _ => return Err(RpcError::params_internal(msg::COULD_NOT_VERIFY)),
        };
        let token = match item.fields.get("idtoken") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err(RpcError::params_internal(msg::COULD_NOT_VERIFY)),
        };
        if !token_is_canonical(&token) {
            return Err(RpcError::params_internal(format!(
                "{} (the token must not carry whitespace or padding)",
                msg::CLEAN_TOKEN
            )));
        }
        let verified = match st
            .node
            .verifiers()
            .verify(&verifier, &item.fields, unix_s())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                st.node
                    .metrics()
                    .verify_failures
                    .get_or_create(&MethodLabels {
                        method: e.code().to_string(),
                    })
                    .inc();
                return Err(RpcError::params_internal(format!(
                    "{} {e}",
                    msg::VERIFY_PARAMS
                )));
            }
        };
        let (valid, best) = commit_quorum(&epoch, &st.sig_keys, item, k);
        if valid < k {
            return Err(RpcError::params_internal(format!(
                "Not enough valid signatures. Only {valid}valid signatures found."
            )));
        }
        let Some((signed, count)) = best.filter(|(_, c)| *c >= k) else {
            return Err(RpcError::params_internal(format!(
                "Not enough valid signatures on the same data, need {k}"
            )));
        };
        if signed.prefix != "mug00" || signed.verifier != verifier {
            return Err(RpcError::params_internal(format!(
                "Not enough valid signatures on the same data, need {k} (prefix or verifier differs)"
            )));
        }
        tracing::debug!(signatures = count, "commitment quorum");
        if hex::encode(keccak256(token.as_bytes())) != signed.commitment {
            return Err(RpcError::params_internal(msg::TOKEN_MISMATCH));
        }
        // The temporary key: our own stored commitment, else the quorum's (§10.6).
        let stored = st
            .node
            .store()
            .token(&verifier, &signed.commitment)
            .map_err(storage_err)?;
        let (tx, ty) = match &stored {
            Some(s) if (s.temp_x, s.temp_y) != (signed.temp_x, signed.temp_y) => {
                return Err(RpcError::params_internal(
                    "Not enough valid signatures on the same data: temporary key differs from this node's commitment",
                ))
            }
            Some(s) => (s.temp_x, s.temp_y),
            None => (signed.temp_x, signed.temp_y),
        };
        let temp = k256::PublicKey::from_sec1_bytes(&[&[4u8][..], &tx[..], &ty[..]].concat())
            .map_err(|_| RpcError::params_internal("invalid temporary public key"))?;
        guard_single_reveal(
            st,
            &verifier,
            &signed.commitment,
            stored.as_ref(),
            &verified,
            (tx, ty),
        )?;
        let rec = {
            let u = UserParams {
                verifier: verifier.clone(),
                verifier_id: verified.verifier_id.clone(),
            };
            assigned_record(st, &u)?.ok_or_else(|| {
                RpcError::internal(format!(
                    "share request could not retrieve keyIndexes: {}",
                    msg::NOT_ASSIGNED
                ))
            })?
        };
        let Some((s, _sp, _)) = st.node.store().share(rec.index).map_err(storage_err)? else {
            return Err(RpcError::internal(msg::NO_SHARE));
        };
        let first = s.iter().position(|b| *b != 0).unwrap_or(s.len());
        let plain = zeroize::Zeroizing::new(s.get(first..).unwrap_or(&[]).to_vec());
        let c = ecies_encrypt(&temp, &plain, &mut rand_core::OsRng);
        let share_b64 =
            base64::engine::general_purpose::STANDARD.encode(hex::encode(&c.ciphertext));
        let (x, y) = pubkey_xy(&rec.pubkey).unwrap_or(([0; 32], [0; 32]));
        let (ov, oid) = rec
            .owner
            .clone()
            .unwrap_or((verifier.clone(), verified.verifier_id.clone()));
        let mut verifiers = Map::new();
        verifiers.insert(ov, json!([oid]));
        keys.insert(
            rec.index,
            json!({
                "Index": hex_u64(rec.index),
                "PublicKey": {"X": hex_min(&x), "Y": hex_min(&y)},
                "Threshold": 1,
                "Verifiers": verifiers,
                "Share": share_b64,
                "Metadata": {
                    "iv": hex::encode(c.iv),
                    "ephemPublicKey": hex::encode(c.ephem_public_key),
                    "mac": hex::encode(c.mac),
                    "mode": "AES256",
                },
            }),
        );
        st.node
            .store()
            .mark_revealed(&verifier, &signed.commitment, unix_s())
            .map_err(storage_err)?;
    }
    if keys.is_empty() {
        return Err(RpcError::internal(msg::NO_SHARE));
    }
    Ok(json!({"keys": keys.into_values().collect::<Vec<_>>()}))
}

/// One signed token, one reveal. A token is what its issuer signed (`verified.token_id`), not
/// its bytes: an ES256 signature `(r, s)` also verifies as `(r, n - s)`, so whoever sees a
/// revealed token can re-encode it, commit the new bytes under their own temporary key and ask
/// for shares again. Two rules stop that, before any share is encrypted:
/// - of the encodings of one token, only the one this node saw committed first may be revealed
///   here (an honest client commits before it reveals; a thief can only commit after);
/// - the first reveal binds the token to its commitment and temporary key; any other reveal of
///   the same token is refused (a retry with the same commitment and key is answered).
fn guard_single_reveal(
    st: &RpcState,
    verifier: &str,
    commitment: &str,
    stored: Option<&TokenCommitment>,
    verified: &Verified,
    (temp_x, temp_y): ([u8; 32], [u8; 32]),
) -> Result<(), RpcError> {
    for other in &verified.other_encodings {
        let Some(o) = st
            .node
            .store()
            .token(verifier, &hex::encode(other))
            .map_err(storage_err)?
        else {
            continue;
        };
        if !stored.is_some_and(|s| s.seq < o.seq) {
            return Err(RpcError::params_internal(format!(
                "{}: another encoding of this token was committed first",
                msg::DUPLICATE_TOKEN
            )));
        }
    }
    let commitment = parse_hex32(commitment).ok_or_else(|| {
        RpcError::params_internal("Not enough valid signatures on the same data: bad commitment")
    })?;
    let use_ = TokenUse {
        commitment,
        temp_x,
        temp_y,
        expires_s: verified.expires_s,
    };
    match st
        .node
        .store()
        .bind_token_use(verifier, &verified.token_id, &use_)
        .map_err(storage_err)?
    {
        TokenUseBinding::Bound | TokenUseBinding::Same => Ok(()),
        TokenUseBinding::Conflict(_) => Err(RpcError::params_internal(format!(
            "{}: this token was already revealed under another commitment or temporary key",
            msg::DUPLICATE_TOKEN
        ))),
    }
}

fn key_lookup(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let x = jrpc::str_field(p, "pub_key_X")?;
    let y = jrpc::str_field(p, "pub_key_Y")?;
    if x.is_empty() || y.is_empty() {
        return Err(RpcError::input(msg::PUBKEY_EMPTY));
    }
    let (Some(xb), Some(yb)) = (parse_hex32(x), parse_hex32(y)) else {
        return Err(RpcError::input(msg::NO_LOG));
    };
    let Ok(pk) = NodePub::from_xy(&xb, &yb) else {
        return Err(RpcError::input(msg::NO_LOG));
    };
    let snap = st.node.store().snapshot().map_err(storage_err)?;
    let Some(index) = app::index_of_pubkey(&snap, &pk.compressed()).map_err(storage_err)? else {
        return Err(RpcError::input(msg::NO_LOG));
    };
    let rec = app::key_record(&snap, index)
        .map_err(storage_err)?
        .ok_or_else(|| RpcError::input(msg::NO_LOG))?;
    let Some((v, id)) = rec.owner else {
        return Err(RpcError::input(msg::NO_ASSIGNMENT));
    };
    let mut verifiers = Map::new();
    verifiers.insert(v, json!([id]));
    Ok(json!({
        "Index": hex_u64(index),
        "PublicKey": {"X": hex_min(&xb), "Y": hex_min(&yb)},
        "Threshold": 1,
        "Verifiers": verifiers,
    }))
}

/// KeyAssign authentication (spec §10.5): a signature by the configured signer
/// over the request body, once per signature, at most 60 s old.
pub struct KeyAssignAuth {
    signer: NodePub,
    seen: Mutex<HashMap<[u8; 32], u64>>,
    strip: regex::bytes::Regex,
    tail: regex::bytes::Regex,
}

/// Largest accepted age of a KeyAssign signature.
pub const AUTH_MAX_AGE_S: u64 = 60;

impl KeyAssignAuth {
    fn new(signer: NodePub) -> Self {
        KeyAssignAuth {
            signer,
            seen: Mutex::new(HashMap::new()),
            // Patterns from spec §10.5 (byte level, not a re-serialization).
            strip: regex::bytes::Regex::new(
                r#"\s*"torus-(signature|nonce|timestamp)"\s*:\s*".*?",?"#,
            )
            .unwrap_or_else(|_| unreachable_regex()),
            tail: regex::bytes::Regex::new(r"(\s*),(\s*)}$")
                .unwrap_or_else(|_| unreachable_regex()),
        }
    }

    fn check(&self, node: &NodeState, raw: &[u8]) -> Result<(), String> {
        let v: Value = serde_json::from_slice(raw).map_err(|_| "body is not JSON".to_string())?;
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("missing {name}"))
        };
        let sig_b64 = field("torus-signature")?;
        let nonce = field("torus-nonce")?;
        let ts = field("torus-timestamp")?;
        let ts_n: u64 = ts
            .parse()
            .map_err(|_| "torus-timestamp is not decimal".to_string())?;
        let now = unix_s();
        if ts_n + AUTH_MAX_AGE_S < now || ts_n > now + AUTH_MAX_AGE_S {
            return Err("signature expired".into());
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig_b64.as_bytes())
            .map_err(|_| "torus-signature is not base64".to_string())?;
        let stripped = self.strip.replace_all(raw, &b""[..]);
        let body = self.tail.replace(&stripped, &b"$1$2}"[..]);
        let mut signed_body = body.to_vec();
        signed_body.push(0x1c);
        signed_body.extend_from_slice(ts.as_bytes());
        signed_body.push(0x1c);
        signed_body.extend_from_slice(nonce.as_bytes());
        let (px, py) = node.key().public().hex_xy();
        let msg = format!(
            r#"{{"body":"{}","pubkey_x":"{}","pubkey_y":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode(&signed_body),
            px,
            py
        );
        self.signer
            .verify(msg.as_bytes(), &sig)
            .map_err(|_| "invalid signature".to_string())?;
        let id = keccak256(&sig);
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| "auth state poisoned".to_string())?;
        seen.retain(|_, t| *t + 2 * AUTH_MAX_AGE_S >= now);
        if seen.insert(id, now).is_some() {
            return Err("signature already used".into());
        }
        Ok(())
    }
}

fn unreachable_regex() -> regex::bytes::Regex {
    // The patterns above are constant and valid; this is only a typed fallback
    // that matches nothing.
    #[allow(clippy::unwrap_used)]
    regex::bytes::Regex::new(r"[^\s\S]").unwrap()
}

/// A point's uncompressed hex x, y (64 characters each), as a client sends its temporary key.
pub fn padded_xy(pk: &k256::PublicKey) -> (String, String) {
    let e = pk.to_encoded_point(false);
    (
        e.x().map(hex::encode).unwrap_or_default(),
        e.y().map(hex::encode).unwrap_or_default(),
    )
}

/// Unused-import guard for `KvRead` (snapshots implement it).
#[allow(dead_code)]
fn _assert_kv<T: KvRead>() {}
