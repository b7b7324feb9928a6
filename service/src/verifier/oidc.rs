//! The `oidc` verifier: local verification of an OpenID Connect id token (a compact JWS) against
//! the issuer's JWKS.
//!
//! Order of the checks (the first failure is reported): the token is canonical (done by the
//! caller); the header decodes and names RS256 or ES256; the key is found by `kid` (with one
//! rate-limited refetch of the JWKS when it is not); the signature verifies; then the claims:
//! `iss`, `aud`, `exp`, `nbf`, `iat` (future, then maximum age), the verifier id claim,
//! `email_verified` (only when the claim is `email`), and the match with the item's
//! `verifier_id`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::jwks::{Alg, JwksCache, Lookup};
use super::{VerifierConfig, VerifierOptions, VerifyError, DEFAULT_MAX_TOKEN_AGE_S};
use crate::hexfmt::keccak256;

/// What a verified token is, beyond "valid": see [`super::Verified`].
pub(crate) struct TokenFacts {
    pub(crate) token_id: [u8; 32],
    pub(crate) other_encodings: Vec<[u8; 32]>,
    pub(crate) expires_s: u64,
}

pub(crate) struct OidcVerifier {
    name: String,
    issuer: String,
    audience: String,
    verifier_id_claim: String,
    max_token_age_s: u64,
    exp_leeway_s: u64,
    iat_skew_s: u64,
    jwks: JwksCache,
}

fn malformed(reason: &'static str) -> VerifyError {
    VerifyError::MalformedToken { reason }
}

/// A JSON object from one base64url segment.
fn decode_object(
    segment: &str,
    not_b64: &'static str,
    not_json: &'static str,
) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| malformed(not_b64))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed(not_json)),
    }
}

/// A numeric date claim (seconds; fractions are truncated). `Ok(None)` when absent.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
    reason: &'static str,
) -> Result<Option<u64>, VerifyError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                    _ => Err(malformed(reason)),
                }
            }
        }
        Some(_) => Err(malformed(reason)),
    }
}

/// The header's `alg` as it may appear in an error text: short and printable, else `"?"`.
fn printable_alg(alg: &str) -> String {
    if !alg.is_empty()
        && alg.len() <= 16
        && alg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        alg.to_owned()
    } else {
        "?".to_owned()
    }
}

impl OidcVerifier {
    /// `config` must have passed [`VerifierConfig::validate`].
    pub(crate) fn new(
        config: &VerifierConfig,
        client: reqwest::Client,
        options: &VerifierOptions,
    ) -> Self {
        let url = config.jwks_url.clone().unwrap_or_default();
        if url.starts_with("http://") {
            tracing::warn!(verifier = %config.name, url, "JWKS is fetched over plain http");
        }
        OidcVerifier {
            name: config.name.clone(),
            issuer: config.issuer.clone().unwrap_or_default(),
            audience: config.audience.clone().unwrap_or_default(),
            verifier_id_claim: config.verifier_id_claim.clone().unwrap_or_default(),
            max_token_age_s: config.max_token_age_s.unwrap_or(DEFAULT_MAX_TOKEN_AGE_S),
            exp_leeway_s: options.exp_leeway_s,
            iat_skew_s: options.iat_skew_s,
            jwks: JwksCache::new(url, client, options),
        }
    }

    /// Verifies `token` (already checked canonical) for the item's `verifier_id`.
    pub(crate) async fn verify(
        &self,
        token: &str,
        verifier_id: &str,
        now: u64,
    ) -> Result<TokenFacts, VerifyError> {
        let result = self.verify_inner(token, verifier_id, now).await;
        if let Err(e) = &result {
            tracing::debug!(verifier = %self.name, code = e.code(), error = %e, "id token refused");
        }
        result
    }

    async fn verify_inner(
        &self,
        token: &str,
        verifier_id: &str,
        now: u64,
    ) -> Result<TokenFacts, VerifyError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("the token is not three dot-separated segments"));
        };
        let header = decode_object(
            header_b64,
            "the header is not base64url",
            "the header is not a JSON object",
        )?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            _ => return Err(malformed("the header has no alg")),
        };
        let alg = Alg::parse(alg).ok_or_else(|| VerifyError::UnsupportedAlgorithm {
            alg: printable_alg(alg),
        })?;
        if header.contains_key("crit") {
            return Err(malformed("the header has unsupported critical extensions"));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(malformed("the header kid is not a string")),
        };
        if sig_b64.is_empty() {
            return Err(malformed("the signature is empty"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| malformed("the signature is not base64url"))?;
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];

        // Key lookup, with one (rate-limited, shared) refetch when the kid is unknown.
        let mut snapshot = self.jwks.current().await;
        let mut refetched = false;
        let key = loop {
            let Some(keys) = snapshot.keys.clone() else {
                let reason = snapshot
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the key set was not fetched yet".to_owned());
                return Err(VerifyError::JwksUnavailable { reason });
            };
            match keys.lookup(kid, alg) {
                Lookup::Found(key) => break key.clone(),
                Lookup::WrongAlg => return Err(VerifyError::BadSignature),
                Lookup::KidRequired => return Err(VerifyError::MissingKid),
                Lookup::NotFound if !refetched => {
                    tracing::info!(verifier = %self.name, kid = kid.unwrap_or(""), "unknown kid: refetching JWKS");
                    refetched = true;
                    snapshot = self.jwks.refresh(snapshot.generation).await;
                }
                Lookup::NotFound => {
                    return Err(match snapshot.last_error {
                        Some(reason) => VerifyError::JwksUnavailable { reason },
                        None => VerifyError::UnknownKid,
                    });
                }
            }
        };
        if !key.verify(signed, &signature) {
            return Err(VerifyError::BadSignature);
        }

        let claims = decode_object(
            payload_b64,
            "the payload is not base64url",
            "the payload is not a JSON object",
        )?;
        let exp = self.check_claims(&claims, verifier_id, now)?;
        // The token is what the issuer signed; the signature's other valid encoding (ES256 only)
        // is named so that a node can tell which of the two was committed first.
        let other_encodings = key
            .other_signature(&signature)
            .map(|alt| {
                let mut t = Vec::with_capacity(token.len());
                t.extend_from_slice(signed);
                t.push(b'.');
                t.extend_from_slice(URL_SAFE_NO_PAD.encode(alt).as_bytes());
                keccak256(&t)
            })
            .into_iter()
            .collect();
        Ok(TokenFacts {
            token_id: keccak256(signed),
            other_encodings,
            expires_s: exp.saturating_add(self.exp_leeway_s),
        })
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        verifier_id: &str,
        now: u64,
    ) -> Result<u64, VerifyError> {
        match claims.get("iss") {
            None => return Err(VerifyError::MissingClaim { claim: "iss" }),
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(VerifyError::WrongIssuer),
        }
        let audience_ok = match claims.get("aud") {
            None => return Err(VerifyError::MissingClaim { claim: "aud" }),
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => auds
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            Some(_) => return Err(malformed("the aud claim is not a string or an array")),
        };
        if !audience_ok {
            return Err(VerifyError::WrongAudience);
        }
        // OIDC Core 3.1.3.7: with several audiences the token must name us as its authorized
        // party; an azp naming another client is refused whatever the audience.
        let several = matches!(claims.get("aud"), Some(Value::Array(a)) if a.len() > 1);
        match claims.get("azp") {
            None if several => return Err(VerifyError::WrongAuthorizedParty),
            None => {}
            Some(Value::String(azp)) if *azp == self.audience => {}
            Some(_) => return Err(VerifyError::WrongAuthorizedParty),
        }
        let exp = numeric_date(claims, "exp", "the exp claim is not a number")?
            .ok_or(VerifyError::MissingClaim { claim: "exp" })?;
        if exp <= now.saturating_sub(self.exp_leeway_s) {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = numeric_date(claims, "nbf", "the nbf claim is not a number")? {
            if nbf > now.saturating_add(self.exp_leeway_s) {
                return Err(VerifyError::NotYetValid);
            }
        }
        let iat = numeric_date(claims, "iat", "the iat claim is not a number")?
            .ok_or(VerifyError::MissingClaim { claim: "iat" })?;
        if iat > now.saturating_add(self.iat_skew_s) {
            return Err(VerifyError::IssuedInFuture);
        }
        if now.saturating_sub(iat) > self.max_token_age_s {
            return Err(VerifyError::TokenTooOld);
        }
        let claim = match claims.get(&self.verifier_id_claim) {
            Some(Value::String(v)) if !v.is_empty() => v,
            _ => {
                return Err(VerifyError::MissingVerifierIdClaim {
                    claim: self.verifier_id_claim.clone(),
                })
            }
        };
        let is_email = self.verifier_id_claim == "email";
        if is_email {
            // Only an explicit true counts: an issuer that does not vouch for the address does
            // not get to name a key by it.
            let verified = match claims.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            };
            if !verified {
                return Err(VerifyError::EmailNotVerified);
            }
        }
        // E-mail addresses compare without ASCII case only: Unicode case folding would let a
        // different address (say with U+212A KELVIN SIGN for "k") claim another user's id.
        let matches = if is_email {
            claim.eq_ignore_ascii_case(verifier_id)
        } else {
            claim == verifier_id
        };
        if !matches {
            return Err(VerifyError::VerifierIdMismatch);
        }
        Ok(exp)
    }
}
