//! `GpuMsm`: the device, the compiled pipelines, the buffers and the dispatch of
//! every chunk.

use k256::{ProjectivePoint, Scalar};
use torus_engine::offload::Secp256k1Xy;
use torus_engine::{Affine, Secp256k1};

use super::plan::MsmPlan;
use super::words::{bit_len, combine_windows, pack, scalar_words, whole};
use crate::device::{read_words, GpuContext, GpuOptions};
use crate::error::GpuError;
use crate::shaders::{self, BindingKind, JAC_WORDS, LEVEL_WORDS, POINT_WORDS, WORKGROUP_SIZE};

/// The GPU MSM: a device, the compiled pipelines and the chunking limits.
pub struct GpuMsm {
    ctx: GpuContext,
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<wgpu::ComputePipeline>,
    pub(super) window: Option<usize>,
    pub(super) max_chunk: usize,
    pub(super) name: String,
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
    pub(super) fn vartime_msm_xy(
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
