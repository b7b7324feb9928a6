//! Complaint evidence: the consensus app's dealer-accountability rule
//! (`app::evidence::check`), which decides whom a complaint blames.
//!
//! A committee of four (k = 2, t = 1) and one honest dealing of three keys by
//! dealer 1, made once with the reference engine. Every input builds a `BadSlice`
//! complaint by one receiver about one key of that dealing, signed by the dealer's
//! real key, then:
//!
//! * with no change, the check must find the dealing honest (`FalseComplaint`: the
//!   accuser is blamed), for every receiver and key;
//! * with bytes of the key's matrix or slice changed, re-hashed into the lists and
//!   re-signed by the dealer (what a dishonest dealer sends), the check must blame the
//!   dealer (`DealerGuilty`): no signed bad dealing escapes, whatever the change;
//! * with the input's tail as raw matrix, slice, hash lists, key index and shape (a
//!   hostile accuser's evidence, still signed by the dealer), the check never panics,
//!   and evidence whose lists do not hash to the signed digests proves nothing (`Err`).
//!
//! The honest evidence is judged once per process (it is deterministic); hostile shapes
//! are judged twice and must give the same answer (consensus determinism).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use torus_engine::avss::{self, Commitments, Slice};
use torus_engine::{Engine, Params, Secp256k1};
use torus_node::app::evidence::{check, Verdict};
use torus_node::crypto::NodeKey;
use torus_node::hexfmt::keccak256;
use torus_node::tx::digest::{self, commitments_digest, slice_digest};
use torus_node::tx::{BatchId, DealHeader, EpochInfo, Evidence, NodeEntry};
use torus_node_fuzz::node_key;

const N: u32 = 4;
const K: u32 = 2;
const T: u32 = 1;
const KEYS: u32 = 3;
const DEALER: u32 = 1;

struct World {
    epoch: EpochInfo,
    batch: BatchId,
    dealer_key: NodeKey,
    commitments: Commitments<Secp256k1>,
    /// The slices of receivers 1..=N, in order.
    slices: Vec<Slice<Secp256k1>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let epoch = EpochInfo {
            epoch: 1,
            n: N,
            k: K,
            t: T,
            nodes: (1..=N)
                .map(|i| NodeEntry {
                    index: i,
                    pubkey: node_key(i as u8).public().compressed(),
                })
                .collect(),
        };
        let batch = BatchId {
            epoch: 1,
            start: 0,
            count: KEYS,
        };
        let params = Params::new(N, K, T).expect("valid committee");
        let engine = Engine::reference();
        let dealing =
            avss::deal::<Secp256k1>(&engine, params, DEALER, KEYS as usize, None, [7; 32])
                .expect("honest dealing");
        let slices = dealing.slices(&engine).expect("slices");
        World {
            epoch,
            batch,
            dealer_key: node_key(DEALER as u8),
            commitments: dealing.commitments.clone(),
            slices,
        }
    })
}

/// The dealer's header for `receiver`, signed over the given hash lists.
fn header(
    w: &World,
    receiver: u32,
    k: u32,
    keys: u32,
    mh: &[[u8; 32]],
    sh: &[[u8; 32]],
) -> DealHeader {
    DealHeader::sign(
        &w.dealer_key,
        w.batch,
        DEALER,
        receiver,
        k,
        keys,
        commitments_digest(&w.batch, DEALER, k, mh),
        slice_digest(&w.batch, DEALER, k, sh),
    )
}

fn judged(w: &World, accuser: u32, ev: &Evidence) -> Result<Verdict, String> {
    let first = check(&w.epoch, &w.batch, DEALER, accuser, ev);
    let again = check(&w.epoch, &w.batch, DEALER, accuser, ev);
    assert_eq!(first, again, "the evidence check is not deterministic");
    first
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    all_honest_evidence_is_recognised(w);
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let receiver = u32::from(sel >> 4) % N + 1;
    let key = u32::from(sel & 0x0f) % KEYS;
    match rest.split_first() {
        // Hostile shape: everything after the selector is the evidence.
        Some((b, _)) if b & 0x80 != 0 => raw(w, receiver, rest),
        Some((_, changes)) => mutated(w, receiver, key, changes),
        None => {}
    }
});

/// The honest dealing's evidence, as the dealer really signed it, is a false complaint
/// for every receiver and key. Deterministic, so judged once (at the first input).
fn all_honest_evidence_is_recognised(w: &World) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for receiver in 1..=N {
            for key in 0..KEYS {
                honest_once(w, receiver, key);
            }
        }
    });
}

fn honest_once(w: &World, receiver: u32, key: u32) {
    let slice = &w.slices[(receiver - 1) as usize];
    let honest = Evidence::BadSlice {
        header: DealHeader::sign(
            &w.dealer_key,
            w.batch,
            DEALER,
            receiver,
            K,
            w.batch.count,
            digest::dealing_digest(&w.batch, DEALER, &w.commitments),
            digest::send_slice_digest(&w.batch, DEALER, slice).expect("slice digest"),
        ),
        key,
        commitment_hashes: digest::matrix_hashes(&w.commitments),
        slice_hashes: digest::slice_hashes(slice).expect("slice hashes"),
        matrix: digest::matrix_bytes(&w.commitments, key as usize),
        slice: digest::slice_bytes(slice, key as usize)
            .expect("key in range")
            .to_vec(),
    };
    let v = judged(w, receiver, &honest);
    assert!(
        matches!(v, Ok(Verdict::FalseComplaint(_))),
        "an honest dealing was not recognised: {v:?}"
    );
}

/// The honest key data with the input's changes, re-hashed and re-signed by the dealer.
fn mutated(w: &World, receiver: u32, key: u32, changes: &[u8]) {
    let slice = &w.slices[(receiver - 1) as usize];
    let mut mh = digest::matrix_hashes(&w.commitments);
    let mut sh = digest::slice_hashes(slice).expect("slice hashes");
    let mut matrix = digest::matrix_bytes(&w.commitments, key as usize);
    let mut sbytes = digest::slice_bytes(slice, key as usize)
        .expect("key in range")
        .to_vec();

    // Changes: (offset: u16, xor: u8) triples over matrix ‖ slice.
    let (matrix0, slice0) = (matrix.clone(), sbytes.clone());
    for c in changes.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([c[0], c[1]])) % (matrix.len() + sbytes.len());
        if at < matrix.len() {
            matrix[at] ^= c[2];
        } else {
            sbytes[at - matrix.len()] ^= c[2];
        }
    }
    // Two changes of one byte may cancel out: only a real difference is a bad dealing.
    if matrix == matrix0 && sbytes == slice0 {
        return;
    }
    mh[key as usize] = keccak256(&matrix);
    sh[key as usize] = keccak256(&sbytes);
    let bad = Evidence::BadSlice {
        header: header(w, receiver, K, w.batch.count, &mh, &sh),
        key,
        commitment_hashes: mh,
        slice_hashes: sh,
        matrix,
        slice: sbytes,
    };
    // One check here (the costly path); determinism is checked on the hostile shapes.
    let v = check(&w.epoch, &w.batch, DEALER, receiver, &bad);
    assert!(
        matches!(v, Ok(Verdict::DealerGuilty(_))),
        "a signed bad dealing was not blamed on the dealer: {v:?}"
    );
}

/// Evidence whose every field comes from the input; the header is still the dealer's.
fn raw(w: &World, receiver: u32, data: &[u8]) {
    let mut it = data.iter().copied();
    let mut next = || it.next().unwrap_or(0);
    let flags = next();
    let k = if flags & 1 == 0 {
        K
    } else {
        u32::from(next()) % 8
    };
    let keys = if flags & 2 == 0 {
        w.batch.count
    } else {
        u32::from(next())
    };
    let n_mh = usize::from(next()) % 8;
    let n_sh = usize::from(next()) % 8;
    let key = u32::from(next());
    let m_len = usize::from(next()) * 2;
    let s_len = usize::from(next()) * 2;
    let mut take = |len: usize| -> Vec<u8> { (0..len).map(|_| next()).collect() };
    let matrix = take(m_len);
    let slice = take(s_len);
    let mut mh: Vec<[u8; 32]> = (0..n_mh).map(|i| keccak256(&[i as u8, flags])).collect();
    let mut sh: Vec<[u8; 32]> = (0..n_sh).map(|i| keccak256(&[i as u8, !flags])).collect();
    // Bind the raw key data into the lists when the key index is in range.
    if let Some(h) = mh.get_mut(key as usize) {
        *h = keccak256(&matrix);
    }
    if let Some(h) = sh.get_mut(key as usize) {
        *h = keccak256(&slice);
    }
    let signed = header(w, receiver, k, keys, &mh, &sh);
    if flags & 4 != 0 {
        // Lists other than the signed ones prove nothing.
        let mut other = mh.clone();
        other.push([0; 32]);
        let ev = Evidence::BadSlice {
            header: signed.clone(),
            key,
            commitment_hashes: other,
            slice_hashes: sh.clone(),
            matrix: matrix.clone(),
            slice: slice.clone(),
        };
        if k == K && keys == w.batch.count {
            assert!(
                judged(w, receiver, &ev).is_err(),
                "unbound lists were judged"
            );
        } else {
            let _ = judged(w, receiver, &ev);
        }
    }
    let ev = Evidence::BadSlice {
        header: signed.clone(),
        key,
        commitment_hashes: mh,
        slice_hashes: sh,
        matrix,
        slice,
    };
    let _ = judged(w, receiver, &ev);
    // The same header as malformed-shape and equivocation evidence.
    let v = judged(
        w,
        receiver,
        &Evidence::Malformed {
            header: signed.clone(),
        },
    );
    let shaped = k == K && keys == w.batch.count;
    assert_eq!(
        matches!(v, Ok(Verdict::FalseComplaint(_))),
        shaped,
        "shape verdict wrong: {v:?}"
    );
    let _ = judged(
        w,
        receiver,
        &Evidence::Equivocation {
            a: signed.clone(),
            b: signed,
        },
    );
}
