//! Mempool admission and bookkeeping under an arbitrary sequence of operations.
//!
//! The input is a program: a header (state, limits), then steps, each an opcode
//! byte (high nibble: origin, low nibble: operation) and its operands, taken from
//! the input until it runs out. Transactions are either raw input bytes (as
//! a hostile peer sends them) or a decodable input re-signed by the committee's
//! fixed key (so that admission accepts it and the pool fills up).
//!
//! * `mempool::admit` never panics; it refuses what is larger than the limit, and
//!   what it admits decodes and names an epoch that is active in the state.
//! * After every step `Pool::check_invariants` holds: the lane and origin byte and
//!   count totals equal what the entries hold, no lane exceeds its bound, no origin
//!   its quota, no entry is larger than `max_tx_bytes`.
//! * `reap` returns at most `max_txs` transactions whose block cost fits the
//!   budget, keygen ones before user ones, and removes only what could never fit.
//! * Committed transactions are refused as duplicates afterwards.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use torus_node::hexfmt::keccak256;
use torus_node::mempool::{admit, Lane, Limits, Origin, Pool, Refused, Usage, TX_FRAMING};
use torus_node::tx::SignedTx;
use torus_node_fuzz::Fixtures;

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(Fixtures::new)
}

/// Reads the input front to back; empty once it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }
    /// A chunk whose length is the next two bytes (little-endian).
    fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(u16::from_le_bytes([
            self.byte().unwrap_or(0),
            self.byte().unwrap_or(0),
        ]));
        let n = n.min(self.0.len());
        let (c, rest) = self.0.split_at(n);
        self.0 = rest;
        c
    }
}

fn lane_of(tx: &[u8]) -> Option<Lane> {
    SignedTx::decode(tx).ok().map(|t| Lane::of(&t.body))
}

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let mut input = Input(data);
    // Small bounds so that a short input reaches every limit.
    let sel = u64::from(input.byte().unwrap_or(0));
    let state = f.state(sel);
    let limits = Limits {
        max_tx_bytes: 256 + usize::from(input.byte().unwrap_or(0)) * 4,
        keygen: Usage {
            txs: 1 + usize::from(input.byte().unwrap_or(0) % 8),
            bytes: 4096,
        },
        user: Usage {
            txs: 1 + usize::from(input.byte().unwrap_or(0) % 8),
            bytes: 2048,
        },
        origins: 1 + usize::from(input.byte().unwrap_or(0) % 4),
        max_age_blocks: u64::from(input.byte().unwrap_or(0) % 8),
    };
    let mut pool = Pool::new(limits);
    let mut height = 0u64;
    let mut reaped: Vec<Vec<u8>> = Vec::new();
    while let Some(op) = input.byte() {
        let origin = match op >> 4 {
            0 => Origin::Local,
            p => Origin::Peer(u32::from(p % 5)),
        };
        let kind = (op & 0x0f) % 6;
        match kind {
            // A raw transaction, or one re-signed so that it authenticates.
            0 | 1 => {
                let raw = input.chunk();
                let tx = if kind == 1 {
                    match SignedTx::decode(raw) {
                        Ok(t) => f.resign(&t, sel % 3 == 2).encode(),
                        Err(_) => continue,
                    }
                } else {
                    raw.to_vec()
                };
                match admit(state, &tx, limits.max_tx_bytes) {
                    Ok(meta) => {
                        assert!(tx.len() <= limits.max_tx_bytes);
                        assert_eq!(lane_of(&tx), Some(meta.lane));
                        let was_known = pool.is_known(&keccak256(&tx));
                        match pool.insert(tx, origin, meta) {
                            Ok(_) => assert!(!was_known),
                            Err(Refused::Duplicate) => assert!(was_known),
                            Err(
                                Refused::Full | Refused::QuotaExceeded | Refused::Unauthorized,
                            ) => {}
                            Err(e) => panic!("admitted, then refused as {e:?}"),
                        }
                    }
                    Err(Refused::TooLarge) => assert!(tx.len() > limits.max_tx_bytes),
                    Err(Refused::Decode) => assert!(SignedTx::decode(&tx).is_err()),
                    Err(Refused::Unauthorized) => {}
                    Err(e) => panic!("admission refused with {e:?} on an in-memory state"),
                }
            }
            2 => {
                let budget = usize::from(input.byte().unwrap_or(0)) * 8;
                let max_txs = usize::from(input.byte().unwrap_or(0) % 16);
                let before = pool.len();
                let (txs, dropped) = pool.reap(budget, max_txs);
                assert!(txs.len() <= max_txs);
                let cost: usize = txs.iter().map(|t| t.len() + TX_FRAMING).sum();
                assert!(cost <= budget, "reaped {cost} bytes for a budget of {budget}");
                assert_eq!(pool.len() + dropped.never_fits, before);
                let lanes: Vec<Option<Lane>> = txs.iter().map(|t| lane_of(t)).collect();
                assert!(lanes.windows(2).all(|w| w[0] <= w[1]), "keygen first");
                reaped = txs;
            }
            3 => {
                let n = usize::from(input.byte().unwrap_or(0)) % (reaped.len() + 1);
                let hashes: Vec<[u8; 32]> = reaped.drain(..n).map(|t| keccak256(&t)).collect();
                pool.remove_committed(&hashes);
                for h in &hashes {
                    assert!(!pool.contains(h) && pool.is_known(h));
                }
            }
            4 => {
                let hashes: Vec<[u8; 32]> = reaped.iter().map(|t| keccak256(t)).collect();
                pool.evict(&hashes);
                assert!(hashes.iter().all(|h| !pool.contains(h)));
            }
            _ => {
                height += u64::from(input.byte().unwrap_or(0) % 4);
                let cur = 1 + u64::from(input.byte().unwrap_or(0) % 3);
                let next = input.byte().and_then(|b| (b & 1 == 1).then_some(cur + 1));
                pool.after_block(height, cur, next);
            }
        }
        if let Err(e) = pool.check_invariants() {
            panic!("pool invariant broken: {e}");
        }
        assert!(pool.lane_usage(Lane::Keygen).txs <= limits.keygen.txs);
        assert!(pool.lane_usage(Lane::User).txs <= limits.user.txs);
        assert!(pool.bytes() <= limits.keygen.bytes + limits.user.bytes);
    }
});
