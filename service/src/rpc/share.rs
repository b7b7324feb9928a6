//! `ShareRequest`: the thin handler over the share-release use case
//! ([`super::release`]): parse the items, run the verifier, release, format.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::release::{parse_item, ReleaseError, Released, ShareRelease};
use super::{client_full, storage_err, RpcState};
use crate::hexfmt::{hex_min, hex_u64};
use crate::jrpc::{self, msg, RpcError};
use crate::metrics::MethodLabels;
use crate::node::unix_s;

pub(super) async fn share_request(
    st: &RpcState,
    p: &Map<String, Value>,
) -> Result<Value, RpcError> {
    let items = jrpc::share_items(p)?;
    let epoch = std::sync::Arc::new(st.node.epoch().map_err(storage_err)?);
    if st.node.index().is_err() {
        // A node that left the committee erased its shares (retirement).
        return Err(RpcError::internal(format!(
            "{}: this node is not a member of the committee of epoch {}; ask that committee's nodes",
            msg::NO_SHARE,
            epoch.epoch
        )));
    }
    let mut keys: BTreeMap<u64, Value> = BTreeMap::new();
    for item in &items {
        let (verifier, token) = parse_item(&item.fields).map_err(|e| e.to_rpc())?;
        let verified = match st
            .node
            .verifiers()
            .verify(&verifier, &item.fields, unix_s())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                st.node
                    .metrics()
                    .verify_failures
                    .get_or_create(&MethodLabels {
                        method: e.code().to_string(),
                    })
                    .inc();
                return Err(ReleaseError::Verify(e).to_rpc());
            }
        };
        // Signature checks and ECIES are CPU work: off the async workers.
        let (node, signers, epoch) = (st.node.clone(), st.sig_keys.clone(), epoch.clone());
        let item = item.clone();
        let r = tokio::task::spawn_blocking(move || {
            ShareRelease {
                epoch: &epoch,
                store: node.store(),
                signers: &signers,
            }
            .release(&item, &verifier, &token, &verified, unix_s())
        })
        .await
        .map_err(storage_err)?
        .map_err(|e| match e {
            ReleaseError::ClientFull(what) => client_full(st, what),
            e => e.to_rpc(),
        })?;
        keys.insert(r.key.index, key_json(&r));
    }
    if keys.is_empty() {
        return Err(RpcError::internal(msg::NO_SHARE));
    }
    Ok(json!({"keys": keys.into_values().collect::<Vec<_>>()}))
}

/// One released key as the legacy client reads it.
fn key_json(r: &Released) -> Value {
    let (x, y) = r.public_xy;
    let c = &r.share;
    let share_b64 = base64::engine::general_purpose::STANDARD.encode(hex::encode(&c.ciphertext));
    let mut verifiers = Map::new();
    verifiers.insert(r.owner.0.clone(), json!([r.owner.1.clone()]));
    json!({
        "Index": hex_u64(r.key.index),
        "PublicKey": {"X": hex_min(&x), "Y": hex_min(&y)},
        "Threshold": 1,
        "Verifiers": verifiers,
        "Share": share_b64,
        "Metadata": {
            "iv": hex::encode(c.iv),
            "ephemPublicKey": hex::encode(c.ephem_public_key),
            "mac": hex::encode(c.mac),
            "mode": "AES256",
        },
    })
}
