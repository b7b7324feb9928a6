//! The shape of one chunk (`MsmPlan`) and its schedule of dispatches and levels.

use crate::shaders::SCAN_BLOCK;

/// Sorted entries one `accumulate` invocation sums (point additions per thread).
pub(super) const ACC_TILE: u32 = 64;
/// Partial sums one `merge_partials` invocation combines.
pub(super) const MERGE_FAN: u32 = 32;
/// Items one `reduce_buckets` / `reduce_pairs` invocation combines (a power of
/// two, as the buckets per window are).
pub(super) const REDUCE_FAN: u32 = 16;

// Per-invocation work is bounded by these constants, whatever the data: at most
// ACC_TILE mixed additions, MERGE_FAN additions, or 3 REDUCE_FAN additions and 15
// doublings. On llvmpipe, which ends every loop once 65535 loop iterations have
// run in one invocation, such an addition costs about 140-180 iterations (the
// limb loops), so the largest of these stays near 11,000.

/// Entry points of the level passes (indices into `MSM_ENTRY_POINTS`); the first
/// five (count_digits .. scatter) run once each, in order.
pub(super) const ACCUMULATE: usize = 5;
pub(super) const MERGE_PARTIALS: usize = 6;
pub(super) const REDUCE_BUCKETS: usize = 7;
pub(super) const REDUCE_PAIRS: usize = 8;

/// Level flag of `accumulate` / `merge_partials`: every run is a whole bucket.
pub(super) const FINAL: u32 = 1;

/// The shape of one chunk's MSM (window width and derived sizes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsmPlan {
    /// Points in the chunk.
    pub n: u32,
    /// Window width in bits.
    pub c: u32,
    /// Number of windows.
    pub nw: u32,
    /// Buckets per window, `2^(c-1)`.
    pub nb: u32,
}

/// The per-dispatch parameters of the level passes (`Level` in the shader).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct Level {
    pub(super) src: u32,
    pub(super) src2: u32,
    pub(super) dst: u32,
    pub(super) dst2: u32,
    pub(super) count: u32,
    pub(super) fan: u32,
    pub(super) groups: u32,
    pub(super) flags: u32,
    pub(super) shift: u32,
    pad: [u32; 3],
}

/// One dispatch: the entry point (index into `MSM_ENTRY_POINTS`), the invocations
/// it needs (0: one workgroup) and its level (index into the levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Dispatch {
    pub(super) entry: usize,
    pub(super) threads: u64,
    pub(super) level: usize,
}

/// Every dispatch of one chunk, the levels they use, and where the window
/// sums land in `acc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Schedule {
    pub(super) dispatches: Vec<Dispatch>,
    pub(super) levels: Vec<Level>,
    pub(super) win_off: u64,
    pub(super) acc_slots: u64,
}

impl MsmPlan {
    /// The plan for `n` points of `bits`-bit scalars with window `c` (`None`: by size).
    pub fn new(n: usize, bits: usize, c: Option<usize>) -> Self {
        let c = c.unwrap_or_else(|| default_window(n)).clamp(2, 16) as u32;
        let nw = (bits as u32 + 1).div_ceil(c).max(1);
        let nb = 1u32 << (c - 1);
        MsmPlan {
            n: n as u32,
            c,
            nw,
            nb,
        }
    }

    pub(super) fn tb(&self) -> u32 {
        self.nw * self.nb
    }
    fn nblk(&self) -> u32 {
        self.tb().div_ceil(SCAN_BLOCK)
    }
    /// Upper bound on the sorted entries (one per point and window).
    pub(super) fn entries(&self) -> u64 {
        u64::from(self.n) * u64::from(self.nw)
    }
    /// `accumulate` invocations (tiles of the sorted entries).
    fn tiles(&self) -> u64 {
        self.entries().div_ceil(u64::from(ACC_TILE)).max(1)
    }
    /// Partial sums (and keys) of the two regions the merge levels alternate between.
    fn partial_regions(&self) -> (u64, u64) {
        let a = 2 * self.tiles();
        (a, 2 * a.div_ceil(u64::from(MERGE_FAN)))
    }
    /// Words of the `keys` buffer.
    pub(super) fn keys_words(&self) -> u64 {
        let (a, b) = self.partial_regions();
        a + b
    }
    /// Words of the `meta` buffer.
    pub(super) fn meta_words(&self) -> u64 {
        3 * u64::from(self.tb()) + u64::from(self.nblk())
    }

    pub(super) fn params(&self) -> [u32; 8] {
        [
            self.n,
            self.c,
            self.nw,
            self.nb,
            self.tb(),
            self.nblk(),
            crate::shaders::SECP256K1_LIMBS as u32,
            0,
        ]
    }

    /// The dispatches of a chunk. Slot and key offsets are truncated to `u32`,
    /// which `GpuMsm::chunk_points_with` keeps exact (every buffer under 4 GiB).
    pub(super) fn schedule(&self) -> Schedule {
        let tb = u64::from(self.tb());
        let nw = u64::from(self.nw);
        let n = u64::from(self.n);
        let mut dispatches: Vec<Dispatch> = [n, u64::from(self.nblk()), 0, tb, n]
            .into_iter()
            .enumerate()
            .map(|(entry, threads)| Dispatch {
                entry,
                threads,
                level: 0,
            })
            .collect();
        let mut levels = Vec::new();
        let mut push = |d: &mut Vec<Dispatch>, entry: usize, threads: u64, lv: Level| {
            d.push(Dispatch {
                entry,
                threads,
                level: levels.len(),
            });
            levels.push(lv);
        };
        // Buckets: tiles of the sorted entries, then merge levels over the keyed
        // partials, alternating between regions a (keys 0.., slots tb..) and b.
        let (len_a, len_b) = self.partial_regions();
        // (first key, first slot) of each region.
        let (mut from, mut to) = ((0, tb), (len_a, tb + len_a));
        let tiles = self.tiles();
        push(
            &mut dispatches,
            ACCUMULATE,
            tiles,
            Level {
                dst: from.1 as u32,
                dst2: from.0 as u32,
                fan: ACC_TILE,
                groups: tiles as u32,
                flags: if tiles == 1 { FINAL } else { 0 },
                ..Level::default()
            },
        );
        // Partials left to merge (none when one tile held every entry).
        let mut count = if tiles > 1 { 2 * tiles } else { 0 };
        while count > 0 {
            let groups = count.div_ceil(u64::from(MERGE_FAN));
            push(
                &mut dispatches,
                MERGE_PARTIALS,
                groups,
                Level {
                    src: from.1 as u32,
                    src2: from.0 as u32,
                    dst: to.1 as u32,
                    dst2: to.0 as u32,
                    count: count as u32,
                    fan: MERGE_FAN,
                    groups: groups as u32,
                    flags: if groups == 1 { FINAL } else { 0 },
                    ..Level::default()
                },
            );
            count = if groups == 1 { 0 } else { 2 * groups };
            (from, to) = (to, from);
        }
        // Windows: levels of REDUCE_FAN items, W' regions then R' regions.
        let mut next = tb + len_a + len_b;
        let (mut src, mut src2) = (0u64, 0u64);
        let mut items = u64::from(self.nb);
        let mut shift = 0u32;
        let mut entry = REDUCE_BUCKETS;
        let win_off = loop {
            let fan = u64::from(REDUCE_FAN).min(items);
            let groups = items / fan;
            let out = nw * groups;
            push(
                &mut dispatches,
                entry,
                out,
                Level {
                    src: src as u32,
                    src2: src2 as u32,
                    dst: next as u32,
                    dst2: (next + out) as u32,
                    count: items as u32,
                    fan: fan as u32,
                    groups: groups as u32,
                    shift,
                    ..Level::default()
                },
            );
            (src, src2) = (next, next + out);
            next += 2 * out;
            shift += fan.trailing_zeros();
            items = groups;
            entry = REDUCE_PAIRS;
            if groups == 1 {
                break src;
            }
        };
        Schedule {
            dispatches,
            levels,
            win_off,
            acc_slots: next,
        }
    }
}

/// Window width by input size: about `log2(n) - 4`, within `4..=16`.
fn default_window(n: usize) -> usize {
    let lg = usize::BITS - n.max(1).leading_zeros();
    (lg as usize).saturating_sub(4).clamp(4, 16)
}
