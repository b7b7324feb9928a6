//! Known-answer vectors, checked on both curves.
//!
//! Two kinds of vector files live in `tests/vectors/`:
//!
//! * **Independent** (Python, never written by this test):
//!   - `lagrange.json` from `gen_lagrange.py`: Lagrange coefficients mod q / r with
//!     plain integer arithmetic.
//!   - `xcheck.json` from `gen_xcheck.py`: H of both curves (secp256k1 from the spec
//!     constants, BLS12-381 re-derived with py_ecc's RFC 9380 `hash_to_G1`), the
//!     fixed-coefficient dealing (commitments, slices, shares) and the hand-aggregated
//!     tiny DKG (shares, commitment vectors, secrets, public keys), with textbook
//!     secp256k1 arithmetic and py_ecc for BLS12-381 G1.
//! * **Pinned** (engine outputs, regression vectors): `generators.json`,
//!   `dealing.json`, `reshare.json`, one section per curve.
//!
//! By default every test compares the engine's output exactly with the files.
//! With `TORUS_REGEN_VECTORS=1` the tests REWRITE their section of the pinned files
//! instead of comparing with them (the independent checks still run):
//!
//! ```text
//! TORUS_REGEN_VECTORS=1 cargo test -p torus-engine --test known_answer_vectors
//! ```
//!
//! The Python inputs (`dealing_inputs`, `dkg_inputs` in `gen_xcheck.py`) mirror the
//! functions of the same names below; the tests assert that the two agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::Mutex;

use ff::Field;
use group::Group;
use serde_json::{json, Value};
use torus_engine::avss::{self, Dealing, SendRef, Slice};
use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::group::point_bytes;
use torus_engine::poly::{lagrange_at_zero, lagrange_coefficients};
use torus_engine::testing::deal_with_coefficients;
use torus_engine::{pss, Affine, Engine, Params, Point, Scalar, Suite};

// ------------------------------------------------------------------ file helpers

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn load(file: &str) -> Value {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {}: {e}", path.display()))
}

fn regen() -> bool {
    std::env::var("TORUS_REGEN_VECTORS").as_deref() == Ok("1")
}

/// Serializes read-modify-write of the pinned files (tests run on several threads).
static FILE_LOCK: Mutex<()> = Mutex::new(());

/// Compares `actual` with section `S::NAME` of the pinned file `file`, or, with
/// `TORUS_REGEN_VECTORS=1`, writes it there.
fn pinned<S: Suite>(file: &str, actual: &Value) {
    let _guard = FILE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = vectors_dir().join(file);
    if regen() {
        let mut doc: Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| json!({}));
        doc["description"] = json!(
            "Pinned engine outputs (regression vectors), written by \
             tests/known_answer_vectors.rs with TORUS_REGEN_VECTORS=1. Scalars: 32-byte \
             big-endian hex; points: compressed hex."
        );
        doc[S::NAME] = actual.clone();
        let mut text = serde_json::to_string_pretty(&doc).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        eprintln!("rewrote section {} of {}", S::NAME, path.display());
        return;
    }
    let doc = load(file);
    let expected = doc.get(S::NAME).unwrap_or_else(|| {
        panic!(
            "{file} has no section {}; regenerate with TORUS_REGEN_VECTORS=1",
            S::NAME
        )
    });
    assert_eq!(
        expected,
        actual,
        "{file} [{}] differs from the engine's output",
        S::NAME
    );
}

/// Section `S::NAME` of an independent (Python-generated) file.
fn independent<S: Suite>(file: &str) -> Value {
    let doc = load(file);
    doc.get(S::NAME)
        .unwrap_or_else(|| panic!("{file} has no section {}", S::NAME))
        .clone()
}

// ------------------------------------------------------------------ hex helpers

fn hex_bytes(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected hex string, got {v}"));
    hex::decode(s).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
}

/// A 32-byte big-endian canonical scalar.
fn scalar<S: Suite>(v: &Value) -> Scalar<S> {
    let b = hex_bytes(v);
    assert_eq!(b.len(), S::SCALAR_LEN, "scalar length of {v}");
    S::decode_scalar(&b).unwrap_or_else(|e| panic!("scalar {v}: {e:?}"))
}

/// A compressed point (33 bytes SEC1 / 48 bytes zcash).
fn point<S: Suite>(v: &Value) -> Affine<S> {
    let b = hex_bytes(v);
    assert_eq!(b.len(), S::POINT_LEN, "point length of {v}");
    S::decode_point(&b).unwrap_or_else(|e| panic!("point {v}: {e:?}"))
}

fn scalars<S: Suite>(v: &Value) -> Vec<Scalar<S>> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected array, got {v}"))
        .iter()
        .map(scalar::<S>)
        .collect()
}

fn points<S: Suite>(v: &Value) -> Vec<Affine<S>> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected array, got {v}"))
        .iter()
        .map(point::<S>)
        .collect()
}

fn sh<S: Suite>(s: &Scalar<S>) -> Value {
    json!(hex::encode(S::encode_scalar(s)))
}

fn shs<S: Suite>(v: &[Scalar<S>]) -> Value {
    Value::Array(v.iter().map(sh::<S>).collect())
}

fn ph<S: Suite>(p: &Affine<S>) -> Value {
    json!(hex::encode(point_bytes::<S>(p)))
}

fn phs<S: Suite>(v: &[Affine<S>]) -> Value {
    Value::Array(v.iter().map(ph::<S>).collect())
}

fn u(x: u64) -> Value {
    json!(x)
}

// ------------------------------------------------------------------ inputs

/// Coefficient matrices `(f, f')`.
type Coeffs<S> = (Vec<Scalar<S>>, Vec<Scalar<S>>);

/// 0x1234...4321, below both group orders.
const BIG1: &str = "1234567890abcdef0fedcba9876543211234567890abcdef0fedcba987654321";
/// 2^252 + 27742317777372353535851937790883648493, below both group orders.
const BIG2: &str = "1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed";

fn big<S: Suite>(h: &str) -> Scalar<S> {
    scalar::<S>(&json!(h))
}

fn n<S: Suite>(x: u64) -> Scalar<S> {
    Scalar::<S>::from(x)
}

/// Mirror of `dealing_inputs` in gen_xcheck.py: n=3, k=2, dealer 1, one key,
/// `f[j*k + l]` is the coefficient of `x^j y^l`; `f(x, 0) = 7 - x`, so the shares
/// are 6, 5, 4.
fn dealing_inputs<S: Suite>() -> Coeffs<S> {
    (
        vec![
            n::<S>(7),
            big::<S>(BIG1),
            -Scalar::<S>::ONE,
            Scalar::<S>::ZERO,
        ],
        vec![n::<S>(11), n::<S>(5), big::<S>(BIG2), n::<S>(2)],
    )
}

/// Mirror of `dkg_inputs` in gen_xcheck.py (key-major `f[key*k*k + j*k + l]`).
fn dkg_inputs<S: Suite>(dealer: u32, keys: usize, k: usize) -> Coeffs<S> {
    let mut f = Vec::new();
    let mut fp = Vec::new();
    for key in 0..keys {
        for e in 0..k * k {
            let base = n::<S>(u64::from(dealer) * 1000 + key as u64 * 100 + e as u64 + 1);
            f.push(if e == k * k - 1 {
                big::<S>(BIG1) * n::<S>(u64::from(dealer))
            } else {
                base
            });
            fp.push(-base);
        }
    }
    (f, fp)
}

fn slice_json<S: Suite>(s: &Slice<S>) -> Value {
    let mut a = Vec::new();
    let mut ap = Vec::new();
    let mut b = Vec::new();
    let mut bp = Vec::new();
    for key in 0..s.keys() {
        let (r, rp) = s.row(key);
        let (c, cp) = s.column(key);
        a.extend_from_slice(r);
        ap.extend_from_slice(rp);
        b.extend_from_slice(c);
        bp.extend_from_slice(cp);
    }
    json!({
        "receiver": u(u64::from(s.receiver)),
        "a": shs::<S>(&a),
        "ap": shs::<S>(&ap),
        "b": shs::<S>(&b),
        "bp": shs::<S>(&bp),
    })
}

/// Decodes a slice from the JSON layout of `slice_json` (via `decode_scalar`).
fn slice_from_json<S: Suite>(v: &Value, k: usize) -> Slice<S> {
    Slice::from_parts(
        u32::try_from(v["receiver"].as_u64().unwrap()).unwrap(),
        k,
        scalars::<S>(&v["a"]),
        scalars::<S>(&v["ap"]),
        scalars::<S>(&v["b"]),
        scalars::<S>(&v["bp"]),
    )
    .unwrap()
}

fn sends<'a, S: Suite>(
    dealings: &'a [Dealing<S>],
    slices: &'a [Vec<Slice<S>>],
    receiver: u32,
    decided: &[usize],
) -> Vec<SendRef<'a, S>> {
    decided
        .iter()
        .map(|&d| SendRef {
            dealer: dealings[d].dealer,
            commitments: &dealings[d].commitments,
            slice: &slices[d][(receiver - 1) as usize],
        })
        .collect()
}

/// `sum_l x^l V[l]` for one commitment vector (plain group arithmetic).
fn eval_commitments<S: Suite>(v: &[Affine<S>], x: u32) -> Point<S> {
    let xs = n::<S>(u64::from(x));
    let mut acc = Point::<S>::identity();
    let mut pw = Scalar::<S>::ONE;
    for p in v {
        acc += S::from_affine(p) * pw;
        pw *= xs;
    }
    acc
}

// ------------------------------------------------------------------ (a) generators

fn check_generators<S: Suite>() {
    let g = S::to_affine(&S::generator());
    let h = S::to_affine(&S::h());
    assert!(!S::is_identity(&h));
    assert_ne!(g, h);
    let actual = json!({ "g": ph::<S>(&g), "h": ph::<S>(&h) });
    pinned::<S>("generators.json", &actual);
    // Independent values (spec constants / py_ecc hash_to_G1), decoded through the suite.
    let x = independent::<S>("xcheck.json");
    assert_eq!(point::<S>(&x["g"]), g, "G");
    assert_eq!(point::<S>(&x["h"]), h, "H");
    assert_eq!(x["g"], actual["g"]);
    assert_eq!(x["h"], actual["h"]);
}

#[test]
fn secp256k1_h_is_the_spec_constant() {
    // Spec section 0: H = (x, y); y is odd, so the SEC1 encoding is 03 || x.
    let x = "bd48405ed3251dbb9f783c5a51cbf46016252921b268ebd47d0a0389f7b93cc1";
    let y = "8d8aca53b562a88df1b823928ff9ec96ea4daf03346e935544f104fe77898f45";
    assert_eq!(hex::encode(torus_engine::Secp256k1::H_X), x);
    assert_eq!(hex::encode(torus_engine::Secp256k1::H_Y), y);
    let y_last = u8::from_str_radix(&y[62..], 16).unwrap();
    let tag = if y_last & 1 == 1 { "03" } else { "02" };
    let h = S1::to_affine(&S1::h());
    assert_eq!(hex::encode(point_bytes::<S1>(&h)), format!("{tag}{x}"));
    // Uncompressed check through k256 itself: H's SEC1 uncompressed form is 04 || x || y.
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let hk = k256::AffinePoint::from(S1::h());
    assert_eq!(
        hex::encode(hk.to_encoded_point(false).as_bytes()),
        format!("04{x}{y}")
    );
}

// ------------------------------------------------------------------ (b) Lagrange

fn check_lagrange<S: Suite>() {
    let doc = independent::<S>("lagrange.json");
    // The file's modulus is this suite's order: q - 1 == -1 and q itself is rejected.
    let mut q = hex_bytes(&doc["order"]);
    assert!(S::decode_scalar(&q).is_err(), "order must not decode");
    let last = q.last_mut().unwrap();
    assert!(*last >= 1);
    *last -= 1;
    assert_eq!(S::decode_scalar(&q).unwrap(), -Scalar::<S>::ONE);
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        let idx: Vec<u32> = case["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| u32::try_from(i.as_u64().unwrap()).unwrap())
            .collect();
        let at = case["at"].as_u64().unwrap();
        let expected = scalars::<S>(&case["coefficients"]);
        let got = lagrange_coefficients::<Scalar<S>>(&idx, n::<S>(at)).unwrap();
        assert_eq!(got, expected, "{} lagrange {idx:?} at {at}", S::NAME);
        if at == 0 {
            assert_eq!(lagrange_at_zero::<Scalar<S>>(&idx).unwrap(), expected);
        }
    }
}

// ------------------------------------------------------------------ (c) + (d) dealing

fn check_dealing<S: Suite>() {
    let engine = Engine::reference();
    let params = Params::new(3, 2, 0).unwrap();
    let (f, fp) = dealing_inputs::<S>();
    let dealing = deal_with_coefficients::<S>(&engine, params, 1, f.clone(), fp.clone()).unwrap();
    let slices = dealing.slices(&engine).unwrap();
    let shares: Vec<Scalar<S>> = slices.iter().map(|s| s.row(0).0[0]).collect();
    let actual = json!({
        "n": u(3),
        "k": u(2),
        "dealer": u(1),
        "f": shs::<S>(&f),
        "fp": shs::<S>(&fp),
        "commitments": phs::<S>(dealing.commitments.points()),
        "slices": Value::Array(slices.iter().map(slice_json::<S>).collect()),
        "shares": shs::<S>(&shares),
        "secret": sh::<S>(&f[0]),
    });
    pinned::<S>("dealing.json", &actual);

    // Independent values: identical document, and the same values decoded typed.
    let x = independent::<S>("xcheck.json")["dealing"].clone();
    assert_eq!(x["f"], actual["f"], "inputs differ from gen_xcheck.py");
    assert_eq!(x["fp"], actual["fp"], "inputs differ from gen_xcheck.py");
    assert_eq!(
        points::<S>(&x["commitments"]),
        dealing.commitments.points(),
        "commitments C = f*G + f'*H"
    );
    for (xs, s) in x["slices"].as_array().unwrap().iter().zip(&slices) {
        assert_eq!(&slice_from_json::<S>(xs, 2), s, "slice {}", s.receiver);
    }
    assert_eq!(scalars::<S>(&x["shares"]), shares);
    assert_eq!(scalar::<S>(&x["secret"]), dealing.secrets()[0]);
    assert_eq!(x, actual, "whole dealing document");

    // The parallel engine agrees, and the slices verify against the commitments.
    let par = Engine::new();
    let d2 = deal_with_coefficients::<S>(&par, params, 1, f.clone(), fp).unwrap();
    assert_eq!(d2.commitments, dealing.commitments);
    assert_eq!(d2.slices(&par).unwrap(), slices);
    for s in &slices {
        let send = [SendRef {
            dealer: 1,
            commitments: &dealing.commitments,
            slice: s,
        }];
        avss::verify_sends(&engine, &params, s.receiver, &send).unwrap();
    }

    // (d) shares s_i = a_i[0]: any k=2 of them (and all 3) reconstruct f[0][0]; one does not.
    for set in [&[1u32, 2][..], &[1, 3], &[2, 3], &[3, 1], &[1, 2, 3]] {
        let pts: Vec<(u32, &[Scalar<S>])> = set
            .iter()
            .map(|&i| (i, std::slice::from_ref(&shares[(i - 1) as usize])))
            .collect();
        assert_eq!(dkg::reconstruct::<S>(&pts).unwrap(), vec![f[0]], "{set:?}");
    }
    for i in 1..=3u32 {
        let one = [(i, std::slice::from_ref(&shares[(i - 1) as usize]))];
        assert_ne!(dkg::reconstruct::<S>(&one).unwrap(), vec![f[0]]);
    }
}

// ------------------------------------------------------------------ (e) DKG + reshare

/// Seed of old node `node`'s reshare dealing: `[7; 32]` with the last byte = node.
fn reshare_seed(node: u32) -> [u8; 32] {
    let mut s = [7u8; 32];
    s[31] = u8::try_from(node).unwrap();
    s
}

fn check_dkg_and_reshare<S: Suite>() {
    let engine = Engine::reference();
    let old = Params::new(3, 2, 0).unwrap();
    let new = Params::new(4, 3, 1).unwrap();
    let keys = 2usize;
    let k = old.ku();

    // Tiny DKG by hand: three fixed-coefficient dealings, aggregated at every node.
    let inputs: Vec<Coeffs<S>> = (1..=old.n).map(|d| dkg_inputs::<S>(d, keys, k)).collect();
    let dealings: Vec<Dealing<S>> = inputs
        .iter()
        .zip(1..)
        .map(|((f, fp), d)| {
            deal_with_coefficients::<S>(&engine, old, d, f.clone(), fp.clone()).unwrap()
        })
        .collect();
    let slices: Vec<Vec<Slice<S>>> = dealings
        .iter()
        .map(|d| d.slices(&engine).unwrap())
        .collect();
    let all = [0usize, 1, 2];
    let old_shares: Vec<KeyShares<S>> = (1..=old.n)
        .map(|i| {
            let s = sends(&dealings, &slices, i, &all);
            avss::verify_sends(&engine, &old, i, &s).unwrap();
            dkg::aggregate(&engine, &old, i, &s).unwrap()
        })
        .collect();
    let d_old = old_shares[0].commitments.clone();
    for s in &old_shares {
        assert_eq!(s.commitments, d_old);
    }
    let secrets: Vec<Scalar<S>> = (0..keys)
        .map(|key| inputs.iter().map(|(f, _)| f[key * k * k]).sum())
        .collect();
    let public_keys: Vec<Affine<S>> = secrets
        .iter()
        .map(|s| S::to_affine(&(S::generator() * s)))
        .collect();

    let dkg_doc = json!({
        "n": u(3),
        "k": u(2),
        "keys": u(2),
        "dealers": Value::Array(inputs.iter().zip(1u64..).map(|((f, fp), d)| json!({
            "dealer": u(d), "f": shs::<S>(f), "fp": shs::<S>(fp),
        })).collect()),
        "shares": Value::Array(old_shares.iter().map(|s| json!({
            "node": u(u64::from(s.node)),
            "s": shs::<S>(s.shares()),
            "sp": shs::<S>(s.blinding_shares()),
        })).collect()),
        "commitments": phs::<S>(&d_old),
        "secrets": shs::<S>(&secrets),
        "public_keys": phs::<S>(&public_keys),
    });

    // Independent: the hand aggregation in Python (s_i = sum_d f_d(i, 0),
    // D[j] = sum_d C_d[j][0], public key = (sum_d f_d[0][0]) * G).
    let x = independent::<S>("xcheck.json")["dkg"].clone();
    for (xs, s) in x["shares"].as_array().unwrap().iter().zip(&old_shares) {
        assert_eq!(scalars::<S>(&xs["s"]), s.shares(), "node {}", s.node);
        assert_eq!(
            scalars::<S>(&xs["sp"]),
            s.blinding_shares(),
            "node {}",
            s.node
        );
    }
    assert_eq!(points::<S>(&x["commitments"]), d_old);
    assert_eq!(points::<S>(&x["public_keys"]), public_keys);
    assert_eq!(x, dkg_doc, "whole DKG document");

    // The engine's own public key path gives the same public keys.
    let public: Vec<PublicShares<S>> = old_shares
        .iter()
        .map(|s| dkg::public_shares(&engine, s, reshare_seed(100 + s.node)).unwrap())
        .collect();
    let refs: Vec<&PublicShares<S>> = public.iter().collect();
    dkg::verify_public_shares(&engine, &old, &d_old, &refs).unwrap();
    assert_eq!(
        dkg::user_public_keys(&engine, &old, &refs).unwrap(),
        public_keys
    );

    // Reshare (3, 2) -> (4, 3) with fixed seeds.
    let rdeal: Vec<Dealing<S>> = old_shares
        .iter()
        .map(|s| pss::reshare_deal(&engine, new, s, reshare_seed(s.node)).unwrap())
        .collect();
    let pairs: Vec<(u32, &avss::Commitments<S>)> =
        rdeal.iter().map(|d| (d.dealer, &d.commitments)).collect();
    pss::verify_reshare_secrets(&engine, &old, &d_old, &pairs).unwrap();
    let rslices: Vec<Vec<Slice<S>>> = rdeal.iter().map(|d| d.slices(&engine).unwrap()).collect();
    let as_dealers = Params {
        n: new.n.max(old.n),
        ..new
    };
    let combine = |decided: &[usize]| -> Vec<KeyShares<S>> {
        (1..=new.n)
            .map(|j| {
                let s = sends(&rdeal, &rslices, j, decided);
                avss::verify_sends(&engine, &as_dealers, j, &s).unwrap();
                pss::reshare_combine(&engine, &old, &new, j, &s).unwrap()
            })
            .collect()
    };
    let new_shares = combine(&all);
    let v = new_shares[0].commitments.clone();
    assert_eq!(v.len(), keys * new.ku());
    for s in &new_shares {
        assert_eq!(s.commitments, v);
    }

    let reshare_doc = json!({
        "old": { "n": u(3), "k": u(2), "t": u(0) },
        "new": { "n": u(4), "k": u(3), "t": u(1) },
        "seeds": Value::Array((1..=old.n).map(|i| json!(hex::encode(reshare_seed(i)))).collect()),
        "dkg": dkg_doc,
        "reshare_commitments": Value::Array(rdeal.iter().map(|d| json!({
            "dealer": u(u64::from(d.dealer)),
            "commitments": phs::<S>(d.commitments.points()),
        })).collect()),
        "new_shares": Value::Array(new_shares.iter().map(|s| json!({
            "node": u(u64::from(s.node)),
            "s": shs::<S>(s.shares()),
            "sp": shs::<S>(s.blinding_shares()),
        })).collect()),
        "new_commitments": phs::<S>(&v),
        "secrets": shs::<S>(&secrets),
    });
    pinned::<S>("reshare.json", &reshare_doc);

    // Semantics, independent of the pins.
    let kn = new.ku();
    for key in 0..keys {
        // V[0] = sum λ_i C_i[0][0] = s*G + s'*H = D_old[0].
        assert_eq!(v[key * kn], d_old[key * k], "key {key}: V[0] != D_old[0]");
    }
    for s in &new_shares {
        for key in 0..keys {
            let (a, b) = s.share(key).unwrap();
            let lhs = S::generator() * a + S::h() * b;
            assert_eq!(
                lhs,
                eval_commitments::<S>(&v[key * kn..(key + 1) * kn], s.node),
                "node {} key {key}: share not bound to V",
                s.node
            );
        }
    }
    // Every k'=3 subset of the 4 new nodes reconstructs the old secrets (from
    // xcheck.json); 2 new shares do not.
    let expect = scalars::<S>(&x["secrets"]);
    for skip in 0..new.n as usize {
        let pts: Vec<(u32, &[Scalar<S>])> = new_shares
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, s)| (s.node, s.shares()))
            .collect();
        assert_eq!(dkg::reconstruct::<S>(&pts).unwrap(), expect, "skip {skip}");
        assert_ne!(dkg::reconstruct::<S>(&pts[..2]).unwrap(), expect);
    }
    // Combining only k_old = 2 of the old dealers gives other shares of the same secrets.
    let partial = combine(&[0, 2]);
    assert_ne!(partial[0].shares(), new_shares[0].shares());
    let pts: Vec<(u32, &[Scalar<S>])> = partial.iter().map(|s| (s.node, s.shares())).collect();
    assert_eq!(dkg::reconstruct::<S>(&pts[1..]).unwrap(), expect);
    // Public keys survive the reshare.
    let public: Vec<PublicShares<S>> = new_shares
        .iter()
        .map(|s| dkg::public_shares(&engine, s, reshare_seed(200 + s.node)).unwrap())
        .collect();
    let refs: Vec<&PublicShares<S>> = public.iter().collect();
    dkg::verify_public_shares(&engine, &new, &v, &refs).unwrap();
    assert_eq!(
        dkg::user_public_keys(&engine, &new, &refs).unwrap(),
        points::<S>(&x["public_keys"])
    );
}

// ------------------------------------------------------------------ instantiation

type S1 = torus_engine::Secp256k1;
type S2 = torus_engine::Bls12381;

#[test]
fn secp256k1_generators() {
    check_generators::<S1>();
}
#[test]
fn bls12_381_generators() {
    check_generators::<S2>();
}
#[test]
fn secp256k1_lagrange() {
    check_lagrange::<S1>();
}
#[test]
fn bls12_381_lagrange() {
    check_lagrange::<S2>();
}
#[test]
fn secp256k1_dealing_and_reconstruction() {
    check_dealing::<S1>();
}
#[test]
fn bls12_381_dealing_and_reconstruction() {
    check_dealing::<S2>();
}
#[test]
fn secp256k1_dkg_and_reshare() {
    check_dkg_and_reshare::<S1>();
}
#[test]
fn bls12_381_dkg_and_reshare() {
    check_dkg_and_reshare::<S2>();
}
