//! The ABCI adapter driven through `tendermint-abci`'s client over a real TCP
//! socket, as CometBFT would drive it; its app hashes are compared with a node
//! that applies the same blocks directly.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use tendermint_abci::ClientBuilder;
use tendermint_proto::v0_38::abci::{
    RequestCheckTx, RequestFinalizeBlock, RequestInfo, RequestQuery,
};
use torus_node::abci::{AbciApp, QUERY_INDEXES};
use torus_node::config::{Genesis, GenesisNode, NodeConfig};
use torus_node::crypto::NodeKey;
use torus_node::node::NodeState;
use torus_node::tx::{EpochInfo, NodeEntry, SignedTx, TxBody};

fn open(dir: &Path, key: &NodeKey, genesis: &Genesis) -> Arc<NodeState> {
    let cfg: NodeConfig = toml::from_str(&format!(
        "data_dir = {:?}\ngenesis = \"unused\"\n",
        dir.to_str().unwrap()
    ))
    .unwrap();
    NodeState::open_with(
        cfg,
        NodeKey::from_bytes(&key.to_bytes()).unwrap(),
        genesis.clone(),
    )
    .unwrap()
}

#[test]
fn abci_adapter_over_a_real_socket_matches_direct_application() {
    let keys: Vec<NodeKey> = (0..3).map(|_| NodeKey::random()).collect();
    let genesis = Genesis {
        chain_id: "abci-test".into(),
        epoch: 1,
        n: 3,
        k: 2,
        t: 0,
        nodes: keys
            .iter()
            .enumerate()
            .map(|(i, k)| GenesisNode {
                index: i as u32 + 1,
                pubkey: hex::encode(k.public().compressed()),
                p2p: String::new(),
                consensus: String::new(),
                rpc: String::new(),
            })
            .collect(),
    };
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let a = open(da.path(), &keys[0], &genesis);
    let b = open(db.path(), &keys[1], &genesis);

    let server = tendermint_abci::ServerBuilder::default()
        .bind("127.0.0.1:0", AbciApp::new(a.clone()))
        .unwrap();
    let addr = server.local_addr();
    std::thread::spawn(move || server.listen().map_err(Box::new));
    let mut client = ClientBuilder::default().connect(&addr).unwrap();

    let info = client.info(RequestInfo::default()).unwrap();
    assert_eq!(info.last_block_height, 0);
    assert_eq!(
        info.last_block_app_hash.to_vec(),
        a.store().head().unwrap().app_hash.to_vec()
    );

    // A hand-over vote (valid), a KeyAssign with no free keys, garbage, and a tx
    // signed by a key outside the committee.
    let next = EpochInfo {
        epoch: 2,
        n: 1,
        k: 1,
        t: 0,
        nodes: vec![NodeEntry {
            index: 1,
            pubkey: NodeKey::random().public().compressed(),
        }],
    };
    let vote = SignedTx::sign(
        &keys[0],
        1,
        1,
        1,
        TxBody::EpochHandover { next: next.clone() },
    )
    .encode();
    let assign = SignedTx::sign(
        &keys[1],
        1,
        2,
        2,
        TxBody::KeyAssign {
            verifier: "google".into(),
            verifier_id: "x@y.z".into(),
        },
    )
    .encode();
    let outsider =
        SignedTx::sign(&NodeKey::random(), 1, 3, 3, TxBody::EpochHandover { next }).encode();
    let garbage = vec![1u8, 2, 3];

    let codes: Vec<u32> = [&vote, &assign, &outsider, &garbage]
        .iter()
        .map(|tx| {
            client
                .check_tx(RequestCheckTx {
                    tx: tx.to_vec().into(),
                    ..Default::default()
                })
                .unwrap()
                .code
        })
        .collect();
    assert_eq!(codes, vec![0, 5, 2, 1]);

    let txs = vec![
        vote.clone(),
        assign.clone(),
        outsider.clone(),
        garbage.clone(),
    ];
    let fin = client
        .finalize_block(RequestFinalizeBlock {
            txs: txs.iter().map(|t| t.clone().into()).collect(),
            height: 1,
            ..Default::default()
        })
        .unwrap();
    let got: Vec<u32> = fin.tx_results.iter().map(|r| r.code).collect();
    assert_eq!(got, vec![0, 5, 2, 1]);
    // Not persisted before Commit.
    assert_eq!(a.store().head().unwrap().height, 0);
    client.commit().unwrap();
    let direct = b.apply_block(1, &txs).unwrap();
    assert_eq!(fin.app_hash.to_vec(), direct.app_hash.to_vec());
    let info = client.info(RequestInfo::default()).unwrap();
    assert_eq!(info.last_block_height, 1);
    assert_eq!(info.last_block_app_hash.to_vec(), direct.app_hash.to_vec());

    let q = client
        .query(RequestQuery {
            path: QUERY_INDEXES.into(),
            data: br#"{"verifier":"google","verifier_id":"x@y.z"}"#.to_vec().into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(q.code, 0);
    assert_eq!(q.value.to_vec(), b"[]".to_vec());
    let bad = client
        .query(RequestQuery {
            path: "nope".into(),
            ..Default::default()
        })
        .unwrap();
    assert_ne!(bad.code, 0);
}
