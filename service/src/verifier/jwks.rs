//! The issuer key set (JWKS): parsing, HTTP fetching and the per-verifier cache with rate-limited
//! refetching.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::Value;

use super::{VerifierConfigError, VerifierOptions};
use crate::crypto::{FixedBaseTable, TableVerifier};

/// Smallest RSA modulus accepted from a JWKS, in bits; smaller keys are skipped.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// A JWS algorithm the verifiers accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub(crate) fn parse(alg: &str) -> Option<Alg> {
        match alg {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }
}

/// A usable public key of the JWKS. P-256 keys carry precomputed verification
/// tables (built once per fetched key set): an ES256 check is on the path of
/// every ShareRequest.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256 {
        key: p256::ecdsa::VerifyingKey,
        tables: Arc<TableVerifier<p256::NistP256>>,
    },
}

/// The P-256 generator's table, shared by every ES256 key.
fn p256_generator_table() -> Arc<FixedBaseTable<p256::NistP256>> {
    static G: std::sync::OnceLock<Arc<FixedBaseTable<p256::NistP256>>> = std::sync::OnceLock::new();
    G.get_or_init(|| Arc::new(FixedBaseTable::new(p256::ProjectivePoint::GENERATOR)))
        .clone()
}

/// The ES256 verifier of a P-256 key.
pub(crate) fn es256_verifier(key: &p256::ecdsa::VerifyingKey) -> TableVerifier<p256::NistP256> {
    TableVerifier::new(p256_generator_table(), key.as_affine())
}

impl PublicKey {
    pub(crate) fn alg(&self) -> Alg {
        match self {
            PublicKey::Rsa(_) => Alg::Rs256,
            PublicKey::P256 { .. } => Alg::Es256,
        }
    }

    /// Verifies a JWS signature over `message` (the `header.payload` bytes).
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        use sha2::Digest as _;
        match self {
            PublicKey::Rsa(key) => {
                // One encoding per signature value: exactly the modulus' length, and below the
                // modulus (RFC 8017 8.2.2 step 2a), so `s + n` cannot pass as another token.
                if signature.len() != key.size()
                    || rsa::BigUint::from_bytes_be(signature) >= *key.n()
                {
                    return false;
                }
                let digest = sha2::Sha256::digest(message);
                key.verify(rs256_scheme(), &digest, signature).is_ok()
            }
            PublicKey::P256 { tables, .. } => {
                // JWS ES256: raw r ‖ s (64 bytes) over SHA-256 of the message.
                signature.len() == 64
                    && tables.verify_prehash(&sha2::Sha256::digest(message), signature)
            }
        }
    }
}

impl PublicKey {
    /// The other byte string that verifies like `signature` (which verified) over the same
    /// message, if the algorithm has one: for ES256 `(r, n - s)` for `(r, s)` (ECDSA signatures
    /// are malleable). RS256 has none: [`PublicKey::verify`] takes one encoding per value.
    pub(crate) fn other_signature(&self, signature: &[u8]) -> Option<[u8; 64]> {
        match self {
            PublicKey::Rsa(_) => None,
            PublicKey::P256 { .. } => {
                let sig = p256::ecdsa::Signature::from_slice(signature).ok()?;
                let (r, s) = sig.split_scalars();
                let other =
                    p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).ok()?;
                let mut out = [0u8; 64];
                out.copy_from_slice(&other.to_bytes());
                Some(out)
            }
        }
    }
}

/// DER prefix of the PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1).
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The RSASSA-PKCS1-v1_5 with SHA-256 scheme of RS256.
pub(crate) fn rs256_scheme() -> rsa::Pkcs1v15Sign {
    rsa::Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: SHA256_DIGEST_INFO_PREFIX.to_vec().into_boxed_slice(),
    }
}

/// One key of the set, with its `kid`.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) key: PublicKey,
}

/// The usable keys of one JWKS document (unsupported entries are skipped).
#[derive(Clone, Debug, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
}

/// The result of looking a token's key up in a key set.
pub(crate) enum Lookup<'a> {
    Found(&'a PublicKey),
    /// Keys with that `kid` exist, but none for the token's algorithm.
    WrongAlg,
    /// No `kid` in the header and the set has more than one key.
    KidRequired,
    NotFound,
}

impl KeySet {
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Alg) -> Lookup<'_> {
        match kid {
            Some(kid) => {
                let mut with_kid = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if with_kid.peek().is_none() {
                    return Lookup::NotFound;
                }
                match with_kid.find(|k| k.key.alg() == alg) {
                    Some(k) => Lookup::Found(&k.key),
                    None => Lookup::WrongAlg,
                }
            }
            None => match self.keys.as_slice() {
                [] => Lookup::NotFound,
                [only] if only.key.alg() == alg => Lookup::Found(&only.key),
                [_] => Lookup::WrongAlg,
                _ => Lookup::KidRequired,
            },
        }
    }

    /// Parses a JWKS document. Entries that are not usable signature keys (other `kty`, other
    /// curves, `use` other than `sig`, an `alg` other than RS256/ES256, bad or too small key
    /// material) are skipped with a debug log; only a document that is not `{"keys": [...]}` is
    /// an error. P-256 keys that `previous` (the key set being replaced) already has keep its
    /// verification tables instead of building them again.
    pub(crate) fn parse(body: &[u8], previous: Option<&KeySet>) -> Result<KeySet, &'static str> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|_| "the key set is not valid JSON")?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the key set has no \"keys\" array")?;
        let mut keys = Vec::new();
        for entry in entries {
            match parse_jwk(entry, previous) {
                Ok(key) => keys.push(key),
                Err(why) => {
                    let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("");
                    tracing::debug!(kid, why, "skipping JWKS entry");
                }
            }
        }
        Ok(KeySet { keys })
    }
}

fn b64_field(entry: &Value, name: &str) -> Result<Vec<u8>, &'static str> {
    let s = entry
        .get(name)
        .and_then(Value::as_str)
        .ok_or("a key parameter is missing")?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "a key parameter is not base64url")
}

fn parse_jwk(entry: &Value, previous: Option<&KeySet>) -> Result<Key, &'static str> {
    let str_field = |name: &str| entry.get(name).and_then(Value::as_str);
    if let Some(usage) = str_field("use") {
        if usage != "sig" {
            return Err("not a signature key");
        }
    }
    if let Some(ops) = entry.get("key_ops").and_then(Value::as_array) {
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("key_ops does not allow verify");
        }
    }
    let kid = match entry.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err("kid is not a string"),
    };
    let key = match str_field("kty") {
        Some("RSA") => {
            if str_field("alg").is_some_and(|a| a != "RS256") {
                return Err("unsupported alg");
            }
            let n = b64_field(entry, "n")?;
            let e = b64_field(entry, "e")?;
            let key = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&n),
                rsa::BigUint::from_bytes_be(&e),
            )
            .map_err(|_| "invalid RSA key")?;
            if key.n().bits() < MIN_RSA_BITS {
                return Err("RSA key too small");
            }
            PublicKey::Rsa(key)
        }
        Some("EC") => {
            if str_field("crv") != Some("P-256") {
                return Err("unsupported curve");
            }
            if str_field("alg").is_some_and(|a| a != "ES256") {
                return Err("unsupported alg");
            }
            let x = b64_field(entry, "x")?;
            let y = b64_field(entry, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err("invalid P-256 coordinates");
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                .map_err(|_| "invalid P-256 point")?;
            let known = previous.and_then(|set| {
                set.keys.iter().find_map(|k| match &k.key {
                    PublicKey::P256 { key: old, tables } if *old == key => Some(tables.clone()),
                    _ => None,
                })
            });
            let tables = known.unwrap_or_else(|| Arc::new(es256_verifier(&key)));
            PublicKey::P256 { key, tables }
        }
        _ => return Err("unsupported kty"),
    };
    Ok(Key { kid, key })
}

/// The HTTP client shared by all JWKS caches.
pub(crate) fn http_client(
    options: &VerifierOptions,
) -> Result<reqwest::Client, VerifierConfigError> {
    reqwest::Client::builder()
        .timeout(options.http_timeout)
        .connect_timeout(options.http_timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("torus-node/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| VerifierConfigError::HttpClient(e.to_string()))
}

/// Fetches and parses a JWKS. The error is a deterministic reason for
/// [`super::VerifyError::JwksUnavailable`]; details go to the log.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
    previous: Option<&KeySet>,
) -> Result<KeySet, String> {
    let request_error = |e: reqwest::Error| {
        tracing::warn!(url, error = %e, "JWKS fetch failed");
        if e.is_timeout() {
            "request timed out".to_owned()
        } else if e.is_connect() {
            "connection failed".to_owned()
        } else {
            "request failed".to_owned()
        }
    };
    let mut response = client.get(url).send().await.map_err(request_error)?;
    let status = response.status();
    if !status.is_success() {
        tracing::warn!(url, %status, "JWKS fetch: HTTP error");
        return Err(format!("HTTP status {}", status.as_u16()));
    }
    let too_large = || format!("response larger than {max_bytes} bytes");
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        tracing::warn!(url, "JWKS fetch: body too large");
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > max_bytes {
            tracing::warn!(url, "JWKS fetch: body too large");
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let set = KeySet::parse(&body, previous).map_err(|why| {
        tracing::warn!(url, why, "JWKS fetch: bad document");
        why.to_owned()
    })?;
    tracing::info!(url, keys = set.keys.len(), "fetched JWKS");
    Ok(set)
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    /// When `keys` was fetched.
    fetched_at: Option<Instant>,
    /// When the last fetch attempt (successful or not) finished.
    last_attempt: Option<Instant>,
    /// Why the last attempt failed; `None` after a success.
    last_error: Option<String>,
    /// Counts fetch attempts; a waiter that sees it changed does not fetch again.
    generation: u64,
}

/// What the cache has after a (possible) refresh.
pub(crate) struct Snapshot {
    pub(crate) keys: Option<Arc<KeySet>>,
    /// Set when the most recent fetch attempt failed.
    pub(crate) last_error: Option<String>,
    pub(crate) generation: u64,
}

/// The JWKS cache of one verifier. At most one fetch runs at a time (a tokio mutex around the
/// refresh; concurrent callers wait for it and share its result), and fetch attempts are at least
/// `refetch_interval` apart, except the very first.
pub(crate) struct JwksCache {
    url: String,
    client: reqwest::Client,
    max_bytes: usize,
    refetch_interval: Duration,
    max_age: Duration,
    max_stale: Duration,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub(crate) fn new(url: String, client: reqwest::Client, options: &VerifierOptions) -> Self {
        JwksCache {
            url,
            client,
            max_bytes: options.max_jwks_bytes,
            refetch_interval: options.jwks_refetch_interval,
            max_age: options.jwks_max_age,
            max_stale: options.jwks_max_stale,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Snapshot {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        self.view(&st)
    }

    /// What callers may use of `st`: a key set that could not be refreshed for `max_stale` past
    /// its maximum age is no longer trusted (an issuer that withdrew a key, and whose JWKS an
    /// attacker keeps us from fetching, must not have that key honoured forever).
    fn view(&self, st: &State) -> Snapshot {
        let expired = st
            .fetched_at
            .is_some_and(|t| t.elapsed() > self.max_age.saturating_add(self.max_stale));
        if expired {
            return Snapshot {
                keys: None,
                last_error: Some(st.last_error.clone().unwrap_or_else(|| {
                    "the key set is too old and could not be refreshed".to_owned()
                })),
                generation: st.generation,
            };
        }
        Snapshot {
            keys: st.keys.clone(),
            last_error: st.last_error.clone(),
            generation: st.generation,
        }
    }

    /// The key set to verify with: the cached one while it is younger than the maximum age,
    /// otherwise a fresh fetch (falling back to the old set when it fails).
    pub(crate) async fn current(&self) -> Snapshot {
        let (fresh, generation) = {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            let fresh =
                st.keys.is_some() && st.fetched_at.is_some_and(|t| t.elapsed() < self.max_age);
            (fresh, st.generation)
        };
        if fresh {
            return self.snapshot();
        }
        self.refresh(generation).await
    }

    /// Fetches the key set again unless another caller did since `seen_generation`, or the last
    /// attempt is less than the refetch interval ago (then the current state is returned).
    pub(crate) async fn refresh(&self, seen_generation: u64) -> Snapshot {
        let _guard = self.refresh.lock().await;
        {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            if st.generation != seen_generation {
                drop(st);
                return self.snapshot();
            }
            if st
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.refetch_interval)
            {
                tracing::debug!(url = %self.url, "JWKS refetch rate limited");
                drop(st);
                return self.snapshot();
            }
        }
        let previous = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys
            .clone();
        let result = fetch(&self.client, &self.url, self.max_bytes, previous.as_deref()).await;
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        st.last_attempt = Some(now);
        st.generation += 1;
        match result {
            Ok(set) => {
                st.keys = Some(Arc::new(set));
                st.fetched_at = Some(now);
                st.last_error = None;
            }
            Err(reason) => st.last_error = Some(reason),
        }
        self.view(&st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    use sha2::Digest as _;

    /// The ES256 table verifier gives the same answers as p256's own `verify`
    /// (which accepts high-s) on valid, tampered, high-s and malformed signatures.
    #[test]
    fn refetched_p256_keys_keep_their_tables() {
        let jwk = |sk: &p256::ecdsa::SigningKey, kid: &str| {
            let p = sk.verifying_key().to_encoded_point(false);
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(p.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(p.y().unwrap())})
        };
        let (a, b) = (
            p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
            p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        );
        let tables =
            |set: &KeySet, kid: &str| match set.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
            {
                Some(Key {
                    key: PublicKey::P256 { tables, .. },
                    ..
                }) => tables.clone(),
                _ => panic!("no P-256 key {kid}"),
            };
        let first = KeySet::parse(
            serde_json::json!({"keys": [jwk(&a, "a")]})
                .to_string()
                .as_bytes(),
            None,
        )
        .unwrap();
        // Rotation: key a stays (under another kid, too), key b is new.
        let second = KeySet::parse(
            serde_json::json!({"keys": [jwk(&a, "a2"), jwk(&b, "b")]})
                .to_string()
                .as_bytes(),
            Some(&first),
        )
        .unwrap();
        assert!(Arc::ptr_eq(&tables(&first, "a"), &tables(&second, "a2")));
        assert!(!Arc::ptr_eq(&tables(&first, "a"), &tables(&second, "b")));
        // The reused and the new tables verify their own keys' signatures only.
        let msg = b"header.payload";
        let sig_a: p256::ecdsa::Signature = a.sign(msg);
        let sig_b: p256::ecdsa::Signature = b.sign(msg);
        let digest = sha2::Sha256::digest(msg);
        assert!(tables(&second, "a2").verify_prehash(&digest, &sig_a.to_bytes()));
        assert!(!tables(&second, "a2").verify_prehash(&digest, &sig_b.to_bytes()));
        assert!(tables(&second, "b").verify_prehash(&digest, &sig_b.to_bytes()));
    }

    #[test]
    fn es256_table_verifier_agrees_with_p256() {
        for i in 0..48u32 {
            let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
            let vk = *sk.verifying_key();
            let key = PublicKey::P256 {
                key: vk,
                tables: Arc::new(es256_verifier(&vk)),
            };
            let msg = format!("eyJhbGciOiJFUzI1NiJ9.payload{i}");
            let sig: p256::ecdsa::Signature = sk.sign(msg.as_bytes());
            let check = |m: &[u8], s: &[u8]| {
                let want = p256::ecdsa::Signature::from_slice(s)
                    .map(|sig| s.len() == 64 && vk.verify(m, &sig).is_ok())
                    .unwrap_or(false);
                assert_eq!(key.verify(m, s), want, "sig {}", hex::encode(s));
                want
            };
            let raw = sig.to_bytes();
            assert!(check(msg.as_bytes(), &raw));
            assert!(!check(b"another message", &raw));
            let mut bad = raw;
            bad[(i as usize * 7) % 64] ^= 1 << (i % 8);
            assert!(!check(msg.as_bytes(), &bad));
            let other: p256::ecdsa::Signature =
                p256::ecdsa::SigningKey::random(&mut rand_core::OsRng).sign(msg.as_bytes());
            assert!(!check(msg.as_bytes(), &other.to_bytes()));
            let (r, s) = sig.split_scalars();
            let high =
                p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
            assert!(check(msg.as_bytes(), &high.to_bytes()));
            let mut zero_s = raw;
            zero_s[32..].fill(0);
            assert!(!check(msg.as_bytes(), &zero_s));
            let mut big_r = raw;
            big_r[..32].fill(0xff);
            assert!(!check(msg.as_bytes(), &big_r));
            assert!(!key.verify(msg.as_bytes(), &raw[..63]));
        }
    }
}

#[cfg(test)]
mod one_encoding_per_signature {
    use super::*;
    use crate::verifier::DevKey;

    fn only_key(dev: &DevKey) -> PublicKey {
        let doc = serde_json::json!({ "keys": [dev.jwk()] }).to_string();
        let set = KeySet::parse(doc.as_bytes(), None).unwrap_or_default();
        match set.keys.into_iter().next() {
            Some(k) => k.key,
            None => panic!("the key set has no usable key"),
        }
    }

    #[test]
    fn an_rs256_signature_plus_the_modulus_does_not_verify() {
        let dev = DevKey::rs256().unwrap_or_else(|e| panic!("{e}"));
        let key = only_key(&dev);
        let PublicKey::Rsa(rsa_key) = &key else {
            panic!("not an RSA key")
        };
        for i in 0..16u32 {
            let msg = format!("header.payload{i}");
            let sig = dev.sign_bytes(msg.as_bytes());
            assert!(key.verify(msg.as_bytes(), &sig));
            assert_eq!(key.other_signature(&sig), None);
            // s + n, when it still fits the modulus' length, is another byte string for the same
            // signature value: refused.
            let alt = rsa::BigUint::from_bytes_be(&sig) + rsa_key.n();
            let alt = alt.to_bytes_be();
            if alt.len() == sig.len() {
                assert!(!key.verify(msg.as_bytes(), &alt));
            }
            // A leading zero byte (one byte longer) is refused too.
            let mut longer = vec![0u8];
            longer.extend_from_slice(&sig);
            assert!(!key.verify(msg.as_bytes(), &longer));
        }
    }

    #[test]
    fn an_es256_signature_names_its_one_other_encoding() {
        let dev = DevKey::es256();
        let key = only_key(&dev);
        for i in 0..16u32 {
            let msg = format!("header.payload{i}");
            let sig = dev.sign_bytes(msg.as_bytes());
            let other = key
                .other_signature(&sig)
                .unwrap_or_else(|| panic!("no other encoding"));
            assert_ne!(other.as_slice(), sig.as_slice());
            // Both verify (ECDSA is malleable), and each names the other.
            assert!(key.verify(msg.as_bytes(), &other));
            assert_eq!(
                key.other_signature(&other).map(|o| o.to_vec()),
                Some(sig.clone())
            );
        }
    }
}
