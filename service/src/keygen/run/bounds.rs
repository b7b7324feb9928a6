//! What peers can make one batch run hold, bounded by the committee: points
//! waiting for unknown commitments (one echo and one ready per sender and
//! dealer), public key shares that arrive before our shares (one per sender),
//! and replays answering `Resync` (one per peer per [`RESYNC_INTERVAL`]).
//! Everything past a bound is dropped and counted in
//! `torus_p2p_dropped_total{reason}`; an honest peer never reaches one (it sends
//! each of these once, and asks for a replay once per restart).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use torus_engine::dkg::PublicShares;
use torus_engine::Secp256k1;

use crate::p2p::PointsMsg;

/// Shortest time between two replays of our messages to one peer.
pub(super) const RESYNC_INTERVAL: Duration = Duration::from_secs(5);

/// Points waiting for the commitments of their digest, for one dealer: at most
/// one echo and one ready per sender (a sender's echo or ready counts once
/// anyway), so at most `2n` per dealer.
#[derive(Default)]
pub(crate) struct Waiting {
    by_sender: BTreeMap<(u32, bool), PointsMsg>,
}

impl Waiting {
    /// Keeps `pm` (an echo, or a ready when `ready`) from `from`; false (dropped)
    /// when that sender already has one of that kind waiting.
    pub(super) fn push(&mut self, ready: bool, from: u32, pm: PointsMsg) -> bool {
        match self.by_sender.entry((from, ready)) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(pm);
                true
            }
        }
    }

    /// Takes the points waiting for `digest`: `(ready, sender, points)`.
    pub(super) fn take(&mut self, digest: &[u8; 32]) -> Vec<(bool, u32, PointsMsg)> {
        let keys: Vec<(u32, bool)> = self
            .by_sender
            .iter()
            .filter(|(_, pm)| pm.digest == *digest)
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.by_sender.remove(&k).map(|pm| (k.1, k.0, pm)))
            .collect()
    }

    /// Points waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_sender.len()
    }
}

/// Public key shares received before our own shares exist: one per sender.
#[derive(Default)]
pub(crate) struct EarlyPublicShares {
    by_sender: BTreeMap<u32, PublicShares<Secp256k1>>,
}

impl EarlyPublicShares {
    /// Keeps `p` (whose `node` is its authenticated sender); false (dropped)
    /// when that sender already has shares waiting.
    pub(super) fn push(&mut self, p: PublicShares<Secp256k1>) -> bool {
        match self.by_sender.entry(p.node) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(p);
                true
            }
        }
    }

    /// Takes every waiting share, by sender.
    pub(super) fn take_all(&mut self) -> Vec<PublicShares<Secp256k1>> {
        std::mem::take(&mut self.by_sender).into_values().collect()
    }

    /// Senders with shares waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_sender.len()
    }
}

/// When each peer last got a replay of our messages.
#[derive(Default)]
pub(crate) struct ResyncLimit {
    last: BTreeMap<u32, Instant>,
}

impl ResyncLimit {
    /// Whether a `Resync` from `from` at `now` is served (and, if so, notes it).
    pub(super) fn allow(&mut self, from: u32, now: Instant) -> bool {
        if let Some(at) = self.last.get(&from) {
            if now.saturating_duration_since(*at) < RESYNC_INTERVAL {
                return false;
            }
        }
        self.last.insert(from, now);
        true
    }
}

#[cfg(test)]
mod tests {
    use torus_engine::avss::{self, PointMsg};
    use torus_engine::secret::SecretVec;
    use torus_engine::wire::Wire;
    use torus_engine::{Engine, Params, Scalar, Secp256k1};
    use zeroize::Zeroizing;

    use super::super::{Action, BatchRun, Cx};
    use super::*;
    use crate::crypto::NodeKey;
    use crate::metrics::Metrics;
    use crate::p2p::Message;
    use crate::tx::{digest, BatchId, EpochInfo, ReadySig};

    const N: u32 = 4;
    const KEYS: u32 = 2;

    struct Setup {
        engine: Engine,
        metrics: Metrics,
        keys: Vec<NodeKey>,
        run: BatchRun,
        /// Everything the run asked for so far, not yet looked at.
        out: Vec<Action>,
    }

    /// Node 1 of a committee of four (k = 3, t = 1), with the batch of keys 0..2 open.
    fn setup() -> Setup {
        let (keys, mut epoch) = EpochInfo::random_for_tests(N);
        (epoch.k, epoch.t) = (3, 1);
        let batch = BatchId {
            epoch: epoch.epoch,
            start: 0,
            count: KEYS,
        };
        let run =
            BatchRun::new(&epoch, batch, 1, Default::default(), None, Instant::now()).unwrap();
        Setup {
            engine: Engine::new(),
            metrics: Metrics::new(),
            keys,
            run,
            out: Vec::new(),
        }
    }

    /// Well-formed (but wrong) points of `sender` for every key.
    fn points(sender: u32) -> Zeroizing<Vec<u8>> {
        let z = || SecretVec::new(vec![Scalar::<Secp256k1>::default(); KEYS as usize]);
        let p = PointMsg::<Secp256k1> {
            sender,
            alpha: z(),
            alpha_p: z(),
            beta: z(),
            beta_p: z(),
        };
        Zeroizing::new(p.encode())
    }

    impl Setup {
        /// Calls the run with a fresh context, keeping what it asked for.
        fn with(&mut self, f: impl FnOnce(&mut BatchRun, &mut Cx<'_>)) {
            let mut cx = Cx::new(&self.engine, &self.keys[0], &self.metrics, Instant::now());
            f(&mut self.run, &mut cx);
            self.out.extend(cx.take());
        }

        fn deliver(&mut self, from: u32, msg: Message) {
            self.with(|run, cx| run.on_message(cx, from, msg));
        }

        /// The messages sent since the last call.
        fn sent(&mut self) -> Vec<(u32, Message)> {
            std::mem::take(&mut self.out)
                .into_iter()
                .filter_map(|a| match a {
                    Action::Send { to, msg } => Some((to, msg)),
                    _ => None,
                })
                .collect()
        }

        fn echo(&mut self, from: u32, dealer: u32, digest: [u8; 32]) {
            let pm = PointsMsg {
                batch: self.run.batch,
                dealer,
                digest,
                header: None,
                ready_sig: None,
                points: points(from),
            };
            self.deliver(from, Message::Echo(pm));
        }

        fn ready(&mut self, from: u32, dealer: u32, digest: [u8; 32]) {
            let key = &self.keys[(from - 1) as usize];
            let sig = ReadySig::sign(key, from, &self.run.batch, dealer, &digest).sig;
            let pm = PointsMsg {
                batch: self.run.batch,
                dealer,
                digest,
                header: None,
                ready_sig: Some(sig),
                points: points(from),
            };
            self.deliver(from, Message::Ready(pm));
        }
    }

    fn digest_of(i: u32) -> [u8; 32] {
        crate::hexfmt::keccak256(&i.to_be_bytes())
    }

    #[test]
    fn points_for_unknown_commitments_are_bounded_per_sender() {
        let mut s = setup();
        // Node 2 floods echoes and readies for dealer 3 under ever new digests.
        for i in 0..200 {
            s.echo(2, 3, digest_of(i));
            s.ready(2, 3, digest_of(i));
        }
        s.echo(4, 3, digest_of(1000));
        let st = &s.run.dealers[&3];
        assert_eq!(st.waiting.len(), 3, "one echo and one ready per sender");
        assert!(
            st.fetching.len() <= 3,
            "{} digests fetched",
            st.fetching.len()
        );
        // Asked once per kept digest, not once per message.
        let asked = s
            .sent()
            .iter()
            .filter(|(_, m)| matches!(m, Message::FetchCommitments { .. }))
            .count();
        assert!(asked <= 3, "{asked} fetches");
    }

    #[test]
    fn unsolicited_commitments_are_dropped() {
        let mut s = setup();
        let params = Params::new(N, 3, 1).unwrap();
        let dealing =
            avss::deal::<Secp256k1>(&s.engine, params, 3, KEYS as usize, None, [9; 32]).unwrap();
        let bytes = dealing.commitments.encode();
        // Nobody asked: well-formed commitments of a member and of a non-member
        // are dropped, and no state is kept for either.
        for dealer in [3, 99, u32::MAX] {
            for _ in 0..10 {
                let b = bytes.clone();
                s.with(|run, cx| run.on_commitments(cx, dealer, b));
            }
        }
        assert!(s
            .run
            .dealers
            .get(&3)
            .is_none_or(|d| d.commitments.is_empty()));
        assert!(!s.run.dealers.contains_key(&99));
        assert!(!s.run.dealers.contains_key(&u32::MAX));
        // Once an echo names their digest, we fetch them, and the answer is taken.
        let d = digest::dealing_digest(&s.run.batch, 3, &dealing.commitments);
        s.echo(2, 3, d);
        assert!(s.run.dealers[&3].fetching.contains_key(&d));
        let b = bytes.clone();
        s.with(|run, cx| run.on_commitments(cx, 3, b));
        assert!(s.run.dealers[&3].commitments.contains_key(&d));
        // Another dealing under a digest nobody fetches is still dropped.
        let other =
            avss::deal::<Secp256k1>(&s.engine, params, 3, KEYS as usize, None, [8; 32]).unwrap();
        s.echo(4, 3, digest_of(7)); // something is being fetched again
        let b = other.commitments.encode();
        s.with(|run, cx| run.on_commitments(cx, 3, b));
        assert_eq!(s.run.dealers[&3].commitments.len(), 1);
    }

    #[test]
    fn a_resync_flood_replays_a_bounded_number_of_messages() {
        let mut s = setup();
        let batch = s.run.batch;
        for to in [2, 4] {
            for i in 0..3 {
                let m = Message::FetchCommitments {
                    batch,
                    dealer: i,
                    digest: [0; 32],
                };
                s.with(|run, cx| run.send(cx, to, m));
            }
        }
        s.sent();
        for _ in 0..100 {
            s.deliver(2, Message::Resync { batch });
        }
        let sent = s.sent();
        assert_eq!(sent.len(), 3, "one replay of the three messages to node 2");
        assert!(sent.iter().all(|(to, _)| *to == 2));
        // Another peer's first resync is still served.
        s.deliver(4, Message::Resync { batch });
        assert_eq!(s.sent().len(), 3);
    }

    #[test]
    fn a_peer_gets_one_replay_per_interval() {
        let mut l = ResyncLimit::default();
        let t0 = Instant::now();
        assert!(l.allow(2, t0));
        assert!(!l.allow(2, t0 + RESYNC_INTERVAL / 2));
        assert!(
            l.allow(3, t0 + RESYNC_INTERVAL / 2),
            "other peers are independent"
        );
        assert!(l.allow(2, t0 + RESYNC_INTERVAL));
        assert!(!l.allow(2, t0 + RESYNC_INTERVAL));
    }

    #[test]
    fn early_public_shares_are_kept_once_per_sender() {
        let shares = |node: u32| PublicShares::<Secp256k1> {
            node,
            gs: Vec::new(),
            gshr: Vec::new(),
            proofs: Vec::new(),
        };
        let mut e = EarlyPublicShares::default();
        assert!(e.push(shares(2)));
        for _ in 0..100 {
            assert!(!e.push(shares(2)));
        }
        assert!(e.push(shares(3)));
        assert_eq!(e.len(), 2);
        let all = e.take_all();
        assert_eq!(all.iter().map(|p| p.node).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(e.len(), 0);
    }
}
