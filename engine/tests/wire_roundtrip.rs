//! Property tests of the `wire` encodings, on both curves.
//!
//! * Round trips: every wire type (`Commitments`, `Slice`, `PointMsg`,
//!   `PublicShares`, `KeyShares`), built through the public API (`deal`, `slices`,
//!   `echo_points`, `aggregate`, `public_shares`) with proptest-chosen committee
//!   sizes, batch sizes and seeds, satisfies `decode(encode(x)) == x`; the encoding
//!   is refused by the other suite and by the other types.
//! * Hostile input: decoding arbitrary bytes, truncated encodings, bit-flipped
//!   encodings and encodings with an overwritten 32-bit window never panics. When a
//!   decoder does accept such input, re-encoding the value gives back exactly the
//!   input (the decoders accept canonical encodings only). A strict prefix of a valid
//!   encoding is always refused.
//!
//! Case counts keep the whole file well under a minute in the test profile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use torus_engine::avss::{self, Commitments, Dealing, PointMsg, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::wire::{Wire, WireXy};
use torus_engine::{Bls12381, Engine, Params, Secp256k1, Suite};

type S1 = Secp256k1;
type S2 = Bls12381;

/// Cases of the round-trip properties (each builds dealings: a few ms to ~100 ms).
const ROUNDTRIP_CASES: u32 = 64;
/// Cases of the cheap hostile-input properties.
const FUZZ_CASES: u32 = 10_000;

// ------------------------------------------------------------------ builders

/// Committee `(n, k, t)` with `1 <= k <= n <= 4`, `k + t <= n`, `t < k` and `n >= 3t + 1`.
fn params_strategy() -> impl Strategy<Value = Params> {
    (1u32..=4)
        .prop_flat_map(|n| (Just(n), 1..=n))
        .prop_flat_map(|(n, k)| (Just(n), Just(k), 0..=(n - k).min(k - 1).min((n - 1) / 3)))
        .prop_map(|(n, k, t)| Params::new(n, k, t).unwrap())
}

fn seed_of(base: [u8; 32], d: u32) -> [u8; 32] {
    let mut s = base;
    s[0] ^= u8::try_from(d).unwrap();
    s
}

/// One dealing, its slices and every echo message of every receiver.
struct OneDealing<S: Suite> {
    dealing: Dealing<S>,
    slices: Vec<Slice<S>>,
    echoes: Vec<PointMsg<S>>,
}

fn one_dealing<S: Suite>(
    params: Params,
    dealer: u32,
    keys: usize,
    seed: [u8; 32],
) -> OneDealing<S> {
    let engine = Engine::reference();
    let dealing = avss::deal::<S>(&engine, params, dealer, keys, None, seed).unwrap();
    let slices = dealing.slices(&engine).unwrap();
    let echoes = slices
        .iter()
        .flat_map(|s| (1..=params.n).map(move |to| avss::echo_points(s, to)))
        .collect();
    OneDealing {
        dealing,
        slices,
        echoes,
    }
}

/// Every node's aggregated shares and public shares from dealers `1..=k`.
fn dkg_outputs<S: Suite>(
    params: Params,
    keys: usize,
    seed: [u8; 32],
) -> (Vec<KeyShares<S>>, Vec<PublicShares<S>>) {
    let engine = Engine::reference();
    let dealings: Vec<Dealing<S>> = (1..=params.k)
        .map(|d| avss::deal::<S>(&engine, params, d, keys, None, seed_of(seed, d)).unwrap())
        .collect();
    let slices: Vec<Vec<Slice<S>>> = dealings
        .iter()
        .map(|d| d.slices(&engine).unwrap())
        .collect();
    let shares: Vec<KeyShares<S>> = (1..=params.n)
        .map(|i| {
            let sends: Vec<SendRef<'_, S>> = dealings
                .iter()
                .zip(&slices)
                .map(|(d, s)| SendRef::new(d, &s[(i - 1) as usize]))
                .collect();
            dkg::aggregate(&engine, &params, i, &sends).unwrap()
        })
        .collect();
    let public = shares
        .iter()
        .map(|s| dkg::public_shares(&engine, s, seed_of(seed, 100 + s.node)).unwrap())
        .collect();
    (shares, public)
}

// ------------------------------------------------------------------ round-trip checks

/// `decode(encode(x)) == x`, canonical re-encoding, and the bytes are refused as
/// the other four types.
fn roundtrip<S: Suite, T>(x: &T) -> Result<Vec<u8>, TestCaseError>
where
    T: Wire + PartialEq + core::fmt::Debug,
{
    let bytes = x.encode();
    let back = T::decode(&bytes);
    prop_assert!(back.is_ok(), "decode failed: {:?}", back.err());
    let back = back.unwrap();
    prop_assert_eq!(&back, x);
    prop_assert_eq!(back.encode(), bytes.clone());
    only_its_type_accepts::<S, T>(&bytes)?;
    Ok(bytes)
}

/// Exactly one of the five types accepts `bytes` (header tag), and `T` refuses
/// them with a trailing byte.
fn only_its_type_accepts<S: Suite, T: Wire>(bytes: &[u8]) -> Result<(), TestCaseError> {
    let accepted = [
        Commitments::<S>::decode(bytes).is_ok(),
        Slice::<S>::decode(bytes).is_ok(),
        PointMsg::<S>::decode(bytes).is_ok(),
        PublicShares::<S>::decode(bytes).is_ok(),
        KeyShares::<S>::decode(bytes).is_ok(),
    ];
    prop_assert_eq!(accepted.iter().filter(|a| **a).count(), 1);
    let mut longer = bytes.to_vec();
    longer.push(0);
    prop_assert!(T::decode(&longer).is_err());
    Ok(())
}

/// As [`roundtrip`] for the uncompressed-point form of `x`: it decodes (through
/// the same decoder) to `x`, whose uncompressed re-encoding is the input, only
/// its own type accepts it, and it differs from the compressed form.
fn roundtrip_xy<S: Suite, T>(x: &T) -> Result<Vec<u8>, TestCaseError>
where
    T: WireXy + PartialEq + core::fmt::Debug,
{
    let bytes = x.encode_xy();
    prop_assert_ne!(&bytes, &x.encode());
    let back = T::decode(&bytes);
    prop_assert!(back.is_ok(), "decode failed: {:?}", back.err());
    let back = back.unwrap();
    prop_assert_eq!(&back, x);
    prop_assert_eq!(back.encode_xy(), bytes.clone());
    only_its_type_accepts::<S, T>(&bytes)?;
    Ok(bytes)
}

/// The bytes are refused by every decoder of the other suite `O`.
fn other_suite_refuses<O: Suite>(bytes: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(Commitments::<O>::decode(bytes).is_err());
    prop_assert!(Slice::<O>::decode(bytes).is_err());
    prop_assert!(PointMsg::<O>::decode(bytes).is_err());
    prop_assert!(PublicShares::<O>::decode(bytes).is_err());
    prop_assert!(KeyShares::<O>::decode(bytes).is_err());
    Ok(())
}

fn check_dealing_types<S: Suite, O: Suite>(
    params: Params,
    dealer: u32,
    keys: usize,
    seed: [u8; 32],
) -> Result<(), TestCaseError> {
    let d = one_dealing::<S>(params, dealer, keys, seed);
    prop_assert_eq!(d.dealing.commitments.keys(), keys);
    let b = roundtrip::<S, _>(&d.dealing.commitments)?;
    other_suite_refuses::<O>(&b)?;
    let b = roundtrip_xy::<S, _>(&d.dealing.commitments)?;
    other_suite_refuses::<O>(&b)?;
    for s in &d.slices {
        let b = roundtrip::<S, _>(s)?;
        other_suite_refuses::<O>(&b)?;
    }
    for m in &d.echoes {
        let b = roundtrip::<S, _>(m)?;
        other_suite_refuses::<O>(&b)?;
    }
    Ok(())
}

fn check_dkg_types<S: Suite, O: Suite>(
    params: Params,
    keys: usize,
    seed: [u8; 32],
) -> Result<(), TestCaseError> {
    let (shares, public) = dkg_outputs::<S>(params, keys, seed);
    for s in &shares {
        prop_assert_eq!(s.keys(), keys);
        let b = roundtrip::<S, _>(s)?;
        other_suite_refuses::<O>(&b)?;
    }
    for p in &public {
        let b = roundtrip::<S, _>(p)?;
        other_suite_refuses::<O>(&b)?;
        let b = roundtrip_xy::<S, _>(p)?;
        other_suite_refuses::<O>(&b)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ hostile input

/// Decodes `bytes` as every type; must not panic; an accepted input must be the
/// canonical encoding of what it decoded to. Returns how many types accepted.
fn decode_all<S: Suite>(bytes: &[u8]) -> Result<usize, TestCaseError> {
    fn one<T: Wire>(bytes: &[u8]) -> Result<usize, TestCaseError> {
        match T::decode(bytes) {
            Ok(v) => {
                prop_assert_eq!(
                    v.encode(),
                    bytes.to_vec(),
                    "accepted a non-canonical encoding"
                );
                Ok(1)
            }
            Err(_) => Ok(0),
        }
    }
    /// As `one` for types with two canonical forms: the input must be one of them.
    fn one_xy<T: WireXy>(bytes: &[u8]) -> Result<usize, TestCaseError> {
        match T::decode(bytes) {
            Ok(v) => {
                prop_assert!(
                    v.encode() == bytes || v.encode_xy() == bytes,
                    "accepted a non-canonical encoding"
                );
                Ok(1)
            }
            Err(_) => Ok(0),
        }
    }
    Ok(one_xy::<Commitments<S>>(bytes)?
        + one::<Slice<S>>(bytes)?
        + one::<PointMsg<S>>(bytes)?
        + one_xy::<PublicShares<S>>(bytes)?
        + one::<KeyShares<S>>(bytes)?)
}

/// Valid encodings of all five types over a few committees, built once per suite.
fn corpus<S: Suite>(cell: &'static OnceLock<Vec<Vec<u8>>>) -> &'static [Vec<u8>] {
    cell.get_or_init(|| {
        let mut out = Vec::new();
        for (n, k, t, keys) in [(1, 1, 0, 1), (4, 2, 1, 2), (4, 3, 1, 1)] {
            let params = Params::new(n, k, t).unwrap();
            let seed = [u8::try_from(n * 16 + k).unwrap(); 32];
            let d = one_dealing::<S>(params, n, keys, seed);
            out.push(d.dealing.commitments.encode());
            out.push(d.dealing.commitments.encode_xy());
            out.extend(d.slices.iter().take(2).map(Wire::encode));
            out.extend(d.echoes.iter().take(2).map(Wire::encode));
            let (shares, public) = dkg_outputs::<S>(params, keys, seed);
            out.extend(shares.iter().take(2).map(Wire::encode));
            out.extend(public.iter().take(2).map(Wire::encode));
            out.extend(public.iter().take(2).map(WireXy::encode_xy));
        }
        out
    })
}

static CORPUS_S1: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
static CORPUS_S2: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

/// A mutation of a corpus entry.
#[derive(Clone, Debug)]
enum Mutation {
    /// Keep a strict prefix of this length (mod the length).
    Truncate(usize),
    /// Flip these (position, bit) pairs.
    Flip(Vec<(usize, u8)>),
    /// Overwrite 4 bytes at this position with a big-endian u32 (count fields).
    Overwrite(usize, u32),
    /// Append bytes.
    Append(Vec<u8>),
}

fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<usize>(), 0u8..8), 1..4).prop_map(Mutation::Flip),
        (
            any::<usize>(),
            prop_oneof![Just(0u32), Just(1), Just(u32::MAX), 0u32..64, any::<u32>()]
        )
            .prop_map(|(p, v)| Mutation::Overwrite(p, v)),
        prop::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
    ]
}

fn check_mutation<S: Suite>(
    cell: &'static OnceLock<Vec<Vec<u8>>>,
    which: usize,
    m: &Mutation,
) -> Result<(), TestCaseError> {
    let corpus = corpus::<S>(cell);
    let orig = &corpus[which % corpus.len()];
    prop_assert_eq!(decode_all::<S>(orig)?, 1);
    let mut b = orig.clone();
    match m {
        Mutation::Truncate(len) => {
            b.truncate(len % orig.len());
            prop_assert_eq!(decode_all::<S>(&b)?, 0, "a strict prefix decoded");
            return Ok(());
        }
        Mutation::Flip(flips) => {
            for (pos, bit) in flips {
                b[pos % orig.len()] ^= 1 << bit;
            }
        }
        Mutation::Overwrite(pos, v) => {
            let p = pos % orig.len().saturating_sub(3).max(1);
            let end = (p + 4).min(b.len());
            b[p..end].copy_from_slice(&v.to_be_bytes()[..end - p]);
        }
        Mutation::Append(extra) => {
            b.extend_from_slice(extra);
            prop_assert_eq!(decode_all::<S>(&b)?, 0, "trailing bytes accepted");
            return Ok(());
        }
    }
    decode_all::<S>(&b)?;
    Ok(())
}

/// Arbitrary bytes, half of them behind a valid 3-byte header for a random tag
/// (so the decoders get past the header into counts, points and scalars).
fn garbage_strategy(suite: u8) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (
            0u8..=6,
            prop::collection::vec(any::<u8>(), 0..300),
            prop_oneof![
                Just(None),
                (0u32..4).prop_map(Some),
                any::<u32>().prop_map(Some)
            ],
        )
            .prop_map(move |(tag, rest, count)| {
                let mut v = vec![1, suite, tag];
                if let Some(c) = count {
                    v.extend_from_slice(&c.to_be_bytes());
                }
                v.extend(rest);
                v
            }),
    ]
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(ROUNDTRIP_CASES))]

    #[test]
    fn secp256k1_commitments_slices_points_roundtrip(
        params in params_strategy(),
        dealer_pick in any::<u32>(),
        keys in 1usize..=3,
        seed in any::<[u8; 32]>(),
    ) {
        let dealer = dealer_pick % params.n + 1;
        check_dealing_types::<S1, S2>(params, dealer, keys, seed)?;
    }

    #[test]
    fn bls12_381_commitments_slices_points_roundtrip(
        params in params_strategy(),
        dealer_pick in any::<u32>(),
        keys in 1usize..=3,
        seed in any::<[u8; 32]>(),
    ) {
        let dealer = dealer_pick % params.n + 1;
        check_dealing_types::<S2, S1>(params, dealer, keys, seed)?;
    }

    #[test]
    fn secp256k1_key_shares_and_public_shares_roundtrip(
        params in params_strategy(),
        keys in 1usize..=3,
        seed in any::<[u8; 32]>(),
    ) {
        check_dkg_types::<S1, S2>(params, keys, seed)?;
    }

    #[test]
    fn bls12_381_key_shares_and_public_shares_roundtrip(
        params in params_strategy(),
        keys in 1usize..=3,
        seed in any::<[u8; 32]>(),
    ) {
        check_dkg_types::<S2, S1>(params, keys, seed)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(FUZZ_CASES))]

    #[test]
    fn secp256k1_arbitrary_bytes_never_panic(bytes in garbage_strategy(1)) {
        decode_all::<S1>(&bytes)?;
    }

    #[test]
    fn bls12_381_arbitrary_bytes_never_panic(bytes in garbage_strategy(2)) {
        decode_all::<S2>(&bytes)?;
    }

    #[test]
    fn secp256k1_mutated_encodings_never_panic(which in any::<usize>(), m in mutation_strategy()) {
        check_mutation::<S1>(&CORPUS_S1, which, &m)?;
    }

    #[test]
    fn bls12_381_mutated_encodings_never_panic(which in any::<usize>(), m in mutation_strategy()) {
        check_mutation::<S2>(&CORPUS_S2, which, &m)?;
    }
}

/// Every strict prefix of every corpus entry is refused (exhaustive, not sampled).
#[test]
fn every_strict_prefix_is_refused() {
    for b in corpus::<S1>(&CORPUS_S1) {
        for len in 0..b.len() {
            assert_eq!(
                decode_all::<S1>(&b[..len]).unwrap(),
                0,
                "secp256k1 prefix {len}"
            );
        }
    }
    for b in corpus::<S2>(&CORPUS_S2) {
        for len in 0..b.len() {
            assert_eq!(
                decode_all::<S2>(&b[..len]).unwrap(),
                0,
                "bls12-381 prefix {len}"
            );
        }
    }
}
