//! Adapter discovery and device creation.

use std::sync::Arc;

use crate::error::GpuError;

/// Which adapter to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GpuOptions {
    /// Case-insensitive substring the adapter name must contain (empty: any).
    pub adapter_pattern: String,
    /// Whether software adapters (Mesa's llvmpipe, WARP, SwiftShader) may be
    /// chosen when no pattern names them. Tests set it; nodes should not.
    pub allow_software: bool,
}

impl GpuOptions {
    /// Any adapter, software ones included (hardware preferred): what tests and
    /// CI (llvmpipe) use.
    pub fn any() -> Self {
        GpuOptions {
            adapter_pattern: String::new(),
            allow_software: true,
        }
    }
}

/// One adapter as discovered (for logs and `torus-bench`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name, e.g. `"NVIDIA H100 80GB HBM3"` or `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    pub name: String,
    /// wgpu backend (`"Vulkan"`, `"Metal"`, ...).
    pub backend: String,
    /// Device type (`"DiscreteGpu"`, `"Cpu"`, ...).
    pub device_type: String,
    /// Whether it is a software (CPU) implementation.
    pub software: bool,
}

impl AdapterSummary {
    fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            software: info.device_type == wgpu::DeviceType::Cpu,
        }
    }
}

/// A device and queue, with the adapter's description and limits.
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) adapter: AdapterSummary,
    pub(crate) limits: wgpu::Limits,
}

impl core::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter)
            .finish()
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Every adapter wgpu can see (Vulkan, Metal, DX12).
pub fn list_adapters() -> Vec<AdapterSummary> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::PRIMARY))
        .iter()
        .map(|a| AdapterSummary::of(&a.get_info()))
        .collect()
}

/// Preference order: discrete, integrated, virtual, other, software.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl GpuContext {
    /// Every adapter wgpu can see.
    pub fn adapters() -> Vec<AdapterSummary> {
        list_adapters()
    }

    /// Opens the best adapter allowed by `opts`; an error (never a panic) when
    /// none is available.
    pub fn new(opts: &GpuOptions) -> Result<Self, GpuError> {
        let adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::PRIMARY));
        let seen: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        let pat = opts.adapter_pattern.to_lowercase();
        let chosen = adapters
            .into_iter()
            .filter(|a| {
                let info = a.get_info();
                let named = !pat.is_empty() && info.name.to_lowercase().contains(&pat);
                let software = info.device_type == wgpu::DeviceType::Cpu;
                if !pat.is_empty() {
                    named
                } else {
                    !software || opts.allow_software
                }
            })
            .min_by_key(|a| rank(a.get_info().device_type));
        let Some(adapter) = chosen else {
            let why = if seen.is_empty() && pat.is_empty() {
                "wgpu found no adapter (no Vulkan/Metal/DX12 driver)".to_string()
            } else if seen.is_empty() {
                format!(
                    "wgpu found no adapter (no Vulkan/Metal/DX12 driver), so none named {:?}",
                    opts.adapter_pattern
                )
            } else if pat.is_empty() {
                format!("only software adapters found ({})", seen.join(", "))
            } else {
                format!(
                    "no adapter name contains {:?} (found: {})",
                    opts.adapter_pattern,
                    seen.join(", ")
                )
            };
            return Err(GpuError::NoAdapter(why));
        };
        let info = AdapterSummary::of(&adapter.get_info());
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("torus-kernels"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device {
            adapter: info.name.clone(),
            message: e.to_string(),
        })?;
        // Errors outside our error scopes are logged, never a panic.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            tracing::error!(error = %e, "uncaptured wgpu error");
        }));
        Ok(GpuContext {
            device,
            queue,
            adapter: info,
            limits,
        })
    }

    /// How the limb loops are compiled: constant bounds, unless
    /// `TORUS_KERNELS_LOOPS=rolled` asks for run-time bounds (an experiment: on
    /// llvmpipe it compiled no faster, see `kernels/README.md`).
    pub fn loops(&self) -> crate::shaders::Loops {
        match std::env::var("TORUS_KERNELS_LOOPS").as_deref() {
            Ok("rolled") => crate::shaders::Loops::Rolled,
            _ => crate::shaders::Loops::Unrolled,
        }
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// Largest storage buffer one binding may take, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Largest workgroup count per dispatch dimension.
    pub fn max_workgroups_per_dim(&self) -> u32 {
        self.limits.max_compute_workgroups_per_dimension
    }

    /// Blocks until the queue is idle.
    pub(crate) fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Poll(e.to_string()))
    }

    /// Compiles a WGSL module, capturing validation errors.
    pub(crate) fn module(&self, label: &str, src: &str) -> Result<wgpu::ShaderModule, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let m = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Runtime {
                during: "shader compilation",
                message: e.to_string(),
            });
        }
        Ok(m)
    }

    /// Runs a one-entry-point test kernel that reads two `u32` arrays (bindings 0
    /// and 1) and writes `out_words` words (binding 2), one thread per input
    /// element of `elem_words` words, workgroup size 64, with the uniform
    /// `tparams = (8, 12, 0, 0)` at binding 3. Used by the field tests; build `src`
    /// with [`GpuContext::loops`].
    pub fn run_binary_kernel(
        &self,
        src: &str,
        entry: &str,
        a: &[u32],
        b: &[u32],
        elem_words: usize,
        out_words: usize,
    ) -> Result<Vec<u32>, GpuError> {
        use wgpu::util::DeviceExt;
        let dev = &self.device;
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.module(entry, src)?;
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let buf_a = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("a"),
            contents: bytemuck::cast_slice(a),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let buf_b = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("b"),
            contents: bytemuck::cast_slice(b),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let tparams = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("tparams"),
            contents: bytemuck::cast_slice(&[8u32, 12, 0, 0]),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let out_bytes = (out_words * 4) as u64;
        let out = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("out"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let read = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read"),
            size: out_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buf_a.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: buf_b.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: out.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: tparams.as_entire_binding(),
                },
            ],
        });
        let n = a.len() / elem_words.max(1);
        let mut enc = dev.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups((n as u32).div_ceil(64).max(1), 1, 1);
        }
        enc.copy_buffer_to_buffer(&out, 0, &read, 0, out_bytes);
        self.queue.submit([enc.finish()]);
        let words = read_words(self, &read, 0, out_bytes)?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Runtime {
                during: "test kernel",
                message: format!("{entry}: {e}"),
            });
        }
        Ok(words)
    }
}

/// Maps `len` bytes of `buf` from `offset`, copies them out as words, unmaps.
pub(crate) fn read_words(
    ctx: &GpuContext,
    buf: &wgpu::Buffer,
    offset: u64,
    len: u64,
) -> Result<Vec<u32>, GpuError> {
    let slice = buf.slice(offset..offset + len);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    match rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(GpuError::Readback(e.to_string())),
        Err(e) => return Err(GpuError::Readback(e.to_string())),
    }
    let words = match slice.get_mapped_range() {
        Ok(view) => Ok(bytemuck::pod_collect_to_vec::<u8, u32>(&view)),
        Err(e) => Err(GpuError::Readback(e.to_string())),
    };
    buf.unmap();
    words
}
