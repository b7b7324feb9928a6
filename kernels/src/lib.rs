//! WGSL compute kernels (MSM) and their wgpu host code: filled by the GPU issue.
//! The engine runs entirely on CPU without this crate.
