//! Node-to-node message bytes, as a peer would send them.
//!
//! * `Message::decode` never panics and allocates only what the input holds.
//! * The codec is canonical: what decodes re-encodes to the input and decodes back
//!   to the same message; its kind and batch accessors never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use torus_node::p2p::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let again = m.encode();
        assert_eq!(again.as_slice(), data, "encode(decode(b)) != b");
        assert!(
            Message::decode(&again).ok() == Some(m.clone()),
            "decode(encode(m)) != m"
        );
        let _ = (m.kind(), m.batch());
    }
});
