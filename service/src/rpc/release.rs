//! Share release: the rules of a ShareRequest item, as a typed use case behind the
//! thin `ShareRequest` handler ([`super::share`]).
//!
//! A node releases its share of a user's key, encrypted to the temporary key the
//! client committed to, when all of these hold (spec §4, §10.6):
//!
//! 1. the item names a verifier and carries a byte-canonical id token
//!    ([`parse_item`]);
//! 2. the verifier accepts the token (the handler calls it: it may fetch keys);
//! 3. at least k committee members signed a commitment, and k of them signed the
//!    same `mug00` commitment for this verifier ([`commit_quorum`]);
//! 4. the token hashes to that commitment;
//! 5. the temporary key is the one this node stored for the commitment, if it
//!    stored one;
//! 6. the token was never revealed under another commitment or temporary key, and
//!    no other encoding of it was committed here first ([`ShareRelease`] binds the
//!    first reveal in LMDB);
//! 7. the user has a key and this node holds a share of it.
//!
//! Every refusal is a [`ReleaseError`]; [`ReleaseError::to_rpc`] is the one place
//! they become JSON-RPC errors (the legacy client matches some texts).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::app;
use crate::crypto::{ecies_encrypt, sig_from_hex, Ecies, NodePub, TableVerifier};
use crate::hexfmt::{keccak256, parse_hex32};
use crate::jrpc::{msg, RpcError, ShareItem};
use crate::store::records::{KeyRecord, TokenCommitment, TokenUse};
use crate::store::{Store, StoreError, TokenUseBinding};
use crate::tx::EpochInfo;
use crate::verifier::{token_is_canonical, Verified, VerifyError};

/// Why a node refuses to release a share (or cannot).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The item has no verifier name or no id token.
    #[error("item without a verifier or an id token")]
    MissingField,
    /// The id token carries whitespace or padding.
    #[error("the token is not byte-canonical")]
    NotCanonical,
    /// The verifier refused the token.
    #[error("verifier: {0}")]
    Verify(#[from] VerifyError),
    /// Fewer than k valid committee signatures.
    #[error("only {valid} valid signatures")]
    TooFewSignatures {
        /// Valid signatures found.
        valid: usize,
    },
    /// More signatures than committee members.
    #[error("more than {n} node signatures")]
    TooManySignatures {
        /// The committee size.
        n: usize,
    },
    /// No k signatures on one commitment.
    #[error("no {k} signatures on the same data")]
    NoQuorum {
        /// The threshold.
        k: usize,
    },
    /// The quorum's commitment is not a `mug00` commitment for this verifier.
    #[error("the quorum's prefix or verifier differs, need {k}")]
    QuorumMismatch {
        /// The threshold.
        k: usize,
    },
    /// The token does not hash to the signed commitment.
    #[error("the token does not hash to its commitment")]
    TokenMismatch,
    /// This node stored another temporary key for the commitment.
    #[error("the temporary key differs from this node's commitment")]
    TempKeyDiffers,
    /// The temporary key is not a curve point.
    #[error("invalid temporary public key")]
    BadTempKey,
    /// The signed commitment is not 32 bytes of hex.
    #[error("bad commitment")]
    BadCommitment,
    /// Another encoding of this token was committed here first.
    #[error("another encoding of this token was committed first")]
    OtherEncodingFirst,
    /// The token was revealed before under another commitment or temporary key.
    #[error("the token was already revealed under another commitment or temporary key")]
    AlreadyRevealed,
    /// The user has no key yet.
    #[error("no key is assigned to the user")]
    NotAssigned,
    /// An assignment names a key whose record is missing.
    #[error("key {0} is assigned but has no record")]
    KeyMissing(u64),
    /// A key record holds a public key that is not a curve point.
    #[error("key {0} has an invalid public key")]
    BadPublicKey(u64),
    /// This node holds no share of the key.
    #[error("no share of the key is stored")]
    NoShare,
    /// The stored share belongs to another committee than the current one (a
    /// switch not taken over here yet): never released, old and new shares
    /// must not combine.
    #[error("the stored share is of epoch {share}, the committee is epoch {current}")]
    OtherEpoch {
        /// The stored share's epoch.
        share: u64,
        /// The current epoch.
        current: u64,
    },
    /// The client store is full: the reveal cannot be bound, so no share is released.
    #[error("the client store is full: {0}")]
    ClientFull(&'static str),
    /// The store failed.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<StoreError> for ReleaseError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ClientFull(what) => ReleaseError::ClientFull(what),
            e => ReleaseError::Storage(e.to_string()),
        }
    }
}

impl From<app::AppError> for ReleaseError {
    fn from(e: app::AppError) -> Self {
        ReleaseError::Storage(e.to_string())
    }
}

impl ReleaseError {
    /// The JSON-RPC error the client sees (the texts of the original node where
    /// the client matches them).
    pub fn to_rpc(&self) -> RpcError {
        use ReleaseError as E;
        let same_data = "Not enough valid signatures on the same data";
        match self {
            E::MissingField => RpcError::params_internal(msg::COULD_NOT_VERIFY),
            E::NotCanonical => RpcError::params_internal(format!(
                "{} (the token must not carry whitespace or padding)",
                msg::CLEAN_TOKEN
            )),
            E::Verify(e) => RpcError::params_internal(format!("{} {e}", msg::VERIFY_PARAMS)),
            E::TooFewSignatures { valid } => RpcError::params_internal(format!(
                "Not enough valid signatures. Only {valid}valid signatures found."
            )),
            E::TooManySignatures { n } => RpcError::params_internal(format!(
                "{}: more node signatures than the {n} committee members",
                msg::COULD_NOT_VERIFY
            )),
            E::NoQuorum { k } => RpcError::params_internal(format!("{same_data}, need {k}")),
            E::QuorumMismatch { k } => RpcError::params_internal(format!(
                "{same_data}, need {k} (prefix or verifier differs)"
            )),
            E::TokenMismatch => RpcError::params_internal(msg::TOKEN_MISMATCH),
            E::TempKeyDiffers => RpcError::params_internal(format!(
                "{same_data}: temporary key differs from this node's commitment"
            )),
            E::BadTempKey => RpcError::params_internal("invalid temporary public key"),
            E::BadCommitment => RpcError::params_internal(format!("{same_data}: bad commitment")),
            E::OtherEncodingFirst => RpcError::params_internal(format!(
                "{}: another encoding of this token was committed first",
                msg::DUPLICATE_TOKEN
            )),
            E::AlreadyRevealed => RpcError::params_internal(format!(
                "{}: this token was already revealed under another commitment or temporary key",
                msg::DUPLICATE_TOKEN
            )),
            E::NotAssigned => RpcError::internal(format!(
                "share request could not retrieve keyIndexes: {}",
                msg::NOT_ASSIGNED
            )),
            E::KeyMissing(index) => RpcError::internal(format!(
                "Could not find address to key index error: key {index} missing"
            )),
            E::BadPublicKey(index) => RpcError::internal(format!(
                "Could not find address to key index error: bad public key at {index}"
            )),
            E::NoShare => RpcError::internal(msg::NO_SHARE),
            E::OtherEpoch { share, current } => RpcError::internal(format!(
                "{}: this node's share is of epoch {share} and the committee changed to epoch \
                 {current}; retry later",
                msg::NO_SHARE
            )),
            E::ClientFull(what) => RpcError::internal(format!(
                "node busy: its token store is full ({what}); retry later"
            )),
            E::Storage(e) => {
                tracing::error!(error = %e, "storage error while serving a request");
                RpcError::internal("node storage error")
            }
        }
    }
}

/// Precomputed verification tables of the committee's node keys, which sign
/// every commitment a ShareRequest carries (`k` verifications per request).
/// Filled on first use; only keys of the current committee are added, and the
/// map is cleared when it outgrows a few committees (epoch changes).
#[derive(Default)]
pub struct SignerTables {
    keys: std::sync::RwLock<HashMap<[u8; 33], Arc<TableVerifier<k256::Secp256k1>>>>,
}

/// More entries than this and [`SignerTables`] starts again (a committee has
/// at most a few dozen nodes; a table takes about 1 MiB).
const MAX_SIGNER_TABLES: usize = 64;

impl SignerTables {
    /// The table of `compressed` (built on first use).
    pub fn get(&self, compressed: &[u8; 33], pk: &NodePub) -> Arc<TableVerifier<k256::Secp256k1>> {
        if let Some(v) = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(compressed)
        {
            return v.clone();
        }
        let v = Arc::new(pk.table_verifier());
        let mut map = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SIGNER_TABLES {
            map.clear();
        }
        map.entry(*compressed).or_insert(v).clone()
    }
}

/// The fields of a node's signed commitment `data`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignedCommit {
    /// `"mug00"` for a login.
    pub prefix: String,
    /// The token commitment, lower-case hex.
    pub commitment: String,
    /// The verifier the commitment names.
    pub verifier: String,
    /// Temporary public key x.
    pub temp_x: [u8; 32],
    /// Temporary public key y.
    pub temp_y: [u8; 32],
}

/// Parses `prefix ␜ commitment ␜ temp_x ␜ temp_y ␜ verifier ␜ timestamp`.
pub fn parse_commit_data(data: &str) -> Option<SignedCommit> {
    let parts: Vec<&str> = data.split('\u{1c}').collect();
    let [prefix, commitment, tx, ty, verifier, _ts] = parts.as_slice() else {
        return None;
    };
    Some(SignedCommit {
        prefix: (*prefix).to_string(),
        commitment: commitment.to_ascii_lowercase(),
        verifier: (*verifier).to_string(),
        temp_x: parse_hex32(tx)?,
        temp_y: parse_hex32(ty)?,
    })
}

/// What [`commit_quorum`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumCount {
    /// Valid committee signatures, one per member at most.
    pub valid: usize,
    /// The signed value with the most signatures, and that count.
    pub best: Option<(SignedCommit, usize)>,
    /// Signatures checked with curve arithmetic: at most one per committee member,
    /// however many an item carries (a bound on the work one item can ask for).
    pub checked: usize,
}

/// Counts valid committee signatures (one per member), then picks the signed value
/// with the most signatures (ties broken by the smallest value, so every node picks
/// the same). Each member's signature is checked once at most: a second signature
/// claiming a member already tried (valid or not) is skipped before any curve
/// arithmetic, so an item cannot buy more than n verifications.
pub fn commit_quorum(
    epoch: &EpochInfo,
    tables: &SignerTables,
    item: &ShareItem,
    k: usize,
) -> QuorumCount {
    let mut out = QuorumCount {
        valid: 0,
        best: None,
        checked: 0,
    };
    let mut tried = std::collections::HashSet::new();
    let mut groups: BTreeMap<SignedCommit, usize> = BTreeMap::new();
    for s in &item.signatures {
        let (Some(x), Some(y)) = (parse_hex32(&s.nodepubx), parse_hex32(&s.nodepuby)) else {
            continue;
        };
        let Ok(pk) = NodePub::from_xy(&x, &y) else {
            continue;
        };
        let compressed = pk.compressed();
        let Some(idx) = epoch.index_of(&compressed) else {
            continue;
        };
        let Some(sig) = sig_from_hex(&s.signature) else {
            continue;
        };
        if !tried.insert(idx) {
            continue;
        }
        out.checked += 1;
        let verifier = tables.get(&compressed, &pk);
        if !verifier.verify_prehash(&keccak256(s.data.as_bytes()), &sig) {
            continue;
        }
        out.valid += 1;
        if let Some(sc) = parse_commit_data(&s.data) {
            let c = groups.entry(sc.clone()).or_insert(0);
            *c += 1;
            // k = floor(n/2)+1 signatures on one value: no other value can also
            // reach k, so the answer is already decided; skip the remaining checks.
            if *c >= k {
                out.best = Some((sc, *c));
                return out;
            }
        }
    }
    for (k, c) in groups {
        if out.best.as_ref().is_none_or(|(_, bc)| c > *bc) {
            out.best = Some((k, c));
        }
    }
    out
}

/// The verifier name and id token of an item, the token byte-canonical.
pub fn parse_item(fields: &Map<String, Value>) -> Result<(String, String), ReleaseError> {
    let verifier = match fields.get("verifieridentifier") {
        Some(Value::String(v)) if !v.is_empty() => v.clone(),
        _ => return Err(ReleaseError::MissingField),
    };
    let token = match fields.get("idtoken") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err(ReleaseError::MissingField),
    };
    if !token_is_canonical(&token) {
        return Err(ReleaseError::NotCanonical);
    }
    Ok((verifier, token))
}

/// A released share: the key, its owner and the share encrypted to the client's
/// temporary key.
#[derive(Debug)]
pub struct Released {
    /// The key's record (index, public key, owner).
    pub key: KeyRecord,
    /// The key's public key as x, y.
    pub public_xy: ([u8; 32], [u8; 32]),
    /// The verifier and verifier id the key belongs to.
    pub owner: (String, String),
    /// This node's share, ECIES-encrypted to the temporary key.
    pub share: Ecies,
}

/// The share-release use case over one node's committee view, store and signer
/// tables. Everything here is synchronous; the handler runs the verifier (which
/// may fetch keys) before [`ShareRelease::release`].
pub struct ShareRelease<'a> {
    /// The current committee.
    pub epoch: &'a EpochInfo,
    /// This node's store.
    pub store: &'a Store,
    /// The committee's signature tables.
    pub signers: &'a SignerTables,
}

impl ShareRelease<'_> {
    /// Releases this node's share of the key of the user `verified` names, for an
    /// item whose token `token` the verifier `verifier` accepted. `now_s` stamps
    /// the reveal. Steps 3-7 of the module docs, in that order.
    pub fn release(
        &self,
        item: &ShareItem,
        verifier: &str,
        token: &str,
        verified: &Verified,
        now_s: u64,
    ) -> Result<Released, ReleaseError> {
        let k = self.epoch.k as usize;
        // One signature per committee member is all an honest client sends.
        if item.signatures.len() > self.epoch.n as usize {
            return Err(ReleaseError::TooManySignatures {
                n: self.epoch.n as usize,
            });
        }
        let QuorumCount { valid, best, .. } = commit_quorum(self.epoch, self.signers, item, k);
        if valid < k {
            return Err(ReleaseError::TooFewSignatures { valid });
        }
        let Some((signed, count)) = best.filter(|(_, c)| *c >= k) else {
            return Err(ReleaseError::NoQuorum { k });
        };
        if signed.prefix != "mug00" || signed.verifier != verifier {
            return Err(ReleaseError::QuorumMismatch { k });
        }
        tracing::debug!(signatures = count, "commitment quorum");
        if hex::encode(keccak256(token.as_bytes())) != signed.commitment {
            return Err(ReleaseError::TokenMismatch);
        }
        // The temporary key: our own stored commitment, else the quorum's (§10.6).
        let stored = self.store.token(verifier, &signed.commitment)?;
        let (tx, ty) = match &stored {
            Some(s) if (s.temp_x, s.temp_y) != (signed.temp_x, signed.temp_y) => {
                return Err(ReleaseError::TempKeyDiffers)
            }
            Some(s) => (s.temp_x, s.temp_y),
            None => (signed.temp_x, signed.temp_y),
        };
        let temp = k256::PublicKey::from_sec1_bytes(&[&[4u8][..], &tx[..], &ty[..]].concat())
            .map_err(|_| ReleaseError::BadTempKey)?;
        self.guard_single_reveal(
            verifier,
            &signed.commitment,
            stored.as_ref(),
            verified,
            (tx, ty),
            now_s,
        )?;
        let rec = self.assigned(verifier, &verified.verifier_id)?;
        let Some((s, _sp, share)) = self.store.share(rec.index)? else {
            return Err(ReleaseError::NoShare);
        };
        if share.epoch != self.epoch.epoch {
            return Err(ReleaseError::OtherEpoch {
                share: share.epoch,
                current: self.epoch.epoch,
            });
        }
        let public_xy = NodePub::from_sec1(&rec.pubkey)
            .map(|p| p.xy())
            .map_err(|_| ReleaseError::BadPublicKey(rec.index))?;
        let first = s.iter().position(|b| *b != 0).unwrap_or(s.len());
        let plain = zeroize::Zeroizing::new(s.get(first..).unwrap_or(&[]).to_vec());
        let share = ecies_encrypt(&temp, &plain, &mut rand_core::OsRng);
        let owner = rec
            .owner
            .clone()
            .unwrap_or((verifier.to_string(), verified.verifier_id.clone()));
        self.store
            .mark_revealed(verifier, &signed.commitment, now_s)?;
        Ok(Released {
            key: rec,
            public_xy,
            owner,
            share,
        })
    }

    /// The key record of the user `(verifier, verifier_id)`.
    fn assigned(&self, verifier: &str, verifier_id: &str) -> Result<KeyRecord, ReleaseError> {
        let snap = self.store.snapshot()?;
        let Some(index) = app::assigned_index(&snap, verifier, verifier_id)? else {
            return Err(ReleaseError::NotAssigned);
        };
        app::key_record(&snap, index)?.ok_or(ReleaseError::KeyMissing(index))
    }

    /// One signed token, one reveal. A token is what its issuer signed
    /// (`verified.token_id`), not its bytes: an ES256 signature `(r, s)` also
    /// verifies as `(r, n - s)`, so whoever sees a revealed token can re-encode it,
    /// commit the new bytes under their own temporary key and ask for shares again.
    /// Two rules stop that, before any share is encrypted:
    /// - of the encodings of one token, only the one this node saw committed first
    ///   may be revealed here (an honest client commits before it reveals; a thief
    ///   can only commit after);
    /// - the first reveal binds the token to its commitment and temporary key; any
    ///   other reveal of the same token is refused (a retry with the same commitment
    ///   and key is answered).
    fn guard_single_reveal(
        &self,
        verifier: &str,
        commitment: &str,
        stored: Option<&TokenCommitment>,
        verified: &Verified,
        (temp_x, temp_y): ([u8; 32], [u8; 32]),
        now_s: u64,
    ) -> Result<(), ReleaseError> {
        for other in &verified.other_encodings {
            let Some(o) = self.store.token(verifier, &hex::encode(other))? else {
                continue;
            };
            if stored.is_none_or(|s| s.seq >= o.seq) {
                return Err(ReleaseError::OtherEncodingFirst);
            }
        }
        let commitment = parse_hex32(commitment).ok_or(ReleaseError::BadCommitment)?;
        let use_ = TokenUse {
            commitment,
            temp_x,
            temp_y,
            expires_s: verified.expires_s,
        };
        match self
            .store
            .bind_token_use(&verified.token_id, &use_, now_s)?
        {
            TokenUseBinding::Bound | TokenUseBinding::Same => Ok(()),
            TokenUseBinding::Conflict(_) => Err(ReleaseError::AlreadyRevealed),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::crypto::{sig_to_hex, NodeKey};
    use crate::jrpc::NodeSignature;

    fn committee(n: u32) -> (Vec<NodeKey>, EpochInfo) {
        EpochInfo::random_for_tests(n)
    }

    fn data() -> String {
        let h = "ab".repeat(32);
        ["mug00", &"cd".repeat(32), &h, &h, "google", "1700000000"].join("\u{1c}")
    }

    /// `key`'s commitment signature on `data`, as a client forwards it.
    pub(super) fn signature(key: &NodeKey, data: &str) -> NodeSignature {
        let (x, y) = key.public().xy();
        NodeSignature {
            signature: sig_to_hex(&key.sign(data.as_bytes())),
            data: data.to_owned(),
            nodepubx: hex::encode(x),
            nodepuby: hex::encode(y),
        }
    }

    fn item(signatures: Vec<NodeSignature>) -> ShareItem {
        ShareItem {
            signatures,
            fields: Map::new(),
        }
    }

    #[test]
    fn a_quorum_of_distinct_members_is_counted_once_each() {
        let (keys, epoch) = committee(5);
        let tables = SignerTables::default();
        let d = data();
        let mut sigs: Vec<_> = keys.iter().take(3).map(|k| signature(k, &d)).collect();
        // The same member's valid signature again does not count twice.
        sigs.insert(1, sigs[0].clone());
        let q = commit_quorum(&epoch, &tables, &item(sigs), 3);
        assert_eq!(q.valid, 3);
        assert_eq!(q.best.as_ref().map(|(_, c)| *c), Some(3));
        assert_eq!(q.checked, 3);
    }

    #[test]
    fn invalid_signatures_claiming_one_member_are_checked_once() {
        let (keys, epoch) = committee(5);
        let tables = SignerTables::default();
        let d = data();
        // 1,000 different bad signatures, each claiming member 1 (signed by member 2).
        let sigs: Vec<_> = (0..1000)
            .map(|i| {
                let mut s = signature(&keys[1], &format!("{d}{i}"));
                let good = signature(&keys[0], &d);
                s.nodepubx = good.nodepubx;
                s.nodepuby = good.nodepuby;
                s
            })
            .collect();
        let q = commit_quorum(&epoch, &tables, &item(sigs), 3);
        assert_eq!(q.valid, 0);
        assert_eq!(
            q.checked, 1,
            "one member's claims bought more than one check"
        );
    }

    #[test]
    fn more_signatures_than_committee_members_are_refused_before_any_check() {
        let (keys, epoch) = committee(5);
        let d = data();
        let sigs: Vec<_> = keys
            .iter()
            .cycle()
            .take(6)
            .map(|k| signature(k, &d))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &NodeKey::random(), 64 << 20).unwrap();
        let tables = SignerTables::default();
        let release = ShareRelease {
            epoch: &epoch,
            store: &store,
            signers: &tables,
        };
        let verified = Verified {
            verifier_id: "alice@example.com".into(),
            token_id: [7; 32],
            other_encodings: Vec::new(),
            expires_s: u64::MAX,
        };
        let err = release
            .release(&item(sigs), "google", "a.b.c", &verified, 1)
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err, ReleaseError::TooManySignatures { n: 5 }),
            "{err:?}"
        );
    }
}

#[cfg(test)]
#[path = "release_tests.rs"]
mod token_state_tests;
