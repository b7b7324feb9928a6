//! Committees: an epoch's members and thresholds.

use crate::codec::{CodecError, Reader, Writer};
use crate::crypto::NodePub;
use crate::hexfmt::keccak256;

use super::MAX_NODES;

/// A member of a committee.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeEntry {
    /// 1-based index (the sharing x-coordinate).
    pub index: u32,
    /// 33-byte compressed public key.
    pub pubkey: [u8; 33],
}

/// A committee and its thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochInfo {
    /// Epoch number.
    pub epoch: u64,
    /// Committee size.
    pub n: u32,
    /// Reconstruction threshold (polynomial coefficients).
    pub k: u32,
    /// Tolerated faulty nodes.
    pub t: u32,
    /// Members, sorted by index, indexes 1..=n.
    pub nodes: Vec<NodeEntry>,
}

impl EpochInfo {
    /// Checks thresholds and membership: indexes exactly 1..=n, distinct valid keys,
    /// and the engine's parameter rules.
    pub fn validate(&self) -> Result<(), String> {
        torus_engine::Params::new(self.n, self.k, self.t).map_err(|e| e.to_string())?;
        if self.nodes.len() != self.n as usize {
            return Err(format!(
                "{} nodes listed for n = {}",
                self.nodes.len(),
                self.n
            ));
        }
        let mut keys = std::collections::HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.index as usize != i + 1 {
                return Err(format!(
                    "node indexes must be 1..=n in order, found {}",
                    node.index
                ));
            }
            NodePub::from_sec1(&node.pubkey)
                .map_err(|_| format!("node {}: bad public key", node.index))?;
            if !keys.insert(node.pubkey) {
                return Err(format!("node {}: duplicate public key", node.index));
            }
        }
        Ok(())
    }
    /// The member with `index`.
    pub fn node(&self, index: u32) -> Option<&NodeEntry> {
        self.nodes.get((index as usize).checked_sub(1)?)
    }
    /// The index of the member with this public key.
    pub fn index_of(&self, pubkey: &[u8; 33]) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| &n.pubkey == pubkey)
            .map(|n| n.index)
    }
    /// Test committee of `n` fresh node keys, epoch 1, Torus thresholds
    /// (`k = n/2 + 1`, `t = (n-1)/4`), and the keys in index order.
    #[cfg(test)]
    pub(crate) fn random_for_tests(n: u32) -> (Vec<crate::crypto::NodeKey>, EpochInfo) {
        let keys: Vec<_> = (0..n).map(|_| crate::crypto::NodeKey::random()).collect();
        let nodes = keys
            .iter()
            .zip(1..)
            .map(|(k, index)| NodeEntry {
                index,
                pubkey: k.public().compressed(),
            })
            .collect();
        let epoch = EpochInfo {
            epoch: 1,
            n,
            k: n / 2 + 1,
            t: n.saturating_sub(1) / 4,
            nodes,
        };
        (keys, epoch)
    }
    /// Encodes.
    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.epoch).u32(self.n).u32(self.k).u32(self.t);
        w.count(self.nodes.len());
        for n in &self.nodes {
            w.u32(n.index).raw(&n.pubkey);
        }
    }
    /// Decodes.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let epoch = r.u64("epoch")?;
        let n = r.u32("n")?;
        let k = r.u32("k")?;
        let t = r.u32("t")?;
        let c = r.count("nodes", MAX_NODES, 37)?;
        let mut nodes = Vec::with_capacity(c);
        for _ in 0..c {
            nodes.push(NodeEntry {
                index: r.u32("node index")?,
                pubkey: r.array("node pubkey")?,
            });
        }
        Ok(EpochInfo {
            epoch,
            n,
            k,
            t,
            nodes,
        })
    }
    /// keccak256 of the encoding.
    pub fn hash(&self) -> [u8; 32] {
        let mut w = Writer::new();
        self.encode(&mut w);
        keccak256(&w.buf)
    }
}
