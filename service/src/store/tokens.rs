//! Token commitments (CommitmentRequest) and token reveals (ShareRequest): keys and the
//! store's entry points. The records live in the client store ([`super::client`]); the
//! consensus environment's old `tokens` database (nodes before the client store) is still
//! read until the client store is a token lifetime old, then emptied by the prune task.

use std::sync::atomic::Ordering;

use super::client::{ClientStore, Pruned};
use super::env::Store;
use super::error::StoreError;
use super::records::{decode_u64, TokenCommitment, TokenUse};
use crate::hexfmt::keccak256;

/// Result of recording a token commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInsert {
    /// New commitment stored.
    Inserted,
    /// Already seen; the stored record.
    Existing(TokenCommitment),
}

/// The old `tokens` database's arrival counter key (token keys are 32-byte hashes).
const LEGACY_TOKEN_SEQ: &[u8] = b"token-seq";

/// Result of binding a token's first reveal ([`Store::bind_token_use`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUseBinding {
    /// First reveal of this token: bound to the given commitment and temporary key.
    Bound,
    /// Revealed before under the same commitment and temporary key (a client's retry).
    Same,
    /// Revealed before under another encoding or temporary key: the stored binding.
    Conflict(TokenUse),
}

/// The key of a token-use record: its own domain inside the `tokens` database. Not scoped by
/// verifier name: one signed token is one token under every name that would accept it.
fn token_use_key(token_id: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(42);
    m.extend_from_slice(b"token-use\0");
    m.extend_from_slice(token_id);
    keccak256(&m).to_vec()
}

fn token_key(verifier: &str, commitment: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(verifier.len() + commitment.len() + 1);
    m.extend_from_slice(verifier.as_bytes());
    m.push(0);
    m.extend_from_slice(commitment.as_bytes());
    keccak256(&m).to_vec()
}

impl Store {
    /// Records a token commitment unless one exists for (verifier, commitment);
    /// atomic (one write transaction of the client store). Refused with
    /// [`StoreError::ClientFull`] when the client store is full.
    pub fn put_token_if_absent(
        &self,
        verifier: &str,
        commitment: &str,
        rec: &TokenCommitment,
    ) -> Result<TokenInsert, StoreError> {
        let key = token_key(verifier, commitment);
        if let Some(old) = self.legacy_token(&key)? {
            return Ok(TokenInsert::Existing(old));
        }
        Ok(match self.client.insert_commitment(&key, rec)? {
            None => TokenInsert::Inserted,
            Some(old) => TokenInsert::Existing(old),
        })
    }

    /// The token commitment for (verifier, commitment).
    pub fn token(
        &self,
        verifier: &str,
        commitment: &str,
    ) -> Result<Option<TokenCommitment>, StoreError> {
        let key = token_key(verifier, commitment);
        match self.client.commitment(&key)? {
            Some(t) => Ok(Some(t)),
            None => self.legacy_token(&key),
        }
    }

    /// Binds the first reveal of the signed token `token_id` (under any verifier name) to
    /// `use_`'s commitment and temporary key, or reports the earlier binding; atomic (one write
    /// transaction), so two concurrent reveals of one token cannot both be bound. `now_s` is
    /// the reveal time (the record is pruned a token lifetime later).
    pub fn bind_token_use(
        &self,
        token_id: &[u8; 32],
        use_: &TokenUse,
        now_s: u64,
    ) -> Result<TokenUseBinding, StoreError> {
        let key = token_use_key(token_id);
        let old = match self.legacy_use(&key)? {
            Some(old) => Some(old),
            None => self.client.insert_use(&key, use_, now_s)?,
        };
        let Some(old) = old else {
            return Ok(TokenUseBinding::Bound);
        };
        let same = old.commitment == use_.commitment
            && old.temp_x == use_.temp_x
            && old.temp_y == use_.temp_y;
        Ok(if same {
            TokenUseBinding::Same
        } else {
            TokenUseBinding::Conflict(old)
        })
    }

    /// Marks a token as revealed (first successful ShareRequest) if not already.
    pub fn mark_revealed(
        &self,
        verifier: &str,
        commitment: &str,
        now_s: u64,
    ) -> Result<(), StoreError> {
        self.client
            .mark_revealed(&token_key(verifier, commitment), now_s)
    }

    /// Deletes client records (token commitments and reveals) written more than
    /// `lifetime_s` before `now_s`, at most `max_records` per call; once the client store is
    /// older than `lifetime_s`, also empties the consensus environment's old `tokens`
    /// database (where nodes before the client store kept these records), at most
    /// `max_records` per call.
    pub fn prune_client_records(
        &self,
        now_s: u64,
        lifetime_s: u64,
        max_records: usize,
    ) -> Result<Pruned, StoreError> {
        let mut out = self.client.prune(now_s, lifetime_s, max_records)?;
        if self.client.created_s()?.saturating_add(lifetime_s) < now_s {
            let mut w = self.env.write_txn()?;
            let keys: Vec<Vec<u8>> = self
                .tokens
                .iter(&w)?
                .take(max_records.saturating_add(1))
                .map(|r| r.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()?;
            if !keys.is_empty() {
                out.more |= keys.len() > max_records;
                for k in keys.iter().take(max_records) {
                    self.tokens.delete(&mut w, k)?;
                }
                w.commit()?;
                self.dirty.store(true, Ordering::SeqCst);
            }
        }
        Ok(out)
    }

    /// The client store (token commitments and reveals).
    pub fn client(&self) -> &ClientStore {
        &self.client
    }

    /// Carries the old `tokens` database's arrival order over to the client store, so that
    /// a commitment made after an upgrade orders after every one made before it.
    pub(super) fn continue_legacy_seq(&self) -> Result<(), StoreError> {
        let r = self.env.read_txn()?;
        if let Some(b) = self.tokens.get(&r, LEGACY_TOKEN_SEQ)? {
            let seq = decode_u64(b).map_err(|e| StoreError::Corrupt {
                what: "token sequence",
                err: e.to_string(),
            })?;
            drop(r);
            self.client.raise_seq(seq)?;
        }
        Ok(())
    }

    /// A commitment in the old `tokens` database (read-only: kept until the client store
    /// is a token lifetime old, then pruned).
    fn legacy_token(&self, key: &[u8]) -> Result<Option<TokenCommitment>, StoreError> {
        let r = self.env.read_txn()?;
        // A record of an older format (no arrival order) is ignored.
        Ok(self
            .tokens
            .get(&r, key)?
            .and_then(|b| TokenCommitment::decode(b).ok()))
    }

    /// A token use in the old `tokens` database.
    fn legacy_use(&self, key: &[u8]) -> Result<Option<TokenUse>, StoreError> {
        let r = self.env.read_txn()?;
        self.tokens
            .get(&r, key)?
            .map(|b| {
                TokenUse::decode(b).map_err(|e| StoreError::Corrupt {
                    what: "token use",
                    err: e.to_string(),
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store as store;

    fn commitment(t: u8) -> TokenCommitment {
        TokenCommitment {
            temp_x: [t; 32],
            temp_y: [t; 32],
            created_s: 1_700_000_000,
            data: "mug00".into(),
            sig: [0; 65],
            revealed_s: 0,
            seq: 0,
        }
    }

    #[test]
    fn token_commitments_are_ordered_by_arrival_even_within_one_second() {
        let (_d, s) = store();
        for (i, c) in ["aa", "bb", "cc"].iter().enumerate() {
            assert_eq!(
                s.put_token_if_absent("v", c, &commitment(1)).ok(),
                Some(TokenInsert::Inserted)
            );
            let got = s.token("v", c).ok().flatten().map(|r| r.seq);
            assert_eq!(got, Some(i as u64 + 1));
        }
        // A repeat keeps its first arrival.
        match s.put_token_if_absent("v", "aa", &commitment(2)) {
            Ok(TokenInsert::Existing(old)) => assert_eq!((old.seq, old.temp_x), (1, [1; 32])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_use_binds_once_and_answers_only_the_same_reveal() {
        let (_d, s) = store();
        let first = TokenUse {
            commitment: [1; 32],
            temp_x: [2; 32],
            temp_y: [3; 32],
            expires_s: 10,
        };
        let id = [9; 32];
        assert_eq!(
            s.bind_token_use(&id, &first, 1).ok(),
            Some(TokenUseBinding::Bound)
        );
        assert_eq!(
            s.bind_token_use(&id, &first, 1).ok(),
            Some(TokenUseBinding::Same)
        );
        let other_key = TokenUse {
            temp_x: [4; 32],
            ..first.clone()
        };
        let other_encoding = TokenUse {
            commitment: [5; 32],
            ..first.clone()
        };
        for attempt in [other_key, other_encoding] {
            assert_eq!(
                s.bind_token_use(&id, &attempt, 1).ok(),
                Some(TokenUseBinding::Conflict(first.clone()))
            );
        }
        // Another token binds on its own.
        assert_eq!(
            s.bind_token_use(&[8; 32], &first, 1).ok(),
            Some(TokenUseBinding::Bound)
        );
    }

    #[test]
    fn records_of_the_old_tokens_database_still_guard_until_the_client_store_is_a_lifetime_old() {
        let (_d, s) = store();
        // A reveal and a commitment a node stored before the client store existed.
        let first = TokenUse {
            commitment: [1; 32],
            temp_x: [2; 32],
            temp_y: [3; 32],
            expires_s: u64::MAX,
        };
        let id = [9; 32];
        let mut w = s.env.write_txn().unwrap_or_else(|e| panic!("{e}"));
        s.tokens
            .put(&mut w, &token_use_key(&id), &first.encode())
            .unwrap_or_else(|e| panic!("{e}"));
        s.tokens
            .put(&mut w, &token_key("v", "aa"), &commitment(1).encode())
            .unwrap_or_else(|e| panic!("{e}"));
        w.commit().unwrap_or_else(|e| panic!("{e}"));
        // Still binding: another temporary key is a conflict; the commitment is found.
        let other = TokenUse {
            temp_x: [4; 32],
            ..first.clone()
        };
        assert_eq!(
            s.bind_token_use(&id, &other, 5).ok(),
            Some(TokenUseBinding::Conflict(first.clone()))
        );
        assert!(matches!(
            s.put_token_if_absent("v", "aa", &commitment(2)),
            Ok(TokenInsert::Existing(_))
        ));
        // Once the client store is a lifetime old, the old records are deleted.
        let created = s.client().created_s().unwrap_or_else(|e| panic!("{e}"));
        s.prune_client_records(created + 700, 720, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.token("v", "aa").ok().flatten().is_some());
        s.prune_client_records(created + 721, 720, 100)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.token("v", "aa").ok(), Some(None));
        assert_eq!(
            s.bind_token_use(&id, &other, created + 721).ok(),
            Some(TokenUseBinding::Bound)
        );
    }
}
