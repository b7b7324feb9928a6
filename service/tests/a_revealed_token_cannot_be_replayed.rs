//! The token-replay attack family, over real HTTP against an in-process cluster of 5 nodes
//! (own LMDB and HTTP server each, ES256 development issuer): whoever sees a revealed id token
//! (every node does, and so does anything on the path) must not get a share with it, whatever
//! encoding, temporary key or claims they try.

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use torus_node::client::{decrypt_share, Client};
use torus_node::hexfmt::keccak256;
use torus_node::testkit::{Cluster, DEV_AUDIENCE, DEV_VERIFIER};
use torus_node::verifier::DevClaims;

async fn cluster(keys: usize) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 5, 3, 1).await.unwrap();
    c.generate_keys(keys, 7).await.unwrap();
    (dir, c)
}

/// The same signed token with its ES256 signature `(r, s)` rewritten to `(r, n - s)`: another
/// byte string that verifies under the issuer's key.
fn reencoded(token: &str) -> String {
    let (signed, sig_b64) = token.rsplit_once('.').unwrap();
    let sig =
        p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig_b64).unwrap()).unwrap();
    let (r, s) = sig.split_scalars();
    let other = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    let out = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(other.to_bytes()));
    assert_ne!(out, token);
    out
}

/// CommitmentRequest to every node with a fresh temporary key: (temp key, node signatures, how
/// many nodes signed).
async fn commit(client: &Client, token: &str) -> (k256::SecretKey, Vec<Value>, usize) {
    let temp = k256::SecretKey::random(&mut rand_core::OsRng);
    let p = temp.public_key().to_encoded_point(false);
    let answers = client
        .call_all(
            "CommitmentRequest",
            json!({"messageprefix":"mug00","tokencommitment": hex::encode(keccak256(token.as_bytes())),
                   "temppubx": hex::encode(p.x().unwrap()), "temppuby": hex::encode(p.y().unwrap()),
                   "verifieridentifier": DEV_VERIFIER}),
        )
        .await;
    let signed = answers.iter().filter(|a| matches!(a, Ok(Ok(_)))).count();
    let sigs = answers
        .into_iter()
        .map(|a| match a {
            Ok(Ok(v)) => v,
            _ => Value::Null,
        })
        .collect();
    (temp, sigs, signed)
}

/// ShareRequest to every node; the shares that decrypt under `temp`, and the errors.
async fn reveal(
    client: &Client,
    token: &str,
    sigs: &[Value],
    email: &str,
    temp: &k256::SecretKey,
) -> (usize, Vec<String>) {
    let answers = client
        .call_all(
            "ShareRequest",
            json!({"encrypted":"yes","item":[{"idtoken": token, "nodesignatures": sigs,
                    "verifieridentifier": DEV_VERIFIER, "verifier_id": email}]}),
        )
        .await;
    let mut shares = 0;
    let mut errors = Vec::new();
    for a in answers {
        match a {
            Ok(Ok(v)) => {
                decrypt_share(temp, &v["keys"][0]).unwrap();
                shares += 1;
            }
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (shares, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reencoded_token_gets_no_share_after_its_owner_logged_in() {
    let (_d, c) = cluster(4).await;
    let client = c.client().unwrap();
    let email = "alice@example.com";
    client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let token = c.mint(email);
    client
        .retrieve(DEV_VERIFIER, json!({"verifier_id": email}), &token)
        .await
        .unwrap();

    // The thief saw the revealed token. Its other encoding is new bytes, so every node signs a
    // commitment to it under the thief's temporary key...
    let stolen = reencoded(&token);
    let (temp, sigs, signed) = commit(&client, &stolen).await;
    assert_eq!(
        signed, 5,
        "commitments are to hashes: nodes cannot tell yet"
    );
    // ...but no node hands out a share: the token was revealed before.
    let (shares, errors) = reveal(&client, &stolen, &sigs, email, &temp).await;
    assert_eq!(shares, 0, "{errors:?}");
    assert_eq!(errors.len(), 5);
    for e in &errors {
        assert!(e.contains("Duplicate token found"), "{e}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reencoded_token_gets_no_share_even_when_the_thief_reveals_before_the_owner() {
    let (_d, c) = cluster(4).await;
    let client = c.client().unwrap();
    let email = "bob@example.com";
    client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let token = c.mint(email);
    // The owner commits first (a client always commits before it reveals)...
    let (owner_temp, owner_sigs, signed) = commit(&client, &token).await;
    assert_eq!(signed, 5);
    // ...a thief who learnt the token (say from a node, or the owner's first reveal) races:
    // commits the other encoding and reveals it everywhere before the owner does.
    let stolen = reencoded(&token);
    let (temp, sigs, _) = commit(&client, &stolen).await;
    let (shares, errors) = reveal(&client, &stolen, &sigs, email, &temp).await;
    assert_eq!(shares, 0, "{errors:?}");
    for e in &errors {
        assert!(
            e.contains("another encoding of this token was committed first"),
            "{e}"
        );
    }
    // The owner still gets every share.
    let (shares, errors) = reveal(&client, &token, &owner_sigs, email, &owner_temp).await;
    assert_eq!(shares, 5, "{errors:?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_token_gets_no_share_under_another_temporary_key() {
    let (_d, c) = cluster(4).await;
    let client = c.client().unwrap();
    let email = "carol@example.com";
    client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let token = c.mint(email);
    let (owner_temp, owner_sigs, _) = commit(&client, &token).await;
    let (shares, _) = reveal(&client, &token, &owner_sigs, email, &owner_temp).await;
    assert_eq!(shares, 5);
    // A retry of the owner's own request is answered again (clients retry).
    let (shares, errors) = reveal(&client, &token, &owner_sigs, email, &owner_temp).await;
    assert_eq!(shares, 5, "{errors:?}");
    // The same bytes under a thief's key: no node signs a second commitment.
    let (_temp, _sigs, signed) = commit(&client, &token).await;
    assert_eq!(signed, 0);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_altered_tokens_get_no_share_from_any_node() {
    let (_d, c) = cluster(4).await;
    let client = c.client().unwrap();
    let email = "dave@example.com";
    client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let t = torus_node::node::unix_s();
    let claims = DevClaims::new(DEV_AUDIENCE, t).email(email).subject(email);
    let payload = b64(&Value::Object(claims.to_map(&c.issuer.issuer())));
    let good = c.mint(email);
    let (header, rest) = good.split_once('.').unwrap();
    let sig = rest.rsplit_once('.').unwrap().1;
    let jwk = c.issuer.jwks()["keys"][0].to_string();
    let hs256 = {
        use hmac::Mac as _;
        let h = b64(&json!({"alg": "HS256", "kid": c.issuer.kid(), "typ": "JWT"}));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(jwk.as_bytes()).unwrap();
        mac.update(format!("{h}.{payload}").as_bytes());
        format!(
            "{h}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT"}))),
        ),
        ("HS256 keyed with the public key", hs256),
        (
            "the payload swapped under a valid signature",
            format!("{header}.{payload}.{sig}"),
        ),
        ("padding", format!("{good}=")),
        ("a trailing newline", format!("{good}\n")),
        (
            "standard base64",
            good.replacen('-', "+", 1).replacen('_', "/", 1),
        ),
        (
            "expired",
            c.issuer
                .mint(&claims.clone().iat(Some(t - 7200)).exp(Some(t - 3600))),
        ),
        (
            "older than the default maximum age",
            c.issuer.mint(&claims.clone().iat(Some(t - 3600))),
        ),
        (
            "another audience",
            c.issuer.mint(&claims.clone().aud(json!("other-app"))),
        ),
        (
            "a foreign key under the issuer's kid",
            torus_node::verifier::DevKey::es256()
                .with_kid(c.issuer.kid())
                .mint(&claims, &c.issuer.issuer()),
        ),
        (
            "another user's token",
            c.issuer
                .mint(&DevClaims::new(DEV_AUDIENCE, t).email("mallory@example.com")),
        ),
    ];
    for (what, token) in cases {
        if token == good {
            continue;
        }
        let (temp, sigs, _) = commit(&client, &token).await;
        let (shares, errors) = reveal(&client, &token, &sigs, email, &temp).await;
        assert_eq!(shares, 0, "{what}: a node handed out a share ({errors:?})");
    }
    // The untouched token still works: nothing above burnt it.
    client
        .retrieve(DEV_VERIFIER, json!({"verifier_id": email}), &good)
        .await
        .unwrap();
    c.shutdown().await;
}
