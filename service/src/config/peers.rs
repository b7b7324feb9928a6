//! Which nodes a member connects to, and where: the current committee and,
//! during a hand-over, the next one (its fresh members join before they vote),
//! with addresses looked up by key in the genesis files the node has (the first
//! genesis, and the next epoch's `next-genesis.toml`).

use super::Genesis;
use crate::crypto::NodePub;
use crate::tx::EpochInfo;

/// A node this member connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its index: in the current committee when it is a member of it, else in the next.
    pub index: u32,
    /// 33-byte compressed key.
    pub pubkey: [u8; 33],
    /// Node-to-node address (empty when no genesis names one).
    pub p2p: String,
    /// Consensus address (empty when no genesis names one).
    pub consensus: String,
    /// Whether it is a member of the next committee only (a fresh member).
    pub joining: bool,
}

/// The members of `cur` and then the fresh members of `next`, each once, with
/// their addresses from `books` (the first genesis naming the key wins). A fresh
/// member whose index a current member holds is left out and named in the
/// second list: messages are addressed by index, so both cannot be reached.
pub fn committee_members(
    cur: &EpochInfo,
    next: Option<&EpochInfo>,
    books: &[&Genesis],
) -> (Vec<Member>, Vec<u32>) {
    // A committee entry with its addresses from the first genesis naming its key.
    let member = |n: &crate::tx::NodeEntry, joining: bool| -> Member {
        let book = books.iter().flat_map(|g| g.nodes.iter()).find(|g| {
            hex::decode(g.pubkey.trim_start_matches("0x"))
                .ok()
                .and_then(|raw| NodePub::from_sec1(&raw).ok())
                .is_some_and(|pk| pk.compressed() == n.pubkey)
        });
        Member {
            index: n.index,
            pubkey: n.pubkey,
            p2p: book.map(|g| g.p2p.clone()).unwrap_or_default(),
            consensus: book.map(|g| g.consensus.clone()).unwrap_or_default(),
            joining,
        }
    };
    let mut out: Vec<Member> = cur.nodes.iter().map(|n| member(n, false)).collect();
    let mut clashing = Vec::new();
    for n in next.map(|e| e.nodes.as_slice()).unwrap_or_default() {
        if out.iter().any(|m| m.pubkey == n.pubkey) {
            continue;
        }
        if out.iter().any(|m| m.index == n.index) {
            clashing.push(n.index);
            continue;
        }
        out.push(member(n, true));
    }
    (out, clashing)
}

/// The genesis of a later epoch at `path` (the next-genesis file, which stays
/// after its hand-over as the address book of the members it added), if any.
pub fn later_genesis(path: &std::path::Path) -> Option<(Genesis, EpochInfo)> {
    if !path.exists() {
        return None;
    }
    let g = match Genesis::load(path) {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "next committee file unreadable");
            return None;
        }
    };
    let e = g.epoch_info().ok()?;
    Some((g, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GenesisNode;
    use crate::crypto::NodeKey;

    fn genesis(epoch: u64, keys: &[(u32, &NodeKey)], port: u16) -> Genesis {
        Genesis {
            chain_id: "t".into(),
            epoch,
            n: keys.len() as u32,
            k: 1,
            t: 0,
            nodes: keys
                .iter()
                .map(|(i, k)| GenesisNode {
                    index: *i,
                    pubkey: hex::encode(k.public().compressed()),
                    p2p: format!("/ip4/127.0.0.1/tcp/{}", port + *i as u16),
                    consensus: format!("/ip4/127.0.0.1/tcp/{}", port + 100 + *i as u16),
                    rpc: String::new(),
                })
                .collect(),
        }
    }

    fn info(epoch: u64, keys: &[(u32, &NodeKey)]) -> EpochInfo {
        genesis(epoch, keys, 0).epoch_info().unwrap()
    }

    #[test]
    fn fresh_members_of_the_next_committee_are_added_with_the_addresses_of_the_next_genesis() {
        let k: Vec<NodeKey> = (0..4).map(|_| NodeKey::random()).collect();
        let cur = [(1, &k[0]), (2, &k[1])];
        let next = [(1, &k[0]), (2, &k[1]), (3, &k[2])];
        let g1 = genesis(1, &cur, 4000);
        let g2 = genesis(2, &next, 5000);
        let (m, clashing) = committee_members(&info(1, &cur), Some(&info(2, &next)), &[&g1, &g2]);
        assert!(clashing.is_empty());
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0].p2p, "/ip4/127.0.0.1/tcp/4001",
            "the first genesis wins"
        );
        assert!(!m[1].joining);
        assert_eq!(m[2].index, 3);
        assert!(m[2].joining);
        assert_eq!(m[2].consensus, "/ip4/127.0.0.1/tcp/5103");
        // Without a hand-over: the current committee only.
        let (m, _) = committee_members(&info(1, &cur), None, &[&g1]);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_fresh_member_at_an_index_a_current_member_holds_is_named_not_added() {
        let k: Vec<NodeKey> = (0..3).map(|_| NodeKey::random()).collect();
        let cur = [(1, &k[0]), (2, &k[1])];
        let next = [(1, &k[0]), (2, &k[2])];
        let (m, clashing) = committee_members(&info(1, &cur), Some(&info(2, &next)), &[]);
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|m| !m.joining && m.p2p.is_empty()));
        assert_eq!(clashing, vec![2]);
    }
}
