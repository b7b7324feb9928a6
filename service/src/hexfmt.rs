//! The spec's text encodings: Go `big.Int.Text(16)` hex (lower case, no `0x`,
//! no leading zeros, zero is `"0"`), zero-padded hex, and EIP-55 addresses.

use sha3::{Digest, Keccak256};

/// Keccak-256 (the legacy hash used everywhere in the protocol).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(data);
    h.finalize().into()
}

/// Big-endian bytes as Go's `big.Int.Text(16)`: no leading zeros, `"0"` for zero.
pub fn hex_min(be: &[u8]) -> String {
    let s = hex::encode(be);
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// A u64 as minimal hex (key indexes).
pub fn hex_u64(v: u64) -> String {
    format!("{v:x}")
}

/// Parses hex (optionally `0x`-prefixed, any case, any number of leading zeros)
/// into a 32-byte big-endian value; `None` if not hex or wider than 256 bits.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 64 + 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let t = s.trim_start_matches('0');
    if t.len() > 64 {
        return None;
    }
    let padded = format!("{t:0>64}");
    let v = hex::decode(padded).ok()?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    Some(out)
}

/// Parses a hex key index (as the client sends `Index`) into a u64.
pub fn parse_hex_u64(s: &str) -> Option<u64> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.is_empty() || s.len() > 32 {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// The Ethereum address of an uncompressed public key's 64 bytes (X||Y).
pub fn eth_address(xy: &[u8; 64]) -> [u8; 20] {
    let h = keccak256(xy);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h[12..]);
    a
}

/// EIP-55 mixed-case checksummed `0x` address.
pub fn checksum_address(addr: &[u8; 20]) -> String {
    let lower = hex::encode(addr);
    let h = keccak256(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (h[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_hex_matches_go() {
        assert_eq!(hex_min(&[0, 0, 0]), "0");
        assert_eq!(hex_min(&[0, 0x0a, 0xbc]), "abc");
        assert_eq!(hex_u64(0), "0");
        assert_eq!(hex_u64(255), "ff");
        assert_eq!(parse_hex_u64("ff"), Some(255));
        assert_eq!(parse_hex32("0x01").map(|v| v[31]), Some(1));
        assert_eq!(parse_hex32("zz"), None);
        assert_eq!(parse_hex32(&"1".repeat(65)), None);
        assert!(parse_hex32(&format!("{}{}", "0".repeat(10), "f".repeat(64))).is_some());
    }

    #[test]
    fn eip55_vectors() {
        // From the EIP-55 specification.
        for want in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let raw = hex::decode(want[2..].to_lowercase()).unwrap_or_default();
            let mut a = [0u8; 20];
            a.copy_from_slice(&raw);
            assert_eq!(checksum_address(&a), want);
        }
    }
}
