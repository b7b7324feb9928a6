//! A Rust implementation of the legacy `@toruslabs/torus.js` node flow (spec §8):
//! lookup → KeyAssign → lookup → CommitmentRequest to all → ShareRequest to all →
//! decrypt → Lagrange at 0 over k shares → check against the agreed public key.
//! Used by `torus-node login` and by the test suite.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ff::PrimeField;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{ProjectivePoint, Scalar, SecretKey};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::crypto::{ecies_decrypt, Ecies, NodeKey, NodePub};
use crate::hexfmt::{keccak256, parse_hex32, parse_hex_u64};
use crate::jrpc::key_assign_auth_message;

/// A client-side failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// HTTP failure talking to a node.
    #[error("node {node}: {err}")]
    Http {
        /// Node index.
        node: u32,
        /// Cause.
        err: String,
    },
    /// Not enough matching answers.
    #[error("{0}")]
    Threshold(String),
    /// A node answered a JSON-RPC error where one was not expected.
    #[error("node {node}: {error}")]
    Rpc {
        /// Node index.
        node: u32,
        /// Error object.
        error: Value,
    },
    /// Shares did not combine into the agreed key.
    #[error("could not reconstruct the key: {0}")]
    Reconstruct(String),
}

/// One node endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Node index (the sharing x-coordinate).
    pub index: u32,
    /// `http://host:port/jrpc`.
    pub url: String,
}

/// The result of a login.
pub struct Login {
    /// Key index.
    pub index: u64,
    /// The user's private key.
    pub private_key: Zeroizing<[u8; 32]>,
    /// The user's public key x, y.
    pub public_key: ([u8; 32], [u8; 32]),
    /// Ethereum address (EIP-55).
    pub address: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("index", &self.index)
            .field("address", &self.address)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// How long the two rounds of a [`Client::retrieve`] took, each until the last
/// node answered (all nodes are asked at once).
#[derive(Clone, Copy, Debug)]
pub struct RetrieveTimes {
    /// The CommitmentRequest round.
    pub commitment: Duration,
    /// The ShareRequest round.
    pub share: Duration,
}

/// A client for a cluster.
#[derive(Clone, Debug)]
pub struct Client {
    endpoints: Vec<Endpoint>,
    http: reqwest::Client,
    signer: Option<KeyAssignSigner>,
}

/// Signs KeyAssign requests as a KeyAssign signer does (spec §10.5), for nodes that
/// require it: the signer's key and each node's public key by node index.
#[derive(Clone, Debug)]
pub struct KeyAssignSigner {
    key: Arc<NodeKey>,
    nodes: BTreeMap<u32, NodePub>,
}

impl KeyAssignSigner {
    /// A signer with `key` for the nodes `(index, public key)`.
    pub fn new(key: Arc<NodeKey>, nodes: impl IntoIterator<Item = (u32, NodePub)>) -> Self {
        KeyAssignSigner {
            key,
            nodes: nodes.into_iter().collect(),
        }
    }

    /// `body` (a JSON object) with the three `torus-*` members appended, signed for
    /// node `index`; `None` when that node's key is unknown.
    pub fn sign(&self, index: u32, body: &str, now: u64) -> Option<String> {
        let node = self.nodes.get(&index)?;
        let open = body.strip_suffix('}')?;
        let (x, y) = node.hex_xy();
        let ts = now.to_string();
        let nonce = hex::encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes());
        let msg = key_assign_auth_message(body.as_bytes(), &ts, &nonce, &x, &y);
        let sig = base64::engine::general_purpose::STANDARD.encode(self.key.sign(msg.as_bytes()));
        Some(format!(
            r#"{open},"torus-timestamp":"{ts}","torus-nonce":"{nonce}","torus-signature":"{sig}"}}"#
        ))
    }
}

/// An answer: `Ok(result)` or `Err(error object)`.
pub type Answer = Result<Value, Value>;

impl Client {
    /// A client for these endpoints.
    pub fn new(endpoints: Vec<Endpoint>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(12))
            .build()
            .map_err(|e| ClientError::Http {
                node: 0,
                err: e.to_string(),
            })?;
        Ok(Client {
            endpoints,
            http,
            signer: None,
        })
    }

    /// Signs every KeyAssign with `signer` (nodes with KeyAssign authentication on).
    pub fn with_key_assign_signer(mut self, signer: KeyAssignSigner) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// n.
    pub fn n(&self) -> usize {
        self.endpoints.len()
    }

    /// floor(n/2)+1.
    pub fn share_threshold(&self) -> usize {
        self.n() / 2 + 1
    }

    /// floor(n/4)*3+1.
    pub fn commit_threshold(&self) -> usize {
        self.n() / 4 * 3 + 1
    }

    /// One JSON-RPC call with the legacy framing (id 10). Returns the raw body too.
    pub async fn call_raw(
        &self,
        ep: &Endpoint,
        method: &str,
        params: Value,
    ) -> Result<(u16, String), ClientError> {
        let mut body =
            json!({"jsonrpc": "2.0", "method": method, "id": 10, "params": params}).to_string();
        if let (Some(signer), "KeyAssign") = (&self.signer, method) {
            body = signer
                .sign(ep.index, &body, crate::node::unix_s())
                .ok_or_else(|| ClientError::Http {
                    node: ep.index,
                    err: "no public key of this node to sign KeyAssign for".into(),
                })?;
        }
        let r = self
            .http
            .post(&ep.url)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::Http {
                node: ep.index,
                err: e.to_string(),
            })?;
        let status = r.status().as_u16();
        let text = r.text().await.map_err(|e| ClientError::Http {
            node: ep.index,
            err: e.to_string(),
        })?;
        Ok((status, text))
    }

    /// One call, decoded into result or error.
    pub async fn call(
        &self,
        ep: &Endpoint,
        method: &str,
        params: Value,
    ) -> Result<Answer, ClientError> {
        let (status, text) = self.call_raw(ep, method, params).await?;
        if status != 200 {
            return Err(ClientError::Http {
                node: ep.index,
                err: format!("HTTP {status}: {text}"),
            });
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| ClientError::Http {
            node: ep.index,
            err: format!("bad JSON: {e}"),
        })?;
        if let Some(e) = v.get("error") {
            return Ok(Err(e.clone()));
        }
        Ok(Ok(v.get("result").cloned().unwrap_or(Value::Null)))
    }

    /// The same call to every node, concurrently.
    pub async fn call_all(&self, method: &str, params: Value) -> Vec<Result<Answer, ClientError>> {
        let futs = self
            .endpoints
            .iter()
            .map(|ep| self.call(ep, method, params.clone()));
        futures_join_all(futs).await
    }

    /// `thresholdSame`: the answer (result or error) given identically by
    /// floor(n/2)+1 nodes, compared as canonical JSON.
    pub fn threshold_same(&self, answers: &[Result<Answer, ClientError>]) -> Option<Answer> {
        let mut counts: BTreeMap<String, (usize, Answer)> = BTreeMap::new();
        for a in answers.iter().flatten() {
            let key = serde_json::to_string(&match a {
                Ok(v) => json!({"ok": v}),
                Err(e) => json!({"err": e}),
            })
            .unwrap_or_default();
            let e = counts.entry(key).or_insert((0, a.clone()));
            e.0 += 1;
        }
        counts
            .into_values()
            .find(|(c, _)| *c >= self.share_threshold())
            .map(|(_, a)| a)
    }

    /// getPublicAddress: lookup, KeyAssign if not assigned, lookup again.
    /// Returns the `keys[0]` object.
    pub async fn get_or_assign(
        &self,
        verifier: &str,
        verifier_id: &str,
    ) -> Result<Value, ClientError> {
        let params = json!({"verifier": verifier, "verifier_id": verifier_id});
        let first = self.call_all("VerifierLookupRequest", params.clone()).await;
        match self.threshold_same(&first) {
            Some(Ok(v)) => return first_key(&v),
            Some(Err(e))
                if e.to_string()
                    .contains("Verifier + VerifierID has not yet been assigned") => {}
            other => {
                return Err(ClientError::Threshold(format!(
                    "lookup results do not match: {other:?}"
                )))
            }
        }
        let mut assigned = false;
        for ep in &self.endpoints {
            match self.call(ep, "KeyAssign", params.clone()).await {
                Ok(Ok(_)) => {
                    assigned = true;
                    break;
                }
                Ok(Err(e)) => {
                    return Err(ClientError::Rpc {
                        node: ep.index,
                        error: e,
                    })
                }
                Err(_) => continue,
            }
        }
        if !assigned {
            return Err(ClientError::Threshold("no node accepted KeyAssign".into()));
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let second = self.call_all("VerifierLookupRequest", params).await;
        match self.threshold_same(&second) {
            Some(Ok(v)) => first_key(&v),
            other => Err(ClientError::Threshold(format!(
                "node results do not match at final lookup: {other:?}"
            ))),
        }
    }

    /// retrieveShares: commit, reveal, decrypt, reconstruct. `extra` is merged into the item
    /// (for example `{"verifier_id": ...}`).
    pub async fn retrieve(
        &self,
        verifier: &str,
        extra: Value,
        id_token: &str,
    ) -> Result<Login, ClientError> {
        self.retrieve_timed(verifier, extra, id_token)
            .await
            .map(|(login, _)| login)
    }

    /// The two rounds of a login (CommitmentRequest, ShareRequest), the shares
    /// decrypted, and how long the rounds took.
    async fn collect_shares(
        &self,
        verifier: &str,
        extra: Value,
        id_token: &str,
    ) -> Result<(Collected, RetrieveTimes), ClientError> {
        let started = Instant::now();
        let temp = SecretKey::random(&mut rand_core::OsRng);
        let tp = temp.public_key().to_encoded_point(false);
        let (tx, ty) = (
            tp.x().map(hex::encode).unwrap_or_default(),
            tp.y().map(hex::encode).unwrap_or_default(),
        );
        let commitment = hex::encode(keccak256(id_token.as_bytes()));
        let commits = self
            .call_all(
                "CommitmentRequest",
                json!({"messageprefix": "mug00", "tokencommitment": commitment,
                       "temppubx": tx, "temppuby": ty, "verifieridentifier": verifier}),
            )
            .await;
        let mut sigs = Vec::new();
        let mut ok = 0;
        for c in &commits {
            match c {
                Ok(Ok(v)) => {
                    ok += 1;
                    sigs.push(v.clone());
                }
                // The real client includes null for failed nodes (§10.6).
                _ => sigs.push(Value::Null),
            }
        }
        if ok < self.commit_threshold() {
            let errs: Vec<String> = commits
                .iter()
                .filter_map(|c| match c {
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(e.to_string()),
                    _ => None,
                })
                .collect();
            return Err(ClientError::Threshold(format!(
                "only {ok} commitments: {errs:?}"
            )));
        }
        let mut item =
            json!({"idtoken": id_token, "nodesignatures": sigs, "verifieridentifier": verifier});
        if let (Some(obj), Value::Object(ex)) = (item.as_object_mut(), extra) {
            for (k, v) in ex {
                obj.insert(k, v);
            }
        }
        let shares_asked = Instant::now();
        let answers = self
            .call_all("ShareRequest", json!({"encrypted": "yes", "item": [item]}))
            .await;
        let times = RetrieveTimes {
            commitment: shares_asked.duration_since(started),
            share: shares_asked.elapsed(),
        };
        let mut shares: Vec<(u32, Scalar, Value, u64)> = Vec::new();
        let mut errors = Vec::new();
        for (ep, a) in self.endpoints.iter().zip(&answers) {
            let v = match a {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    errors.push(format!("node {}: {e}", ep.index));
                    continue;
                }
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let Some(k0) = v.get("keys").and_then(|k| k.get(0)) else {
                errors.push(format!("node {}: empty keys", ep.index));
                continue;
            };
            match decrypt_share(&temp, k0) {
                Ok(s) => shares.push((
                    ep.index,
                    s,
                    k0.get("PublicKey").cloned().unwrap_or(Value::Null),
                    k0.get("Index")
                        .and_then(Value::as_str)
                        .and_then(parse_hex_u64)
                        .unwrap_or(u64::MAX),
                )),
                Err(e) => errors.push(format!("node {}: {e}", ep.index)),
            }
        }
        Ok((Collected { shares, errors }, times))
    }

    /// Every node's decrypted share of the key a login with `id_token` opens (the two
    /// rounds of [`Client::retrieve`], without combining), by node index; nodes that did
    /// not answer with a share are left out. For checks that every share lies on one
    /// polynomial ([`shares_consistent`]).
    pub async fn shares(
        &self,
        verifier: &str,
        extra: Value,
        id_token: &str,
    ) -> Result<Vec<(u32, Scalar)>, ClientError> {
        let (c, _) = self.collect_shares(verifier, extra, id_token).await?;
        Ok(c.shares.iter().map(|s| (s.0, s.1)).collect())
    }

    /// [`Client::retrieve`], also returning how long its two rounds took (benchmarks).
    pub async fn retrieve_timed(
        &self,
        verifier: &str,
        extra: Value,
        id_token: &str,
    ) -> Result<(Login, RetrieveTimes), ClientError> {
        let (Collected { shares, errors }, times) =
            self.collect_shares(verifier, extra, id_token).await?;
        let need = self.share_threshold();
        // The public key a majority agrees on.
        let mut by_pk: BTreeMap<String, Vec<&(u32, Scalar, Value, u64)>> = BTreeMap::new();
        for s in &shares {
            by_pk.entry(s.2.to_string()).or_default().push(s);
        }
        let Some(group) = by_pk.into_values().find(|g| g.len() >= need) else {
            return Err(ClientError::Threshold(format!(
                "fewer than {need} shares agree on the public key; errors: {errors:?}"
            )));
        };
        let pk = &group[0].2;
        let (Some(px), Some(py)) = (
            pk.get("X").and_then(Value::as_str).and_then(parse_hex32),
            pk.get("Y").and_then(Value::as_str).and_then(parse_hex32),
        ) else {
            return Err(ClientError::Reconstruct("bad PublicKey".into()));
        };
        // Try k-subsets in order until one matches the public key.
        let pts: Vec<(u32, Scalar)> = group.iter().map(|s| (s.0, s.1)).collect();
        for subset in combinations(pts.len(), need) {
            let sel: Vec<(u32, Scalar)> =
                subset.iter().filter_map(|i| pts.get(*i).copied()).collect();
            // Node indexes are distinct and non-zero; a subset that is not is skipped.
            let Ok(sk) = lagrange_at_zero(&sel) else {
                continue;
            };
            let p = (ProjectivePoint::GENERATOR * sk)
                .to_affine()
                .to_encoded_point(false);
            if p.x().map(|x| x[..] == px[..]) == Some(true)
                && p.y().map(|y| y[..] == py[..]) == Some(true)
            {
                let mut priv_b = Zeroizing::new([0u8; 32]);
                priv_b.copy_from_slice(&sk.to_bytes());
                let node_pub = crate::crypto::NodePub::from_xy(&px, &py)
                    .map_err(|e| ClientError::Reconstruct(e.to_string()))?;
                return Ok((
                    Login {
                        index: group[0].3,
                        private_key: priv_b,
                        public_key: (px, py),
                        address: node_pub.address(),
                    },
                    times,
                ));
            }
        }
        Err(ClientError::Reconstruct(
            "no k-subset of shares matches the public key".into(),
        ))
    }
}

/// What the share round returned: `(node, share, PublicKey, key index)` per node that
/// answered with a share, and the other nodes' errors.
struct Collected {
    shares: Vec<(u32, Scalar, Value, u64)>,
    errors: Vec<String>,
}

/// Whether every `k`-subset of `shares` (distinct node indexes) interpolates to the same
/// secret, i.e. all lie on one polynomial of degree below `k`. False with fewer than `k`.
pub fn shares_consistent(shares: &[(u32, Scalar)], k: usize) -> bool {
    let mut first: Option<Scalar> = None;
    for subset in combinations(shares.len(), k) {
        let sel: Vec<(u32, Scalar)> = subset
            .iter()
            .filter_map(|i| shares.get(*i).copied())
            .collect();
        let Ok(s) = lagrange_at_zero(&sel) else {
            return false;
        };
        match first {
            None => first = Some(s),
            Some(f) if f != s => return false,
            _ => {}
        }
    }
    first.is_some()
}

fn first_key(v: &Value) -> Result<Value, ClientError> {
    v.get("keys")
        .and_then(|k| k.get(0))
        .cloned()
        .ok_or_else(|| ClientError::Threshold("lookup returned no keys".into()))
}

/// Decrypts one ShareRequest key object (base64 of the ciphertext's ASCII hex).
pub fn decrypt_share(temp: &SecretKey, key: &Value) -> Result<Scalar, String> {
    let share_b64 = key.get("Share").and_then(Value::as_str).ok_or("no Share")?;
    let meta = key.get("Metadata").ok_or("no Metadata")?;
    let hex_ct = base64::engine::general_purpose::STANDARD
        .decode(share_b64)
        .map_err(|_| "Share is not base64")?;
    let hex_ct = String::from_utf8(hex_ct).map_err(|_| "Share is not ASCII hex")?;
    let ciphertext = hex::decode(format!("{hex_ct:0>64}")).map_err(|_| "Share is not hex")?;
    let field = |n: &str| -> Result<Vec<u8>, String> {
        hex::decode(
            meta.get(n)
                .and_then(Value::as_str)
                .ok_or(format!("no {n}"))?,
        )
        .map_err(|_| format!("{n} not hex"))
    };
    let iv: [u8; 16] = field("iv")?.try_into().map_err(|_| "bad iv")?;
    let ephem: [u8; 65] = field("ephemPublicKey")?
        .try_into()
        .map_err(|_| "bad ephemPublicKey")?;
    let mac: [u8; 32] = field("mac")?.try_into().map_err(|_| "bad mac")?;
    let plain = ecies_decrypt(
        temp,
        &Ecies {
            iv,
            ephem_public_key: ephem,
            ciphertext,
            mac,
        },
    )
    .map_err(|e| e.to_string())?;
    if plain.len() > 32 {
        return Err("share longer than 32 bytes".into());
    }
    let mut b = [0u8; 32];
    b[32 - plain.len()..].copy_from_slice(&plain);
    Option::<Scalar>::from(Scalar::from_repr(b.into())).ok_or_else(|| "share >= q".into())
}

/// Lagrange interpolation at 0 of `(x, y)` points (the engine's); a duplicate or
/// zero index is an error, never a silent 0.
pub fn lagrange_at_zero(pts: &[(u32, Scalar)]) -> Result<Scalar, torus_engine::Error> {
    let (xs, ys): (Vec<u32>, Vec<Scalar>) = pts.iter().copied().unzip();
    torus_engine::poly::interpolate_at(&xs, &ys, Scalar::ZERO)
}

fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    fn rec(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            cur.push(i);
            rec(i + 1, n, k, cur, out);
            cur.pop();
        }
    }
    rec(0, n, k, &mut cur, &mut out);
    out
}

async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll all concurrently by pinning them in a JoinSet-free way.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, r) in pinned.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *r = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    for r in results.into_iter().flatten() {
        out.push(r);
    }
    out
}
