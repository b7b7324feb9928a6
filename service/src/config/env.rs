//! `TORUS_*` environment overrides of every configuration key, by one rule: `TORUS_`, then
//! the key's path (section, sub-table, key) joined by `_`, in upper case. `[rpc]
//! max_connections` is `TORUS_RPC_MAX_CONNECTIONS`, top-level `data_dir` is
//! `TORUS_DATA_DIR`, `[keygen.faults] dealer` is `TORUS_KEYGEN_FAULTS_DEALER`.
//!
//! Overrides are applied to the parsed TOML tree before it is deserialised, so the usual
//! checks apply to them. A value is read by the type of its key: strings (and paths) as
//! they are, without quotes; booleans as `true`/`false`/`1`/`0`/`yes`/`no`; numbers, arrays
//! and tables (`peer_addrs`, `verifiers`) as TOML values (`["a", "b"]`, `{ 1 = "..." }`,
//! `[{ name = "google", ... }]`). An empty value is ignored. A value that does not parse,
//! or parses as another type, is a [`ConfigError`] naming the variable. Other `TORUS_*`
//! variables (`TORUS_LOG`, ...) are not configuration keys and are ignored.

use std::path::PathBuf;

use toml::value::Table;
use toml::Value;

use super::{invalid, ConfigError, NodeConfig, NodeListConfig, RpcConfig};

/// The type of a key's value, as overrides read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string or a path: the variable's text.
    String,
    /// An integer (TOML).
    Integer,
    /// A float (TOML; an integer is accepted).
    Float,
    /// `true`/`false`/`1`/`0`/`yes`/`no`.
    Bool,
    /// A TOML array.
    Array,
    /// A TOML inline table (a map such as `peer_addrs`).
    Table,
}

/// One overridable key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvKey {
    /// The variable, `TORUS_...`.
    pub var: String,
    /// The key's path in the TOML tree.
    pub path: Vec<String>,
    /// How its value is read.
    pub kind: Kind,
}

/// A configuration with every optional key set, so that its serialisation names every key.
fn reference() -> NodeConfig {
    NodeConfig {
        data_dir: PathBuf::from("/"),
        dev_mode: false,
        key_file: super::default_key_file(),
        genesis: PathBuf::from("genesis.toml"),
        node_list: Some(NodeListConfig {
            eth_rpc: String::new(),
            contract: String::new(),
            epoch: 1,
            poll_s: Some(1),
            wait_s: Some(1),
            announce_rpc: Some(String::new()),
            announce_consensus: Some(String::new()),
            announce_p2p: Some(String::new()),
        }),
        hw_profile: Some(PathBuf::new()),
        rpc: RpcConfig {
            key_assign_auth_pubkey: Some(String::new()),
            ..RpcConfig::default()
        },
        grpc: Default::default(),
        store: Default::default(),
        abci: Default::default(),
        verifiers: Vec::new(),
        p2p: Default::default(),
        consensus: Default::default(),
        keygen: Default::default(),
    }
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::String(_) | Value::Datetime(_) => Kind::String,
        Value::Integer(_) => Kind::Integer,
        Value::Float(_) => Kind::Float,
        Value::Boolean(_) => Kind::Bool,
        Value::Array(_) => Kind::Array,
        Value::Table(_) => Kind::Table,
    }
}

fn collect(table: &Table, prefix: &[String], out: &mut Vec<EnvKey>) {
    for (k, v) in table {
        let mut path = prefix.to_vec();
        path.push(k.clone());
        match v {
            // A non-empty table of the reference is a section; an empty one is a map.
            Value::Table(t) if !t.is_empty() => collect(t, &path, out),
            _ => out.push(EnvKey {
                var: format!("TORUS_{}", path.join("_").to_uppercase()),
                path,
                kind: kind_of(v),
            }),
        }
    }
}

/// Every overridable key, from the configuration's own serialisation.
pub fn env_keys() -> Vec<EnvKey> {
    let mut out = Vec::new();
    if let Ok(Value::Table(t)) = Value::try_from(reference()) {
        collect(&t, &[], &mut out);
    }
    out
}

fn parse(key: &EnvKey, raw: &str) -> Result<Value, ConfigError> {
    let bad = |what: &str| {
        invalid(
            &key.var,
            format!("{raw:?} is not {what} (overrides `{}`)", key.path.join(".")),
        )
    };
    match key.kind {
        Kind::String => Ok(Value::String(raw.to_string())),
        Kind::Bool => match raw.trim() {
            "1" | "true" | "yes" => Ok(Value::Boolean(true)),
            "0" | "false" | "no" => Ok(Value::Boolean(false)),
            _ => Err(bad("true or false")),
        },
        kind => {
            let parsed = format!("v = {raw}")
                .parse::<Table>()
                .ok()
                .and_then(|mut t| t.remove("v"));
            match (kind, parsed) {
                (Kind::Integer, Some(v @ Value::Integer(_)))
                | (Kind::Float, Some(v @ Value::Float(_)))
                | (Kind::Array, Some(v @ Value::Array(_)))
                | (Kind::Table, Some(v @ Value::Table(_))) => Ok(v),
                (Kind::Float, Some(Value::Integer(i))) => Ok(Value::Float(i as f64)),
                (Kind::Integer, _) => Err(bad("an integer")),
                (Kind::Float, _) => Err(bad("a number")),
                (Kind::Array, _) => Err(bad("a TOML array")),
                _ => Err(bad("a TOML inline table")),
            }
        }
    }
}

/// Applies the overrides among `vars` (name, value) to the parsed configuration `root`.
pub fn apply(
    root: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let keys = env_keys();
    for (name, raw) in vars {
        if raw.is_empty() {
            continue;
        }
        let Some(key) = keys.iter().find(|k| k.var == name) else {
            continue;
        };
        let value = parse(key, &raw)?;
        let Some((last, parents)) = key.path.split_last() else {
            continue;
        };
        let mut table = &mut *root;
        for p in parents {
            let entry = table
                .entry(p.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            let Value::Table(t) = entry else {
                return Err(invalid(
                    &key.var,
                    format!("`{p}` in the file is not a table"),
                ));
            };
            table = t;
        }
        table.insert(last.clone(), value);
    }
    Ok(())
}

/// The process environment's `TORUS_*` variables; a configuration key's variable that is
/// not UTF-8 is an error.
pub fn process_vars() -> Result<Vec<(String, String)>, ConfigError> {
    let keys = env_keys();
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with("TORUS_")) else {
            continue;
        };
        if !keys.iter().any(|k| k.var == name) {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| invalid(name, "the value is not UTF-8"))?;
        out.push((name.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const BASE: &str = "data_dir = \"/tmp/x\"\ngenesis = \"g.toml\"\n";

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
        let mut t: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: "t.toml".into(),
                err: e.to_string(),
            })?;
        apply(
            &mut t,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )?;
        Value::Table(t)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: "t.toml".into(),
                err: e.to_string(),
            })
    }

    fn err_text(r: Result<NodeConfig, ConfigError>) -> String {
        match r {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn leaf_paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        let Value::Table(t) = v else { return };
        for (k, child) in t {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match child {
                Value::Table(c) if !c.is_empty() && !k.ends_with("peer_addrs") => {
                    leaf_paths(child, &path, out)
                }
                _ => {
                    out.insert(path);
                }
            }
        }
    }

    #[test]
    fn every_key_of_the_sample_config_has_a_variable() {
        let sample: Value = include_str!("../../deploy/node.example.toml")
            .parse::<Table>()
            .map(Value::Table)
            .unwrap();
        let mut paths = BTreeSet::new();
        leaf_paths(&sample, "", &mut paths);
        let keys: BTreeSet<String> = env_keys().iter().map(|k| k.path.join(".")).collect();
        assert!(paths.len() > 40, "{paths:?}");
        for p in &paths {
            assert!(keys.contains(p), "no variable for `{p}`");
        }
        // The optional keys and the commented [node_list] alternative are covered too.
        for p in [
            "hw_profile",
            "rpc.key_assign_auth_pubkey",
            "node_list.eth_rpc",
            "node_list.announce_p2p",
            "keygen.faults.dealer",
            "verifiers",
            "p2p.peer_addrs",
        ] {
            assert!(keys.contains(p), "no variable for `{p}`");
        }
    }

    #[test]
    fn the_variable_is_torus_and_the_path_in_upper_case() {
        let keys = env_keys();
        let var = |p: &str| {
            keys.iter()
                .find(|k| k.path.join(".") == p)
                .map(|k| k.var.clone())
        };
        assert_eq!(
            var("rpc.max_connections").as_deref(),
            Some("TORUS_RPC_MAX_CONNECTIONS")
        );
        assert_eq!(var("data_dir").as_deref(), Some("TORUS_DATA_DIR"));
        for (p, v) in [
            ("dev_mode", "TORUS_DEV_MODE"),
            ("key_file", "TORUS_KEY_FILE"),
            ("genesis", "TORUS_GENESIS"),
            ("hw_profile", "TORUS_HW_PROFILE"),
            ("rpc.listen", "TORUS_RPC_LISTEN"),
            ("grpc.listen", "TORUS_GRPC_LISTEN"),
            ("abci.listen", "TORUS_ABCI_LISTEN"),
            ("keygen.faults.dealer", "TORUS_KEYGEN_FAULTS_DEALER"),
        ] {
            assert_eq!(var(p).as_deref(), Some(v));
        }
        let names: BTreeSet<&str> = keys.iter().map(|k| k.var.as_str()).collect();
        assert_eq!(names.len(), keys.len(), "two keys share a variable");
    }

    #[test]
    fn overrides_of_each_type_replace_the_file() {
        let c = load(
            &format!("{BASE}[rpc]\nmax_connections = 5\n"),
            &[
                ("TORUS_DATA_DIR", "/var/lib/torus"),
                ("TORUS_DEV_MODE", "yes"),
                ("TORUS_RPC_MAX_CONNECTIONS", "77"),
                ("TORUS_RPC_TRUSTED_PROXIES", "[\"127.0.0.1\", \"::1\"]"),
                ("TORUS_P2P_PEER_ADDRS", "{ 2 = \"/ip4/10.0.0.2/tcp/4001\" }"),
                ("TORUS_KEYGEN_GRACE_MS", "42"),
            ],
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/torus"));
        assert!(c.dev_mode);
        assert_eq!(c.rpc.max_connections, 77);
        assert_eq!(c.rpc.trusted_proxies, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.p2p.peer_addrs["2"], "/ip4/10.0.0.2/tcp/4001");
        assert_eq!(c.keygen.grace_ms, 42);
    }

    #[test]
    fn a_section_missing_from_the_file_is_created() {
        let c = load(BASE, &[("TORUS_KEYGEN_FAULTS_DEALER", "bad-matrix")]).unwrap();
        assert_eq!(c.keygen.faults.dealer, "bad-matrix");
        let c = load(BASE, &[("TORUS_STORE_MAP_MIB", "128")]).unwrap();
        assert_eq!(c.store.map_mib, 128);
    }

    #[test]
    fn verifiers_can_be_given_as_an_array_of_inline_tables() {
        let c = load(
            BASE,
            &[("TORUS_VERIFIERS", "[{ name = \"t\", kind = \"test\" }]")],
        );
        let c = c.unwrap();
        assert_eq!(c.verifiers.len(), 1);
    }

    #[test]
    fn a_value_of_the_wrong_type_names_the_variable() {
        let e = err_text(load(BASE, &[("TORUS_RPC_MAX_CONNECTIONS", "many")]));
        assert!(e.contains("TORUS_RPC_MAX_CONNECTIONS"), "{e}");
        assert!(e.contains("an integer"), "{e}");
        let e = err_text(load(BASE, &[("TORUS_DEV_MODE", "maybe")]));
        assert!(e.contains("TORUS_DEV_MODE"), "{e}");
        let e = err_text(load(BASE, &[("TORUS_RPC_TRUSTED_PROXIES", "127.0.0.1")]));
        assert!(e.contains("TORUS_RPC_TRUSTED_PROXIES"), "{e}");
        let e = err_text(load(BASE, &[("TORUS_P2P_PEER_ADDRS", "[1, 2]")]));
        assert!(e.contains("TORUS_P2P_PEER_ADDRS"), "{e}");
        let e = err_text(load(BASE, &[("TORUS_STORE_MAP_MIB", "1 2")]));
        assert!(e.contains("TORUS_STORE_MAP_MIB"), "{e}");
    }

    #[test]
    fn a_value_in_the_file_of_another_shape_is_an_error_not_a_panic() {
        let e = err_text(load(
            "data_dir = \"/tmp/x\"\ngenesis = \"g.toml\"\nrpc = 3\n",
            &[("TORUS_RPC_LISTEN", "127.0.0.1:1")],
        ));
        assert!(e.contains("TORUS_RPC_LISTEN"), "{e}");
    }

    #[test]
    fn other_torus_variables_and_empty_values_are_ignored() {
        let c = load(
            BASE,
            &[
                ("TORUS_LOG", "debug"),
                ("TORUS_LOG_FORMAT", "json"),
                ("TORUS_REQUIRE_NODE", "1"),
                ("TORUS_RPC_NO_SUCH_KEY", "1"),
                ("TORUS_DATA_DIR", ""),
            ],
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }
}
