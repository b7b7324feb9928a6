// 32-bit limb helpers shared by every field. WGSL has no 64-bit integers and no
// wide multiply, so a 32x32 -> 64-bit product is built from four 16x16 products.
//
// A "wide" value is vec2<u32>(lo, hi) = lo + hi * 2^32.

// a * b as (lo, hi).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    // mid <= (2^16-1)^2 + 2 (2^16-1) = 2^32 - 1: no overflow.
    let mid = p01 + (p00 >> 16u) + (p10 & 0xffffu);
    let lo = (mid << 16u) | (p00 & 0xffffu);
    let hi = p11 + (mid >> 16u) + (p10 >> 16u);
    return vec2<u32>(lo, hi);
}

// a * b + c + d as (lo, hi); never overflows 64 bits.
fn mac(a: u32, b: u32, c: u32, d: u32) -> vec2<u32> {
    let p = mul_wide(a, b);
    let s1 = p.x + c;
    var hi = p.y + select(0u, 1u, s1 < c);
    let s2 = s1 + d;
    hi = hi + select(0u, 1u, s2 < d);
    return vec2<u32>(s2, hi);
}

// a + b + carry_in (carry_in in {0, 1}) as (sum, carry_out).
fn adc(a: u32, b: u32, cin: u32) -> vec2<u32> {
    let s1 = a + b;
    let c1 = select(0u, 1u, s1 < a);
    let s2 = s1 + cin;
    let c2 = select(0u, 1u, s2 < s1);
    return vec2<u32>(s2, c1 + c2);
}

// a - b - borrow_in (borrow_in in {0, 1}) as (difference, borrow_out).
fn sbb(a: u32, b: u32, bin: u32) -> vec2<u32> {
    let d1 = a - b;
    let b1 = select(0u, 1u, a < b);
    let d2 = d1 - bin;
    let b2 = select(0u, 1u, d1 < bin);
    return vec2<u32>(d2, b1 + b2);
}
