//! Token commitments (CommitmentRequest) and token reveals (ShareRequest): the
//! `tokens` database.

use std::sync::atomic::Ordering;

use super::env::{Store, StoreError};
use super::records::{TokenCommitment, TokenUse};
use crate::hexfmt::keccak256;

/// Result of recording a token commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenInsert {
    /// New commitment stored.
    Inserted,
    /// Already seen; the stored record.
    Existing(TokenCommitment),
}

/// The key of the token commitments' arrival counter (token keys are 32-byte hashes).
const TOKEN_SEQ: &[u8] = b"token-seq";

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
    /// atomic (one write transaction).
    pub fn put_token_if_absent(
        &self,
        verifier: &str,
        commitment: &str,
        rec: &TokenCommitment,
    ) -> Result<TokenInsert, StoreError> {
        let key = token_key(verifier, commitment);
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.tokens.get(&w, &key)? {
            // A record of an older format (no arrival order) is replaced below.
            if let Ok(old) = TokenCommitment::decode(b) {
                return Ok(TokenInsert::Existing(old));
            }
        }
        // Arrival order: the write transactions are serialised, so the counter read and
        // written here orders every commitment this node stores.
        let seq = match self.tokens.get(&w, TOKEN_SEQ)? {
            Some(b) => crate::store::records::decode_u64(b).map_err(|e| StoreError::Corrupt {
                what: "token sequence",
                err: e.to_string(),
            })?,
            None => 0,
        } + 1;
        self.tokens
            .put(&mut w, TOKEN_SEQ, &crate::store::records::encode_u64(seq))?;
        let mut rec = rec.clone();
        rec.seq = seq;
        self.tokens.put(&mut w, &key, &rec.encode())?;
        w.commit()?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(TokenInsert::Inserted)
    }

    /// The token commitment for (verifier, commitment).
    pub fn token(
        &self,
        verifier: &str,
        commitment: &str,
    ) -> Result<Option<TokenCommitment>, StoreError> {
        let r = self.env.read_txn()?;
        self.tokens
            .get(&r, &token_key(verifier, commitment))?
            .map(|b| {
                TokenCommitment::decode(b).map_err(|e| StoreError::Corrupt {
                    what: "token",
                    err: e.to_string(),
                })
            })
            .transpose()
    }

    /// Binds the first reveal of the signed token `token_id` (under any verifier name) to
    /// `use_`'s commitment and temporary key, or reports the earlier binding; atomic (one write
    /// transaction), so two concurrent reveals of one token cannot both be bound.
    pub fn bind_token_use(
        &self,
        token_id: &[u8; 32],
        use_: &TokenUse,
    ) -> Result<TokenUseBinding, StoreError> {
        let key = token_use_key(token_id);
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.tokens.get(&w, &key)? {
            let old = TokenUse::decode(b).map_err(|e| StoreError::Corrupt {
                what: "token use",
                err: e.to_string(),
            })?;
            let same = old.commitment == use_.commitment
                && old.temp_x == use_.temp_x
                && old.temp_y == use_.temp_y;
            return Ok(if same {
                TokenUseBinding::Same
            } else {
                TokenUseBinding::Conflict(old)
            });
        }
        self.tokens.put(&mut w, &key, &use_.encode())?;
        w.commit()?;
        // Durable like token commitments: a killed process loses nothing, a power loss at most
        // the last SYNC_INTERVAL (and the commitment order below still guards the token).
        self.dirty.store(true, Ordering::SeqCst);
        Ok(TokenUseBinding::Bound)
    }

    /// Marks a token as revealed (first successful ShareRequest) if not already.
    pub fn mark_revealed(
        &self,
        verifier: &str,
        commitment: &str,
        now_s: u64,
    ) -> Result<(), StoreError> {
        let key = token_key(verifier, commitment);
        let mut w = self.env.write_txn()?;
        if let Some(b) = self.tokens.get(&w, &key)? {
            let mut rec = TokenCommitment::decode(b).map_err(|e| StoreError::Corrupt {
                what: "token",
                err: e.to_string(),
            })?;
            if rec.revealed_s == 0 {
                rec.revealed_s = now_s.max(1);
                self.tokens.put(&mut w, &key, &rec.encode())?;
                w.commit()?;
                self.dirty.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::NodeKey;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s =
            Store::open(dir.path(), &NodeKey::random(), 64 << 20).unwrap_or_else(|e| panic!("{e}"));
        (dir, s)
    }

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
            s.bind_token_use(&id, &first).ok(),
            Some(TokenUseBinding::Bound)
        );
        assert_eq!(
            s.bind_token_use(&id, &first).ok(),
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
                s.bind_token_use(&id, &attempt).ok(),
                Some(TokenUseBinding::Conflict(first.clone()))
            );
        }
        // Another token binds on its own.
        assert_eq!(
            s.bind_token_use(&[8; 32], &first).ok(),
            Some(TokenUseBinding::Bound)
        );
    }
}
