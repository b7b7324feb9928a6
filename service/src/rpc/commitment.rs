//! `CommitmentRequest`: a node signs a client's token commitment and its temporary
//! key, once per commitment.

use serde_json::{json, Map, Value};

use super::{client_full, storage_err, RpcState};
use crate::crypto::{sig_to_hex, NodePub};
use crate::hexfmt::parse_hex32;
use crate::jrpc::{msg, CommitParams, RpcError};
use crate::node::unix_s;
use crate::store::records::TokenCommitment;
use crate::store::{StoreError, TokenInsert};

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn commitment(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let c = CommitParams::from_params(p)?;
    if c.messageprefix != "mug00" {
        return Err(RpcError::internal(msg::BAD_PREFIX));
    }
    if c.tokencommitment.len() != 64 || !is_hex(&c.tokencommitment) {
        return Err(RpcError::input("tokencommitment must be 64 hex characters"));
    }
    if !st.node.verifiers().contains(&c.verifieridentifier) {
        return Err(RpcError::input(msg::VERIFIER_NOT_SUPPORTED));
    }
    let (Some(tx), Some(ty)) = (parse_hex32(&c.temppubx), parse_hex32(&c.temppuby)) else {
        return Err(RpcError::input("invalid temporary public key"));
    };
    if NodePub::from_xy(&tx, &ty).is_err() {
        return Err(RpcError::input("invalid temporary public key"));
    }
    let commitment = c.tokencommitment.to_ascii_lowercase();
    let now = unix_s();
    let d1 = "\u{1c}";
    let data = [
        c.messageprefix.as_str(),
        &c.tokencommitment,
        &c.temppubx,
        &c.temppuby,
        &c.verifieridentifier,
        &now.to_string(),
    ]
    .join(d1);
    let sig = st.node.key().sign(data.as_bytes());
    let rec = TokenCommitment {
        temp_x: tx,
        temp_y: ty,
        created_s: now,
        data,
        sig,
        revealed_s: 0,
        seq: 0, // assigned by the store
    };
    let (data, sig) = match st
        .node
        .store()
        .put_token_if_absent(&c.verifieridentifier, &commitment, &rec)
        .map_err(|e| match e {
            StoreError::ClientFull(what) => client_full(st, what),
            e => storage_err(e),
        })? {
        TokenInsert::Inserted => (rec.data, rec.sig),
        // A retry with the same temporary key is answered again (same data and
        // signature); a different key for a seen commitment is refused.
        TokenInsert::Existing(old) if old.temp_x == tx && old.temp_y == ty => (old.data, old.sig),
        TokenInsert::Existing(_) => return Err(RpcError::internal(msg::DUPLICATE_TOKEN)),
    };
    let (px, py) = st.node.key().public().hex_xy();
    Ok(json!({
        "signature": sig_to_hex(&sig),
        "data": data,
        "nodepubx": px,
        "nodepuby": py,
    }))
}
