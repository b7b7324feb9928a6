//! Writes the checked-in seed corpus: a few valid encodings per target, named
//! `seed-<name>` under `corpus/<target>/` (next to this crate's Cargo.toml).
//!
//! `cargo run --manifest-path service/fuzz/Cargo.toml --bin gen_corpus`
//!
//! Deterministic: re-running it rewrites identical files.

use std::path::{Path, PathBuf};

use torus_node::p2p::{Message, PointsMsg, SendMsg};
use torus_node::store::records::{
    encode_batch_id, encode_epoch, encode_keys, encode_u64, BatchRecord, Counters, Head, KeyRecord,
    ShareRecord, TokenCommitment, TokenUse,
};
use torus_node::tx::{BatchId, DealHeader, SignedTx, TxBody};
use torus_node_fuzz::{committee, honest_txs, node_key, user_pubkey, GENESIS_EPOCH};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("seed-{name}")), bytes)
}

fn tagged(tag: u8, b: Vec<u8>) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(b);
    v
}

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");

    // --- records: tag byte (records::decode_any's tag % 11) then the stored value.
    let dir = root.join("records");
    let batch = BatchId {
        epoch: 1,
        start: 0,
        count: 4,
    };
    let records: Vec<(&str, u8, Vec<u8>)> = vec![
        (
            "counters",
            0,
            Counters {
                next_batch_start: 8,
                last_created: 4,
                last_unassigned: 1,
                frozen: false,
            }
            .encode(),
        ),
        (
            "batch",
            1,
            BatchRecord {
                batch,
                dealers: vec![(1, [4; 32]), (2, [5; 32])],
                keys_hash: Some([6; 32]),
                vectors_hash: Some([7; 32]),
            }
            .encode(),
        ),
        (
            "key-assigned",
            2,
            KeyRecord {
                index: 3,
                pubkey: user_pubkey(3),
                owner: Some(("google".into(), "alice@example.com".into())),
            }
            .encode(),
        ),
        (
            "key-free",
            2,
            KeyRecord {
                index: 4,
                pubkey: user_pubkey(4),
                owner: None,
            }
            .encode(),
        ),
        ("epoch", 3, encode_epoch(&committee(GENESIS_EPOCH, 1))),
        ("keys", 4, encode_keys(&[user_pubkey(0), user_pubkey(1)])),
        ("u64", 5, encode_u64(42)),
        (
            "share",
            6,
            ShareRecord {
                index: 7,
                epoch: 1,
                nonce: [1; 12],
                sealed: vec![5; 80],
                commitments: vec![user_pubkey(0), user_pubkey(1), user_pubkey(2)],
            }
            .encode(),
        ),
        (
            "token",
            7,
            TokenCommitment {
                temp_x: [1; 32],
                temp_y: [2; 32],
                created_s: 1_700_000_000,
                data: "mug00\u{1c}abcd\u{1c}google".into(),
                sig: [3; 65],
                revealed_s: 0,
                seq: 1,
            }
            .encode(),
        ),
        (
            "token-use",
            10,
            TokenUse {
                commitment: [4; 32],
                temp_x: [1; 32],
                temp_y: [2; 32],
                expires_s: 1_700_000_600,
            }
            .encode(),
        ),
        (
            "head",
            8,
            Head {
                height: 12,
                app_hash: [9; 32],
            }
            .encode(),
        ),
    ];
    for (name, tag, b) in records {
        write(&dir, name, &tagged(tag, b))?;
    }
    write(&dir, "batch-id", &tagged(9, encode_batch_id(&batch)))?;

    // --- tx: the honest transactions of the fixtures (valid signatures) plus a
    // ReshareComplete from the next committee and a second assignment.
    let dir = root.join("tx");
    let mut txs = honest_txs();
    txs.push(SignedTx::sign(
        &node_key(2),
        GENESIS_EPOCH + 1,
        1,
        10,
        TxBody::ReshareComplete {
            epoch: GENESIS_EPOCH + 1,
            keys: 4,
        },
    ));
    txs.push(SignedTx::sign(
        &node_key(1),
        GENESIS_EPOCH,
        1,
        11,
        TxBody::KeyAssign {
            verifier: "google".into(),
            verifier_id: "bob@example.com".into(),
        },
    ));
    for tx in &txs {
        write(
            &dir,
            &format!("{}-{}", tx.body.kind(), tx.nonce),
            &tx.encode(),
        )?;
    }

    // --- mempool_admission: header (populated state, roomy limits), then every tx
    // above admitted from a peer (raw and re-signed), a reap, a commit of part of
    // it, an eviction, and a decided block that changes the epoch.
    let dir = root.join("mempool_admission");
    let mut program = vec![1u8, 255, 7, 7, 2, 3];
    for (i, tx) in txs.iter().enumerate() {
        let bytes = tx.encode();
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_le_bytes();
        // High nibble: origin (0 local, else a peer); low nibble: admit raw / re-signed.
        for op in [(i as u8 % 3) << 4, ((i as u8 % 3) << 4) | 1] {
            program.push(op);
            program.extend_from_slice(&len);
            program.extend_from_slice(&bytes);
        }
    }
    program.extend_from_slice(&[2, 255, 15, 3, 2, 4, 5, 1, 1, 1]);
    write(&dir, "program", &program)?;

    // --- jrpc_request: request bodies of the client API (spec §5).
    let dir = root.join("jrpc_request");
    let bodies: Vec<(&str, &str)> = vec![
        (
            "lookup",
            r#"{"jsonrpc":"2.0","method":"VerifierLookupRequest","id":10,"params":{"verifier":"google","verifier_id":"a@b.c"},"torus-timestamp":"1","torus-nonce":"x","torus-signature":"y"}"#,
        ),
        (
            "key-assign",
            r#"{"jsonrpc":"2.0","method":"KeyAssign","id":"a","params":[{"verifier":"google","verifier_id":"a@b.c"}]}"#,
        ),
        (
            "commitment",
            r#"{"jsonrpc":"2.0","method":"CommitmentRequest","id":1,"params":{"messageprefix":"mug00","tokencommitment":"0xab","temppubx":"01","temppuby":"02","verifieridentifier":"google","timestamp":"0"}}"#,
        ),
        (
            "share",
            r#"{"jsonrpc":"2.0","method":"ShareRequest","id":2,"params":{"encrypted":"yes","item":[{"idtoken":"t","verifier_id":"v","verifieridentifier":"google","nodesignatures":[null,{"signature":"s","data":"d","nodepubx":"1","nodepuby":"2"},5]}]}}"#,
        ),
        (
            "key-lookup",
            r#"{"jsonrpc":"2.0","method":"KeyLookupRequest","id":null,"params":{"pub_key_X":"01","pub_key_Y":"02"}}"#,
        ),
        (
            "bad-params",
            r#"{"jsonrpc":"2.0","method":"Ping","params":5}"#,
        ),
    ];
    for (name, body) in bodies {
        write(&dir, name, body.as_bytes())?;
    }
    // --- p2p_msg: one message of each kind (payloads are opaque bytes at this layer).
    let dir = root.join("p2p_msg");
    let header = DealHeader::sign(&node_key(1), batch, 1, 2, 3, batch.count, [4; 32], [5; 32]);
    let points = PointsMsg {
        batch,
        dealer: 1,
        digest: [4; 32],
        header: Some(header.clone()),
        ready_sig: None,
        points: vec![6; 16].into(),
    };
    let msgs = vec![
        Message::Tx(honest_txs()[0].encode()),
        Message::Send(SendMsg {
            header,
            commitments: vec![7; 40],
            slice: vec![8; 40].into(),
        }),
        Message::Echo(points.clone()),
        Message::Ready(PointsMsg {
            header: None,
            ready_sig: Some([9; 65]),
            ..points
        }),
        Message::PubShares {
            batch,
            shares: vec![1; 20],
        },
        Message::FetchCommitments {
            batch,
            dealer: 2,
            digest: [3; 32],
        },
        Message::Commitments {
            batch,
            dealer: 2,
            commitments: vec![2; 12],
        },
        Message::Resync { batch },
        Message::RecoverRequest { batch },
        Message::RecoverPoints {
            batch,
            points: vec![5; 9].into(),
        },
        Message::RecoverCommitments {
            batch,
            commitments: vec![6; 10],
        },
        Message::Held {
            epoch: 1,
            below: 2000,
            height: 40,
        },
    ];
    for m in &msgs {
        write(&dir, m.kind(), &m.encode())?;
    }
    println!("wrote seeds under {}", root.display());
    Ok(())
}
