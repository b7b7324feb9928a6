// The BLS12-381 base field GF(q), q a 381-bit prime.
//
// Representation: 12 little-endian 32-bit limbs, fully reduced (< q), in
// Montgomery form a R mod q with R = 2^384. Multiplication is CIOS Montgomery
// (coarsely integrated operand scanning) on 32-bit words built from mul_wide.

alias Fq = array<u32, 12>;

const Q_LIMBS = array<u32, 12>(
    0xffffaaabu, 0xb9feffffu, 0xb153ffffu, 0x1eabfffeu, 0xf6b0f624u, 0x6730d2a0u,
    0xf38512bfu, 0x64774b84u, 0x434bacd7u, 0x4b1ba7b6u, 0x397fe69au, 0x1a0111eau
);
// -q^-1 mod 2^32.
const Q_INV: u32 = 0xfffcfffdu;
// R^2 mod q, to enter Montgomery form.
const R2_LIMBS = array<u32, 12>(
    0x1c341746u, 0xf4df1f34u, 0x09d104f1u, 0x0a76e6a6u, 0x4c95b6d5u, 0x8de5476cu,
    0x939d83c0u, 0x67eb88a9u, 0xb519952du, 0x9a793e85u, 0x92cae3aau, 0x11988fe5u
);

fn fq_geq_q(a: Fq) -> bool {
    var q = Q_LIMBS;
    for (var i = nlq(); i > 0u; i--) {
        if (a[i - 1u] != q[i - 1u]) {
            return a[i - 1u] > q[i - 1u];
        }
    }
    return true;
}

fn fq_sub_q(a: Fq) -> Fq {
    var q = Q_LIMBS;
    var r: Fq;
    var bo = 0u;
    for (var i = 0u; i < nlq(); i++) {
        let d = sbb(a[i], q[i], bo);
        r[i] = d.x;
        bo = d.y;
    }
    return r;
}

fn fq_add(a: Fq, b: Fq) -> Fq {
    // a + b < 2q < 2^382: no carry out of 384 bits.
    var r: Fq;
    var c = 0u;
    for (var i = 0u; i < nlq(); i++) {
        let s = adc(a[i], b[i], c);
        r[i] = s.x;
        c = s.y;
    }
    if (fq_geq_q(r)) {
        return fq_sub_q(r);
    }
    return r;
}

fn fq_sub(a: Fq, b: Fq) -> Fq {
    var r: Fq;
    var bo = 0u;
    for (var i = 0u; i < nlq(); i++) {
        let d = sbb(a[i], b[i], bo);
        r[i] = d.x;
        bo = d.y;
    }
    if (bo != 0u) {
        var q = Q_LIMBS;
        var c = 0u;
        for (var i = 0u; i < nlq(); i++) {
            let s = adc(r[i], q[i], c);
            r[i] = s.x;
            c = s.y;
        }
    }
    return r;
}

// Montgomery product a b R^-1 mod q.
fn fq_mont_mul(a: Fq, b: Fq) -> Fq {
    var q = Q_LIMBS;
    var t: array<u32, 14>;
    for (var i = 0u; i < nlq() + 2u; i++) {
        t[i] = 0u;
    }
    for (var i = 0u; i < nlq(); i++) {
        var c = 0u;
        let bi = b[i];
        for (var j = 0u; j < nlq(); j++) {
            let m = mac(a[j], bi, t[j], c);
            t[j] = m.x;
            c = m.y;
        }
        let s = adc(t[12], c, 0u);
        t[12] = s.x;
        t[13] = s.y;
        let m = t[0] * Q_INV;
        var c2 = mac(m, q[0], t[0], 0u).y;
        for (var j = 1u; j < nlq(); j++) {
            let r = mac(m, q[j], t[j], c2);
            t[j - 1u] = r.x;
            c2 = r.y;
        }
        let s2 = adc(t[12], c2, 0u);
        t[11] = s2.x;
        t[12] = t[13] + s2.y;
    }
    var r: Fq;
    for (var i = 0u; i < nlq(); i++) {
        r[i] = t[i];
    }
    if (t[12] != 0u || fq_geq_q(r)) {
        return fq_sub_q(r);
    }
    return r;
}

fn fq_to_mont(a: Fq) -> Fq {
    return fq_mont_mul(a, R2_LIMBS);
}

fn fq_from_mont(a: Fq) -> Fq {
    var one: Fq;
    for (var i = 0u; i < nlq(); i++) {
        one[i] = 0u;
    }
    one[0] = 1u;
    return fq_mont_mul(a, one);
}
