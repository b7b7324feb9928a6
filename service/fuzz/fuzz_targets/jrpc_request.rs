//! JSON-RPC request decoding: `parse_request` on the raw HTTP body, then everything the
//! client API decodes from a parsed request (params structs, ShareRequest items) and
//! the response encoders. Must never panic; errors carry only the JSON-RPC codes the
//! decoder documents.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use torus_node::jrpc::{
    parse_request, response_err, response_ok, share_items, str_field, CommitParams, UserParams,
    MAX_ITEMS, MAX_SIGNATURES,
};

fuzz_target!(|data: &[u8]| {
    match parse_request(data) {
        Ok(req) => {
            assert!(!req.method.is_empty());
            assert!(matches!(
                req.id,
                Value::Null | Value::Number(_) | Value::String(_)
            ));
            let user = UserParams::from_params(&req.params);
            let commit = CommitParams::from_params(&req.params);
            if let Ok(u) = &user {
                assert_eq!(str_field(&req.params, "verifier").ok(), Some(&*u.verifier));
            }
            if let Err(e) = &commit {
                assert_eq!(e.code, -32602);
            }
            match share_items(&req.params) {
                Ok(items) => {
                    assert!(!items.is_empty() && items.len() <= MAX_ITEMS);
                    for it in &items {
                        assert!(it.signatures.len() <= MAX_SIGNATURES);
                        assert!(!it.fields.contains_key("nodesignatures"));
                        for f in ["idtoken", "verifier_id", "verifieridentifier"] {
                            let _ = str_field(&it.fields, f);
                        }
                    }
                }
                Err(e) => assert_eq!(e.code, -32602),
            }
            let body = response_ok(&req.id, Value::Object(req.params.clone()));
            assert!(serde_json::from_slice::<Value>(&body).is_ok());
        }
        Err((id, e)) => {
            assert!(
                matches!(e.code, -32700 | -32600 | -32602),
                "unexpected code {}",
                e.code
            );
            let body = response_err(&id, &e);
            assert!(serde_json::from_slice::<Value>(&body).is_ok());
        }
    }
});
