//! A development OpenID Connect issuer: it signs id tokens (ES256, optionally RS256) and serves
//! its discovery document and JWKS over real HTTP with axum. Used by the tests and by the devnet;
//! never meant for production.
//!
//! Endpoints: `GET /.well-known/openid-configuration` (`issuer`, `jwks_uri`, ...) and
//! `GET /jwks.json`. The JWKS endpoint counts its hits ([`DevIssuer::jwks_hits`]) and can be made
//! to fail, serve garbage or answer slowly ([`DevIssuer::set_jwks_mode`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Map, Value};
use sha2::Digest as _;

/// Errors of the development issuer.
#[derive(Debug, thiserror::Error)]
pub enum DevIssuerError {
    /// Binding or inspecting the listening socket failed.
    #[error("dev issuer socket: {0}")]
    Io(#[from] std::io::Error),
    /// An RS256 token was asked for but the issuer has no RSA key.
    #[error("the dev issuer has no RSA key (start it with rsa enabled)")]
    NoRsaKey,
    /// Key generation or signing failed.
    #[error("dev issuer key error: {0}")]
    Key(String),
}

#[derive(Clone)]
enum KeyMaterial {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::RsaPrivateKey>),
}

/// A signing key with its `kid`. Tests also use free-standing keys to forge tokens (for example
/// a different key under the issuer's `kid`).
#[derive(Clone)]
pub struct DevKey {
    kid: String,
    material: KeyMaterial,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(bytes)[..8])
}

impl DevKey {
    /// A fresh random P-256 key; its `kid` is `es256-` and 16 hex digits derived from the public
    /// key (so a restarted issuer never reuses a `kid` for a different key).
    pub fn es256() -> DevKey {
        Self::from_p256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng))
    }

    /// A P-256 key from a 32-byte seed (the scalar), for reproducible devnets.
    pub fn es256_from_seed(seed: [u8; 32]) -> Result<DevKey, DevIssuerError> {
        let key = p256::ecdsa::SigningKey::from_bytes(&seed.into())
            .map_err(|_| DevIssuerError::Key("the seed is not a valid P-256 scalar".to_owned()))?;
        Ok(Self::from_p256(key))
    }

    fn from_p256(key: p256::ecdsa::SigningKey) -> DevKey {
        let point = key.verifying_key().to_encoded_point(false);
        DevKey {
            kid: format!("es256-{}", short_hash(point.as_bytes())),
            material: KeyMaterial::Es256(key),
        }
    }

    /// A fresh random 2048-bit RSA key (RS256); `kid` `rs256-` and 16 hex digits.
    pub fn rs256() -> Result<DevKey, DevIssuerError> {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
            .map_err(|e| DevIssuerError::Key(e.to_string()))?;
        let kid = format!("rs256-{}", short_hash(&key.n().to_bytes_be()));
        Ok(DevKey {
            kid,
            material: KeyMaterial::Rs256(Box::new(key)),
        })
    }

    /// The same key under another `kid`.
    pub fn with_kid(mut self, kid: impl Into<String>) -> DevKey {
        self.kid = kid.into();
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// `"ES256"` or `"RS256"`.
    pub fn alg(&self) -> &'static str {
        match self.material {
            KeyMaterial::Es256(_) => "ES256",
            KeyMaterial::Rs256(_) => "RS256",
        }
    }

    /// The public key as a JWK (with `kid`, `alg` and `use: "sig"`).
    pub fn jwk(&self) -> Value {
        match &self.material {
            KeyMaterial::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let coord = |c: Option<&p256::FieldBytes>| {
                    c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default()
                };
                json!({
                    "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
                    "x": coord(point.x()), "y": coord(point.y()),
                })
            }
            KeyMaterial::Rs256(key) => json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            }),
        }
    }

    /// Signs `header.payload` and returns the raw JWS signature.
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        match &self.material {
            KeyMaterial::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = key.sign(message);
                sig.to_bytes().to_vec()
            }
            KeyMaterial::Rs256(key) => {
                let digest = sha2::Sha256::digest(message);
                // PKCS#1 v1.5 signing cannot fail for a 2048-bit key and a 32-byte digest.
                key.sign(super::jwks::rs256_scheme(), &digest)
                    .unwrap_or_default()
            }
        }
    }

    /// A compact JWS of `claims` with an explicit header (which is used as is, so tests can put
    /// any `alg` or `kid` in it).
    pub fn sign_with_header(
        &self,
        header: &Map<String, Value>,
        claims: &Map<String, Value>,
    ) -> String {
        let header = URL_SAFE_NO_PAD.encode(Value::Object(header.clone()).to_string());
        let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
        let signing_input = format!("{header}.{payload}");
        let sig = URL_SAFE_NO_PAD.encode(self.sign_bytes(signing_input.as_bytes()));
        format!("{signing_input}.{sig}")
    }

    /// A compact JWS of `claims` with the header `{"alg", "kid", "typ": "JWT"}`.
    pub fn sign_claims(&self, claims: &Map<String, Value>) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), Value::from(self.alg()));
        header.insert("kid".into(), Value::from(self.kid.clone()));
        header.insert("typ".into(), Value::from("JWT"));
        self.sign_with_header(&header, claims)
    }

    /// [`DevKey::sign_claims`] of [`DevClaims::to_map`] with `default_iss`.
    pub fn mint(&self, claims: &DevClaims, default_iss: &str) -> String {
        self.sign_claims(&claims.to_map(default_iss))
    }
}

/// The claims of a token to mint. Fields set to `None` are left out of the token.
#[derive(Clone, Debug, PartialEq)]
pub struct DevClaims {
    /// `iss`; `None` means the issuer's own URL (when minted through [`DevIssuer::mint`]).
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `email` (with `email_verified: true`, unless `extra` sets it).
    pub email: Option<String>,
    /// `aud`: a string or an array (`Value::Null` leaves it out).
    pub aud: Value,
    /// `iat`.
    pub iat: Option<u64>,
    /// `exp`.
    pub exp: Option<u64>,
    /// Any further claims (they override the fields above).
    pub extra: Map<String, Value>,
}

impl DevClaims {
    /// Claims for audience `aud`, issued at `now`, expiring one hour later, no subject yet.
    pub fn new(aud: &str, now: u64) -> DevClaims {
        DevClaims {
            iss: None,
            sub: None,
            email: None,
            aud: Value::from(aud),
            iat: Some(now),
            exp: Some(now + 3600),
            extra: Map::new(),
        }
    }

    /// Sets `email` (and so `email_verified: true`).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets `sub`.
    pub fn subject(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Sets `iss`.
    pub fn iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// Sets `aud` to any JSON value (a string or an array of strings normally).
    pub fn aud(mut self, aud: Value) -> Self {
        self.aud = aud;
        self
    }

    /// Sets or clears `iat`.
    pub fn iat(mut self, iat: Option<u64>) -> Self {
        self.iat = iat;
        self
    }

    /// Sets or clears `exp`.
    pub fn exp(mut self, exp: Option<u64>) -> Self {
        self.exp = exp;
        self
    }

    /// Adds a claim.
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }

    /// The claims as a JSON object; `iss` defaults to `default_iss`.
    pub fn to_map(&self, default_iss: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "iss".into(),
            Value::from(self.iss.clone().unwrap_or_else(|| default_iss.to_owned())),
        );
        if let Some(sub) = &self.sub {
            m.insert("sub".into(), Value::from(sub.clone()));
        }
        if !self.aud.is_null() {
            m.insert("aud".into(), self.aud.clone());
        }
        if let Some(email) = &self.email {
            m.insert("email".into(), Value::from(email.clone()));
            m.insert("email_verified".into(), Value::Bool(true));
        }
        if let Some(iat) = self.iat {
            m.insert("iat".into(), Value::from(iat));
        }
        if let Some(exp) = self.exp {
            m.insert("exp".into(), Value::from(exp));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

/// How the JWKS endpoint answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksMode {
    /// The key set (the default).
    Serve,
    /// This HTTP status with a plain-text body.
    Fail(u16),
    /// `200` with a body that is not JSON.
    Garbage,
    /// The key set after this delay (for timeout tests).
    Delay(Duration),
}

/// Options of [`DevIssuer::serve`].
#[derive(Clone, Debug, Default)]
pub struct DevIssuerOptions {
    /// Also create and publish an RS256 key ([`DevIssuer::mint_rs256`]).
    pub rsa: bool,
    /// The issuer URL to advertise (`iss` and `jwks_uri`); default `http://<bound address>`.
    pub public_url: Option<String>,
    /// Seed of the first ES256 key (random when `None`).
    pub es256_seed: Option<[u8; 32]>,
}

struct Keys {
    /// The key [`DevIssuer::mint`] signs with.
    signing: DevKey,
    /// The ES256 keys in the JWKS (normally just `signing`).
    published: Vec<DevKey>,
    /// The RS256 key, if any (always published).
    rsa: Option<DevKey>,
}

struct Shared {
    issuer: String,
    keys: Mutex<Keys>,
    mode: Mutex<JwksMode>,
    jwks_hits: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn jwks(&self) -> Value {
        let keys = lock(&self.keys);
        let jwks: Vec<Value> = keys
            .published
            .iter()
            .chain(keys.rsa.iter())
            .map(DevKey::jwk)
            .collect();
        json!({ "keys": jwks })
    }
}

struct ServerGuard(tokio::task::JoinHandle<()>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running development issuer. Clones share the server, which stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct DevIssuer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _server: Arc<ServerGuard>,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.shared.issuer)
            .field("addr", &self.addr)
            .finish()
    }
}

async fn openid_configuration(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/jwks.json", shared.issuer),
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&shared.mode).clone();
    match mode {
        JwksMode::Serve => Json(shared.jwks()).into_response(),
        JwksMode::Fail(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "jwks unavailable",
        )
            .into_response(),
        JwksMode::Garbage => (StatusCode::OK, "this is not a key set").into_response(),
        JwksMode::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Json(shared.jwks()).into_response()
        }
    }
}

impl DevIssuer {
    /// Binds `addr` (for example `127.0.0.1:0`) and serves an ES256-only issuer.
    pub async fn start(addr: SocketAddr) -> Result<DevIssuer, DevIssuerError> {
        Self::serve(
            tokio::net::TcpListener::bind(addr).await?,
            DevIssuerOptions::default(),
        )
        .await
    }

    /// Binds `addr` and serves an issuer with both an ES256 and an RS256 key.
    pub async fn start_with_rsa(addr: SocketAddr) -> Result<DevIssuer, DevIssuerError> {
        let options = DevIssuerOptions {
            rsa: true,
            ..DevIssuerOptions::default()
        };
        Self::serve(tokio::net::TcpListener::bind(addr).await?, options).await
    }

    /// Serves the issuer on `listener` (in a spawned task) and returns its handle.
    pub async fn serve(
        listener: tokio::net::TcpListener,
        options: DevIssuerOptions,
    ) -> Result<DevIssuer, DevIssuerError> {
        let addr = listener.local_addr()?;
        let issuer = options
            .public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{addr}"));
        let signing = match options.es256_seed {
            Some(seed) => DevKey::es256_from_seed(seed)?,
            None => DevKey::es256(),
        };
        let rsa = if options.rsa {
            Some(DevKey::rs256()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            issuer,
            keys: Mutex::new(Keys {
                published: vec![signing.clone()],
                signing,
                rsa,
            }),
            mode: Mutex::new(JwksMode::Serve),
            jwks_hits: AtomicU64::new(0),
        });
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(openid_configuration),
            )
            .route("/jwks.json", get(jwks))
            .with_state(shared.clone());
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "dev issuer server stopped");
            }
        });
        tracing::info!(issuer = %shared.issuer, %addr, "dev OIDC issuer listening");
        Ok(DevIssuer {
            shared,
            addr,
            _server: Arc::new(ServerGuard(handle)),
        })
    }

    /// The issuer URL (the `iss` of minted tokens), without a trailing slash.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The JWKS URL (`<issuer>/jwks.json`).
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.shared.issuer)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of the current signing key (ES256 unless [`DevIssuer::rotate_to`] installed another).
    pub fn signing_key(&self) -> DevKey {
        lock(&self.shared.keys).signing.clone()
    }

    /// The `kid` of the current signing key.
    pub fn kid(&self) -> String {
        lock(&self.shared.keys).signing.kid.clone()
    }

    /// Signs `claims` (with `iss` defaulting to [`DevIssuer::issuer`]) with the current signing key.
    pub fn mint(&self, claims: &DevClaims) -> String {
        self.signing_key().mint(claims, &self.shared.issuer)
    }

    /// Signs `claims` with the RS256 key.
    pub fn mint_rs256(&self, claims: &DevClaims) -> Result<String, DevIssuerError> {
        let key = lock(&self.shared.keys)
            .rsa
            .clone()
            .ok_or(DevIssuerError::NoRsaKey)?;
        Ok(key.mint(claims, &self.shared.issuer))
    }

    /// Switches to a fresh ES256 key and returns its `kid`. With `keep_old`, the JWKS keeps
    /// serving the previous keys too; otherwise only the new one (and the RSA key, if any).
    pub fn rotate(&self, keep_old: bool) -> String {
        let key = DevKey::es256();
        let kid = key.kid.clone();
        self.rotate_to(key, keep_old);
        kid
    }

    /// Like [`DevIssuer::rotate`], with a given key (so a test can mint with it before the JWKS
    /// serves it).
    pub fn rotate_to(&self, key: DevKey, keep_old: bool) {
        let mut keys = lock(&self.shared.keys);
        if !keep_old {
            keys.published.clear();
        }
        keys.published.push(key.clone());
        keys.signing = key;
    }

    /// The JWKS document as currently served.
    pub fn jwks(&self) -> Value {
        self.shared.jwks()
    }

    /// Changes how the JWKS endpoint answers (for "JWKS down" tests).
    pub fn set_jwks_mode(&self, mode: JwksMode) {
        *lock(&self.shared.mode) = mode;
    }

    /// How many requests the JWKS endpoint has received.
    pub fn jwks_hits(&self) -> u64 {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }
}
