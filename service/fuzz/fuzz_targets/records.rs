//! Every LMDB record decoder. The first byte selects the decoder (as in
//! `records::decode_any`: tag % 11), the rest is the stored value.
//!
//! The record codecs are canonical: fixed-width big-endian integers, exact flags (0/1),
//! length-prefixed strings/lists with the exact length, and no trailing bytes. So for
//! every value that decodes, encoding it gives back the input bytes, and decoding that
//! gives back the value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torus_node::store::records::{
    decode_any, decode_batch_id, decode_epoch, decode_keys, decode_u64, encode_batch_id,
    encode_epoch, encode_keys, encode_u64, BatchRecord, Counters, Head, KeyRecord, ShareRecord,
    TokenCommitment, TokenUse,
};

/// Checks `decode(b) == Ok(x) ⇒ encode(x) == b ∧ decode(encode(x)) == x`, and that
/// `decode_any` agrees with the decoder. Returns whether `b` decoded.
macro_rules! round_trip {
    ($b:expr, $decode:expr, $encode:expr) => {{
        let b: &[u8] = $b;
        match $decode(b) {
            Ok(x) => {
                let again = $encode(&x);
                assert_eq!(again.as_slice(), b, "encode(decode(b)) != b");
                assert_eq!($decode(&again), Ok(x), "decode(encode(x)) != x");
                true
            }
            Err(_) => false,
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&tag, b)) = data.split_first() else {
        return;
    };
    let ok = match tag % 11 {
        10 => round_trip!(b, TokenUse::decode, TokenUse::encode),
        0 => round_trip!(b, Counters::decode, Counters::encode),
        1 => round_trip!(b, BatchRecord::decode, BatchRecord::encode),
        2 => round_trip!(b, KeyRecord::decode, KeyRecord::encode),
        3 => round_trip!(b, decode_epoch, encode_epoch),
        4 => round_trip!(b, decode_keys, |k: &Vec<[u8; 33]>| encode_keys(k)),
        5 => round_trip!(b, decode_u64, |v: &u64| encode_u64(*v)),
        6 => round_trip!(b, ShareRecord::decode, ShareRecord::encode),
        7 => round_trip!(b, TokenCommitment::decode, TokenCommitment::encode),
        8 => round_trip!(b, Head::decode, Head::encode),
        _ => round_trip!(b, decode_batch_id, encode_batch_id),
    };
    assert_eq!(decode_any(tag, b), ok, "decode_any disagrees for tag {tag}");
});
