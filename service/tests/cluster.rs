//! The legacy client flow against an in-process cluster of 5 node services on
//! 127.0.0.1 (own LMDB and HTTP server each), keys from the engine's DKG, the
//! consensus state machine driven by the mock orderer.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use torus_node::client::{decrypt_share, lagrange_at_zero, Client};
use torus_node::hexfmt::keccak256;
use torus_node::testkit::{Cluster, DEV_AUDIENCE, DEV_VERIFIER};
use torus_node::verifier::{DevClaims, DevKey};

async fn cluster(keys: usize) -> (tempfile::TempDir, Cluster) {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 5, 3, 1).await.unwrap();
    if keys > 0 {
        c.generate_keys(keys, 7).await.unwrap();
    }
    (dir, c)
}

fn now() -> u64 {
    torus_node::node::unix_s()
}

/// Commits with a fresh temporary key and returns (temp key, node signatures).
async fn commit(client: &Client, verifier: &str, token: &str) -> (k256::SecretKey, Vec<Value>) {
    let temp = k256::SecretKey::random(&mut rand_core::OsRng);
    let p = temp.public_key().to_encoded_point(false);
    let answers = client
        .call_all(
            "CommitmentRequest",
            json!({"messageprefix":"mug00","tokencommitment": hex::encode(keccak256(token.as_bytes())),
                   "temppubx": hex::encode(p.x().unwrap()), "temppuby": hex::encode(p.y().unwrap()),
                   "verifieridentifier": verifier}),
        )
        .await;
    let sigs = answers
        .into_iter()
        .map(|a| match a {
            Ok(Ok(v)) => v,
            _ => Value::Null,
        })
        .collect();
    (temp, sigs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_flow_any_k_shares_reconstruct_the_key() {
    let (_d, c) = cluster(8).await;
    let client = c.client().unwrap();
    let email = "alice@example.com";
    let key = client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let token = c.mint(email);
    let login = client
        .retrieve(DEV_VERIFIER, json!({"verifier_id": email}), &token)
        .await
        .unwrap();
    assert_eq!(
        key["pub_key_X"],
        json!(torus_node::hexfmt::hex_min(&login.public_key.0))
    );
    assert_eq!(key["address"], json!(login.address));
    // Every k-subset of the five shares gives the same key; k-1 do not.
    let token3 = c.mint(email);
    let (temp3, sigs3) = commit(&client, DEV_VERIFIER, &token3).await;
    let answers = client
        .call_all(
            "ShareRequest",
            json!({"encrypted":"yes","item":[{"idtoken": token3, "nodesignatures": sigs3,
                    "verifieridentifier": DEV_VERIFIER, "verifier_id": email}]}),
        )
        .await;
    let shares: Vec<(u32, k256::Scalar)> = answers
        .iter()
        .zip(client.endpoints())
        .map(|(a, ep)| {
            let v = a.as_ref().unwrap().as_ref().unwrap();
            (ep.index, decrypt_share(&temp3, &v["keys"][0]).unwrap())
        })
        .collect();
    let want =
        <k256::Scalar as k256::elliptic_curve::PrimeField>::from_repr((*login.private_key).into())
            .unwrap();
    for a in 0..5 {
        for b in a + 1..5 {
            for d in b + 1..5 {
                let sel = [shares[a], shares[b], shares[d]];
                assert_eq!(lagrange_at_zero(&sel).unwrap(), want);
            }
            assert_ne!(lagrange_at_zero(&[shares[a], shares[b]]).unwrap(), want);
            // The same node twice is an error, not a key.
            assert!(lagrange_at_zero(&[shares[a], shares[a], shares[b]]).is_err());
        }
    }
    // KeyLookupRequest finds the owner.
    let kl = client
        .call(
            &client.endpoints()[0],
            "KeyLookupRequest",
            json!({"pub_key_X": key["pub_key_X"], "pub_key_Y": key["pub_key_Y"]}),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kl["Verifiers"], json!({DEV_VERIFIER: [email]}));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_failure_has_its_own_error_and_only_valid_tokens_get_shares() {
    let (_d, c) = cluster(4).await;
    let client = c.client().unwrap();
    let email = "carol@example.com";
    client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let t = now();
    let base = DevClaims::new(DEV_AUDIENCE, t).email(email).subject(email);
    let other_key = DevKey::es256().with_kid(c.issuer.kid());
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            c.issuer
                .mint(&base.clone().iat(Some(t - 7200)).exp(Some(t - 3600))),
        ),
        (
            "audience",
            c.issuer.mint(&base.clone().aud(json!("someone-else"))),
        ),
        (
            "issuer",
            c.issuer.mint(&base.clone().iss("http://127.0.0.1:1/evil")),
        ),
        ("signature", other_key.mint(&base, &c.issuer.issuer())),
        (
            "future",
            c.issuer
                .mint(&base.clone().iat(Some(t + 3600)).exp(Some(t + 7200))),
        ),
        (
            "other user",
            c.issuer
                .mint(&DevClaims::new(DEV_AUDIENCE, t).email("mallory@example.com")),
        ),
    ];
    let mut seen = BTreeSet::new();
    for (what, token) in cases {
        let (_temp, sigs) = commit(&client, DEV_VERIFIER, &token).await;
        let answers = client
            .call_all(
                "ShareRequest",
                json!({"encrypted":"yes","item":[{"idtoken": token, "nodesignatures": sigs,
                        "verifieridentifier": DEV_VERIFIER, "verifier_id": email}]}),
            )
            .await;
        let errs: BTreeSet<String> = answers
            .iter()
            .map(|a| a.as_ref().unwrap().as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(errs.len(), 1, "{what}: nodes disagree: {errs:?}");
        let e = errs.into_iter().next().unwrap();
        assert!(
            e.contains("Error occurred while verifying params"),
            "{what}: {e}"
        );
        assert!(seen.insert(e.clone()), "{what}: error not distinct: {e}");
    }
    // Whitespace around a valid token: refused as non-canonical before verification.
    let good = c.mint(email);
    let padded = format!(" {good}");
    let (_t, sigs) = commit(&client, DEV_VERIFIER, &padded).await;
    let a = client
        .call(
            &client.endpoints()[0],
            "ShareRequest",
            json!({"item":[{"idtoken": padded, "nodesignatures": sigs, "verifieridentifier": DEV_VERIFIER, "verifier_id": email}]}),
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        a["data"]
            .as_str()
            .unwrap()
            .contains("Error when cleaning token"),
        "{a}"
    );
    // The valid token works.
    client
        .retrieve(DEV_VERIFIER, json!({"verifier_id": email}), &good)
        .await
        .unwrap();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_assign_gives_exactly_one_key() {
    let (_d, c) = cluster(6).await;
    let client = c.client().unwrap();
    let params = json!({"verifier": DEV_VERIFIER, "verifier_id": "dave@example.com"});
    let answers = client.call_all("KeyAssign", params.clone()).await;
    let results: BTreeSet<String> = answers
        .iter()
        .map(|a| a.as_ref().unwrap().as_ref().unwrap().to_string())
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    // Again, later: the same key, no new assignment.
    let again = client.call_all("KeyAssign", params.clone()).await;
    for a in again {
        assert_eq!(
            a.unwrap().unwrap().to_string(),
            *results.iter().next().unwrap()
        );
    }
    let lookups = client.call_all("VerifierLookupRequest", params).await;
    let bodies: BTreeSet<String> = lookups
        .iter()
        .map(|a| a.as_ref().unwrap().as_ref().unwrap().to_string())
        .collect();
    assert_eq!(bodies, results);
    let node = c.node(1).unwrap();
    let snap = node.store().snapshot().unwrap();
    assert_eq!(torus_node::app::counters(&snap).unwrap().last_unassigned, 1);
    drop(snap);
    drop(node);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_assignments_shares_and_token_commitments() {
    let (_d, mut c) = cluster(4).await;
    let client = c.client().unwrap();
    let email = "erin@example.com";
    let key = client.get_or_assign(DEV_VERIFIER, email).await.unwrap();
    let token = c.mint(email);
    let (temp, sigs) = commit(&client, DEV_VERIFIER, &token).await;
    let first_answer = sigs[1].clone();
    c.stop_node(2).await.unwrap();
    // While node 2 is down, another user is assigned (it catches up on restart).
    client
        .get_or_assign(DEV_VERIFIER, "frank@example.com")
        .await
        .ok();
    c.start_node(2).await.unwrap();
    let ep = client.endpoints()[1].clone();
    let lk = client
        .call(
            &ep,
            "VerifierLookupRequest",
            json!({"verifier": DEV_VERIFIER, "verifier_id": email}),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lk["keys"][0], key);
    // Same commitment and same temporary key: answered again, identically.
    let p = temp.public_key().to_encoded_point(false);
    let commit_params = json!({"messageprefix":"mug00","tokencommitment": hex::encode(keccak256(token.as_bytes())),
        "temppubx": hex::encode(p.x().unwrap()), "temppuby": hex::encode(p.y().unwrap()), "verifieridentifier": DEV_VERIFIER});
    let again = client
        .call(&ep, "CommitmentRequest", commit_params.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, first_answer);
    // A different temporary key for the same commitment is refused.
    let other = k256::SecretKey::random(&mut rand_core::OsRng)
        .public_key()
        .to_encoded_point(false);
    let mut bad = commit_params.clone();
    bad["temppubx"] = json!(hex::encode(other.x().unwrap()));
    bad["temppuby"] = json!(hex::encode(other.y().unwrap()));
    let e = client
        .call(&ep, "CommitmentRequest", bad)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e,
        json!({"code": -32603, "message": "Internal error", "data": "Duplicate token found"})
    );
    // The restarted node still serves its share (and a retry of the reveal works twice).
    for _ in 0..2 {
        let r = client
            .call(
                &ep,
                "ShareRequest",
                json!({"encrypted":"yes","item":[{"idtoken": token, "nodesignatures": sigs,
                "verifieridentifier": DEV_VERIFIER, "verifier_id": email}]}),
            )
            .await
            .unwrap()
            .unwrap();
        decrypt_share(&temp, &r["keys"][0]).unwrap();
    }
    // Heights and app hashes agree after the catch-up.
    let heads: BTreeSet<_> = (1..=5)
        .map(|i| c.node(i).unwrap().store().head().unwrap())
        .map(|h| (h.height, h.app_hash))
        .collect();
    assert_eq!(heads.len(), 1);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_at_rest_are_not_in_the_lmdb_file_in_plaintext() {
    let (d, c) = cluster(3).await;
    let node = c.node(1).unwrap();
    let mut shares = Vec::new();
    for i in 0..3 {
        let (s, _sp, _) = node.store().share(i).unwrap().unwrap();
        shares.push(*s);
    }
    drop(node);
    c.shutdown().await;
    let raw = std::fs::read(d.path().join("node1/lmdb/data.mdb")).unwrap();
    for s in shares {
        assert!(
            !raw.windows(32).any(|w| w == s),
            "plaintext share found in LMDB file"
        );
        assert!(!raw.windows(16).any(|w| w == &s[..16]));
    }
}
