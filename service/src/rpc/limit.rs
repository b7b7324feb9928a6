//! Per-client-address rate limits (issue #10, findings 5 and 6), sans-IO: the caller
//! passes the time, so the rules are unit-tested without clocks or sockets.
//!
//! - One token bucket per client address and method budget: `per_s` requests a second
//!   on average, bursts of `burst`. A refused request costs nothing further (no store
//!   write, no signature check, no transaction).
//! - An IPv6 client is keyed by its /64 (one host usually holds a whole /64, so keying by
//!   full address would let it pick a fresh bucket per request); an IPv4-mapped IPv6
//!   address is keyed as the IPv4 address.
//! - The map holds at most `max_clients` addresses. When it is full, buckets that refilled
//!   completely (idle clients: forgetting them changes nothing) are dropped, at most once
//!   a second (the sweep is linear in the map); addresses that still find no room share
//!   one overflow bucket, so a flood from many addresses cannot grow memory, and it cannot
//!   reset the buckets of the clients already tracked either.
//! - Behind a reverse proxy every connection comes from the proxy: with the proxy's
//!   address in `rpc.trusted_proxies`, the client is the right-most `X-Forwarded-For`
//!   address that is not a trusted proxy ([`client_addr`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// A request budget: `per_s` a second on average, bursts of `burst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Sustained requests per second (positive).
    pub per_s: u32,
    /// Largest burst (positive).
    pub burst: u32,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(b: Budget, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(b.burst),
            at: now,
        }
    }

    fn refill(&mut self, b: Budget, now: Instant) {
        // A clock that went backwards (it cannot for `Instant`, but the caller passes it)
        // refills nothing.
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * f64::from(b.per_s)).min(f64::from(b.burst));
        self.at = self.at.max(now);
    }

    fn take(&mut self, b: Budget, now: Instant) -> bool {
        self.refill(b, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn is_full(&self, b: Budget, now: Instant) -> bool {
        let mut c = *self;
        c.refill(b, now);
        c.tokens >= f64::from(b.burst)
    }
}

/// The key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Token buckets of one method's budget, keyed by client address.
#[derive(Debug)]
pub struct RateLimiter {
    budget: Budget,
    max_clients: usize,
    buckets: HashMap<IpAddr, Bucket>,
    overflow: Option<Bucket>,
    last_sweep: Option<Instant>,
}

/// The fewest seconds between two sweeps of a full map.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl RateLimiter {
    /// A limiter of `budget` per address, tracking at most `max_clients` addresses.
    pub fn new(budget: Budget, max_clients: usize) -> Self {
        RateLimiter {
            budget,
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
            overflow: None,
            last_sweep: None,
        }
    }

    /// Whether a request from `ip` at `now` is within its budget (and takes one token).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let key = client_key(ip);
        let b = self.budget;
        if let Some(bucket) = self.buckets.get_mut(&key) {
            return bucket.take(b, now);
        }
        if self.buckets.len() >= self.max_clients {
            let due = self
                .last_sweep
                .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY);
            if due {
                self.last_sweep = Some(now);
                self.buckets.retain(|_, bucket| !bucket.is_full(b, now));
            }
        }
        if self.buckets.len() >= self.max_clients {
            return self
                .overflow
                .get_or_insert_with(|| Bucket::full(b, now))
                .take(b, now);
        }
        let mut bucket = Bucket::full(b, now);
        let ok = bucket.take(b, now);
        self.buckets.insert(key, bucket);
        ok
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
/// right-most address of `forwarded_for` (the `X-Forwarded-For` values, in header order)
/// that is not a trusted proxy. Entries to the left of the first untrusted one could be
/// written by the client itself and are never used. An unparsable entry stops the walk at
/// the last trusted hop (the proxy's own address then counts).
pub fn client_addr<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| client_key(*t) == client_key(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_exceed_its_rate() {
        let mut l = RateLimiter::new(
            Budget {
                per_s: 10,
                burst: 20,
            },
            100,
        );
        let t0 = Instant::now();
        let a = ip("203.0.113.7");
        // The burst passes, the next request in the same instant does not.
        assert_eq!((0..20).filter(|_| l.allow(a, t0)).count(), 20);
        assert!(!l.allow(a, t0));
        // Over 10 s at 100 requests a second, 10 a second get through.
        let mut passed = 0;
        for step in 1..=100u32 {
            let now = t0 + Duration::from_millis(100) * step;
            passed += (0..10).filter(|_| l.allow(a, now)).count();
        }
        assert_eq!(passed, 100);
        // Another address has its own budget.
        assert!(l.allow(ip("203.0.113.8"), t0 + Duration::from_millis(10_000)));
    }

    #[test]
    fn an_ipv6_host_cannot_pick_a_fresh_bucket_per_address_of_its_64() {
        let mut l = RateLimiter::new(Budget { per_s: 1, burst: 3 }, 100);
        let t0 = Instant::now();
        let passed = (0..50u16)
            .filter(|i| {
                l.allow(
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, *i)),
                    t0,
                )
            })
            .count();
        assert_eq!(passed, 3);
        assert_eq!(l.tracked(), 1);
        // A mapped IPv4 address is that IPv4 client.
        let mut l = RateLimiter::new(Budget { per_s: 1, burst: 1 }, 100);
        assert!(l.allow(ip("192.0.2.1"), t0));
        assert!(!l.allow(ip("::ffff:192.0.2.1"), t0));
    }

    #[test]
    fn many_addresses_cannot_grow_the_map_or_reset_tracked_clients() {
        let b = Budget { per_s: 1, burst: 2 };
        let mut l = RateLimiter::new(b, 10);
        let t0 = Instant::now();
        let victim = ip("198.51.100.1");
        assert!(l.allow(victim, t0));
        assert!(l.allow(victim, t0));
        // 10,000 other addresses: the map stays bounded; those without room share one
        // overflow budget.
        let mut passed = 0;
        for i in 0..10_000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if l.allow(a, t0) {
                passed += 1;
            }
        }
        assert_eq!(l.tracked(), 10);
        assert_eq!(
            passed,
            9 + 2,
            "nine own buckets plus the shared overflow's burst"
        );
        // The tracked victim's empty bucket was not reset by the flood.
        assert!(!l.allow(victim, t0));
        // Once idle clients refilled completely they are forgotten and new ones get room.
        let later = t0 + Duration::from_secs(5);
        assert!(l.allow(ip("192.0.2.200"), later));
        assert!(l.tracked() <= 10);
        assert!(l.allow(ip("192.0.2.200"), later));
        assert!(
            !l.allow(ip("192.0.2.200"), later),
            "its own bucket, not overflow"
        );
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy = ip("127.0.0.1");
        let trusted = [proxy];
        // A client that is not the proxy cannot choose its address with a header.
        assert_eq!(
            client_addr(ip("203.0.113.9"), ["1.2.3.4"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the right-most untrusted hop; what the client wrote to its left
        // is ignored.
        assert_eq!(
            client_addr(proxy, ["6.6.6.6, 203.0.113.9"].into_iter(), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_addr(
                proxy,
                ["6.6.6.6", "203.0.113.9, 127.0.0.1"].into_iter(),
                &trusted
            ),
            ip("203.0.113.9")
        );
        // No header or garbage: the proxy itself.
        assert_eq!(client_addr(proxy, std::iter::empty(), &trusted), proxy);
        assert_eq!(client_addr(proxy, ["junk"].into_iter(), &trusted), proxy);
        // No trusted proxies: the header means nothing.
        assert_eq!(client_addr(proxy, ["1.2.3.4"].into_iter(), &[]), proxy);
    }
}
