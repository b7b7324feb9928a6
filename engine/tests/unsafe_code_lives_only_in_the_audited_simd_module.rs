//! `unsafe` is allowed in one module only: the AVX-512 IFMA field arithmetic
//! (`backend/secp256k1/ifma.rs`, whose docs carry the safety argument). The
//! crate root denies `unsafe_code`; this test keeps any other file from
//! opting out.
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn unsafe_code_lives_only_in_the_audited_simd_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "source files found: {}", files.len());
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"));
    let audited = src.join("backend/secp256k1/ifma.rs");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let uses = text.contains("unsafe {")
            || text.contains("unsafe fn")
            || text.contains("allow(unsafe_code)");
        if f == audited {
            assert!(text.contains("# Safety argument"));
        } else {
            assert!(!uses, "{} uses unsafe code", f.display());
        }
    }
}
