//! Every shipped hardware profile parses and validates.

use torus_engine::profile::HwProfile;

#[test]
fn every_shipped_profile_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("hw-profiles/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            let p = HwProfile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            names.push(p.name);
        }
    }
    names.sort();
    for want in ["cpu-16core", "cpu-2core", "h100"] {
        assert!(names.iter().any(|n| n == want), "missing {want}: {names:?}");
    }
}
