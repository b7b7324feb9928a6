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

use k256::elliptic_curve::group::Group;
use k256::{ProjectivePoint, Scalar};
use torus_engine::backend::secp256k1::field::Fe;
use torus_engine::backend::secp256k1::point::Affine;
use torus_engine::VartimeMsmOffload;

use crate::device::{read_words, GpuContext, GpuOptions};
use crate::error::GpuError;
use crate::shaders::{self, JAC_WORDS, POINT_WORDS, SCAN_BLOCK, WORKGROUP_SIZE};

/// Buckets per reduction segment (upper bound; smaller windows use fewer).
const SEG_LEN: u32 = 32;

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
    /// Buckets per reduction segment.
    pub seg_len: u32,
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
            seg_len: SEG_LEN.min(nb),
        }
    }

    fn tb(&self) -> u32 {
        self.nw * self.nb
    }
    fn nblk(&self) -> u32 {
        self.tb().div_ceil(SCAN_BLOCK)
    }
    fn nseg(&self) -> u32 {
        self.nb / self.seg_len
    }
    fn seg_off(&self) -> u32 {
        self.tb()
    }
    fn win_off(&self) -> u32 {
        self.tb() + 2 * self.nw * self.nseg()
    }
    /// Jacobian slots in the `acc` buffer.
    fn acc_slots(&self) -> u64 {
        u64::from(self.win_off()) + u64::from(self.nw)
    }
    /// Words of the `meta` buffer.
    fn meta_words(&self) -> u64 {
        3 * u64::from(self.tb()) + u64::from(self.nblk())
    }

    fn params(&self) -> [u32; 12] {
        [
            self.n,
            self.c,
            self.nw,
            self.nb,
            self.tb(),
            self.nblk(),
            self.seg_len,
            self.nseg(),
            self.seg_off(),
            self.win_off(),
            crate::shaders::SECP256K1_LIMBS as u32,
            0,
        ]
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
            .map(|&(binding, _, read_only)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: if binding == 0 {
                        wgpu::BufferBindingType::Uniform
                    } else {
                        wgpu::BufferBindingType::Storage { read_only }
                    },
                    has_dynamic_offset: false,
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
        let limit = self.ctx.max_binding_bytes();
        let dim = u64::from(self.ctx.max_workgroups_per_dim());
        // Window sizes depend on the chunk size; plan with the largest candidate.
        let mut n = (total.min(max_chunk).max(1)) as u64;
        // Dispatch: n / WG workgroups in a 2D grid of at most dim x dim.
        n = n.min(dim * dim * u64::from(WORKGROUP_SIZE));
        // u32 point references with a sign bit.
        n = n.min(1 << 31);
        loop {
            let plan = MsmPlan::new(n as usize, bits, window);
            let fits = n * (POINT_WORDS as u64) * 4 <= limit
                && n * 32 <= limit
                && n * u64::from(plan.nw) * 4 <= limit
                && plan.meta_words() * 4 <= limit
                && plan.acc_slots() * (JAC_WORDS as u64) * 4 <= limit
                && u64::from(plan.tb().div_ceil(WORKGROUP_SIZE)) <= dim * dim;
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
        Buffers {
            params: mk(
                "params",
                48,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            ),
            points: mk("points", n * POINT_WORDS as u64 * 4, storage),
            scalars: mk("scalars", n * 32, storage),
            sorted: mk("sorted", n * u64::from(plan.nw) * 4, storage),
            meta: mk("meta", plan.meta_words() * 4, storage),
            acc: mk(
                "acc",
                plan.acc_slots() * JAC_WORDS as u64 * 4,
                storage | wgpu::BufferUsages::COPY_SRC,
            ),
            readback: mk(
                "readback",
                chunks as u64 * u64::from(plan.nw) * JAC_WORDS as u64 * 4,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
        }
    }

    /// 2D workgroup grid covering `threads` invocations.
    fn grid(&self, threads: u32) -> (u32, u32) {
        let groups = threads.div_ceil(WORKGROUP_SIZE).max(1);
        let dim = self.ctx.max_workgroups_per_dim().max(1);
        let gx = groups.min(dim);
        (gx, groups.div_ceil(gx))
    }

    /// Records and submits one chunk; its window sums land in `readback` at `slot`.
    fn submit_chunk(&self, b: &Buffers, plan: &MsmPlan, pts: &[u32], sc: &[u32], slot: u64) {
        let q = &self.ctx.queue;
        q.write_buffer(&b.params, 0, bytemuck::cast_slice(&plan.params()));
        q.write_buffer(&b.points, 0, bytemuck::cast_slice(pts));
        q.write_buffer(&b.scalars, 0, bytemuck::cast_slice(sc));
        let bg = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("msm"),
                layout: &self.layout,
                entries: &[
                    (0, &b.params),
                    (1, &b.points),
                    (2, &b.scalars),
                    (3, &b.sorted),
                    (4, &b.meta),
                    (5, &b.acc),
                ]
                .map(|(binding, buf)| wgpu::BindGroupEntry {
                    binding,
                    resource: buf.as_entire_binding(),
                }),
            });
        let mut enc = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("msm") });
        enc.clear_buffer(&b.meta, 0, None);
        let threads = [
            plan.n,                // count_digits
            plan.nblk(),           // scan_local
            0,                     // scan_blocks: one workgroup
            plan.tb(),             // scan_add
            plan.n,                // scatter
            plan.tb(),             // accumulate
            plan.nw * plan.nseg(), // reduce_segments
            plan.nw,               // reduce_windows
        ];
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("msm"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &bg, &[]);
            for (pipeline, t) in self.pipelines.iter().zip(threads) {
                pass.set_pipeline(pipeline);
                let (gx, gy) = if t == 0 { (1, 1) } else { self.grid(t) };
                pass.dispatch_workgroups(gx, gy, 1);
            }
        }
        let win_bytes = u64::from(plan.nw) * JAC_WORDS as u64 * 4;
        enc.copy_buffer_to_buffer(
            &b.acc,
            u64::from(plan.win_off()) * JAC_WORDS as u64 * 4,
            &b.readback,
            slot * win_bytes,
            win_bytes,
        );
        q.submit([enc.finish()]);
    }

    /// `sum scalars[i] * points[i]` on the GPU. PUBLIC data only.
    pub fn vartime_msm(
        &self,
        points: &[Affine],
        scalars: &[Scalar],
    ) -> Result<ProjectivePoint, GpuError> {
        self.vartime_msm_tuned(points, scalars, self.window, self.max_chunk)
    }

    /// [`GpuMsm::vartime_msm`] with an explicit window (`None`: by size) and chunk
    /// cap, overriding the instance's settings (tuning, tests). PUBLIC data only.
    pub fn vartime_msm_tuned(
        &self,
        points: &[Affine],
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
        // Identity points and zero scalars contribute nothing.
        let live: Vec<(&Affine, [u32; 8])> = points
            .iter()
            .zip(scalars)
            .filter(|(p, _)| !p.infinity)
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
        points: &[Affine],
        scalars: &[Scalar],
    ) -> Result<ProjectivePoint, String> {
        self.vartime_msm(points, scalars).map_err(|e| e.to_string())
    }
}

/// A shared handle, as the engine takes it.
pub(crate) fn shared(m: GpuMsm) -> Arc<dyn VartimeMsmOffload> {
    Arc::new(m)
}

/// Packs a chunk into the shader's word layout (points: x then y; scalars: 8 limbs).
fn pack(chunk: &[(&Affine, [u32; 8])]) -> (Vec<u32>, Vec<u32>) {
    let mut pts = Vec::with_capacity(chunk.len() * POINT_WORDS);
    let mut sc = Vec::with_capacity(chunk.len() * 8);
    for (p, s) in chunk {
        for fe in [&p.x, &p.y] {
            for limb in fe.normalize().0 {
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

fn fe_from_words(w: &[u32]) -> Result<Fe, GpuError> {
    let mut l = [0u64; 4];
    for (i, limb) in l.iter_mut().enumerate() {
        let lo = w.get(2 * i).copied();
        let hi = w.get(2 * i + 1).copied();
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Err(GpuError::Readback("short field element".into()));
        };
        *limb = u64::from(lo) | (u64::from(hi) << 32);
    }
    Ok(Fe(l))
}

/// A Jacobian point (24 words) from the GPU as a k256 point.
fn jac_to_projective(w: &[u32]) -> Result<ProjectivePoint, GpuError> {
    let (Some(x), Some(y), Some(z)) = (w.get(0..8), w.get(8..16), w.get(16..24)) else {
        return Err(GpuError::Readback("short point".into()));
    };
    let (x, y, z) = (fe_from_words(x)?, fe_from_words(y)?, fe_from_words(z)?);
    if bool::from(z.is_zero()) {
        return Ok(ProjectivePoint::IDENTITY);
    }
    let zi = z.invert();
    let zi2 = zi.square();
    let a = Affine::new_unchecked(x.mul(&zi2), y.mul(&zi2.mul(&zi)));
    let p = a.to_projective();
    // An off-curve result (a kernel bug) maps to the identity in to_k256; refuse it.
    if bool::from(p.is_identity()) {
        return Err(GpuError::Readback(
            "GPU returned a point off the curve".into(),
        ));
    }
    Ok(p)
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
