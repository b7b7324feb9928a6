//! The three services a torus.js app needs besides the nodes (spec §8, §10.13), served by
//! the devnet on one loopback port:
//!
//! * metadata: `POST /metadata/get`, `/metadata/set`, `/metadata/get_or_set_nonce`
//!   (torus.js's `metadataHost` is `http://127.0.0.1:PORT/metadata`; rules in
//!   [`metadata`]), kept in memory and, for the devnet, in `metadata.json` in its data
//!   directory, so that a restarted devnet gives users the same nonces;
//! * the KeyAssign signer: `POST /api/sign` (`signerHost`), with the devnet's
//!   `dev-signer.key`, whose public key every devnet node trusts
//!   (`rpc.key_assign_signers`); rules in [`signer`];
//! * the allow check: `GET /api/allow` (`allowHost`);
//! * the login page: `GET /login`, with `POST /login/token`, which mints development id
//!   tokens for any e-mail (devnet only; rules in [`login`]).
//!
//! Bodies are limited to [`MAX_BODY`] (larger: HTTP 413), every request to
//! [`REQUEST_TIMEOUT`]. Errors are JSON `{"error": "..."}` with HTTP 400 (malformed), 403
//! (bad or missing signature, verifier not allowed, a token asked for by a page of another
//! origin), 503 (the login page's `devnet.json` before the devnet is ready, no token
//! minter), 507 (metadata store full) or 500. Every answer carries CORS headers, for
//! browser apps.

pub mod login;
pub mod metadata;
pub mod signer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;

use crate::crypto::{NodeKey, NodePub};
use crate::node::unix_s;
use metadata::{MetadataError, MetadataStore};

/// Largest request body, in bytes.
pub const MAX_BODY: usize = 16 * 1024;
/// Largest `metadata.json` read back at start.
pub const MAX_METADATA_FILE: u64 = 64 * 1024 * 1024;
/// Time one request may take, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The hosts' URLs, as `devnet.json` lists them (`torus_hosts`) and torus.js takes them
/// (`metadataHost`, `signerHost`, `allowHost`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorusHosts {
    /// `metadataHost`.
    pub metadata: String,
    /// `signerHost`.
    pub signer: String,
    /// `allowHost`.
    pub allow: String,
}

impl TorusHosts {
    /// The URLs of hosts served at `addr`.
    pub fn at(addr: SocketAddr) -> Self {
        TorusHosts {
            metadata: format!("http://{addr}/metadata"),
            signer: format!("http://{addr}/api/sign"),
            allow: format!("http://{addr}/api/allow"),
        }
    }
}

/// What the hosts serve.
pub struct HostsOptions {
    /// The KeyAssign signer's key.
    pub signer: Arc<NodeKey>,
    /// The nodes the signer signs for.
    pub nodes: Vec<NodePub>,
    /// The verifiers the allow check passes.
    pub verifiers: Vec<String>,
    /// Where the metadata is kept (read at start, rewritten on every change); `None`:
    /// in memory only.
    pub metadata_file: Option<PathBuf>,
    /// Mints the login page's id tokens; `None`: `POST /login/token` answers 503.
    pub mint: Option<login::TokenMinter>,
}

/// Failures to start the hosts.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// The listener.
    #[error("hosts listener: {0}")]
    Io(#[from] std::io::Error),
    /// A `metadata.json` that cannot be used.
    #[error("{path}: {why}")]
    Metadata {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

struct Shared {
    signer: Arc<NodeKey>,
    nodes: std::sync::RwLock<Vec<NodePub>>,
    verifiers: Vec<String>,
    metadata_file: Option<PathBuf>,
    store: tokio::sync::Mutex<MetadataStore>,
    signatures: AtomicU64,
    mint: Option<login::TokenMinter>,
    /// The port the hosts listen on (the login page's origin).
    port: u16,
    /// `devnet.json`, once written ([`Hosts::set_manifest`]).
    manifest: std::sync::RwLock<Option<Value>>,
    tokens: AtomicU64,
}

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Running hosts; they stop when this is dropped.
pub struct Hosts {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: ServerGuard,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts").field("addr", &self.addr).finish()
    }
}

fn read_store(path: &std::path::Path) -> Result<MetadataStore, HostsError> {
    let err = |why: String| HostsError::Metadata {
        path: path.display().to_string(),
        why,
    };
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MetadataStore::default()),
        Err(e) => return Err(err(e.to_string())),
    };
    if len > MAX_METADATA_FILE {
        return Err(err(format!("larger than {MAX_METADATA_FILE} bytes")));
    }
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let store: MetadataStore = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
    store.validate().map_err(err)?;
    Ok(store)
}

impl Hosts {
    /// Serves the hosts on `listener`.
    pub async fn serve(
        listener: tokio::net::TcpListener,
        opts: HostsOptions,
    ) -> Result<Hosts, HostsError> {
        let addr = listener.local_addr()?;
        let store = match &opts.metadata_file {
            Some(p) => read_store(p)?,
            None => MetadataStore::default(),
        };
        let shared = Arc::new(Shared {
            signer: opts.signer,
            nodes: std::sync::RwLock::new(opts.nodes),
            verifiers: opts.verifiers,
            metadata_file: opts.metadata_file,
            store: tokio::sync::Mutex::new(store),
            signatures: AtomicU64::new(0),
            mint: opts.mint,
            port: addr.port(),
            manifest: std::sync::RwLock::new(None),
            tokens: AtomicU64::new(0),
        });
        let cors = CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers(Any)
            .max_age(Duration::from_secs(600));
        let app = Router::new()
            .route("/metadata/get", post(metadata_get))
            .route("/metadata/set", post(metadata_set))
            .route("/metadata/get_or_set_nonce", post(metadata_nonce))
            .route("/api/sign", post(sign))
            .route("/api/allow", get(allow))
            .route("/login", get(login_page))
            .route("/login/page.js", get(login_script))
            .route("/login/torus.js", get(login_bundle))
            .route("/login/devnet.json", get(login_manifest))
            .route("/login/token", post(login_token))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
            ))
            .layer(cors)
            .with_state(shared.clone());
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "devnet hosts stopped");
            }
        });
        tracing::info!(%addr, "devnet hosts (metadata, signer, allow, login page) listening");
        Ok(Hosts {
            addr,
            shared,
            _server: ServerGuard(handle),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// KeyAssign signatures the signer has given out.
    pub fn signatures(&self) -> u64 {
        self.shared.signatures.load(Ordering::Relaxed)
    }

    /// The URLs torus.js takes.
    pub fn urls(&self) -> TorusHosts {
        TorusHosts::at(self.addr)
    }

    /// The login page's URL.
    pub fn login_page(&self) -> String {
        format!("http://{}/login", self.addr)
    }

    /// Id tokens the login page's issuer endpoint has minted.
    pub fn tokens(&self) -> u64 {
        self.shared.tokens.load(Ordering::Relaxed)
    }

    /// Lets the signer sign KeyAssigns for node `pk` too (a fresh member).
    pub fn add_node(&self, pk: NodePub) {
        let mut n = self.shared.nodes.write().unwrap_or_else(|p| p.into_inner());
        if !n.contains(&pk) {
            n.push(pk);
        }
    }

    /// Gives the login page the devnet's `devnet.json` (until then it answers 503).
    pub fn set_manifest(&self, manifest: Value) {
        let mut m = self
            .shared
            .manifest
            .write()
            .unwrap_or_else(|p| p.into_inner());
        *m = Some(manifest);
    }
}

/// A refusal: its status and why (sent as `{"error": why}`).
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, why: impl std::fmt::Display) -> Refusal {
    Refusal(status, why.to_string())
}

fn metadata_error(e: MetadataError) -> Refusal {
    let status = match e {
        MetadataError::Invalid(_) => StatusCode::BAD_REQUEST,
        MetadataError::Forbidden(_) => StatusCode::FORBIDDEN,
        MetadataError::Full => StatusCode::INSUFFICIENT_STORAGE,
    };
    error(status, e)
}

fn parse(body: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

/// Writes the store (a new file, then renamed over the old one).
async fn persist(sh: &Shared, store: &MetadataStore) -> Result<(), Refusal> {
    let Some(path) = &sh.metadata_file else {
        return Ok(());
    };
    let text =
        serde_json::to_vec(store).map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let tmp = path.with_extension("json.tmp");
    let write = async {
        tokio::fs::write(&tmp, &text).await?;
        tokio::fs::rename(&tmp, path).await
    };
    write.await.map_err(|e| {
        tracing::warn!(error = %e, path = %path.display(), "metadata not saved");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("saving {}: {e}", path.display()),
        )
    })
}

async fn metadata_get(State(sh): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>, Refusal> {
    let req = parse(&body)?;
    let store = sh.store.lock().await;
    store.get(&req).map(Json).map_err(metadata_error)
}

async fn metadata_set(State(sh): State<Arc<Shared>>, body: Bytes) -> Result<Json<Value>, Refusal> {
    let req = parse(&body)?;
    let mut store = sh.store.lock().await;
    let mut next = store.clone();
    let answer = next.set(&req, unix_s()).map_err(metadata_error)?;
    persist(&sh, &next).await?;
    *store = next;
    Ok(Json(answer))
}

async fn metadata_nonce(
    State(sh): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let req = parse(&body)?;
    let mut store = sh.store.lock().await;
    let mut next = store.clone();
    let fresh = || k256::NonZeroScalar::random(&mut rand_core::OsRng);
    let (answer, changed) = next
        .get_or_set_nonce(&req, unix_s(), fresh)
        .map_err(metadata_error)?;
    if changed {
        persist(&sh, &next).await?;
        *store = next;
    }
    Ok(Json(answer))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn sign(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let nonce = hex::encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes());
    let nodes = sh.nodes.read().unwrap_or_else(|p| p.into_inner()).clone();
    match signer::sign_key_assign(
        &sh.signer,
        &nodes,
        header(&headers, "pubkeyx"),
        header(&headers, "pubkeyy"),
        &body,
        unix_s(),
        &nonce,
    ) {
        Ok(v) => {
            sh.signatures.fetch_add(1, Ordering::Relaxed);
            Json(v).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn allow(State(sh): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match signer::allow(&sh.verifiers, header(&headers, "verifier")) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::FORBIDDEN, e).into_response(),
    }
}

fn text(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

async fn login_page() -> Response {
    text("text/html; charset=utf-8", login::PAGE_HTML)
}

async fn login_script() -> Response {
    text("text/javascript; charset=utf-8", login::PAGE_JS)
}

async fn login_bundle() -> Response {
    text("text/javascript; charset=utf-8", login::TORUS_JS)
}

async fn login_manifest(State(sh): State<Arc<Shared>>) -> Response {
    let m = sh
        .manifest
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match m {
        Some(m) => Json(m).into_response(),
        None => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the devnet is not ready yet (its key buffer is filling); try again shortly",
        )
        .into_response(),
    }
}

async fn login_token(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !login::origin_allowed(header(&headers, "origin"), sh.port) {
        return error(
            StatusCode::FORBIDDEN,
            "id tokens are given only to the devnet's own login page",
        )
        .into_response();
    }
    let email = match login::token_request(&body) {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, e).into_response(),
    };
    let Some(mint) = &sh.mint else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "these hosts mint no id tokens",
        )
        .into_response();
    };
    match mint(&email) {
        Ok(token) => {
            sh.tokens.fetch_add(1, Ordering::Relaxed);
            Json(json!({ "id_token": token })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON answer to `GET url`.
    async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
        http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The JSON answer to `POST url` with the JSON `body`.
    async fn post_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, body: &Value) -> Value {
        http.post(url)
            .json(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn start(file: Option<PathBuf>, node: &NodeKey) -> Hosts {
        start_minting(file, node, None).await
    }

    /// Hosts that sign for `node`, keep metadata in `file` and mint with `mint`.
    async fn start_minting(
        file: Option<PathBuf>,
        node: &NodeKey,
        mint: Option<login::TokenMinter>,
    ) -> Hosts {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Hosts::serve(
            l,
            HostsOptions {
                signer: Arc::new(NodeKey::random()),
                nodes: vec![node.public()],
                verifiers: vec!["devnet".into()],
                metadata_file: file,
                mint,
            },
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_nonce_survives_a_restart_of_the_hosts_and_bad_requests_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("metadata.json");
        let node = NodeKey::random();
        let user = NodeKey::random();
        let (x, y) = user.public().hex_xy();
        let req = json!({"pub_key_X": x, "pub_key_Y": y, "set_data": {"data": "getOrSetNonce"}});
        let http = reqwest::Client::new();
        let first = {
            let h = start(Some(file.clone()), &node).await;
            let url = format!("{}/get_or_set_nonce", h.urls().metadata);
            let v: Value = post_json(&http, &url, &req).await;
            assert_eq!(v["typeOfUser"], "v2", "{v}");
            let pub_nonce = v["pubNonce"].clone();
            // Oversized and malformed bodies.
            let big = "x".repeat(MAX_BODY + 1);
            let r = http.post(&url).body(big).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let r = http.post(&url).body("{").send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            let e: Value = r.json().await.unwrap();
            assert!(e["error"].as_str().unwrap().contains("not JSON"), "{e}");
            // The allow check and the signer over HTTP.
            let r = http
                .get(&h.urls().allow)
                .header("verifier", "devnet")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let r = http
                .get(&h.urls().allow)
                .header("verifier", "other")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
            let (nx, ny) = node.public().hex_xy();
            let body = r#"{"jsonrpc":"2.0","method":"KeyAssign","id":10,"params":{"verifier":"devnet","verifier_id":"a"}}"#;
            let v: Value = http
                .post(&h.urls().signer)
                .header("pubKeyX", nx)
                .header("pubKeyY", ny)
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(v["torus-signature"].as_str().is_some(), "{v}");
            pub_nonce
        };
        let v1 = {
            let h = start(Some(file.clone()), &node).await;
            let url = format!("{}/get_or_set_nonce", h.urls().metadata);
            post_json(&http, &url, &req).await
        };
        let v0: MetadataStore = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(v0.len(), 1);
        assert_eq!(v1["typeOfUser"], "v2");
        assert_eq!(v1["pubNonce"], first, "the same nonce after the restart");
        // A broken file stops the hosts from starting instead of losing the nonces.
        std::fs::write(&file, "{").unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Hosts::serve(
            l,
            HostsOptions {
                signer: Arc::new(NodeKey::random()),
                nodes: vec![],
                verifiers: vec![],
                metadata_file: Some(file),
                mint: None,
            },
        )
        .await;
        assert!(matches!(r, Err(HostsError::Metadata { .. })));
    }

    #[tokio::test]
    async fn the_login_page_mints_tokens_only_for_plain_addresses_and_serves_its_files() {
        let mint: login::TokenMinter = Arc::new(|email: &str| Ok(format!("token-for-{email}")));
        let h = start_minting(None, &NodeKey::random(), Some(mint)).await;
        let http = reqwest::Client::new();
        let base = h.login_page();
        let r = http.get(&base).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.text().await.unwrap().contains("/login/torus.js"));
        for (path, len) in [
            ("page.js", login::PAGE_JS.len()),
            ("torus.js", login::TORUS_JS.len()),
        ] {
            let r = http.get(format!("{base}/{path}")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.bytes().await.unwrap().len(), len, "{path}");
        }
        // devnet.json: 503 until the devnet has written it.
        let r = http
            .get(format!("{base}/devnet.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains("not ready"), "{e}");
        h.set_manifest(json!({"n": 5}));
        let v: Value = get_json(&http, format!("{base}/devnet.json")).await;
        assert_eq!(v, json!({"n": 5}));
        // Tokens.
        let token = format!("{base}/token");
        let v: Value = post_json(&http, &token, &json!({"email": "alice@example.com"})).await;
        assert_eq!(v, json!({"id_token": "token-for-alice@example.com"}));
        for body in [
            json!({"email": "alice"}),
            json!({"email": "a@b.c", "x": 1}),
            json!("alice@example.com"),
        ] {
            let r = http.post(&token).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
            let e: Value = r.json().await.unwrap();
            assert!(e["error"].is_string(), "{e}");
        }
        let r = http
            .post(&token)
            .body("x".repeat(MAX_BODY + 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Another site's page, open in the same browser, gets none; the page itself does.
        for (origin, status) in [
            ("http://evil.example".to_string(), StatusCode::FORBIDDEN),
            (format!("http://{}", h.addr()), StatusCode::OK),
        ] {
            let r = http
                .post(&token)
                .header("origin", &origin)
                .json(&json!({"email": "alice@example.com"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{origin}");
        }
        assert_eq!(h.tokens(), 2);
        // Hosts without a minter say so.
        let h = start(None, &NodeKey::random()).await;
        let r = http
            .post(format!("{}/token", h.login_page()))
            .json(&json!({"email": "alice@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
