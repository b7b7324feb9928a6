//! Build script of `torus-node`:
//!
//! - generates the operator gRPC code from `proto/operator.proto` in pure Rust: `protox`
//!   parses the file into a descriptor set and `tonic-prost-build` generates the messages,
//!   client and server from it, so the build needs no `protoc`. The encoded descriptor set is
//!   also written to `$OUT_DIR/operator_descriptor.bin` (with source info), for gRPC
//!   reflection;
//! - sets `TORUS_NODE_COMMIT` for `env!`: the git commit the crate is built from (12 hex
//!   digits, `+dirty` when tracked files differ from it), `unknown` outside a git checkout,
//!   or the value of `TORUS_BUILD_COMMIT` when that is set (builds from a source tarball).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/operator.proto");
    println!(
        "cargo:rustc-env=TORUS_NODE_COMMIT={}",
        commit(Path::new(&std::env::var("CARGO_MANIFEST_DIR")?))
    );
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

/// The commit of the checkout around `dir`, and the files whose change must rerun this
/// script so that it stays current: HEAD, the branch it points to, the index, and this
/// crate's sources (for the `+dirty` mark).
fn commit(dir: &Path) -> String {
    println!("cargo:rerun-if-env-changed=TORUS_BUILD_COMMIT");
    if let Some(c) = std::env::var("TORUS_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
    {
        return c.trim().to_string();
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]).filter(|h| !h.is_empty()) else {
        return "unknown".into();
    };
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            dir.join(p)
        }
    };
    // Only files that exist: a missing one would rerun the script on every build.
    let watch = |p: PathBuf| {
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    };
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(abs) {
        watch(git_dir.join("HEAD"));
        watch(git_dir.join("index"));
    }
    if let (Some(common), Some(branch)) = (
        git(&["rev-parse", "--git-common-dir"]).map(abs),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        watch(common.join(branch));
        watch(common.join("packed-refs"));
    }
    watch(dir.join("src"));
    watch(dir.join("Cargo.toml"));
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+dirty")
    } else {
        head
    }
}
