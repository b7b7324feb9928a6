//! The schedule (levels, regions, offsets) run through a host model of the
//! level passes, over integers mod 2^64 in place of points: no GPU needed.
use super::plan::{
    Level, ACCUMULATE, ACC_TILE, FINAL, MERGE_FAN, MERGE_PARTIALS, REDUCE_BUCKETS, REDUCE_FAN,
    REDUCE_PAIRS,
};
use super::*;
use crate::shaders;
use rand_chacha::rand_core::{RngCore, SeedableRng};

const NONE: u32 = u32::MAX;

/// Buffers of one chunk with `u64` for Jacobian points (0: the identity).
struct Model {
    tb: u32,
    nw: u32,
    counts: Vec<u32>,
    offsets: Vec<u32>,
    sorted: Vec<u64>,
    acc: Vec<u64>,
    keys: Vec<u32>,
}

impl Model {
    fn bucket_of(&self, pos: u32) -> u32 {
        let (mut lo, mut hi) = (0, self.tb);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if self.offsets[mid as usize] <= pos {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
    fn bucket_end(&self, b: u32) -> u32 {
        self.offsets[b as usize] + self.counts[b as usize]
    }
    fn emit_run(&mut self, lv: &Level, g: u32, b: u32, s: u64, first: bool, last: bool) {
        if lv.flags & FINAL != 0 || (!first && !last) {
            self.acc[b as usize] = s;
            return;
        }
        let (k, p) = ((lv.dst2 + 2 * g) as usize, (lv.dst + 2 * g) as usize);
        if first {
            (self.keys[k], self.acc[p]) = (b, s);
            if last {
                (self.keys[k + 1], self.acc[p + 1]) = (b, 0);
            }
        } else {
            (self.keys[k + 1], self.acc[p + 1]) = (b, s);
        }
    }
    fn emit_none(&mut self, lv: &Level, g: u32) {
        if lv.flags & FINAL == 0 {
            self.keys[(lv.dst2 + 2 * g) as usize] = NONE;
            self.keys[(lv.dst2 + 2 * g + 1) as usize] = NONE;
        }
    }
    fn accumulate(&mut self, lv: &Level, g: u32) {
        let total = self.bucket_end(self.tb - 1);
        let lo = g * lv.fan;
        let hi = (lo + lv.fan).min(total);
        if lo >= hi {
            return self.emit_none(lv, g);
        }
        let mut b = self.bucket_of(lo);
        let mut end = self.bucket_end(b);
        let (mut a, mut first) = (0u64, true);
        for pos in lo..hi {
            if pos >= end {
                self.emit_run(lv, g, b, a, first, false);
                first = false;
                b = self.bucket_of(pos);
                end = self.bucket_end(b);
                a = 0;
            }
            a = a.wrapping_add(self.sorted[pos as usize]);
        }
        self.emit_run(lv, g, b, a, first, true);
    }
    fn merge(&mut self, lv: &Level, g: u32) {
        let lo = g * lv.fan;
        let hi = (lo + lv.fan).min(lv.count);
        let (mut b, mut a, mut first) = (NONE, 0u64, true);
        for j in lo..hi {
            let k = self.keys[(lv.src2 + j) as usize];
            if k == NONE {
                break;
            }
            if k != b {
                if b != NONE {
                    self.emit_run(lv, g, b, a, first, false);
                    first = false;
                }
                (b, a) = (k, 0);
            }
            a = a.wrapping_add(self.acc[(lv.src + j) as usize]);
        }
        if b == NONE {
            self.emit_none(lv, g);
        } else {
            self.emit_run(lv, g, b, a, first, true);
        }
    }
    fn reduce(&mut self, lv: &Level, t: u32, pairs: bool) {
        assert!(t < self.nw * lv.groups);
        let base = (t / lv.groups) * lv.count + (t % lv.groups) * lv.fan;
        let (mut running, mut weighted, mut total) = (0u64, 0u64, 0u64);
        for j in (1..=lv.fan).rev() {
            let i = base + j - 1;
            if pairs {
                total = total.wrapping_add(self.acc[(lv.src + i) as usize]);
                running = running.wrapping_add(self.acc[(lv.src2 + i) as usize]);
                if j > 1 {
                    weighted = weighted.wrapping_add(running);
                }
            } else {
                running = running.wrapping_add(self.acc[(lv.src + i) as usize]);
                weighted = weighted.wrapping_add(running);
            }
        }
        if pairs {
            weighted = total.wrapping_add(weighted.wrapping_shl(lv.shift));
        }
        self.acc[(lv.dst + t) as usize] = weighted;
        self.acc[(lv.dst2 + t) as usize] = running;
    }
}

/// Runs the schedule of `plan` on buckets `lists` (`tb` lists of values) and
/// checks the window sums against `sum_b (b + 1) B_b`.
fn check(plan: MsmPlan, lists: &[Vec<u64>], seed: u64) {
    let sched = plan.schedule();
    let (tb, nb) = (plan.tb() as usize, plan.nb as usize);
    assert_eq!(lists.len(), tb);
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let counts: Vec<u32> = lists.iter().map(|l| l.len() as u32).collect();
    let offsets: Vec<u32> = counts
        .iter()
        .scan(0, |s, c| {
            let o = *s;
            *s += c;
            Some(o)
        })
        .collect();
    let sorted: Vec<u64> = lists.iter().flatten().copied().collect();
    assert!(sorted.len() as u64 <= plan.entries());
    // Garbage everywhere but the (cleared) buckets: reading an unwritten slot
    // or key shows up as a wrong sum.
    let mut acc: Vec<u64> = (0..sched.acc_slots).map(|_| r.next_u64()).collect();
    acc[..tb].fill(0);
    let keys = (0..plan.keys_words()).map(|_| r.next_u32() >> 1).collect();
    let mut m = Model {
        tb: plan.tb(),
        nw: plan.nw,
        counts,
        offsets,
        sorted,
        acc,
        keys,
    };
    for d in &sched.dispatches {
        let Some(lv) = sched.levels.get(d.level).copied() else {
            panic!("no level {}", d.level)
        };
        let bound = match d.entry {
            ACCUMULATE => ACC_TILE,
            MERGE_PARTIALS => MERGE_FAN,
            REDUCE_BUCKETS | REDUCE_PAIRS => REDUCE_FAN,
            _ => continue,
        };
        assert!(lv.fan <= bound && lv.shift <= 15, "{lv:?}");
        let per_window = if d.entry >= REDUCE_BUCKETS {
            plan.nw
        } else {
            1
        };
        assert_eq!(d.threads, u64::from(lv.groups * per_window), "{lv:?}");
        for g in 0..d.threads as u32 {
            match d.entry {
                ACCUMULATE => m.accumulate(&lv, g),
                MERGE_PARTIALS => m.merge(&lv, g),
                _ => m.reduce(&lv, g, d.entry == REDUCE_PAIRS),
            }
        }
    }
    for w in 0..plan.nw as usize {
        let want = (0..nb).fold(0u64, |s, b| {
            let bucket = lists[w * nb + b]
                .iter()
                .fold(0u64, |x, v| x.wrapping_add(*v));
            s.wrapping_add(bucket.wrapping_mul(b as u64 + 1))
        });
        let got = m.acc[sched.win_off as usize + w];
        assert_eq!(got, want, "{plan:?} window {w}");
    }
}

/// Buckets of `n` points with one digit per window, from `digit(point, window)`
/// (0: none, else the bucket `1..=nb`).
fn lists(
    plan: MsmPlan,
    r: &mut rand_chacha::ChaCha20Rng,
    digit: impl Fn(u32, u32, u64) -> u32,
) -> Vec<Vec<u64>> {
    let mut l = vec![Vec::new(); plan.tb() as usize];
    for i in 0..plan.n {
        for w in 0..plan.nw {
            let m = digit(i, w, r.next_u64());
            assert!(m <= plan.nb);
            if m > 0 {
                l[(w * plan.nb + m - 1) as usize].push(r.next_u64());
            }
        }
    }
    l
}

#[test]
fn schedule_sums_every_bucket_and_window() {
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let shapes = [
        (1, 2),
        (1, 8),
        (2, 16),
        (63, 14),
        (64, 8),
        (65, 3),
        (333, 7),
        (1000, 8),
        (2048, 8),
        (2048, 11),
        (4096, 12),
        (700, 16),
    ];
    for (seed, (n, c)) in shapes.into_iter().enumerate() {
        let plan = MsmPlan::new(n, 256, Some(c));
        let nb = plan.nb;
        let uniform = lists(plan, &mut r, |_, _, x| (x % u64::from(nb + 1)) as u32);
        check(plan, &uniform, seed as u64);
        // Every point in one bucket (scalars all 1).
        let one = lists(plan, &mut r, |_, w, _| u32::from(w == 0));
        check(plan, &one, seed as u64);
        // Every digit the top bucket (-1 in every window, as q - 1 nearly is).
        let top = lists(plan, &mut r, |_, _, _| nb);
        check(plan, &top, seed as u64);
        // The top window of full-width scalars: half the points in bucket 1.
        let last = plan.nw - 1;
        let carry = lists(plan, &mut r, |_, w, x| {
            if w == last {
                (x & 1) as u32
            } else {
                (x % u64::from(nb + 1)) as u32
            }
        });
        check(plan, &carry, seed as u64);
        // Sparse: runs of empty buckets between the entries.
        let sparse = lists(plan, &mut r, |i, _, x| {
            if i % 5 == 0 {
                (x % u64::from(nb + 1)) as u32
            } else {
                0
            }
        });
        check(plan, &sparse, seed as u64);
    }
}

#[test]
fn entry_indices_match_the_shader() {
    let e = shaders::MSM_ENTRY_POINTS;
    assert_eq!(
        [
            e[ACCUMULATE],
            e[MERGE_PARTIALS],
            e[REDUCE_BUCKETS],
            e[REDUCE_PAIRS]
        ],
        [
            "accumulate",
            "merge_partials",
            "reduce_buckets",
            "reduce_pairs"
        ]
    );
}

#[test]
fn schedule_is_bounded_per_invocation() {
    // The largest chunks bound the number of levels, not the work per thread.
    for (n, c) in [
        (1usize << 20, 16usize),
        (1 << 22, 16),
        (1 << 24, 2),
        (1 << 20, 8),
    ] {
        let plan = MsmPlan::new(n, 256, Some(c));
        let sched = plan.schedule();
        assert!(sched
            .levels
            .iter()
            .all(|l| l.fan <= ACC_TILE && l.shift <= 15));
        assert!(
            sched.dispatches.len() < 32,
            "{plan:?}: {}",
            sched.dispatches.len()
        );
        assert_eq!(sched.levels.len(), sched.dispatches.len() - 5);
    }
}
