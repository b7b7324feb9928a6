//! WGSL kernels (filled by the GPU issue).
