//! The operator gRPC API over a real socket: status, epoch, key buffer, DKG
//! progress, and the progress event stream.

#![allow(clippy::unwrap_used)]

use torus_node::grpc::pb::operator_client::OperatorClient;
use torus_node::grpc::pb::{
    DkgProgressRequest, EpochRequest, KeyBufferRequest, StatusRequest, WatchEventsRequest,
};
use torus_node::testkit::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_api_reports_the_key_buffer_and_streams_events() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(dir.path(), 4, 3, 1).await.unwrap();
    let node = c.node(1).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(torus_node::grpc::serve(node.clone(), l));
    let mut client = OperatorClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let mut events = client
        .watch_events(WatchEventsRequest {})
        .await
        .unwrap()
        .into_inner();

    c.generate_keys(5, 3).await.unwrap();

    let st = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(st.node_index, 1);
    assert!(st.height >= 2);
    assert_eq!(st.app_hash.len(), 32);
    let ep = client.epoch(EpochRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (ep.epoch, ep.n, ep.k, ep.t, ep.nodes.len()),
        (1, 4, 3, 1, 4)
    );
    let kb = client
        .key_buffer(KeyBufferRequest {})
        .await
        .unwrap()
        .into_inner();
    // Five keys asked for; consensus deals at least a batch of 16 (tx::BatchLimits).
    assert_eq!((kb.created, kb.assigned, kb.free), (16, 0, 16));
    let dp = client
        .dkg_progress(DkgProgressRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dp.batches.len(), 1);
    assert_eq!(dp.batches[0].phase, "public keys decided");
    assert_eq!(dp.batches[0].dealers, vec![1, 2, 3, 4]);
    let mut kinds = Vec::new();
    while let Some(e) = events.message().await.unwrap() {
        kinds.push(e.kind.clone());
        if e.kind == "public_keys" {
            break;
        }
    }
    assert!(kinds.contains(&"dealer_set".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"block".to_string()), "{kinds:?}");
    // Metrics reflect the same buffer.
    let m = node.metrics().encode();
    assert!(m.contains("torus_keys_free 16"), "{m}");
    drop(node);
    c.shutdown().await;
}
