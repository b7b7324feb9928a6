//! Table building: the second generator `H`, the offset point `R` and the
//! per-window tables of odd multiples.
//!
//! Secret path: constant-time code only, no `vartime` or GPU calls (checked by
//! `service/tests/secret_paths_call_no_variable_time_code.rs`).

use std::sync::OnceLock;

use k256::{ProjectivePoint, Scalar};
use sha3::{Digest, Sha3_256};
use zeroize::Zeroize;

use super::{h_affine, WINDOW};
use crate::backend::secp256k1::field::Fe;
use crate::backend::secp256k1::ifma::{Entry52, Entry64};
use crate::backend::secp256k1::point::Affine;

pub(super) const H_X: [u8; 32] =
    hex32("bd48405ed3251dbb9f783c5a51cbf46016252921b268ebd47d0a0389f7b93cc1");
pub(super) const H_Y: [u8; 32] =
    hex32("8d8aca53b562a88df1b823928ff9ec96ea4daf03346e935544f104fe77898f45");

const OFFSET_DOMAIN: &[u8] = b"torus-engine/secp256k1/fixed_base/offset-point/v1";
const LANE_START_DOMAIN: &[u8] = b"torus-engine/secp256k1/fixed_base/lane-start/v1";
const LANE_PAD_DOMAIN: &[u8] = b"torus-engine/secp256k1/fixed_base/lane-pad/v1";

const fn hex_nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex"),
    }
}

#[allow(clippy::indexing_slicing)] // i < 32 and 2i+1 < 64 = b.len() (asserted); const-evaluated
const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    assert!(b.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (hex_nibble(b[2 * i]) << 4) | hex_nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// A table point in normalized affine coordinates (never the identity).
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) x: Fe,
    pub(super) y: Fe,
}

impl Entry {
    pub(super) const ZERO: Entry = Entry {
        x: Fe::ZERO,
        y: Fe::ZERO,
    };
}

impl Zeroize for Entry {
    fn zeroize(&mut self) {
        self.x.zeroize();
        self.y.zeroize();
    }
}

/// Per-window tables of odd multiples of one base.
pub(super) struct BaseTable {
    /// `windows * 2^(W-1)` points, window-major, as raw words: the canonical limbs
    /// of x then y (compact and cheap to scan with plain masking).
    pub(super) raw: Vec<RawEntry>,
    /// The same points in radix 2^52 (x limbs then y limbs), for the IFMA lanes.
    pub(super) raw52: Vec<Entry52>,
}

pub(super) fn entry52(e: &Entry) -> Entry52 {
    let x = e.x.normalize().to_limbs52();
    let y = e.y.normalize().to_limbs52();
    [x[0], x[1], x[2], x[3], x[4], y[0], y[1], y[2], y[3], y[4]]
}

/// x and y encodings (see [`BaseTable::raw`]): the lane kernels' [`Entry64`].
pub(super) type RawEntry = Entry64;

fn raw_entry(e: &Entry) -> RawEntry {
    let [x0, x1, x2, x3] = e.x.normalize().0;
    let [y0, y1, y2, y3] = e.y.normalize().0;
    [x0, x1, x2, x3, y0, y1, y2, y3]
}

/// Precomputed data for window width `W`.
#[doc(hidden)]
pub struct Tables<const W: usize> {
    pub(super) g: BaseTable,
    pub(super) h: BaseTable,
    /// The offset point `R`.
    pub(super) offset: Entry,
    /// `-R`.
    pub(super) neg_offset: Entry,
    /// `2^N - 1 mod n` with `N = W * windows`.
    pub(super) recode_add: Scalar,
    /// `1/2 mod n`.
    pub(super) half: Scalar,
    /// Points of the lane path (`lanes.rs`).
    pub(super) lanes: LaneConsts,
}

/// Public points of the small-batch lane path (`lanes.rs`): lane `l` starts at
/// `start[l]`; a slot of the last step beyond the last round adds `pad[l]`;
/// `corr_one` (one base: `WINDOWS` rounds) and `corr_two` (`G` and `H`) are
/// minus the sum of the starts and of the pads that schedule uses. All are
/// hash-derived, so nobody knows a relation between them, `G` and `H`.
pub(super) struct LaneConsts {
    pub(super) start: [RawEntry; 8],
    pub(super) pad: [RawEntry; 8],
    pub(super) corr_one: RawEntry,
    pub(super) corr_two: RawEntry,
}

impl LaneConsts {
    fn new(rounds_one: usize) -> Self {
        let pt = |d: &[u8], l: usize| hash_point(d, &(l as u32).to_be_bytes());
        let start: [Entry; 8] = core::array::from_fn(|l| pt(LANE_START_DOMAIN, l));
        let pad: [Entry; 8] = core::array::from_fn(|l| pt(LANE_PAD_DOMAIN, l));
        Self::from_points(start, pad, rounds_one)
    }

    /// The constants for given starts and pads (tests use points with known
    /// relations to reach the exceptional cases).
    pub(super) fn from_points(start: [Entry; 8], pad: [Entry; 8], rounds_one: usize) -> Self {
        let proj = |e: &Entry| Affine::new_unchecked(e.x, e.y).to_projective();
        let starts = start
            .iter()
            .map(proj)
            .fold(ProjectivePoint::IDENTITY, |a, p| a + p);
        let corr = |rounds: usize| {
            // The slots 8 * steps - rounds of the last step past the last round.
            let used = rounds % 8;
            let pads = if used == 0 {
                &[][..]
            } else {
                pad.get(used..).unwrap_or(&[])
            };
            let sum = pads.iter().map(proj).fold(starts, |a, p| a + p);
            let a = Affine::from_projective(&-sum);
            raw_entry(&Entry { x: a.x, y: a.y })
        };
        LaneConsts {
            start: start.map(|e| raw_entry(&e)),
            pad: pad.map(|e| raw_entry(&e)),
            corr_one: corr(rounds_one),
            corr_two: corr(2 * rounds_one),
        }
    }
}

impl<const W: usize> Tables<W> {
    /// Number of windows.
    pub const WINDOWS: usize = 256_usize.div_ceil(W);
    /// Entries per window.
    pub const ENTRIES: usize = 1 << (W - 1);

    /// Builds all tables (one-time cost).
    pub fn new() -> Self {
        assert!(W >= 2 && W <= 8);
        let g = build_base_table::<W>(ProjectivePoint::GENERATOR);
        let h = build_base_table::<W>(h_affine().to_projective());
        let offset = offset_point();
        let neg_offset = Entry {
            x: offset.x,
            y: offset.y.neg(),
        };
        let n_bits = W * Self::WINDOWS;
        let mut p2 = Scalar::ONE;
        for _ in 0..n_bits {
            p2 = p2 + p2;
        }
        let recode_add = p2 - Scalar::ONE;
        let half = Scalar::from(2u64).invert().unwrap_or(Scalar::ZERO);
        let lanes = LaneConsts::new(Self::WINDOWS);
        Tables {
            g,
            h,
            offset,
            neg_offset,
            recode_add,
            half,
            lanes,
        }
    }

    /// Table memory in bytes.
    pub fn size_bytes(&self) -> usize {
        (self.g.raw.len() + self.h.raw.len())
            * (core::mem::size_of::<RawEntry>() + core::mem::size_of::<Entry52>())
    }
}

impl<const W: usize> Default for Tables<W> {
    fn default() -> Self {
        Self::new()
    }
}

fn build_base_table<const W: usize>(base: ProjectivePoint) -> BaseTable {
    let windows = Tables::<W>::WINDOWS;
    let per = Tables::<W>::ENTRIES;
    let mut proj = Vec::with_capacity(windows * per);
    let mut b = base;
    for _ in 0..windows {
        let b2 = b.double();
        let mut e = b;
        for _ in 0..per {
            proj.push(e);
            e += b2;
        }
        for _ in 0..W {
            b = b.double();
        }
    }
    let entries: Vec<Entry> = Affine::batch_from_projective(&proj)
        .iter()
        .map(|a| Entry { x: a.x, y: a.y })
        .collect();
    BaseTable {
        raw: entries.iter().map(raw_entry).collect(),
        raw52: entries.iter().map(entry52).collect(),
    }
}

/// The offset point R: first x = SHA3-256(domain || ctr) (ctr = 0, 1, ...) that is a
/// valid x-coordinate, with even y. Nobody knows its discrete log w.r.t. G or H.
pub(super) fn offset_point() -> Entry {
    hash_point(OFFSET_DOMAIN, &[])
}

/// The first x = SHA3-256(domain || tag || ctr) (ctr = 0, 1, ... as 4 bytes) that
/// is a valid x-coordinate, with even y.
pub(super) fn hash_point(domain: &[u8], tag: &[u8]) -> Entry {
    let mut ctr: u32 = 0;
    loop {
        let mut hasher = Sha3_256::new();
        hasher.update(domain);
        hasher.update(tag);
        hasher.update(ctr.to_be_bytes());
        let digest = hasher.finalize();
        let x = Fe::from_bytes(&digest.into());
        if let Some(x) = x {
            let rhs = x.square().mul(&x).add(&Fe::from_u64(7));
            let y: Option<Fe> = rhs.sqrt().into();
            if let Some(y) = y {
                let y = y.normalize();
                let y = if bool::from(y.is_odd()) {
                    y.neg().normalize()
                } else {
                    y
                };
                return Entry { x, y };
            }
        }
        ctr = ctr.wrapping_add(1);
    }
}

/// Returns the tables used by the public API.
pub(super) fn tables() -> &'static Tables<WINDOW> {
    static T: OnceLock<Tables<WINDOW>> = OnceLock::new();
    T.get_or_init(Tables::new)
}
