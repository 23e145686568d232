//! The node's committee view: previous and current committee as last read from the chain, and
//! the diff calculator of spec section 6.2.

use crate::chain::Committee;
use crate::types::{Epoch, NodeId, ShardIndex};
use std::collections::BTreeSet;

/// Previous and current committee (the next one is read on demand from the chain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitteeView {
    pub previous: Committee,
    pub current: Committee,
}

impl CommitteeView {
    pub fn epoch(&self) -> Epoch {
        self.current.epoch
    }

    /// Whether `node` is a storage node of the previous or current committee (the server
    /// asks the chain about the next one).
    pub fn knows(&self, node: NodeId) -> bool {
        self.previous.contains(node) || self.current.contains(node)
    }
}

/// The shard changes of one epoch change, from P, C and X (spec 6.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardDiff {
    pub gained: BTreeSet<ShardIndex>,
    pub to_lock: BTreeSet<ShardIndex>,
    pub to_remove: BTreeSet<ShardIndex>,
    pub all_owned: BTreeSet<ShardIndex>,
}

impl ShardDiff {
    /// gained = C − P, to_lock = P − C, to_remove = X − (P ∪ C), all_owned = C.
    pub fn compute(
        p: &BTreeSet<ShardIndex>,
        c: &BTreeSet<ShardIndex>,
        x: &BTreeSet<ShardIndex>,
    ) -> Self {
        let p_or_c: BTreeSet<_> = p.union(c).copied().collect();
        Self {
            gained: c.difference(p).copied().collect(),
            to_lock: p.difference(c).copied().collect(),
            to_remove: x.difference(&p_or_c).copied().collect(),
            all_owned: c.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u16]) -> BTreeSet<ShardIndex> {
        v.iter().map(|i| ShardIndex(*i)).collect()
    }

    #[test]
    fn diff_matches_the_spec_formulas() {
        let d = ShardDiff::compute(&set(&[0, 1, 2]), &set(&[2, 3]), &set(&[0, 1, 2, 5, 6]));
        assert_eq!(d.gained, set(&[3]));
        assert_eq!(d.to_lock, set(&[0, 1]));
        assert_eq!(d.to_remove, set(&[5, 6]));
        assert_eq!(d.all_owned, set(&[2, 3]));
    }

    #[test]
    fn shard_moving_out_and_back_is_neither_locked_nor_removed() {
        let d = ShardDiff::compute(&set(&[1]), &set(&[1]), &set(&[1]));
        assert!(d.gained.is_empty() && d.to_lock.is_empty() && d.to_remove.is_empty());
    }
}
