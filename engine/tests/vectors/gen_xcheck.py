#!/usr/bin/env python3
"""Independent cross-check values for the fixed-coefficient dealing and DKG vectors.

Writes ``xcheck.json`` next to this script. Nothing here comes from the Rust
engine: secp256k1 uses the textbook affine point arithmetic below (SEC1
compressed encoding); BLS12-381 G1 uses py_ecc (``pip install py_ecc``), whose
``hash_to_G1`` (RFC 9380, BLS12381G1_XMD:SHA-256_SSWU_RO_) also re-derives the
engine's H from its documented definition, and ``compress_G1`` gives the zcash
48-byte encoding.

The inputs (coefficient matrices) are defined here AND in
``known_answer_vectors.rs`` (``dealing_inputs`` / ``dkg_inputs``); the Rust test
asserts that both agree, then compares the engine's outputs with these values.
The Rust test never rewrites this file.

Run: python3 engine/tests/vectors/gen_xcheck.py
"""
import hashlib
import json
import os

# ---------------------------------------------------------------- secp256k1
P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
Q_SECP = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
G_SECP = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
# H from the protocol spec, section 0.
H_SECP = (
    0xBD48405ED3251DBB9F783C5A51CBF46016252921B268EBD47D0A0389F7B93CC1,
    0x8D8ACA53B562A88DF1B823928FF9EC96EA4DAF03346E935544F104FE77898F45,
)
assert (H_SECP[1] ** 2 - H_SECP[0] ** 3 - 7) % P == 0, "spec H is not on the curve"
assert (G_SECP[1] ** 2 - G_SECP[0] ** 3 - 7) % P == 0


def secp_add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0]:
        if (a[1] + b[1]) % P == 0:
            return None
        lam = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (lam * lam - a[0] - b[0]) % P
    return (x, (lam * (a[0] - x) - a[1]) % P)


def secp_mul(k, pt):
    acc = None
    k %= Q_SECP
    while k:
        if k & 1:
            acc = secp_add(acc, pt)
        pt = secp_add(pt, pt)
        k >>= 1
    return acc


def secp_enc(pt):
    assert pt is not None
    return (bytes([2 + (pt[1] & 1)]) + pt[0].to_bytes(32, "big")).hex()


# ---------------------------------------------------------------- BLS12-381
from py_ecc.bls.hash_to_curve import hash_to_G1  # noqa: E402
from py_ecc.bls.point_compression import compress_G1  # noqa: E402
from py_ecc import optimized_bls12_381 as bls  # noqa: E402

Q_BLS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
BLS_DST = b"TORUS-ENGINE-V1-H-GENERATOR_BLS12381G1_XMD:SHA-256_SSWU_RO_"


def bls_enc(pt):
    return compress_G1(pt).to_bytes(48, "big").hex()


G_BLS = bls.G1
H_BLS = hash_to_G1(bytes.fromhex(bls_enc(G_BLS)), BLS_DST, hashlib.sha256)

CURVES = {
    "secp256k1": dict(
        q=Q_SECP, g=G_SECP, h=H_SECP, add=secp_add, mul=secp_mul, enc=secp_enc, zero=None
    ),
    "bls12-381": dict(
        q=Q_BLS,
        g=G_BLS,
        h=H_BLS,
        add=bls.add,
        mul=lambda k, pt: bls.multiply(pt, k % Q_BLS),
        enc=bls_enc,
        zero=bls.Z1,
    ),
}

# ---------------------------------------------------------------- inputs
BIG1 = 0x1234567890ABCDEF0FEDCBA9876543211234567890ABCDEF0FEDCBA987654321
BIG2 = 2**252 + 27742317777372353535851937790883648493


def dealing_inputs(q):
    """n=3, k=2, dealer 1, one key; f[j*k + l] is the coefficient of x^j y^l."""
    return [7, BIG1, q - 1, 0], [11, 5, BIG2, 2]


def dkg_inputs(q, dealer, keys, k):
    """Dealer d's matrices for the tiny DKG (key-major, f[key*k*k + j*k + l])."""
    f, fp = [], []
    for key in range(keys):
        for e in range(k * k):
            base = dealer * 1000 + key * 100 + e + 1
            f.append(BIG1 * dealer % q if e == k * k - 1 else base)
            fp.append((q - base) % q)
    return f, fp


# ---------------------------------------------------------------- reference math
def commit(c, f, fp):
    return [c["enc"](c["add"](c["mul"](a, c["g"]), c["mul"](b, c["h"]))) for a, b in zip(f, fp)]


def commit_pts(c, f, fp):
    return [c["add"](c["mul"](a, c["g"]), c["mul"](b, c["h"])) for a, b in zip(f, fp)]


def slice_for(q, f, fp, k, keys, i):
    """a[l] = sum_j f[j][l] i^j (row f(i, y)); b[j] = sum_l f[j][l] i^l (column f(x, i))."""
    out = {"receiver": i, "a": [], "ap": [], "b": [], "bp": []}
    for key in range(keys):
        m = f[key * k * k:(key + 1) * k * k]
        mp = fp[key * k * k:(key + 1) * k * k]
        for l in range(k):
            out["a"].append(sum(m[j * k + l] * i**j for j in range(k)) % q)
            out["ap"].append(sum(mp[j * k + l] * i**j for j in range(k)) % q)
        for j in range(k):
            out["b"].append(sum(m[j * k + l] * i**l for l in range(k)) % q)
            out["bp"].append(sum(mp[j * k + l] * i**l for l in range(k)) % q)
    return out


def hex32(v):
    return (v % (2**256)).to_bytes(32, "big").hex()


def hexs(vs):
    return [hex32(v) for v in vs]


def curve_doc(name, c):
    q = c["q"]
    doc = {"g": c["enc"](c["g"]), "h": c["enc"](c["h"])}

    # (c) + (d): the fixed-coefficient dealing.
    n, k, keys = 3, 2, 1
    f, fp = dealing_inputs(q)
    slices = [slice_for(q, f, fp, k, keys, i) for i in range(1, n + 1)]
    for s in slices:  # share of receiver i = f(i, 0) = a_i[0]; check it reconstructs.
        assert s["a"][0] == sum(f[j * k] * s["receiver"] ** j for j in range(k)) % q
    doc["dealing"] = {
        "n": n,
        "k": k,
        "dealer": 1,
        "f": hexs(f),
        "fp": hexs(fp),
        "commitments": commit(c, f, fp),
        "slices": [{key: (v if key == "receiver" else hexs(v)) for key, v in s.items()} for s in slices],
        "shares": [hex32(s["a"][0]) for s in slices],
        "secret": hex32(f[0]),
    }

    # (e) first half: the tiny DKG aggregated by hand.
    n, k, keys = 3, 2, 2
    dealers = [dkg_inputs(q, d, keys, k) for d in range(1, n + 1)]
    shares = []
    for i in range(1, n + 1):
        s = [0] * keys
        sp = [0] * keys
        for f, fp in dealers:
            sl = slice_for(q, f, fp, k, keys, i)
            for key in range(keys):
                s[key] = (s[key] + sl["a"][key * k]) % q
                sp[key] = (sp[key] + sl["ap"][key * k]) % q
        shares.append({"node": i, "s": hexs(s), "sp": hexs(sp)})
    dvec = []
    for key in range(keys):
        for j in range(k):
            acc = c["zero"]
            for f, fp in dealers:
                e = key * k * k + j * k
                acc = c["add"](acc, commit_pts(c, [f[e]], [fp[e]])[0])
            dvec.append(c["enc"](acc))
    master = [sum(f[key * k * k] for f, _ in dealers) % q for key in range(keys)]
    doc["dkg"] = {
        "n": n,
        "k": k,
        "keys": keys,
        "dealers": [{"dealer": d + 1, "f": hexs(f), "fp": hexs(fp)} for d, (f, fp) in enumerate(dealers)],
        "shares": shares,
        "commitments": dvec,
        "secrets": hexs(master),
        "public_keys": [c["enc"](c["mul"](s, c["g"])) for s in master],
    }
    return doc


def main():
    doc = {
        "description": "Independent (non-Rust) expected values; generated by gen_xcheck.py. "
        "Scalars: 32-byte big-endian hex. Points: compressed hex "
        "(secp256k1 SEC1 33 bytes, BLS12-381 zcash 48 bytes).",
    }
    for name, c in CURVES.items():
        doc[name] = curve_doc(name, c)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "xcheck.json")
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()
