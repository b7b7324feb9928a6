//! Generates the operator gRPC code from `proto/operator.proto` in pure Rust: `protox` parses
//! the file into a descriptor set and `tonic-prost-build` generates the messages, client and
//! server from it, so the build needs no `protoc`.
//!
//! The encoded descriptor set is also written to `$OUT_DIR/operator_descriptor.bin` (with
//! source info), for gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/operator.proto");
    if std::env::var_os("CARGO_FEATURE_SERVER").is_none() {
        return Ok(());
    }
    let mut compiler = protox::Compiler::new(["proto"])?;
    // Source info carries the .proto comments into the generated docs (as protoc did).
    compiler.include_source_info(true).include_imports(true);
    compiler.open_file("operator.proto")?;
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    std::fs::write(
        out.join("operator_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // What `compile_protos` adds by itself (`compile_fds` does not): generated types
        // are exempt from the workspace's clippy lints.
        .type_attribute(".", "#[allow(clippy::all)]")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
