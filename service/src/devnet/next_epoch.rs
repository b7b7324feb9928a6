//! `torus-node devnet next-epoch`: hands a running devnet's keys to its next
//! committee (issue #12). It reads the devnet's `genesis.toml` and `devnet.json`;
//! for a committee that grows, it asks the running devnet for fresh nodes
//! ([`super::FRESH_REQUEST`]: the devnet prepares them and answers with their
//! genesis entries, so it owns their processes and Ctrl-C stops them too). It
//! writes the next committee's genesis to each member's `node<i>/next-genesis.toml`
//! (the current members vote it in and reshare every key, see
//! `keygen::driver::handover`; a fresh node starts once its file is there),
//! follows the change on the members' `/bftStatus`, and rewrites `devnet.json`
//! for the new committee with its `"epoch"`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{io, DevnetError};
use crate::config::{Genesis, GenesisNode};
use crate::crypto::NodePub;

/// What the next committee is.
#[derive(Clone, Debug)]
pub struct NextEpochOptions {
    /// The running devnet's data directory.
    pub data_dir: PathBuf,
    /// Members of the next committee.
    pub nodes: u32,
    /// Its threshold (default floor(n/2)+1).
    pub k: Option<u32>,
    /// Its tolerated faults (default (n-1)/4).
    pub t: Option<u32>,
    /// Indexes replaced by fresh nodes.
    pub replace: Vec<u32>,
    /// Give up after this long.
    pub timeout: Duration,
}

/// How far the change got (for a progress bar).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextEpochProgress {
    /// Created keys the next committee holds.
    pub reshared: u64,
    /// Created keys.
    pub created: u64,
}

/// The finished change.
#[derive(Clone, Debug)]
pub struct NextEpochDone {
    /// The new current epoch.
    pub epoch: u64,
    /// The new committee's n, k, t.
    pub n: u32,
    /// Threshold.
    pub k: u32,
    /// Tolerated faults.
    pub t: u32,
    /// Keys it serves.
    pub keys: u64,
    /// The rewritten `devnet.json`.
    pub manifest: PathBuf,
    /// Wall time of the change.
    pub secs: f64,
}

/// The next committee's genesis from the devnet's `genesis` (the node addresses),
/// its current committee's indexes `current` (the members, 1..=n in order) and,
/// for a committee that grows, the `fresh` nodes' entries (they take the indexes
/// after the current members, in order).
pub fn next_genesis(
    genesis: &Genesis,
    current: &[u32],
    epoch: u64,
    o: &NextEpochOptions,
    fresh: &[GenesisNode],
) -> Result<Genesis, DevnetError> {
    let n_cur = current.len() as u32;
    if !o.replace.is_empty() {
        return Err(DevnetError::Invalid(format!(
            "--replace {:?}: a fresh node taking a member's index is not supported yet \
             (messages are addressed by index, issue #12); grow the committee with --nodes \
             instead",
            o.replace
        )));
    }
    let n = o.nodes;
    let k = o.k.unwrap_or(n / 2 + 1);
    let t = o.t.unwrap_or(n.saturating_sub(1) / 4);
    torus_engine::Params::new(n, k, t)
        .map_err(|e| DevnetError::Invalid(format!("n = {n}, k = {k}, t = {t}: {e}")))?;
    if k > n / 2 + 1 {
        return Err(DevnetError::Invalid(format!(
            "k = {k} is above floor(n/2)+1 = {}: clients combine floor(n/2)+1 shares",
            n / 2 + 1
        )));
    }
    let wanted = n.saturating_sub(n_cur) as usize;
    if fresh.len() != wanted {
        return Err(DevnetError::Invalid(format!(
            "{} fresh nodes for {wanted} new members",
            fresh.len()
        )));
    }
    let mut next = genesis.clone();
    next.epoch = epoch + 1;
    next.n = n;
    next.k = k;
    next.t = t;
    next.nodes
        .retain(|g| g.index <= n && current.contains(&g.index));
    next.nodes.sort_by_key(|g| g.index);
    for (i, f) in fresh.iter().enumerate() {
        next.nodes.push(GenesisNode {
            index: n_cur + 1 + i as u32,
            ..f.clone()
        });
    }
    if next.nodes.len() != n as usize {
        return Err(DevnetError::Invalid(format!(
            "the genesis lists {} of the first {n} members",
            next.nodes.len()
        )));
    }
    next.epoch_info()
        .map_err(|e| DevnetError::Invalid(format!("next committee: {e}")))?;
    Ok(next)
}

/// A fresh node follows the chain from its first block: a devnet that pruned it
/// (its nodes keep 256 blocks below every node's height, about a minute and a
/// half of idle blocks) cannot grow until state snapshots exist.
fn refuse_pruned_chain(first_block: Option<u64>) -> Result<(), DevnetError> {
    match first_block {
        Some(h) if h > 1 => Err(DevnetError::Invalid(format!(
            "the devnet pruned its blocks below height {h}: a fresh node replays the chain \
             from its first block, and joining from a state snapshot is not built yet \
             (issue #12). Grow a devnet shortly after it starts, or change to a committee \
             of its current nodes"
        ))),
        _ => Ok(()),
    }
}

/// Asks the running devnet in `dir` for `count` fresh nodes and waits (up to 30 s)
/// for their genesis entries.
async fn fresh_nodes(dir: &Path, count: usize) -> Result<Vec<GenesisNode>, DevnetError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let answer = dir.join(super::FRESH_NODES);
    let _ = std::fs::remove_file(&answer);
    let tmp = dir.join(format!("{}.tmp", super::FRESH_REQUEST));
    std::fs::write(&tmp, serde_json::json!({ "count": count }).to_string())
        .map_err(io("ask for fresh nodes"))?;
    std::fs::rename(&tmp, dir.join(super::FRESH_REQUEST)).map_err(io("ask for fresh nodes"))?;
    let t0 = Instant::now();
    while !answer.exists() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = std::fs::remove_file(dir.join(super::FRESH_REQUEST));
            return Err(DevnetError::Timeout {
                secs: 30,
                what: "the running devnet did not prepare fresh nodes (is `torus-node devnet` \
                       of this version running in this directory?)"
                    .into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&answer).map_err(io("read the fresh nodes"))?;
    let _ = std::fs::remove_file(&answer);
    let entries: Vec<GenesisNode> = serde_json::from_str(&text)
        .map_err(|e| DevnetError::Invalid(format!("{}: {e}", super::FRESH_NODES)))?;
    if entries.len() != count {
        return Err(DevnetError::Invalid(format!(
            "asked for {count} fresh nodes, got {}",
            entries.len()
        )));
    }
    Ok(entries)
}

fn read_json(path: &Path) -> Result<Value, DevnetError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("read {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| DevnetError::Invalid(format!("{}: {e}", path.display())))
}

/// The `/bftStatus` of the member whose client endpoint is `endpoint` (`.../jrpc`).
async fn status(http: &reqwest::Client, endpoint: &str) -> Option<Value> {
    let base = endpoint.strip_suffix("/jrpc").unwrap_or(endpoint);
    let r = http
        .get(format!("{base}/bftStatus"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// Runs the change against the devnet in `o.data_dir` (see the module docs),
/// calling `progress` as it goes.
pub async fn next_epoch(
    o: &NextEpochOptions,
    mut progress: impl FnMut(NextEpochProgress),
) -> Result<NextEpochDone, DevnetError> {
    let started = Instant::now();
    let genesis = Genesis::load(&o.data_dir.join("genesis.toml"))
        .map_err(|e| DevnetError::Invalid(format!("the devnet's genesis: {e}")))?;
    let manifest_path = o.data_dir.join("devnet.json");
    let mut manifest = read_json(&manifest_path)?;
    let members: Vec<(u32, String)> = manifest["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| {
                    Some((
                        u32::try_from(n["index"].as_u64()?).ok()?,
                        n["endpoint"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if members.is_empty() {
        return Err(DevnetError::Invalid(format!(
            "{} lists no nodes: is the devnet running and its buffer full?",
            manifest_path.display()
        )));
    }
    let http = reqwest::Client::new();
    let mut epoch = None;
    let mut first_block = None;
    for (_, ep) in &members {
        if let Some(s) = status(&http, ep).await {
            epoch = s["epoch"].as_u64();
            first_block = s["first_block"].as_u64();
            if epoch.is_some() {
                break;
            }
        }
    }
    let epoch = epoch.ok_or_else(|| {
        DevnetError::Invalid(
            "no member of the devnet answers: start `torus-node devnet` first".into(),
        )
    })?;
    let current: Vec<u32> = members.iter().map(|m| m.0).collect();
    // Checked before the devnet prepares fresh nodes, which then go unused.
    let n_cur = current.len() as u32;
    if o.nodes > n_cur {
        refuse_pruned_chain(first_block)?;
    }
    let placeholders: Vec<GenesisNode> = (0..o.nodes.saturating_sub(n_cur))
        .map(|_| GenesisNode {
            index: 0,
            pubkey: hex::encode(crate::crypto::NodeKey::random().public().compressed()),
            p2p: String::new(),
            consensus: String::new(),
            rpc: String::new(),
        })
        .collect();
    next_genesis(&genesis, &current, epoch, o, &placeholders)?;
    let fresh = fresh_nodes(&o.data_dir, placeholders.len()).await?;
    let next = next_genesis(&genesis, &current, epoch, o, &fresh)?;
    let text = toml::to_string(&next).map_err(|e| DevnetError::Invalid(e.to_string()))?;
    // The fresh nodes' directories are named by their devnet number.
    let mut dirs: Vec<PathBuf> = current
        .iter()
        .map(|i| o.data_dir.join(format!("node{i}")))
        .collect();
    dirs.extend(
        fresh
            .iter()
            .map(|f| o.data_dir.join(format!("node{}", f.index))),
    );
    for dir in &dirs {
        let tmp = dir.join("next-genesis.toml.tmp");
        std::fs::write(&tmp, &text).map_err(io("write the next genesis"))?;
        std::fs::rename(&tmp, dir.join(crate::keygen::NEXT_GENESIS))
            .map_err(io("write the next genesis"))?;
    }
    let mut new_members: Vec<(u32, String)> = members
        .iter()
        .filter(|(i, _)| next.nodes.iter().any(|g| g.index == *i))
        .cloned()
        .collect();
    new_members.extend(
        next.nodes
            .iter()
            .filter(|g| g.index > n_cur)
            .map(|g| (g.index, g.rpc.clone())),
    );
    // Follow the change until every new member serves the new epoch.
    let mut keys = 0;
    loop {
        let mut done = 0;
        let mut seen = NextEpochProgress::default();
        for (_, ep) in &new_members {
            let Some(s) = status(&http, ep).await else {
                continue;
            };
            let created = s["keys_created"].as_u64().unwrap_or(0);
            if s["epoch"].as_u64() == Some(next.epoch) {
                done += 1;
                keys = created;
                seen = NextEpochProgress {
                    reshared: created,
                    created,
                };
            } else if seen.reshared < seen.created || seen.created == 0 {
                seen = NextEpochProgress {
                    reshared: s["reshared_keys"].as_u64().unwrap_or(0),
                    created,
                };
            }
        }
        progress(seen);
        if done == new_members.len() {
            break;
        }
        if started.elapsed() > o.timeout {
            return Err(DevnetError::Timeout {
                secs: o.timeout.as_secs(),
                what: format!(
                    "{done} of {} new members serve epoch {}; see node*/node.log",
                    new_members.len(),
                    next.epoch
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The client-side description of the new committee.
    if let Some(nodes) = manifest["nodes"].as_array_mut() {
        nodes.retain(|n| {
            n["index"]
                .as_u64()
                .is_some_and(|i| next.nodes.iter().any(|g| u64::from(g.index) == i))
        });
    }
    if let Some(nodes) = manifest["nodes"].as_array_mut() {
        for g in next.nodes.iter().filter(|g| g.index > n_cur) {
            let (x, y) = hex::decode(&g.pubkey)
                .ok()
                .and_then(|b| NodePub::from_sec1(&b).ok())
                .map(|p| p.xy())
                .map(|(x, y)| (crate::hexfmt::hex_min(&x), crate::hexfmt::hex_min(&y)))
                .unwrap_or_default();
            nodes.push(serde_json::json!({
                "index": g.index,
                "endpoint": g.rpc,
                "pub_key_x": x,
                "pub_key_y": y,
            }));
        }
    }
    manifest["n"] = next.n.into();
    manifest["k"] = next.k.into();
    manifest["epoch"] = next.epoch.into();
    let tmp = o.data_dir.join("devnet.json.tmp");
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| DevnetError::Invalid(e.to_string()))?;
    std::fs::write(&tmp, text).map_err(io("write devnet.json"))?;
    std::fs::rename(&tmp, &manifest_path).map_err(io("write devnet.json"))?;
    Ok(NextEpochDone {
        epoch: next.epoch,
        n: next.n,
        k: next.k,
        t: next.t,
        keys,
        manifest: manifest_path,
        secs: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GenesisNode;
    use crate::crypto::NodeKey;

    fn genesis(n: u32) -> Genesis {
        Genesis {
            chain_id: "devnet".into(),
            epoch: 1,
            n,
            k: n / 2 + 1,
            t: (n - 1) / 4,
            nodes: (1..=n)
                .map(|index| GenesisNode {
                    index,
                    pubkey: hex::encode(NodeKey::random().public().compressed()),
                    p2p: String::new(),
                    consensus: String::new(),
                    rpc: String::new(),
                })
                .collect(),
        }
    }

    fn opts(nodes: u32, k: Option<u32>, replace: Vec<u32>) -> NextEpochOptions {
        NextEpochOptions {
            data_dir: PathBuf::from("unused"),
            nodes,
            k,
            t: None,
            replace,
            timeout: Duration::from_secs(1),
        }
    }

    fn fresh(count: u32) -> Vec<GenesisNode> {
        genesis(count)
            .nodes
            .into_iter()
            .map(|g| GenesisNode {
                index: 40 + g.index,
                rpc: format!("http://127.0.0.1:{}/jrpc", 9000 + g.index),
                ..g
            })
            .collect()
    }

    #[test]
    fn the_next_committee_keeps_the_first_members_with_the_asked_thresholds() {
        let g = genesis(5);
        let all = [1, 2, 3, 4, 5];
        let next = next_genesis(&g, &all, 1, &opts(4, Some(2), vec![]), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((next.epoch, next.n, next.k, next.t), (2, 4, 2, 0));
        assert_eq!(next.nodes, g.nodes[..4].to_vec());
        // Defaults: floor(n/2)+1 and (n-1)/4.
        let same = next_genesis(&g, &all, 3, &opts(5, None, vec![]), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((same.epoch, same.k, same.t), (4, 3, 1));
    }

    #[test]
    fn a_growing_committee_gives_the_fresh_nodes_the_indexes_after_the_current_members() {
        let g = genesis(5);
        let f = fresh(2);
        let next = next_genesis(&g, &[1, 2, 3, 4, 5], 1, &opts(7, None, vec![]), &f)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((next.n, next.k, next.t), (7, 4, 1));
        assert_eq!(next.nodes[..5], g.nodes[..]);
        assert_eq!((next.nodes[5].index, next.nodes[6].index), (6, 7));
        assert_eq!(next.nodes[6].pubkey, f[1].pubkey);
        assert_eq!(next.nodes[6].rpc, f[1].rpc);
        // After a shrink to 4, growing back to 5 takes a fresh node at index 5.
        let back = next_genesis(&g, &[1, 2, 3, 4], 2, &opts(5, None, vec![]), &fresh(1))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.nodes[4].index, 5);
        assert_ne!(back.nodes[4].pubkey, g.nodes[4].pubkey);
    }

    #[test]
    fn replaced_members_and_thresholds_clients_cannot_use_are_refused_with_the_reason() {
        let g = genesis(5);
        let all = [1, 2, 3, 4, 5];
        let replace = next_genesis(&g, &all, 1, &opts(5, None, vec![2]), &[]).map(|_| ());
        assert!(replace.is_err_and(|e| e.to_string().contains("--replace [2]")));
        let bad = next_genesis(&g, &all, 1, &opts(4, Some(5), vec![]), &[]).map(|_| ());
        assert!(bad.is_err_and(|e| e.to_string().contains("k = 5")));
        let high = next_genesis(&g, &all, 1, &opts(7, Some(5), vec![]), &fresh(2)).map(|_| ());
        assert!(high.is_err_and(|e| e.to_string().contains("above floor(n/2)+1")));
        let short = next_genesis(&g, &all, 1, &opts(7, None, vec![]), &fresh(1)).map(|_| ());
        assert!(short.is_err_and(|e| e.to_string().contains("1 fresh nodes for 2")));
        // A chain whose first blocks are pruned cannot take fresh nodes.
        assert!(refuse_pruned_chain(Some(1)).is_ok());
        assert!(refuse_pruned_chain(None).is_ok());
        let pruned = refuse_pruned_chain(Some(900));
        assert!(pruned.is_err_and(|e| e.to_string().contains("below height 900")));
    }
}
