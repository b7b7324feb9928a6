//! The KeyAssign signer's and the allow check's rules, sans IO.
//!
//! The signer (`POST /api/sign`, spec §8 step 2 and §10.5) gets the KeyAssign request
//! that the client will send to one node, with that node's public key in the `pubKeyX` /
//! `pubKeyY` headers, and answers the three `torus-*` members the client appends. It signs
//! only a KeyAssign request (`jsonrpc`, `method` = `"KeyAssign"`, `id`, `params` with
//! string `verifier` and `verifier_id`, nothing else, so that the node's byte-level
//! stripping gives back exactly the signed body) for a node of this devnet.
//!
//! The allow check (`GET /api/allow`, spec §8 retrieveShares step 0) answers
//! `{"success":true}` for a verifier the devnet's nodes serve, named in the `verifier`
//! header.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::crypto::{NodeKey, NodePub};
use crate::hexfmt::{hex_min, parse_hex32};
use crate::jrpc::key_assign_auth_message;

/// Largest request body the signer reads.
pub const MAX_SIGN_BODY: usize = 16 * 1024;

/// Why the signer refuses (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

fn bad(s: impl Into<String>) -> SignError {
    SignError(s.into())
}

/// Signs `body` for the node whose key the `pubKeyX` / `pubKeyY` headers name (hex, any
/// leading zeros), which must be one of `nodes`. `now` becomes `torus-timestamp`.
pub fn sign_key_assign(
    key: &NodeKey,
    nodes: &[NodePub],
    pub_key_x: Option<&str>,
    pub_key_y: Option<&str>,
    body: &[u8],
    now: u64,
    nonce: &str,
) -> Result<Value, SignError> {
    if body.len() > MAX_SIGN_BODY {
        return Err(bad(format!(
            "the body is larger than {MAX_SIGN_BODY} bytes"
        )));
    }
    let coord = |v: Option<&str>, name: &str| {
        v.and_then(parse_hex32)
            .ok_or_else(|| bad(format!("header {name} must be the node's key in hex")))
    };
    let (x, y) = (coord(pub_key_x, "pubKeyX")?, coord(pub_key_y, "pubKeyY")?);
    if !nodes.iter().any(|n| n.xy() == (x, y)) {
        return Err(bad(
            "pubKeyX / pubKeyY is not the key of a node of this devnet",
        ));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("the body is not a JSON object"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the body is not a JSON object"))?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "jsonrpc" | "method" | "id" | "params"))
    {
        return Err(bad(format!(
            "unexpected member {k:?}: the body must be the KeyAssign request alone"
        )));
    }
    if obj.get("method").and_then(Value::as_str) != Some("KeyAssign") {
        return Err(bad("only KeyAssign requests are signed"));
    }
    let params = obj.get("params").and_then(Value::as_object);
    for name in ["verifier", "verifier_id"] {
        if params
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(bad(format!("params.{name} must be a string")));
        }
    }
    let ts = now.to_string();
    let (nx, ny) = (hex_min(&x), hex_min(&y));
    let msg = key_assign_auth_message(body, &ts, nonce, &nx, &ny);
    Ok(json!({
        "torus-timestamp": ts,
        "torus-nonce": nonce,
        "torus-signature": base64::engine::general_purpose::STANDARD.encode(key.sign(msg.as_bytes())),
    }))
}

/// The allow check: `Ok` for a verifier in `verifiers`, else why not.
pub fn allow(verifiers: &[String], verifier: Option<&str>) -> Result<Value, String> {
    match verifier {
        None => Err("header verifier is missing".into()),
        Some(v) if verifiers.iter().any(|n| n == v) => Ok(json!({"success": true})),
        Some(v) => Err(format!(
            "verifier {v:?} is not served by this devnet (it serves {})",
            verifiers.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::unix_s;

    fn request(who: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"KeyAssign","id":10,"params":{{"verifier":"devnet","verifier_id":"{who}"}}}}"#
        )
    }

    #[test]
    fn a_signature_for_one_node_is_what_that_node_checks() {
        let signer = NodeKey::random();
        let nodes: Vec<NodeKey> = (0..3).map(|_| NodeKey::random()).collect();
        let pubs: Vec<NodePub> = nodes.iter().map(NodeKey::public).collect();
        let (x, y) = pubs[1].hex_xy();
        let body = request("ann@example.com");
        let now = unix_s();
        // Padded hex in the headers names the same node.
        let out = sign_key_assign(
            &signer,
            &pubs,
            Some(&format!("{x:0>64}")),
            Some(&y),
            body.as_bytes(),
            now,
            "n1",
        )
        .unwrap();
        assert_eq!(out["torus-timestamp"], now.to_string());
        assert_eq!(out["torus-nonce"], "n1");
        let sig = base64::engine::general_purpose::STANDARD
            .decode(out["torus-signature"].as_str().unwrap())
            .unwrap();
        let msg = key_assign_auth_message(body.as_bytes(), &now.to_string(), "n1", &x, &y);
        signer.public().verify(msg.as_bytes(), &sig).unwrap();
        // Not valid for another node's key.
        let (x0, y0) = pubs[0].hex_xy();
        let other = key_assign_auth_message(body.as_bytes(), &now.to_string(), "n1", &x0, &y0);
        assert!(signer.public().verify(other.as_bytes(), &sig).is_err());
    }

    #[test]
    fn the_signer_signs_only_key_assign_requests_for_its_own_nodes() {
        let signer = NodeKey::random();
        let pubs = vec![NodeKey::random().public()];
        let (x, y) = pubs[0].hex_xy();
        let sign = |body: &str, x: &str, y: &str| {
            sign_key_assign(&signer, &pubs, Some(x), Some(y), body.as_bytes(), 1, "n")
        };
        let stranger = NodeKey::random().public().hex_xy();
        assert!(sign(&request("a"), &stranger.0, &stranger.1).is_err());
        assert!(sign(&request("a"), "zz", &y).is_err());
        let lookup = request("a").replace("KeyAssign", "ShareRequest");
        assert!(sign(&lookup, &x, &y).is_err());
        let extra = request("a").replace(r#""id":10"#, r#""id":10,"torus-nonce":"x""#);
        assert!(sign(&extra, &x, &y).is_err());
        let no_id = request("a").replace(r#""verifier_id":"a""#, r#""verifier_id":1"#);
        assert!(sign(&no_id, &x, &y).is_err());
        assert!(sign("not json", &x, &y).is_err());
        let huge = format!("{}{}", request("a"), " ".repeat(MAX_SIGN_BODY));
        assert!(sign(&huge, &x, &y).is_err());
        assert!(sign_key_assign(
            &signer,
            &pubs,
            None,
            Some(&y),
            request("a").as_bytes(),
            1,
            "n"
        )
        .is_err());
        assert!(sign(&request("a"), &x, &y).is_ok());
    }

    #[test]
    fn the_allow_check_passes_only_verifiers_the_devnet_serves() {
        let v = vec!["devnet".to_string()];
        assert_eq!(allow(&v, Some("devnet")), Ok(json!({"success": true})));
        assert!(allow(&v, Some("google")).is_err());
        assert!(allow(&v, None).is_err());
    }
}
