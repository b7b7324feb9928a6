//! `GET /bftStatus`: the consensus head, the key buffer and recent batches.

use serde_json::{json, Value};

use crate::app;
use crate::node::NodeState;
use crate::store::records::BatchRecord;

/// Batches `/bftStatus` lists (the most recent).
pub(super) const RECENT_BATCHES: usize = 16;

pub(super) fn status_json(node: &NodeState, at: Option<u64>) -> Result<Value, String> {
    let h = node.store().head().map_err(|e| e.to_string())?;
    let snap = node.store().snapshot().map_err(|e| e.to_string())?;
    let c = app::counters(&snap).map_err(|e| e.to_string())?;
    let epoch = app::current_epoch(&snap).map_err(|e| e.to_string())?;
    let open = app::open_batch(&snap)
        .map_err(|e| e.to_string())?
        .map(|b| json!({"start": b.start, "count": b.count}));
    let mut blamed = Vec::new();
    for n in &epoch.nodes {
        if app::is_blamed(&snap, epoch.epoch, n.index).map_err(|e| e.to_string())? {
            blamed.push(n.index);
        }
    }
    // The most recent batches (at most RECENT_BATCHES), oldest first: a reverse cursor
    // over the batch records, so the answer costs the same at any buffer size.
    let mut batches = Vec::new();
    for (key, value) in snap
        .last_with_prefix(&[app::keys::BATCH], RECENT_BATCHES)
        .map_err(|e| e.to_string())?
        .into_iter()
        .rev()
    {
        if key.len() != 9 {
            continue;
        }
        let b = BatchRecord::decode(&value).map_err(|e| format!("batch record: {e}"))?;
        batches.push(json!({
            "start": b.batch.start,
            "count": b.batch.count,
            "dealers": b.dealers.iter().map(|d| d.0).collect::<Vec<_>>(),
            "public_keys_decided": b.keys_hash.is_some(),
        }));
    }
    // A hand-over in progress: how many created keys the next committee holds.
    let next = app::next_epoch(&snap).map_err(|e| e.to_string())?;
    let mut reshared = 0u64;
    if next.is_some() {
        let mut start = 0;
        while start < c.last_created {
            let Some(b) = app::batch_record(&snap, start).map_err(|e| e.to_string())? else {
                break;
            };
            if b.batch.end() <= start {
                break;
            }
            if app::reshare_record(&snap, start)
                .map_err(|e| e.to_string())?
                .is_some_and(|r| r.keys_hash.is_some())
            {
                reshared += u64::from(b.batch.count);
            }
            start = b.batch.end();
        }
    }
    drop(snap);
    let mut v = json!({
        "height": h.height,
        // The lowest decided block still stored (older ones are pruned): a node
        // that syncs from an earlier height cannot follow this chain.
        "first_block": node.store().min_decided_height().map_err(|e| e.to_string())?,
        "app_hash": hex::encode(h.app_hash),
        "epoch": epoch.epoch,
        "keys_created": c.last_created,
        "keys_assigned": c.last_unassigned,
        "keys_free": c.last_created - c.last_unassigned,
        "keys_opened": c.next_batch_start,
        "frozen": c.frozen,
        "next_epoch": next.map(|e| e.epoch),
        "reshared_keys": reshared,
        "open_batch": open,
        "shares": node.store().share_count().map_err(|e| e.to_string())?,
        "blamed": blamed,
        "batches": batches,
    });
    if let Some(at) = at {
        v["app_hash_at"] = match node.store().app_hash_at(at).map_err(|e| e.to_string())? {
            Some(a) => Value::from(hex::encode(a)),
            None => Value::Null,
        };
    }
    Ok(v)
}
