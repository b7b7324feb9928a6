//! A committee member that sends garbage, oversized frames, replayed messages
//! and messages for batches that do not exist (the test speaks the wire
//! protocol with node 5's key while node 5's process is not running), and an
//! outsider whose key is not in the node list, and gossiped transactions that
//! are undecodable, forged or larger than a block: every bad input is refused and
//! counted in the node's metrics, and nothing changes: the other four nodes
//! generate keys, agree on the same history and serve logins.

#![allow(clippy::unwrap_used)]

mod net;

use std::io;
use std::time::Duration;

use futures::{AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use torus_node::devnet::{self, Devnet};
use torus_node::p2p::wire::{Frame, Status, WireCodec, PROTOCOL};
use torus_node::p2p::{libp2p_keypair, Message, PointsMsg};
use torus_node::tx::BatchId;

/// Our codec, plus a request kind that announces far more bytes than it sends.
#[derive(Clone)]
struct HostileCodec(WireCodec);

#[derive(Clone, Debug)]
enum Req {
    Frame(Frame),
    /// A frame header claiming this many bytes.
    Claims(u32),
}

#[async_trait::async_trait]
impl request_response::Codec for HostileCodec {
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Status;

    async fn read_request<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        self.0.read_request(p, io).await.map(Req::Frame)
    }
    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Status>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        self.0.read_response(p, io).await
    }
    async fn write_request<T>(&mut self, p: &StreamProtocol, io: &mut T, r: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match r {
            Req::Frame(f) => self.0.write_request(p, io, f).await,
            Req::Claims(n) => {
                io.write_all(&n.to_be_bytes()).await?;
                io.write_all(&[0u8; 64]).await?;
                io.flush().await
            }
        }
    }
    async fn write_response<T>(
        &mut self,
        p: &StreamProtocol,
        io: &mut T,
        s: Status,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.0.write_response(p, io, s).await
    }
}

fn swarm(key: &torus_node::crypto::NodeKey) -> Swarm<request_response::Behaviour<HostileCodec>> {
    let codec = HostileCodec(WireCodec {
        max_bytes: 64 << 20,
        metrics: None,
        budget: None,
    });
    libp2p::SwarmBuilder::with_existing_identity(libp2p_keypair(key).unwrap())
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                codec,
                [(PROTOCOL, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Sends `req` to `peer` and returns its answer (Err on a failed request).
async fn ask(
    s: &mut Swarm<request_response::Behaviour<HostileCodec>>,
    peer: PeerId,
    addr: &Multiaddr,
    req: Req,
) -> Result<Status, String> {
    let id = s
        .behaviour_mut()
        .send_request_with_addresses(&peer, req, vec![addr.clone()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, s.select_next_some())
            .await
            .map_err(|_| "no answer".to_string())?;
        match ev {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) if request_id == id => return Ok(response),
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) if request_id == id => return Err(error.to_string()),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_replayed_and_outsider_messages_are_refused_and_counted() {
    let dir = net::test_dir();
    let mut dn = Devnet::prepare(net::opts(dir.path(), 5, 10, 10))
        .await
        .unwrap();
    let _logs = net::LogsOnPanic(dn.opts.data_dir.clone(), 5);
    for i in 1..=4 {
        dn.start_node(i).unwrap();
    }
    dn.wait_for_keys(10, Duration::from_secs(180), |_| {})
        .await
        .unwrap();
    let target = dn.layout.nodes[0].clone();
    let addr: Multiaddr = devnet::loopback_multiaddr(target.p2p).parse().unwrap();
    let node1 = torus_node::p2p::peer_id(
        &hex::decode(&dn.genesis.nodes[0].pubkey)
            .unwrap()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    let before = net::status(&dn, 1, None).await.unwrap();

    // As member 5: garbage, a replay, a message for a batch that does not exist,
    // and a frame header announcing 1 GiB.
    let key5 = devnet::node_key(&dn.opts.data_dir, 5).unwrap();
    let mut s = swarm(&key5);
    let garbage = Frame {
        id: 1,
        bytes: std::sync::Arc::new(vec![0xde, 0xad, 0xbe, 0xef].into()),
    };
    assert_eq!(
        ask(&mut s, node1, &addr, Req::Frame(garbage)).await,
        Ok(Status::Malformed)
    );
    let bogus = Message::Echo(PointsMsg {
        batch: BatchId {
            epoch: 1,
            start: 1_000_000,
            count: 3,
        },
        dealer: 2,
        digest: [7; 32],
        header: None,
        ready_sig: None,
        points: vec![1, 2, 3].into(),
    });
    let frame = Frame {
        id: 42,
        bytes: std::sync::Arc::new(bogus.encode().into()),
    };
    assert_eq!(
        ask(&mut s, node1, &addr, Req::Frame(frame.clone())).await,
        Ok(Status::Ack)
    );
    assert_eq!(
        ask(&mut s, node1, &addr, Req::Frame(frame)).await,
        Ok(Status::Ack)
    );
    assert!(ask(&mut s, node1, &addr, Req::Claims(1 << 30))
        .await
        .is_err());

    // Mempool poisoning as member 5: an undecodable transaction, one signed by
    // a key that is not member 5's, and a blob larger than any block (17 MiB).
    // Each is acknowledged by the transport, then refused by the mempool.
    let forged = torus_node::tx::SignedTx::sign(
        &torus_node::crypto::NodeKey::random(),
        1,
        5,
        0,
        torus_node::tx::TxBody::KeyAssign {
            verifier: "test".into(),
            verifier_id: "mallory@example.com".into(),
        },
    );
    for (id, tx) in [
        (50, b"junk".to_vec()),
        (51, forged.encode()),
        (52, vec![0u8; 17 << 20]),
    ] {
        let f = Frame {
            id,
            bytes: std::sync::Arc::new(Message::Tx(tx).encode().into()),
        };
        assert_eq!(
            ask(&mut s, node1, &addr, Req::Frame(f)).await,
            Ok(Status::Ack)
        );
    }

    // An outsider: its connection is refused before any message.
    let outsider = torus_node::crypto::NodeKey::random();
    let mut o = swarm(&outsider);
    let ok = Frame {
        id: 7,
        bytes: std::sync::Arc::new(Message::Tx(vec![1]).encode().into()),
    };
    assert!(ask(&mut o, node1, &addr, Req::Frame(ok)).await.is_err());

    // Everything was counted...
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = net::metrics(&dn, 1).await;
    assert!(
        net::metric_sum(
            &m,
            "torus_p2p_in_total",
            "kind=\"undecodable\",outcome=\"malformed\""
        ) >= 1.0,
        "{m}"
    );
    assert!(
        net::metric_sum(
            &m,
            "torus_p2p_in_total",
            "kind=\"echo\",outcome=\"duplicate\""
        ) >= 1.0,
        "{m}"
    );
    assert!(
        net::metric_sum(&m, "torus_p2p_in_total", "outcome=\"oversized\"") >= 1.0,
        "{m}"
    );
    assert!(
        net::metric_sum(
            &m,
            "torus_p2p_in_total",
            "kind=\"connection\",outcome=\"refused\""
        ) >= 1.0,
        "{m}"
    );
    for reason in ["decode", "unauthorized", "too_large"] {
        assert!(
            net::metric_sum(
                &m,
                "torus_mempool_refused_total",
                &format!("reason=\"{reason}\"")
            ) >= 1.0,
            "mempool refusal {reason} not counted: {m}"
        );
    }
    // ...and nothing changed: node 1 keeps its keys and agrees with its peers.
    let after = net::status(&dn, 1, None).await.unwrap();
    assert_eq!(after["keys_created"], before["keys_created"]);
    assert_eq!(after["blamed"], serde_json::json!([]));
    assert!(after["height"].as_u64() >= before["height"].as_u64());
    net::assert_same_history(&dn, &[1, 2, 3, 4]).await;
    net::login(&dn, "dave@example.com").await;
    dn.shutdown();
}
