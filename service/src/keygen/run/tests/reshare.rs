//! Resharing on the sans-IO core: an old committee runs a real batch (the `Net`
//! of the parent module), then reshares it to a new committee of another shape.
//! Old dealers are driven by hand (`reshare_dealing`), new members are resharing
//! runs, the network is a queue and consensus is the test (the first dealer-set
//! proposal is decided).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use torus_engine::dkg::{self, KeyShares};
use torus_engine::{Scalar, Secp256k1};

use super::Net;
use crate::app::evidence::{self, Verdict};
use crate::crypto::NodeKey;
use crate::keygen::byzantine::Byzantine;
use crate::keygen::run::deal::reshare_dealing;
use crate::keygen::run::reshare::ReshareSource;
use crate::keygen::run::{BatchRun, Cx};
use crate::keygen::DealerFault;
use crate::p2p::Message;
use crate::store::records::BatchRecord;
use crate::tx::{BatchId, EpochInfo, Evidence, NodeEntry, TxBody};

const KEYS: u32 = 6;

/// An old committee with one decided batch (`old`), and the new committee
/// resharing it (`new`: its members run resharing runs; its middleware slots are
/// unused, faulty old dealers are in `byzantine`).
struct Reshare {
    old: Net,
    old_shares: BTreeMap<u32, KeyShares<Secp256k1>>,
    public_keys: Vec<[u8; 33]>,
    new: Net,
    /// Faulty old dealers, by old index.
    byzantine: BTreeMap<u32, Byzantine>,
}

/// A node's key and index in the new committee: kept old members keep theirs.
fn new_committee(old: &Net, (n, k, t): (u32, u32, u32), kept: &[u32]) -> (Vec<NodeKey>, EpochInfo) {
    let mut keys = Vec::new();
    let mut nodes = Vec::new();
    for index in 1..=n {
        let key = if kept.contains(&index) {
            NodeKey::from_bytes(&old.keys[(index - 1) as usize].to_bytes()).unwrap()
        } else {
            NodeKey::random()
        };
        nodes.push(NodeEntry {
            index,
            pubkey: key.public().compressed(),
        });
        keys.push(key);
    }
    let epoch = EpochInfo {
        epoch: old.epoch.epoch + 1,
        n,
        k,
        t,
        nodes,
    };
    (keys, epoch)
}

/// The vectors hash the old committee voted with its public keys (every
/// member the same).
fn voted_vectors_hash(old: &Net) -> [u8; 32] {
    let hashes: BTreeSet<[u8; 32]> = old
        .submitted
        .iter()
        .filter_map(|(_, b)| match b {
            TxBody::PublicKeys { vectors_hash, .. } => Some(*vectors_hash),
            _ => None,
        })
        .collect();
    assert_eq!(hashes.len(), 1, "every old member votes the same vectors");
    hashes.into_iter().next().unwrap()
}

/// What a new member knows of the old committee (every old member stored the
/// same commitment vectors, and voted their hash).
fn source(
    old: &Net,
    old_shares: &BTreeMap<u32, KeyShares<Secp256k1>>,
    public_keys: Vec<[u8; 33]>,
) -> ReshareSource {
    let commitments = old_shares.values().next().unwrap().commitments.clone();
    let hash = voted_vectors_hash(old);
    ReshareSource::new(&old.epoch, old.batch, commitments, &hash, public_keys).unwrap()
}

impl Reshare {
    /// An old committee `(n, k, t)` generates a batch of `KEYS` keys; a new
    /// committee `(n', k', t')` keeps the old members `kept` at their indexes
    /// (fresh nodes elsewhere) and opens the batch's resharing.
    fn new(old: (u32, u32, u32), new: (u32, u32, u32), kept: &[u32]) -> Self {
        let mut net = Net::new(old.0, old.1, old.2, KEYS);
        net.run_batch(&[]);
        let public_keys = net.votes().values().next().unwrap().1.clone();
        let old_shares = std::mem::take(&mut net.stored);
        assert_eq!(
            old_shares.len(),
            old.0 as usize,
            "every old member holds shares"
        );
        let (new_keys, new_epoch) = new_committee(&net, new, kept);
        let batch = BatchId {
            epoch: new_epoch.epoch,
            ..net.batch
        };
        let now = net.now;
        let runs = (1..=new.0)
            .map(|j| {
                let src = source(&net, &old_shares, public_keys.clone());
                let run =
                    BatchRun::new_reshare(&new_epoch, batch, j, src, BTreeSet::new(), None, now);
                Some(run.unwrap())
            })
            .collect();
        Reshare {
            new: Net::with_runs(new_keys, new_epoch, batch, runs, now),
            old: net,
            old_shares,
            public_keys,
            byzantine: BTreeMap::new(),
        }
    }

    fn source(&self, public_keys: Vec<[u8; 33]>) -> ReshareSource {
        source(&self.old, &self.old_shares, public_keys)
    }

    /// Old member `i` deals `shares` (its own, unless a test lies) to the new
    /// committee; the sends go through its middleware, if it has one.
    fn deal_with(&mut self, i: u32, shares: &KeyShares<Secp256k1>, seed: u8) {
        let key = &self.old.keys[(i - 1) as usize];
        let cx = Cx::new(&self.new.engine, key, &self.new.metrics, self.new.now);
        let msgs =
            reshare_dealing(&cx, self.new.batch, &self.new.epoch, shares, &[seed; 32]).unwrap();
        assert_eq!(msgs.len(), self.new.n() as usize, "one send per new member");
        let params = self.new.run(1).send_params();
        for (to, msg) in msgs {
            let msg = match self.byzantine.get_mut(&i) {
                Some(b) => b.outgoing(&self.new.engine, key, params, to, msg),
                None => msg,
            };
            self.new.queue.push_back((i, to, msg));
        }
    }

    fn deal_all_but(&mut self, skip: &[u32]) {
        for i in 1..=self.old.n() {
            if !skip.contains(&i) {
                let shares = self.old_shares[&i].clone();
                self.deal_with(i, &shares, i as u8);
            }
        }
    }

    /// The first dealer-set proposal, waiting out the grace period if needed.
    fn proposal(&mut self) -> Option<TxBody> {
        self.new.proposal().or_else(|| {
            self.new.now += Duration::from_secs(60);
            self.new.proposal()
        })
    }

    /// Old members deal (but `skip`), the new committee settles, the first
    /// proposal is decided, and it settles again.
    fn run_reshare(&mut self, skip: &[u32]) -> BatchRecord {
        self.deal_all_but(skip);
        self.new.settle();
        let proposal = self.proposal().expect("a dealer-set proposal");
        let rec = self.new.decide(&proposal);
        self.new.settle();
        rec
    }
}

/// The secrets some members' shares reconstruct.
fn secrets(parts: &[(u32, &KeyShares<Secp256k1>)]) -> Vec<Scalar<Secp256k1>> {
    let pts: Vec<(u32, &[Scalar<Secp256k1>])> =
        parts.iter().map(|(i, s)| (*i, s.shares())).collect();
    dkg::reconstruct::<Secp256k1>(&pts).unwrap()
}

fn dealers_of(rec: &BatchRecord) -> Vec<u32> {
    rec.dealers.iter().map(|d| d.0).collect()
}

/// Every new member stored shares and voted the old public keys; the first and
/// the last k' new members reconstruct the secrets k_old old members do; shares
/// of both committees mixed reconstruct something else.
fn assert_reshared(r: &Reshare) {
    let n = r.new.n();
    let members: Vec<u32> = (1..=n).collect();
    assert_eq!(
        r.new.stored.keys().copied().collect::<Vec<_>>(),
        members,
        "every new member stores its new shares"
    );
    let votes = r.new.votes();
    assert_eq!(votes.keys().copied().collect::<Vec<_>>(), members);
    for (j, (_, keys)) in &votes {
        assert_eq!(keys, &r.public_keys, "member {j} votes the old public keys");
    }
    let k_old = r.old.epoch.k as usize;
    let k_new = r.new.epoch.k as usize;
    let old: Vec<(u32, &KeyShares<Secp256k1>)> = r
        .old_shares
        .iter()
        .take(k_old)
        .map(|(i, s)| (*i, s))
        .collect();
    let want = secrets(&old);
    let first: Vec<(u32, &KeyShares<Secp256k1>)> = r
        .new
        .stored
        .iter()
        .take(k_new)
        .map(|(j, s)| (*j, s))
        .collect();
    let last: Vec<(u32, &KeyShares<Secp256k1>)> = r
        .new
        .stored
        .iter()
        .rev()
        .take(k_new)
        .map(|(j, s)| (*j, s))
        .collect();
    assert_eq!(secrets(&first), want, "the first k' new members");
    assert_eq!(secrets(&last), want, "the last k' new members");
    // k' - 1 new shares and one old share at another index: never the secrets.
    let mut mixed: Vec<(u32, &KeyShares<Secp256k1>)> = first[..k_new - 1].to_vec();
    let taken: BTreeSet<u32> = mixed.iter().map(|p| p.0).collect();
    let (i, s) = r
        .old_shares
        .iter()
        .find(|(i, _)| !taken.contains(i))
        .unwrap();
    mixed.push((*i, s));
    assert_ne!(secrets(&mixed), want, "old and new shares combined");
    // Every new member's new commitment vectors are the same.
    let c = &r.new.stored[&1].commitments;
    assert!(r.new.stored.values().all(|s| &s.commitments == c));
}

#[test]
fn five_nodes_reshare_to_seven_with_a_higher_threshold_and_every_public_key_stays() {
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    let rec = r.run_reshare(&[]);
    assert!(dealers_of(&rec).len() >= 3);
    assert!(r.new.complaints().is_empty());
    assert_reshared(&r);
}

#[test]
fn seven_nodes_reshare_to_four_with_a_lower_threshold() {
    // Old dealers 5 to 7 have indexes beyond the new committee's size.
    let mut r = Reshare::new((7, 4, 1), (4, 3, 0), &[1, 2, 3, 4]);
    let rec = r.run_reshare(&[1, 2]);
    assert_eq!(dealers_of(&rec), vec![3, 4, 5, 6, 7]);
    assert_reshared(&r);
}

#[test]
fn five_nodes_reshare_to_five_with_two_replaced_by_fresh_nodes() {
    let mut r = Reshare::new((5, 3, 1), (5, 3, 1), &[1, 2, 5]);
    r.run_reshare(&[]);
    assert_reshared(&r);
    // The fresh members' new shares are not the old members' shares at their index.
    for j in [3, 4] {
        assert_ne!(
            r.new.stored[&j].shares(),
            r.old_shares[&j].shares(),
            "member {j}"
        );
    }
}

#[test]
fn resharing_completes_with_only_k_old_honest_dealers() {
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    let rec = r.run_reshare(&[2, 4]);
    assert_eq!(dealers_of(&rec), vec![1, 3, 5]);
    assert_reshared(&r);
}

#[test]
fn fewer_than_k_old_dealers_never_make_a_dealer_set() {
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    r.deal_all_but(&[1, 2, 3]);
    r.new.settle();
    r.new.now += Duration::from_secs(3600);
    assert!(r.proposal().is_none());
    assert!(r.new.votes().is_empty() && r.new.stored.is_empty());
}

#[test]
fn an_old_dealer_that_reshares_a_wrong_secret_gets_no_echo_and_is_left_out() {
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    // Dealer 2 reshares its share of the last key plus one: a sharing of another key.
    let honest = r.old_shares[&2].clone();
    let mut s = honest.shares().to_vec();
    s[KEYS as usize - 1] += Scalar::<Secp256k1>::from(1u64);
    let liar = KeyShares::<Secp256k1>::from_parts(
        2,
        honest.params,
        s,
        honest.blinding_shares().to_vec(),
        honest.commitments.clone(),
    )
    .unwrap();
    r.deal_all_but(&[2]);
    r.deal_with(2, &liar, 2);
    r.new.settle();
    let echoed_2 = r
        .new
        .runs
        .iter()
        .flatten()
        .any(|run| run.dealers.get(&2).is_some_and(|d| d.sent_echo));
    assert!(!echoed_2, "no new member echoes a wrong secret");
    // Every new member files a complaint that consensus upholds against the old
    // epoch's decided vectors hash.
    let complaints = r.new.complaints();
    assert_eq!(complaints.len(), r.new.n() as usize, "{complaints:?}");
    let old_vectors = voted_vectors_hash(&r.old);
    for (accuser, dealer, ev) in &complaints {
        assert_eq!(*dealer, 2);
        assert!(
            matches!(ev, Evidence::WrongSecret { key, .. } if *key == KEYS - 1),
            "{ev:?}"
        );
        let verdict = evidence::check_dealt_by(
            &r.old.epoch,
            &r.new.epoch,
            Some(&old_vectors),
            &r.new.batch,
            2,
            *accuser,
            ev,
        )
        .unwrap();
        assert!(matches!(verdict, Verdict::DealerGuilty(_)), "{verdict:?}");
        // Against other vectors than the decided ones, it proves nothing.
        assert!(evidence::check_dealt_by(
            &r.old.epoch,
            &r.new.epoch,
            Some(&[0; 32]),
            &r.new.batch,
            2,
            *accuser,
            ev
        )
        .is_err());
    }
    let proposal = r.proposal();
    let rec = r
        .new
        .decide(&proposal.expect("a proposal without dealer 2"));
    r.new.settle();
    assert!(!dealers_of(&rec).contains(&2), "{:?}", dealers_of(&rec));
    assert_reshared(&r);
}

#[test]
fn an_old_dealer_that_corrupts_a_new_members_row_gets_a_complaint_the_app_upholds() {
    // Old node 4 leaves; a fresh node takes index 4 in the new committee.
    let mut r = Reshare::new((5, 3, 1), (5, 3, 1), &[1, 2, 3, 5]);
    r.byzantine
        .insert(4, Byzantine::new(DealerFault::CorruptRow(3), 4).unwrap());
    r.run_reshare(&[]);
    let complaints = r.new.complaints();
    assert_eq!(complaints.len(), 1, "{complaints:?}");
    let (accuser, dealer, ev) = &complaints[0];
    assert_eq!((*accuser, *dealer), (3, 4));
    let verdict =
        evidence::check_dealt_by(&r.old.epoch, &r.new.epoch, None, &r.new.batch, 4, 3, ev).unwrap();
    assert!(matches!(verdict, Verdict::DealerGuilty(_)), "{verdict:?}");
    // Against the new committee's keys, the header is not signed by member 4
    // (another node): the evidence proves nothing there.
    assert!(evidence::check(&r.new.epoch, &r.new.batch, 4, 3, ev).is_err());
    assert_reshared(&r);
}

#[test]
fn an_old_dealer_that_equivocates_gets_a_complaint_the_app_upholds() {
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    // Dealer 5 deals two valid resharings of its share (both pass the old
    // commitment check) and sends member 2 the second one.
    let shares = r.old_shares[&5].clone();
    let cx = Cx::new(&r.new.engine, &r.old.keys[4], &r.new.metrics, r.new.now);
    let other = reshare_dealing(&cx, r.new.batch, &r.new.epoch, &shares, &[99; 32]).unwrap();
    r.deal_all_but(&[]);
    let second = other.into_iter().find(|(to, _)| *to == 2).unwrap().1;
    for f in r.new.queue.iter_mut() {
        if f.0 == 5 && f.1 == 2 && matches!(f.2, Message::Send(_)) {
            f.2 = second.clone();
        }
    }
    r.new.settle();
    let proposal = r.proposal();
    r.new.decide(&proposal.expect("a dealer set"));
    r.new.settle();
    let against_5: Vec<_> = r
        .new
        .complaints()
        .into_iter()
        .filter(|c| c.1 == 5)
        .collect();
    assert!(!against_5.is_empty(), "an equivocation is noticed");
    for (accuser, _, ev) in &against_5 {
        assert!(matches!(ev, Evidence::Equivocation { .. }), "{ev:?}");
        let verdict = evidence::check_dealt_by(
            &r.old.epoch,
            &r.new.epoch,
            None,
            &r.new.batch,
            5,
            *accuser,
            ev,
        )
        .unwrap();
        assert!(matches!(verdict, Verdict::DealerGuilty(_)), "{verdict:?}");
    }
    assert_reshared(&r);
}

#[test]
fn a_new_member_whose_public_keys_differ_from_the_old_ones_does_not_vote() {
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    // Member 3 was told other public keys than the batch's: it computes the
    // real ones and refuses to vote them.
    let mut wrong = r.public_keys.clone();
    wrong[0] = r.public_keys[1];
    let src = r.source(wrong);
    r.new.runs[2] = Some(
        BatchRun::new_reshare(
            &r.new.epoch,
            r.new.batch,
            3,
            src,
            BTreeSet::new(),
            None,
            r.new.now,
        )
        .unwrap(),
    );
    r.run_reshare(&[]);
    let votes = r.new.votes();
    assert!(!votes.contains_key(&3));
    assert_eq!(votes.len(), 6);
    assert!(votes.values().all(|(_, k)| k == &r.public_keys));
}

#[test]
fn a_resharing_run_refuses_a_batch_of_another_epoch_and_never_deals_afresh() {
    let r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    let wrong = BatchId {
        epoch: r.old.epoch.epoch,
        ..r.new.batch
    };
    let src = r.source(r.public_keys.clone());
    assert!(BatchRun::new_reshare(
        &r.new.epoch,
        wrong,
        1,
        src,
        BTreeSet::new(),
        None,
        r.new.now
    )
    .is_err());
    let cx = Cx::new(&r.new.engine, &r.old.keys[0], &r.new.metrics, r.new.now);
    assert!(reshare_dealing(&cx, wrong, &r.new.epoch, &r.old_shares[&1], &[1; 32]).is_err());
    let mut r = r;
    let actions = r.new.raw(1, |run, cx| run.deal(cx, None));
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn a_source_whose_old_vectors_are_not_the_decided_ones_is_refused() {
    let r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    let mut commitments = r.old_shares[&1].commitments.clone();
    commitments.swap(0, 1);
    let hash = voted_vectors_hash(&r.old);
    let e = ReshareSource::new(
        &r.old.epoch,
        r.old.batch,
        commitments,
        &hash,
        r.public_keys.clone(),
    );
    assert!(matches!(
        e,
        Err(crate::keygen::KeygenError::OldVectors { .. })
    ));
}

#[test]
fn a_wrong_secret_complaint_against_an_honest_dealer_blames_the_accuser() {
    use torus_engine::avss::Commitments;
    use torus_engine::wire::Wire;
    let mut r = Reshare::new((5, 3, 1), (7, 4, 1), &[1, 2, 3, 4, 5]);
    r.deal_all_but(&[]);
    let send = r
        .new
        .queue
        .iter()
        .find_map(|(from, to, m)| match m {
            Message::Send(s) if *from == 1 && *to == 6 => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    let c = Commitments::<Secp256k1>::decode(&send.commitments).unwrap();
    let src = r.source(r.public_keys.clone());
    let ko = r.old.epoch.k as usize;
    let old_vector: Vec<u8> = src.old_commitments[..ko]
        .iter()
        .flat_map(|p| crate::tx::digest::compressed_point(p).unwrap())
        .collect();
    let ev = Evidence::WrongSecret {
        header: send.header.clone(),
        key: 0,
        commitment_hashes: crate::tx::digest::matrix_hashes(&c),
        matrix: crate::tx::digest::matrix_bytes(&c, 0),
        old_hashes: src.old_hashes.clone(),
        old_vector,
    };
    let old_vectors = voted_vectors_hash(&r.old);
    let verdict = evidence::check_dealt_by(
        &r.old.epoch,
        &r.new.epoch,
        Some(&old_vectors),
        &r.new.batch,
        1,
        6,
        &ev,
    )
    .unwrap();
    assert!(matches!(verdict, Verdict::FalseComplaint(_)), "{verdict:?}");
    // Outside a resharing, the same evidence proves nothing.
    assert!(evidence::check(&r.new.epoch, &r.new.batch, 1, 6, &ev).is_err());
}
