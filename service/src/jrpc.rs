//! JSON-RPC 2.0 framing and the client API's exact errors (spec §5 and §10).
//!
//! Decoding never panics and never allocates beyond the body it is given (the
//! HTTP layer caps the body). Errors travel with HTTP 200 (spec §10.1).

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// JSON-RPC error object: code, message, data, in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// Error code.
    pub code: i64,
    /// Message (the original node's category string).
    pub message: &'static str,
    /// Detail the client shows or matches on.
    pub data: String,
}

impl RpcError {
    /// -32700 Parse error.
    pub fn parse(detail: impl Into<String>) -> Self {
        RpcError {
            code: -32700,
            message: "Parse error",
            data: detail.into(),
        }
    }
    /// -32600 Invalid Request.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        RpcError {
            code: -32600,
            message: "Invalid Request",
            data: detail.into(),
        }
    }
    /// -32601 Method not found.
    pub fn method_not_found(method: &str) -> Self {
        RpcError {
            code: -32601,
            message: "Method not found",
            data: format!("method {method:?} not found"),
        }
    }
    /// -32602 "Input error".
    pub fn input(detail: impl Into<String>) -> Self {
        RpcError {
            code: -32602,
            message: "Input error",
            data: detail.into(),
        }
    }
    /// -32602 "Input Error" (capital E: the lookup's "not yet assigned" error).
    pub fn input_capital(detail: impl Into<String>) -> Self {
        RpcError {
            code: -32602,
            message: "Input Error",
            data: detail.into(),
        }
    }
    /// -32602 "Internal error" (ShareRequest's parameter errors, as in the original).
    pub fn params_internal(detail: impl Into<String>) -> Self {
        RpcError {
            code: -32602,
            message: "Internal error",
            data: detail.into(),
        }
    }
    /// -32603 "Internal error".
    pub fn internal(detail: impl Into<String>) -> Self {
        RpcError {
            code: -32603,
            message: "Internal error",
            data: detail.into(),
        }
    }
    /// The error object.
    pub fn to_value(&self) -> Value {
        json!({"code": self.code, "message": self.message, "data": self.data})
    }
}

/// The exact data strings clients see (spec §5, §10).
pub mod msg {
    /// Lookup/KeyAssign with an empty verifier_id.
    pub const VERIFIER_ID_EMPTY: &str = "VerifierID is empty";
    /// Unknown verifier.
    pub const VERIFIER_NOT_SUPPORTED: &str = "Verifier not supported";
    /// Lookup before assignment (the client matches this substring).
    pub const NOT_ASSIGNED: &str = "Verifier + VerifierID has not yet been assigned";
    /// CommitmentRequest prefix other than "mug00".
    pub const BAD_PREFIX: &str = "Incorrect message prefix";
    /// A seen token commitment with a different temporary key.
    pub const DUPLICATE_TOKEN: &str = "Duplicate token found";
    /// ShareRequest verifier failure prefix.
    pub const VERIFY_PARAMS: &str = "Error occurred while verifying params";
    /// ShareRequest without usable items.
    pub const COULD_NOT_VERIFY: &str = "Could not verify params";
    /// Token does not hash to the commitment.
    pub const TOKEN_MISMATCH: &str = "Token commitment and token are not compatible";
    /// Token is not byte-canonical.
    pub const CLEAN_TOKEN: &str = "Error when cleaning token";
    /// No share stored for an assigned key.
    pub const NO_SHARE: &str = "could not retrieve completed share";
    /// KeyLookup with an empty key.
    pub const PUBKEY_EMPTY: &str = "pubkey is empty";
    /// KeyLookup of an unknown key.
    pub const NO_LOG: &str = "no log of public key";
    /// KeyLookup of a created but unassigned key.
    pub const NO_ASSIGNMENT: &str = "no key assignment found for public key";
}

/// A decoded request.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// The id to echo (number, string or null).
    pub id: Value,
    /// Method name.
    pub method: String,
    /// Params as an object (a one-element array holding an object is unwrapped).
    pub params: Map<String, Value>,
}

/// Decodes a request body. On failure returns the id (if one was readable) and the error.
pub fn parse_request(body: &[u8]) -> Result<Request, (Value, RpcError)> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| (Value::Null, RpcError::parse(format!("invalid JSON: {e}"))))?;
    let Value::Object(mut obj) = v else {
        return Err((
            Value::Null,
            RpcError::invalid_request("request must be a JSON object"),
        ));
    };
    let id = match obj.remove("id") {
        None => Value::Null,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => id,
        Some(_) => {
            return Err((
                Value::Null,
                RpcError::invalid_request("id must be a number, a string or null"),
            ))
        }
    };
    match obj.get("jsonrpc") {
        Some(Value::String(s)) if s == "2.0" => {}
        _ => return Err((id, RpcError::invalid_request("jsonrpc must be \"2.0\""))),
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err((id, RpcError::invalid_request("method must be a string"))),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(Value::Array(mut a)) if a.len() == 1 => match a.pop() {
            Some(Value::Object(m)) => m,
            _ => return Err((id, RpcError::input("params must be an object"))),
        },
        Some(_) => return Err((id, RpcError::input("params must be an object"))),
    };
    Ok(Request { id, method, params })
}

/// A successful response body.
pub fn response_ok(id: &Value, result: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "result": result, "id": id})).unwrap_or_default()
}

/// An error response body.
pub fn response_err(id: &Value, err: &RpcError) -> Vec<u8> {
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "error": err.to_value(), "id": id}))
        .unwrap_or_default()
}

/// Reads a string field; absent or null is empty; any other type is an input error.
pub fn str_field<'a>(p: &'a Map<String, Value>, name: &str) -> Result<&'a str, RpcError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::input(format!("{name} must be a string"))),
    }
}

/// `{verifier, verifier_id}` of VerifierLookupRequest and KeyAssign.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct UserParams {
    /// Verifier name.
    pub verifier: String,
    /// User id.
    pub verifier_id: String,
}

impl UserParams {
    /// From params.
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, RpcError> {
        Ok(UserParams {
            verifier: str_field(p, "verifier")?.to_string(),
            verifier_id: str_field(p, "verifier_id")?.to_string(),
        })
    }
}

/// CommitmentRequest params.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitParams {
    /// Must be "mug00".
    pub messageprefix: String,
    /// hex keccak256(idtoken).
    pub tokencommitment: String,
    /// Temporary public key x (hex, echoed verbatim).
    pub temppubx: String,
    /// Temporary public key y (hex, echoed verbatim).
    pub temppuby: String,
    /// Verifier name.
    pub verifieridentifier: String,
}

impl CommitParams {
    /// From params (unknown members such as v1's `timestamp` are ignored).
    pub fn from_params(p: &Map<String, Value>) -> Result<Self, RpcError> {
        Ok(CommitParams {
            messageprefix: str_field(p, "messageprefix")?.to_string(),
            tokencommitment: str_field(p, "tokencommitment")?.to_string(),
            temppubx: str_field(p, "temppubx")?.to_string(),
            temppuby: str_field(p, "temppuby")?.to_string(),
            verifieridentifier: str_field(p, "verifieridentifier")?.to_string(),
        })
    }
}

/// One node signature of a ShareRequest item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSignature {
    /// 130-hex signature.
    pub signature: String,
    /// Signed data.
    pub data: String,
    /// Node public key x as the node sent it.
    pub nodepubx: String,
    /// Node public key y as the node sent it.
    pub nodepuby: String,
}

/// One ShareRequest item, split into its signatures and the verifier's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ShareItem {
    /// Well-formed signature objects (`null`s and other non-objects skipped, §10.6).
    pub signatures: Vec<NodeSignature>,
    /// Every other field (idtoken, verifier_id, verifieridentifier, ...).
    pub fields: Map<String, Value>,
}

/// Largest number of items or signatures read from one ShareRequest.
pub const MAX_ITEMS: usize = 16;
/// Largest number of node signatures read per item.
pub const MAX_SIGNATURES: usize = 1024;

/// Splits ShareRequest params into items.
pub fn share_items(p: &Map<String, Value>) -> Result<Vec<ShareItem>, RpcError> {
    let items = match p.get("item") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(RpcError::params_internal(msg::COULD_NOT_VERIFY)),
    };
    if items.len() > MAX_ITEMS {
        return Err(RpcError::params_internal(format!(
            "{}: too many items",
            msg::COULD_NOT_VERIFY
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Value::Object(obj) = it else {
            return Err(RpcError::params_internal(msg::COULD_NOT_VERIFY));
        };
        let mut fields = obj.clone();
        let sigs = fields.remove("nodesignatures");
        let mut signatures = Vec::new();
        if let Some(Value::Array(a)) = sigs {
            for s in a.iter().take(MAX_SIGNATURES) {
                let Value::Object(o) = s else { continue };
                let get = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
                if let (Some(signature), Some(data), Some(nodepubx), Some(nodepuby)) = (
                    get("signature"),
                    get("data"),
                    get("nodepubx"),
                    get("nodepuby"),
                ) {
                    signatures.push(NodeSignature {
                        signature,
                        data,
                        nodepubx,
                        nodepuby,
                    });
                }
            }
        }
        out.push(ShareItem { signatures, fields });
    }
    Ok(out)
}

/// The message a KeyAssign signer signs for one node (spec §10.5): `signed_body` is the
/// request body without its `torus-*` members, `node_x` / `node_y` the receiving node's
/// public key in hex without leading zeros. The signature is ECDSA over its keccak-256.
pub fn key_assign_auth_message(
    signed_body: &[u8],
    timestamp: &str,
    nonce: &str,
    node_x: &str,
    node_y: &str,
) -> String {
    use base64::Engine as _;
    let mut body = Vec::with_capacity(signed_body.len() + timestamp.len() + nonce.len() + 2);
    body.extend_from_slice(signed_body);
    body.push(0x1c);
    body.extend_from_slice(timestamp.as_bytes());
    body.push(0x1c);
    body.extend_from_slice(nonce.as_bytes());
    format!(
        r#"{{"body":"{}","pubkey_x":"{node_x}","pubkey_y":"{node_y}"}}"#,
        base64::engine::general_purpose::STANDARD.encode(&body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_legacy_client_framing() {
        let body = br#"{"jsonrpc":"2.0","method":"VerifierLookupRequest","id":10,"params":{"verifier":"google","verifier_id":"a@b.c"},"torus-timestamp":"1","torus-nonce":"x","torus-signature":"y"}"#;
        let r = parse_request(body).unwrap();
        assert_eq!(r.id, json!(10));
        assert_eq!(r.method, "VerifierLookupRequest");
        let u = UserParams::from_params(&r.params).unwrap();
        assert_eq!(u.verifier_id, "a@b.c");
    }

    #[test]
    fn malformed_requests_get_typed_errors() {
        let cases: Vec<(&[u8], i64)> = vec![
            (b"", -32700),
            (b"{", -32700),
            (b"[]", -32600),
            (b"{\"jsonrpc\":\"1.0\",\"method\":\"Ping\"}", -32600),
            (b"{\"jsonrpc\":\"2.0\"}", -32600),
            (b"{\"jsonrpc\":\"2.0\",\"method\":5}", -32600),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"Ping\",\"params\":5}",
                -32602,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"method\":\"Ping\",\"id\":{}}",
                -32600,
            ),
        ];
        for (body, code) in cases {
            let (_, e) = parse_request(body).unwrap_err();
            assert_eq!(e.code, code, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn share_items_skip_nulls() {
        let p = json!({"encrypted":"yes","item":[{"idtoken":"t","verifier_id":"v","verifieridentifier":"g",
            "nodesignatures":[null,{"signature":"s","data":"d","nodepubx":"1","nodepuby":"2"},5]}]});
        let items = share_items(p.as_object().unwrap()).unwrap();
        assert_eq!(items[0].signatures.len(), 1);
        assert!(!items[0].fields.contains_key("nodesignatures"));
        assert!(share_items(json!({"item":[]}).as_object().unwrap()).is_err());
    }

    #[test]
    fn error_object_key_order() {
        let e = RpcError::input(msg::VERIFIER_ID_EMPTY);
        assert_eq!(
            String::from_utf8(response_err(&json!(10), &e)).unwrap(),
            r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Input error","data":"VerifierID is empty"},"id":10}"#
        );
    }
}
