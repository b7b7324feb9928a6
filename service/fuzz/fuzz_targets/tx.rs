//! Consensus transaction bytes (the ABCI CheckTx path).
//!
//! * `SignedTx::decode` never panics, and what decodes re-encodes to the input.
//! * `App::check_tx` on the raw bytes never panics, against a genesis state and two
//!   states built by honest transactions (a decided batch with an assigned key; a
//!   decided hand-over).
//! * A decoded transaction is re-signed by the committee's (fixed) key so that its
//!   body reaches execution, where random bodies would otherwise stop at the signature
//!   check; `check_tx` and `finalize_block` must then accept or reject it without a
//!   panic or a storage error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use torus_node::app::{App, TxCode};
use torus_node::tx::SignedTx;
use torus_node_fuzz::Fixtures;

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(Fixtures::new)
}

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let app = App;
    let decoded = SignedTx::decode(data);
    if let Ok(tx) = &decoded {
        assert_eq!(tx.encode(), data, "encode(decode(b)) != b");
        assert_eq!(SignedTx::decode(&tx.encode()).as_ref(), Ok(tx));
        let _ = tx.signing_digest();
    }
    // Raw bytes, as a peer or client would submit them. The selector comes from the
    // input so every state sees every shape of input.
    let sel = data.last().copied().map_or(0, u64::from);
    let state = f.state(sel);
    let out = app.check_tx(state, data);
    assert_eq!(out.code == TxCode::Decode, decoded.is_err(), "{out:?}");

    let Ok(tx) = decoded else { return };
    let signed = f.resign(&tx, sel % 3 == 2);
    let bytes = signed.encode();
    let out = app.check_tx(state, &bytes);
    assert!(
        !matches!(out.code, TxCode::Decode | TxCode::Unauthorized),
        "re-signed tx not authenticated: {out:?}"
    );
    // Twice in one block: the second is a replay on top of the first's writes.
    let block = app
        .finalize_block(state, 100, &[0u8; 32], &[bytes.clone(), bytes])
        .expect("a block over a consistent state never fails with a storage error");
    assert_eq!(block.results.len(), 2);
    assert_eq!(
        block.results[0].code, out.code,
        "check_tx and finalize_block disagree"
    );
});
