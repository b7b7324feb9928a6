//! Scenario 21 (torn or truncated files): after a network has generated its
//! keys, one node is killed with SIGKILL (inside a block's commit) and its consensus LMDB file cut to half its
//! length (what a full disk, an interrupted copy or a restore that stopped
//! early leave behind). Started on it, the node refuses: it exits with status 1
//! and a message naming the file, both lengths and the remedy, before its RPC
//! port answers anything; it neither crashes on a page past the end of its
//! memory map (SIGBUS, what LMDB alone does) nor serves from the cut file.
//! Its directory restored from a backup taken while it was down, and the
//! tail of its consensus write-ahead log cut in the middle of an entry (a torn
//! last write), it starts, drops the torn entry, catches up with the others and
//! serves its shares again.

#![allow(clippy::unwrap_used)]

mod net;

use std::os::unix::process::ExitStatusExt;

use torus_node::failpoint;

/// The largest file under `dir` whose path contains `part`, and its length.
fn largest_file_under(dir: &std::path::Path, part: &str) -> (std::path::PathBuf, u64) {
    let mut best = (std::path::PathBuf::new(), 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let len = std::fs::metadata(&p).unwrap().len();
                if p.display().to_string().contains(part) && len > best.1 {
                    best = (p, len);
                }
            }
        }
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_store_file_is_truncated_refuses_to_start_and_serves_again_from_a_backup() {
    let dir = net::test_dir();
    let keys = 40;
    let (mut dn, _logs) = net::full_devnet(dir.path(), 5, keys, 20).await;
    let alice = net::login(&dn, "alice@example.com").await;
    let node_dir = dn.opts.data_dir.join("node5");
    // Killed inside a decided block's commit (a failpoint), when the consensus
    // write-ahead log holds the height's messages (a clean stop, or a kill
    // between heights, leaves only its header).
    dn.kill(5).unwrap();
    let mut tries = 0;
    let (wal, wal_len) = loop {
        let (status, _) = net::start_until_exit(
            &mut dn,
            5,
            &[(failpoint::ENV, "block.in_commit:3")],
            60,
            false,
        )
        .await;
        assert_eq!(status.signal(), Some(9), "{status}");
        let (wal, len) = largest_file_under(&node_dir.join("bft"), "wal");
        if len > 40 {
            break (wal, len);
        }
        tries += 1;
        assert!(
            tries < 10,
            "the write-ahead log is never more than its header"
        );
    };
    let lmdb = node_dir.join("lmdb");
    let backup = dir.path().join("node5-lmdb-backup");
    net::copy_dir(&lmdb, &backup);
    let file = lmdb.join("data.mdb");
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let (status, log) = net::start_until_exit(&mut dn, 5, &[], 60, true).await;
    assert_eq!(
        (status.code(), status.signal()),
        (Some(1), None),
        "the node on a truncated store ended with {status}, not a refusal"
    );
    let want = format!("lmdb/data.mdb is truncated: {} bytes", len / 2);
    assert!(log.contains(&want), "no clear refusal in the log: {log}");
    assert!(log.contains("Restore the directory from a backup"), "{log}");

    std::fs::remove_dir_all(&lmdb).unwrap();
    net::copy_dir(&backup, &lmdb);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(wal_len - 7)
        .unwrap();
    let peer_height = net::status(&dn, 1, None).await.unwrap()["height"]
        .as_u64()
        .unwrap();
    dn.start_node(5).unwrap();
    let s = net::wait_until(&dn, 5, 180, "the restored node to catch up", |s| {
        s["height"].as_u64() >= Some(peer_height) && s["shares"].as_u64() >= Some(keys)
    })
    .await;
    assert_eq!(s["blamed"], serde_json::json!([]), "{s}");
    net::assert_same_history(&dn, &[1, 2, 3, 4, 5]).await;
    let shares = net::all_shares(&dn, "alice@example.com").await;
    assert_eq!(
        shares.len(),
        5,
        "every node, the restored one too, serves alice"
    );
    assert!(net::consistent(&shares, 3));
    assert_eq!(
        net::login(&dn, "alice@example.com").await.address,
        alice.address
    );
    dn.shutdown();
}
