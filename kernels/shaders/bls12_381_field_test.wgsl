// Test kernel: BLS12-381 base field operations on pairs of canonical elements
// (converted into and out of Montgomery form on the GPU).
// out[4 i + 0..4] = a + b, a - b, a * b, a^2 (12 limbs each).

@group(0) @binding(0) var<storage, read> in_a: array<u32>;
@group(0) @binding(1) var<storage, read> in_b: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
// (8, 12, 0, 0): limb counts read at run time on software adapters; z = 0.
@group(0) @binding(3) var<uniform> tparams: vec4<u32>;

@compute @workgroup_size(64)
fn field_ops(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (tparams.z != 0u) {
        return;
    }
    if (i * 12u >= arrayLength(&in_a)) {
        return;
    }
    var a: Fq;
    var b: Fq;
    for (var k = 0u; k < 12u; k++) {
        a[k] = in_a[i * 12u + k];
        b[k] = in_b[i * 12u + k];
    }
    let am = fq_to_mont(a);
    let bm = fq_to_mont(b);
    let r0 = fq_from_mont(fq_add(am, bm));
    let r1 = fq_from_mont(fq_sub(am, bm));
    let r2 = fq_from_mont(fq_mont_mul(am, bm));
    let r3 = fq_from_mont(fq_mont_mul(am, am));
    for (var k = 0u; k < 12u; k++) {
        out[i * 48u + k] = r0[k];
        out[i * 48u + 12u + k] = r1[k];
        out[i * 48u + 24u + k] = r2[k];
        out[i * 48u + 36u + k] = r3[k];
    }
}
