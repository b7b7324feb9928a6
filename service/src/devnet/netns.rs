//! A devnet whose nodes run on separate hosts: each node in its own Linux network
//! namespace, every link between them through a relay that delays, jitters and loses
//! traffic ([`super::link`]). For the benches and tests of issue #14; needs root (or
//! `CAP_NET_ADMIN` and `CAP_SYS_ADMIN`) and `ip` from iproute2.
//!
//! The layout, all of it private to the calling process:
//!
//! * the process itself moves into a fresh network namespace
//!   ([`enter_private_network`], before it starts any thread), holding the bridge
//!   `tbr0` at [`DRIVER_IP`]: the devnet's issuer, torus.js hosts, relays and clients;
//! * node `i` gets the namespace `torus-PID-i` with `eth0` at `10.77.0.i/32`, the other
//!   end of a veth pair on the bridge, and one route, to the bridge's address; its
//!   process starts through `ip netns exec`;
//! * node `i` dials node `j` (p2p and consensus) at a relay on the bridge, one per
//!   directed link and transport, that forwards to node `j`'s address; clients reach
//!   each node's JSON-RPC through a relay of their own. So every byte between two
//!   hosts crosses one shaped link, and a round trip costs twice its delay.
//!
//! Nothing leaves the machine: the bridge has no route out and the host's own network
//! namespace is never touched. The bridge and the veth ends go away with the process's
//! namespace; the named node namespaces are deleted when the [`Lan`] drops, and ones
//! left by a killed process are deleted by the next [`Lan::create`].

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use super::link::{LinkShape, ShapedRelay};
use super::{Devnet, DevnetError, DevnetOptions, NodeHost, Placement};

/// The bridge's (the devnet process's) address.
pub const DRIVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);
/// Most nodes one LAN holds (`10.77.0.1` to `10.77.0.200`).
pub const MAX_NODES: u32 = 200;
const NAME_PREFIX: &str = "torus-";

/// Why the hosts could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Network namespaces cannot be made here (no privilege, no `ip`): tests skip.
    #[error("network namespaces are unavailable here: {0}")]
    Unavailable(String),
    /// A step failed.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// What it printed.
        stderr: String,
    },
    /// Misuse (see the message).
    #[error("{0}")]
    Usage(String),
}

impl From<NetnsError> for DevnetError {
    fn from(e: NetnsError) -> Self {
        DevnetError::Invalid(e.to_string())
    }
}

/// The namespace [`enter_private_network`] made (its `net:[inode]` link).
static PRIVATE: OnceLock<String> = OnceLock::new();

fn current_namespace() -> Result<String, NetnsError> {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.display().to_string())
        .map_err(|e| NetnsError::Unavailable(format!("/proc/thread-self/ns/net: {e}")))
}

/// Moves the calling thread into a new, empty network namespace with loopback up.
/// Call it at the start of the process (or of a test), before any thread the devnet
/// uses exists: threads started later by this one (a tokio runtime built after it)
/// inherit the namespace; threads that already exist stay where they were.
pub fn enter_private_network() -> Result<(), NetnsError> {
    if ip_binary().is_none() {
        return Err(NetnsError::Unavailable(
            "`ip` (iproute2) is not installed".into(),
        ));
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetnsError::Unavailable(format!("unshare(CLONE_NEWNET): {e}")))?;
    ip(&["link", "set", "lo", "up"])?;
    let _ = PRIVATE.set(current_namespace()?);
    Ok(())
}

fn ip_binary() -> Option<&'static str> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

fn ip(args: &[&str]) -> Result<(), NetnsError> {
    let bin = ip_binary().ok_or_else(|| NetnsError::Unavailable("no `ip` binary".into()))?;
    let cmd = format!("ip {}", args.join(" "));
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Command {
            cmd: cmd.clone(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetnsError::Command {
            cmd,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Node `i`'s namespace name for process `pid`.
fn namespace_name(pid: u32, i: u32) -> String {
    format!("{NAME_PREFIX}{pid}-{i}")
}

/// The process id in a namespace name of ours (`torus-PID-I`), if it is one.
fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, i) = rest.split_once('-')?;
    i.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Deletes namespaces of ours whose process is gone.
fn reap_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = owner(&name) {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                match ip(&["netns", "del", &name]) {
                    Ok(()) => tracing::info!(namespace = %name, "deleted a stale namespace"),
                    Err(e) => tracing::warn!(error = %e, "could not delete a stale namespace"),
                }
            }
        }
    }
}

/// The hosts: one namespace per node on a bridge in this process's namespace.
#[derive(Debug)]
pub struct Lan {
    names: Vec<String>,
    ips: Vec<Ipv4Addr>,
}

/// Whether a [`Lan`] of this process exists (its addresses and names are fixed, so
/// there is one at a time).
static LIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Lan {
    /// Makes `n` hosts. The calling thread must be in the namespace that
    /// [`enter_private_network`] made (so the bridge never lands in the host's).
    pub fn create(n: u32) -> Result<Lan, NetnsError> {
        if n == 0 || n > MAX_NODES {
            return Err(NetnsError::Usage(format!(
                "a LAN holds 1 to {MAX_NODES} nodes, not {n}"
            )));
        }
        match PRIVATE.get() {
            Some(ns) if *ns == current_namespace()? => {}
            _ => {
                return Err(NetnsError::Usage(
                    "call netns::enter_private_network on this thread before any other \
                     thread starts (the bridge must not be made in the host's namespace)"
                        .into(),
                ))
            }
        }
        if LIVE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(NetnsError::Usage(
                "this process already has a LAN; drop it first".into(),
            ));
        }
        // From here on the drop of `lan` (on any error too) clears LIVE.
        let mut lan = Lan {
            names: Vec::new(),
            ips: Vec::new(),
        };
        reap_stale();
        // Another devnet of this process may have made the bridge already.
        static BRIDGE: OnceLock<Result<(), String>> = OnceLock::new();
        BRIDGE
            .get_or_init(|| {
                ip(&["link", "add", "tbr0", "type", "bridge"])
                    .and_then(|()| ip(&["addr", "add", &format!("{DRIVER_IP}/24"), "dev", "tbr0"]))
                    .and_then(|()| ip(&["link", "set", "tbr0", "up"]))
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(NetnsError::Usage)?;
        let pid = std::process::id();
        for i in 1..=n {
            let name = namespace_name(pid, i);
            let host_end = format!("tv{i}");
            let addr = Ipv4Addr::new(10, 77, 0, i as u8);
            ip(&["netns", "add", &name])?;
            lan.names.push(name.clone());
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &name,
            ])?;
            ip(&["link", "set", &host_end, "master", "tbr0", "up"])?;
            // A host address and one route, to the bridge: a node reaches only the
            // devnet process (and, through its relays, the other nodes), never another
            // node directly, even at an address a peer announces.
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &name, "link", "set", "eth0", "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &name,
                "route",
                "add",
                &format!("{DRIVER_IP}/32"),
                "dev",
                "eth0",
            ])?;
            lan.ips.push(addr);
        }
        Ok(lan)
    }

    /// Where each node runs.
    pub fn placement(&self) -> Placement {
        let bin = ip_binary().unwrap_or("ip").to_string();
        Placement {
            driver: DRIVER_IP,
            nodes: self
                .names
                .iter()
                .zip(&self.ips)
                .map(|(name, ip)| NodeHost {
                    ip: *ip,
                    launcher: vec![bin.clone(), "netns".into(), "exec".into(), name.clone()],
                })
                .collect(),
        }
    }

    /// The namespace names, by node.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for (i, name) in self.names.iter().enumerate() {
            // The veth pair goes with the namespace; the bridge port with it.
            if let Err(e) = ip(&["netns", "del", name]) {
                tracing::warn!(error = %e, "could not delete a namespace");
            }
            let _ = ip(&["link", "del", &format!("tv{}", i + 1)]);
        }
        LIVE.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Every directed link between two nodes, per transport: `(from, to, consensus?)`.
pub type NodeLinks = BTreeMap<(u32, u32, bool), ShapedRelay>;

/// The shaped links of a devnet. Drop it after the [`Devnet`] (whose drop kills the
/// node processes): it deletes the hosts.
#[derive(Debug)]
pub struct Links {
    /// Node to node.
    pub nodes: NodeLinks,
    /// Client to node `i` (`clients[i - 1]`).
    pub clients: Vec<ShapedRelay>,
    /// The hosts, if the nodes run on separate ones (last, so that the relays stop
    /// before the namespaces go).
    pub lan: Option<Lan>,
}

impl Links {
    /// Every link from or to node `i`, both transports.
    pub fn of_node(&self, i: u32) -> impl Iterator<Item = &ShapedRelay> {
        self.nodes
            .iter()
            .filter(move |((from, to, _), _)| *from == i || *to == i)
            .map(|(_, r)| r)
    }
}

/// A devnet of `opts.nodes` nodes, one per host, every link shaped by `shape` (seeded
/// by `seed`), prepared but not started ([`Devnet::start_node`] each node). Needs
/// [`enter_private_network`] first. Per-node tweaks in `opts` still apply.
pub async fn prepare_across_hosts(
    opts: DevnetOptions,
    shape: LinkShape,
    seed: u64,
) -> Result<(Devnet, Links), DevnetError> {
    prepare_linked(opts, shape, seed, true).await
}

/// A devnet whose every link runs through a [`ShapedRelay`] (which can also be cut and
/// reshaped while the network runs): on separate hosts if `across_hosts` (as
/// [`prepare_across_hosts`]), else every node on loopback (no privilege needed).
pub async fn prepare_linked(
    opts: DevnetOptions,
    shape: LinkShape,
    seed: u64,
    across_hosts: bool,
) -> Result<(Devnet, Links), DevnetError> {
    let n = opts.nodes;
    let lan = if across_hosts {
        Some(Lan::create(n)?)
    } else {
        None
    };
    let relay_ip = if across_hosts {
        DRIVER_IP
    } else {
        Ipv4Addr::LOCALHOST
    };
    let relay = |salt: u64| {
        ShapedRelay::bind(
            SocketAddr::from((relay_ip, 0)),
            shape,
            seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    };
    let bind_err = |e: std::io::Error| DevnetError::Io {
        what: "bind a link relay".into(),
        err: e,
    };
    let mut nodes = NodeLinks::new();
    for from in 1..=n {
        for to in (1..=n).filter(|t| *t != from) {
            for consensus in [false, true] {
                let salt = (u64::from(from) << 33) | (u64::from(to) << 1) | u64::from(consensus);
                nodes.insert((from, to, consensus), relay(salt).await.map_err(bind_err)?);
            }
        }
    }
    let mut clients = Vec::new();
    for i in 1..=n {
        clients.push(relay(u64::MAX - u64::from(i)).await.map_err(bind_err)?);
    }
    let mut opts = opts;
    opts.placement = lan.as_ref().map(Lan::placement);
    let earlier = opts.tweak.clone();
    let mut dn = Devnet::prepare(opts).await?;
    for ((_, to, consensus), r) in &nodes {
        let p = dn.ports(*to)?;
        let port = if *consensus { p.consensus } else { p.p2p };
        r.set_target(SocketAddr::from((dn.node_ip(*to), port)));
    }
    let mut urls = Vec::new();
    for (i, r) in (1..=n).zip(&clients) {
        let p = dn.ports(i)?;
        r.set_target(SocketAddr::from((dn.node_ip(i), p.rpc)));
        urls.push(format!("http://{}/jrpc", r.addr()));
    }
    dn.route_clients_through(urls)?;
    let addrs: BTreeMap<(u32, u32, bool), String> =
        nodes.iter().map(|(k, r)| (*k, r.multiaddr())).collect();
    dn.set_tweak(Arc::new(move |i, cfg| {
        if let Some(t) = &earlier {
            t(i, cfg);
        }
        for ((from, to, consensus), a) in &addrs {
            if *from != i {
                continue;
            }
            let map = if *consensus {
                &mut cfg.consensus.peer_addrs
            } else {
                &mut cfg.p2p.peer_addrs
            };
            map.insert(to.to_string(), a.clone());
        }
    }))?;
    Ok((
        dn,
        Links {
            nodes,
            clients,
            lan,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespace_names_of_ours_with_a_process_id_are_reaped() {
        assert_eq!(owner(&namespace_name(4242, 3)), Some(4242));
        assert_eq!(owner("torus-4242-x"), None);
        assert_eq!(owner("torus-abc-1"), None);
        assert_eq!(owner("cni-1234-1"), None);
        assert_eq!(owner("torus-4242"), None);
    }

    #[test]
    fn a_lan_is_not_made_outside_a_private_namespace() {
        // This test thread never entered one: the bridge must not land in the host's
        // namespace.
        let e = Lan::create(2).unwrap_err();
        assert!(matches!(e, NetnsError::Usage(_)), "{e}");
    }
}
