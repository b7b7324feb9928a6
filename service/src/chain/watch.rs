//! The NodeList contract's hand-over trigger (spec §2 "Trigger", §6): a running
//! node polls the contract every `poll_s` and, for its current epoch `e`:
//!
//! * once the owner opened the next epoch (`epochInfo(e).nextEpoch != 0`) and
//!   whitelisted this node in it, lists itself there with its announced
//!   endpoints (as at its first start);
//! * once that epoch is full and the owner set `getPssStatus(e, next) == 1`,
//!   writes the next committee's genesis to `<data_dir>/next-genesis.toml`
//!   (atomically, only when it changed): the keygen driver checks it and votes
//!   the hand-over in (`keygen::driver::handover`), exactly as with a genesis
//!   handed over by hand.
//!
//! Every error is logged and retried at the next poll: the contract or its
//! endpoint being down never stops the node.

use std::path::Path;
use std::sync::Arc;

use super::{node_address, ChainError, NodeListClient};
use crate::config::NodeListConfig;
use crate::node::NodeState;

/// Polls the contract until the process ends (see the module docs).
pub async fn watch_next_epoch(node: Arc<NodeState>, nl: NodeListConfig) {
    let client = match NodeListClient::new(&nl.eth_rpc, &nl.contract) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "node list: cannot watch for the next epoch");
            return;
        }
    };
    let path = node.config().data_dir.join(crate::keygen::NEXT_GENESIS);
    let mut last_error = String::new();
    loop {
        tokio::time::sleep(nl.poll_interval()).await;
        match poll(&node, &nl, &client, &path).await {
            Ok(()) => last_error.clear(),
            Err(e) => {
                // Logged once per distinct error, not at every poll.
                let text = e.to_string();
                if text != last_error {
                    tracing::warn!(error = %text, "node list: watching for the next epoch");
                    last_error = text;
                }
            }
        }
    }
}

async fn poll(
    node: &NodeState,
    nl: &NodeListConfig,
    client: &NodeListClient,
    path: &Path,
) -> Result<(), ChainError> {
    let Ok(cur) = node.epoch() else {
        return Ok(());
    };
    let info = client.epoch(cur.epoch).await?;
    let next = info.next;
    if next == 0 {
        return Ok(());
    }
    let me = node_address(&node.key().public());
    if let Some((rpc, consensus, p2p)) = nl.announce() {
        if client.is_whitelisted(next, me).await? && !client.node_registered(next, me).await? {
            let position = client
                .ensure_listed(node.key(), next, rpc, consensus, p2p)
                .await?;
            tracing::info!(
                epoch = next,
                position,
                "listed in the next epoch of the NodeList contract"
            );
        }
    }
    if client.pss_status(cur.epoch, next).await? != 1 {
        return Ok(());
    }
    let e = client.epoch(next).await?;
    if !e.is_full() {
        return Ok(());
    }
    let chain_id = client.chain_id().await?;
    let genesis = e.to_genesis(format!(
        "nodelist-{chain_id}-0x{}",
        hex::encode(client.contract().as_slice())
    ))?;
    let text = toml::to_string(&genesis).map_err(|err| ChainError::Invalid {
        what: "next genesis",
        problem: err.to_string(),
    })?;
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    let tmp = path.with_extension("toml.tmp");
    let written = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(err) = written {
        return Err(ChainError::Invalid {
            what: "next genesis",
            problem: format!("cannot write {}: {err}", path.display()),
        });
    }
    tracing::info!(
        epoch = next,
        n = genesis.n,
        k = genesis.k,
        t = genesis.t,
        "the NodeList contract starts resharing to the next epoch: its committee handed to keygen"
    );
    Ok(())
}
