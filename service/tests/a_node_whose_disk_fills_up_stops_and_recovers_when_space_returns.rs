//! Scenario 21 (a write that fails after N bytes): node 5's consensus store lives
//! on a filesystem of its own (a tmpfs mounted by the test in a private mount
//! namespace), filled with a ballast file until only N bytes are free, N drawn
//! from a seeded generator (`TORUS_DISK_SEED=S` replays another draw). While the
//! network generates keys, the node's LMDB writes fail as its store grows (LMDB
//! reports the short write as an I/O error). The node must stop with a clear
//! error (exit status 1, the failed write and the room left in its last line),
//! not crash on a signal, and not go on serving a state that no longer moves. The other four keep deciding blocks. With the ballast
//! removed, the node starts on the same data, catches up and holds a share of
//! every key, with the same app hash as the others at every height and shares
//! on one polynomial with theirs.
//!
//! Needs root (or CAP_SYS_ADMIN) for the mount namespace; skips with a notice
//! otherwise, unless `TORUS_REQUIRE_NETNS=1` (namespaces required; CI sets it).

#![allow(clippy::unwrap_used)]

mod net;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Instant;

use nix::mount::{mount, MsFlags};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use torus_node::devnet::Devnet;

/// A private mount namespace for this thread and what it starts (threads,
/// node processes); nothing mounted in it is seen outside or outlives it.
fn enter_private_mounts() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))
}

fn free_bytes(dir: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(dir).unwrap();
    s.blocks_available() * s.fragment_size()
}

#[test]
fn a_node_whose_disk_fills_up_stops_with_a_clear_error_and_recovers_when_space_returns() {
    net::run_in_namespace(enter_private_mounts(), "the full disk", full_disk);
}

async fn full_disk() {
    let seed: u64 = std::env::var("TORUS_DISK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_207);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Up to 64 KiB free: a few of the store's 4 KiB pages.
    let left = u64::from(rng.next_u32() % (64 << 10));
    eprintln!("disk seed {seed} (TORUS_DISK_SEED): {left} bytes left free");
    let dir = net::test_dir();
    let (nodes, keys) = (5u32, 1500u64);
    let mut dn = Devnet::start(net::opts(dir.path(), nodes, keys, 50))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), nodes);
    net::wait_first_batch(&dn).await;

    // Node 5's store moves onto its own small filesystem, then fills it.
    dn.stop(5).unwrap();
    let lmdb = dn.node_dir(5).join("lmdb");
    let aside = dir.path().join("node5-lmdb");
    std::fs::rename(&lmdb, &aside).unwrap();
    std::fs::create_dir(&lmdb).unwrap();
    mount(
        Some("tmpfs"),
        &lmdb,
        Some("tmpfs"),
        MsFlags::empty(),
        Some("size=32m"),
    )
    .unwrap();
    net::copy_dir(&aside, &lmdb);
    let ballast = lmdb.join("ballast");
    let mut f = std::fs::File::create(&ballast).unwrap();
    let chunk = vec![0x5a_u8; 1 << 20];
    while free_bytes(&lmdb) > left {
        let n = (free_bytes(&lmdb) - left).min(chunk.len() as u64) as usize;
        if f.write_all(&chunk[..n]).is_err() {
            break;
        }
        f.sync_all().unwrap();
    }
    drop(f);
    let free = free_bytes(&lmdb);
    assert!(free <= left + 4096, "{free} bytes free, wanted {left}");

    let t0 = Instant::now();
    let (status, log) = net::start_until_exit(&mut dn, 5, &[], 180, false).await;
    eprintln!(
        "node 5 stopped {:?} after its start on a full disk",
        t0.elapsed()
    );
    assert_eq!(
        (status.code(), status.signal()),
        (Some(1), None),
        "node 5 ended with {status} on a full disk, not with an error"
    );
    // LMDB reports a short write on a full disk as an I/O error; the node adds
    // the room left where it writes.
    let last = log
        .lines()
        .rev()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("node 5 did not end with an error line: {log}"));
    assert!(
        last.contains("consensus halted") && last.contains("lmdb"),
        "{last}"
    );
    let free: u64 = last
        .split("bytes free")
        .next()
        .and_then(|s| s.rsplit(' ').nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the error does not say how much room is left: {last}"));
    assert!(free <= left + 4096, "{last}");
    eprintln!("node 5's last line: {last}");

    // The others go on without it.
    let h = net::status(&dn, 1, None).await.unwrap()["height"]
        .as_u64()
        .unwrap();
    net::wait_until(&dn, 1, 60, "four nodes to decide without node 5", |s| {
        s["height"].as_u64() >= Some(h + 3)
    })
    .await;

    // Space returns: the node continues from what it had written.
    std::fs::remove_file(&ballast).unwrap();
    dn.start_node(5).unwrap();
    net::assert_nothing_lost(&dn, nodes, keys).await;
    dn.shutdown();
    let _ = nix::mount::umount2(&lmdb, nix::mount::MntFlags::MNT_DETACH);
}
