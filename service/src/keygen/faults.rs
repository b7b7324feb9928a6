//! Test-only misbehaviour for byzantine-dealer tests: the `[keygen.faults]`
//! setting. A node honours it only in dev mode (start-up refuses it otherwise),
//! and only through the middleware in `keygen::byzantine`, which rewrites the
//! honest core's outgoing sends; the core itself has no fault branch.

use serde::{Deserialize, Serialize};

/// How a dealer misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealerFault {
    /// Honest.
    None,
    /// Corrupts the first key's row in the send to this node (signed as sent).
    CorruptRow(u32),
    /// Deals (k+1) x (k+1) matrices: the threshold-raising attack.
    BadMatrix,
    /// Sends this node a second, independent dealing (another commitments digest).
    Equivocate(u32),
}

/// `[keygen.faults]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// `""` (honest), `"corrupt-row:N"`, `"bad-matrix"` or `"equivocate:N"`.
    pub dealer: String,
}

impl Faults {
    /// The parsed dealer fault.
    pub fn dealer(&self) -> Result<DealerFault, String> {
        let v = self.dealer.trim();
        if v.is_empty() || v == "none" {
            return Ok(DealerFault::None);
        }
        if v == "bad-matrix" {
            return Ok(DealerFault::BadMatrix);
        }
        let node = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("keygen.faults.dealer: bad node index in {v:?}"))
        };
        if let Some(n) = v.strip_prefix("corrupt-row:") {
            return Ok(DealerFault::CorruptRow(node(n)?));
        }
        if let Some(n) = v.strip_prefix("equivocate:") {
            return Ok(DealerFault::Equivocate(node(n)?));
        }
        Err(format!(
            "keygen.faults.dealer: {v:?} is not \"corrupt-row:N\", \"bad-matrix\" or \"equivocate:N\""
        ))
    }

    /// Whether any fault is configured (or the value is unparsable).
    pub fn is_active(&self) -> bool {
        !matches!(self.dealer(), Ok(DealerFault::None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_and_rejects_garbage() {
        let f = |s: &str| Faults { dealer: s.into() }.dealer();
        assert_eq!(f(""), Ok(DealerFault::None));
        assert_eq!(f("corrupt-row:3"), Ok(DealerFault::CorruptRow(3)));
        assert_eq!(f("bad-matrix"), Ok(DealerFault::BadMatrix));
        assert_eq!(f("equivocate:2"), Ok(DealerFault::Equivocate(2)));
        assert!(f("equivocate:x").is_err());
        assert!(f("explode").is_err());
        assert!(Faults {
            dealer: "explode".into()
        }
        .is_active());
    }
}
