//! OIDC verifier tests against the development issuer over real HTTP on 127.0.0.1
//! (scenarios E.28 to E.30 of docs/test-scenarios.md).
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac as _;
use serde_json::{json, Map, Value};
use torus_node::verifier::{
    token_is_canonical, DevClaims, DevIssuer, DevIssuerOptions, DevKey, JwksMode, VerifierConfig,
    VerifierConfigError, VerifierKind, VerifierOptions, Verifiers, VerifyError,
};

const AUD: &str = "torus-test-client";
const NAME: &str = "dev-google";
const EMAIL: &str = "Alice@Example.com";
/// The refetch interval of the tests (instead of 10 s).
const REFETCH: Duration = Duration::from_millis(500);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn options() -> VerifierOptions {
    VerifierOptions {
        jwks_refetch_interval: REFETCH,
        ..VerifierOptions::default()
    }
}

async fn issuer() -> DevIssuer {
    DevIssuer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn oidc_config(issuer: &str, jwks_url: &str) -> VerifierConfig {
    VerifierConfig {
        name: NAME.to_owned(),
        kind: VerifierKind::Oidc,
        issuer: Some(issuer.to_owned()),
        jwks_url: Some(jwks_url.to_owned()),
        audience: Some(AUD.to_owned()),
        verifier_id_claim: Some("email".to_owned()),
        max_token_age_s: None,
    }
}

fn verifiers_for(
    issuer: &DevIssuer,
    max_token_age_s: Option<u64>,
    options: VerifierOptions,
) -> Verifiers {
    let config = VerifierConfig {
        max_token_age_s,
        ..oidc_config(&issuer.issuer(), &issuer.jwks_url())
    };
    Verifiers::with_options(&[config], false, options).unwrap()
}

fn item(token: &str, verifier_id: &str) -> Map<String, Value> {
    let v = json!({ "idtoken": token, "verifier_id": verifier_id, "verifieridentifier": NAME, "extra": 1 });
    v.as_object().unwrap().clone()
}

fn claims(now: u64) -> DevClaims {
    DevClaims::new(AUD, now).email(EMAIL).subject("1234567890")
}

async fn ok(v: &Verifiers, token: &str, verifier_id: &str, now: u64) {
    let verified = v.verify(NAME, &item(token, verifier_id), now).await;
    assert_eq!(verified.map(|v| v.verifier_id), Ok(verifier_id.to_owned()));
}

/// Asserts the exact error, and that its text does not leak the token.
async fn refused(v: &Verifiers, token: &str, verifier_id: &str, now: u64, expected: VerifyError) {
    let err = v
        .verify(NAME, &item(token, verifier_id), now)
        .await
        .unwrap_err();
    assert_eq!(err, expected, "token refused with the wrong error");
    let text = err.to_string();
    assert!(
        !text.contains(token.trim()),
        "the error text contains the token"
    );
    for segment in token.split('.').filter(|s| s.len() > 8) {
        assert!(
            !text.contains(segment),
            "the error text contains a token segment"
        );
    }
}

fn encode_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// One sample of every variant; the match makes this fail to compile when a variant is added.
fn all_variants() -> Vec<VerifyError> {
    let all = vec![
        VerifyError::UnknownVerifier,
        VerifyError::MissingField { field: "idtoken" },
        VerifyError::InvalidField { field: "idtoken" },
        VerifyError::NonCanonicalToken,
        VerifyError::MalformedToken {
            reason: "the header is not base64url",
        },
        VerifyError::UnsupportedAlgorithm {
            alg: "HS256".into(),
        },
        VerifyError::MissingKid,
        VerifyError::UnknownKid,
        VerifyError::BadSignature,
        VerifyError::MissingClaim { claim: "exp" },
        VerifyError::WrongIssuer,
        VerifyError::WrongAudience,
        VerifyError::WrongAuthorizedParty,
        VerifyError::Expired,
        VerifyError::NotYetValid,
        VerifyError::IssuedInFuture,
        VerifyError::TokenTooOld,
        VerifyError::MissingVerifierIdClaim {
            claim: "email".into(),
        },
        VerifyError::EmailNotVerified,
        VerifyError::VerifierIdMismatch,
        VerifyError::JwksUnavailable {
            reason: "HTTP status 503".into(),
        },
        VerifyError::TestTokenMismatch,
    ];
    for e in &all {
        match e {
            VerifyError::UnknownVerifier
            | VerifyError::MissingField { .. }
            | VerifyError::InvalidField { .. }
            | VerifyError::NonCanonicalToken
            | VerifyError::MalformedToken { .. }
            | VerifyError::UnsupportedAlgorithm { .. }
            | VerifyError::MissingKid
            | VerifyError::UnknownKid
            | VerifyError::BadSignature
            | VerifyError::MissingClaim { .. }
            | VerifyError::WrongIssuer
            | VerifyError::WrongAudience
            | VerifyError::WrongAuthorizedParty
            | VerifyError::Expired
            | VerifyError::NotYetValid
            | VerifyError::IssuedInFuture
            | VerifyError::TokenTooOld
            | VerifyError::MissingVerifierIdClaim { .. }
            | VerifyError::EmailNotVerified
            | VerifyError::VerifierIdMismatch
            | VerifyError::JwksUnavailable { .. }
            | VerifyError::TestTokenMismatch => {}
        }
    }
    all
}

#[test]
fn display_strings_and_codes_are_pairwise_distinct() {
    let all = all_variants();
    let texts: BTreeSet<String> = all.iter().map(ToString::to_string).collect();
    let codes: BTreeSet<&str> = all.iter().map(VerifyError::code).collect();
    assert_eq!(
        texts.len(),
        all.len(),
        "Display strings are not pairwise distinct: {texts:?}"
    );
    assert_eq!(
        codes.len(),
        all.len(),
        "codes are not pairwise distinct: {codes:?}"
    );
    for code in codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code} is not snake_case"
        );
    }
    // Texts are the same whatever the variant's data, apart from the data itself.
    assert_eq!(VerifyError::Expired.to_string(), "token expired");
    assert_eq!(VerifyError::Expired.code(), "expired");
    assert!(VerifyError::JwksUnavailable { reason: "x".into() }.is_transient());
    assert!(!VerifyError::BadSignature.is_transient());
}

#[tokio::test]
async fn valid_token_yields_verifier_id() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    assert!(v.contains(NAME));
    assert_eq!(v.names(), vec![NAME.to_owned()]);
    let now = now();
    let token = iss.mint(&claims(now));
    assert!(token_is_canonical(&token));
    ok(&v, &token, EMAIL, now).await;
    // The claim `email` is compared case-insensitively; the item's spelling is returned.
    ok(&v, &token, "alice@example.COM", now).await;
    // One fetch, then the cache.
    assert_eq!(iss.jwks_hits(), 1);

    // The discovery document points at the JWKS.
    let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", iss.issuer()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], json!(iss.issuer()));
    assert_eq!(doc["jwks_uri"], json!(iss.jwks_url()));
}

#[tokio::test]
async fn rs256_and_es256_both_verified() {
    let iss = DevIssuer::start_with_rsa("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let es = iss.mint(&claims(now));
    let rs = iss.mint_rs256(&claims(now)).unwrap();
    let es_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(es.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let rs_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(rs.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(es_header["alg"], "ES256");
    assert_eq!(rs_header["alg"], "RS256");
    ok(&v, &es, EMAIL, now).await;
    ok(&v, &rs, EMAIL, now).await;
    assert_eq!(iss.jwks_hits(), 1);

    // A token whose header claims RS256 but names the ES256 key: the key is for another
    // algorithm, so the signature cannot be valid.
    let mut header = Map::new();
    header.insert("alg".into(), json!("RS256"));
    header.insert("kid".into(), json!(iss.kid()));
    let confused = iss
        .signing_key()
        .sign_with_header(&header, &claims(now).to_map(&iss.issuer()));
    refused(&v, &confused, EMAIL, now, VerifyError::BadSignature).await;

    // An ES256 issuer has no RSA key to mint with.
    let plain = issuer().await;
    assert!(plain.mint_rs256(&claims(now)).is_err());
}

#[tokio::test]
async fn expired_token_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let expired = iss.mint(&claims(now - 7200).exp(Some(now - 61)));
    refused(&v, &expired, EMAIL, now, VerifyError::Expired).await;
    // exp <= now - leeway is expired; within the 60 s leeway it is not.
    let at_leeway = iss.mint(&claims(now - 7200).exp(Some(now - 60)));
    refused(&v, &at_leeway, EMAIL, now, VerifyError::Expired).await;
    let within = iss.mint(&claims(now - 300).exp(Some(now - 59)));
    ok(&v, &within, EMAIL, now).await;
    let no_exp = iss.mint(&claims(now).exp(None));
    refused(
        &v,
        &no_exp,
        EMAIL,
        now,
        VerifyError::MissingClaim { claim: "exp" },
    )
    .await;
    let no_iat = iss.mint(&claims(now).iat(None));
    refused(
        &v,
        &no_iat,
        EMAIL,
        now,
        VerifyError::MissingClaim { claim: "iat" },
    )
    .await;
    let not_before = iss.mint(&claims(now).claim("nbf", json!(now + 120)));
    refused(&v, &not_before, EMAIL, now, VerifyError::NotYetValid).await;
}

#[tokio::test]
async fn wrong_audience_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let wrong = iss.mint(&claims(now).aud(json!("someone-else")));
    refused(&v, &wrong, EMAIL, now, VerifyError::WrongAudience).await;
    let wrong_array = iss.mint(&claims(now).aud(json!(["a", "b"])));
    refused(&v, &wrong_array, EMAIL, now, VerifyError::WrongAudience).await;
    let array = iss.mint(&claims(now).aud(json!(["other", AUD])));
    ok(&v, &array, EMAIL, now).await;
    let missing = iss.mint(&claims(now).aud(Value::Null));
    refused(
        &v,
        &missing,
        EMAIL,
        now,
        VerifyError::MissingClaim { claim: "aud" },
    )
    .await;
}

#[tokio::test]
async fn wrong_issuer_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let wrong = iss.mint(&claims(now).iss("https://accounts.example.org"));
    refused(&v, &wrong, EMAIL, now, VerifyError::WrongIssuer).await;
    // A trailing slash is a different issuer.
    let slash = iss.mint(&claims(now).iss(format!("{}/", iss.issuer())));
    refused(&v, &slash, EMAIL, now, VerifyError::WrongIssuer).await;
}

#[tokio::test]
async fn bad_signature_with_same_kid_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let rogue = DevKey::es256().with_kid(iss.kid());
    let forged = rogue.mint(&claims(now), &iss.issuer());
    refused(&v, &forged, EMAIL, now, VerifyError::BadSignature).await;

    // A genuine token with its payload swapped for another user's.
    let genuine = iss.mint(&claims(now));
    let other_payload = encode_json(&Value::Object(
        claims(now)
            .email("mallory@example.com")
            .to_map(&iss.issuer()),
    ));
    let parts: Vec<&str> = genuine.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    refused(
        &v,
        &spliced,
        "mallory@example.com",
        now,
        VerifyError::BadSignature,
    )
    .await;

    // A header with different case (or re-encoded) no longer matches the signature.
    let header = encode_json(&json!({ "alg": "ES256", "kid": iss.kid(), "typ": "jwt" }));
    let recased = format!("{}.{}.{}", header, parts[1], parts[2]);
    refused(&v, &recased, EMAIL, now, VerifyError::BadSignature).await;
}

#[tokio::test]
async fn unknown_kid_then_rotation_with_rate_limited_refetch() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let old_token = iss.mint(&claims(now));
    ok(&v, &old_token, EMAIL, now).await;
    assert_eq!(iss.jwks_hits(), 1);

    // A token signed with a key the JWKS does not serve yet.
    let next = DevKey::es256();
    let next_token = next.mint(&claims(now), &iss.issuer());
    tokio::time::sleep(REFETCH + Duration::from_millis(50)).await;
    refused(&v, &next_token, EMAIL, now, VerifyError::UnknownKid).await;
    assert_eq!(iss.jwks_hits(), 2, "an unknown kid triggers one refetch");
    refused(&v, &next_token, EMAIL, now, VerifyError::UnknownKid).await;
    assert_eq!(iss.jwks_hits(), 2, "refetches are rate limited");

    // The issuer rotates (keeping the old key); within the interval the node still refuses.
    iss.rotate_to(next.clone(), true);
    refused(&v, &next_token, EMAIL, now, VerifyError::UnknownKid).await;
    assert_eq!(iss.jwks_hits(), 2);

    // After the interval the refetch picks the new key up; the old key still verifies.
    tokio::time::sleep(REFETCH + Duration::from_millis(50)).await;
    ok(&v, &next_token, EMAIL, now).await;
    assert_eq!(iss.jwks_hits(), 3);
    ok(&v, &old_token, EMAIL, now).await;
    ok(&v, &iss.mint(&claims(now)), EMAIL, now).await;
    assert_eq!(iss.jwks_hits(), 3);

    // Rotation without keeping the old key: concurrent requests with the new kid share one fetch.
    let kid = iss.rotate(false);
    assert_eq!(iss.kid(), kid);
    assert_eq!(iss.jwks()["keys"].as_array().unwrap().len(), 1);
    let newest = iss.mint(&claims(now));
    tokio::time::sleep(REFETCH + Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let v = v.clone();
            let newest = newest.clone();
            tokio::spawn(async move {
                v.verify(NAME, &item(&newest, EMAIL), now)
                    .await
                    .map(|v| v.verifier_id)
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(EMAIL.to_owned()));
    }
    assert_eq!(iss.jwks_hits(), 4, "concurrent refetches share one fetch");
}

#[tokio::test]
async fn several_keys_need_a_kid() {
    let iss = issuer().await;
    iss.rotate(true);
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let mut header = Map::new();
    header.insert("alg".into(), json!("ES256"));
    let no_kid = iss
        .signing_key()
        .sign_with_header(&header, &claims(now).to_map(&iss.issuer()));
    refused(&v, &no_kid, EMAIL, now, VerifyError::MissingKid).await;

    // With a single key in the JWKS, no kid is needed.
    let single = issuer().await;
    let v = verifiers_for(&single, None, options());
    let no_kid = single
        .signing_key()
        .sign_with_header(&header, &claims(now).to_map(&single.issuer()));
    ok(&v, &no_kid, EMAIL, now).await;
}

#[tokio::test]
async fn non_canonical_tokens_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let token = iss.mint(&claims(now));
    for variant in [
        format!(" {token}"),
        format!("{token} "),
        format!("{token}\n"),
        format!("\t{token}"),
        format!("{token}="),
        format!("{token}=="),
        token.replacen('.', "=.", 1),
        token.replace('-', "+").replace('_', "/"),
        format!("{token}.extra"),
    ] {
        if variant == token {
            continue;
        }
        assert!(
            !token_is_canonical(&variant),
            "{variant:?} counted as canonical"
        );
        refused(&v, &variant, EMAIL, now, VerifyError::NonCanonicalToken).await;
    }
    // Non-canonical trailing bits in a segment (an alternative base64 form of the same bytes).
    let parts: Vec<&str> = token.split('.').collect();
    let sig = parts[2];
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let pos = alphabet.find(last).unwrap();
    // 64-byte signature: 86 characters, the last one carries 2 bits and 4 unused ones.
    let altered = alphabet.chars().nth(pos ^ 1).unwrap();
    let alt = format!(
        "{}.{}.{}{}",
        parts[0],
        parts[1],
        &sig[..sig.len() - 1],
        altered
    );
    assert!(token_is_canonical(&alt));
    refused(
        &v,
        &alt,
        EMAIL,
        now,
        VerifyError::MalformedToken {
            reason: "the signature is not base64url",
        },
    )
    .await;
    ok(&v, &token, EMAIL, now).await;
}

#[tokio::test]
async fn alg_none_and_hs256_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let payload = encode_json(&Value::Object(claims(now).to_map(&iss.issuer())));

    let none = format!(
        "{}.{}.",
        encode_json(&json!({ "alg": "none", "typ": "JWT" })),
        payload
    );
    refused(
        &v,
        &none,
        EMAIL,
        now,
        VerifyError::UnsupportedAlgorithm { alg: "none".into() },
    )
    .await;

    // HS256 keyed with the issuer's public key (the classic key-confusion attack).
    let header = encode_json(&json!({ "alg": "HS256", "kid": iss.kid(), "typ": "JWT" }));
    let jwk = iss.jwks()["keys"][0].clone();
    let secret = jwk.to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let hs = format!("{header}.{payload}.{sig}");
    refused(
        &v,
        &hs,
        EMAIL,
        now,
        VerifyError::UnsupportedAlgorithm {
            alg: "HS256".into(),
        },
    )
    .await;

    for alg in ["HS384", "HS512", "RS512", "PS256", "ES384", "EdDSA"] {
        let header = encode_json(&json!({ "alg": alg, "kid": iss.kid() }));
        let t = format!("{header}.{payload}.{sig}");
        refused(
            &v,
            &t,
            EMAIL,
            now,
            VerifyError::UnsupportedAlgorithm { alg: alg.into() },
        )
        .await;
    }
    // Garbage headers are malformed, not a crash.
    let garbage = format!("{}.{}.{}", encode_json(&json!([1, 2])), payload, sig);
    refused(
        &v,
        &garbage,
        EMAIL,
        now,
        VerifyError::MalformedToken {
            reason: "the header is not a JSON object",
        },
    )
    .await;
    let no_alg = format!(
        "{}.{}.{}",
        encode_json(&json!({ "kid": "x" })),
        payload,
        sig
    );
    refused(
        &v,
        &no_alg,
        EMAIL,
        now,
        VerifyError::MalformedToken {
            reason: "the header has no alg",
        },
    )
    .await;
    // No JWKS fetch was needed to refuse any of these.
    assert_eq!(iss.jwks_hits(), 0);
}

#[tokio::test]
async fn iat_in_the_future_refused() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let future = iss.mint(&claims(now + 61));
    refused(&v, &future, EMAIL, now, VerifyError::IssuedInFuture).await;
    // Up to 60 s of clock skew is tolerated.
    let skewed = iss.mint(&claims(now + 60));
    ok(&v, &skewed, EMAIL, now).await;
}

#[tokio::test]
async fn max_token_age_enforced() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, Some(60), options());
    let now = now();
    let old = iss.mint(&claims(now - 61));
    refused(&v, &old, EMAIL, now, VerifyError::TokenTooOld).await;
    let fresh = iss.mint(&claims(now - 60));
    ok(&v, &fresh, EMAIL, now).await;
    // Without max_token_age_s the default applies: an unexpired token older than it is refused.
    let default = verifiers_for(&iss, None, options());
    ok(&default, &old, EMAIL, now).await;
    let max = torus_node::verifier::DEFAULT_MAX_TOKEN_AGE_S;
    let stale = iss.mint(&claims(now - max - 1));
    refused(&default, &stale, EMAIL, now, VerifyError::TokenTooOld).await;
    let at_default = iss.mint(&claims(now - max));
    ok(&default, &at_default, EMAIL, now).await;
    // An operator may allow older tokens explicitly.
    let lax = verifiers_for(&iss, Some(3 * max), options());
    ok(&lax, &stale, EMAIL, now).await;
}

#[tokio::test]
async fn verifier_id_claim_checks() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let token = iss.mint(&claims(now));
    refused(
        &v,
        &token,
        "bob@example.com",
        now,
        VerifyError::VerifierIdMismatch,
    )
    .await;
    let no_email = iss.mint(&DevClaims::new(AUD, now).subject("42"));
    refused(
        &v,
        &no_email,
        EMAIL,
        now,
        VerifyError::MissingVerifierIdClaim {
            claim: "email".into(),
        },
    )
    .await;
    let unverified = iss.mint(&claims(now).claim("email_verified", json!(false)));
    refused(&v, &unverified, EMAIL, now, VerifyError::EmailNotVerified).await;
    // Only an explicit true vouches for the address: absent, "false" or other values do not.
    let mut no_flag = claims(now).to_map(&iss.issuer());
    no_flag.remove("email_verified");
    let no_flag = iss.signing_key().sign_claims(&no_flag);
    refused(&v, &no_flag, EMAIL, now, VerifyError::EmailNotVerified).await;
    for flag in [json!("false"), json!(1), json!("yes")] {
        let t = iss.mint(&claims(now).claim("email_verified", flag));
        refused(&v, &t, EMAIL, now, VerifyError::EmailNotVerified).await;
    }
    ok(
        &v,
        &iss.mint(&claims(now).claim("email_verified", json!("true"))),
        EMAIL,
        now,
    )
    .await;

    // With the claim `sub`, the comparison is exact.
    let config = VerifierConfig {
        verifier_id_claim: Some("sub".into()),
        ..oidc_config(&iss.issuer(), &iss.jwks_url())
    };
    let by_sub = Verifiers::with_options(&[config], false, options()).unwrap();
    let token = iss.mint(&DevClaims::new(AUD, now).subject("User-42"));
    ok(&by_sub, &token, "User-42", now).await;
    refused(
        &by_sub,
        &token,
        "user-42",
        now,
        VerifyError::VerifierIdMismatch,
    )
    .await;
}

#[tokio::test]
async fn item_field_errors() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let token = iss.mint(&claims(now));
    let err = v
        .verify("no-such-verifier", &item(&token, EMAIL), now)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownVerifier);
    let mut it = item(&token, EMAIL);
    it.remove("idtoken");
    assert_eq!(
        v.verify(NAME, &it, now).await.unwrap_err(),
        VerifyError::MissingField { field: "idtoken" }
    );
    let mut it = item(&token, EMAIL);
    it.remove("verifier_id");
    assert_eq!(
        v.verify(NAME, &it, now).await.unwrap_err(),
        VerifyError::MissingField {
            field: "verifier_id"
        }
    );
    let mut it = item(&token, EMAIL);
    it.insert("verifier_id".into(), json!(42));
    assert_eq!(
        v.verify(NAME, &it, now).await.unwrap_err(),
        VerifyError::InvalidField {
            field: "verifier_id"
        }
    );
    let mut it = item(&token, EMAIL);
    it.insert("idtoken".into(), json!(""));
    assert_eq!(
        v.verify(NAME, &it, now).await.unwrap_err(),
        VerifyError::InvalidField { field: "idtoken" }
    );
    let huge = "a".repeat(20_000);
    refused(
        &v,
        &huge,
        EMAIL,
        now,
        VerifyError::MalformedToken {
            reason: "the token is too long",
        },
    )
    .await;
}

#[tokio::test]
async fn jwks_endpoint_down_gives_jwks_unavailable() {
    let iss = issuer().await;
    let now = now();
    let token = iss.mint(&claims(now));

    // HTTP error; the failure is rate limited too, then the node recovers.
    iss.set_jwks_mode(JwksMode::Fail(503));
    let v = verifiers_for(&iss, None, options());
    let down = VerifyError::JwksUnavailable {
        reason: "HTTP status 503".into(),
    };
    refused(&v, &token, EMAIL, now, down.clone()).await;
    refused(&v, &token, EMAIL, now, down).await;
    assert_eq!(iss.jwks_hits(), 1);
    iss.set_jwks_mode(JwksMode::Serve);
    tokio::time::sleep(REFETCH + Duration::from_millis(50)).await;
    ok(&v, &token, EMAIL, now).await;
    assert_eq!(iss.jwks_hits(), 2);

    // With a cached key set the node keeps verifying while the issuer is down, but a new kid
    // cannot be fetched.
    iss.set_jwks_mode(JwksMode::Fail(500));
    ok(&v, &token, EMAIL, now).await;
    let unknown = DevKey::es256().mint(&claims(now), &iss.issuer());
    tokio::time::sleep(REFETCH + Duration::from_millis(50)).await;
    refused(
        &v,
        &unknown,
        EMAIL,
        now,
        VerifyError::JwksUnavailable {
            reason: "HTTP status 500".into(),
        },
    )
    .await;

    // Not JSON.
    iss.set_jwks_mode(JwksMode::Garbage);
    let v = verifiers_for(&iss, None, options());
    let garbage = VerifyError::JwksUnavailable {
        reason: "the key set is not valid JSON".into(),
    };
    refused(&v, &token, EMAIL, now, garbage).await;

    // Timeout.
    iss.set_jwks_mode(JwksMode::Delay(Duration::from_secs(3)));
    let fast = VerifierOptions {
        http_timeout: Duration::from_millis(200),
        ..options()
    };
    let v = verifiers_for(&iss, None, fast);
    let timeout = VerifyError::JwksUnavailable {
        reason: "request timed out".into(),
    };
    refused(&v, &token, EMAIL, now, timeout).await;

    // Nobody listening.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let config = oidc_config(&iss.issuer(), &url);
    let v = Verifiers::with_options(&[config], false, options()).unwrap();
    let refused_conn = VerifyError::JwksUnavailable {
        reason: "connection failed".into(),
    };
    refused(&v, &token, EMAIL, now, refused_conn).await;
}

#[tokio::test]
async fn jwks_with_unsupported_keys_is_usable() {
    // A JWKS served by hand: unsupported entries are skipped.
    let iss = issuer().await;
    let good = iss.jwks()["keys"][0].clone();
    let body = json!({ "keys": [
        { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
        { "kty": "EC", "crv": "P-384", "kid": "p384", "x": "AA", "y": "AA" },
        { "kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "AA" },
        { "kty": "RSA", "kid": "small", "n": "AQAB", "e": "AQAB" },
        { "kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc", "x": good["x"], "y": good["y"] },
        good,
    ]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || async move { axum::Json(body) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let v = Verifiers::with_options(&[oidc_config(&iss.issuer(), &url)], false, options()).unwrap();
    let now = now();
    ok(&v, &iss.mint(&claims(now)), EMAIL, now).await;
}

#[tokio::test]
async fn test_verifier_only_in_dev_mode() {
    let config = VerifierConfig {
        name: "test".into(),
        kind: VerifierKind::Test,
        issuer: None,
        jwks_url: None,
        audience: None,
        verifier_id_claim: None,
        max_token_age_s: None,
    };
    assert_eq!(
        Verifiers::new(std::slice::from_ref(&config), false).unwrap_err(),
        VerifierConfigError::TestVerifierOutsideDevMode {
            verifier: "test".into()
        }
    );
    let v = Verifiers::new(&[config], true).unwrap();
    let item = |v: Value| v.as_object().unwrap().clone();
    let now = now();
    // The verifier id is `id`, or `verifier_id` when `id` is absent.
    let both = item(
        json!({ "idtoken": "blublu", "verifier_id": "vid", "id": "the-id", "verifieridentifier": "test" }),
    );
    assert_eq!(
        v.verify("test", &both, now).await.unwrap().verifier_id,
        "the-id"
    );
    let only_vid = item(json!({ "idtoken": "blublu", "verifier_id": "vid" }));
    assert_eq!(
        v.verify("test", &only_vid, now).await.unwrap().verifier_id,
        "vid"
    );
    let wrong = item(json!({ "idtoken": "blublo", "id": "x" }));
    assert_eq!(
        v.verify("test", &wrong, now).await.unwrap_err(),
        VerifyError::TestTokenMismatch
    );
    let spaced = item(json!({ "idtoken": "blublu ", "id": "x" }));
    assert_eq!(
        v.verify("test", &spaced, now).await.unwrap_err(),
        VerifyError::NonCanonicalToken
    );
    let none = item(json!({ "idtoken": "blublu" }));
    assert_eq!(
        v.verify("test", &none, now).await.unwrap_err(),
        VerifyError::MissingField {
            field: "verifier_id"
        }
    );
}

#[derive(serde::Deserialize)]
struct NodeConfig {
    verifiers: Vec<VerifierConfig>,
}

#[test]
fn config_validation_errors() {
    let good = oidc_config(
        "https://accounts.google.com",
        "https://www.googleapis.com/oauth2/v3/certs",
    );
    good.validate(false).unwrap();

    // From TOML, as in the node configuration.
    let parsed: NodeConfig = toml::from_str(
        r#"
        [[verifiers]]
        name = "dev-google"
        kind = "oidc"
        issuer = "https://accounts.google.com"
        jwks_url = "https://www.googleapis.com/oauth2/v3/certs"
        audience = "torus-test-client"
        verifier_id_claim = "email"
        "#,
    )
    .unwrap();
    assert_eq!(
        parsed.verifiers,
        vec![VerifierConfig {
            name: NAME.into(),
            ..good.clone()
        }]
    );

    let unknown_kind =
        toml::from_str::<NodeConfig>("[[verifiers]]\nname = \"x\"\nkind = \"ldap\"\n")
            .err()
            .unwrap();
    let text = unknown_kind.to_string();
    assert!(
        text.contains("unknown variant `ldap`") && text.contains("oidc") && text.contains("test"),
        "{text}"
    );
    let unknown_field = toml::from_str::<NodeConfig>(
        "[[verifiers]]\nname = \"x\"\nkind = \"oidc\"\nclient = \"y\"\n",
    )
    .err()
    .unwrap();
    assert!(
        unknown_field.to_string().contains("unknown field `client`"),
        "{unknown_field}"
    );

    let missing = VerifierConfig {
        jwks_url: None,
        ..good.clone()
    };
    assert_eq!(
        missing.validate(false).unwrap_err(),
        VerifierConfigError::MissingField {
            verifier: "dev-google".into(),
            kind: VerifierKind::Oidc,
            field: "jwks_url"
        }
    );
    let no_audience = VerifierConfig {
        audience: Some(" ".into()),
        ..good.clone()
    };
    assert!(matches!(
        no_audience.validate(false),
        Err(VerifierConfigError::MissingField {
            field: "audience",
            ..
        })
    ));
    let ftp = VerifierConfig {
        jwks_url: Some("ftp://example.com/jwks".into()),
        ..good.clone()
    };
    assert!(matches!(
        ftp.validate(false),
        Err(VerifierConfigError::InvalidJwksUrl { .. })
    ));
    let relative = VerifierConfig {
        jwks_url: Some("/jwks.json".into()),
        ..good.clone()
    };
    assert!(matches!(
        relative.validate(false),
        Err(VerifierConfigError::InvalidJwksUrl { .. })
    ));
    let zero_age = VerifierConfig {
        max_token_age_s: Some(0),
        ..good.clone()
    };
    assert!(matches!(
        zero_age.validate(false),
        Err(VerifierConfigError::InvalidMaxTokenAge { .. })
    ));
    for bad in ["", "a b", "é", "x/y"] {
        let named = VerifierConfig {
            name: bad.into(),
            ..good.clone()
        };
        assert_eq!(
            named.validate(true).unwrap_err(),
            VerifierConfigError::InvalidName { name: bad.into() }
        );
    }

    let test = VerifierConfig {
        name: "test".into(),
        kind: VerifierKind::Test,
        issuer: None,
        jwks_url: None,
        audience: None,
        verifier_id_claim: None,
        max_token_age_s: None,
    };
    test.validate(true).unwrap();
    assert_eq!(
        test.validate(false).unwrap_err(),
        VerifierConfigError::TestVerifierOutsideDevMode {
            verifier: "test".into()
        }
    );
    let test_with_issuer = VerifierConfig {
        issuer: Some("x".into()),
        ..test.clone()
    };
    assert!(matches!(
        test_with_issuer.validate(true),
        Err(VerifierConfigError::UnexpectedField {
            field: "issuer",
            ..
        })
    ));

    assert_eq!(
        Verifiers::new(&[good.clone(), good.clone()], false).unwrap_err(),
        VerifierConfigError::DuplicateName { name: NAME.into() }
    );
    let both = Verifiers::new(&[good, test], true).unwrap();
    assert_eq!(both.names(), vec![NAME.to_owned(), "test".to_owned()]);
    assert!(!both.contains("google"));

    // All config error texts are distinct too.
    let texts: BTreeSet<String> = [
        VerifierConfigError::InvalidName { name: "a".into() },
        VerifierConfigError::MissingField {
            verifier: "a".into(),
            kind: VerifierKind::Oidc,
            field: "issuer",
        },
        VerifierConfigError::UnexpectedField {
            verifier: "a".into(),
            kind: VerifierKind::Test,
            field: "issuer",
        },
        VerifierConfigError::InvalidJwksUrl {
            verifier: "a".into(),
            url: "u".into(),
            reason: "r".into(),
        },
        VerifierConfigError::InvalidMaxTokenAge {
            verifier: "a".into(),
        },
        VerifierConfigError::TestVerifierOutsideDevMode {
            verifier: "a".into(),
        },
        VerifierConfigError::DuplicateName { name: "a".into() },
        VerifierConfigError::HttpClient("e".into()),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(texts.len(), 8);
}

#[tokio::test]
async fn dev_issuer_options() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer_options = DevIssuerOptions {
        rsa: false,
        public_url: Some("http://issuer.devnet.local/".into()),
        es256_seed: Some([7u8; 32]),
    };
    let iss = DevIssuer::serve(listener, issuer_options.clone())
        .await
        .unwrap();
    assert_eq!(iss.issuer(), "http://issuer.devnet.local");
    assert_eq!(iss.jwks_url(), "http://issuer.devnet.local/jwks.json");
    // The same seed gives the same key and kid.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = DevIssuer::serve(listener, issuer_options).await.unwrap();
    assert_eq!(iss.kid(), again.kid());
    assert_eq!(iss.jwks(), again.jwks());
    assert!(iss.kid().starts_with("es256-"));
    // Tokens verify against a verifier that fetches the JWKS from the bound address.
    let config = VerifierConfig {
        issuer: Some(iss.issuer()),
        ..oidc_config(&iss.issuer(), &format!("http://{}/jwks.json", iss.addr()))
    };
    let v = Verifiers::with_options(&[config], false, options()).unwrap();
    let now = now();
    ok(&v, &iss.mint(&claims(now)), EMAIL, now).await;
}

#[tokio::test]
async fn an_email_that_only_unicode_case_folding_makes_equal_is_another_user() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    // ASCII case is ignored for e-mail addresses...
    let upper = iss.mint(&DevClaims::new(AUD, now).email("Kate@Example.com"));
    ok(&v, &upper, "kate@example.com", now).await;
    // ...but U+212A KELVIN SIGN lower-cases to "k" under Unicode rules: an attacker's address
    // with it must not open the key of "kate@example.com".
    let kelvin = iss.mint(&DevClaims::new(AUD, now).email("\u{212A}ate@example.com"));
    refused(
        &v,
        &kelvin,
        "kate@example.com",
        now,
        VerifyError::VerifierIdMismatch,
    )
    .await;
    let dotless = iss.mint(&DevClaims::new(AUD, now).email("kate@example.\u{0130}o"));
    refused(
        &v,
        &dotless,
        "kate@example.io",
        now,
        VerifyError::VerifierIdMismatch,
    )
    .await;
}

#[tokio::test]
async fn a_token_for_several_audiences_needs_our_client_as_its_authorized_party() {
    let iss = issuer().await;
    let v = verifiers_for(&iss, None, options());
    let now = now();
    let several = claims(now).aud(json!([AUD, "another-app"]));
    refused(
        &v,
        &iss.mint(&several),
        EMAIL,
        now,
        VerifyError::WrongAuthorizedParty,
    )
    .await;
    let theirs = several.clone().claim("azp", json!("another-app"));
    refused(
        &v,
        &iss.mint(&theirs),
        EMAIL,
        now,
        VerifyError::WrongAuthorizedParty,
    )
    .await;
    ok(&v, &iss.mint(&several.claim("azp", json!(AUD))), EMAIL, now).await;
    // One audience: azp is optional, but when present it must be us.
    ok(&v, &iss.mint(&claims(now)), EMAIL, now).await;
    let other_azp = claims(now).claim("azp", json!("another-app"));
    refused(
        &v,
        &iss.mint(&other_azp),
        EMAIL,
        now,
        VerifyError::WrongAuthorizedParty,
    )
    .await;
}

#[tokio::test]
async fn two_verifiers_that_accept_the_same_tokens_are_refused() {
    let iss = issuer().await;
    let a = oidc_config(&iss.issuer(), &iss.jwks_url());
    let b = VerifierConfig {
        name: "second-name".into(),
        ..a.clone()
    };
    let err = Verifiers::with_options(&[a.clone(), b.clone()], false, options()).unwrap_err();
    assert_eq!(
        err,
        VerifierConfigError::SharedIssuerAndAudience {
            first: a.name.clone(),
            second: b.name.clone(),
        }
    );
    // Another audience of the same issuer is another application: allowed.
    let c = VerifierConfig {
        audience: Some("another-app".into()),
        ..b
    };
    Verifiers::with_options(&[a, c], false, options()).unwrap();
}

#[tokio::test]
async fn a_key_set_that_cannot_be_refreshed_is_not_trusted_forever() {
    let iss = issuer().await;
    let now = now();
    let token = iss.mint(&claims(now));
    let short = VerifierOptions {
        jwks_refetch_interval: Duration::from_millis(20),
        jwks_max_age: Duration::from_millis(300),
        jwks_max_stale: Duration::from_millis(1500),
        ..VerifierOptions::default()
    };
    let v = verifiers_for(&iss, None, short);
    ok(&v, &token, EMAIL, now).await;
    // The issuer's JWKS becomes unreachable (or an attacker blocks it): past its maximum age
    // the cached set is still used for a while...
    iss.set_jwks_mode(JwksMode::Fail(503));
    tokio::time::sleep(Duration::from_millis(500)).await;
    ok(&v, &token, EMAIL, now).await;
    // ...but not beyond the stale limit.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    refused(
        &v,
        &token,
        EMAIL,
        now,
        VerifyError::JwksUnavailable {
            reason: "HTTP status 503".into(),
        },
    )
    .await;
    // A successful fetch restores it.
    iss.set_jwks_mode(JwksMode::Serve);
    tokio::time::sleep(Duration::from_millis(50)).await;
    ok(&v, &token, EMAIL, now).await;
}
