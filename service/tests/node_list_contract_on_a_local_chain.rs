//! The NodeList contract on a local Ethereum chain (ganache, from `service/tests/eth`): the
//! operator deploys it and opens epoch 1 (n=5, k=3, t=1), five fresh node keys list
//! themselves, and the node's reader turns the epoch back into a genesis. The contract's
//! refusals (outsiders, foreign keys, duplicates, a full epoch, non-owners) come back as
//! typed errors with their reasons.
//!
//! Needs Node.js: the pinned npm packages of `service/tests/eth` are installed by the
//! test (`npm ci`, once); without Node.js the tests skip with a notice, unless
//! `TORUS_REQUIRE_NODE=1`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod net;

use std::time::Duration;

use net::chain::{free_port, start_chain, tooling_present, CHAIN_ID};

use torus_node::chain::{
    self, node_address, Address, ChainError, EpochUpdate, NodeListClient, NodeListOwner,
};
use torus_node::config::NodeConfig;
use torus_node::crypto::NodeKey;

/// What node `i` declares (stored in the contract, never contacted).
fn endpoints(i: usize) -> (String, String, String) {
    (
        format!("http://127.0.0.1:80{i}0/jrpc"),
        format!("/ip4/127.0.0.1/tcp/2665{i}"),
        format!("/ip4/127.0.0.1/tcp/400{i}"),
    )
}

fn addr_hex(a: Address) -> String {
    format!("0x{}", hex::encode(a.as_slice()))
}

fn assert_reverted(e: ChainError, call: &str, error: &str, needle: &str) {
    match &e {
        ChainError::Reverted {
            call: c,
            error: name,
            reason,
        } => {
            assert_eq!((*c, name.as_str()), (call, error), "{e}");
            assert!(
                reason.to_lowercase().contains(&needle.to_lowercase()),
                "{reason:?} should mention {needle}"
            );
        }
        other => panic!("expected {call} to revert with {error}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_list_themselves_and_epoch_one_reads_back_as_the_genesis() {
    if !tooling_present("five_nodes_list_themselves_and_epoch_one_reads_back_as_the_genesis") {
        return;
    }
    let owner = NodeKey::random();
    let nodes: Vec<NodeKey> = (0..5).map(|_| NodeKey::random()).collect();
    let mut funded = vec![&owner];
    funded.extend(nodes.iter());
    let chain = start_chain(&funded).await;

    let contract = chain::deploy(&chain.url, &owner).await.unwrap();
    let contract_s = addr_hex(contract);
    let admin = NodeListOwner::new(&chain.url, &contract_s, &owner).unwrap();
    let client = NodeListClient::new(&chain.url, &contract_s)
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));

    match client.epoch(1).await {
        Err(ChainError::EpochNotFound {
            epoch: 1,
            contract: c,
        }) => assert_eq!(c, contract),
        other => panic!("epoch 1 before updateEpoch: {other:?}"),
    }
    admin
        .update_epoch(&EpochUpdate {
            epoch: 1,
            n: 5,
            k: 3,
            t: 1,
            nodes: vec![],
            prev: 0,
            next: 2,
        })
        .await
        .unwrap();
    for key in &nodes {
        let a = node_address(&key.public());
        assert!(!client.is_whitelisted(1, a).await.unwrap());
        admin.update_whitelist(1, a, true).await.unwrap();
        assert!(client.is_whitelisted(1, a).await.unwrap());
        assert!(!client.is_whitelisted(2, a).await.unwrap());
    }

    // Registration order differs from key order: positions follow registration.
    let order = [2usize, 0, 4, 1, 3];
    for (pos, &i) in order[..3].iter().enumerate() {
        let (rpc, consensus, p2p) = endpoints(i);
        let got = client
            .list_node(&nodes[i], 1, &rpc, &consensus, &p2p)
            .await
            .unwrap();
        assert_eq!(got as usize, pos + 1, "node {i}");
        assert!(client
            .node_registered(1, node_address(&nodes[i].public()))
            .await
            .unwrap());
    }

    // Three of five: not a genesis yet, and a short wait gives up with a clear error.
    let partial = client.epoch(1).await.unwrap();
    assert_eq!(partial.nodes.len(), 3);
    assert!(!partial.is_full());
    match partial.to_genesis("x") {
        Err(ChainError::EpochIncomplete {
            epoch: 1,
            registered: 3,
            n: 5,
        }) => {}
        other => panic!("to_genesis of a partial epoch: {other:?}"),
    }
    match client
        .wait_for_full_epoch(1, Duration::from_millis(300))
        .await
    {
        Err(e @ ChainError::TimedOut { epoch: 1, .. }) => {
            let text = e.to_string();
            assert!(text.contains("3 of its 5 nodes"), "{text}");
        }
        other => panic!("waiting on a partial epoch: {other:?}"),
    }

    // A waiter started now sees the epoch fill.
    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .wait_for_full_epoch(1, Duration::from_secs(120))
                .await
        })
    };
    for (pos, &i) in order.iter().enumerate().skip(3) {
        let (rpc, consensus, p2p) = endpoints(i);
        let got = client
            .list_node(&nodes[i], 1, &rpc, &consensus, &p2p)
            .await
            .unwrap();
        assert_eq!(got as usize, pos + 1, "node {i}");
    }
    let full = waiter.await.unwrap().unwrap();
    let epoch = client.epoch(1).await.unwrap();
    assert_eq!(full, epoch);
    assert_eq!(
        (
            epoch.epoch,
            epoch.n,
            epoch.k,
            epoch.t,
            epoch.prev,
            epoch.next
        ),
        (1, 5, 3, 1, 0, 2)
    );
    assert_eq!(epoch.nodes.len(), 5);
    for (pos, &i) in order.iter().enumerate() {
        let node = &epoch.nodes[pos];
        let (rpc, consensus, p2p) = endpoints(i);
        assert_eq!(node.position as usize, pos + 1);
        assert_eq!(node.address, node_address(&nodes[i].public()));
        assert_eq!(node.pubkey, nodes[i].public());
        assert_eq!(
            (&node.declared_ip, &node.consensus, &node.p2p),
            (&rpc, &consensus, &p2p)
        );
    }

    // The genesis: index = position, pubkey = 04‖x‖y, rpc/consensus/p2p as declared.
    let genesis = epoch.to_genesis("torus-test-chain").unwrap();
    assert_eq!(genesis.chain_id, "torus-test-chain");
    assert_eq!(
        (genesis.epoch, genesis.n, genesis.k, genesis.t),
        (1, 5, 3, 1)
    );
    for (pos, &i) in order.iter().enumerate() {
        let g = &genesis.nodes[pos];
        let (x, y) = nodes[i].public().xy();
        let (rpc, consensus, p2p) = endpoints(i);
        assert_eq!(g.index as usize, pos + 1);
        assert_eq!(g.pubkey, format!("04{}{}", hex::encode(x), hex::encode(y)));
        assert_eq!((&g.rpc, &g.consensus, &g.p2p), (&rpc, &consensus, &p2p));
    }
    let info = genesis.epoch_info().unwrap();
    let compressed: Vec<[u8; 33]> = order
        .iter()
        .map(|&i| nodes[i].public().compressed())
        .collect();
    assert_eq!(
        info.nodes.iter().map(|n| n.pubkey).collect::<Vec<_>>(),
        compressed
    );

    // A node that is already listed: ensure_listed returns its place without a second entry.
    let again = client
        .ensure_listed(&nodes[4], 1, "http://127.0.0.1:1/jrpc", "", "")
        .await
        .unwrap();
    assert_eq!(again, 3);
    assert_eq!(client.epoch(1).await.unwrap(), epoch);

    // pssStatus, set by the owner.
    assert_eq!(client.pss_status(1, 2).await.unwrap(), 0);
    admin.update_pss_status(1, 2, 1).await.unwrap();
    assert_eq!(client.pss_status(1, 2).await.unwrap(), 1);
    assert_eq!(client.pss_status(2, 1).await.unwrap(), 0);

    // What a node does at start with a `[node_list]` table.
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("node.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "data_dir = {:?}\n[node_list]\neth_rpc = {:?}\ncontract = {:?}\nepoch = 1\npoll_s = 1\nwait_s = 30\n",
            dir.path().join("data"),
            chain.url,
            contract_s
        ),
    )
    .unwrap();
    let cfg = NodeConfig::load(&cfg_path).unwrap();
    let loaded = chain::load_genesis(&cfg).await.unwrap();
    assert_eq!(loaded.chain_id, format!("nodelist-{CHAIN_ID}-{contract_s}"));
    assert_eq!(
        loaded,
        epoch
            .to_genesis(format!("nodelist-{CHAIN_ID}-{contract_s}"))
            .unwrap()
    );
    drop(chain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_refuses_outsiders_foreign_keys_duplicates_full_epochs_and_non_owners() {
    if !tooling_present(
        "the_contract_refuses_outsiders_foreign_keys_duplicates_full_epochs_and_non_owners",
    ) {
        return;
    }
    let owner = NodeKey::random();
    let a = NodeKey::random();
    let b = NodeKey::random();
    let outsider = NodeKey::random();
    let successor = NodeKey::random();
    let chain = start_chain(&[&owner, &a, &b, &outsider, &successor]).await;
    let contract = addr_hex(chain::deploy(&chain.url, &owner).await.unwrap());
    let admin = NodeListOwner::new(&chain.url, &contract, &owner).unwrap();
    let client = NodeListClient::new(&chain.url, &contract).unwrap();
    let addr = |k: &NodeKey| node_address(&k.public());

    // Listing in an epoch that does not exist.
    let e = client
        .list_node(&a, 7, "http://a/jrpc", "", "")
        .await
        .unwrap_err();
    assert_reverted(e, "listNode", "EpochNotFound", "epoch 7");

    admin
        .update_epoch(&EpochUpdate {
            epoch: 1,
            n: 5,
            k: 3,
            t: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    admin.update_whitelist(1, addr(&a), true).await.unwrap();
    admin.update_whitelist(1, addr(&b), true).await.unwrap();

    // An account that is not whitelisted.
    let e = client
        .list_node(&outsider, 1, "http://o/jrpc", "", "")
        .await
        .unwrap_err();
    assert_reverted(e, "listNode", "NotWhitelisted", &addr_hex(addr(&outsider)));
    // Whitelisting can be withdrawn.
    admin
        .update_whitelist(1, addr(&outsider), true)
        .await
        .unwrap();
    admin
        .update_whitelist(1, addr(&outsider), false)
        .await
        .unwrap();
    let e = client
        .list_node(&outsider, 1, "http://o/jrpc", "", "")
        .await
        .unwrap_err();
    assert_reverted(e, "listNode", "NotWhitelisted", "not whitelisted");

    // A whitelisted node declaring another node's public key.
    let e = client
        .list_node_with_pubkey(&a, 1, "http://a/jrpc", b.public().xy(), "", "")
        .await
        .unwrap_err();
    assert_reverted(e, "listNode", "NotCallersKey", &addr_hex(addr(&b)));

    // Its own key goes in; a second listing does not.
    assert_eq!(
        client
            .list_node(
                &a,
                1,
                "http://a/jrpc",
                "/ip4/1.2.3.4/tcp/1",
                "/ip4/1.2.3.4/tcp/2"
            )
            .await
            .unwrap(),
        1
    );
    let e = client
        .list_node(&a, 1, "http://a/jrpc", "", "")
        .await
        .unwrap_err();
    assert_reverted(e, "listNode", "AlreadyRegistered", &addr_hex(addr(&a)));
    assert_eq!(client.epoch(1).await.unwrap().nodes.len(), 1);

    // A full epoch (n = 1).
    admin
        .update_epoch(&EpochUpdate {
            epoch: 2,
            n: 1,
            k: 1,
            t: 0,
            prev: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    admin.update_whitelist(2, addr(&a), true).await.unwrap();
    admin.update_whitelist(2, addr(&b), true).await.unwrap();
    assert_eq!(
        client
            .list_node(&b, 2, "http://b/jrpc", "", "")
            .await
            .unwrap(),
        1
    );
    let e = client
        .list_node(&a, 2, "http://a/jrpc", "", "")
        .await
        .unwrap_err();
    assert_reverted(e, "listNode", "EpochFull", "epoch 2");

    // Only the owner administers; ownership moves with transferOwnership.
    let not_owner = NodeListOwner::new(&chain.url, &contract, &a).unwrap();
    let e = not_owner
        .update_whitelist(1, addr(&outsider), true)
        .await
        .unwrap_err();
    assert_reverted(e, "updateWhitelist", "NotOwner", &addr_hex(addr(&a)));
    let e = not_owner.update_pss_status(1, 2, 1).await.unwrap_err();
    assert_reverted(e, "updatePssStatus", "NotOwner", "not the contract owner");
    let e = admin
        .update_epoch(&EpochUpdate::default())
        .await
        .unwrap_err();
    assert_reverted(e, "updateEpoch", "ZeroEpoch", "reserved");
    admin.transfer_ownership(addr(&successor)).await.unwrap();
    let e = admin
        .update_whitelist(1, addr(&outsider), true)
        .await
        .unwrap_err();
    assert_reverted(e, "updateWhitelist", "NotOwner", &addr_hex(addr(&owner)));
    let next = NodeListOwner::new(&chain.url, &contract, &successor).unwrap();
    next.update_whitelist(1, addr(&outsider), true)
        .await
        .unwrap();
    assert!(client.is_whitelisted(1, addr(&outsider)).await.unwrap());

    // No contract at an address, and no chain at a port.
    let empty = NodeListClient::new(&chain.url, &addr_hex(addr(&outsider))).unwrap();
    match empty.epoch(1).await {
        Err(ChainError::NotAContract { address }) => assert_eq!(address, addr(&outsider)),
        other => panic!("reading a contract-less address: {other:?}"),
    }
    let closed = format!("http://127.0.0.1:{}", free_port());
    let gone = NodeListClient::new(&closed, &contract).unwrap();
    match gone.epoch(1).await {
        Err(ChainError::Unreachable { url, .. }) => assert!(url.starts_with(&closed), "{url}"),
        other => panic!("reading through a closed port: {other:?}"),
    }
    match gone
        .wait_for_full_epoch(1, Duration::from_millis(200))
        .await
    {
        Err(ChainError::TimedOut { last, .. }) => {
            assert!(matches!(*last, ChainError::Unreachable { .. }), "{last}")
        }
        other => panic!("waiting through a closed port: {other:?}"),
    }
    // Malformed inputs are refused before any request.
    assert!(matches!(
        NodeListClient::new("ftp://x", &contract),
        Err(ChainError::Invalid { .. })
    ));
    assert!(matches!(
        NodeListClient::new(&chain.url, "0x1234"),
        Err(ChainError::Invalid { .. })
    ));
    drop(chain);
}
