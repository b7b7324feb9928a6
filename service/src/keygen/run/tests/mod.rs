//! The batch run's rules, on the sans-IO core alone: n runs wired together by a
//! scripted network (a queue the test can reorder, duplicate, drop or hold),
//! consensus played by the test (the first dealer-set proposal is decided), and
//! the byzantine middleware between a dealer and the network. No store, no
//! sockets, no threads: each test runs in well under a second.

#![allow(clippy::unwrap_used)]

mod reshare;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use torus_engine::dkg::{self, KeyShares, PublicShares};
use torus_engine::wire::{Wire, WireXy};
use torus_engine::{Engine, Secp256k1};
use zeroize::Zeroizing;

use super::{Action, BatchRun, Cx};
use crate::app::evidence::{self, Verdict};
use crate::crypto::NodeKey;
use crate::keygen::byzantine::Byzantine;
use crate::keygen::{DealerFault, KeygenConfig};
use crate::metrics::Metrics;
use crate::p2p::Message;
use crate::store::records::BatchRecord;
use crate::tx::{BatchId, EpochInfo, Evidence, TxBody};

/// A message in flight: (from, to, message).
type Flight = (u32, u32, Message);

/// A committee of sans-IO runs of one batch and the network between them.
struct Net {
    engine: Engine,
    metrics: Metrics,
    cfg: KeygenConfig,
    keys: Vec<NodeKey>,
    epoch: EpochInfo,
    batch: BatchId,
    /// Each member's run (None while it is down).
    runs: Vec<Option<BatchRun>>,
    /// What each member persisted: its dealing seed, and whether its shares are stored.
    seeds: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    stored: BTreeMap<u32, KeyShares<Secp256k1>>,
    /// Members whose store refuses to write shares.
    failing_store: BTreeSet<u32>,
    queue: VecDeque<Flight>,
    /// Every action each member asked for, in order (sends after the middleware).
    log: Vec<(u32, Action)>,
    submitted: Vec<(u32, TxBody)>,
    byzantine: BTreeMap<u32, Byzantine>,
    now: Instant,
}

impl Net {
    /// n members (k, t as given) with a batch of `keys` keys open, nobody dealt yet.
    fn new(n: u32, k: u32, t: u32, keys: u32) -> Self {
        let (node_keys, mut epoch) = EpochInfo::random_for_tests(n);
        (epoch.k, epoch.t) = (k, t);
        let batch = BatchId {
            epoch: epoch.epoch,
            start: 64,
            count: keys,
        };
        let now = Instant::now();
        let runs = (1..=n)
            .map(|i| Some(BatchRun::new(&epoch, batch, i, BTreeSet::new(), None, now).unwrap()))
            .collect();
        Net::with_runs(node_keys, epoch, batch, runs, now)
    }

    /// A committee whose members run `runs` (one per member, in index order).
    fn with_runs(
        keys: Vec<NodeKey>,
        epoch: EpochInfo,
        batch: BatchId,
        runs: Vec<Option<BatchRun>>,
        now: Instant,
    ) -> Self {
        Net {
            engine: Engine::new(),
            metrics: Metrics::new(),
            cfg: KeygenConfig::default(),
            keys,
            epoch,
            batch,
            runs,
            seeds: BTreeMap::new(),
            stored: BTreeMap::new(),
            failing_store: BTreeSet::new(),
            queue: VecDeque::new(),
            log: Vec::new(),
            submitted: Vec::new(),
            byzantine: BTreeMap::new(),
            now,
        }
    }

    fn n(&self) -> u32 {
        self.epoch.n
    }

    fn run(&self, i: u32) -> &BatchRun {
        self.runs[(i - 1) as usize].as_ref().unwrap()
    }

    fn byzantine(&mut self, i: u32, fault: DealerFault) {
        self.byzantine.insert(i, Byzantine::new(fault, i).unwrap());
    }

    /// Calls member `i`'s run; what it asked for, not executed.
    fn raw(&mut self, i: u32, f: impl FnOnce(&mut BatchRun, &mut Cx<'_>)) -> Vec<Action> {
        let Some(run) = self.runs[(i - 1) as usize].as_mut() else {
            return Vec::new();
        };
        let mut cx = Cx::new(
            &self.engine,
            &self.keys[(i - 1) as usize],
            &self.metrics,
            self.now,
        );
        f(run, &mut cx);
        cx.take()
    }

    /// Calls member `i`'s run and executes what it asks for, as the driver does.
    fn call(&mut self, i: u32, f: impl FnOnce(&mut BatchRun, &mut Cx<'_>)) {
        let actions = self.raw(i, f);
        self.execute(i, actions);
    }

    fn execute(&mut self, i: u32, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, msg } => {
                    let params = self.run(i).params;
                    let msg = match self.byzantine.get_mut(&i) {
                        Some(b) => {
                            b.outgoing(&self.engine, &self.keys[(i - 1) as usize], params, to, msg)
                        }
                        None => msg,
                    };
                    self.queue.push_back((i, to, msg.clone()));
                    self.log.push((i, Action::Send { to, msg }));
                }
                Action::Submit(body) => {
                    self.submitted.push((i, body.clone()));
                    self.log.push((i, Action::Submit(body)));
                }
                Action::PersistSeed { start, seed } => {
                    assert_eq!(start, self.batch.start);
                    self.seeds.insert(i, seed.clone());
                    self.log.push((
                        i,
                        Action::PersistSeed {
                            start,
                            seed: seed.clone(),
                        },
                    ));
                    self.call(i, |run, cx| run.deal(cx, Some(seed)));
                }
                Action::StoreShares(s) => {
                    let batch = s.batch;
                    self.log.push((
                        i,
                        Action::Progress {
                            batch,
                            what: "store shares",
                        },
                    ));
                    if self.failing_store.contains(&i) {
                        self.call(i, |run, _| run.on_shares_not_stored());
                        continue;
                    }
                    let s = *s;
                    let copy = KeyShares::<Secp256k1>::from_parts(
                        s.shares.node,
                        s.shares.params,
                        s.shares.shares().to_vec(),
                        s.shares.blinding_shares().to_vec(),
                        s.shares.commitments.clone(),
                    )
                    .unwrap();
                    self.stored.insert(i, copy);
                    self.call(i, |run, cx| run.on_shares_stored(cx, s.shares));
                }
                a @ Action::Progress { .. } => self.log.push((i, a)),
            }
        }
    }

    /// Every member deals (from its persisted seed, if any), except `skip`.
    fn deal_all_but(&mut self, skip: &[u32]) {
        for i in 1..=self.n() {
            if !skip.contains(&i) {
                let seed = self.seeds.get(&i).cloned();
                self.call(i, |run, cx| run.deal(cx, seed));
            }
        }
    }

    /// Delivers one message as the driver would: commitments fetches are answered
    /// from the run's known commitments, the rest goes to the run.
    fn deliver(&mut self, (from, to, msg): Flight) {
        if self.runs[(to - 1) as usize].is_none() {
            return;
        }
        match msg {
            Message::FetchCommitments {
                batch,
                dealer,
                digest,
            } => {
                if let Some(commitments) = self.run(to).commitments_bytes(dealer, &digest) {
                    self.queue.push_back((
                        to,
                        from,
                        Message::Commitments {
                            batch,
                            dealer,
                            commitments,
                        },
                    ));
                }
            }
            Message::Commitments {
                dealer,
                commitments,
                ..
            } => self.call(to, |run, cx| run.on_commitments(cx, dealer, commitments)),
            msg => self.call(to, |run, cx| run.on_message(cx, from, msg)),
        }
    }

    /// Delivers until no message is in flight.
    fn settle(&mut self) {
        let mut steps = 0;
        while let Some(f) = self.queue.pop_front() {
            self.deliver(f);
            steps += 1;
            assert!(steps < 100_000, "the runs keep talking");
        }
    }

    /// The first dealer-set proposal of any member at the current time.
    fn proposal(&mut self) -> Option<TxBody> {
        let (now, cfg) = (self.now, self.cfg.clone());
        (1..=self.n()).find_map(|i| {
            self.runs[(i - 1) as usize]
                .as_mut()
                .and_then(|r| r.dealer_set_proposal(now, &cfg))
        })
    }

    /// Consensus decides `proposal`: every member hears of it.
    fn decide(&mut self, proposal: &TxBody) -> BatchRecord {
        let TxBody::DealerSet { batch, dealers } = proposal else {
            panic!("not a dealer set: {}", proposal.kind());
        };
        let rec = BatchRecord::of_dealer_set(*batch, dealers);
        for i in 1..=self.n() {
            self.call(i, |run, cx| run.on_decided(cx, &rec));
        }
        rec
    }

    /// Public-key votes submitted, by member.
    fn votes(&self) -> BTreeMap<u32, ([u8; 32], Vec<[u8; 33]>)> {
        self.submitted
            .iter()
            .filter_map(|(i, b)| match b {
                TxBody::PublicKeys {
                    keys_hash, keys, ..
                } => Some((*i, (*keys_hash, keys.clone()))),
                _ => None,
            })
            .collect()
    }

    fn complaints(&self) -> Vec<(u32, u32, Evidence)> {
        self.submitted
            .iter()
            .filter_map(|(i, b)| match b {
                TxBody::Complaint {
                    dealer, evidence, ..
                } => Some((*i, *dealer, (**evidence).clone())),
                _ => None,
            })
            .collect()
    }

    /// Deal, settle, decide the first proposal (after the grace period if
    /// needed), settle again: the whole honest path.
    fn run_batch(&mut self, skip: &[u32]) -> BatchRecord {
        self.deal_all_but(skip);
        self.settle();
        let proposal = match self.proposal() {
            Some(p) => p,
            None => {
                self.now += Duration::from_secs(60);
                self.proposal().expect("a proposal after the grace period")
            }
        };
        let rec = self.decide(&proposal);
        self.settle();
        rec
    }

    /// The user secret keys from the stored shares of `members`, as public keys.
    fn public_keys_from_shares(&self, members: &[u32]) -> Vec<[u8; 33]> {
        let parts: Vec<(u32, &[torus_engine::Scalar<Secp256k1>])> = members
            .iter()
            .map(|i| (*i, self.stored[i].shares()))
            .collect();
        dkg::reconstruct::<Secp256k1>(&parts)
            .unwrap()
            .iter()
            .map(|x| {
                let bytes = <Secp256k1 as torus_engine::Suite>::encode_scalar(x);
                NodeKey::from_bytes(&bytes).unwrap().public().compressed()
            })
            .collect()
    }
}

fn dealers_of(rec: &BatchRecord) -> Vec<u32> {
    rec.dealers.iter().map(|d| d.0).collect()
}

/// Checks that every member voted the same keys, and that they are the public
/// keys of the secrets any k members' stored shares reconstruct.
fn assert_agreed_keys(net: &Net, members: &[u32]) {
    let votes = net.votes();
    let voters: Vec<u32> = votes.keys().copied().collect();
    assert_eq!(voters, members, "every member votes once");
    let first = &votes[&members[0]];
    assert!(votes.values().all(|v| v == first), "the votes differ");
    assert_eq!(first.1.len(), net.batch.count as usize);
    let k = net.epoch.k as usize;
    assert_eq!(net.public_keys_from_shares(&members[..k]), first.1);
    assert_eq!(
        net.public_keys_from_shares(&members[members.len() - k..]),
        first.1,
        "another k members reconstruct the same keys"
    );
}

#[test]
fn an_honest_batch_gives_every_member_shares_of_the_same_keys() {
    let mut net = Net::new(5, 3, 1, 3);
    let rec = net.run_batch(&[]);
    assert_eq!(dealers_of(&rec), vec![1, 2, 3, 4, 5]);
    assert!(net.complaints().is_empty());
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn a_seed_is_persisted_before_anything_is_sent() {
    let mut net = Net::new(4, 3, 0, 2);
    net.call(1, |run, cx| run.deal(cx, None));
    let first = &net.log[0];
    assert_eq!(first.0, 1);
    assert!(
        matches!(first.1, Action::PersistSeed { .. }),
        "{:?}",
        first.1
    );
    let sends = net
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::Send { .. }))
        .count();
    assert_eq!(sends, 4, "one send per member once the seed is stored");
}

#[test]
fn a_run_without_a_stored_seed_asks_for_one_and_sends_nothing() {
    let mut net = Net::new(4, 3, 0, 2);
    let out = net.raw(2, |run, cx| run.deal(cx, None));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0], Action::PersistSeed { start: 64, .. }));
    assert!(net.run(2).sent.is_empty());
}

#[test]
fn a_blamed_member_does_not_deal() {
    let mut net = Net::new(4, 3, 0, 2);
    let blamed = BTreeSet::from([3]);
    net.runs[2] = Some(BatchRun::new(&net.epoch, net.batch, 3, blamed, None, net.now).unwrap());
    let seed = Some(Zeroizing::new([5; 32]));
    assert!(net.raw(3, |run, cx| run.deal(cx, seed)).is_empty());
    assert!(net.raw(3, |run, cx| run.deal(cx, None)).is_empty());
}

#[test]
fn a_run_refuses_a_member_outside_the_committee() {
    let (_, epoch) = EpochInfo::random_for_tests(4);
    let batch = BatchId {
        epoch: 1,
        start: 0,
        count: 2,
    };
    assert!(BatchRun::new(&epoch, batch, 5, BTreeSet::new(), None, Instant::now()).is_err());
    assert!(BatchRun::new(&epoch, batch, 0, BTreeSet::new(), None, Instant::now()).is_err());
}

#[test]
fn a_dealer_that_never_deals_is_left_out_after_the_grace_period() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[5]);
    net.settle();
    assert!(
        net.proposal().is_none(),
        "k + t sharings complete, but the last dealer gets its grace period"
    );
    net.now += Duration::from_millis(net.cfg.grace_ms + 5 * net.cfg.stagger_ms);
    let proposal = net
        .proposal()
        .expect("a proposal once the grace period ran out");
    let rec = net.decide(&proposal);
    net.settle();
    assert_eq!(dealers_of(&rec), vec![1, 2, 3, 4]);
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn fewer_than_k_plus_t_complete_sharings_propose_nothing() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[4, 5]);
    net.settle();
    net.now += Duration::from_secs(3600);
    assert!(net.proposal().is_none());
}

#[test]
fn the_proposal_carries_k_plus_t_ready_signatures_per_dealer() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[]);
    net.settle();
    let Some(TxBody::DealerSet { dealers, .. }) = net.proposal() else {
        panic!("no proposal");
    };
    assert_eq!(dealers.len(), 5);
    for d in &dealers {
        assert_eq!(d.readies.len(), 4, "dealer {}", d.dealer);
        let signers: BTreeSet<u32> = d.readies.iter().map(|r| r.signer).collect();
        assert_eq!(signers.len(), 4, "distinct signers");
    }
}

#[test]
fn a_member_proposes_once_until_a_dealer_is_blamed() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[]);
    net.settle();
    let (now, cfg) = (net.now, net.cfg.clone());
    let run = net.runs[0].as_mut().unwrap();
    let Some(TxBody::DealerSet { dealers, .. }) = run.dealer_set_proposal(now, &cfg) else {
        panic!("no proposal");
    };
    assert!(dealers.iter().any(|d| d.dealer == 3));
    assert!(run.dealer_set_proposal(now, &cfg).is_none());
    run.on_blamed(3, true);
    let Some(TxBody::DealerSet { dealers, .. }) = run.dealer_set_proposal(now, &cfg) else {
        panic!("no new proposal after the blame");
    };
    assert_eq!(
        dealers.iter().map(|d| d.dealer).collect::<Vec<_>>(),
        vec![1, 2, 4, 5]
    );
}

#[test]
fn an_equivocating_dealer_gets_a_complaint_the_app_upholds() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(3, DealerFault::Equivocate(2));
    net.deal_all_but(&[]);
    net.settle();
    let complaints = net.complaints();
    assert!(!complaints.is_empty(), "nobody noticed the second dealing");
    for (accuser, dealer, ev) in &complaints {
        assert_eq!(*dealer, 3);
        assert!(matches!(ev, Evidence::Equivocation { .. }), "{}", ev.kind());
        let verdict = evidence::check(&net.epoch, &net.batch, *dealer, *accuser, ev).unwrap();
        assert!(matches!(verdict, Verdict::DealerGuilty(_)), "{verdict:?}");
    }
}

#[test]
fn a_corrupted_row_gets_a_complaint_the_app_upholds() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(4, DealerFault::CorruptRow(2));
    net.deal_all_but(&[]);
    net.settle();
    let complaints = net.complaints();
    assert_eq!(complaints.len(), 1, "{complaints:?}");
    let (accuser, dealer, ev) = &complaints[0];
    assert_eq!((*accuser, *dealer), (2, 4));
    assert!(matches!(ev, Evidence::BadSlice { .. }), "{}", ev.kind());
    let verdict = evidence::check(&net.epoch, &net.batch, 4, 2, ev).unwrap();
    assert!(matches!(verdict, Verdict::DealerGuilty(_)), "{verdict:?}");
    // The others got honest sends: dealer 4's sharing still completes for them,
    // and node 2 takes its slice from their echoes instead.
    assert!(net.run(1).dealers[&4].complete.is_some());
}

#[test]
fn a_dealing_of_the_wrong_shape_gets_malformed_complaints_from_every_receiver() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(5, DealerFault::BadMatrix);
    net.deal_all_but(&[]);
    net.settle();
    let accusers: BTreeSet<u32> = net
        .complaints()
        .iter()
        .map(|(accuser, dealer, ev)| {
            assert_eq!(*dealer, 5);
            assert!(matches!(ev, Evidence::Malformed { .. }), "{}", ev.kind());
            let verdict = evidence::check(&net.epoch, &net.batch, 5, *accuser, ev).unwrap();
            assert!(matches!(verdict, Verdict::DealerGuilty(_)), "{verdict:?}");
            *accuser
        })
        .collect();
    assert_eq!(accusers, BTreeSet::from([1, 2, 3, 4, 5]));
    // No sharing of the bad dealer completes, and the batch goes on without it.
    assert!(
        net.proposal().is_none(),
        "the bad dealer gets its grace period too"
    );
    net.now += Duration::from_secs(60);
    let p = net.proposal().expect("a proposal");
    let rec = net.decide(&p);
    net.settle();
    assert!(!dealers_of(&rec).contains(&5));
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn an_honest_dealer_gets_no_complaint_from_the_middleware_of_another() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(1, DealerFault::CorruptRow(3));
    let rec = net.run_batch(&[]);
    assert!(net.complaints().iter().all(|(_, dealer, _)| *dealer == 1));
    assert!(dealers_of(&rec).contains(&2));
}

#[test]
fn duplicated_messages_change_nothing() {
    let mut honest = Net::new(4, 3, 0, 2);
    honest.deal_all_but(&[]);
    honest.settle();
    let sends_once = honest.log.len();

    let mut net = Net::new(4, 3, 0, 2);
    net.deal_all_but(&[]);
    let mut steps = 0;
    while let Some(f) = net.queue.pop_front() {
        let again = (f.0, f.1, f.2.clone());
        net.deliver(f);
        net.deliver(again);
        steps += 1;
        assert!(steps < 100_000);
    }
    assert_eq!(net.log.len(), sends_once, "every duplicate was ignored");
    let p = net.proposal().expect("a proposal");
    net.decide(&p);
    let mut dup: Vec<Flight> = net.queue.iter().cloned().collect();
    dup.extend(net.queue.drain(..).collect::<Vec<_>>());
    net.queue.extend(dup);
    net.settle();
    assert_agreed_keys(&net, &[1, 2, 3, 4]);
}

#[test]
fn echoes_and_readies_before_the_send_wait_for_the_commitments() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[]);
    // Hold back every send to node 3; deliver everything else first.
    let mut held = Vec::new();
    let mut steps = 0;
    while let Some(f) = net.queue.pop_front() {
        if f.1 == 3 && matches!(f.2, Message::Send(_)) {
            held.push(f);
            continue;
        }
        net.deliver(f);
        steps += 1;
        assert!(steps < 100_000);
    }
    // Node 3 fetched the commitments it lacked and completed every sharing from
    // the others' points alone.
    assert!(net.log.iter().any(|(i, a)| *i == 3
        && matches!(
            a,
            Action::Send {
                msg: Message::FetchCommitments { .. },
                ..
            }
        )));
    for d in 1..=5 {
        assert!(net.run(3).dealers[&d].complete.is_some(), "dealer {d}");
    }
    // The late sends are then no news.
    for f in held {
        net.deliver(f);
    }
    net.settle();
    let p = net.proposal().unwrap();
    net.decide(&p);
    net.settle();
    assert!(net.complaints().is_empty());
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn a_member_that_never_got_its_send_interpolates_its_slice() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[]);
    net.queue
        .retain(|(from, to, m)| !(*from == 1 && *to == 2 && matches!(m, Message::Send(_))));
    let rec = net.run_batch(&[1, 2, 3, 4, 5]);
    assert!(dealers_of(&rec).contains(&1));
    assert!(net.run(2).dealers[&1].own_header.is_none());
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn a_member_that_restarts_mid_batch_deals_the_same_dealing_again() {
    let mut net = Net::new(5, 3, 1, 2);
    net.deal_all_but(&[]);
    let digest_before = |net: &Net| {
        net.log.iter().find_map(|(i, a)| match a {
            Action::Send {
                msg: Message::Send(s),
                ..
            } if *i == 2 => Some(s.header.commitments),
            _ => None,
        })
    };
    let first = digest_before(&net).unwrap();
    // Deliver half of the traffic, then node 2 crashes and loses its run.
    for _ in 0..net.queue.len() / 2 {
        let f = net.queue.pop_front().unwrap();
        net.deliver(f);
    }
    net.runs[1] = None;
    net.log.clear();
    // It restarts: a fresh run, dealt from its persisted seed, asks for replays.
    net.runs[1] =
        Some(BatchRun::new(&net.epoch, net.batch, 2, BTreeSet::new(), None, net.now).unwrap());
    let seed = net.seeds.get(&2).cloned();
    assert!(seed.is_some(), "the seed was persisted before the crash");
    net.call(2, |run, cx| run.deal(cx, seed));
    assert_eq!(digest_before(&net), Some(first), "the same dealing");
    for peer in [1, 3, 4, 5] {
        let batch = net.batch;
        net.queue.push_back((2, peer, Message::Resync { batch }));
    }
    net.settle();
    let p = net.proposal().unwrap();
    let rec = net.decide(&p);
    net.settle();
    assert!(net.complaints().is_empty(), "{:?}", net.complaints());
    assert!(dealers_of(&rec).contains(&2));
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn shares_are_stored_before_public_key_shares_go_out() {
    let mut net = Net::new(4, 3, 0, 2);
    net.run_batch(&[]);
    for i in 1..=4 {
        let mine: Vec<&Action> = net
            .log
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, a)| a)
            .collect();
        let stored = mine
            .iter()
            .position(|a| {
                matches!(
                    a,
                    Action::Progress {
                        what: "store shares",
                        ..
                    }
                )
            })
            .unwrap();
        let published = mine
            .iter()
            .position(|a| {
                matches!(
                    a,
                    Action::Send {
                        msg: Message::PubShares { .. },
                        ..
                    }
                )
            })
            .unwrap();
        assert!(stored < published, "member {i}");
    }
}

#[test]
fn a_member_whose_store_fails_publishes_nothing_and_aggregates_again_on_a_tick() {
    let mut net = Net::new(4, 3, 0, 2);
    net.failing_store.insert(4);
    net.run_batch(&[]);
    let published = |net: &Net| {
        net.log.iter().any(|(i, a)| {
            *i == 4
                && matches!(
                    a,
                    Action::Send {
                        msg: Message::PubShares { .. },
                        ..
                    }
                )
        })
    };
    assert!(!published(&net));
    assert!(!net.run(4).has_shares());
    // The three others still decide the keys without it.
    assert_eq!(net.votes().len(), 3);
    net.failing_store.clear();
    net.call(4, |run, cx| run.on_tick(cx));
    assert!(published(&net));
    net.settle();
    assert!(net.run(4).has_shares());
}

#[test]
fn a_decided_member_without_its_shares_is_stuck_only_after_the_delay() {
    let mut net = Net::new(4, 3, 0, 2);
    net.failing_store.insert(1);
    net.run_batch(&[]);
    let now = net.now;
    let run = net.run(1);
    assert!(!run.stuck_since_decided(now, Duration::from_secs(3)));
    assert!(run.stuck_since_decided(now + Duration::from_secs(3), Duration::from_secs(3)));
    assert!(!net
        .run(2)
        .stuck_since_decided(now + Duration::from_secs(3), Duration::from_secs(3)));
}

#[test]
fn a_restarted_member_with_stored_shares_rejoins_the_vote() {
    let mut net = Net::new(4, 3, 0, 2);
    let rec = net.run_batch(&[]);
    let votes = net.votes();
    // Node 3 restarts after storing its shares: a run from the decided record and
    // its stored shares publishes them again.
    net.submitted.clear();
    net.runs[2] = Some(
        BatchRun::new(
            &net.epoch,
            net.batch,
            3,
            BTreeSet::new(),
            Some(rec.clone()),
            net.now,
        )
        .unwrap(),
    );
    let s = &net.stored[&3];
    let shares = KeyShares::<Secp256k1>::from_parts(
        s.node,
        s.params,
        s.shares().to_vec(),
        s.blinding_shares().to_vec(),
        s.commitments.clone(),
    )
    .unwrap();
    net.call(3, |run, cx| run.restore(cx, &rec, shares));
    // Its peers' runs answer its resync with their public key shares.
    for peer in [1, 2, 4] {
        let batch = net.batch;
        net.queue.push_back((3, peer, Message::Resync { batch }));
    }
    net.settle();
    assert_eq!(net.votes().get(&3), votes.get(&3), "the same vote again");
}

#[test]
fn a_ready_signed_by_someone_else_is_not_counted() {
    let mut net = Net::new(4, 3, 0, 2);
    net.deal_all_but(&[]);
    // Node 4's readies are re-signed... by node 1's key: dropped at every receiver.
    let mut steps = 0;
    while let Some((from, to, msg)) = net.queue.pop_front() {
        let msg = match msg {
            Message::Ready(mut p) if from == 4 => {
                p.ready_sig = Some(
                    crate::tx::ReadySig::sign(&net.keys[0], 4, &net.batch, p.dealer, &p.digest).sig,
                );
                Message::Ready(p)
            }
            m => m,
        };
        net.deliver((from, to, msg));
        steps += 1;
        assert!(steps < 100_000);
    }
    for d in 1..=4 {
        for i in 1..=3 {
            assert!(
                !net.run(i).dealers[&d].readied_by.contains(&4),
                "{i} took 4's ready for {d}"
            );
        }
    }
}

#[test]
fn public_key_shares_with_a_bad_proof_are_dropped() {
    let mut net = Net::new(4, 3, 0, 2);
    net.deal_all_but(&[]);
    net.settle();
    let p = net.proposal().unwrap();
    net.decide(&p);
    // Node 1's public key shares reach node 2 with two keys' points swapped: had
    // node 2 taken them (they come first), its vote would name wrong keys.
    let mut steps = 0;
    while let Some((from, to, msg)) = net.queue.pop_front() {
        let msg = match msg {
            Message::PubShares { batch, shares } if from == 1 && to == 2 => {
                let mut p = PublicShares::<Secp256k1>::decode(&shares).unwrap();
                p.gs.swap(0, 1);
                Message::PubShares {
                    batch,
                    shares: p.encode_xy(),
                }
            }
            m => m,
        };
        net.deliver((from, to, msg));
        steps += 1;
        assert!(steps < 100_000);
    }
    assert!(!net.run(2).pub_shares.contains_key(&1));
    assert_agreed_keys(&net, &[1, 2, 3, 4]);
}

#[test]
fn a_resync_replays_exactly_what_was_sent_to_that_member() {
    let mut net = Net::new(4, 3, 0, 2);
    net.deal_all_but(&[]);
    net.settle();
    let to_3: usize = net.run(1).sent.iter().filter(|(to, _)| *to == 3).count();
    net.queue.clear();
    let batch = net.batch;
    net.log.clear();
    net.call(1, |run, cx| {
        run.on_message(cx, 3, Message::Resync { batch })
    });
    let replayed: Vec<u32> = net
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::Send { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(replayed.len(), to_3);
    assert!(replayed.iter().all(|to| *to == 3));
}

#[test]
fn a_send_for_another_receiver_or_batch_is_dropped() {
    let mut net = Net::new(4, 3, 0, 2);
    net.deal_all_but(&[]);
    // Node 2 passes on the send it got from node 1 to node 3, and a send of
    // another batch start: neither is echoed by node 3.
    let send_1_to_2 = net
        .queue
        .iter()
        .find(|(f, t, m)| *f == 1 && *t == 2 && matches!(m, Message::Send(_)))
        .cloned()
        .unwrap();
    net.queue.clear();
    net.log.clear();
    net.deliver((1, 3, send_1_to_2.2.clone()));
    net.deliver((2, 3, send_1_to_2.2));
    assert!(net.log.is_empty(), "{:?}", net.log);
    assert!(net
        .run(3)
        .dealers
        .get(&1)
        .is_none_or(|d| d.own_header.is_none()));
}

#[test]
fn the_action_log_never_shows_a_secret() {
    let mut net = Net::new(4, 3, 0, 2);
    net.call(1, |run, cx| run.deal(cx, None));
    let seed = net.seeds[&1].clone();
    let shown = format!("{:?}", net.log);
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains(&hex::encode(&seed[..])));
    assert!(!shown.contains(&format!("{:?}", &seed[..])));
}

#[test]
fn the_middleware_rewrites_only_its_own_send_to_its_target_and_the_same_way_on_a_replay() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(3, DealerFault::Equivocate(2));
    let sends_of_3 = |net: &Net| -> BTreeMap<u32, Vec<u8>> {
        net.log
            .iter()
            .filter_map(|(i, a)| match a {
                Action::Send {
                    to,
                    msg: m @ Message::Send(_),
                } if *i == 3 => Some((*to, m.encode())),
                _ => None,
            })
            .collect()
    };
    net.deal_all_but(&[1, 2, 4, 5]);
    let first = sends_of_3(&net);
    // Dealer 3 restarts and deals again from its seed: byte-identical messages,
    // the rewritten one included (a replay never looks like a third dealing).
    net.log.clear();
    let seed = net.seeds.get(&3).cloned();
    net.call(3, |run, cx| run.deal(cx, seed));
    assert_eq!(sends_of_3(&net), first);
    // Only the send to node 2 carries other commitments.
    let digest = |to: u32| match Message::decode(&first[&to]).unwrap() {
        Message::Send(s) => s.header.commitments,
        m => panic!("{}", m.kind()),
    };
    let honest = digest(1);
    assert_ne!(digest(2), honest);
    for to in [3, 4, 5] {
        assert_eq!(digest(to), honest, "send to {to}");
    }
}

#[test]
fn an_equivocating_dealer_blamed_by_consensus_is_left_out_and_the_batch_completes() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(3, DealerFault::Equivocate(2));
    net.deal_all_but(&[]);
    net.settle();
    assert!(net.complaints().iter().any(|(_, d, _)| *d == 3));
    // Consensus upholds the complaint: every member hears of the blame.
    for i in 1..=5 {
        net.call(i, |run, _| run.on_blamed(3, true));
    }
    let proposal = match net.proposal() {
        Some(p) => p,
        None => {
            net.now += Duration::from_secs(60);
            net.proposal()
                .expect("a proposal without the blamed dealer")
        }
    };
    let rec = net.decide(&proposal);
    net.settle();
    assert!(!dealers_of(&rec).contains(&3), "{:?}", dealers_of(&rec));
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}

#[test]
fn the_receiver_of_a_corrupted_row_still_gets_shares_that_agree() {
    let mut net = Net::new(5, 3, 1, 2);
    net.byzantine(4, DealerFault::CorruptRow(2));
    let rec = net.run_batch(&[]);
    // Node 2 refused dealer 4's send but, if dealer 4 is in the decided set, took
    // its slice from the others' verified points.
    if let Some((_, digest)) = rec.dealers.iter().find(|(d, _)| *d == 4) {
        assert!(net.run(2).dealers[&4].slices.contains_key(digest));
        assert!(net.run(2).dealers[&4].own_header.is_none());
    }
    assert_agreed_keys(&net, &[1, 2, 3, 4, 5]);
}
