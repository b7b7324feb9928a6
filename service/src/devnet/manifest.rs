//! What a client needs of a devnet: endpoints, the manifest (`devnet.json`),
//! minted tokens, and a whole login against it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use serde::Deserialize;

use super::{io, Devnet, DevnetError};
use crate::client::{Client, Endpoint, KeyAssignSigner, Login};
use crate::crypto::{NodeKey, NodePub};
use crate::hexfmt::{hex_min, parse_hex32};
use crate::verifier::{DevClaims, DevKey, VerifierConfig, DEV_AUDIENCE, DEV_VERIFIER};

impl Devnet {
    /// Client endpoints of every node.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.layout
            .nodes
            .iter()
            .map(|p| Endpoint {
                index: p.index,
                url: self.client_url(p),
            })
            .collect()
    }

    /// A client for the devnet that signs its KeyAssigns with the devnet's signer key.
    pub fn client(&self) -> Result<Client, DevnetError> {
        self.client_of(self.endpoints())
    }

    /// A client of the nodes of `endpoints` only (a committee that changed).
    pub fn client_of(&self, endpoints: Vec<Endpoint>) -> Result<Client, DevnetError> {
        let nodes = self.genesis.nodes.iter().filter_map(|g| {
            let p = hex::decode(&g.pubkey)
                .ok()
                .and_then(|b| NodePub::from_sec1(&b).ok())?;
            Some((g.index, p))
        });
        Ok(Client::new(endpoints)
            .map_err(|e| DevnetError::Login(e.to_string()))?
            .with_key_assign_signer(KeyAssignSigner::new(self.signer.clone(), nodes)))
    }

    /// The URLs of the torus.js hosts (metadata, KeyAssign signer, allow check).
    pub fn torus_hosts(&self) -> super::hosts::TorusHosts {
        self.hosts.urls()
    }

    /// The login page's URL (`login_page` in `devnet.json`).
    pub fn login_page(&self) -> String {
        self.hosts.login_page()
    }

    /// The client-side description (`devnet.json`).
    pub fn manifest(&self) -> Value {
        let nodes: Vec<Value> = self
            .genesis
            .nodes
            .iter()
            .map(|g| {
                let (x, y) = hex::decode(&g.pubkey)
                    .ok()
                    .and_then(|b| NodePub::from_sec1(&b).ok())
                    .map(|p| p.xy())
                    .map(|(x, y)| (hex_min(&x), hex_min(&y)))
                    .unwrap_or_default();
                let endpoint = self
                    .layout
                    .nodes
                    .iter()
                    .find(|p| p.index == g.index)
                    .map_or_else(|| g.rpc.clone(), |p| self.client_url(p));
                json!({
                    "index": g.index,
                    "endpoint": endpoint,
                    "pub_key_x": x,
                    "pub_key_y": y,
                })
            })
            .collect();
        let verifiers: Vec<Value> = self
            .verifiers()
            .iter()
            .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
            .collect();
        json!({
            "nodes": nodes,
            "n": self.layout.n,
            "k": self.layout.k,
            "verifiers": verifiers,
            "torus_hosts": self.hosts.urls(),
            "login_page": self.hosts.login_page(),
        })
    }

    /// Writes `devnet.json` into the data directory and returns its path. The file
    /// appears whole (written beside it, then renamed), so a reader that waits for it
    /// never reads half of it. The login page serves it from then on.
    pub fn write_manifest(&self) -> Result<PathBuf, DevnetError> {
        let path = self.opts.data_dir.join("devnet.json");
        let tmp = self.opts.data_dir.join("devnet.json.tmp");
        let manifest = self.manifest();
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| DevnetError::Invalid(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(io("write devnet.json"))?;
        std::fs::rename(&tmp, &path).map_err(io("write devnet.json"))?;
        self.hosts.set_manifest(manifest);
        Ok(path)
    }

    /// The token minter of [`Devnet::mint`], to use where the devnet is not at hand
    /// (tasks of a test or bench that run beside it).
    pub fn minter(&self) -> super::hosts::login::TokenMinter {
        token_minter(self.issuer_seed, self.issuer.issuer())
    }

    /// Mints a development id token for `email` (verifier `devnet`).
    pub fn mint(&self, email: &str) -> Result<String, DevnetError> {
        mint_with(&self.issuer_seed, &self.issuer.issuer(), email)
    }

    /// Serves `devnet.json` again when it changed on disk (`devnet next-epoch` rewrote
    /// it for the new committee), so the login page uses the new committee. `last` is
    /// the text served so far.
    pub fn reload_manifest(&self, last: &mut Option<String>) {
        let path = self.opts.data_dir.join("devnet.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        if last.as_deref() == Some(&text) {
            return;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            if last.is_some() {
                tracing::info!(path = %path.display(), "devnet.json changed: serving the new committee");
            }
            self.hosts.set_manifest(v);
        }
        *last = Some(text);
    }

    /// Stops every node (SIGTERM) and the issuer.
    pub fn shutdown(&mut self) {
        let all: Vec<u32> = self.layout.nodes.iter().map(|p| p.index).collect();
        for i in all {
            let _ = self.stop(i);
        }
    }
}

/// The login page's token minter: [`mint_with`] the devnet's issuer key (devnet only:
/// it signs a token for any e-mail it is given).
pub(super) fn token_minter(seed: [u8; 32], issuer: String) -> super::hosts::login::TokenMinter {
    Arc::new(move |email: &str| mint_with(&seed, &issuer, email).map_err(|e| e.to_string()))
}

fn mint_with(seed: &[u8; 32], issuer: &str, email: &str) -> Result<String, DevnetError> {
    let key = DevKey::es256_from_seed(*seed).map_err(|e| DevnetError::Login(e.to_string()))?;
    let now = crate::node::unix_s();
    let nonce = hex::encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes());
    Ok(key.mint(
        &DevClaims::new(DEV_AUDIENCE, now)
            .email(email)
            .subject(email)
            .claim("nonce", Value::from(nonce)),
        issuer,
    ))
}

/// `torus-node login`: mints a development token for `user` and runs the whole
/// legacy client flow (lookup, KeyAssign, lookup, commitments, shares,
/// decryption, reconstruction) against the devnet described by `manifest`.
pub async fn login(manifest: &Path, verifier: &str, user: &str) -> Result<Login, DevnetError> {
    let text =
        std::fs::read_to_string(manifest).map_err(io(format!("read {}", manifest.display())))?;
    let m: Value = serde_json::from_str(&text)
        .map_err(|e| DevnetError::Invalid(format!("{}: {e}", manifest.display())))?;
    let Some(v) = m["verifiers"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["name"] == verifier))
    else {
        return Err(DevnetError::Invalid(format!(
            "verifier {verifier:?} is not in {}",
            manifest.display()
        )));
    };
    if verifier != DEV_VERIFIER {
        return Err(DevnetError::Invalid(format!(
            "login mints tokens only for the {DEV_VERIFIER:?} verifier (its key is in dev-issuer.key); \
             for {verifier:?} use a real client with a real token"
        )));
    }
    let issuer = v["issuer"]
        .as_str()
        .ok_or_else(|| DevnetError::Invalid("verifier without issuer".into()))?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let seed_path = dir.join("dev-issuer.key");
    let s =
        std::fs::read_to_string(&seed_path).map_err(io(format!("read {}", seed_path.display())))?;
    let seed = crate::hexfmt::parse_hex32(s.trim())
        .ok_or_else(|| DevnetError::Invalid("dev-issuer.key is not 64 hex digits".into()))?;
    let token = mint_with(&seed, issuer, user)?;
    let mut endpoints = Vec::new();
    let mut pubs = Vec::new();
    for n in m["nodes"].as_array().into_iter().flatten() {
        let (Some(index), Some(url)) = (
            n["index"].as_u64().and_then(|i| u32::try_from(i).ok()),
            n["endpoint"].as_str(),
        ) else {
            return Err(DevnetError::Invalid(
                "a node entry without index or endpoint".into(),
            ));
        };
        let coord = |name: &str| n[name].as_str().and_then(parse_hex32);
        let key = match (coord("pub_key_x"), coord("pub_key_y")) {
            (Some(x), Some(y)) => NodePub::from_xy(&x, &y).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            DevnetError::Invalid(format!("node {index}: pub_key_x / pub_key_y is not a key"))
        })?;
        endpoints.push(Endpoint {
            index,
            url: url.to_string(),
        });
        pubs.push((index, key));
    }
    // KeyAssign needs the devnet signer's signature (its key is next to devnet.json).
    let signer_path = dir.join("dev-signer.key");
    let signer = crate::config::load_key(&signer_path)
        .map_err(|e| DevnetError::Invalid(format!("{}: {e}", signer_path.display())))?;
    let client = Client::new(endpoints)
        .map_err(|e| DevnetError::Login(e.to_string()))?
        .with_key_assign_signer(KeyAssignSigner::new(Arc::new(signer), pubs));
    client
        .get_or_assign(verifier, user)
        .await
        .map_err(|e| DevnetError::Login(e.to_string()))?;
    client
        .retrieve(verifier, json!({ "verifier_id": user }), &token)
        .await
        .map_err(|e| DevnetError::Login(e.to_string()))
}

/// Reads a `--verifiers` file: `[[verifiers]]` tables as in a node config.
pub fn read_verifiers(path: &Path) -> Result<Vec<VerifierConfig>, DevnetError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        verifiers: Vec<VerifierConfig>,
    }
    let text = std::fs::read_to_string(path).map_err(io(format!("read {}", path.display())))?;
    let f: File = toml::from_str(&text)
        .map_err(|e| DevnetError::Invalid(format!("{}: {e}", path.display())))?;
    for (i, v) in f.verifiers.iter().enumerate() {
        v.validate(true).map_err(|e| {
            DevnetError::Invalid(format!("{}: verifiers[{i}]: {e}", path.display()))
        })?;
        if v.name == DEV_VERIFIER {
            return Err(DevnetError::Invalid(format!(
                "{}: the name {DEV_VERIFIER:?} is taken by the devnet's own issuer",
                path.display()
            )));
        }
    }
    Ok(f.verifiers)
}

/// The key a devnet node uses (tests that act as that node on the network).
pub fn node_key(dir: &Path, i: u32) -> Result<NodeKey, DevnetError> {
    crate::config::load_or_create_key(&dir.join(format!("node{i}")).join("node.key"))
        .map_err(|e| DevnetError::Invalid(e.to_string()))
}
