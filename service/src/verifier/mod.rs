//! Verifiers: they turn a ShareRequest item (an id token plus verifier parameters) into a
//! verified verifier id (spec section 4, "Verifiers").
//!
//! Two kinds exist:
//! - `oidc`: an OpenID Connect id token (a JWT) checked locally against the issuer's JWKS, which
//!   is fetched over HTTP(S), cached, and refetched (rate limited) when a token names an unknown
//!   key id. Issuer, audience, expiry, issued-at, optional maximum token age, and the verifier id
//!   claim are all checked, each with its own [`VerifyError`] variant.
//! - `test` (development mode only): the token must equal `"blublu"`; the verifier id is the item
//!   field `id`, or `verifier_id` when `id` is absent.
//!
//! Every token must be byte-canonical ([`token_is_canonical`]), so that whitespace or padding
//! variants of one token can never count as different tokens (scenario E.28).
//!
//! The `Display` text of a [`VerifyError`] is sent to clients (JSON-RPC error `data`): it is
//! deterministic (the same on every node for the same input), never contains the token, and each
//! variant has its own text and its own [`VerifyError::code`].

mod devissuer;
mod jwks;
mod oidc;

pub use devissuer::{DevClaims, DevIssuer, DevIssuerError, DevIssuerOptions, DevKey, JwksMode};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use self::oidc::OidcVerifier;
use crate::hexfmt::keccak256;

/// Audience of the development issuer's tokens (devnet and test kit).
pub const DEV_AUDIENCE: &str = "torus-devnet";
/// Name of the development OIDC verifier (devnet and test kit).
pub const DEV_VERIFIER: &str = "devnet";

/// The token the `test` verifier accepts (spec section 4).
pub const TEST_VERIFIER_TOKEN: &str = "blublu";

/// Longest id token accepted, in bytes. Longer tokens are refused as malformed before any
/// decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What kind of verifier a [`VerifierConfig`] describes.
#[derive(Clone, Copy, Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VerifierKind {
    /// OpenID Connect id tokens checked against the issuer's JWKS.
    Oidc,
    /// The development verifier of the original node (token `"blublu"`); dev mode only.
    Test,
}

impl std::fmt::Display for VerifierKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifierKind::Oidc => "oidc",
            VerifierKind::Test => "test",
        })
    }
}

/// Configuration of one verifier (one `[[verifiers]]` entry of the node configuration).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// The verifier name clients send as `verifier` / `verifieridentifier`
    /// (non-empty, at most 128 characters of `[A-Za-z0-9_.-]`).
    pub name: String,
    /// `"oidc"` or `"test"`.
    pub kind: VerifierKind,
    /// OIDC: the exact `iss` value tokens must carry (for example `https://accounts.google.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OIDC: where the issuer's JWKS is fetched (an `http` or `https` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// OIDC: the client id that must appear in the token's `aud` (a string or an array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// OIDC: the claim holding the verifier id (for example `email` or `sub`). It must equal the
    /// item's `verifier_id`; for the claim `email` the comparison ignores case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_id_claim: Option<String>,
    /// OIDC: tokens issued (`iat`) more than this many seconds ago are refused; unset means
    /// [`DEFAULT_MAX_TOKEN_AGE_S`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_age_s: Option<u64>,
}

/// Why a verifier configuration was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifierConfigError {
    /// The name is empty, too long, or has characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid verifier name {name:?}: it must be 1 to 128 characters of [A-Za-z0-9_.-]")]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// A field the verifier kind needs is absent or empty.
    #[error("verifier {verifier:?} (kind {kind}) needs the field `{field}`")]
    MissingField {
        /// The verifier name.
        verifier: String,
        /// Its kind.
        kind: VerifierKind,
        /// The missing field.
        field: &'static str,
    },
    /// A field is set that the verifier kind does not use.
    #[error("verifier {verifier:?} (kind {kind}) does not take the field `{field}`")]
    UnexpectedField {
        /// The verifier name.
        verifier: String,
        /// Its kind.
        kind: VerifierKind,
        /// The field that should not be set.
        field: &'static str,
    },
    /// `jwks_url` is not an absolute `http`/`https` URL with a host.
    #[error("verifier {verifier:?}: jwks_url {url:?} is not an http(s) URL: {reason}")]
    InvalidJwksUrl {
        /// The verifier name.
        verifier: String,
        /// The refused URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `max_token_age_s` is zero.
    #[error("verifier {verifier:?}: max_token_age_s must be positive")]
    InvalidMaxTokenAge {
        /// The verifier name.
        verifier: String,
    },
    /// A `test` verifier outside development mode.
    #[error("verifier {verifier:?}: kind \"test\" is only allowed in development mode")]
    TestVerifierOutsideDevMode {
        /// The verifier name.
        verifier: String,
    },
    /// Two verifiers share a name.
    #[error("duplicate verifier name {name:?}")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// Two `oidc` verifiers accept the same tokens (same issuer and audience): one token could
    /// be used once under each name.
    #[error("verifiers {first:?} and {second:?} have the same issuer and audience")]
    SharedIssuerAndAudience {
        /// The first verifier.
        first: String,
        /// The second verifier.
        second: String,
    },
    /// The HTTP client for JWKS fetches could not be built.
    #[error("cannot build the JWKS HTTP client: {0}")]
    HttpClient(String),
}

impl VerifierConfig {
    /// Checks the configuration: the name is non-empty and made of `[A-Za-z0-9_.-]`; an `oidc`
    /// verifier has non-empty `issuer`, `audience`, `verifier_id_claim` and an `http`/`https`
    /// `jwks_url`, and a positive `max_token_age_s` if set; a `test` verifier sets none of those
    /// fields and is only allowed when `dev_mode` is true.
    pub fn validate(&self, dev_mode: bool) -> Result<(), VerifierConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return Err(VerifierConfigError::InvalidName {
                name: self.name.clone(),
            });
        }
        let verifier = || self.name.clone();
        let fields: [(&'static str, bool); 5] = [
            ("issuer", self.issuer.is_some()),
            ("jwks_url", self.jwks_url.is_some()),
            ("audience", self.audience.is_some()),
            ("verifier_id_claim", self.verifier_id_claim.is_some()),
            ("max_token_age_s", self.max_token_age_s.is_some()),
        ];
        match self.kind {
            VerifierKind::Test => {
                for (field, set) in fields {
                    if set {
                        return Err(VerifierConfigError::UnexpectedField {
                            verifier: verifier(),
                            kind: self.kind,
                            field,
                        });
                    }
                }
                if !dev_mode {
                    return Err(VerifierConfigError::TestVerifierOutsideDevMode {
                        verifier: verifier(),
                    });
                }
                Ok(())
            }
            VerifierKind::Oidc => {
                let required: [(&'static str, &Option<String>); 4] = [
                    ("issuer", &self.issuer),
                    ("jwks_url", &self.jwks_url),
                    ("audience", &self.audience),
                    ("verifier_id_claim", &self.verifier_id_claim),
                ];
                for (field, value) in required {
                    if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                        return Err(VerifierConfigError::MissingField {
                            verifier: verifier(),
                            kind: self.kind,
                            field,
                        });
                    }
                }
                let url = self.jwks_url.as_deref().unwrap_or_default();
                let bad_url = |reason: &str| VerifierConfigError::InvalidJwksUrl {
                    verifier: verifier(),
                    url: url.to_owned(),
                    reason: reason.to_owned(),
                };
                let parsed = reqwest::Url::parse(url).map_err(|e| bad_url(&e.to_string()))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(bad_url("the scheme must be http or https"));
                }
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(bad_url("no host"));
                }
                if self.max_token_age_s == Some(0) {
                    return Err(VerifierConfigError::InvalidMaxTokenAge {
                        verifier: verifier(),
                    });
                }
                Ok(())
            }
        }
    }
}

/// Tunables of the verifiers. [`Verifiers::new`] uses [`VerifierOptions::default`]; tests and
/// special deployments use [`Verifiers::with_options`].
#[derive(Clone, Debug, PartialEq)]
pub struct VerifierOptions {
    /// Timeout of one JWKS HTTP request (default 5 s).
    pub http_timeout: Duration,
    /// Largest JWKS response body accepted (default 1 MiB).
    pub max_jwks_bytes: usize,
    /// Minimum time between two JWKS fetch attempts of one verifier, when a token names an unknown
    /// `kid` or a fetch failed (default 10 s).
    pub jwks_refetch_interval: Duration,
    /// How long a fetched JWKS is used before it is fetched again on the next request (default
    /// 1 h). When that refresh fails, the old JWKS stays in use.
    pub jwks_max_age: Duration,
    /// How long past `jwks_max_age` a key set that cannot be refreshed is still used (default
    /// 6 h); after that tokens are refused with "issuer key set unavailable" until a fetch
    /// succeeds.
    pub jwks_max_stale: Duration,
    /// Clock leeway for `exp` and `nbf` (default 60 s): a token is expired once
    /// `exp <= now - leeway`.
    pub exp_leeway_s: u64,
    /// Allowed clock skew for `iat` (default 60 s): `iat > now + skew` is "issued in the future".
    pub iat_skew_s: u64,
}

impl Default for VerifierOptions {
    fn default() -> Self {
        VerifierOptions {
            http_timeout: Duration::from_secs(5),
            max_jwks_bytes: 1024 * 1024,
            jwks_refetch_interval: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(3600),
            jwks_max_stale: Duration::from_secs(6 * 3600),
            exp_leeway_s: 60,
            iat_skew_s: 60,
        }
    }
}

enum Verifier {
    Oidc(Box<OidcVerifier>),
    Test,
}

struct Inner {
    verifiers: BTreeMap<String, Verifier>,
}

/// The node's verifiers, by name. Cloning is cheap (an `Arc`); the JWKS caches are shared by all
/// clones.
#[derive(Clone)]
pub struct Verifiers {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifiers")
            .field("names", &self.names())
            .finish()
    }
}

/// A successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The verifier id the key lookup uses: for `oidc` the item's `verifier_id` exactly as sent
    /// (it matched the token's claim), for `test` the item's `id` (or `verifier_id`).
    pub verifier_id: String,
    /// What identifies the token: keccak-256 of what the issuer signed (the JWS signing input
    /// `header.payload`) for `oidc`, of the token itself for `test`. Every encoding of one signed
    /// token has the same id, so "this token was used" is recorded under it, never under the
    /// token's bytes (an ECDSA signature `(r, s)` also verifies as `(r, n - s)`).
    pub token_id: [u8; 32],
    /// keccak-256 of every *other* byte string that verifies as this same signed token (for
    /// ES256 the token with `(r, n - s)`; none for RS256, whose signature encoding is unique, and
    /// for `test`). A node compares their commitments with the presented one's, so that only the
    /// encoding committed first can ever be revealed.
    pub other_encodings: Vec<[u8; 32]>,
    /// Unix seconds after which the token is refused anyway (`exp` plus the leeway): a record of
    /// its use need not be kept longer.
    pub expires_s: u64,
}

/// Default largest token age (`now - iat`) for an `oidc` verifier that sets no
/// `max_token_age_s`: a login uses its id token within minutes of the sign-in.
pub const DEFAULT_MAX_TOKEN_AGE_S: u64 = 600;

impl Verifiers {
    /// Builds the verifiers with default [`VerifierOptions`]. Every configuration is validated
    /// ([`VerifierConfig::validate`]); duplicate names are refused. No network access happens
    /// here: each JWKS is fetched on first use.
    pub fn new(configs: &[VerifierConfig], dev_mode: bool) -> Result<Self, VerifierConfigError> {
        Self::with_options(configs, dev_mode, VerifierOptions::default())
    }

    /// Like [`Verifiers::new`], with explicit tunables.
    pub fn with_options(
        configs: &[VerifierConfig],
        dev_mode: bool,
        options: VerifierOptions,
    ) -> Result<Self, VerifierConfigError> {
        let client = jwks::http_client(&options)?;
        let mut verifiers = BTreeMap::new();
        for config in configs {
            config.validate(dev_mode)?;
            if verifiers.contains_key(&config.name) {
                return Err(VerifierConfigError::DuplicateName {
                    name: config.name.clone(),
                });
            }
            let verifier = match config.kind {
                VerifierKind::Test => Verifier::Test,
                VerifierKind::Oidc => Verifier::Oidc(Box::new(OidcVerifier::new(
                    config,
                    client.clone(),
                    &options,
                ))),
            };
            verifiers.insert(config.name.clone(), verifier);
        }
        let oidc: Vec<&VerifierConfig> = configs
            .iter()
            .filter(|c| c.kind == VerifierKind::Oidc)
            .collect();
        for (i, a) in oidc.iter().enumerate() {
            if let Some(b) = oidc
                .iter()
                .skip(i + 1)
                .find(|b| b.issuer == a.issuer && b.audience == a.audience)
            {
                return Err(VerifierConfigError::SharedIssuerAndAudience {
                    first: a.name.clone(),
                    second: b.name.clone(),
                });
            }
        }
        Ok(Verifiers {
            inner: Arc::new(Inner { verifiers }),
        })
    }

    /// Whether a verifier of that name is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.inner.verifiers.contains_key(name)
    }

    /// The configured verifier names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.verifiers.keys().cloned().collect()
    }

    /// Verifies one ShareRequest item with the verifier `verifier`.
    ///
    /// `item` is one ShareRequest item with `nodesignatures` already removed: fields `idtoken`,
    /// `verifier_id`, `verifieridentifier`, and extra verifier params. `now_unix_s` is the
    /// current time in Unix seconds (used for `exp`, `nbf`, `iat`; the JWKS refetch rate limit
    /// uses the monotonic clock).
    pub async fn verify(
        &self,
        verifier: &str,
        item: &Map<String, Value>,
        now_unix_s: u64,
    ) -> Result<Verified, VerifyError> {
        let v = self
            .inner
            .verifiers
            .get(verifier)
            .ok_or(VerifyError::UnknownVerifier)?;
        let token = string_field(item, "idtoken")?;
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::MalformedToken {
                reason: "the token is too long",
            });
        }
        if !token_is_canonical(token) {
            return Err(VerifyError::NonCanonicalToken);
        }
        match v {
            Verifier::Test => {
                let verifier_id = match item.get("id") {
                    Some(_) => string_field(item, "id")?,
                    None => string_field(item, "verifier_id")?,
                };
                if token != TEST_VERIFIER_TOKEN {
                    return Err(VerifyError::TestTokenMismatch);
                }
                Ok(Verified {
                    verifier_id: verifier_id.to_owned(),
                    token_id: keccak256(token.as_bytes()),
                    other_encodings: Vec::new(),
                    expires_s: u64::MAX,
                })
            }
            Verifier::Oidc(oidc) => {
                let verifier_id = string_field(item, "verifier_id")?;
                let facts = oidc.verify(token, verifier_id, now_unix_s).await?;
                Ok(Verified {
                    verifier_id: verifier_id.to_owned(),
                    token_id: facts.token_id,
                    other_encodings: facts.other_encodings,
                    expires_s: facts.expires_s,
                })
            }
        }
    }
}

/// A required non-empty string field of the item.
fn string_field<'a>(
    item: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, VerifyError> {
    match item.get(field) {
        None | Some(Value::Null) => Err(VerifyError::MissingField { field }),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(VerifyError::InvalidField { field }),
    }
}

fn is_base64url_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// True iff the token is byte-canonical: no leading/trailing whitespace (spec CleanToken), and for JWTs exactly three base64url segments without padding '=' and without '+', '/', whitespace.
///
/// A token is treated as a JWT when it contains a `.`; then it must consist of exactly three
/// `.`-separated segments of the base64url alphabet `[A-Za-z0-9_-]` (a segment may be empty
/// here; an empty header or signature is refused later as malformed). A token without `.` (such
/// as the test verifier's `"blublu"`) only needs to be non-empty and equal to its trimmed form.
/// Non-canonical trailing bits inside a segment are refused later, when the segment is decoded.
pub fn token_is_canonical(token: &str) -> bool {
    if token.is_empty() || token.trim() != token {
        return false;
    }
    if !token.contains('.') {
        return true;
    }
    let segments: Vec<&str> = token.split('.').collect();
    segments.len() == 3 && segments.iter().all(|s| s.bytes().all(is_base64url_char))
}

/// Why a verification failed. The `Display` text is deterministic and safe to send to clients
/// (it never contains the token); [`VerifyError::code`] is a stable snake_case identifier.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum VerifyError {
    /// No verifier of that name is configured.
    #[error("verifier not supported")]
    UnknownVerifier,
    /// A required item field is absent (or null).
    #[error("missing field `{field}`")]
    MissingField {
        /// The field name (`idtoken`, `verifier_id` or `id`).
        field: &'static str,
    },
    /// A required item field is not a non-empty string.
    #[error("field `{field}` must be a non-empty string")]
    InvalidField {
        /// The field name.
        field: &'static str,
    },
    /// The token is not byte-canonical (see [`token_is_canonical`]).
    #[error(
        "id token is not canonical (surrounding whitespace, padding or non-base64url characters)"
    )]
    NonCanonicalToken,
    /// The token is not a well-formed JWT.
    #[error("malformed id token: {reason}")]
    MalformedToken {
        /// What is wrong (a fixed text).
        reason: &'static str,
    },
    /// The JWT `alg` is not RS256 or ES256 (`none` and HS* are always refused).
    #[error("unsupported token algorithm {alg:?} (only RS256 and ES256 are accepted)")]
    UnsupportedAlgorithm {
        /// The header's `alg`, if it is short and printable; otherwise `"?"`.
        alg: String,
    },
    /// The header has no `kid`, but the issuer's JWKS has more than one key.
    #[error("token header has no key id but the issuer has several keys")]
    MissingKid,
    /// No key of the issuer's JWKS (even after a refetch) has the token's `kid`.
    #[error("unknown signing key id (not in the issuer's key set)")]
    UnknownKid,
    /// The signature does not verify with the issuer's key (or the key is for another algorithm).
    #[error("invalid token signature")]
    BadSignature,
    /// A claim the verifier requires is absent (`iss`, `aud`, `exp`, `iat`).
    #[error("token has no `{claim}` claim")]
    MissingClaim {
        /// The claim name.
        claim: &'static str,
    },
    /// `iss` is not the verifier's issuer.
    #[error("token issuer is not the verifier's issuer")]
    WrongIssuer,
    /// `aud` (a string or an array) does not contain the verifier's audience.
    #[error("token audience does not include the verifier's client id")]
    WrongAudience,
    /// The token names several audiences without an `azp` claim equal to the verifier's client
    /// id, or has an `azp` naming another client (OpenID Connect Core 1.0, section 3.1.3.7).
    #[error("token authorized party (azp) is not the verifier's client id")]
    WrongAuthorizedParty,
    /// `exp <= now - leeway`.
    #[error("token expired")]
    Expired,
    /// `nbf > now + leeway`.
    #[error("token not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `iat > now + skew`.
    #[error("token issued in the future (iat is ahead of the node's clock)")]
    IssuedInFuture,
    /// `now - iat > max_token_age_s`.
    #[error("token too old (issued longer ago than the verifier allows)")]
    TokenTooOld,
    /// The token lacks the configured verifier id claim (or it is not a string).
    #[error("token has no verifier id claim `{claim}`")]
    MissingVerifierIdClaim {
        /// The configured claim name.
        claim: String,
    },
    /// The verifier id claim is `email` and the token does not say `email_verified: true`
    /// (false, absent, or anything else).
    #[error("token email is not verified")]
    EmailNotVerified,
    /// The token's verifier id claim differs from the item's `verifier_id`.
    #[error("verifier_id does not match the token")]
    VerifierIdMismatch,
    /// The issuer's JWKS could not be fetched or parsed.
    #[error("issuer key set unavailable: {reason}")]
    JwksUnavailable {
        /// What went wrong (deterministic text, no node-specific details).
        reason: String,
    },
    /// The `test` verifier's token is not `"blublu"`.
    #[error("test verifier: token mismatch")]
    TestTokenMismatch,
}

impl VerifyError {
    /// A stable snake_case identifier of the variant, for metrics, logs and clients.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::UnknownVerifier => "unknown_verifier",
            VerifyError::MissingField { .. } => "missing_field",
            VerifyError::InvalidField { .. } => "invalid_field",
            VerifyError::NonCanonicalToken => "non_canonical_token",
            VerifyError::MalformedToken { .. } => "malformed_token",
            VerifyError::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            VerifyError::MissingKid => "missing_kid",
            VerifyError::UnknownKid => "unknown_kid",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::MissingClaim { .. } => "missing_claim",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAuthorizedParty => "wrong_azp",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not_yet_valid",
            VerifyError::IssuedInFuture => "issued_in_future",
            VerifyError::TokenTooOld => "token_too_old",
            VerifyError::MissingVerifierIdClaim { .. } => "missing_verifier_id_claim",
            VerifyError::EmailNotVerified => "email_not_verified",
            VerifyError::VerifierIdMismatch => "verifier_id_mismatch",
            VerifyError::JwksUnavailable { .. } => "jwks_unavailable",
            VerifyError::TestTokenMismatch => "test_token_mismatch",
        }
    }

    /// Whether the failure is on the node's side (the issuer's JWKS could not be had), so that
    /// the same request may succeed later; every other failure is the token's or the request's.
    pub fn is_transient(&self) -> bool {
        matches!(self, VerifyError::JwksUnavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_tokens() {
        assert!(token_is_canonical("blublu"));
        assert!(token_is_canonical("eyJh.eyJi.c2ln"));
        assert!(token_is_canonical("a-_b.c.d"));
        assert!(!token_is_canonical(""));
        assert!(!token_is_canonical(" blublu"));
        assert!(!token_is_canonical("blublu\n"));
        assert!(!token_is_canonical("a.b.c="));
        assert!(!token_is_canonical("a.b+.c"));
        assert!(!token_is_canonical("a./b.c"));
        assert!(!token_is_canonical("a.b c.d"));
        assert!(!token_is_canonical("a.b"));
        assert!(!token_is_canonical("a.b.c.d"));
    }
}
