//! The metadata host's rules (spec §8), sans IO: per-key data that only the key's owner
//! sets (`/set`, signed with the key), that anyone reads (`/get`), and the OneKey nonce
//! (`/get_or_set_nonce`).
//!
//! * A key is a secp256k1 point given as `pub_key_X` / `pub_key_Y` hex (any number of
//!   leading zeros; compared as integers).
//! * `/set` needs `set_data` = `{data, timestamp}` (strings; timestamp in hex unix
//!   seconds, at most [`MAX_CLOCK_SKEW_S`] away from now, later than the key's previous
//!   set, so a captured request cannot be replayed) and `signature`: standard base64 of
//!   r‖s(‖v) over keccak-256 of `set_data` as json-stable-stringify writes it (keys
//!   sorted, no spaces), by the key itself. `data` is at most [`MAX_DATA_BYTES`].
//! * `/get` answers `{"message": data}`, `""` when nothing was set (torus.js: nonce 0).
//! * `/get_or_set_nonce` with `set_data.data` `"getNonce"` or `"getOrSetNonce"`: a key
//!   with data from `/set` is a `v1` user whose nonce is that data; a key with a v2 nonce
//!   gets `{"typeOfUser":"v2","pubNonce":{x,y},"upgraded":false}`, plus `nonce` only when
//!   the request is signed by the key as for `/set`; `"getOrSetNonce"` makes a random v2
//!   nonce for a key without one; `"getNonce"` for a key with neither answers
//!   `{"typeOfUser":"v1"}` (nonce 0). A signature that is present must be valid.
//! * At most [`MAX_KEYS`] keys are stored; a new key beyond that is refused.

use std::collections::BTreeMap;

use base64::Engine as _;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::crypto::NodePub;
use crate::hexfmt::{hex_min, parse_hex32};

/// Keys the store holds at most.
pub const MAX_KEYS: usize = 10_000;
/// Largest `set_data.data`, in bytes.
pub const MAX_DATA_BYTES: usize = 1024;
/// Largest distance of a signed timestamp from the host's clock, in seconds.
pub const MAX_CLOCK_SKEW_S: u64 = 60;

/// Why a metadata request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A malformed request (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// A signature that is missing, malformed, stale or not by the key (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The store holds [`MAX_KEYS`] keys (HTTP 507).
    #[error("the metadata store is full ({MAX_KEYS} keys)")]
    Full,
}

/// What is stored for one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Data of the last `/set` and its timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<(String, u64)>,
    /// The v2 nonce (hex, no leading zeros).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_v2: Option<String>,
}

/// The metadata of every key, by the key's 64-byte X‖Y in hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataStore {
    entries: BTreeMap<String, Entry>,
}

fn invalid(s: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(s.into())
}

fn forbidden(s: impl Into<String>) -> MetadataError {
    MetadataError::Forbidden(s.into())
}

/// The request's key: its store id and the point.
fn key_of(req: &Map<String, Value>) -> Result<(String, NodePub), MetadataError> {
    let coord = |name: &str| {
        req.get(name)
            .and_then(Value::as_str)
            .and_then(parse_hex32)
            .ok_or_else(|| invalid(format!("{name} must be a hex number of at most 256 bits")))
    };
    let (x, y) = (coord("pub_key_X")?, coord("pub_key_Y")?);
    let p = NodePub::from_xy(&x, &y)
        .map_err(|_| invalid("pub_key_X / pub_key_Y is not a secp256k1 point"))?;
    Ok((format!("{}{}", hex::encode(x), hex::encode(y)), p))
}

fn object(req: &Value) -> Result<&Map<String, Value>, MetadataError> {
    req.as_object()
        .ok_or_else(|| invalid("the body must be a JSON object"))
}

/// `set_data`: an object of at most four string members, each at most [`MAX_DATA_BYTES`].
fn set_data(req: &Map<String, Value>) -> Result<&Map<String, Value>, MetadataError> {
    let sd = req
        .get("set_data")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("set_data must be an object"))?;
    if sd.len() > 4 {
        return Err(invalid("set_data has more than 4 members"));
    }
    for (k, v) in sd {
        match v.as_str() {
            Some(s) if s.len() <= MAX_DATA_BYTES => {}
            Some(_) => {
                return Err(invalid(format!(
                    "set_data.{k} is longer than {MAX_DATA_BYTES} bytes"
                )))
            }
            None => return Err(invalid(format!("set_data.{k} must be a string"))),
        }
    }
    Ok(sd)
}

/// json-stable-stringify of an object whose members are strings: keys sorted, no spaces.
fn stable_stringify(sd: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = sd.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .into_iter()
        .map(|k| {
            format!(
                "{}:{}",
                Value::from(k.as_str()),
                sd.get(k).cloned().unwrap_or(Value::Null)
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Checks `signature` over `set_data` by `key` and the timestamp's freshness; returns the
/// timestamp.
fn check_signed(
    req: &Map<String, Value>,
    sd: &Map<String, Value>,
    key: &NodePub,
    now: u64,
) -> Result<u64, MetadataError> {
    let ts_hex = sd
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or_else(|| forbidden("set_data.timestamp is missing"))?;
    let ts = match ts_hex.len() {
        1..=16 => u64::from_str_radix(ts_hex, 16).ok(),
        _ => None,
    }
    .ok_or_else(|| invalid("set_data.timestamp must be hex unix seconds"))?;
    if ts.abs_diff(now) > MAX_CLOCK_SKEW_S {
        return Err(forbidden(format!(
            "set_data.timestamp is more than {MAX_CLOCK_SKEW_S} s away from the host's clock"
        )));
    }
    let sig = req
        .get("signature")
        .and_then(Value::as_str)
        .ok_or_else(|| forbidden("signature is missing"))?;
    if sig.len() > 128 {
        return Err(invalid("signature is too long"));
    }
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .map_err(|_| invalid("signature is not base64"))?;
    key.verify(stable_stringify(sd).as_bytes(), &sig)
        .map_err(|_| forbidden("signature is not by pub_key_X / pub_key_Y over set_data"))?;
    Ok(ts)
}

impl MetadataStore {
    /// Keys stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks a store read back from disk against the same bounds as requests.
    pub fn validate(&self) -> Result<(), String> {
        if self.entries.len() > MAX_KEYS {
            return Err(format!("more than {MAX_KEYS} keys"));
        }
        for (id, e) in &self.entries {
            if id.len() != 128 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("bad key {id:?}"));
            }
            if e.data
                .as_ref()
                .is_some_and(|(d, _)| d.len() > MAX_DATA_BYTES)
            {
                return Err(format!("data of {id} is too long"));
            }
            if e.nonce_v2
                .as_deref()
                .is_some_and(|n| parse_hex32(n).is_none())
            {
                return Err(format!("nonce of {id} is not hex"));
            }
        }
        Ok(())
    }

    fn entry(&mut self, id: String) -> Result<&mut Entry, MetadataError> {
        if !self.entries.contains_key(&id) && self.entries.len() >= MAX_KEYS {
            return Err(MetadataError::Full);
        }
        Ok(self.entries.entry(id).or_default())
    }

    /// `POST /get`.
    pub fn get(&self, req: &Value) -> Result<Value, MetadataError> {
        let (id, _) = key_of(object(req)?)?;
        let data = self
            .entries
            .get(&id)
            .and_then(|e| e.data.as_ref())
            .map(|(d, _)| d.as_str())
            .unwrap_or("");
        Ok(json!({ "message": data }))
    }

    /// `POST /set`; `Ok` says the store changed.
    pub fn set(&mut self, req: &Value, now: u64) -> Result<Value, MetadataError> {
        let req = object(req)?;
        let (id, key) = key_of(req)?;
        let sd = set_data(req)?;
        let data = sd
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("set_data.data must be a string"))?
            .to_string();
        let ts = check_signed(req, sd, &key, now)?;
        if let Some((_, last)) = self.entries.get(&id).and_then(|e| e.data.as_ref()) {
            if ts <= *last {
                return Err(forbidden(
                    "set_data.timestamp is not later than the key's last set (a replay?)",
                ));
            }
        }
        self.entry(id)?.data = Some((data, ts));
        Ok(json!({ "message": "" }))
    }

    /// `POST /get_or_set_nonce`: the answer and whether the store changed. `fresh_nonce`
    /// draws a new v2 nonce (a non-zero scalar) when one is needed.
    pub fn get_or_set_nonce(
        &mut self,
        req: &Value,
        now: u64,
        fresh_nonce: impl FnOnce() -> k256::NonZeroScalar,
    ) -> Result<(Value, bool), MetadataError> {
        let req = object(req)?;
        let (id, key) = key_of(req)?;
        let sd = set_data(req)?;
        let create = match sd.get("data").and_then(Value::as_str) {
            Some("getNonce") => false,
            Some("getOrSetNonce") => true,
            _ => {
                return Err(invalid(
                    "set_data.data must be \"getNonce\" or \"getOrSetNonce\"",
                ))
            }
        };
        let signed = if req.contains_key("signature") {
            check_signed(req, sd, &key, now)?;
            true
        } else {
            false
        };
        if let Some((data, _)) = self.entries.get(&id).and_then(|e| e.data.as_ref()) {
            return Ok((json!({"typeOfUser": "v1", "nonce": data}), false));
        }
        let mut changed = false;
        let nonce = match self.entries.get(&id).and_then(|e| e.nonce_v2.clone()) {
            Some(n) => n,
            None if create => {
                let n = hex_min(&fresh_nonce().to_bytes());
                self.entry(id)?.nonce_v2 = Some(n.clone());
                changed = true;
                n
            }
            None => return Ok((json!({"typeOfUser": "v1"}), false)),
        };
        let scalar = parse_hex32(&nonce)
            .and_then(|b| {
                Option::<k256::NonZeroScalar>::from(k256::NonZeroScalar::from_repr(b.into()))
            })
            .ok_or_else(|| invalid("stored nonce is not a scalar"))?;
        let p = (k256::ProjectivePoint::GENERATOR * *scalar)
            .to_affine()
            .to_encoded_point(false);
        let (px, py) = (
            p.x().map(|x| hex_min(x)).unwrap_or_default(),
            p.y().map(|y| hex_min(y)).unwrap_or_default(),
        );
        let mut out = json!({"typeOfUser": "v2"});
        if signed {
            out["nonce"] = Value::from(nonce);
        }
        out["pubNonce"] = json!({"x": px, "y": py});
        out["upgraded"] = Value::from(false);
        Ok((out, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::NodeKey;

    const NOW: u64 = 1_700_000_000;

    fn pubs(k: &NodeKey) -> (String, String) {
        k.public().hex_xy()
    }

    /// What torus.js's `generateMetadataParams` sends.
    fn signed(k: &NodeKey, data: &str, ts: u64) -> Value {
        let sd = json!({"data": data, "timestamp": format!("{ts:x}")});
        let sig = k.sign(stable_stringify(sd.as_object().unwrap()).as_bytes());
        let (x, y) = pubs(k);
        json!({"pub_key_X": x, "pub_key_Y": y, "set_data": sd,
            "signature": base64::engine::general_purpose::STANDARD.encode(sig)})
    }

    fn nonce_req(k: &NodeKey, what: &str) -> Value {
        let (x, y) = pubs(k);
        json!({"pub_key_X": x, "pub_key_Y": y, "set_data": {"data": what}})
    }

    fn one() -> k256::NonZeroScalar {
        k256::NonZeroScalar::from_uint(k256::U256::from_u64(7)).unwrap()
    }

    #[test]
    fn stable_stringify_sorts_keys_as_json_stable_stringify_does() {
        let v = json!({"timestamp": "65", "data": "a\"b"});
        assert_eq!(
            stable_stringify(v.as_object().unwrap()),
            r#"{"data":"a\"b","timestamp":"65"}"#
        );
    }

    #[test]
    fn a_key_without_metadata_reads_as_an_empty_message() {
        let s = MetadataStore::default();
        let k = NodeKey::random();
        let (x, y) = pubs(&k);
        let v = s.get(&json!({"pub_key_X": x, "pub_key_Y": y})).unwrap();
        assert_eq!(v, json!({"message": ""}));
    }

    #[test]
    fn the_owner_sets_data_that_anyone_reads_with_any_leading_zeros() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        s.set(&signed(&k, "abc", NOW), NOW).unwrap();
        let (x, y) = pubs(&k);
        let padded = json!({"pub_key_X": format!("{x:0>64}"), "pub_key_Y": format!("000{y}")});
        assert_eq!(s.get(&padded).unwrap(), json!({"message": "abc"}));
    }

    #[test]
    fn a_set_signed_by_another_key_is_refused() {
        let mut s = MetadataStore::default();
        let (owner, other) = (NodeKey::random(), NodeKey::random());
        let mut req = signed(&other, "mine now", NOW);
        let (x, y) = pubs(&owner);
        req["pub_key_X"] = x.into();
        req["pub_key_Y"] = y.into();
        assert!(matches!(s.set(&req, NOW), Err(MetadataError::Forbidden(_))));
        assert!(s.is_empty());
    }

    #[test]
    fn a_set_with_changed_data_or_no_signature_is_refused() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        let mut req = signed(&k, "1", NOW);
        req["set_data"]["data"] = "2".into();
        assert!(matches!(s.set(&req, NOW), Err(MetadataError::Forbidden(_))));
        req.as_object_mut().unwrap().remove("signature");
        assert!(matches!(s.set(&req, NOW), Err(MetadataError::Forbidden(_))));
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        let old = signed(&k, "x", NOW - MAX_CLOCK_SKEW_S - 1);
        assert!(matches!(s.set(&old, NOW), Err(MetadataError::Forbidden(_))));
        let future = signed(&k, "x", NOW + MAX_CLOCK_SKEW_S + 1);
        assert!(matches!(
            s.set(&future, NOW),
            Err(MetadataError::Forbidden(_))
        ));
    }

    #[test]
    fn a_replayed_set_cannot_bring_back_older_data() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        let first = signed(&k, "old", NOW);
        s.set(&first, NOW).unwrap();
        s.set(&signed(&k, "new", NOW + 1), NOW + 1).unwrap();
        assert!(matches!(
            s.set(&first, NOW + 2),
            Err(MetadataError::Forbidden(_))
        ));
        let (x, y) = pubs(&k);
        let v = s.get(&json!({"pub_key_X": x, "pub_key_Y": y})).unwrap();
        assert_eq!(v["message"], "new");
    }

    #[test]
    fn oversized_data_and_points_off_the_curve_are_refused() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        let big = "a".repeat(MAX_DATA_BYTES + 1);
        assert!(matches!(
            s.set(&signed(&k, &big, NOW), NOW),
            Err(MetadataError::Invalid(_))
        ));
        let off = json!({"pub_key_X": "1", "pub_key_Y": "1"});
        assert!(matches!(s.get(&off), Err(MetadataError::Invalid(_))));
        let not_hex = json!({"pub_key_X": "zz", "pub_key_Y": "1"});
        assert!(matches!(s.get(&not_hex), Err(MetadataError::Invalid(_))));
        assert!(matches!(s.get(&json!([1])), Err(MetadataError::Invalid(_))));
    }

    #[test]
    fn get_nonce_of_an_unknown_key_is_a_v1_user_with_nonce_zero_and_stores_nothing() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        let (v, changed) = s
            .get_or_set_nonce(&nonce_req(&k, "getNonce"), NOW, one)
            .unwrap();
        assert_eq!((v, changed), (json!({"typeOfUser": "v1"}), false));
        assert!(s.is_empty());
    }

    #[test]
    fn get_or_set_nonce_creates_one_v2_nonce_revealed_only_to_the_signed_owner() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        let (v, changed) = s
            .get_or_set_nonce(&nonce_req(&k, "getOrSetNonce"), NOW, one)
            .unwrap();
        assert!(changed);
        assert_eq!(v["typeOfUser"], "v2");
        assert!(v.get("nonce").is_none(), "{v}");
        let g7 = (k256::ProjectivePoint::GENERATOR * k256::Scalar::from(7u64))
            .to_affine()
            .to_encoded_point(false);
        assert_eq!(v["pubNonce"]["x"], hex_min(g7.x().unwrap()));
        // The same nonce again (no second draw), and to the signed owner its value.
        let (v2, changed) = s
            .get_or_set_nonce(&signed(&k, "getNonce", NOW), NOW, || panic!("no draw"))
            .unwrap();
        assert!(!changed);
        assert_eq!(v2["nonce"], "7");
        assert_eq!(v2["pubNonce"], v["pubNonce"]);
        // A request signed by someone else is refused, not answered without the nonce.
        let mut forged = signed(&NodeKey::random(), "getNonce", NOW);
        let (x, y) = pubs(&k);
        forged["pub_key_X"] = x.into();
        forged["pub_key_Y"] = y.into();
        assert!(matches!(
            s.get_or_set_nonce(&forged, NOW, one),
            Err(MetadataError::Forbidden(_))
        ));
    }

    #[test]
    fn a_key_with_set_data_is_a_v1_user_whose_nonce_is_that_data() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        s.set(&signed(&k, "2a", NOW), NOW).unwrap();
        let (v, _) = s
            .get_or_set_nonce(&nonce_req(&k, "getOrSetNonce"), NOW, one)
            .unwrap();
        assert_eq!(v, json!({"typeOfUser": "v1", "nonce": "2a"}));
    }

    #[test]
    fn an_unknown_nonce_command_is_refused() {
        let mut s = MetadataStore::default();
        let k = NodeKey::random();
        assert!(matches!(
            s.get_or_set_nonce(&nonce_req(&k, "setNonce"), NOW, one),
            Err(MetadataError::Invalid(_))
        ));
    }

    #[test]
    fn the_store_refuses_a_new_key_when_full_but_still_serves_known_keys() {
        let mut s = MetadataStore::default();
        let known = NodeKey::random();
        s.set(&signed(&known, "a", NOW), NOW).unwrap();
        for i in 1..MAX_KEYS {
            s.entries.insert(format!("{i:0>128}"), Entry::default());
        }
        let k = NodeKey::random();
        assert_eq!(s.set(&signed(&k, "x", NOW), NOW), Err(MetadataError::Full));
        assert_eq!(
            s.get_or_set_nonce(&nonce_req(&k, "getOrSetNonce"), NOW, one)
                .map(|_| ()),
            Err(MetadataError::Full)
        );
        s.set(&signed(&known, "b", NOW + 1), NOW + 1).unwrap();
        assert_eq!(s.len(), MAX_KEYS);
    }

    #[test]
    fn a_store_read_back_is_checked_against_the_bounds() {
        let mut s = MetadataStore::default();
        s.entries.insert("nothex".into(), Entry::default());
        assert!(s.validate().is_err());
        let mut s = MetadataStore::default();
        s.entries.insert(
            "0".repeat(128),
            Entry {
                data: Some(("a".repeat(MAX_DATA_BYTES + 1), 0)),
                nonce_v2: None,
            },
        );
        assert!(s.validate().is_err());
        let text = serde_json::to_string(&MetadataStore::default()).unwrap();
        let back: MetadataStore = serde_json::from_str(&text).unwrap();
        assert!(back.validate().is_ok());
    }
}
