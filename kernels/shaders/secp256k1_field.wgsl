// The secp256k1 base field GF(p), p = 2^256 - 2^32 - 977.
//
// Representation: 8 little-endian 32-bit limbs, always fully reduced (< p), in
// plain (not Montgomery) form: the special shape of p makes reduction a fold of
// the high half times 2^32 + 977. Equality and zero tests are limb comparisons.

alias Fp = array<u32, 8>;

const P_LIMBS = array<u32, 8>(
    0xfffffc2fu, 0xfffffffeu, 0xffffffffu, 0xffffffffu,
    0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu
);

// 2^256 - p = 2^32 + 977.
const C_LO: u32 = 977u;

fn fp_zero() -> Fp {
    return Fp(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
}

fn fp_one() -> Fp {
    return Fp(1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
}

fn fp_is_zero(a: Fp) -> bool {
    var acc = 0u;
    for (var i = 0u; i < nl(); i++) {
        acc = acc | a[i];
    }
    return acc == 0u;
}

fn fp_eq(a: Fp, b: Fp) -> bool {
    var acc = 0u;
    for (var i = 0u; i < nl(); i++) {
        acc = acc | (a[i] ^ b[i]);
    }
    return acc == 0u;
}

// a >= p for a < 2^256.
fn fp_geq_p(a: Fp) -> bool {
    // p's limbs 2..7 are all ones, so a >= p iff those are all ones and
    // (a[1], a[0]) >= (p[1], p[0]).
    var hi_ones = 0xffffffffu;
    for (var i = 2u; i < nl(); i++) {
        hi_ones = hi_ones & a[i];
    }
    if (hi_ones != 0xffffffffu) {
        return false;
    }
    if (a[1] != 0xfffffffeu) {
        return a[1] > 0xfffffffeu;
    }
    return a[0] >= 0xfffffc2fu;
}

// a + (2^32 + 977) * k for a small k (< 2^32) with the carry out of 2^256 returned.
fn fp_add_c(a: ptr<function, Fp>, k: u32) -> u32 {
    let t = mul_wide(k, C_LO);
    var s = adc((*a)[0], t.x, 0u);
    (*a)[0] = s.x;
    // limb 1 gets t.y (< 2^10) + k (k * 2^32) + carry
    s = adc((*a)[1], t.y, s.y);
    (*a)[1] = s.x;
    var c = s.y;
    s = adc((*a)[1], k, 0u);
    (*a)[1] = s.x;
    c = c + s.y;
    for (var i = 2u; i < nl(); i++) {
        s = adc((*a)[i], 0u, c);
        (*a)[i] = s.x;
        c = s.y;
    }
    return c;
}

// Subtracts p once if a >= p (a < 2^256).
fn fp_reduce_once(a: Fp) -> Fp {
    var r = a;
    if (fp_geq_p(r)) {
        // r - p = r + (2^32 + 977) - 2^256: add and drop the carry.
        _ = fp_add_c(&r, 1u);
    }
    return r;
}

fn fp_add(a: Fp, b: Fp) -> Fp {
    var r: Fp;
    var c = 0u;
    for (var i = 0u; i < nl(); i++) {
        let s = adc(a[i], b[i], c);
        r[i] = s.x;
        c = s.y;
    }
    if (c != 0u) {
        // a + b - 2^256 + (2^256 - p): a + b < 2p, so this is < p and cannot carry.
        _ = fp_add_c(&r, 1u);
        return r;
    }
    return fp_reduce_once(r);
}

fn fp_sub(a: Fp, b: Fp) -> Fp {
    var r: Fp;
    var bo = 0u;
    for (var i = 0u; i < nl(); i++) {
        let d = sbb(a[i], b[i], bo);
        r[i] = d.x;
        bo = d.y;
    }
    if (bo != 0u) {
        // r = a - b + 2^256; add p = 2^256 - c by subtracting c (borrow absorbs 2^256).
        var b2 = 0u;
        var d = sbb(r[0], C_LO, 0u);
        r[0] = d.x;
        b2 = d.y;
        d = sbb(r[1], 1u, b2);
        r[1] = d.x;
        b2 = d.y;
        for (var i = 2u; i < nl(); i++) {
            d = sbb(r[i], 0u, b2);
            r[i] = d.x;
            b2 = d.y;
        }
    }
    return r;
}

fn fp_neg(a: Fp) -> Fp {
    return fp_sub(fp_zero(), a);
}

fn fp_double(a: Fp) -> Fp {
    return fp_add(a, a);
}

fn fp_mul(a: Fp, b: Fp) -> Fp {
    // 512-bit schoolbook product.
    var t: array<u32, 16>;
    for (var i = 0u; i < 2u * nl(); i++) {
        t[i] = 0u;
    }
    for (var i = 0u; i < nl(); i++) {
        var c = 0u;
        let ai = a[i];
        for (var j = 0u; j < nl(); j++) {
            let m = mac(ai, b[j], t[i + j], c);
            t[i + j] = m.x;
            c = m.y;
        }
        t[i + 8u] = c;
    }
    // Fold: lo + hi * (2^32 + 977), hi = t[8..16].
    var r: Fp;
    var c = 0u;
    for (var i = 0u; i < nl(); i++) {
        let m = mac(t[i + 8u], C_LO, t[i], c);
        r[i] = m.x;
        c = m.y;
    }
    // r + c * 2^256 so far; now add hi * 2^32 (hi shifted up one limb).
    var c2 = 0u;
    for (var i = 1u; i < nl(); i++) {
        let s = adc(r[i], t[i + 7u], c2);
        r[i] = s.x;
        c2 = s.y;
    }
    // Overflow above 2^256: c + t[15] + c2 (< 2^33 in total, kept as two words).
    let o1 = adc(c, t[15], c2);
    // Fold the overflow (o1.x + o1.y * 2^32) * (2^32 + 977).
    var k = fp_add_c(&r, o1.x);
    if (o1.y != 0u) {
        // 2^32 * (2^32 + 977) = 2^64 + 977 * 2^32: add at limbs 1 and 2.
        var s = adc(r[1], C_LO, 0u);
        r[1] = s.x;
        s = adc(r[2], 1u, s.y);
        r[2] = s.x;
        var cc = s.y;
        for (var i = 3u; i < nl(); i++) {
            s = adc(r[i], 0u, cc);
            r[i] = s.x;
            cc = s.y;
        }
        k = k + cc;
    }
    // Any remaining carry is tiny; one more fold cannot carry again.
    if (k != 0u) {
        _ = fp_add_c(&r, k);
    }
    return fp_reduce_once(r);
}

fn fp_sqr(a: Fp) -> Fp {
    return fp_mul(a, a);
}

// a * small (small < 2^16) by repeated addition-free schoolbook: one row.
fn fp_mul_small(a: Fp, k: u32) -> Fp {
    var r: Fp;
    var c = 0u;
    for (var i = 0u; i < nl(); i++) {
        let m = mac(a[i], k, 0u, c);
        r[i] = m.x;
        c = m.y;
    }
    let k2 = fp_add_c(&r, c);
    if (k2 != 0u) {
        _ = fp_add_c(&r, k2);
    }
    return fp_reduce_once(r);
}
