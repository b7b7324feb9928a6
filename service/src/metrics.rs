//! Prometheus metrics, served as text at `GET /metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of RPC metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// JSON-RPC method (or "invalid").
    pub method: String,
    /// "ok" or the error code.
    pub outcome: String,
}

/// Labels of per-method latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// JSON-RPC method.
    pub method: String,
}

/// Labels of transaction outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TxLabels {
    /// Transaction kind.
    pub kind: String,
    /// Result code name.
    pub code: String,
}

/// Labels of node-to-node message counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct P2pLabels {
    /// Message kind ("send", "echo", ...; "undecodable" when it did not decode).
    pub kind: String,
    /// Inbound: "ok", "malformed", "oversized", "duplicate", "busy", "invalid";
    /// outbound: "acked", "retried", "refused", "dropped".
    pub outcome: String,
}

/// Labels of messages dropped by a bound, and of mempool refusals and drops.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Which bound or why: p2p and keygen ("peer_share", "read_budget", "queue_full",
    /// "answers_queued", "tx_queued", "waiting_points", "early_public_shares",
    /// "unsolicited_commitments", "resync_rate", "proposal_streams"); mempool
    /// ("too_large", "decode", "unauthorized", "quota", ...).
    pub reason: String,
}

/// Labels of the store's size gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbLabels {
    /// LMDB database (`state`, `shares`, `keygen`, `blocks`, ..., `client`).
    pub db: String,
}

/// Labels of the constant `torus_build_info` gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The git commit the binary was built from ([`COMMIT`]).
    pub commit: String,
}

/// The git commit this crate was built from, as `build.rs` found it: 12 hex digits,
/// `+dirty` when tracked files differed, `unknown` outside a git checkout, or the value of
/// `TORUS_BUILD_COMMIT` at build time.
pub const COMMIT: &str = env!("TORUS_NODE_COMMIT");

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Labels of key generation phase timings.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Phase ("deal", "verify_sends", "aggregate", ...).
    pub phase: String,
}

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// RPC requests by method and outcome.
    pub rpc_requests: Family<RpcLabels, Counter>,
    /// RPC latency by method, seconds.
    pub rpc_latency: Family<MethodLabels, Histogram>,
    /// Executed transactions by kind and code.
    pub txs: Family<TxLabels, Counter>,
    /// Committed height.
    pub height: Gauge,
    /// Keys with decided public keys.
    pub keys_created: Gauge,
    /// Keys assigned to users.
    pub keys_assigned: Gauge,
    /// Created keys not yet assigned.
    pub keys_free: Gauge,
    /// Token verification failures by reason.
    pub verify_failures: Family<MethodLabels, Counter>,
    /// Node-to-node messages received, by kind and outcome.
    pub p2p_in: Family<P2pLabels, Counter>,
    /// Node-to-node messages sent, by kind and outcome.
    pub p2p_out: Family<P2pLabels, Counter>,
    /// Connected committee peers.
    pub p2p_peers: Gauge,
    /// Messages waiting for an acknowledgement, over all peers.
    pub p2p_queued: Gauge,
    /// Peer input dropped (or refused as busy) by a bound, by reason.
    pub p2p_dropped: Family<ReasonLabels, Counter>,
    /// Key generation phase durations, seconds.
    pub keygen_phase: Family<PhaseLabels, Histogram>,
    /// Key batches this node finished (shares stored).
    pub keygen_batches: Counter,
    /// Decided batches whose shares this node lacks and asks its peers for.
    pub keygen_recovering: Gauge,
    /// Share records erased because this node left the committee.
    pub shares_erased: Counter,
    /// Complaints this node filed.
    pub complaints_filed: Counter,
    /// Client connections closed on accept because `rpc.max_connections` were open.
    pub rpc_connections_refused: Counter,
    /// Open client connections.
    pub rpc_connections: Gauge,
    /// Transactions the mempool refused, by reason.
    pub mempool_refused: Family<ReasonLabels, Counter>,
    /// Pending transactions the mempool dropped, by reason.
    pub mempool_dropped: Family<ReasonLabels, Counter>,
    /// Client requests refused by their per-address rate limit, by method.
    pub rpc_rate_limited: Family<MethodLabels, Counter>,
    /// Client requests refused because the client store (token records) is full.
    pub client_store_full: Counter,
    /// Token records (commitments and reveals) pruned after their lifetime.
    pub client_records_pruned: Counter,
    /// Bytes of pages each LMDB database occupies (set on every scrape).
    pub store_bytes: Family<DbLabels, Gauge>,
    /// Records in each LMDB database (set on every scrape).
    pub store_entries: Family<DbLabels, Gauge>,
    /// The label value (`moniker`) of this node's consensus engine in malachite's
    /// process-wide metrics registry; set when the engine starts.
    consensus_moniker: std::sync::OnceLock<String>,
    /// Phase durations of the most recent key batches (for `/dashboard`).
    pub batch_timings: std::sync::Mutex<BatchTimings>,
}

/// Batches whose phase durations [`BatchTimings`] keeps.
pub const TIMED_BATCHES: usize = 32;

/// How long one phase of one batch took on this node.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct PhaseTime {
    /// Seconds, summed over the times the phase ran (`verify_send` once per dealer).
    pub seconds: f64,
    /// Times it ran.
    pub times: u32,
}

/// The phases of one batch, in the order they first ran.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct BatchTiming {
    /// First key of the batch.
    pub start: u64,
    /// Phases and their durations.
    pub phases: Vec<(String, PhaseTime)>,
}

/// Phase durations of the last [`TIMED_BATCHES`] batches this node worked on (the oldest
/// goes first), beside the `keygen_phase_seconds` histogram, which sums over all batches.
#[derive(Debug, Default)]
pub struct BatchTimings {
    batches: std::collections::VecDeque<BatchTiming>,
}

impl BatchTimings {
    /// Adds `seconds` of `phase` to the batch starting at `start`.
    pub fn record(&mut self, start: u64, phase: &str, seconds: f64) {
        let at = self.batches.iter().rposition(|b| b.start == start);
        let b = match at {
            Some(i) => &mut self.batches[i],
            None => {
                if self.batches.len() == TIMED_BATCHES {
                    self.batches.pop_front();
                }
                self.batches.push_back(BatchTiming {
                    start,
                    phases: Vec::new(),
                });
                let last = self.batches.len() - 1;
                &mut self.batches[last]
            }
        };
        match b.phases.iter_mut().find(|(p, _)| p == phase) {
            Some((_, t)) => {
                t.seconds += seconds;
                t.times += 1;
            }
            None => b
                .phases
                .push((phase.to_string(), PhaseTime { seconds, times: 1 })),
        }
    }

    /// The batch starting at `start`, if kept.
    pub fn get(&self, start: u64) -> Option<&BatchTiming> {
        self.batches.iter().rev().find(|b| b.start == start)
    }

    /// Batches kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &BatchTiming> {
        self.batches.iter()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers everything under the `torus` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("torus");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: VERSION.to_string(),
                commit: COMMIT.to_string(),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the labels name the version and the git commit of the binary",
            build_info,
        );
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let txs = Family::<TxLabels, Counter>::default();
        let height = Gauge::default();
        let keys_created = Gauge::default();
        let keys_assigned = Gauge::default();
        let keys_free = Gauge::default();
        let verify_failures = Family::<MethodLabels, Counter>::default();
        let p2p_in = Family::<P2pLabels, Counter>::default();
        let p2p_out = Family::<P2pLabels, Counter>::default();
        let p2p_peers = Gauge::default();
        let p2p_queued = Gauge::default();
        let p2p_dropped = Family::<ReasonLabels, Counter>::default();
        let keygen_phase = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 18))
        });
        let keygen_batches = Counter::default();
        let keygen_recovering = Gauge::default();
        let shares_erased = Counter::default();
        let complaints_filed = Counter::default();
        let rpc_connections_refused = Counter::default();
        let rpc_connections = Gauge::default();
        let mempool_refused = Family::<ReasonLabels, Counter>::default();
        let mempool_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "mempool_refused",
            "Transactions the mempool refused to admit, by reason",
            mempool_refused.clone(),
        );
        registry.register(
            "mempool_dropped",
            "Pending transactions the mempool dropped, by reason",
            mempool_dropped.clone(),
        );
        let rpc_rate_limited = Family::<MethodLabels, Counter>::default();
        let client_store_full = Counter::default();
        let client_records_pruned = Counter::default();
        registry.register(
            "rpc_rate_limited",
            "Client requests refused by their per-address rate limit",
            rpc_rate_limited.clone(),
        );
        registry.register(
            "client_store_full",
            "Client requests refused because the client store (token records) is full",
            client_store_full.clone(),
        );
        registry.register(
            "client_records_pruned",
            "Token commitments and reveals pruned after their lifetime",
            client_records_pruned.clone(),
        );
        registry.register(
            "rpc_connections_refused",
            "Client connections closed on accept at the rpc.max_connections limit",
            rpc_connections_refused.clone(),
        );
        registry.register(
            "rpc_connections",
            "Open client connections",
            rpc_connections.clone(),
        );
        registry.register("p2p_in", "Node-to-node messages received", p2p_in.clone());
        registry.register("p2p_out", "Node-to-node messages sent", p2p_out.clone());
        registry.register("p2p_peers", "Connected committee peers", p2p_peers.clone());
        registry.register(
            "p2p_dropped",
            "Peer input dropped or refused by a bound, by reason",
            p2p_dropped.clone(),
        );
        registry.register(
            "p2p_queued",
            "Node-to-node messages awaiting acknowledgement",
            p2p_queued.clone(),
        );
        registry.register(
            "keygen_phase_seconds",
            "Key generation phase durations",
            keygen_phase.clone(),
        );
        registry.register(
            "keygen_batches",
            "Key batches whose shares this node stored",
            keygen_batches.clone(),
        );
        registry.register(
            "keygen_recovering_batches",
            "Decided key batches whose shares this node lacks and is recovering from its peers",
            keygen_recovering.clone(),
        );
        registry.register(
            "shares_erased",
            "Share records this node erased when it left the committee",
            shares_erased.clone(),
        );
        registry.register(
            "complaints_filed",
            "Complaints against dealers this node filed",
            complaints_filed.clone(),
        );
        registry.register(
            "rpc_requests",
            "Client JSON-RPC requests",
            rpc_requests.clone(),
        );
        registry.register(
            "rpc_latency_seconds",
            "Client JSON-RPC latency",
            rpc_latency.clone(),
        );
        registry.register("txs", "Executed consensus transactions", txs.clone());
        registry.register("height", "Committed consensus height", height.clone());
        registry.register(
            "keys_created",
            "Keys with decided public keys",
            keys_created.clone(),
        );
        registry.register(
            "keys_assigned",
            "Keys assigned to users",
            keys_assigned.clone(),
        );
        registry.register(
            "keys_free",
            "Created keys not yet assigned",
            keys_free.clone(),
        );
        let store_bytes = Family::<DbLabels, Gauge>::default();
        let store_entries = Family::<DbLabels, Gauge>::default();
        registry.register(
            "store_bytes",
            "Bytes of pages each LMDB database occupies",
            store_bytes.clone(),
        );
        registry.register(
            "store_entries",
            "Records in each LMDB database",
            store_entries.clone(),
        );
        registry.register(
            "token_verify_failures",
            "Token verification failures by reason",
            verify_failures.clone(),
        );
        Metrics {
            registry,
            rpc_requests,
            rpc_latency,
            txs,
            height,
            keys_created,
            keys_assigned,
            keys_free,
            verify_failures,
            p2p_in,
            p2p_out,
            p2p_peers,
            p2p_queued,
            p2p_dropped,
            keygen_phase,
            keygen_batches,
            keygen_recovering,
            shares_erased,
            complaints_filed,
            rpc_connections_refused,
            rpc_connections,
            mempool_refused,
            mempool_dropped,
            rpc_rate_limited,
            client_store_full,
            client_records_pruned,
            store_bytes,
            store_entries,
            consensus_moniker: std::sync::OnceLock::new(),
            batch_timings: std::sync::Mutex::new(BatchTimings::default()),
        }
    }

    /// Sets the store gauges from `sizes` (see `Store::sizes`).
    pub fn set_store_sizes(&self, sizes: &[crate::store::DbSize]) {
        for d in sizes {
            let l = DbLabels {
                db: d.name.to_string(),
            };
            self.store_bytes
                .get_or_create(&l)
                .set(i64::try_from(d.bytes).unwrap_or(i64::MAX));
            self.store_entries
                .get_or_create(&l)
                .set(i64::try_from(d.entries).unwrap_or(i64::MAX));
        }
    }

    /// Includes the consensus engine's own metrics (malachite's `malachitebft_*`
    /// families for the engine named `moniker`) in [`Metrics::encode`]. The first call
    /// wins: a node runs one engine, restarted under the same name.
    pub fn include_consensus(&self, moniker: &str) {
        let _ = self.consensus_moniker.set(moniker.to_string());
    }

    /// The OpenMetrics text exposition: this node's `torus_*` families, then, once the
    /// consensus engine runs, malachite's families for it.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        if let Some(moniker) = self.consensus_moniker.get() {
            let mut engine = String::new();
            malachitebft_app_channel::app::metrics::export(&mut engine);
            if let Some(body) = s.strip_suffix(EOF) {
                s = format!("{body}{}{EOF}", families_of(&engine, moniker));
            }
        }
        s
    }
}

/// The last line of an OpenMetrics exposition.
const EOF: &str = "# EOF\n";

/// The families of the OpenMetrics text `exposition` whose samples carry the label
/// `moniker="<moniker>"`, without the `# EOF` line.
///
/// Malachite registers its metrics in one registry per process, labelled with the
/// engine's moniker, and registers them again whenever an engine starts: several engines
/// in one process (in-process tests) appear side by side, and a restarted engine repeats
/// each family. So a family counts only with a sample of this engine, and of repeated
/// families the last registered (the running engine's) is kept, in the first one's place.
/// Families without samples yet (a labelled family nobody touched) are left out.
pub fn families_of(exposition: &str, moniker: &str) -> String {
    let label = format!("moniker=\"{moniker}\"");
    // (family name, its lines) in order of appearance.
    let mut blocks: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in exposition.lines() {
        if line == EOF.trim_end() {
            break;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            blocks.push((name, vec![line]));
        } else if let Some((_, lines)) = blocks.last_mut() {
            lines.push(line);
        }
    }
    let ours = |lines: &[&str]| {
        lines
            .iter()
            .any(|l| !l.starts_with('#') && l.contains(&label))
    };
    let mut order: Vec<&str> = Vec::new();
    let mut kept: std::collections::HashMap<&str, &[&str]> = std::collections::HashMap::new();
    for (name, lines) in &blocks {
        if !ours(lines) {
            continue;
        }
        if kept.insert(name, lines).is_none() {
            order.push(name);
        }
    }
    let mut out = String::new();
    for name in order {
        for line in kept[name] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

impl Metrics {
    /// Counts one peer input dropped (or refused as busy) by the bound `reason`.
    pub fn dropped(&self, reason: &str) {
        self.p2p_dropped
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }
}

/// The samples of a family with one label in an exposition text: each line
/// `name{label="VALUE"} x` as `(VALUE, x)`, sorted by VALUE: a family's series
/// come out of the registry in hash order, which differs from run to run (benches and
/// tests read a node's `/metrics` with it).
pub fn labelled_samples(text: &str, name: &str, label: &str) -> Vec<(String, f64)> {
    let prefix = format!("{name}{{{label}=\"");
    let mut samples: Vec<(String, f64)> = text
        .lines()
        .filter_map(|line| {
            let (value, x) = line.strip_prefix(prefix.as_str())?.split_once("\"} ")?;
            Some((value.to_string(), x.trim().parse().ok()?))
        })
        .collect();
    samples.sort_by(|a, b| a.0.cmp(&b.0));
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_sizes_are_read_back_from_the_exposition_by_database() {
        let m = Metrics::new();
        m.set_store_sizes(&[
            crate::store::DbSize {
                name: "state",
                entries: 3,
                bytes: 4096,
            },
            crate::store::DbSize {
                name: "shares",
                entries: 5,
                bytes: 8192,
            },
        ]);
        let text = m.encode();
        let bytes = labelled_samples(&text, "torus_store_bytes", "db");
        assert_eq!(
            bytes,
            [
                ("shares".to_string(), 8192.0),
                ("state".to_string(), 4096.0)
            ],
            "{text}"
        );
        // Another family, and another label of it, are not mixed in.
        let entries = labelled_samples(&text, "torus_store_entries", "db");
        assert_eq!(entries.len(), 2);
        assert!(labelled_samples(&text, "torus_store_bytes", "name").is_empty());
    }

    #[test]
    fn the_exposition_names_the_version_and_commit_in_build_info() {
        let text = Metrics::new().encode();
        let line = format!("torus_build_info{{version=\"{VERSION}\",commit=\"{COMMIT}\"}} 1");
        assert!(text.contains(&line), "{text}");
        assert!(!COMMIT.is_empty());
    }

    const ENGINES: &str = "# HELP malachitebft_core_consensus_height Current height.
# TYPE malachitebft_core_consensus_height gauge
malachitebft_core_consensus_height{moniker=\"0xa\"} 7
# HELP malachitebft_core_consensus_height Current height.
# TYPE malachitebft_core_consensus_height gauge
malachitebft_core_consensus_height{moniker=\"0xb\"} 9
# HELP malachitebft_core_consensus_round Current round.
# TYPE malachitebft_core_consensus_round gauge
malachitebft_core_consensus_round{moniker=\"0xa\"} 0
# HELP malachitebft_sync_requests Requests.
# TYPE malachitebft_sync_requests counter
# HELP malachitebft_core_consensus_height Current height.
# TYPE malachitebft_core_consensus_height gauge
malachitebft_core_consensus_height{moniker=\"0xa\"} 12
# EOF
";

    #[test]
    fn only_this_engines_consensus_families_are_kept_and_a_restart_replaces_the_old_ones() {
        let text = families_of(ENGINES, "0xa");
        assert_eq!(
            text,
            "# HELP malachitebft_core_consensus_height Current height.
# TYPE malachitebft_core_consensus_height gauge
malachitebft_core_consensus_height{moniker=\"0xa\"} 12
# HELP malachitebft_core_consensus_round Current round.
# TYPE malachitebft_core_consensus_round gauge
malachitebft_core_consensus_round{moniker=\"0xa\"} 0
"
        );
        assert_eq!(families_of(ENGINES, "0xc"), "");
        assert_eq!(families_of("", "0xa"), "");
    }

    #[test]
    fn batch_timings_sum_repeated_phases_and_keep_the_last_batches() {
        let mut t = BatchTimings::default();
        t.record(0, "deal", 1.0);
        t.record(0, "verify_send", 0.25);
        t.record(0, "verify_send", 0.5);
        let b = t.get(0).cloned();
        assert_eq!(
            b.map(|b| b.phases),
            Some(vec![
                (
                    "deal".to_string(),
                    PhaseTime {
                        seconds: 1.0,
                        times: 1
                    }
                ),
                (
                    "verify_send".to_string(),
                    PhaseTime {
                        seconds: 0.75,
                        times: 2
                    }
                ),
            ])
        );
        for start in 1..=TIMED_BATCHES as u64 {
            t.record(start * 100, "deal", 1.0);
        }
        assert_eq!(t.iter().count(), TIMED_BATCHES);
        assert!(t.get(0).is_none());
        assert_eq!(t.iter().next().map(|b| b.start), Some(100));
    }

    #[test]
    fn the_exposition_ends_once_with_eof_after_the_consensus_families() {
        let m = Metrics::new();
        m.include_consensus("0xnot-running");
        let text = m.encode();
        assert!(text.ends_with(EOF), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.contains("torus_build_info"), "{text}");
    }
}
