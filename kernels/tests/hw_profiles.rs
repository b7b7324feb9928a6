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

/// A shipped profile is either what `torus-bench calibrate` wrote on a named machine (its
/// description records the date, commit, CPU model and cores, and the key buffer follows
/// calibrate's rule of 2x and 10x `batch_keys`), or says plainly that it is not measured.
#[test]
fn every_shipped_profile_is_calibrated_or_says_it_is_not_measured() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles");
    let mut measured = 0;
    for entry in std::fs::read_dir(&dir).expect("hw-profiles/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let p = HwProfile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let d = &p.description;
        let Some(run) = d.strip_prefix("measured by torus-bench calibrate on ") else {
            assert!(
                d.contains("not measured"),
                "{}: neither calibrated nor marked not measured: {d}",
                path.display()
            );
            continue;
        };
        let date = run.get(..10).unwrap_or_default();
        assert!(
            date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
            "{}: no date: {d}",
            path.display()
        );
        assert!(
            run.contains(" at commit "),
            "{}: no commit: {d}",
            path.display()
        );
        assert!(
            run.contains(" cores): "),
            "{}: no core count: {d}",
            path.display()
        );
        let k = p.batch_keys as u64;
        assert_eq!(
            (p.key_buffer.low_watermark, p.key_buffer.high_watermark),
            (2 * k, 10 * k),
            "{}: the key buffer is not calibrate's",
            path.display()
        );
        measured += 1;
    }
    assert!(
        measured >= 1,
        "at least the development VM's profile is measured"
    );
}
