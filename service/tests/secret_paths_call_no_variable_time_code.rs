//! Scenario 38: secret scalars never go through variable-time or GPU code.
//!
//! Every module that handles secrets without any public-data work carries the
//! tag line "Secret path: constant-time code only, ..." in its module docs. This
//! test finds the tagged modules of the engine, the kernels and the node, and
//! fails when the code of one of them (comments aside) names a variable-time
//! path (`vartime`), the GPU offload (`offload`, `torus_kernels`, `wgpu`), or
//! when a module that must be tagged lost its tag. Modules that mix secret and
//! public work (`dkg`, `pss`, the node's `crypto`) are not tagged; their
//! variable-time calls take public values only, which their docs say. The
//! timing side is `engine/tests/secret_paths_take_the_same_time_for_any_secret.rs`.

use std::path::{Path, PathBuf};

const TAG: &str = "//! Secret path: constant-time code only";

/// Names no tagged module's code may contain.
const FORBIDDEN: [&str; 4] = ["vartime", "offload", "torus_kernels", "wgpu"];

/// Modules that must carry the tag (the dealing, the fixed-base kernels, the
/// field they run on, secret containers and polynomials, echo points, the
/// node's dealing, recovery and sealed storage).
const MUST_BE_TAGGED: [&str; 15] = [
    "engine/src/avss/deal.rs",
    "engine/src/avss/points.rs",
    "engine/src/secret.rs",
    "engine/src/poly.rs",
    "engine/src/backend/secp256k1/field.rs",
    "engine/src/backend/secp256k1/fixed_base/mod.rs",
    "engine/src/backend/secp256k1/fixed_base/chunk.rs",
    "engine/src/backend/secp256k1/fixed_base/lanes.rs",
    "engine/src/backend/secp256k1/fixed_base/scan.rs",
    "engine/src/backend/secp256k1/fixed_base/small.rs",
    "engine/src/backend/secp256k1/fixed_base/tables.rs",
    "engine/src/backend/bls12_381/fixed_base.rs",
    "service/src/keygen/run/deal.rs",
    "service/src/keygen/recover.rs",
    "service/src/store/sealed.rs",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the service crate lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Whether the module docs (the leading `//!` lines) carry the tag.
fn is_tagged(text: &str) -> bool {
    text.lines()
        .take_while(|l| l.starts_with("//!"))
        .any(|l| l.starts_with(TAG))
}

/// `line: name` for every code line (its `//` comment removed) that names a
/// forbidden path.
fn violations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for name in FORBIDDEN {
            if code.contains(name) {
                out.push(format!("line {}: {name}: {}", i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn tagged_secret_modules_name_no_variable_time_or_gpu_code() {
    let root = workspace();
    let mut files = Vec::new();
    for dir in ["engine/src", "kernels/src", "service/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut tagged = Vec::new();
    let mut bad = Vec::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        if !is_tagged(&text) {
            continue;
        }
        let rel = f
            .strip_prefix(&root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        for v in violations(&text) {
            bad.push(format!("{rel}: {v}"));
        }
        tagged.push(rel);
    }
    let untagged: Vec<&str> = MUST_BE_TAGGED
        .iter()
        .copied()
        .filter(|m| !tagged.iter().any(|t| t == m))
        .collect();
    assert!(
        untagged.is_empty(),
        "secret modules lost their tag: {untagged:?}"
    );
    assert!(
        bad.is_empty(),
        "secret modules name variable-time or GPU code:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_sees_a_variable_time_call_in_code_and_not_in_comments() {
    let text = format!(
        "{TAG}, no calls.\n//! It never calls `vartime_msm` (a doc comment).\nfn f() {{\n    \
         // engine.vartime_msm(..) in a comment\n    let y = engine.vartime_msm(&s, &p); // secret s\n}}\n"
    );
    assert!(is_tagged(&text));
    let v = violations(&text);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].starts_with("line 5: vartime"), "{v:?}");
    assert!(!is_tagged("//! Some module.\nfn f() {}\n"));
}
