//! Pins the JSON of every RPC response and error (dynamic values masked), and
//! checks that lookup results and errors are byte-identical across 5 nodes.
//!
//! Regenerate deliberately with `TORUS_UPDATE_SNAPSHOTS=1 cargo test -p torus-node --test rpc_snapshots`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Map, Value};
use torus_node::hexfmt::keccak256;
use torus_node::testkit::{Cluster, DEV_VERIFIER};

/// Fields whose values differ per run (keys, signatures, ciphertexts, timestamps).
const DYNAMIC: &[&str] = &[
    "pub_key_X",
    "pub_key_Y",
    "address",
    "X",
    "Y",
    "signature",
    "data",
    "nodepubx",
    "nodepuby",
    "Share",
    "iv",
    "ephemPublicKey",
    "mac",
    "message",
];

fn mask(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let keep_error_data = m.contains_key("code");
                if DYNAMIC.contains(&k.as_str()) && !(keep_error_data && k == "data") {
                    out.insert(k.clone(), json!(format!("<{}>", kind(x))));
                } else {
                    out.insert(k.clone(), mask(x));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(mask).collect()),
        x => x.clone(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::String(s) if s.len() == 130 => "sig130",
        Value::String(s) if s.starts_with("0x") => "address",
        Value::String(_) => "string",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_json_is_pinned_and_identical_across_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 5, 3, 1).await.unwrap();
    c.generate_keys(4, 11).await.unwrap();
    let client = c.client().unwrap();
    let eps = client.endpoints().to_vec();
    let mut snap = Map::new();

    // Raw bodies of a call at every node; asserts they are byte-identical.
    async fn same_everywhere(
        client: &torus_node::client::Client,
        method: &str,
        params: Value,
    ) -> Value {
        let mut bodies = BTreeSet::new();
        for ep in client.endpoints() {
            let (status, body) = client.call_raw(ep, method, params.clone()).await.unwrap();
            assert_eq!(status, 200);
            bodies.insert(body);
        }
        assert_eq!(
            bodies.len(),
            1,
            "{method}: answers differ across nodes: {bodies:?}"
        );
        serde_json::from_str(bodies.iter().next().unwrap()).unwrap()
    }

    let user = json!({"verifier": DEV_VERIFIER, "verifier_id": "grace@example.com"});
    snap.insert(
        "lookup_unassigned".into(),
        same_everywhere(&client, "VerifierLookupRequest", user.clone()).await,
    );
    snap.insert(
        "lookup_empty_id".into(),
        same_everywhere(
            &client,
            "VerifierLookupRequest",
            json!({"verifier": DEV_VERIFIER, "verifier_id": ""}),
        )
        .await,
    );
    snap.insert(
        "lookup_unknown_verifier".into(),
        same_everywhere(
            &client,
            "VerifierLookupRequest",
            json!({"verifier": "nope", "verifier_id": "x"}),
        )
        .await,
    );
    let (_, ka) = client
        .call_raw(&eps[2], "KeyAssign", user.clone())
        .await
        .unwrap();
    snap.insert(
        "key_assign".into(),
        mask(&serde_json::from_str(&ka).unwrap()),
    );
    let lk = same_everywhere(&client, "VerifierLookupRequest", user.clone()).await;
    assert_eq!(
        lk,
        serde_json::from_str::<Value>(&ka).unwrap(),
        "KeyAssign and lookup differ"
    );
    snap.insert("lookup_assigned".into(), mask(&lk));
    let key = lk["result"]["keys"][0].clone();
    snap.insert(
        "key_lookup".into(),
        mask(
            &same_everywhere(
                &client,
                "KeyLookupRequest",
                json!({"pub_key_X": key["pub_key_X"], "pub_key_Y": key["pub_key_Y"]}),
            )
            .await,
        ),
    );
    snap.insert(
        "key_lookup_empty".into(),
        same_everywhere(
            &client,
            "KeyLookupRequest",
            json!({"pub_key_X": "", "pub_key_Y": ""}),
        )
        .await,
    );
    snap.insert(
        "key_lookup_unknown".into(),
        same_everywhere(
            &client,
            "KeyLookupRequest",
            json!({"pub_key_X": "1", "pub_key_Y": "2"}),
        )
        .await,
    );

    // Commit-reveal.
    let token = c.mint("grace@example.com");
    let temp = k256::SecretKey::random(&mut rand_core::OsRng);
    let p = temp.public_key().to_encoded_point(false);
    let commit = json!({"messageprefix":"mug00","tokencommitment": hex::encode(keccak256(token.as_bytes())),
        "temppubx": hex::encode(p.x().unwrap()), "temppuby": hex::encode(p.y().unwrap()), "verifieridentifier": DEV_VERIFIER});
    let mut sigs = Vec::new();
    for ep in &eps {
        let (_, b) = client
            .call_raw(ep, "CommitmentRequest", commit.clone())
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&b).unwrap();
        sigs.push(v["result"].clone());
        snap.insert("commitment".into(), mask(&v));
    }
    let mut bad = commit.clone();
    bad["messageprefix"] = json!("mug01");
    snap.insert(
        "commitment_bad_prefix".into(),
        same_everywhere(&client, "CommitmentRequest", bad).await,
    );
    let mut dup = commit.clone();
    let q = k256::SecretKey::random(&mut rand_core::OsRng)
        .public_key()
        .to_encoded_point(false);
    dup["temppubx"] = json!(hex::encode(q.x().unwrap()));
    dup["temppuby"] = json!(hex::encode(q.y().unwrap()));
    snap.insert(
        "commitment_duplicate_token".into(),
        same_everywhere(&client, "CommitmentRequest", dup).await,
    );
    let mut badkey = commit.clone();
    badkey["temppuby"] = json!("1");
    snap.insert(
        "commitment_bad_temp_key".into(),
        same_everywhere(&client, "CommitmentRequest", badkey).await,
    );

    let item = |tok: &str, sigs: Value| {
        json!({"encrypted":"yes","item":[{"idtoken": tok, "nodesignatures": sigs,
        "verifieridentifier": DEV_VERIFIER, "verifier_id": "grace@example.com"}]})
    };
    let (_, sr) = client
        .call_raw(&eps[0], "ShareRequest", item(&token, json!(sigs)))
        .await
        .unwrap();
    snap.insert(
        "share_request".into(),
        mask(&serde_json::from_str(&sr).unwrap()),
    );
    snap.insert(
        "share_request_too_few_signatures".into(),
        same_everywhere(
            &client,
            "ShareRequest",
            item(&token, json!([sigs[0], null])),
        )
        .await,
    );
    let other = c.mint("grace@example.com");
    snap.insert(
        "share_request_token_mismatch".into(),
        same_everywhere(&client, "ShareRequest", item(&other, json!(sigs))).await,
    );
    snap.insert(
        "share_request_no_items".into(),
        same_everywhere(&client, "ShareRequest", json!({"item": []})).await,
    );
    snap.insert(
        "unknown_method".into(),
        same_everywhere(&client, "Nope", json!({})).await,
    );
    let (_, ping) = client
        .call_raw(&eps[0], "Ping", json!({"message": "hi"}))
        .await
        .unwrap();
    snap.insert("ping".into(), mask(&serde_json::from_str(&ping).unwrap()));

    // Raw framing errors (not through the client's framing).
    let http = reqwest::Client::new();
    for (name, body) in [
        ("parse_error", "{".to_string()),
        ("not_an_object", "[1]".to_string()),
        (
            "too_large",
            format!("{{\"x\":\"{}\"}}", "a".repeat(2 << 20)),
        ),
    ] {
        let r = http.post(&eps[0].url).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{name}");
        let v: Value = r.json().await.unwrap();
        let mut v = v;
        // serde's parse error text carries positions; pin only code and message.
        if name == "parse_error" {
            v["error"]["data"] = json!("<parser detail>");
        }
        snap.insert(name.into(), v);
    }

    let got = serde_json::to_string_pretty(&Value::Object(snap)).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/rpc.json");
    if std::env::var_os("TORUS_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .expect("snapshot missing: run with TORUS_UPDATE_SNAPSHOTS=1 once and review it");
    assert_eq!(
        got, want,
        "RPC JSON changed; review and update the snapshot deliberately"
    );
    c.shutdown().await;
}
