//! The request-response framing of node-to-node messages.
//!
//! Request: `u32 length ‖ u64 message id ‖ message` (length covers id and
//! message); the length is checked against the limit before anything is
//! allocated, and the body is read into a buffer that grows with the bytes that
//! actually arrive (a peer that announces a large frame and sends nothing holds
//! no memory). Every buffer growth is reserved from a [`ReadBudget`] shared by
//! all peers and streams; a frame that would exceed it is refused (its sender
//! retries). Response: one status byte ([`Status`]).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Bytes of inbound frames being read at once, over every peer and stream.
#[derive(Debug)]
pub struct ReadBudget {
    max: usize,
    used: AtomicUsize,
}

impl ReadBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ReadBudget {
            max,
            used: AtomicUsize::new(0),
        })
    }

    /// Reserves `n` bytes until the guard is dropped, or None over the budget.
    pub fn reserve(self: &Arc<Self>, n: usize) -> Option<Reserved> {
        let mut r = Reserved {
            budget: self.clone(),
            n: 0,
        };
        r.grow(n).then_some(r)
    }

    fn take(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = cur.checked_add(n).filter(|&v| v <= self.max) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes reserved from a [`ReadBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reserved {
    budget: Arc<ReadBudget>,
    n: usize,
}

impl Reserved {
    /// Reserves `extra` more bytes; false (nothing more reserved) over the budget.
    pub fn grow(&mut self, extra: usize) -> bool {
        if !self.budget.take(extra) {
            return false;
        }
        self.n += extra;
        true
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// First allocation for a frame body; it doubles as bytes arrive.
const FIRST_READ: usize = 64 << 10;

/// Why a body could not be read.
enum BodyError {
    Io(io::Error),
    Budget,
}

/// Reads exactly `n` bytes into a buffer that grows (doubling, old copies
/// zeroized) only as the bytes arrive, each growth reserved from `budget`.
async fn read_body<T>(
    io: &mut T,
    n: usize,
    budget: Option<&Arc<ReadBudget>>,
) -> Result<(Zeroizing<Vec<u8>>, Option<Reserved>), BodyError>
where
    T: AsyncRead + Unpin + Send,
{
    let first = n.min(FIRST_READ);
    let mut reserved = match budget {
        Some(b) => Some(b.reserve(first).ok_or(BodyError::Budget)?),
        None => None,
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(first));
    // Bytes allocated (and reserved) so far; the buffer is filled up to it.
    let mut target = first;
    while buf.len() < n {
        let have = buf.len();
        if have == target {
            let next = have.saturating_mul(2).max(FIRST_READ).min(n);
            if let Some(r) = reserved.as_mut() {
                if !r.grow(next - have) {
                    return Err(BodyError::Budget);
                }
            }
            let mut bigger = Zeroizing::new(Vec::with_capacity(next));
            bigger.extend_from_slice(&buf);
            buf = bigger; // the old buffer is zeroized on drop
            target = next;
        }
        buf.resize(target, 0);
        io.read_exact(&mut buf[have..target])
            .await
            .map_err(BodyError::Io)?;
    }
    Ok((buf, reserved))
}

/// The codec, with the largest accepted request.
#[derive(Clone)]
pub struct WireCodec {
    /// Largest request body accepted, bytes.
    pub max_bytes: usize,
    /// Where refused frames are counted (`p2p_in{kind="undecodable"}`): a frame
    /// refused while it is read never reaches the behaviour as an event.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// Bytes of frames being read at once, shared by every stream (None: unbounded,
    /// for tools and tests that speak the protocol).
    pub budget: Option<Arc<ReadBudget>>,
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
        // The reservation ends with the read: from here the bytes count against
        // the sender's inbound share (see `net`).
        let bytes = match read_body(io, n - 8, self.budget.as_ref()).await {
            Ok((b, _reserved)) => b,
            Err(BodyError::Io(e)) => return Err(e),
            Err(BodyError::Budget) => {
                if let Some(m) = &self.metrics {
                    m.dropped("read_budget");
                }
                tracing::debug!(bytes = n, "inbound frame refused: read budget in use");
                return Err(io::Error::other("busy: inbound read budget in use"));
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec as _;

    fn frame(len: u32, body: &[u8]) -> Vec<u8> {
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(&7u64.to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn codec(budget: &Arc<ReadBudget>) -> WireCodec {
        WireCodec {
            max_bytes: 64 << 20,
            metrics: None,
            budget: Some(budget.clone()),
        }
    }

    #[tokio::test]
    async fn a_frame_announcing_more_than_it_sends_holds_only_what_arrived() {
        let budget = ReadBudget::new(1 << 20);
        // Announces 64 MiB, sends 10 bytes: the read fails without reserving (or
        // allocating) more than the first chunk, and gives it back.
        let mut io = futures::io::Cursor::new(frame((64 << 20) - 1, &[1u8; 10]));
        let r = codec(&budget).read_request(&PROTOCOL, &mut io).await;
        assert!(r.is_err());
        assert_eq!(budget.used(), 0);
        // A whole frame reads back and gives its reservation back too.
        let body = vec![5u8; 300 << 10];
        let mut io = futures::io::Cursor::new(frame(8 + body.len() as u32, &body));
        let f = codec(&budget)
            .read_request(&PROTOCOL, &mut io)
            .await
            .unwrap();
        assert_eq!(f.id, 7);
        assert_eq!(&f.bytes[..], &body[..]);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn frames_being_read_are_bounded_by_the_shared_budget() {
        let budget = ReadBudget::new(256 << 10);
        let held = budget.reserve(200 << 10).unwrap();
        let body = vec![5u8; 100 << 10];
        let mut io = futures::io::Cursor::new(frame(8 + body.len() as u32, &body));
        let r = codec(&budget).read_request(&PROTOCOL, &mut io).await;
        assert!(r.unwrap_err().to_string().contains("busy"));
        assert_eq!(budget.used(), 200 << 10);
        drop(held);
        let mut io = futures::io::Cursor::new(frame(8 + body.len() as u32, &body));
        assert!(codec(&budget)
            .read_request(&PROTOCOL, &mut io)
            .await
            .is_ok());
        assert_eq!(budget.used(), 0);
    }
}
