// Test kernel: secp256k1 field operations on pairs of canonical elements.
// out[4 i + 0..4] = a + b, a - b, a * b, 3 a (8 limbs each).

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
    if (i * 8u >= arrayLength(&in_a)) {
        return;
    }
    var a: Fp;
    var b: Fp;
    for (var k = 0u; k < 8u; k++) {
        a[k] = in_a[i * 8u + k];
        b[k] = in_b[i * 8u + k];
    }
    let r0 = fp_add(a, b);
    let r1 = fp_sub(a, b);
    let r2 = fp_mul(a, b);
    let r3 = fp_mul_small(a, 3u);
    for (var k = 0u; k < 8u; k++) {
        out[i * 32u + k] = r0[k];
        out[i * 32u + 8u + k] = r1[k];
        out[i * 32u + 16u + k] = r2[k];
        out[i * 32u + 24u + k] = r3[k];
    }
}
