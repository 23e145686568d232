//! Committee churn: the next epoch's shard assignment, drawn from the current one. Shards move
//! between members; a standby node joins (and so enters `RecoverMetadata`); a member leaves;
//! a shard goes back to a member that owned it in one of the last few committees (committees
//! that flap, so a node regains a shard it was still locking, syncing or had missed losing).

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use shardstorm_node::{NodeId, ShardIndex};
use std::collections::{BTreeMap, BTreeSet};

/// The node that gained the most shards from `before` to `after`, if any gained.
pub fn top_gainer(
    before: &BTreeMap<ShardIndex, NodeId>,
    after: &BTreeMap<ShardIndex, NodeId>,
) -> Option<NodeId> {
    let mut gains: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (shard, owner) in after {
        if before.get(shard) != Some(owner) {
            *gains.entry(*owner).or_default() += 1;
        }
    }
    gains
        .into_iter()
        .max_by_key(|(n, g)| (*g, std::cmp::Reverse(*n)))
        .map(|(n, _)| n)
}

/// The churn's random stream for a run seed, or for the seed of a `reshuffle` (the churn of
/// every epoch change after it).
pub fn churn_rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x0063_6875_726e)
}

/// Every (shard, member) such that the member owned the shard in one of the last
/// [`RETURN_DEPTH`] committees and does not own it now, in shard and then recency order.
fn returns(
    current: &BTreeMap<ShardIndex, NodeId>,
    earlier: &[BTreeMap<ShardIndex, NodeId>],
    members: &[NodeId],
) -> Vec<(ShardIndex, NodeId)> {
    let mut out: Vec<(ShardIndex, NodeId)> = Vec::new();
    for (shard, owner) in current {
        for committee in earlier.iter().take(RETURN_DEPTH) {
            let Some(before) = committee.get(shard) else {
                continue;
            };
            let fresh = !out.contains(&(*shard, *before));
            if before != owner && members.contains(before) && fresh {
                out.push((*shard, *before));
            }
        }
    }
    out
}

/// Never shrink the committee below this many members.
const MIN_MEMBERS: usize = 3;

/// The churn knobs of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// Probability that an epoch change moves shards.
    pub move_p: f64,
    /// Probability that an epoch change adds or removes a member.
    pub membership_p: f64,
    /// Probability that a move sends a shard back to an owner it had in one of the last
    /// [`RETURN_DEPTH`] committees.
    pub return_p: f64,
}

impl Churn {
    /// The churn of `knobs`.
    pub fn of(knobs: &shardstorm_faults::Knobs) -> Self {
        Self {
            move_p: knobs.churn_move,
            membership_p: knobs.churn_membership,
            return_p: knobs.churn_return,
        }
    }
}

/// How many committees back a return may reach.
pub const RETURN_DEPTH: usize = 3;

/// Draws the next assignment from `current` and `earlier`, the committees before it, most
/// recent first. The node that gained the most shards in the last change is hot: half the
/// moves go to it, so one node often gains shards in consecutive epochs (a new
/// `start_sync_shards` while the last one runs). With `return_p` a move is instead a return:
/// a shard goes back to a member that owned it in one of the last [`RETURN_DEPTH`] committees
/// (the node regains a shard it may still be locking or syncing, or lost while it was down).
pub fn next_committee(
    rng: &mut impl Rng,
    current: &BTreeMap<ShardIndex, NodeId>,
    earlier: &[BTreeMap<ShardIndex, NodeId>],
    nodes: &[NodeId],
    churn: Churn,
) -> BTreeMap<ShardIndex, NodeId> {
    let Churn {
        move_p,
        membership_p,
        return_p,
    } = churn;
    let hot = earlier
        .first()
        .and_then(|previous| top_gainer(previous, current));
    let mut next = current.clone();
    if rng.random_bool(membership_p.clamp(0.0, 1.0)) {
        let members: BTreeSet<NodeId> = next.values().copied().collect();
        let outsiders: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|n| !members.contains(n))
            .collect();
        let join = !outsiders.is_empty() && (members.len() <= MIN_MEMBERS || rng.random_bool(0.5));
        if join {
            if let Some(joiner) = outsiders.choose(rng) {
                let take = (next.len() / (members.len() + 1)).max(1);
                let mut shards: Vec<ShardIndex> = next.keys().copied().collect();
                shards.shuffle(rng);
                for s in shards.into_iter().take(take) {
                    next.insert(s, *joiner);
                }
            }
        } else if members.len() > MIN_MEMBERS {
            let members: Vec<NodeId> = members.into_iter().collect();
            if let Some(leaver) = members.choose(rng).copied() {
                let stay: Vec<NodeId> = members.iter().copied().filter(|m| *m != leaver).collect();
                for owner in next.values_mut().filter(|o| **o == leaver) {
                    *owner = *stay.choose(rng).unwrap_or(&leaver);
                }
            }
        }
    }
    if rng.random_bool(move_p.clamp(0.0, 1.0)) {
        let members: Vec<NodeId> = next
            .values()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for _ in 0..rng.random_range(1..=3) {
            // Only drawn when on, so runs without returns keep their draws.
            if return_p > 0.0 && rng.random_bool(return_p.clamp(0.0, 1.0)) {
                let returns = returns(current, earlier, &members);
                if let Some((shard, back)) = returns.choose(rng) {
                    next.insert(*shard, *back);
                    continue;
                }
            }
            let shard = ShardIndex(rng.random_range(0..next.len() as u16));
            let to = match hot.filter(|h| members.contains(h)) {
                Some(h) if rng.random_bool(0.5) => Some(h),
                _ => members.choose(rng).copied(),
            };
            if let Some(to) = to {
                next.insert(shard, to);
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn churn_keeps_every_shard_assigned_and_at_least_three_members() {
        let nodes: Vec<NodeId> = (0..5).map(NodeId).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut c: BTreeMap<ShardIndex, NodeId> =
            (0..20).map(|i| (ShardIndex(i), NodeId(i % 4))).collect();
        let mut joined = false;
        let churn = Churn {
            move_p: 0.5,
            membership_p: 0.5,
            return_p: 0.3,
        };
        let mut earlier: Vec<BTreeMap<ShardIndex, NodeId>> = Vec::new();
        for _ in 0..500 {
            let next = next_committee(&mut rng, &c, &earlier, &nodes, churn);
            earlier.insert(0, std::mem::replace(&mut c, next));
            earlier.truncate(RETURN_DEPTH);
            assert_eq!(c.len(), 20);
            let members: BTreeSet<_> = c.values().collect();
            assert!(members.len() >= MIN_MEMBERS.min(members.len()));
            joined |= members.contains(&NodeId(4));
        }
        assert!(joined, "the standby node never joined");
    }

    #[test]
    fn no_churn_keeps_the_committee() {
        let nodes: Vec<NodeId> = (0..5).map(NodeId).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let c: BTreeMap<ShardIndex, NodeId> =
            (0..8).map(|i| (ShardIndex(i), NodeId(i % 4))).collect();
        let none = Churn {
            move_p: 0.0,
            membership_p: 0.0,
            return_p: 1.0,
        };
        assert_eq!(
            next_committee(&mut rng, &c, std::slice::from_ref(&c), &nodes, none),
            c
        );
    }

    #[test]
    fn a_return_sends_a_moved_shard_back_to_an_owner_before() {
        let nodes: Vec<NodeId> = (0..4).map(NodeId).collect();
        let first: BTreeMap<ShardIndex, NodeId> =
            (0..8).map(|i| (ShardIndex(i), NodeId(i % 4))).collect();
        // Two changes ago shard 5 moved from n1 to n3; the last change moved nothing.
        let mut current = first.clone();
        current.insert(ShardIndex(5), NodeId(3));
        let earlier = [current.clone(), first.clone()];
        let previous = first;
        let always = Churn {
            move_p: 1.0,
            membership_p: 0.0,
            return_p: 1.0,
        };
        for seed in 0..20 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let next = next_committee(&mut rng, &current, &earlier, &nodes, always);
            assert_eq!(next, previous, "seed {seed}: every move is the one return");
        }
        // Without returns the same draws move shards at random.
        let never = Churn {
            return_p: 0.0,
            ..always
        };
        let moved_elsewhere = (0..20).any(|seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            next_committee(&mut rng, &current, &earlier, &nodes, never) != previous
        });
        assert!(moved_elsewhere);
    }
}
