//! `torus-node`: runs a node from its configuration file.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use torus_node::config::NodeConfig;
use torus_node::node::{NodeState, Submitter};

#[derive(Parser, Debug)]
#[command(name = "torus-node", version, about = "Torus-style threshold key node")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs a node: client JSON-RPC, operator gRPC, metrics, and the consensus app.
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
    /// Starts a local multi-node network on loopback (the main job; see issue #4).
    Devnet,
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TORUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
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

/// Sends transactions to CometBFT's RPC (`broadcast_tx_sync`).
struct CometSubmitter {
    url: String,
    http: reqwest::Client,
}

impl Submitter for CometSubmitter {
    fn submit(&self, tx: Vec<u8>) -> Result<(), String> {
        let url = format!("{}/broadcast_tx_sync?tx=0x{}", self.url, hex::encode(&tx));
        let http = self.http.clone();
        tokio::spawn(async move {
            match http.get(&url).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = %r.status(), "CometBFT refused a transaction"),
                Err(e) => tracing::warn!(error = %e, "CometBFT unreachable"),
            }
        });
        Ok(())
    }
}

async fn run(config: PathBuf) -> anyhow::Result<()> {
    let cfg = NodeConfig::load(&config)?;
    let node = NodeState::open(cfg.clone())?;
    let index = node.index().ok();
    tracing::info!(
        address = %node.key.public().address(),
        index = ?index,
        data_dir = %cfg.data_dir.display(),
        verifiers = ?node.verifiers.names(),
        hw_profile = %node.profile.name,
        engine = node.engine.backend_name(),
        "node started"
    );
    let rpc = tokio::net::TcpListener::bind(&cfg.rpc.listen).await?;
    tracing::info!(listen = %cfg.rpc.listen, "client JSON-RPC listening");
    let mut tasks = tokio::task::JoinSet::new();
    {
        let node = node.clone();
        tasks.spawn(async move {
            torus_node::rpc::serve(node, rpc)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if !cfg.grpc.listen.is_empty() {
        let l = tokio::net::TcpListener::bind(&cfg.grpc.listen).await?;
        tracing::info!(listen = %cfg.grpc.listen, "operator gRPC listening");
        let node = node.clone();
        tasks.spawn(async move {
            torus_node::grpc::serve(node, l)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    if cfg.abci.listen.is_empty() {
        tracing::warn!(
            "no consensus engine configured: set [abci] listen (CometBFT); the embedded engine comes with the network layer"
        );
    } else {
        let app = torus_node::abci::AbciApp::new(node.clone());
        let addr = cfg.abci.listen.clone();
        node.set_submitter(Arc::new(CometSubmitter {
            url: cfg.abci.cometbft_rpc.clone(),
            http: reqwest::Client::new(),
        }));
        std::thread::spawn(move || {
            if let Err(e) = torus_node::abci::serve_blocking(app, &addr) {
                tracing::error!(error = %e, "ABCI server stopped");
            }
        });
    }
    tokio::select! {
        r = tasks.join_next() => {
            if let Some(Ok(Err(e))) = r { return Err(e); }
        }
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
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
        Cmd::Run { config } => rt.block_on(run(config)),
        Cmd::Keygen { key_file } => torus_node::config::load_or_create_key(&key_file)
            .map(|k| {
                println!("pubkey  {}", hex::encode(k.public().compressed()));
                println!("address {}", k.public().address());
            })
            .map_err(anyhow::Error::from),
        Cmd::CheckConfig { config } => NodeConfig::load(&config)
            .and_then(|c| torus_node::config::Genesis::load(&c.genesis).map(|_| ()))
            .map(|()| println!("ok"))
            .map_err(anyhow::Error::from),
        Cmd::Devnet => {
            eprintln!(
                "torus-node devnet is not available yet: it needs the network layer (issue #4: libp2p AVSS and the embedded BFT engine)."
            );
            return std::process::ExitCode::from(2);
        }
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
