//! Generates the operator gRPC code from `proto/operator.proto` (needs `protoc`).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/operator.proto");
    if std::env::var_os("CARGO_FEATURE_SERVER").is_none() {
        return Ok(());
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["proto/operator.proto"], &["proto"])?;
    Ok(())
}
