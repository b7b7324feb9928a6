// secp256k1 points (y^2 = x^3 + 7) in Jacobian coordinates (X / Z^2, Y / Z^3).
// The identity is any point with Z = 0. Every formula handles the exceptional
// cases exactly (P + P, P + (-P), the identity), so results do not depend on the
// order in which points are added.

struct Jac {
    x: Fp,
    y: Fp,
    z: Fp,
}

fn jac_identity() -> Jac {
    return Jac(fp_zero(), fp_one(), fp_zero());
}

fn jac_is_identity(p: Jac) -> bool {
    return fp_is_zero(p.z);
}

// dbl-2009-l (a = 0): 2M + 5S. The identity doubles to the identity (Z3 = 2 Y Z).
fn jac_double(p: Jac) -> Jac {
    let a = fp_sqr(p.x);
    let b = fp_sqr(p.y);
    let c = fp_sqr(b);
    let t = fp_sqr(fp_add(p.x, b));
    let d = fp_double(fp_sub(fp_sub(t, a), c));
    let e = fp_mul_small(a, 3u);
    let f = fp_sqr(e);
    let x3 = fp_sub(f, fp_double(d));
    let y3 = fp_sub(fp_mul(e, fp_sub(d, x3)), fp_mul_small(c, 8u));
    let z3 = fp_double(fp_mul(p.y, p.z));
    return Jac(x3, y3, z3);
}

// p + (qx, qy) with the second point affine (not the identity): 8M + 3S.
fn jac_add_affine(p: Jac, qx: Fp, qy: Fp) -> Jac {
    if (jac_is_identity(p)) {
        return Jac(qx, qy, fp_one());
    }
    let z1z1 = fp_sqr(p.z);
    let u2 = fp_mul(qx, z1z1);
    let s2 = fp_mul(qy, fp_mul(p.z, z1z1));
    let h = fp_sub(u2, p.x);
    let r = fp_sub(s2, p.y);
    if (fp_is_zero(h)) {
        if (fp_is_zero(r)) {
            return jac_double(p);
        }
        return jac_identity();
    }
    let h2 = fp_sqr(h);
    let h3 = fp_mul(h, h2);
    let v = fp_mul(p.x, h2);
    let x3 = fp_sub(fp_sub(fp_sqr(r), h3), fp_double(v));
    let y3 = fp_sub(fp_mul(r, fp_sub(v, x3)), fp_mul(p.y, h3));
    let z3 = fp_mul(p.z, h);
    return Jac(x3, y3, z3);
}

// p + q, both Jacobian (add-1998-cmo-2): 12M + 4S.
fn jac_add(p: Jac, q: Jac) -> Jac {
    if (jac_is_identity(q)) {
        return p;
    }
    if (jac_is_identity(p)) {
        return q;
    }
    let z1z1 = fp_sqr(p.z);
    let z2z2 = fp_sqr(q.z);
    let u1 = fp_mul(p.x, z2z2);
    let u2 = fp_mul(q.x, z1z1);
    let s1 = fp_mul(p.y, fp_mul(q.z, z2z2));
    let s2 = fp_mul(q.y, fp_mul(p.z, z1z1));
    let h = fp_sub(u2, u1);
    let r = fp_sub(s2, s1);
    if (fp_is_zero(h)) {
        if (fp_is_zero(r)) {
            return jac_double(p);
        }
        return jac_identity();
    }
    let h2 = fp_sqr(h);
    let h3 = fp_mul(h, h2);
    let v = fp_mul(u1, h2);
    let x3 = fp_sub(fp_sub(fp_sqr(r), h3), fp_double(v));
    let y3 = fp_sub(fp_mul(r, fp_sub(v, x3)), fp_mul(s1, h3));
    let z3 = fp_mul(fp_mul(p.z, q.z), h);
    return Jac(x3, y3, z3);
}
