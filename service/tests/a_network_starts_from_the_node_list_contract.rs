//! Five nodes start from the NodeList contract on a local Ethereum chain
//! (ganache) instead of a genesis file: the operator deploys the contract,
//! opens epoch 1 and whitelists the nodes, each node lists itself with its
//! endpoints when it starts, reads the full committee back from the chain, and
//! the network generates keys and serves logins. Then the owner opens epoch 2
//! (nodes 1 to 4, k = 2), whitelists them, and starts resharing with the PSS
//! status flag: the nodes list themselves in epoch 2, hand every key over, and
//! the user logs in to the same address from the new committee (issue #12).
//!
//! Needs Node.js: the pinned npm packages of `service/tests/eth` are installed by the
//! test (`npm ci`, once); without Node.js it skips with a notice, unless
//! `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used)]

mod net;

use std::sync::Arc;
use std::time::{Duration, Instant};

use net::chain::{start_chain, tooling_present};
use torus_node::chain::{self, node_address, EpochUpdate, NodeListClient, NodeListOwner};
use torus_node::config::NodeListConfig;
use torus_node::crypto::NodeKey;
use torus_node::devnet::{self, loopback_multiaddr, Devnet};

/// Waits (at most 60 s) until the node of `key` is listed in `epoch`, every node
/// process still running.
async fn wait_listed(dn: &mut Devnet, reader: &NodeListClient, epoch: u64, key: &NodeKey) {
    let t0 = Instant::now();
    while !reader
        .node_registered(epoch, node_address(&key.public()))
        .await
        .unwrap()
    {
        dn.check_alive().unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "node {:#x} did not list itself in epoch {epoch}",
            node_address(&key.public())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_start_from_the_contract_and_hand_their_keys_to_the_next_epoch() {
    if !tooling_present("five_nodes_start_from_the_contract_and_hand_their_keys_to_the_next_epoch")
    {
        return;
    }
    let dir = net::test_dir();
    let mut dn = Devnet::prepare(net::opts(dir.path(), 5, 10, 10))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    let owner = NodeKey::random();
    let keys: Vec<NodeKey> = (1..=5)
        .map(|i| devnet::node_key(&dn.opts.data_dir, i).unwrap())
        .collect();
    let mut funded: Vec<&NodeKey> = keys.iter().collect();
    funded.push(&owner);
    let eth = start_chain(&funded).await;
    let contract = chain::deploy(&eth.url, &owner).await.unwrap();
    let contract_s = format!("{contract:#x}");
    let admin = NodeListOwner::new(&eth.url, &contract_s, &owner).unwrap();
    admin
        .update_epoch(&EpochUpdate {
            epoch: 1,
            n: 5,
            k: 3,
            t: 1,
            ..EpochUpdate::default()
        })
        .await
        .unwrap();
    for k in &keys {
        admin
            .update_whitelist(1, node_address(&k.public()), true)
            .await
            .unwrap();
    }
    // Every node reads its committee from the chain and announces its endpoints.
    let ports = dn.layout.nodes.clone();
    let url = eth.url.clone();
    let c = contract_s.clone();
    dn.set_tweak(Arc::new(move |i, cfg| {
        let p = ports.iter().find(|p| p.index == i).unwrap();
        cfg.genesis = Default::default();
        cfg.node_list = Some(NodeListConfig {
            eth_rpc: url.clone(),
            contract: c.clone(),
            epoch: 1,
            poll_s: Some(1),
            wait_s: Some(180),
            announce_rpc: Some(format!("http://127.0.0.1:{}/jrpc", p.rpc)),
            announce_consensus: Some(loopback_multiaddr(p.consensus)),
            announce_p2p: Some(loopback_multiaddr(p.p2p)),
        });
    }))
    .unwrap();
    // Start them one by one so that list order (the node index) is 1..=5.
    let reader = NodeListClient::new(&eth.url, &contract_s).unwrap();
    for (i, k) in (1..=5u32).zip(&keys) {
        dn.start_node(i).unwrap();
        wait_listed(&mut dn, &reader, 1, k).await;
    }
    let e = reader.epoch(1).await.unwrap();
    assert_eq!(e.nodes.len(), 5);
    for (pos, k) in e.nodes.iter().zip(&keys) {
        assert_eq!(pos.address, node_address(&k.public()));
    }
    dn.wait_for_keys(10, Duration::from_secs(240), |_| {})
        .await
        .unwrap();
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    let erin = net::login(&dn, "erin@example.com").await;

    // Epoch 2: the first four nodes, k = 2. They list themselves once whitelisted
    // (one at a time here, so that positions stay 1..=4).
    admin
        .update_epoch(&EpochUpdate {
            epoch: 2,
            n: 4,
            k: 2,
            t: 1,
            prev: 1,
            ..EpochUpdate::default()
        })
        .await
        .unwrap();
    // Epoch 1 names its successor (its node list kept).
    let one: Vec<_> = e.nodes.iter().map(|n| n.address).collect();
    admin
        .update_epoch(&EpochUpdate {
            epoch: 1,
            n: 5,
            k: 3,
            t: 1,
            nodes: one,
            prev: 0,
            next: 2,
        })
        .await
        .unwrap();
    for k in &keys[..4] {
        admin
            .update_whitelist(2, node_address(&k.public()), true)
            .await
            .unwrap();
        wait_listed(&mut dn, &reader, 2, k).await;
    }
    // Nothing happens before the owner sets the PSS flag.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(net::status(&dn, 1, None).await.unwrap()["epoch"], 1);
    admin.update_pss_status(1, 2, 1).await.unwrap();
    for i in 1..=4 {
        net::wait_until(&dn, i, 180, "the next epoch from the contract", |s| {
            s["epoch"].as_u64() == Some(2)
        })
        .await;
    }
    let committee: Vec<_> = dn
        .endpoints()
        .into_iter()
        .filter(|e| e.index <= 4)
        .collect();
    let again = net::login_at(&dn, committee, "erin@example.com").await;
    assert_eq!(again.address, erin.address);
    net::wait_until(&dn, 5, 60, "node 5 to erase its shares", |s| {
        s["shares"].as_u64() == Some(0)
    })
    .await;
    dn.shutdown();
}
