// Pippenger MSM over secp256k1 for PUBLIC data (points and verification weights).
//
// Passes, in order (the host records them in one command buffer per chunk):
//   count_digits    one thread per point: signed c-bit digits of its scalar, one
//                   bucket count increment per non-zero digit (atomics).
//   scan_local      one thread per block of SCAN_BLOCK buckets: local exclusive
//                   prefix sums of the counts, block totals.
//   scan_blocks     one workgroup: exclusive prefix sums of the block totals.
//   scan_add        one thread per bucket: global offsets, scatter cursors.
//   scatter         one thread per point: its index (sign in bit 31) into the
//                   list of every bucket it falls in (a counting sort).
//   accumulate      one thread per bucket: sum of its points (Jacobian += affine).
//   reduce_segments one thread per segment of seg_len buckets of a window: the
//                   segment's weighted sum and plain sum by running sums.
//   reduce_windows  one thread per window: sum_b (b + 1) B_b from the segments.
// The host combines the window sums (Horner, c doublings per window).
//
// Signed digits: window w of scalar k has bits v = k[w c .. w c + c) and carry-in
// t = bit w c - 1; its digit is v + t - 2^c [v >= 2^(c-1)], in [-2^(c-1), 2^(c-1)],
// so a window needs 2^(c-1) buckets and a negative digit adds -P.
//
// Layout (all u32):
//   points   16 words per point: x then y, 8 little-endian limbs each (< p).
//   scalars  8 little-endian limbs per scalar.
//   idx      counts[tb] | offsets[tb] | cursors[tb] | block sums[nblk].
//   sorted   point references (index | sign << 31), grouped by bucket.
//   acc      Jacobian points, 24 words each: buckets[tb] | segments[2 nw nseg] | windows[nw].

const WG: u32 = 64u;
const SCAN_BLOCK: u32 = 64u;
const SCAN_WG: u32 = 256u;
const NEG: u32 = 0x80000000u;
const NONE: u32 = 0xffffffffu;

struct Params {
    n: u32,        // points in this chunk
    c: u32,        // window bits
    nw: u32,       // windows
    nb: u32,       // buckets per window, 2^(c-1)
    tb: u32,       // nw * nb
    nblk: u32,     // ceil(tb / SCAN_BLOCK)
    seg_len: u32,  // buckets per reduction segment (a power of two)
    nseg: u32,     // nb / seg_len
    seg_off: u32,  // first segment slot in acc (in points)
    win_off: u32,  // first window slot in acc (in points)
    limbs: u32,    // 8: limb loop bound read at run time on software adapters
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> points: array<u32>;
@group(0) @binding(2) var<storage, read> scalars: array<u32>;
@group(0) @binding(3) var<storage, read_write> sorted: array<u32>;
@group(0) @binding(4) var<storage, read_write> idx: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> acc: array<u32>;

var<workgroup> scan_tmp: array<u32, 256>;

// Flat invocation index of a (possibly 2D) dispatch of WG-wide workgroups.
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// c bits of scalar i starting at bit off (bits past 256 read as zero).
fn scalar_bits(i: u32, off: u32, c: u32) -> u32 {
    let limb = off / 32u;
    let sh = off % 32u;
    if (limb >= 8u) {
        return 0u;
    }
    var v = scalars[i * 8u + limb] >> sh;
    if (sh + c > 32u && limb + 1u < 8u) {
        v = v | (scalars[i * 8u + limb + 1u] << (32u - sh));
    }
    return v & ((1u << c) - 1u);
}

// Bucket (global index) of window w of scalar i, with the sign in bit 31, or NONE.
fn digit(i: u32, w: u32) -> u32 {
    let c = params.c;
    let off = w * c;
    let v = scalar_bits(i, off, c);
    var cin = 0u;
    if (off > 0u) {
        cin = scalar_bits(i, off - 1u, 1u);
    }
    let neg = v >> (c - 1u);
    let sd = i32(v + cin) - i32(neg << c);
    let m = u32(abs(sd));
    if (m == 0u) {
        return NONE;
    }
    return (w * params.nb + m - 1u) | (neg << 31u);
}

fn load_jac(slot: u32) -> Jac {
    var p: Jac;
    let b = slot * 24u;
    for (var k = 0u; k < nl(); k++) {
        p.x[k] = acc[b + k];
        p.y[k] = acc[b + 8u + k];
        p.z[k] = acc[b + 16u + k];
    }
    return p;
}

fn store_jac(slot: u32, p: Jac) {
    let b = slot * 24u;
    for (var k = 0u; k < nl(); k++) {
        acc[b + k] = p.x[k];
        acc[b + 8u + k] = p.y[k];
        acc[b + 16u + k] = p.z[k];
    }
}

@compute @workgroup_size(64)
fn count_digits(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.n) {
        return;
    }
    for (var w = 0u; w < params.nw; w++) {
        let d = digit(i, w);
        if (d != NONE) {
            atomicAdd(&idx[d & ~NEG], 1u);
        }
    }
}

@compute @workgroup_size(64)
fn scan_local(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let blk = flat_index(gid, nwg);
    if (blk >= params.nblk) {
        return;
    }
    let tb = params.tb;
    var sum = 0u;
    for (var j = 0u; j < SCAN_BLOCK; j++) {
        let k = blk * SCAN_BLOCK + j;
        if (k < tb) {
            let c = atomicLoad(&idx[k]);
            atomicStore(&idx[tb + k], sum);
            sum = sum + c;
        }
    }
    atomicStore(&idx[3u * tb + blk], sum);
}

@compute @workgroup_size(256)
fn scan_blocks(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let nblk = params.nblk;
    let base = 3u * params.tb;
    let per = (nblk + SCAN_WG - 1u) / SCAN_WG;
    let lo = min(t * per, nblk);
    let hi = min(lo + per, nblk);
    var own = 0u;
    for (var j = lo; j < hi; j++) {
        own = own + atomicLoad(&idx[base + j]);
    }
    scan_tmp[t] = own;
    workgroupBarrier();
    // Hillis-Steele inclusive scan over the 256 chunk totals.
    for (var d = 1u; d < SCAN_WG; d = d * 2u) {
        var v = 0u;
        if (t >= d) {
            v = scan_tmp[t - d];
        }
        workgroupBarrier();
        scan_tmp[t] = scan_tmp[t] + v;
        workgroupBarrier();
    }
    var run = scan_tmp[t] - own;
    for (var j = lo; j < hi; j++) {
        let v = atomicLoad(&idx[base + j]);
        atomicStore(&idx[base + j], run);
        run = run + v;
    }
}

@compute @workgroup_size(64)
fn scan_add(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_index(gid, nwg);
    let tb = params.tb;
    if (k >= tb) {
        return;
    }
    let o = atomicLoad(&idx[tb + k]) + atomicLoad(&idx[3u * tb + k / SCAN_BLOCK]);
    atomicStore(&idx[tb + k], o);
    atomicStore(&idx[2u * tb + k], o);
}

@compute @workgroup_size(64)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_index(gid, nwg);
    if (i >= params.n) {
        return;
    }
    for (var w = 0u; w < params.nw; w++) {
        let d = digit(i, w);
        if (d != NONE) {
            let pos = atomicAdd(&idx[2u * params.tb + (d & ~NEG)], 1u);
            sorted[pos] = i | (d & NEG);
        }
    }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = flat_index(gid, nwg);
    let tb = params.tb;
    if (b >= tb) {
        return;
    }
    let start = atomicLoad(&idx[tb + b]);
    let cnt = atomicLoad(&idx[b]);
    var a = jac_identity();
    for (var j = 0u; j < cnt; j++) {
        let e = sorted[start + j];
        let i = e & ~NEG;
        var x: Fp;
        var y: Fp;
        for (var k = 0u; k < nl(); k++) {
            x[k] = points[i * 16u + k];
            y[k] = points[i * 16u + 8u + k];
        }
        if ((e & NEG) != 0u) {
            y = fp_neg(y);
        }
        a = jac_add_affine(a, x, y);
    }
    store_jac(b, a);
}

@compute @workgroup_size(64)
fn reduce_segments(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= params.nw * params.nseg) {
        return;
    }
    let w = idx / params.nseg;
    let s = idx % params.nseg;
    let base = w * params.nb + s * params.seg_len;
    var running = jac_identity();
    var sum = jac_identity();
    for (var j = params.seg_len; j > 0u; j--) {
        running = jac_add(running, load_jac(base + j - 1u));
        sum = jac_add(sum, running);
    }
    store_jac(params.seg_off + 2u * idx, sum);
    store_jac(params.seg_off + 2u * idx + 1u, running);
}

@compute @workgroup_size(64)
fn reduce_windows(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = flat_index(gid, nwg);
    if (w >= params.nw) {
        return;
    }
    let first = params.seg_off + 2u * w * params.nseg;
    var total = jac_identity();
    var running = jac_identity();
    var weighted = jac_identity();
    for (var s = params.nseg; s > 0u; s--) {
        let slot = first + 2u * (s - 1u);
        total = jac_add(total, load_jac(slot));
        if (s > 1u) {
            running = jac_add(running, load_jac(slot + 1u));
            weighted = jac_add(weighted, running);
        }
    }
    // sum_s (W_s + s L R_s): multiply the weighted sum by L = seg_len.
    for (var l = 1u; l < params.seg_len; l = l * 2u) {
        weighted = jac_double(weighted);
    }
    store_jac(params.win_off + w, jac_add(total, weighted));
}
