//! Issue #14, scenario 33's setting: five nodes on five hosts (a network namespace each,
//! made by the test inside its own), every link between two nodes, and between the
//! client and each node, through a relay with 50 ms of one-way delay, ±10 ms of jitter
//! and 1 % of chunks waiting a retransmission timeout (`devnet::link`): a 100 ms round
//! trip between any two parties. The network must generate its keys, agree on every
//! block and serve logins, and the hosts must really be apart: another namespace per
//! node, no direct route between nodes, and a client round trip of at least 80 ms.
//!
//! Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and `ip` (iproute2); without them
//! it skips with a notice, unless `TORUS_REQUIRE_NETNS=1` (CI sets it).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod net;

use std::time::{Duration, Instant};

use torus_node::devnet::link::LinkShape;
use torus_node::devnet::netns;

#[test]
fn a_network_across_hosts_with_slow_lossy_links_serves_logins() {
    net::run_in_namespace(
        netns::enter_private_network().map_err(|e| e.to_string()),
        "the network across hosts",
        across_hosts,
    );
}

fn namespace_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .display()
        .to_string()
}

async fn across_hosts() {
    let dir = net::test_dir();
    let (n, keys, batch) = (5u32, 150u64, 50u32);
    let shape = LinkShape::from_ms(50, 10, 1.0).unwrap();
    let (mut dn, links) =
        netns::prepare_across_hosts(net::opts(dir.path(), n, keys, batch), shape, 7)
            .await
            .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), n);
    let t0 = Instant::now();
    for i in 1..=n {
        dn.start_node(i).unwrap();
    }

    dn.wait_for_keys(keys, Duration::from_secs(420), |_| {})
        .await
        .unwrap_or_else(|e| panic!("the buffer did not fill across hosts: {e}"));
    let fill = t0.elapsed();

    // Five hosts: each node in a namespace of its own, none in the test's (read once
    // the nodes serve: `ip netns exec` enters the namespace just before it runs the node).
    let ours = std::fs::read_link("/proc/thread-self/ns/net")
        .unwrap()
        .display()
        .to_string();
    let mut spaces: Vec<String> = (1..=n).map(|i| namespace_of(dn.pid(i).unwrap())).collect();
    assert!(
        !spaces.contains(&ours),
        "a node runs in the test's namespace"
    );
    spaces.sort();
    spaces.dedup();
    assert_eq!(spaces.len(), n as usize, "two nodes share a namespace");

    // No node reaches another directly: only the relays carry traffic between them.
    let rpc2 = dn.layout.nodes[1].rpc;
    let direct = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &links.lan.as_ref().unwrap().names()[0],
            "bash",
            "-c",
        ])
        .arg(format!("exec 3<>/dev/tcp/{}/{rpc2}", dn.node_ip(2)))
        .output()
        .unwrap();
    assert!(
        !direct.status.success(),
        "node 1's host opened a connection to node 2 directly"
    );
    // ... while the devnet process does (the control).
    assert!(
        tokio::net::TcpStream::connect((dn.node_ip(2), rpc2))
            .await
            .is_ok(),
        "the test cannot reach node 2 on the bridge"
    );

    // The client's link delays: a JSON-RPC round trip costs at least 2 x (50 - 10) ms.
    let url = dn.endpoints()[0].url.clone();
    let http = reqwest::Client::new();
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "VerifierLookupRequest",
        "params": {"verifier": "devnet", "verifier_id": "nobody@example.com"}});
    let t = Instant::now();
    http.post(&url).json(&body).send().await.unwrap();
    let rtt = t.elapsed();
    assert!(
        rtt >= Duration::from_millis(80),
        "a request through the client's link took {rtt:?}"
    );

    // Logins work and give the same key twice; the shares interpolate.
    let t = Instant::now();
    let first = net::login(&dn, "far@example.com").await;
    let login_time = t.elapsed();
    let again = net::login(&dn, "far@example.com").await;
    assert_eq!(first.address, again.address);
    let shares = net::all_shares(&dn, "far@example.com").await;
    assert!(net::consistent(&shares, dn.layout.k as usize));
    let height = net::assert_same_history(&dn, &(1..=n).collect::<Vec<_>>()).await;
    eprintln!(
        "across hosts (50 ± 10 ms, 1 % loss): {keys} keys in {:.1} s, client round trip {} ms, \
         first login {} ms, {height} blocks agreed",
        fill.as_secs_f64(),
        rtt.as_millis(),
        login_time.as_millis()
    );
    // The nodes go before the hosts.
    drop(dn);
    drop(links);
}
