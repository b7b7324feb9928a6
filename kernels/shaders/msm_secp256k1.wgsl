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
//   accumulate      one thread per tile of lv.fan consecutive sorted entries: the
//                   sum of each run of one bucket in the tile (Jacobian += affine).
//                   A run with entries of other buckets on both sides in the tile
//                   is a whole bucket and goes to its slot; the tile's first and
//                   last runs may go on in the neighbouring tiles and become the
//                   tile's two keyed partial sums (head, tail).
//   merge_partials  the same reduction by key over groups of lv.fan partial sums,
//                   repeated until one group holds them all (lv.flags & FINAL: every
//                   run is then a whole bucket). Each level shrinks the partials
//                   by lv.fan / 2.
//   reduce_buckets  one thread per group of lv.fan consecutive buckets of a window:
//                   the weighted sum W' = sum_j (j + 1) B_j and plain sum R' = sum_j B_j.
//   reduce_pairs    the same over groups of lv.fan consecutive (W, R) items, each
//                   standing for L = 2^lv.shift buckets: W' = sum_j (W_j + j L R_j),
//                   R' = sum_j R_j; repeated until one item per window is left,
//                   its W being sum_b (b + 1) B_b.
// The host combines the window sums (Horner, c doublings per window).
//
// Bounded work per invocation. No invocation loops over a data-dependent number
// of points: a bucket may hold every point of the chunk (all scalars equal, or the
// top window of full-width scalars, whose digit is mostly the carry), so buckets
// are summed in tiles and merged in levels, and windows are reduced in levels, each
// invocation doing at most about 64 point additions. Besides keeping GPU threads
// short, this is needed for correctness on Mesa's llvmpipe, which silently ends a
// loop after 65535 iterations counted over ALL loops of one invocation (and of
// the SIMD lanes it runs with): a bucket of 640 points, or a window of 256
// segments, came out as garbage there.
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
//   keys     bucket of each partial sum (NONE: no partial), two regions used in turn.
//   acc      Jacobian points, 24 words each: buckets[tb] (cleared to the identity
//            by the host) | partial sums (two regions used in turn) | the W and R
//            items of every reduce level, the last level's W being the windows[nw].

const WG: u32 = 64u;
const SCAN_BLOCK: u32 = 64u;
const SCAN_WG: u32 = 256u;
const NEG: u32 = 0x80000000u;
const NONE: u32 = 0xffffffffu;
// Level flag of accumulate and merge_partials: the last level.
const FINAL: u32 = 1u;

struct Params {
    n: u32,        // points in this chunk
    c: u32,        // window bits
    nw: u32,       // windows
    nb: u32,       // buckets per window, 2^(c-1)
    tb: u32,       // nw * nb
    nblk: u32,     // ceil(tb / SCAN_BLOCK)
    limbs: u32,    // 8: limb loop bound read at run time on software adapters
    _pad: u32,
}

// One dispatch of accumulate, merge_partials or reduce_* (bound at a dynamic
// offset; slots are Jacobian points of acc, keys index the keys buffer). Storage,
// not uniform: llvmpipe re-specializes a shader whenever the uniform values its
// branches and loops depend on change, about 100 ms per dispatch here.
struct Level {
    src: u32,     // merge: first input partial; reduce: first W_j (or B_j)
    src2: u32,    // merge: first input key; reduce: first R_j
    dst: u32,     // accumulate, merge: first output partial; reduce: first W'
    dst2: u32,    // accumulate, merge: first output key; reduce: first R'
    count: u32,   // merge: input partials; reduce: items per window
    fan: u32,     // input items per invocation
    groups: u32,  // invocations (reduce: per window)
    flags: u32,   // accumulate, merge: FINAL
    shift: u32,   // reduce: log2 of the buckets one input item stands for
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> points: array<u32>;
@group(0) @binding(2) var<storage, read> scalars: array<u32>;
@group(0) @binding(3) var<storage, read_write> sorted: array<u32>;
@group(0) @binding(4) var<storage, read_write> idx: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> acc: array<u32>;
@group(0) @binding(6) var<storage, read_write> keys: array<u32>;
@group(0) @binding(7) var<storage, read> lv: Level;

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


// The bucket that sorted entry pos (< the entry count) belongs to: the last one
// whose offset is <= pos (empty buckets share the offset of the next one).
fn bucket_of(pos: u32) -> u32 {
    let tb = params.tb;
    var lo = 0u;
    var hi = tb;
    while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (atomicLoad(&idx[tb + mid]) <= pos) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// One past the last sorted entry of bucket b.
fn bucket_end(b: u32) -> u32 {
    return atomicLoad(&idx[params.tb + b]) + atomicLoad(&idx[b]);
}

// A run of bucket b summing to s, the first and/or last run of group g or
// neither. A run with other keys on both sides is the whole bucket, and so is any
// run of the final level: into the bucket's slot. Otherwise the first run is the
// group's head partial, the last its tail (the identity when the group has one run).
fn emit_run(g: u32, b: u32, s: Jac, first: bool, last: bool) {
    if ((lv.flags & FINAL) != 0u || (!first && !last)) {
        store_jac(b, s);
        return;
    }
    let h = 2u * g;
    if (first) {
        keys[lv.dst2 + h] = b;
        store_jac(lv.dst + h, s);
        if (last) {
            keys[lv.dst2 + h + 1u] = b;
            store_jac(lv.dst + h + 1u, jac_identity());
        }
    } else {
        keys[lv.dst2 + h + 1u] = b;
        store_jac(lv.dst + h + 1u, s);
    }
}

// Group g has no entries (it lies past the end): no partials. Such groups only
// follow every group with entries, so NONE keys end the next level's input.
fn emit_none(g: u32) {
    if ((lv.flags & FINAL) == 0u) {
        keys[lv.dst2 + 2u * g] = NONE;
        keys[lv.dst2 + 2u * g + 1u] = NONE;
    }
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = flat_index(gid, nwg);
    if (g >= lv.groups) {
        return;
    }
    let total = bucket_end(params.tb - 1u);
    let lo = g * lv.fan;
    let hi = min(lo + lv.fan, total);
    if (lo >= hi) {
        emit_none(g);
        return;
    }
    var b = bucket_of(lo);
    var end = bucket_end(b);
    var a = jac_identity();
    var first = true;
    for (var pos = lo; pos < hi; pos++) {
        if (pos >= end) {
            emit_run(g, b, a, first, false);
            first = false;
            b = bucket_of(pos);
            end = bucket_end(b);
            a = jac_identity();
        }
        let e = sorted[pos];
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
    emit_run(g, b, a, first, true);
}

@compute @workgroup_size(64)
fn merge_partials(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = flat_index(gid, nwg);
    if (g >= lv.groups) {
        return;
    }
    let lo = g * lv.fan;
    let hi = min(lo + lv.fan, lv.count);
    var b = NONE;
    var a = jac_identity();
    var first = true;
    for (var j = lo; j < hi; j++) {
        let k = keys[lv.src2 + j];
        if (k == NONE) {
            break;
        }
        if (k != b) {
            if (b != NONE) {
                emit_run(g, b, a, first, false);
                first = false;
            }
            b = k;
            a = jac_identity();
        }
        a = jac_add(a, load_jac(lv.src + j));
    }
    if (b == NONE) {
        emit_none(g);
    } else {
        emit_run(g, b, a, first, true);
    }
}

// Items base .. base + lv.fan of window t / lv.groups (reduce_buckets, reduce_pairs).
fn reduce_base(t: u32) -> u32 {
    return (t / lv.groups) * lv.count + (t % lv.groups) * lv.fan;
}

@compute @workgroup_size(64)
fn reduce_buckets(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= params.nw * lv.groups) {
        return;
    }
    let base = reduce_base(t);
    // Running sums from the top: weighted = sum_j (j + 1) B_j.
    var running = jac_identity();
    var weighted = jac_identity();
    for (var j = lv.fan; j > 0u; j--) {
        running = jac_add(running, load_jac(lv.src + base + j - 1u));
        weighted = jac_add(weighted, running);
    }
    store_jac(lv.dst + t, weighted);
    store_jac(lv.dst2 + t, running);
}

@compute @workgroup_size(64)
fn reduce_pairs(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_index(gid, nwg);
    if (t >= params.nw * lv.groups) {
        return;
    }
    let base = reduce_base(t);
    // total = sum_j W_j; running sums from the top: weighted = sum_j j R_j.
    var total = jac_identity();
    var running = jac_identity();
    var weighted = jac_identity();
    for (var j = lv.fan; j > 0u; j--) {
        let i = base + j - 1u;
        total = jac_add(total, load_jac(lv.src + i));
        running = jac_add(running, load_jac(lv.src2 + i));
        if (j > 1u) {
            weighted = jac_add(weighted, running);
        }
    }
    // W' = total + L weighted, L = 2^shift.
    for (var k = 0u; k < lv.shift; k++) {
        weighted = jac_double(weighted);
    }
    store_jac(lv.dst + t, jac_add(total, weighted));
    store_jac(lv.dst2 + t, running);
}
