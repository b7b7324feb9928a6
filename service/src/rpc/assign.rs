//! `KeyAssign`: a user gets a key through a consensus transaction, behind the KeyAssign
//! signer's authentication (spec §10.5): required outside dev mode (a node without a
//! signer key then refuses every KeyAssign), optional in dev mode (issue #10, finding 6).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::lookup::{assigned_record, check_user, lookup_item};
use super::{KeyAssignGate, Reply, RpcState};
use crate::app::TxCode;
use crate::crypto::NodePub;
use crate::hexfmt::keccak256;
use crate::jrpc::{key_assign_auth_message, RpcError, UserParams};
use crate::node::{unix_s, NodeError, NodeState};
use crate::tx::TxBody;

pub(super) async fn key_assign(
    st: &RpcState,
    p: &Map<String, Value>,
    raw: &Bytes,
) -> Result<Value, Reply> {
    match &st.auth {
        KeyAssignGate::Open => {}
        KeyAssignGate::Signed(auth) => auth.check(&st.node, raw).map_err(Reply::Unauthorized)?,
        KeyAssignGate::NoSigner => return Err(Reply::Unauthorized(
            "this node accepts no KeyAssign: no signer key is configured (rpc.key_assign_signers)"
                .into(),
        )),
    }
    let u = UserParams::from_params(p)?;
    check_user(st, &u)?;
    let timeout = Duration::from_millis(st.node.config().rpc.key_assign_timeout_ms);
    let deadline = Instant::now() + timeout;
    let mut waited = false;
    loop {
        // Idempotent: a user who has a key gets it back without a transaction.
        if let Some(rec) = assigned_record(st, &u)? {
            return Ok(json!({"keys": [lookup_item(&rec)?]}));
        }
        // During an epoch hand-over assignment is frozen: wait for the new committee
        // (the request's own timeout bounds it), then assign (signed as a member of
        // the committee that serves by then).
        match wait_unfrozen(st, deadline).await? {
            None => return Err(RpcError::internal(HANDOVER_RETRY).into()),
            Some(w) => waited |= w,
        }
        let tx = st
            .node
            .sign_tx(TxBody::KeyAssign {
                verifier: u.verifier.clone(),
                verifier_id: u.verifier_id.clone(),
            })
            .map_err(|e| RpcError::internal(format!("Unable to broadcast: {e}")))?;
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = match st.node.submit_and_wait(&tx, left).await {
            Ok(o) => o,
            Err(NodeError::Timeout) => {
                return Err(RpcError::internal("key assignment error: timed out").into())
            }
            Err(e @ (NodeError::Broadcast(_) | NodeError::NoConsensus)) => {
                return Err(RpcError::internal(format!("Unable to broadcast: {e}")).into())
            }
            Err(e) => return Err(RpcError::internal(format!("key assignment error: {e}")).into()),
        };
        match outcome.code {
            TxCode::Ok => break,
            TxCode::NoFreeKeys => {
                return Err(RpcError::internal(
                    "key assignment error: no free keys, key generation in progress; retry later",
                )
                .into())
            }
            // The hand-over was decided between our check and the block: wait again.
            TxCode::Frozen => {
                waited = true;
                continue;
            }
            _ => {
                return Err(
                    RpcError::internal(format!("key assignment error: {}", outcome.log)).into(),
                )
            }
        }
    }
    if waited {
        tracing::info!("KeyAssign waited for an epoch hand-over");
    }
    match assigned_record(st, &u)? {
        Some(rec) => Ok(json!({"keys": [lookup_item(&rec)?]})),
        None => Err(RpcError::internal("key assignment error: not visible after commit").into()),
    }
}

/// The answer to a KeyAssign still frozen by a hand-over at its deadline.
pub(crate) const HANDOVER_RETRY: &str =
    "key assignment error: epoch hand-over in progress, assignment is paused until the new committee serves; retry later";

/// Waits, polling committed state, while an epoch hand-over freezes assignment,
/// until `deadline`: None if it is still frozen then, else whether it waited.
async fn wait_unfrozen(st: &RpcState, deadline: Instant) -> Result<Option<bool>, Reply> {
    let mut waited = false;
    loop {
        let frozen = {
            let snap = st.node.store().snapshot().map_err(super::storage_err)?;
            crate::app::counters(&snap)
                .map_err(super::storage_err)?
                .frozen
        };
        if !frozen {
            return Ok(Some(waited));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        waited = true;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// KeyAssign authentication (spec §10.5): a signature by one of the configured signers
/// over the request body, once per signature, at most 60 s old.
pub struct KeyAssignAuth {
    signers: Vec<NodePub>,
    seen: Mutex<HashMap<[u8; 32], u64>>,
    strip: regex::bytes::Regex,
    tail: regex::bytes::Regex,
}

/// Largest accepted age of a KeyAssign signature.
pub const AUTH_MAX_AGE_S: u64 = 60;

impl KeyAssignAuth {
    pub(super) fn new(signers: Vec<NodePub>) -> Self {
        KeyAssignAuth {
            signers,
            seen: Mutex::new(HashMap::new()),
            // Patterns from spec §10.5 (byte level, not a re-serialization).
            strip: regex::bytes::Regex::new(
                r#"\s*"torus-(signature|nonce|timestamp)"\s*:\s*".*?",?"#,
            )
            .unwrap_or_else(|_| unreachable_regex()),
            tail: regex::bytes::Regex::new(r"(\s*),(\s*)}$")
                .unwrap_or_else(|_| unreachable_regex()),
        }
    }

    /// How many signer keys are accepted.
    pub fn signer_count(&self) -> usize {
        self.signers.len()
    }

    fn check(&self, node: &NodeState, raw: &[u8]) -> Result<(), String> {
        let v: Value = serde_json::from_slice(raw).map_err(|_| "body is not JSON".to_string())?;
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("missing {name}"))
        };
        let sig_b64 = field("torus-signature")?;
        let nonce = field("torus-nonce")?;
        let ts = field("torus-timestamp")?;
        let ts_n: u64 = ts
            .parse()
            .map_err(|_| "torus-timestamp is not decimal".to_string())?;
        let now = unix_s();
        if ts_n + AUTH_MAX_AGE_S < now || ts_n > now + AUTH_MAX_AGE_S {
            return Err("signature expired".into());
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig_b64.as_bytes())
            .map_err(|_| "torus-signature is not base64".to_string())?;
        let stripped = self.strip.replace_all(raw, &b""[..]);
        let body = self.tail.replace(&stripped, &b"$1$2}"[..]);
        let (px, py) = node.key().public().hex_xy();
        let msg = key_assign_auth_message(&body, &ts, &nonce, &px, &py);
        if !self
            .signers
            .iter()
            .any(|s| s.verify(msg.as_bytes(), &sig).is_ok())
        {
            return Err("invalid signature".into());
        }
        let id = keccak256(&sig);
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| "auth state poisoned".to_string())?;
        seen.retain(|_, t| *t + 2 * AUTH_MAX_AGE_S >= now);
        if seen.insert(id, now).is_some() {
            return Err("signature already used".into());
        }
        Ok(())
    }
}

fn unreachable_regex() -> regex::bytes::Regex {
    // The patterns above are constant and valid; this is only a typed fallback
    // that matches nothing.
    #[allow(clippy::unwrap_used)]
    regex::bytes::Regex::new(r"[^\s\S]").unwrap()
}
