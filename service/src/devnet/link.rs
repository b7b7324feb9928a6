//! Links with delay, jitter and loss, emulated in user space: one TCP relay per
//! directed link of a network whose nodes run on separate hosts ([`super::netns`]).
//!
//! This kernel has no `netem` qdisc, so the relays shape the traffic themselves. What a
//! relay does to each chunk it reads (at most [`CHUNK`] bytes, what the sender had
//! written since the last read), in each direction of a connection:
//!
//! * it holds it for the one-way `delay`, plus or minus up to `jitter` (uniform), never
//!   letting a chunk overtake the one before it (TCP delivers in order: jitter on a
//!   stream shows as late chunks holding up the ones behind them);
//! * with probability `loss` the chunk was "lost" and arrives after a retransmission:
//!   one retransmission timeout later ([`rto`]: Linux's 200 ms floor, or the round trip
//!   plus four times the jitter when that is longer), the way a lost segment holds up
//!   a TCP stream. It is never dropped: the relay carries a stream, and TCP
//!   retransmits.
//!
//! The relay does not cap bandwidth, and loss costs head-of-line stalls, not the
//! smaller congestion window real TCP would also shrink to. The rules are here without
//! I/O ([`Pacer`]); [`ShapedRelay`] applies them to connections.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest chunk a relay reads at once.
pub const CHUNK: usize = 16 * 1024;
/// Chunks a direction of a connection holds while they wait (bounds a relay's memory
/// per connection at `2 × IN_FLIGHT × CHUNK`; a full queue stops the reads, and TCP's
/// flow control stops the sender).
pub const IN_FLIGHT: usize = 256;
/// Connections a relay carries at once; more are refused.
pub const MAX_CONNECTIONS: usize = 256;
/// Linux's minimum retransmission timeout.
pub const RTO_MIN: Duration = Duration::from_millis(200);

/// How a link treats traffic, in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkShape {
    /// One-way delay.
    pub delay: Duration,
    /// Up to this much more or less delay per chunk (uniform).
    pub jitter: Duration,
    /// Probability that a chunk needs a retransmission, in `[0, 1]`.
    pub loss: f64,
}

impl LinkShape {
    /// A shape from the command line's units; an error names a bad value.
    pub fn from_ms(delay_ms: u64, jitter_ms: u64, loss_pct: f64) -> Result<LinkShape, String> {
        if !(0.0..=100.0).contains(&loss_pct) {
            return Err(format!("the loss must be 0 to 100 %, not {loss_pct}"));
        }
        if jitter_ms > delay_ms {
            return Err(format!(
                "the jitter ({jitter_ms} ms) may not exceed the delay ({delay_ms} ms)"
            ));
        }
        if delay_ms > 10_000 {
            return Err(format!("a delay of {delay_ms} ms is over 10 s"));
        }
        Ok(LinkShape {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            loss: loss_pct / 100.0,
        })
    }

    /// The round trip over this link without jitter or loss.
    pub fn round_trip(&self) -> Duration {
        self.delay * 2
    }
}

/// How long a lost chunk waits for its retransmission on `shape`: Linux's floor
/// [`RTO_MIN`], or the round trip plus four times the jitter (the RTO estimate's
/// `srtt + 4 rttvar`) if that is longer.
pub fn rto(shape: &LinkShape) -> Duration {
    RTO_MIN.max(shape.round_trip() + shape.jitter * 4)
}

/// The departure times of one direction of one connection (sans-IO).
#[derive(Clone, Debug)]
pub struct Pacer {
    shape: LinkShape,
    rng: u64,
    last: Duration,
}

impl Pacer {
    /// A pacer drawing its jitter and losses from `seed` (the same seed, the same draws).
    pub fn new(shape: LinkShape, seed: u64) -> Pacer {
        Pacer {
            shape,
            rng: seed,
            last: Duration::ZERO,
        }
    }

    /// Shapes the chunks from now on with `shape` (a link that slows or recovers);
    /// chunks still never overtake earlier ones.
    pub fn set_shape(&mut self, shape: LinkShape) {
        self.shape = shape;
    }

    /// splitmix64: statistical quality is enough here, and it is reproducible.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// When a chunk that arrived at `arrival` (time since any fixed origin) leaves:
    /// never before the previous chunk of this direction.
    pub fn departure(&mut self, arrival: Duration) -> Duration {
        let s = self.shape;
        let mut wait = s.delay;
        if !s.jitter.is_zero() {
            let j = s.jitter.as_secs_f64() * (2.0 * self.unit() - 1.0);
            wait = Duration::from_secs_f64((s.delay.as_secs_f64() + j).max(0.0));
        }
        if s.loss > 0.0 && self.unit() < s.loss {
            wait += rto(&s);
        }
        self.last = self.last.max(arrival + wait);
        self.last
    }
}

/// A TCP relay on one address that forwards every connection to a target, shaping both
/// directions with a [`LinkShape`]; it stops (closing its connections) when dropped.
pub struct ShapedRelay {
    addr: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    /// Bumped by [`ShapedRelay::cut`]: every open connection ends.
    cuts: tokio::sync::watch::Sender<u64>,
    _stop: tokio::sync::watch::Sender<()>,
}

#[derive(Debug)]
struct RelayState {
    target: Option<SocketAddr>,
    shape: LinkShape,
    up: bool,
}

impl std::fmt::Debug for ShapedRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShapedRelay")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ShapedRelay {
    /// Binds `listen` (port 0: any) and relays to the target set later
    /// ([`ShapedRelay::set_target`]); until then connections are refused. `seed` fixes
    /// the jitter and loss draws (per connection and direction).
    pub async fn bind(
        listen: SocketAddr,
        shape: LinkShape,
        seed: u64,
    ) -> std::io::Result<ShapedRelay> {
        let l = tokio::net::TcpListener::bind(listen).await?;
        let addr = l.local_addr()?;
        let state = Arc::new(Mutex::new(RelayState {
            target: None,
            shape,
            up: true,
        }));
        let (stop, stopped) = tokio::sync::watch::channel(());
        let (cuts, cut_seen) = tokio::sync::watch::channel(0u64);
        let st = state.clone();
        tokio::spawn(async move {
            let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            let mut stopped_accept = stopped.clone();
            let mut conn = 0u64;
            loop {
                let inbound = tokio::select! {
                    _ = stopped_accept.changed() => return,
                    a = l.accept() => match a {
                        Ok((s, _)) => s,
                        Err(e) => {
                            tracing::debug!(error = %e, "relay accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let to = {
                    let s = st.lock().unwrap_or_else(|p| p.into_inner());
                    s.target.filter(|_| s.up)
                };
                let (Some(to), Ok(permit)) = (to, open.clone().try_acquire_owned()) else {
                    drop(inbound);
                    continue;
                };
                conn += 1;
                let seed = seed ^ conn.wrapping_mul(0x2545_F491_4F6C_DD1D);
                let mut stopped = stopped.clone();
                let mut cut = cut_seen.clone();
                cut.mark_unchanged();
                let st = st.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        _ = stopped.changed() => {}
                        _ = cut.changed() => {}
                        _ = carry(inbound, to, st, seed) => {}
                    }
                });
            }
        });
        Ok(ShapedRelay {
            addr,
            state,
            cuts,
            _stop: stop,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as a libp2p multiaddr.
    pub fn multiaddr(&self) -> String {
        format!("/ip4/{}/tcp/{}", self.addr.ip(), self.addr.port())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RelayState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where connections go from now on.
    pub fn set_target(&self, to: SocketAddr) {
        self.state().target = Some(to);
    }

    /// The link's shape from now on, for open connections too.
    pub fn set_shape(&self, shape: LinkShape) {
        self.state().shape = shape;
    }

    /// The link's shape.
    pub fn shape(&self) -> LinkShape {
        self.state().shape
    }

    /// Cuts the link: open connections end, new ones are refused until [`Self::heal`].
    pub fn cut(&self) {
        self.state().up = false;
        self.cuts.send_modify(|g| *g += 1);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.state().up = true;
    }

    /// Whether the link is up (not cut).
    pub fn is_up(&self) -> bool {
        self.state().up
    }
}

/// Relays one connection until either side closes.
async fn carry(
    inbound: tokio::net::TcpStream,
    to: SocketAddr,
    state: Arc<Mutex<RelayState>>,
    seed: u64,
) {
    let Ok(outbound) = tokio::net::TcpStream::connect(to).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let origin = tokio::time::Instant::now();
    let shape = state.lock().unwrap_or_else(|p| p.into_inner()).shape;
    let up = pump(ir, ow, Pacer::new(shape, seed), origin, state.clone());
    let down = pump(
        or,
        iw,
        Pacer::new(shape, seed ^ 0xD1B5_4A32_D192_ED03),
        origin,
        state,
    );
    // Each direction ends on its own (a half-close passes on once its data left); a
    // failed write drops that direction's queue, which ends its reads too.
    tokio::join!(up, down);
}

/// One direction: reads chunks, and writes each at its departure time.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut pacer: Pacer,
    origin: tokio::time::Instant,
    state: Arc<Mutex<RelayState>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Duration, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    pacer.set_shape(state.lock().unwrap_or_else(|p| p.into_inner()).shape);
                    let at = pacer.departure(origin.elapsed());
                    if tx.send((at, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(origin + at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // The sender closed its side: pass the end on once everything before it left.
        let _ = to.shutdown().await;
    };
    // The reader ending drops the queue's sender; the writer then drains it and ends.
    let (_, ()) = tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    #[test]
    fn a_chunk_leaves_after_the_delay_and_jitter_stays_within_its_bound() {
        let shape = LinkShape::from_ms(50, 10, 0.0).unwrap();
        let mut p = Pacer::new(shape, 7);
        let mut seen = Vec::new();
        for i in 0..2_000u64 {
            // Far apart, so no chunk waits for the one before it.
            let arrival = ms(1_000 * i);
            let wait = p.departure(arrival) - arrival;
            assert!(wait >= ms(40) && wait <= ms(60), "waited {wait:?}");
            seen.push(wait);
        }
        let mean = seen.iter().map(Duration::as_secs_f64).sum::<f64>() / seen.len() as f64;
        assert!((mean - 0.050).abs() < 0.001, "mean {mean}");
        // The jitter really varies: both ends of the range are reached.
        assert!(seen.iter().any(|w| *w < ms(42)) && seen.iter().any(|w| *w > ms(58)));
    }

    #[test]
    fn chunks_of_a_stream_never_overtake_each_other() {
        let shape = LinkShape::from_ms(50, 50, 5.0).unwrap();
        let mut p = Pacer::new(shape, 1);
        let mut last = Duration::ZERO;
        for i in 0..10_000u64 {
            let at = p.departure(Duration::from_micros(100 * i));
            assert!(at >= last, "chunk {i} left at {at:?}, before {last:?}");
            last = at;
        }
    }

    #[test]
    fn a_lost_chunk_waits_one_retransmission_timeout_at_the_configured_rate() {
        let shape = LinkShape::from_ms(50, 0, 2.0).unwrap();
        assert_eq!(rto(&shape), ms(200));
        let mut p = Pacer::new(shape, 3);
        let n = 50_000u64;
        let mut lost = 0;
        for i in 0..n {
            let arrival = ms(10_000 * i);
            let wait = p.departure(arrival) - arrival;
            if wait == ms(250) {
                lost += 1;
            } else {
                assert_eq!(wait, ms(50));
            }
        }
        let rate = lost as f64 / n as f64;
        assert!((rate - 0.02).abs() < 0.003, "loss rate {rate}");
        // A long, jittery link's timeout follows its round trip.
        let far = LinkShape::from_ms(150, 20, 1.0).unwrap();
        assert_eq!(rto(&far), ms(380));
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let shape = LinkShape::from_ms(30, 20, 10.0).unwrap();
        let run = |seed| {
            let mut p = Pacer::new(shape, seed);
            (0..500u64)
                .map(|i| p.departure(ms(7 * i)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }

    #[test]
    fn a_shape_outside_its_ranges_is_refused_with_the_reason() {
        assert!(LinkShape::from_ms(10, 20, 0.0)
            .unwrap_err()
            .contains("jitter"));
        assert!(LinkShape::from_ms(10, 0, 101.0)
            .unwrap_err()
            .contains("loss"));
        assert!(LinkShape::from_ms(10, 0, f64::NAN)
            .unwrap_err()
            .contains("loss"));
        assert!(LinkShape::from_ms(20_000, 0, 0.0)
            .unwrap_err()
            .contains("over 10 s"));
    }

    #[tokio::test]
    async fn a_relay_delays_each_way_and_carries_every_byte_in_order() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let shape = LinkShape::from_ms(40, 0, 0.0).unwrap();
        let relay = ShapedRelay::bind("127.0.0.1:0".parse().unwrap(), shape, 5)
            .await
            .unwrap();
        relay.set_target(to);
        let mut c = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
        c.set_nodelay(true).unwrap();
        // One small echo: one round trip through the relay.
        let t0 = std::time::Instant::now();
        c.write_all(b"ping").await.unwrap();
        let mut four = [0u8; 4];
        c.read_exact(&mut four).await.unwrap();
        let rtt = t0.elapsed();
        assert_eq!(&four, b"ping");
        assert!(
            rtt >= ms(80),
            "a round trip took {rtt:?}, less than 2 x 40 ms"
        );
        // A megabyte echoes back whole and in order.
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (mut r, mut w) = c.into_split();
        let sent = data.clone();
        let writer = tokio::spawn(async move { w.write_all(&sent).await.unwrap() });
        let mut back = vec![0u8; data.len()];
        r.read_exact(&mut back).await.unwrap();
        writer.await.unwrap();
        assert!(back == data, "the echoed bytes differ");
    }

    #[tokio::test]
    async fn a_cut_relay_ends_its_connections_and_refuses_until_healed_and_a_new_shape_applies() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = server.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = server.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let relay = ShapedRelay::bind("127.0.0.1:0".parse().unwrap(), LinkShape::default(), 1)
            .await
            .unwrap();
        relay.set_target(to);
        let echo = |mut c: tokio::net::TcpStream| async move {
            let t = std::time::Instant::now();
            c.write_all(b"x").await.ok()?;
            let mut one = [0u8; 1];
            c.read_exact(&mut one).await.ok()?;
            Some((c, t.elapsed()))
        };
        let c = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
        let (mut c, _) = echo(c).await.expect("an echo through an open link");
        relay.cut();
        assert!(!relay.is_up());
        // The open connection ends ...
        let mut one = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut one)).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "still open: {r:?}");
        // ... and a new one gets no echo.
        let c2 = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), echo(c2)).await;
        assert!(matches!(r, Ok(None)), "a cut link carried an echo");
        relay.heal();
        relay.set_shape(LinkShape::from_ms(60, 0, 0.0).unwrap());
        let c3 = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
        let (_, rtt) = echo(c3).await.expect("an echo through a healed link");
        assert!(rtt >= ms(120), "the new shape did not apply: {rtt:?}");
    }
}
