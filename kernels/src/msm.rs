//! Host side of the secp256k1 Pippenger MSM kernels (`shaders/msm_secp256k1.wgsl`).
//!
//! One call: identity points and zero scalars are dropped, the rest is cut into
//! chunks that fit the device limits (buffer binding size, dispatch size), and
//! every chunk is recorded as the eight passes of the shader in one command
//! buffer. Submission is asynchronous: while the GPU runs chunk `i`, the CPU packs
//! chunk `i + 1`; each chunk's window sums are copied into one readback buffer,
//! mapped once at the end. The CPU then combines the windows of every chunk
//! (Horner, `c` doublings per window), a few hundred point operations.

use std::sync::Arc;

use k256::{ProjectivePoint, Scalar};
use torus_engine::offload::{self, Secp256k1Xy};
use torus_engine::{Affine, Secp256k1, VartimeMsmOffload};

use crate::device::{read_words, GpuContext, GpuOptions};
use crate::error::GpuError;
use crate::shaders::{
    self, BindingKind, JAC_WORDS, LEVEL_WORDS, POINT_WORDS, SCAN_BLOCK, WORKGROUP_SIZE,
};

/// Sorted entries one `accumulate` invocation sums (point additions per thread).
const ACC_TILE: u32 = 64;
/// Partial sums one `merge_partials` invocation combines.
const MERGE_FAN: u32 = 32;
/// Items one `reduce_buckets` / `reduce_pairs` invocation combines (a power of
/// two, as the buckets per window are).
const REDUCE_FAN: u32 = 16;

// Per-invocation work is bounded by these constants, whatever the data: at most
// ACC_TILE mixed additions, MERGE_FAN additions, or 3 REDUCE_FAN additions and 15
// doublings. On llvmpipe, which ends every loop once 65535 loop iterations have
// run in one invocation, such an addition costs about 140-180 iterations (the
// limb loops), so the largest of these stays near 11,000.

/// Entry points of the level passes (indices into `MSM_ENTRY_POINTS`); the first
/// five (count_digits .. scatter) run once each, in order.
const ACCUMULATE: usize = 5;
const MERGE_PARTIALS: usize = 6;
const REDUCE_BUCKETS: usize = 7;
const REDUCE_PAIRS: usize = 8;

/// Level flag of `accumulate` / `merge_partials`: every run is a whole bucket.
const FINAL: u32 = 1;

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
struct Level {
    src: u32,
    src2: u32,
    dst: u32,
    dst2: u32,
    count: u32,
    fan: u32,
    groups: u32,
    flags: u32,
    shift: u32,
    pad: [u32; 3],
}

/// One dispatch: the entry point (index into `MSM_ENTRY_POINTS`), the invocations
/// it needs (0: one workgroup) and its level (index into the levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dispatch {
    entry: usize,
    threads: u64,
    level: usize,
}

/// Every dispatch of one chunk, the levels they use, and where the window
/// sums land in `acc`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Schedule {
    dispatches: Vec<Dispatch>,
    levels: Vec<Level>,
    win_off: u64,
    acc_slots: u64,
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

    fn tb(&self) -> u32 {
        self.nw * self.nb
    }
    fn nblk(&self) -> u32 {
        self.tb().div_ceil(SCAN_BLOCK)
    }
    /// Upper bound on the sorted entries (one per point and window).
    fn entries(&self) -> u64 {
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
    fn keys_words(&self) -> u64 {
        let (a, b) = self.partial_regions();
        a + b
    }
    /// Words of the `meta` buffer.
    fn meta_words(&self) -> u64 {
        3 * u64::from(self.tb()) + u64::from(self.nblk())
    }

    fn params(&self) -> [u32; 8] {
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
    fn schedule(&self) -> Schedule {
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

/// The GPU MSM: a device, the compiled pipelines and the chunking limits.
pub struct GpuMsm {
    ctx: GpuContext,
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
    window: Option<usize>,
    max_chunk: usize,
    name: String,
}

impl core::fmt::Debug for GpuMsm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GpuMsm")
            .field("adapter", &self.ctx.adapter)
            .field("window", &self.window)
            .field("max_chunk", &self.max_chunk)
            .finish()
    }
}

/// Storage (and uniform) buffers of one call, sized for its largest chunk.
struct Buffers {
    params: wgpu::Buffer,
    points: wgpu::Buffer,
    scalars: wgpu::Buffer,
    sorted: wgpu::Buffer,
    meta: wgpu::Buffer,
    acc: wgpu::Buffer,
    keys: wgpu::Buffer,
    /// One `Level` per dispatch that has one, `level_stride` bytes apart.
    levels: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl GpuMsm {
    /// Opens any adapter (hardware preferred, software allowed) and compiles the
    /// kernels. An error, never a panic, when there is no adapter.
    pub fn new() -> Result<Self, GpuError> {
        Self::with_options(&GpuOptions::any())
    }

    /// Opens the adapter `opts` selects and compiles the kernels.
    pub fn with_options(opts: &GpuOptions) -> Result<Self, GpuError> {
        Self::from_context(GpuContext::new(opts)?)
    }

    /// Compiles the kernels on an open device.
    pub fn from_context(ctx: GpuContext) -> Result<Self, GpuError> {
        let dev = &ctx.device;
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = ctx.module("msm_secp256k1", &shaders::msm_secp256k1(ctx.loops()))?;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = shaders::MSM_BINDINGS
            .iter()
            .map(|&(binding, _, kind)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match kind {
                        BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                        BindingKind::Storage { read_only } => {
                            wgpu::BufferBindingType::Storage { read_only }
                        }
                        BindingKind::DynamicStorage => {
                            wgpu::BufferBindingType::Storage { read_only: true }
                        }
                    },
                    has_dynamic_offset: kind == BindingKind::DynamicStorage,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("msm"),
            entries: &entries,
        });
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("msm"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = shaders::MSM_ENTRY_POINTS
            .iter()
            .map(|e| {
                dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(e),
                    layout: Some(&pl),
                    module: &module,
                    entry_point: Some(e),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Runtime {
                during: "pipeline creation",
                message: e.to_string(),
            });
        }
        let name = format!("gpu ({})", ctx.adapter.name);
        Ok(GpuMsm {
            ctx,
            layout,
            pipelines,
            window: None,
            max_chunk: usize::MAX,
            name,
        })
    }

    /// Fixes the window width (`None`: by size). From `msm.gpu_window` of a profile.
    pub fn with_window(mut self, window: Option<usize>) -> Self {
        self.window = window.map(|w| w.clamp(2, 16));
        self
    }

    /// Caps the points per chunk below what the device limits allow (tests use it
    /// to force chunking on small inputs).
    pub fn with_max_chunk(mut self, points: usize) -> Self {
        self.max_chunk = points.max(1);
        self
    }

    /// The open device.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Points per chunk for `bits`-bit scalars: the device limits, then `max_chunk`.
    pub fn chunk_points(&self, total: usize, bits: usize) -> Result<usize, GpuError> {
        self.chunk_points_with(total, bits, self.window, self.max_chunk)
    }

    fn chunk_points_with(
        &self,
        total: usize,
        bits: usize,
        window: Option<usize>,
        max_chunk: usize,
    ) -> Result<usize, GpuError> {
        // Under 4 GiB per buffer, every u32 word index (and slot offset) is exact.
        let limit = self.ctx.max_binding_bytes().min(u64::from(u32::MAX));
        let dim = u64::from(self.ctx.max_workgroups_per_dim());
        let wg = u64::from(WORKGROUP_SIZE);
        // Window sizes depend on the chunk size; plan with the largest candidate.
        let mut n = (total.min(max_chunk).max(1)) as u64;
        // Dispatch: n / WG workgroups in a 2D grid of at most dim x dim.
        n = n.min(dim * dim * wg);
        // u32 point references with a sign bit.
        n = n.min(1 << 31);
        loop {
            let plan = MsmPlan::new(n as usize, bits, window);
            let sched = plan.schedule();
            let fits = n * (POINT_WORDS as u64) * 4 <= limit
                && n * 32 <= limit
                && plan.entries() * 4 <= limit
                && plan.meta_words() * 4 <= limit
                && plan.keys_words() * 4 <= limit
                && sched.acc_slots * (JAC_WORDS as u64) * 4 <= limit
                && sched
                    .dispatches
                    .iter()
                    .all(|d| d.threads.div_ceil(wg) <= dim * dim);
            if fits {
                return Ok(n as usize);
            }
            if n <= 1 {
                return Err(GpuError::Limits(format!(
                    "no chunk fits the {limit}-byte binding limit"
                )));
            }
            n /= 2;
        }
    }

    /// Bytes between two `Level`s (the dynamic offset alignment).
    fn level_stride(&self) -> u64 {
        let align = u64::from(self.ctx.limits.min_storage_buffer_offset_alignment).max(1);
        (LEVEL_WORDS as u64 * 4).next_multiple_of(align)
    }

    fn buffers(&self, plan: &MsmPlan, chunks: usize) -> Buffers {
        let dev = &self.ctx.device;
        let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let mk = |label: &str, bytes: u64, usage: wgpu::BufferUsages| {
            dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(16).next_multiple_of(4),
                usage,
                mapped_at_creation: false,
            })
        };
        let n = u64::from(plan.n);
        let sched = plan.schedule();
        Buffers {
            params: mk(
                "params",
                core::mem::size_of_val(&plan.params()) as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            points: mk("points", n * POINT_WORDS as u64 * 4, storage),
            scalars: mk("scalars", n * 32, storage),
            sorted: mk("sorted", n * u64::from(plan.nw) * 4, storage),
            meta: mk("meta", plan.meta_words() * 4, storage),
            acc: mk(
                "acc",
                sched.acc_slots * JAC_WORDS as u64 * 4,
                storage | wgpu::BufferUsages::COPY_SRC,
            ),
            keys: mk("keys", plan.keys_words() * 4, storage),
            levels: mk(
                "levels",
                sched.levels.len() as u64 * self.level_stride(),
                storage,
            ),
            readback: mk(
                "readback",
                chunks as u64 * u64::from(plan.nw) * JAC_WORDS as u64 * 4,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
        }
    }

    /// 2D workgroup grid covering `threads` invocations (within the limits that
    /// `chunk_points_with` checked).
    fn grid(&self, threads: u64) -> (u32, u32) {
        let groups = threads.div_ceil(u64::from(WORKGROUP_SIZE)).max(1);
        let dim = u64::from(self.ctx.max_workgroups_per_dim().max(1));
        let gx = groups.min(dim);
        (gx as u32, groups.div_ceil(gx) as u32)
    }

    /// Records and submits one chunk; its window sums land in `readback` at `slot`.
    fn submit_chunk(&self, b: &Buffers, plan: &MsmPlan, pts: &[u32], sc: &[u32], slot: u64) {
        let q = &self.ctx.queue;
        let sched = plan.schedule();
        let stride = self.level_stride();
        let mut levels = vec![0u8; (sched.levels.len() as u64 * stride) as usize];
        for (chunk, lv) in levels.chunks_mut(stride as usize).zip(&sched.levels) {
            let bytes = bytemuck::bytes_of(lv);
            if let Some(dst) = chunk.get_mut(..bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        }
        q.write_buffer(&b.params, 0, bytemuck::cast_slice(&plan.params()));
        q.write_buffer(&b.levels, 0, &levels);
        q.write_buffer(&b.points, 0, bytemuck::cast_slice(pts));
        q.write_buffer(&b.scalars, 0, bytemuck::cast_slice(sc));
        let bg = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("msm"),
                layout: &self.layout,
                entries: &[
                    whole(0, &b.params),
                    whole(1, &b.points),
                    whole(2, &b.scalars),
                    whole(3, &b.sorted),
                    whole(4, &b.meta),
                    whole(5, &b.acc),
                    whole(6, &b.keys),
                    wgpu::BindGroupEntry {
                        binding: 7,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &b.levels,
                            offset: 0,
                            size: core::num::NonZeroU64::new(LEVEL_WORDS as u64 * 4),
                        }),
                    },
                ],
            });
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("msm") });
        enc.clear_buffer(&b.meta, 0, None);
        // Empty buckets are never written: all-zero words are the identity (Z = 0).
        enc.clear_buffer(&b.acc, 0, Some(u64::from(plan.tb()) * JAC_WORDS as u64 * 4));
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("msm"),
                timestamp_writes: None,
            });
            for d in &sched.dispatches {
                let Some(pipeline) = self.pipelines.get(d.entry) else {
                    continue;
                };
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bg, &[(d.level as u64 * stride) as u32]);
                let (gx, gy) = if d.threads == 0 {
                    (1, 1)
                } else {
                    self.grid(d.threads)
                };
                pass.dispatch_workgroups(gx, gy, 1);
            }
        }
        let win_bytes = u64::from(plan.nw) * JAC_WORDS as u64 * 4;
        enc.copy_buffer_to_buffer(
            &b.acc,
            sched.win_off * JAC_WORDS as u64 * 4,
            &b.readback,
            slot * win_bytes,
            win_bytes,
        );
        q.submit([enc.finish()]);
    }

    /// `sum scalars[i] * points[i]` on the GPU. PUBLIC data only.
    pub fn vartime_msm(
        &self,
        points: &[Affine<Secp256k1>],
        scalars: &[Scalar],
    ) -> Result<ProjectivePoint, GpuError> {
        self.vartime_msm_tuned(points, scalars, self.window, self.max_chunk)
    }

    /// [`GpuMsm::vartime_msm`] with an explicit window (`None`: by size) and chunk
    /// cap, overriding the instance's settings (tuning, tests). PUBLIC data only.
    pub fn vartime_msm_tuned(
        &self,
        points: &[Affine<Secp256k1>],
        scalars: &[Scalar],
        window: Option<usize>,
        max_chunk: usize,
    ) -> Result<ProjectivePoint, GpuError> {
        if points.len() != scalars.len() {
            return Err(GpuError::LengthMismatch {
                points: points.len(),
                scalars: scalars.len(),
            });
        }
        // Identity points (and their scalars) are dropped here.
        let (xy, sc) = Secp256k1::offload_inputs(points, scalars);
        self.vartime_msm_xy(&xy, &sc, window, max_chunk)
    }

    /// The MSM over points in the engine's neutral offload form (no identities).
    fn vartime_msm_xy(
        &self,
        points: &[Secp256k1Xy],
        scalars: &[Scalar],
        window: Option<usize>,
        max_chunk: usize,
    ) -> Result<ProjectivePoint, GpuError> {
        let window = window.map(|w| w.clamp(2, 16));
        if points.len() != scalars.len() {
            return Err(GpuError::LengthMismatch {
                points: points.len(),
                scalars: scalars.len(),
            });
        }
        // Zero scalars contribute nothing (identity points never get here).
        let live: Vec<(&Secp256k1Xy, [u32; 8])> = points
            .iter()
            .zip(scalars)
            .map(|(p, s)| (p, scalar_words(s)))
            .filter(|(_, w)| w.iter().any(|x| *x != 0))
            .collect();
        let bits = live.iter().map(|(_, w)| bit_len(w)).max().unwrap_or(0);
        if bits == 0 {
            return Ok(ProjectivePoint::IDENTITY);
        }
        let chunk = self.chunk_points_with(live.len(), bits, window, max_chunk.max(1))?;
        let plan_max = MsmPlan::new(chunk, bits, window);
        let nchunks = live.len().div_ceil(chunk);
        let scope_v = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let scope_m = self
            .ctx
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let bufs = self.buffers(&plan_max, nchunks);
        let mut plans = Vec::with_capacity(nchunks);
        // Pack chunk 0, then pack chunk i + 1 while the GPU runs chunk i.
        let mut pieces = live.chunks(chunk);
        let mut next = pieces.next().map(pack);
        let mut slot = 0u64;
        while let Some((pts, sc)) = next.take() {
            let n = sc.len() / 8;
            // Every chunk keeps the window width (and buffer shapes) of the first.
            let plan = MsmPlan {
                n: n as u32,
                ..plan_max
            };
            self.submit_chunk(&bufs, &plan, &pts, &sc, slot);
            plans.push(plan);
            slot += 1;
            next = pieces.next().map(pack);
        }
        let words = read_words(&self.ctx, &bufs.readback, 0, bufs.readback.size());
        let oom = pollster::block_on(scope_m.pop());
        let val = pollster::block_on(scope_v.pop());
        if let Some(e) = oom.or(val) {
            return Err(GpuError::Runtime {
                during: "msm",
                message: e.to_string(),
            });
        }
        let words = words?;
        let per_chunk = plan_max.nw as usize * JAC_WORDS;
        let mut total = ProjectivePoint::IDENTITY;
        for (plan, w) in plans.iter().zip(words.chunks(per_chunk)) {
            total += combine_windows(w, plan.c)?;
        }
        Ok(total)
    }
}

impl VartimeMsmOffload for GpuMsm {
    fn name(&self) -> &str {
        &self.name
    }

    fn vartime_msm_secp256k1(
        &self,
        points: &[Secp256k1Xy],
        scalars: &[Scalar],
    ) -> Result<ProjectivePoint, String> {
        self.vartime_msm_xy(points, scalars, self.window, self.max_chunk)
            .map_err(|e| e.to_string())
    }
}

/// A shared handle, as the engine takes it.
pub(crate) fn shared(m: GpuMsm) -> Arc<dyn VartimeMsmOffload> {
    Arc::new(m)
}

/// A bind group entry binding all of `buf`.
fn whole(binding: u32, buf: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buf.as_entire_binding(),
    }
}

/// Packs a chunk into the shader's word layout (points: x then y; scalars: 8 limbs).
fn pack(chunk: &[(&Secp256k1Xy, [u32; 8])]) -> (Vec<u32>, Vec<u32>) {
    let mut pts = Vec::with_capacity(chunk.len() * POINT_WORDS);
    let mut sc = Vec::with_capacity(chunk.len() * 8);
    for (p, s) in chunk {
        for fe in [p.x, p.y] {
            for limb in fe {
                pts.push(limb as u32);
                pts.push((limb >> 32) as u32);
            }
        }
        sc.extend_from_slice(s);
    }
    (pts, sc)
}

/// Little-endian 32-bit limbs of a scalar.
fn scalar_words(s: &Scalar) -> [u32; 8] {
    let be = s.to_bytes();
    let mut w = [0u32; 8];
    for (i, c) in be.rchunks_exact(4).enumerate() {
        if let (Some(slot), Ok(b)) = (w.get_mut(i), <[u8; 4]>::try_from(c)) {
            *slot = u32::from_be_bytes(b);
        }
    }
    w
}

fn bit_len(w: &[u32; 8]) -> usize {
    w.iter()
        .enumerate()
        .rev()
        .find(|(_, x)| **x != 0)
        .map_or(0, |(i, x)| 32 * i + 32 - x.leading_zeros() as usize)
}

fn limbs_from_words(w: &[u32]) -> Result<[u64; 4], GpuError> {
    let mut l = [0u64; 4];
    for (i, limb) in l.iter_mut().enumerate() {
        let lo = w.get(2 * i).copied();
        let hi = w.get(2 * i + 1).copied();
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Err(GpuError::Readback("short field element".into()));
        };
        *limb = u64::from(lo) | (u64::from(hi) << 32);
    }
    Ok(l)
}

/// A Jacobian point (24 words) from the GPU as a k256 point.
fn jac_to_projective(w: &[u32]) -> Result<ProjectivePoint, GpuError> {
    let (Some(x), Some(y), Some(z)) = (w.get(0..8), w.get(8..16), w.get(16..24)) else {
        return Err(GpuError::Readback("short point".into()));
    };
    let (x, y, z) = (
        limbs_from_words(x)?,
        limbs_from_words(y)?,
        limbs_from_words(z)?,
    );
    // An off-curve result is a kernel bug: refuse it.
    offload::secp256k1_from_jacobian(x, y, z)
        .ok_or_else(|| GpuError::Readback("GPU returned a point off the curve".into()))
}

/// Horner over the window sums: `sum_w 2^(c w) W_w`.
fn combine_windows(words: &[u32], c: u32) -> Result<ProjectivePoint, GpuError> {
    let mut acc = ProjectivePoint::IDENTITY;
    for w in words.chunks(JAC_WORDS).rev() {
        for _ in 0..c {
            acc = acc.double();
        }
        acc += jac_to_projective(w)?;
    }
    Ok(acc)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    //! The schedule (levels, regions, offsets) run through a host model of the
    //! level passes, over integers mod 2^64 in place of points: no GPU needed.
    use super::*;
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
}
