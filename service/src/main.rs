//! `torus-node`: runs a node, or a local devnet of nodes, from the command line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use torus_node::config::NodeConfig;
use torus_node::devnet::{self, Devnet, DevnetOptions};

#[derive(Parser, Debug)]
#[command(
    name = "torus-node",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TORUS_NODE_COMMIT"), ")"),
    about = "Torus-style threshold key node")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs a node: client JSON-RPC, operator gRPC, metrics, the node-to-node network,
    /// the embedded consensus engine (or the ABCI server for CometBFT) and key generation.
    Run {
        /// Node configuration (TOML); `TORUS_*` environment variables override it.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Creates (or reads) a node key file and prints the node's public key and address.
    Keygen {
        /// Key file to create (mode 0600) or read.
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Checks a configuration file and its genesis, printing the first error.
    CheckConfig {
        /// Node configuration (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Starts a local network of node processes on loopback with a development OIDC
    /// issuer (verifier `devnet`), fills the key buffer, writes DIR/devnet.json and
    /// serves until Ctrl-C. A second start with the same directory resumes that network.
    #[command(args_conflicts_with_subcommands = true)]
    Devnet {
        /// `next-epoch`: hands a running devnet's keys to its next committee.
        #[command(subcommand)]
        action: Option<DevnetAction>,
        /// Number of nodes.
        #[arg(long, default_value_t = 5)]
        nodes: u32,
        /// Keys in the initial buffer.
        #[arg(long, default_value_t = 10_000)]
        keys: u64,
        /// Data directory.
        #[arg(long, default_value = "devnet-data")]
        data_dir: PathBuf,
        /// Extra verifiers: a TOML file of `[[verifiers]]` tables (node config format).
        #[arg(long)]
        verifiers: Option<PathBuf>,
        /// Threshold k (default floor(n/2)+1).
        #[arg(long)]
        k: Option<u32>,
        /// Tolerated faults t (default (n-1)/4).
        #[arg(long)]
        t: Option<u32>,
        /// Keys per batch (default: the hardware profile's).
        #[arg(long)]
        batch_keys: Option<u32>,
        /// Hardware profile for every node.
        #[arg(long)]
        hw_profile: Option<PathBuf>,
        /// Give up if the buffer is not full after this many seconds.
        #[arg(long, default_value_t = 1800)]
        timeout_s: u64,
    },
    /// Logs a user in against a devnet (mints a devnet token, then the whole client
    /// flow) and prints the user's address.
    Login {
        /// The devnet's `devnet.json`.
        #[arg(long)]
        cluster: PathBuf,
        /// Verifier name.
        #[arg(long, default_value = "devnet")]
        verifier: String,
        /// User id (the token's email).
        #[arg(long)]
        user: String,
    },
}

/// What `devnet` does besides running a network.
#[derive(clap::Subcommand, Debug)]
enum DevnetAction {
    /// Hands every key of the devnet running in DATA_DIR to its next committee:
    /// writes the next genesis for its nodes, follows the resharing with a progress
    /// bar, rewrites DATA_DIR/devnet.json for the new committee and exits 0 when the
    /// new committee serves every key.
    NextEpoch {
        /// The running devnet's data directory.
        #[arg(long, default_value = "devnet-data")]
        data_dir: PathBuf,
        /// Members of the next committee (its first N nodes).
        #[arg(long)]
        nodes: u32,
        /// Threshold k (default floor(n/2)+1).
        #[arg(long)]
        k: Option<u32>,
        /// Tolerated faults t (default (n-1)/4).
        #[arg(long)]
        t: Option<u32>,
        /// Indexes replaced by fresh nodes, e.g. `--replace 2,4` (not supported yet).
        #[arg(long, value_delimiter = ',')]
        replace: Vec<u32>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
    },
}

async fn run_next_epoch(o: devnet::next_epoch::NextEpochOptions) -> anyhow::Result<()> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} resharing [{bar:40}] {pos}/{len} keys ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let r = devnet::next_epoch::next_epoch(&o, |p| {
        bar.set_length(p.created);
        bar.set_position(p.reshared);
    })
    .await;
    match r {
        Ok(d) => {
            bar.finish();
            eprintln!(
                "devnet: epoch {} serves: {} nodes (k = {}, t = {}) hold every one of {} keys; changed in {:.1} s; rewrote {}",
                d.epoch,
                d.n,
                d.k,
                d.t,
                d.keys,
                d.secs,
                d.manifest.display()
            );
            Ok(())
        }
        Err(e) => {
            bar.abandon();
            Err(e.into())
        }
    }
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TORUS_LOG")
        .unwrap_or_else(|_| EnvFilter::new(torus_node::devnet::DEFAULT_LOG_FILTER));
    let json = std::env::var("TORUS_LOG_FORMAT")
        .map(|v| v == "json")
        .unwrap_or(false);
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

async fn run(config: PathBuf) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&config)?;
    let node = torus_node::runner::start(cfg).await?;
    node.wait().await.map_err(anyhow::Error::msg)
}

#[allow(clippy::too_many_arguments)]
async fn run_devnet(
    nodes: u32,
    keys: u64,
    data_dir: PathBuf,
    verifiers: Option<PathBuf>,
    k: Option<u32>,
    t: Option<u32>,
    batch_keys: Option<u32>,
    hw_profile: Option<PathBuf>,
    timeout_s: u64,
) -> anyhow::Result<()> {
    let mut opts = DevnetOptions::new(nodes, keys, data_dir, std::env::current_exe()?);
    opts.k = k;
    opts.t = t;
    opts.batch_keys = batch_keys;
    opts.hw_profile = hw_profile;
    if let Ok(f) = std::env::var("TORUS_LOG") {
        opts.log_filter = f;
    }
    if let Some(v) = verifiers {
        opts.extra_verifiers = devnet::read_verifiers(&v)?;
    }
    let started = Instant::now();
    let mut net = Devnet::start(opts).await?;
    eprintln!(
        "devnet: {} nodes (k = {}, t = {}) in {}, batches of {} keys, logs in node*/node.log",
        net.layout.n,
        net.layout.k,
        net.layout.t,
        net.opts.data_dir.display(),
        net.batch_keys()
    );
    let bar = indicatif::ProgressBar::new(keys);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} key buffer [{bar:40}] {pos}/{len} keys ({elapsed}, {per_sec}, ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let waited = tokio::select! {
        r = net.wait_for_keys(keys, Duration::from_secs(timeout_s), |m| bar.set_position(m.min(keys))) => r,
        _ = stop_signal() => {
            bar.abandon();
            net.shutdown();
            return Ok(());
        }
    };
    if let Err(e) = waited {
        bar.abandon();
        net.shutdown();
        return Err(e.into());
    }
    bar.finish();
    let manifest = net.write_manifest()?;
    let secs = started.elapsed().as_secs_f64();
    let hosts = net.torus_hosts();
    eprintln!(
        "devnet: {keys} keys ready in {secs:.1} s; wrote {}\n  log in: torus-node login --cluster {} --verifier devnet --user alice@example.com\n  login page (torus.js in the browser): {}\n  torus.js hosts: metadataHost {}, signerHost {}, allowHost {}\n  operator pages: {}\n  Ctrl-C stops the network",
        manifest.display(),
        manifest.display(),
        net.login_page(),
        hosts.metadata,
        hosts.signer,
        hosts.allow,
        net.dashboards()
            .iter()
            .map(|(i, url)| format!("node {i} {url}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut check = tokio::time::interval(Duration::from_secs(1));
    let mut served = None;
    loop {
        tokio::select! {
            _ = stop_signal() => break,
            _ = check.tick() => {
                if let Err(e) = net.check_alive() {
                    eprintln!("devnet: {e}");
                }
                // `devnet next-epoch` asks for fresh nodes and rewrites it for the
                // new committee.
                if let Err(e) = net.serve_next_epoch() {
                    eprintln!("devnet: next epoch: {e}");
                }
                net.reload_manifest(&mut served);
            }
        }
    }
    eprintln!("devnet: stopping");
    net.shutdown();
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logs();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let r: anyhow::Result<()> = match cli.cmd {
        Cmd::Run { config } => match torus_node::failpoint::check() {
            Ok(armed) => {
                if let Some(a) = armed {
                    tracing::warn!(failpoint = a.name, hit = a.at, "a failpoint is armed: this process kills itself when it reaches it (a crash test)");
                }
                rt.block_on(run(config))
            }
            Err(e) => Err(anyhow::Error::msg(e)),
        },
        Cmd::Keygen { key_file } => torus_node::config::load_or_create_key(&key_file)
            .map(|k| {
                println!("pubkey  {}", hex::encode(k.public().compressed()));
                println!("address {}", k.public().address());
            })
            .map_err(anyhow::Error::from),
        Cmd::CheckConfig { config } => NodeConfig::load(&config)
            .and_then(|c| match &c.node_list {
                Some(nl) => {
                    println!(
                        "ok (the genesis is epoch {} of the NodeList contract {} at {}; not contacted)",
                        nl.epoch, nl.contract, nl.eth_rpc
                    );
                    Ok(())
                }
                None => torus_node::config::Genesis::load(&c.genesis).map(|_| println!("ok")),
            })
            .map_err(anyhow::Error::from),
        Cmd::Devnet {
            action:
                Some(DevnetAction::NextEpoch {
                    data_dir,
                    nodes,
                    k,
                    t,
                    replace,
                    timeout_s,
                }),
            ..
        } => rt.block_on(run_next_epoch(devnet::next_epoch::NextEpochOptions {
            data_dir,
            nodes,
            k,
            t,
            replace,
            timeout: Duration::from_secs(timeout_s),
        })),
        Cmd::Devnet {
            action: None,
            nodes,
            keys,
            data_dir,
            verifiers,
            k,
            t,
            batch_keys,
            hw_profile,
            timeout_s,
        } => rt.block_on(run_devnet(
            nodes, keys, data_dir, verifiers, k, t, batch_keys, hw_profile, timeout_s,
        )),
        Cmd::Login {
            cluster,
            verifier,
            user,
        } => rt.block_on(async {
            let l = devnet::login(&cluster, &verifier, &user).await?;
            println!("address     {}", l.address);
            println!("key index   {}", l.index);
            println!(
                "public key  04{}{}",
                hex::encode(l.public_key.0),
                hex::encode(l.public_key.1)
            );
            Ok(())
        }),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
