//! Share release through every state of a token and its commitment, on a real
//! LMDB store: a fresh token, a retry, a second reveal, another temporary key,
//! another encoding committed first, a token that is not the committed one, and
//! users without a key or a node without the share.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use k256::elliptic_curve::sec1::ToEncodedPoint;
use torus_engine::dkg::KeyShares;
use torus_engine::{Params, Secp256k1, Suite};

use super::*;
use crate::app::{genesis_writes, App, BlockOutcome, TxCode};
use crate::crypto::{ecies_decrypt, NodeKey};
use crate::store::records::TokenCommitment;
use crate::store::TokenInsert;
use crate::tx::{keys_hash, BatchId, DealerEvidence, ReadySig, SignedTx, TxBody, MIN_BATCH_KEYS};

const VERIFIER: &str = "google";
const TOKEN: &str = "header.payload.signature";

/// A node (member 1 of five, k = 3) whose store holds the keys of one batch,
/// the first assigned to alice, and its share of each.
struct Node {
    _dir: tempfile::TempDir,
    keys: Vec<NodeKey>,
    epoch: EpochInfo,
    store: Store,
    tables: SignerTables,
    /// The client's temporary key.
    temp: k256::SecretKey,
}

fn xy(sk: &k256::SecretKey) -> ([u8; 32], [u8; 32]) {
    let p = sk.public_key().to_encoded_point(false);
    let mut x = [0u8; 32];
    let mut y = [0u8; 32];
    x.copy_from_slice(p.x().unwrap());
    y.copy_from_slice(p.y().unwrap());
    (x, y)
}

impl Node {
    fn new(with_shares: bool) -> Self {
        let (keys, epoch) = EpochInfo::random_for_tests(5);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &keys[0], 64 << 20).unwrap();
        // The replicated state: genesis, one batch of keys, alice's assignment.
        let mut state: BTreeMap<Vec<u8>, Vec<u8>> = genesis_writes(&epoch)
            .unwrap()
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let batch = BatchId {
            epoch: epoch.epoch,
            start: 0,
            count: MIN_BATCH_KEYS,
        };
        let user_keys: Vec<[u8; 33]> = (0..MIN_BATCH_KEYS)
            .map(|_| NodeKey::random().public().compressed())
            .collect();
        let dealers = (1..=3u32)
            .map(|d| DealerEvidence {
                dealer: d,
                commitments: [d as u8; 32],
                readies: (1..=4u32)
                    .map(|s| ReadySig::sign(&keys[s as usize - 1], s, &batch, d, &[d as u8; 32]))
                    .collect(),
            })
            .collect();
        let mut txs = vec![
            (1, TxBody::OpenBatch { batch }),
            (1, TxBody::DealerSet { batch, dealers }),
        ];
        for s in 1..=3 {
            txs.push((
                s,
                TxBody::PublicKeys {
                    batch,
                    keys_hash: keys_hash(&user_keys),
                    keys: user_keys.clone(),
                    vectors_hash: [7; 32],
                },
            ));
        }
        txs.push((
            2,
            TxBody::KeyAssign {
                verifier: VERIFIER.into(),
                verifier_id: "alice".into(),
            },
        ));
        let mut hash = [0u8; 32];
        for (i, (signer, body)) in txs.into_iter().enumerate() {
            let tx = SignedTx::sign(&keys[signer as usize - 1], 1, signer, i as u64, body);
            let out = App
                .finalize_block(&state, i as u64 + 1, &hash, &[tx.encode()])
                .unwrap();
            assert_eq!(out.results[0].code, TxCode::Ok, "{:?}", out.results);
            for (k, v) in out.writes {
                match v {
                    Some(v) => state.insert(k, v),
                    None => state.remove(&k),
                };
            }
            hash = out.app_hash;
        }
        store
            .commit_block(&BlockOutcome {
                height: 1,
                results: Vec::new(),
                events: Vec::new(),
                writes: state.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                app_hash: hash,
            })
            .unwrap();
        if with_shares {
            let params = Params::new(5, 3, 1).unwrap();
            let scalar = |b: u8| Secp256k1::decode_scalar(&[b; 32]).unwrap();
            let point =
                || Secp256k1::decode_point(&NodeKey::random().public().compressed()).unwrap();
            let n = MIN_BATCH_KEYS as usize;
            let shares = KeyShares::<Secp256k1>::from_parts(
                1,
                params,
                (0..n).map(|i| scalar(i as u8 + 1)).collect(),
                (0..n).map(|i| scalar(i as u8 + 101)).collect(),
                (0..n * 3).map(|_| point()).collect(),
            )
            .unwrap();
            store.put_shares(1, 0, &shares).unwrap();
        }
        Node {
            _dir: dir,
            keys,
            epoch,
            store,
            tables: SignerTables::default(),
            temp: k256::SecretKey::random(&mut rand_core::OsRng),
        }
    }

    fn release(&self) -> ShareRelease<'_> {
        ShareRelease {
            epoch: &self.epoch,
            store: &self.store,
            signers: &self.tables,
        }
    }

    /// The commitment data a client signs up for `token` with temporary key `temp`.
    fn data(&self, token: &str, temp: &k256::SecretKey, verifier: &str) -> String {
        let (x, y) = xy(temp);
        let c = hex::encode(keccak256(token.as_bytes()));
        [
            "mug00",
            &c,
            &hex::encode(x),
            &hex::encode(y),
            verifier,
            "1700000000",
        ]
        .join("\u{1c}")
    }

    /// An item with `signers`' signatures on `data`.
    fn item(&self, data: &str, signers: &[u32]) -> ShareItem {
        ShareItem {
            signatures: signers
                .iter()
                .map(|i| super::tests::signature(&self.keys[*i as usize - 1], data))
                .collect(),
            fields: serde_json::Map::new(),
        }
    }

    /// What this node recorded when the client committed (CommitmentRequest).
    fn commit(&self, token: &str, temp: &k256::SecretKey) {
        let (temp_x, temp_y) = xy(temp);
        let c = hex::encode(keccak256(token.as_bytes()));
        let rec = TokenCommitment {
            temp_x,
            temp_y,
            created_s: 1,
            data: String::new(),
            sig: [0; 65],
            revealed_s: 0,
            seq: 0,
        };
        let r = self.store.put_token_if_absent(VERIFIER, &c, &rec).unwrap();
        assert!(matches!(r, TokenInsert::Inserted));
    }

    /// A ShareRequest item for `token` (committed with the node's temporary key) by `user`.
    fn ask(&self, token: &str, user: &str, verified: &Verified) -> Result<Released, ReleaseError> {
        let data = self.data(token, &self.temp, VERIFIER);
        let item = self.item(&data, &[1, 2, 3]);
        let v = Verified {
            verifier_id: user.into(),
            ..verified.clone()
        };
        self.release().release(&item, VERIFIER, token, &v, 10)
    }
}

fn verified() -> Verified {
    Verified {
        verifier_id: "alice".into(),
        token_id: [7; 32],
        other_encodings: Vec::new(),
        expires_s: u64::MAX,
    }
}

#[test]
fn a_fresh_token_releases_the_share_to_the_committed_temporary_key_only() {
    let node = Node::new(true);
    let r = node.ask(TOKEN, "alice", &verified()).unwrap();
    assert_eq!(r.key.index, 0);
    assert_eq!(r.owner, (VERIFIER.to_string(), "alice".to_string()));
    let plain = ecies_decrypt(&node.temp, &r.share).unwrap();
    assert_eq!(
        plain.as_slice(),
        &[1u8; 32][..],
        "the stored share of key 0"
    );
    let thief = k256::SecretKey::random(&mut rand_core::OsRng);
    assert!(ecies_decrypt(&thief, &r.share).is_err());
}

#[test]
fn a_retry_with_the_same_commitment_and_key_is_answered_again() {
    let node = Node::new(true);
    node.commit(TOKEN, &node.temp);
    let a = node.ask(TOKEN, "alice", &verified()).unwrap();
    let b = node.ask(TOKEN, "alice", &verified()).unwrap();
    assert_eq!(a.key.index, b.key.index);
    assert!(
        node.store
            .token(VERIFIER, &hex::encode(keccak256(TOKEN.as_bytes())))
            .unwrap()
            .unwrap()
            .revealed_s
            > 0
    );
}

#[test]
fn a_revealed_token_under_another_commitment_is_refused() {
    let node = Node::new(true);
    node.ask(TOKEN, "alice", &verified()).unwrap();
    // The same signed token (same token id) in other bytes, committed by a thief
    // with its own temporary key.
    let thief = k256::SecretKey::random(&mut rand_core::OsRng);
    let other = format!("{TOKEN}=");
    let data = node.data(&other, &thief, VERIFIER);
    let item = node.item(&data, &[1, 2, 3]);
    let err = node
        .release()
        .release(&item, VERIFIER, &other, &verified(), 11)
        .unwrap_err();
    assert!(matches!(err, ReleaseError::AlreadyRevealed), "{err:?}");
}

#[test]
fn a_quorum_for_another_temporary_key_than_the_stored_one_is_refused() {
    let node = Node::new(true);
    // This node saw the client commit with its key; the quorum names the thief's.
    node.commit(TOKEN, &node.temp);
    let thief = k256::SecretKey::random(&mut rand_core::OsRng);
    let data = node.data(TOKEN, &thief, VERIFIER);
    let item = node.item(&data, &[1, 2, 3]);
    let err = node
        .release()
        .release(&item, VERIFIER, TOKEN, &verified(), 10)
        .unwrap_err();
    assert!(matches!(err, ReleaseError::TempKeyDiffers), "{err:?}");
}

#[test]
fn an_encoding_committed_after_another_encoding_of_its_token_is_refused() {
    let node = Node::new(true);
    let first = "first.encoding.sig";
    node.commit(first, &node.temp);
    node.commit(TOKEN, &node.temp);
    let v = Verified {
        other_encodings: vec![keccak256(first.as_bytes())],
        ..verified()
    };
    let err = node.ask(TOKEN, "alice", &v).unwrap_err();
    assert!(matches!(err, ReleaseError::OtherEncodingFirst), "{err:?}");
    // Never committed here at all, while another encoding was: refused too.
    let uncommitted = "never.committed.sig";
    let err = node.ask(uncommitted, "alice", &v).unwrap_err();
    assert!(matches!(err, ReleaseError::OtherEncodingFirst), "{err:?}");
}

#[test]
fn a_token_that_is_not_the_committed_one_is_refused() {
    let node = Node::new(true);
    let data = node.data(TOKEN, &node.temp, VERIFIER);
    let item = node.item(&data, &[1, 2, 3]);
    let err = node
        .release()
        .release(&item, VERIFIER, "another.token.sig", &verified(), 10)
        .unwrap_err();
    assert!(matches!(err, ReleaseError::TokenMismatch), "{err:?}");
}

#[test]
fn a_quorum_for_another_verifier_or_below_k_is_refused() {
    let node = Node::new(true);
    let data = node.data(TOKEN, &node.temp, "github");
    let err = node
        .release()
        .release(
            &node.item(&data, &[1, 2, 3]),
            VERIFIER,
            TOKEN,
            &verified(),
            10,
        )
        .unwrap_err();
    assert!(
        matches!(err, ReleaseError::QuorumMismatch { .. }),
        "{err:?}"
    );
    let data = node.data(TOKEN, &node.temp, VERIFIER);
    let err = node
        .release()
        .release(&node.item(&data, &[1, 2]), VERIFIER, TOKEN, &verified(), 10)
        .unwrap_err();
    assert!(
        matches!(err, ReleaseError::TooFewSignatures { valid: 2 }),
        "{err:?}"
    );
}

#[test]
fn a_user_without_a_key_gets_no_share_and_the_token_stays_usable() {
    let node = Node::new(true);
    let err = node.ask(TOKEN, "mallory", &verified()).unwrap_err();
    assert!(matches!(err, ReleaseError::NotAssigned), "{err:?}");
}

#[test]
fn a_node_without_the_share_says_so() {
    let node = Node::new(false);
    let err = node.ask(TOKEN, "alice", &verified()).unwrap_err();
    assert!(matches!(err, ReleaseError::NoShare), "{err:?}");
}
