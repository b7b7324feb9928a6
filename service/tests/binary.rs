//! The `torus-node` binary: keygen, check-config errors, and `run` serving
//! `/healthz`, `/readyz`, `Ping`, `/metrics` and the operator gRPC (with gRPC health and reflection) on real sockets, a graceful
//! stop on SIGTERM, and `--version`.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_torus-node"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let commit = torus_node::metrics::COMMIT;
    assert_eq!(
        text.trim(),
        format!("torus-node {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_check_config_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // keygen creates a 0600 key and prints its public key.
    let out = bin()
        .args(["keygen", "--key-file"])
        .arg(d.join("data/node.key"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let pubkey = text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("pubkey")
        .trim()
        .to_string();
    let address = text
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("address")
        .trim()
        .to_string();
    let other = torus_node::crypto::NodeKey::random();
    std::fs::write(
        d.join("genesis.toml"),
        format!(
            "chain_id = \"bin-test\"\nepoch = 1\nn = 2\nk = 2\nt = 0\n\n[[nodes]]\nindex = 1\npubkey = \"{pubkey}\"\n\n[[nodes]]\nindex = 2\npubkey = \"{}\"\n",
            hex::encode(other.public().compressed())
        ),
    )
    .unwrap();
    let (rpc, grpc) = (free_port(), free_port());
    let cfg = format!(
        "data_dir = {:?}\ngenesis = \"genesis.toml\"\nhw_profile = {:?}\n[rpc]\nlisten = \"127.0.0.1:{rpc}\"\n[grpc]\nlisten = \"127.0.0.1:{grpc}\"\n",
        d.join("data").to_str().unwrap(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../hw-profiles/cpu-2core.toml")
    );
    std::fs::write(d.join("node.toml"), &cfg).unwrap();
    // A bad port is reported with the field name.
    std::fs::write(
        d.join("bad.toml"),
        cfg.replace(&format!("127.0.0.1:{rpc}"), "127.0.0.1:70000"),
    )
    .unwrap();
    let out = bin()
        .args(["check-config", "--config"])
        .arg(d.join("bad.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rpc.listen"));
    // Every key has an environment override; a mistyped one names its variable, and a
    // valid one is applied before validation.
    let out = bin()
        .args(["check-config", "--config"])
        .arg(d.join("node.toml"))
        .env("TORUS_RPC_MAX_CONNECTIONS", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TORUS_RPC_MAX_CONNECTIONS"));
    let out = bin()
        .args(["check-config", "--config"])
        .arg(d.join("node.toml"))
        .env("TORUS_RPC_MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rpc.max_connections"));
    let out = bin()
        .args(["check-config", "--config"])
        .arg(d.join("node.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = bin()
        .args(["run", "--config"])
        .arg(d.join("node.toml"))
        .env("TORUS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{rpc}");
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
            up = r.status().is_success();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "node did not come up");
    // One node of two, without keys: not ready, and it says why.
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], serde_json::json!(false));
    let reasons = ready["reasons"].to_string();
    assert!(
        reasons.contains("connected to 0 of the 1 committee peers"),
        "{reasons}"
    );
    assert!(reasons.contains("no free key"), "{reasons}");
    let ping: serde_json::Value = http
        .post(format!("{base}/jrpc"))
        .body(r#"{"jsonrpc":"2.0","method":"Ping","id":1,"params":{"message":"x"}}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ping["result"]["message"], serde_json::json!(address));
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("torus_rpc_requests_total"), "{metrics}");
    let build_info = format!(
        "torus_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        torus_node::metrics::COMMIT
    );
    assert!(metrics.contains(&build_info), "{metrics}");
    let mut op = torus_node::grpc::pb::operator_client::OperatorClient::connect(format!(
        "http://127.0.0.1:{grpc}"
    ))
    .await
    .unwrap();
    let st = op
        .status(torus_node::grpc::pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((st.node_index, st.address), (1, address));
    // gRPC health: the server and the operator service are SERVING.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "torus.operator.v1.Operator"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    // gRPC reflection lists the operator and health services and describes them.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut refl = ServerReflectionClient::new(channel);
    let ask = |m: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(m),
    };
    let mut answers = refl
        .server_reflection_info(tokio_stream::iter(vec![
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "torus.operator.v1.Operator".into(),
            )),
        ]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in [
        "torus.operator.v1.Operator",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("no descriptor for the operator service");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    // SIGTERM: a graceful stop (the RPC server drains), exit status 0.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut exited = None;
    for _ in 0..600 {
        if let Some(st) = child.try_wait().unwrap() {
            exited = Some(st);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if exited.is_none() {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(exited.is_some_and(|s| s.success()), "{exited:?} {logs}");
    assert!(
        logs.contains("\"message\":\"RPC server stopped\""),
        "{logs}"
    );
    assert!(logs.contains("\"message\":\"node started\""), "{logs}");
    assert!(logs.contains("\"hw_profile\":\"cpu-2core\""), "{logs}");
}
