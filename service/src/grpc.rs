//! Operator API over gRPC (tonic): status, epoch, key buffer, DKG progress and
//! a stream of progress events. Read-only.
//!
//! The same port serves the standard gRPC health service (`grpc.health.v1.Health`: the
//! server, `""`, and `torus.operator.v1.Operator` are SERVING while it runs) and server
//! reflection (`grpc.reflection.v1`, from the descriptor set `build.rs` writes), so
//! `grpc_health_probe` and `grpcurl` work without the `.proto` file.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::app;
use crate::node::NodeState;

/// Generated protobuf and gRPC code (`proto/operator.proto`).
#[allow(missing_docs, clippy::all, clippy::unwrap_used)]
pub mod pb {
    tonic::include_proto!("torus.operator.v1");
}

use pb::operator_server::{Operator, OperatorServer};

/// Batches `DkgProgress` answers with (the most recent, in key order).
pub const DKG_PROGRESS_BATCHES: usize = 64;

/// The operator service of one node.
#[derive(Clone, Debug)]
pub struct OperatorService {
    node: Arc<NodeState>,
}

impl OperatorService {
    /// Wraps `node`.
    pub fn new(node: Arc<NodeState>) -> Self {
        OperatorService { node }
    }

    /// As a tonic service.
    pub fn into_server(self) -> OperatorServer<Self> {
        OperatorServer::new(self)
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn status(
        &self,
        _r: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        let head = self.node.store().head().map_err(internal)?;
        Ok(Response::new(pb::StatusReply {
            node_index: self.node.index().unwrap_or(0),
            address: self.node.key().public().address(),
            height: head.height,
            app_hash: head.app_hash.to_vec(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime_s: self.node.uptime().as_secs(),
        }))
    }

    async fn epoch(
        &self,
        _r: Request<pb::EpochRequest>,
    ) -> Result<Response<pb::EpochReply>, Status> {
        let e = self.node.epoch().map_err(internal)?;
        Ok(Response::new(pb::EpochReply {
            epoch: e.epoch,
            n: e.n,
            k: e.k,
            t: e.t,
            nodes: e
                .nodes
                .iter()
                .map(|n| pb::NodeInfo {
                    index: n.index,
                    public_key: n.pubkey.to_vec(),
                })
                .collect(),
        }))
    }

    async fn key_buffer(
        &self,
        _r: Request<pb::KeyBufferRequest>,
    ) -> Result<Response<pb::KeyBufferReply>, Status> {
        let snap = self.node.store().snapshot().map_err(internal)?;
        let c = app::counters(&snap).map_err(internal)?;
        Ok(Response::new(pb::KeyBufferReply {
            created: c.last_created,
            assigned: c.last_unassigned,
            free: c.last_created - c.last_unassigned,
        }))
    }

    async fn dkg_progress(
        &self,
        _r: Request<pb::DkgProgressRequest>,
    ) -> Result<Response<pb::DkgProgressReply>, Status> {
        let local = self
            .node
            .store()
            .recent_progress(DKG_PROGRESS_BATCHES)
            .map_err(internal)?;
        let snap = self.node.store().snapshot().map_err(internal)?;
        let mut batches = Vec::new();
        for (start, count, phase) in local {
            let dealers = app::batch_record(&snap, start)
                .map_err(internal)?
                .map(|b| b.dealers.iter().map(|d| d.0).collect())
                .unwrap_or_default();
            batches.push(pb::BatchProgress {
                start,
                count,
                phase,
                dealers,
            });
        }
        Ok(Response::new(pb::DkgProgressReply { batches }))
    }

    type WatchEventsStream = Pin<Box<dyn Stream<Item = Result<pb::ProgressEvent, Status>> + Send>>;

    async fn watch_events(
        &self,
        _r: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let rx = self.node.subscribe_progress();
        let s = BroadcastStream::new(rx).filter_map(|e| match e {
            Ok(e) => Some(Ok(pb::ProgressEvent {
                height: e.height,
                kind: e.kind.to_string(),
                detail: e.detail,
                unix_ms: e.unix_ms,
            })),
            // A slow watcher skips what it missed rather than blocking the node.
            Err(_) => None,
        });
        Ok(Response::new(Box::pin(s)))
    }
}

/// The encoded descriptor set of `proto/operator.proto` (with its comments), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/operator_descriptor.bin"));

/// Serves the operator API, gRPC health and reflection on `listener`.
pub async fn serve(
    node: Arc<NodeState>,
    listener: tokio::net::TcpListener,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<OperatorServer<OperatorService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let mut server = tonic::transport::Server::builder();
    let router = server
        .add_service(OperatorService::new(node).into_server())
        .add_service(health_service);
    let router = match reflection {
        Ok(r) => router.add_service(r),
        Err(e) => {
            tracing::error!(error = %e, "gRPC reflection unavailable: bad descriptor set");
            router
        }
    };
    router
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
}
