//! `service/deploy/node.example.toml`, the sample configuration operators start from, is
//! loaded by the real config loader and validated (with a genesis and the hardware profile
//! it names, and by `torus-node check-config`); its commented alternative (`[node_list]`)
//! validates too; and it names every key of the schema, each with an explanation, and no
//! key the schema does not have.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use torus_engine::HwProfile;
use torus_node::config::{Genesis, GenesisNode, NodeConfig, NodeListConfig};
use torus_node::crypto::NodeKey;

fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/node.example.toml")
}

fn sample() -> String {
    std::fs::read_to_string(sample_path()).unwrap()
}

/// A directory laid out like `/etc/torus-node`: the sample as `node.toml` (after `edit`),
/// a five-node `genesis.toml` and a hardware profile as `hw-profile.toml`.
fn etc_dir(edit: impl FnOnce(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let nodes = (1..=5u32)
        .map(|index| GenesisNode {
            index,
            pubkey: hex::encode(NodeKey::random().public().compressed()),
            p2p: format!("/ip4/10.0.0.{index}/tcp/4001"),
            consensus: format!("/ip4/10.0.0.{index}/tcp/26656"),
            rpc: format!("https://node{index}.example.org/jrpc"),
        })
        .collect();
    let genesis = Genesis {
        chain_id: "torus-sample".into(),
        epoch: 1,
        n: 5,
        k: 3,
        t: 1,
        nodes,
    };
    std::fs::write(
        dir.path().join("genesis.toml"),
        toml::to_string(&genesis).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles/cpu-16core.toml"),
        dir.path().join("hw-profile.toml"),
    )
    .unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, edit(sample())).unwrap();
    (dir, config)
}

#[test]
fn the_sample_config_loads_and_validates_with_its_genesis_and_profile() {
    let (_dir, path) = etc_dir(|s| s);
    let cfg = NodeConfig::load(&path).expect("the sample loads and validates");
    assert!(!cfg.dev_mode, "the sample is a production configuration");
    assert_eq!(cfg.data_dir, Path::new("/var/lib/torus-node"));
    assert_eq!(cfg.key_path(), Path::new("/var/lib/torus-node/node.key"));
    assert_eq!(cfg.verifiers.len(), 1);
    let genesis = Genesis::load(&cfg.genesis).expect("the genesis it names");
    assert_eq!(genesis.n, 5);
    let profile = HwProfile::load(cfg.hw_profile.as_ref().expect("hw_profile is set"))
        .expect("the profile it names");
    let keygen = cfg
        .keygen
        .resolve(&profile)
        .expect("keygen resolves with the profile");
    assert_eq!(u64::from(keygen.batch_keys), profile.batch_keys as u64);

    // And the operator's check says so too.
    let out = Command::new(env!("CARGO_BIN_EXE_torus-node"))
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("TORUS_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "check-config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// The sample with its `[node_list]` block uncommented and `genesis` removed.
fn with_node_list(s: String) -> String {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in s.lines() {
        if line.starts_with("genesis = ") {
            continue;
        }
        if line == "# [node_list]" {
            in_block = true;
            out.push("[node_list]".to_string());
            continue;
        }
        if in_block && line.is_empty() {
            in_block = false;
        }
        match line.strip_prefix("# ") {
            Some(rest) if in_block && is_key_line(rest) => out.push(rest.to_string()),
            _ => out.push(line.to_string()),
        }
    }
    out.join("\n")
}

#[test]
fn the_node_list_alternative_in_the_sample_validates() {
    let (_dir, path) = etc_dir(with_node_list);
    let cfg = NodeConfig::load(&path).expect("the [node_list] variant validates");
    let nl: &NodeListConfig = cfg.node_list.as_ref().expect("[node_list] is read");
    assert_eq!(nl.epoch, 1);
    assert!(nl.announce().is_some(), "all three announce_* are given");
    assert!(cfg.genesis.as_os_str().is_empty());
}

fn is_key_line(s: &str) -> bool {
    key_of(s).is_some()
}

/// `key` of a `key = value` line (active, or commented out as `# key = value`).
fn key_of(line: &str) -> Option<&str> {
    let l = line.trim_start_matches('#').trim_start();
    let (k, _) = l.split_once(" = ")?;
    let ident = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    (!k.is_empty() && !k.as_bytes()[0].is_ascii_digit() && k.bytes().all(ident)).then_some(k)
}

/// `a.b` of a `[a.b]` or `[[a.b]]` header line (active or commented out).
fn header_of(line: &str) -> Option<&str> {
    let l = line.trim_start_matches('#').trim();
    let inner = l
        .strip_prefix("[[")
        .and_then(|r| r.strip_suffix("]]"))
        .or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
    let ident = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.".contains(&b);
    (!inner.is_empty() && inner.bytes().all(ident)).then_some(inner)
}

/// Every key path of the sample (`rpc.listen`, `verifiers.name`, ...), table headers
/// included, and the key lines that lack an explanation: a key line (or a run of them)
/// must follow a comment that is neither a key nor a header.
fn sample_keys(text: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut keys = BTreeSet::new();
    let mut unexplained = Vec::new();
    let mut section = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(h) = header_of(line) {
            section = h.to_string();
            keys.insert(section.clone());
            continue;
        }
        let Some(k) = key_of(line) else { continue };
        let path = if section.is_empty() {
            k.to_string()
        } else {
            format!("{section}.{k}")
        };
        // Walk back over the run of key lines this one belongs to.
        let explained = lines[..i]
            .iter()
            .rev()
            .find(|l| key_of(l).is_none())
            .is_some_and(|l| l.starts_with('#') && header_of(l).is_none());
        if !explained {
            unexplained.push(path.clone());
        }
        keys.insert(path);
    }
    (keys, unexplained)
}

/// Every key path of the schema: the sample's configuration with every optional key set,
/// serialized by the config's own serde derive.
fn schema_keys() -> BTreeSet<String> {
    let mut cfg: NodeConfig = toml::from_str(&sample()).unwrap();
    cfg.rpc.key_assign_auth_pubkey = Some(hex::encode(NodeKey::random().public().compressed()));
    cfg.node_list = Some(NodeListConfig {
        eth_rpc: "http://127.0.0.1:8545".into(),
        contract: format!("0x{}", "00".repeat(20)),
        epoch: 1,
        poll_s: Some(1),
        wait_s: Some(1),
        announce_rpc: Some(String::new()),
        announce_consensus: Some(String::new()),
        announce_p2p: Some(String::new()),
    });
    cfg.hw_profile = Some("p.toml".into());
    let value = toml::Value::try_from(&cfg).unwrap();
    let mut out = BTreeSet::new();
    collect(&value, "", &mut out);
    out
}

fn collect(v: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    let table = match v {
        toml::Value::Table(t) => t,
        toml::Value::Array(a) => match a.first() {
            Some(first @ toml::Value::Table(_)) => return collect(first, prefix, out),
            _ => return,
        },
        _ => return,
    };
    for (k, child) in table {
        // Map entries keyed by node index (peer_addrs) are data, not schema.
        if k.parse::<u32>().is_ok() {
            continue;
        }
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        out.insert(path.clone());
        collect(child, &path, out);
    }
}

#[test]
fn every_config_key_is_in_the_sample_with_an_explanation() {
    let (in_sample, unexplained) = sample_keys(&sample());
    let schema = schema_keys();
    // The schema walk found the nested tables, so it is a real check.
    for must in [
        "rpc.listen",
        "keygen.faults.dealer",
        "node_list.announce_p2p",
        "verifiers.max_token_age_s",
    ] {
        assert!(
            schema.contains(must),
            "schema walk missed {must}: {schema:?}"
        );
    }
    let missing: Vec<_> = schema.difference(&in_sample).collect();
    assert!(
        missing.is_empty(),
        "keys of the config schema missing from deploy/node.example.toml: {missing:?}"
    );
    let unknown: Vec<_> = in_sample.difference(&schema).collect();
    assert!(
        unknown.is_empty(),
        "deploy/node.example.toml names keys the config does not have: {unknown:?}"
    );
    assert!(
        unexplained.is_empty(),
        "keys without an explaining comment above them: {unexplained:?}"
    );
}

#[test]
fn a_key_without_explanation_or_outside_the_schema_is_caught() {
    // The checker itself: a bare key, and a documented key the schema lacks.
    let (keys, unexplained) = sample_keys("[rpc]\nlisten = \"x\"\n# Doc.\nnot_a_key = 1\n");
    assert_eq!(unexplained, vec!["rpc.listen".to_string()]);
    assert!(keys.contains("rpc.not_a_key"));
    assert!(!schema_keys().contains("rpc.not_a_key"));
}
