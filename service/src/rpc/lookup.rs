//! `VerifierLookupRequest` and `KeyLookupRequest`: who owns which key.

use serde_json::{json, Map, Value};

use super::{storage_err, RpcState};
use crate::app;
use crate::crypto::NodePub;
use crate::hexfmt::{checksum_address, eth_address, hex_min, hex_u64, parse_hex32};
use crate::jrpc::{self, msg, RpcError, UserParams};
use crate::store::records::KeyRecord;

pub(super) fn check_user(st: &RpcState, u: &UserParams) -> Result<(), RpcError> {
    if u.verifier_id.is_empty() {
        return Err(RpcError::input(msg::VERIFIER_ID_EMPTY));
    }
    if !st.node.verifiers().contains(&u.verifier) {
        return Err(RpcError::input(msg::VERIFIER_NOT_SUPPORTED));
    }
    Ok(())
}

fn pubkey_xy(pk: &[u8; 33]) -> Option<([u8; 32], [u8; 32])> {
    NodePub::from_sec1(pk).ok().map(|p| p.xy())
}

pub(super) fn lookup_item(rec: &KeyRecord) -> Result<Value, RpcError> {
    let (x, y) = pubkey_xy(&rec.pubkey).ok_or_else(|| {
        RpcError::internal(format!(
            "Could not find address to key index error: bad public key at {}",
            rec.index
        ))
    })?;
    let mut xy = [0u8; 64];
    xy[..32].copy_from_slice(&x);
    xy[32..].copy_from_slice(&y);
    Ok(json!({
        "key_index": hex_u64(rec.index),
        "pub_key_X": hex_min(&x),
        "pub_key_Y": hex_min(&y),
        "address": checksum_address(&eth_address(&xy)),
    }))
}

pub(super) fn assigned_record(
    st: &RpcState,
    u: &UserParams,
) -> Result<Option<KeyRecord>, RpcError> {
    let snap = st.node.store().snapshot().map_err(storage_err)?;
    let Some(index) =
        app::assigned_index(&snap, &u.verifier, &u.verifier_id).map_err(storage_err)?
    else {
        return Ok(None);
    };
    let rec = app::key_record(&snap, index)
        .map_err(storage_err)?
        .ok_or_else(|| {
            RpcError::internal(format!(
                "Could not find address to key index error: key {index} missing"
            ))
        })?;
    Ok(Some(rec))
}

pub(super) fn lookup(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let u = UserParams::from_params(p)?;
    check_user(st, &u)?;
    match assigned_record(st, &u)? {
        Some(rec) => Ok(json!({"keys": [lookup_item(&rec)?]})),
        None => Err(RpcError::input_capital(msg::NOT_ASSIGNED)),
    }
}

pub(super) fn key_lookup(st: &RpcState, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let x = jrpc::str_field(p, "pub_key_X")?;
    let y = jrpc::str_field(p, "pub_key_Y")?;
    if x.is_empty() || y.is_empty() {
        return Err(RpcError::input(msg::PUBKEY_EMPTY));
    }
    let (Some(xb), Some(yb)) = (parse_hex32(x), parse_hex32(y)) else {
        return Err(RpcError::input(msg::NO_LOG));
    };
    let Ok(pk) = NodePub::from_xy(&xb, &yb) else {
        return Err(RpcError::input(msg::NO_LOG));
    };
    let snap = st.node.store().snapshot().map_err(storage_err)?;
    let Some(index) = app::index_of_pubkey(&snap, &pk.compressed()).map_err(storage_err)? else {
        return Err(RpcError::input(msg::NO_LOG));
    };
    let rec = app::key_record(&snap, index)
        .map_err(storage_err)?
        .ok_or_else(|| RpcError::input(msg::NO_LOG))?;
    let Some((v, id)) = rec.owner else {
        return Err(RpcError::input(msg::NO_ASSIGNMENT));
    };
    let mut verifiers = Map::new();
    verifiers.insert(v, json!([id]));
    Ok(json!({
        "Index": hex_u64(index),
        "PublicKey": {"X": hex_min(&xb), "Y": hex_min(&yb)},
        "Threshold": 1,
        "Verifiers": verifiers,
    }))
}
