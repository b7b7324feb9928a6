//! The request-response framing of node-to-node messages.
//!
//! Request: `u32 length ‖ u64 message id ‖ message` (length covers id and
//! message); the length is checked against the limit before anything is
//! allocated. Response: one status byte ([`Status`]).

use std::io;
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use zeroize::Zeroizing;

/// Protocol id (version 1 of our framing and message set).
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/torus-node/avss/1");

/// An outgoing request: message id and encoded message (shared with the retry queue).
#[derive(Clone, Debug)]
pub struct Frame {
    /// Sender-chosen random id; receivers drop duplicates by it.
    pub id: u64,
    /// The encoded [`super::Message`] (may hold secrets: zeroized on drop).
    pub bytes: Arc<Zeroizing<Vec<u8>>>,
}

/// What the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Taken (or already seen): do not send again.
    Ack,
    /// Does not decode: sending it again will not help.
    Malformed,
    /// The receiver's queue is full: try again later.
    Busy,
}

/// The codec, with the largest accepted request.
#[derive(Clone)]
pub struct WireCodec {
    /// Largest request body accepted, bytes.
    pub max_bytes: usize,
    /// Where refused frames are counted (`p2p_in{kind="undecodable"}`): a frame
    /// refused while it is read never reaches the behaviour as an event.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for WireCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireCodec(max {} bytes)", self.max_bytes)
    }
}

impl WireCodec {
    fn refused(&self, outcome: &str) {
        if let Some(m) = &self.metrics {
            m.p2p_in
                .get_or_create(&crate::metrics::P2pLabels {
                    kind: "undecodable".to_string(),
                    outcome: outcome.to_string(),
                })
                .inc();
        }
        tracing::warn!(outcome, "inbound frame refused");
    }
}

fn too_large(n: usize, max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("message of {n} bytes exceeds the limit of {max}"),
    )
}

// libp2p-request-response 0.29 (libp2p 0.56, the version malachite uses) declares the codec
// with `async_trait`.
#[async_trait::async_trait]
impl libp2p::request_response::Codec for WireCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Status;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n < 8 {
            self.refused("malformed");
            return Err(io::Error::new(io::ErrorKind::InvalidData, "short frame"));
        }
        if n > self.max_bytes {
            self.refused("oversized");
            return Err(too_large(n, self.max_bytes));
        }
        let mut id = [0u8; 8];
        io.read_exact(&mut id).await?;
        let mut bytes = Zeroizing::new(vec![0u8; n - 8]);
        io.read_exact(&mut bytes).await?;
        Ok(Frame {
            id: u64::from_be_bytes(id),
            bytes: Arc::new(bytes),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Status>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut b = [0u8; 1];
        io.read_exact(&mut b).await?;
        match b[0] {
            0 => Ok(Status::Ack),
            1 => Ok(Status::Malformed),
            2 => Ok(Status::Busy),
            _ => Err(io::Error::new(io::ErrorKind::InvalidData, "bad status")),
        }
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, f: Frame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let n = f.bytes.len() + 8;
        if n > self.max_bytes {
            return Err(too_large(n, self.max_bytes));
        }
        let len = u32::try_from(n).map_err(|_| too_large(n, self.max_bytes))?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&f.id.to_be_bytes()).await?;
        io.write_all(&f.bytes).await?;
        io.flush().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        s: Status,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let b = match s {
            Status::Ack => 0u8,
            Status::Malformed => 1,
            Status::Busy => 2,
        };
        io.write_all(&[b]).await?;
        io.flush().await
    }
}
