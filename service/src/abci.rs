//! The consensus app served to CometBFT over ABCI 2.0 (`tendermint-abci`, the
//! v0.38 protocol: CheckTx, FinalizeBlock, Commit, Info, Query).
//!
//! Production alternative to the embedded malachite engine: run CometBFT with
//! `proxy_app = "tcp://<abci.listen>"` and the same genesis committee as its
//! validator set. The app is the same [`crate::app::App`]; only the driver
//! differs. FinalizeBlock executes and stages the block; Commit persists it in
//! one LMDB transaction, so a crash between the two replays the block on the
//! ABCI handshake (Info reports the last persisted height and app hash).

use std::sync::{Arc, Mutex};

use prost::bytes::Bytes;
use serde_json::json;
use tendermint_abci::Application;
use tendermint_proto::v0_38::abci::{
    ExecTxResult, RequestCheckTx, RequestFinalizeBlock, RequestInfo, RequestInitChain,
    RequestQuery, ResponseCheckTx, ResponseCommit, ResponseFinalizeBlock, ResponseInfo,
    ResponseInitChain, ResponseQuery,
};

use crate::app;
use crate::node::NodeState;

/// The ABCI application wrapping a node.
#[derive(Clone)]
pub struct AbciApp {
    node: Arc<NodeState>,
    staged: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl std::fmt::Debug for AbciApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AbciApp")
    }
}

impl AbciApp {
    /// Wraps `node`.
    pub fn new(node: Arc<NodeState>) -> Self {
        AbciApp {
            node,
            staged: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// Query path returning the key indexes of a user (`{"verifier","verifier_id"}`).
pub const QUERY_INDEXES: &str = "GetIndexesFromVerifierID";

impl Application for AbciApp {
    fn info(&self, _request: RequestInfo) -> ResponseInfo {
        let head = self.node.store().head().unwrap_or_default();
        ResponseInfo {
            data: "torus-node".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 1,
            last_block_height: i64::try_from(head.height).unwrap_or(i64::MAX),
            last_block_app_hash: Bytes::from(head.app_hash.to_vec()),
        }
    }

    fn init_chain(&self, _request: RequestInitChain) -> ResponseInitChain {
        // The state was initialised from the node's genesis file at start.
        let head = self.node.store().head().unwrap_or_default();
        ResponseInitChain {
            app_hash: Bytes::from(head.app_hash.to_vec()),
            ..Default::default()
        }
    }

    fn query(&self, request: RequestQuery) -> ResponseQuery {
        if request.path != QUERY_INDEXES {
            return ResponseQuery {
                code: 1,
                log: format!("unknown query path {:?}", request.path),
                ..Default::default()
            };
        }
        let Ok(q) = serde_json::from_slice::<serde_json::Value>(&request.data) else {
            return ResponseQuery {
                code: 1,
                log: "query data is not JSON".into(),
                ..Default::default()
            };
        };
        let v = q.get("verifier").and_then(|v| v.as_str()).unwrap_or("");
        let id = q.get("verifier_id").and_then(|v| v.as_str()).unwrap_or("");
        let found = self
            .node
            .store()
            .snapshot()
            .map_err(|e| e.to_string())
            .and_then(|s| app::assigned_index(&s, v, id).map_err(|e| e.to_string()));
        match found {
            Ok(idx) => {
                let list: Vec<String> = idx.into_iter().map(|i| format!("{i:x}")).collect();
                ResponseQuery {
                    value: Bytes::from(json!(list).to_string().into_bytes()),
                    height: i64::try_from(self.node.store().head().unwrap_or_default().height)
                        .unwrap_or(0),
                    ..Default::default()
                }
            }
            Err(e) => ResponseQuery {
                code: 2,
                log: e,
                ..Default::default()
            },
        }
    }

    fn check_tx(&self, request: RequestCheckTx) -> ResponseCheckTx {
        match self.node.check_tx(&request.tx) {
            Ok(o) => ResponseCheckTx {
                code: o.code as u32,
                log: o.log,
                ..Default::default()
            },
            Err(e) => ResponseCheckTx {
                code: app::TxCode::Invalid as u32,
                log: e.to_string(),
                ..Default::default()
            },
        }
    }

    fn finalize_block(&self, request: RequestFinalizeBlock) -> ResponseFinalizeBlock {
        let txs: Vec<Vec<u8>> = request.txs.iter().map(|t| t.to_vec()).collect();
        let height = u64::try_from(request.height).unwrap_or(0);
        match self.node.finalize(height, &txs) {
            Ok(out) => {
                if let Ok(mut s) = self.staged.lock() {
                    *s = txs;
                }
                ResponseFinalizeBlock {
                    tx_results: out
                        .results
                        .iter()
                        .map(|r| ExecTxResult {
                            code: r.code as u32,
                            log: r.log.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    app_hash: Bytes::from(out.app_hash.to_vec()),
                    ..Default::default()
                }
            }
            Err(e) => {
                // A storage failure must stop the node rather than let it diverge:
                // CometBFT halts when the app cannot finalize.
                tracing::error!(error = %e, height, "FinalizeBlock failed; halting");
                std::process::exit(70);
            }
        }
    }

    fn commit(&self) -> ResponseCommit {
        let txs = self
            .staged
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        if let Err(e) = self.node.commit(&txs) {
            tracing::error!(error = %e, "Commit failed; halting");
            std::process::exit(70);
        }
        ResponseCommit::default()
    }
}

/// Serves `app` on `addr` (blocking; run it on its own thread).
pub fn serve_blocking(app: AbciApp, addr: &str) -> Result<(), Box<tendermint_abci::Error>> {
    let server = tendermint_abci::ServerBuilder::default()
        .bind(addr, app)
        .map_err(Box::new)?;
    tracing::info!(addr = %server.local_addr(), "ABCI server listening");
    server.listen().map_err(Box::new)
}
