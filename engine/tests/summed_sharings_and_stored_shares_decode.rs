//! The helpers a node uses around a decided dealer set: summing slices and
//! commitments, rebuilding shares from an aggregated slice or from storage, and the
//! typed errors where a caller once got empty slices or zeros.
use torus_engine::avss::{self, Commitments, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares};
use torus_engine::poly::interpolate_at;
use torus_engine::{Engine, Error, Params, Scalar, Secp256k1, Suite};

type Sc = Scalar<Secp256k1>;

fn dealings(params: Params, keys: usize) -> Vec<avss::Dealing<Secp256k1>> {
    (1..=params.n)
        .map(|d| {
            avss::deal::<Secp256k1>(&Engine::reference(), params, d, keys, None, [d as u8; 32])
                .unwrap()
        })
        .collect()
}

#[test]
fn the_summed_slice_and_commitments_give_the_aggregated_shares() {
    let params = Params::new(4, 3, 0).unwrap();
    let e = Engine::reference();
    let ds = dealings(params, 2);
    let me = 2;
    let slices: Vec<Slice<Secp256k1>> = ds.iter().map(|d| d.slice(&e, me).unwrap()).collect();
    let sends: Vec<SendRef<'_, Secp256k1>> = ds
        .iter()
        .zip(&slices)
        .map(|(d, s)| SendRef::new(d, s))
        .collect();
    let want = dkg::aggregate(&e, &params, me, &sends).unwrap();
    let summed = Slice::sum(me, &slices).unwrap();
    let combined = Commitments::sum(ds.iter().map(|d| &d.commitments)).unwrap();
    let refs: Vec<&Commitments<Secp256k1>> = ds.iter().map(|d| &d.commitments).collect();
    assert_eq!(Commitments::vartime_sum(&e, &refs).unwrap(), combined);
    let got = KeyShares::from_aggregated(params, &summed, &combined).unwrap();
    assert_eq!(got.shares(), want.shares());
    assert_eq!(got.blinding_shares(), want.blinding_shares());
    assert_eq!(got.commitments, want.commitments);
}

#[test]
fn slices_of_different_shapes_do_not_sum() {
    let e = Engine::reference();
    let a = dealings(Params::new(4, 3, 0).unwrap(), 2);
    let b = dealings(Params::new(4, 3, 0).unwrap(), 3);
    let sa = a[0].slice(&e, 1).unwrap();
    let sb = b[0].slice(&e, 1).unwrap();
    assert!(matches!(
        Slice::sum(1, [&sa, &sb]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        Slice::<Secp256k1>::sum(1, []),
        Err(Error::TooFewPoints { .. })
    ));
    assert!(Commitments::sum([&a[0].commitments, &b[0].commitments]).is_err());
    assert!(Commitments::vartime_sum(&e, &[&a[0].commitments, &b[0].commitments]).is_err());
    assert!(Commitments::<Secp256k1>::vartime_sum(&e, &[]).is_err());
}

#[test]
fn a_key_beyond_the_batch_is_an_error_not_an_empty_row() {
    let e = Engine::reference();
    let ds = dealings(Params::new(4, 3, 0).unwrap(), 2);
    let s = ds[0].slice(&e, 1).unwrap();
    assert!(s.try_row(1).is_ok());
    assert!(s.try_column(1).is_ok());
    assert_eq!(
        s.try_row(2).unwrap_err(),
        Error::KeyOutOfRange { key: 2, keys: 2 }
    );
    assert_eq!(
        s.try_column(7).unwrap_err(),
        Error::KeyOutOfRange { key: 7, keys: 2 }
    );
}

fn refs(v: &[[u8; 32]]) -> Vec<&[u8]> {
    v.iter().map(|b| &b[..]).collect()
}

#[test]
fn stored_shares_decode_back_and_bad_bytes_are_refused() {
    let params = Params::new(4, 3, 0).unwrap();
    let e = Engine::reference();
    let ds = dealings(params, 2);
    let slices: Vec<Slice<Secp256k1>> = ds.iter().map(|d| d.slice(&e, 3).unwrap()).collect();
    let sends: Vec<SendRef<'_, Secp256k1>> = ds
        .iter()
        .zip(&slices)
        .map(|(d, s)| SendRef::new(d, s))
        .collect();
    let shares = dkg::aggregate(&e, &params, 3, &sends).unwrap();
    let s: Vec<[u8; 32]> = shares
        .shares()
        .iter()
        .map(Secp256k1::encode_scalar)
        .collect();
    let sp: Vec<[u8; 32]> = shares
        .blinding_shares()
        .iter()
        .map(Secp256k1::encode_scalar)
        .collect();
    let c: Vec<Vec<u8>> = shares
        .commitments
        .iter()
        .map(torus_engine::group::point_bytes::<Secp256k1>)
        .collect();
    let cr: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
    let back = KeyShares::<Secp256k1>::decode_parts(3, params, &refs(&s), &refs(&sp), &cr).unwrap();
    assert_eq!(back.shares(), shares.shares());
    assert_eq!(back.commitments, shares.commitments);
    // q itself is not a canonical scalar.
    let q =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let mut bad = refs(&s);
    bad[0] = &q;
    assert!(matches!(
        KeyShares::<Secp256k1>::decode_parts(3, params, &bad, &refs(&sp), &cr),
        Err(Error::Decode(_))
    ));
    // One commitment point short.
    assert!(matches!(
        KeyShares::<Secp256k1>::decode_parts(3, params, &refs(&s), &refs(&sp), &cr[1..]),
        Err(Error::LengthMismatch { .. })
    ));
}

#[test]
fn lagrange_at_zero_names_a_duplicate_or_zero_index() {
    let v: Vec<Sc> = vec![Sc::from(5u64), Sc::from(7u64)];
    assert_eq!(
        interpolate_at(&[1, 1], &v, Sc::ZERO).unwrap_err(),
        Error::DuplicateIndex(1)
    );
    assert_eq!(
        interpolate_at(&[0, 2], &v, Sc::ZERO).unwrap_err(),
        Error::ZeroIndex
    );
    // f(x) = 3 + 2x through (1, 5) and (2, 7): f(0) = 3.
    assert_eq!(
        interpolate_at(&[1, 2], &v, Sc::ZERO).unwrap(),
        Sc::from(3u64)
    );
}

#[test]
fn the_vartime_sum_of_commitments_equals_the_constant_time_sum_over_many_chunks_and_doublings() {
    // 150 keys x 9 entries: two chunks of 1,024 entries, summed in parallel.
    let params = Params::new(4, 3, 0).unwrap();
    let ds = dealings(params, 150);
    let e = Engine::new();
    let refs: Vec<&Commitments<Secp256k1>> = ds.iter().map(|d| &d.commitments).collect();
    let want = Commitments::sum(refs.iter().copied()).unwrap();
    assert_eq!(Commitments::vartime_sum(&e, &refs).unwrap(), want);
    assert_eq!(
        Commitments::vartime_sum(&e, &refs[..1]).unwrap(),
        ds[0].commitments
    );
    // The same matrix twice: every entry is a doubling, not a generic addition.
    let twice = [&ds[1].commitments, &ds[1].commitments];
    assert_eq!(
        Commitments::vartime_sum(&e, &twice).unwrap(),
        Commitments::sum(twice).unwrap()
    );
}
