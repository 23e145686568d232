//! Committee churn: the next epoch's shard assignment, drawn from the current one. Shards move
//! between members; a standby node joins (and so enters `RecoverMetadata`); a member leaves.

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

/// Never shrink the committee below this many members.
const MIN_MEMBERS: usize = 3;

/// Draws the next assignment. `move_p` and `membership_p` are the knobs' churn probabilities.
/// `hot` is a node that gained shards in the last change: half the moves go to it, so one node
/// often gains shards in consecutive epochs (a new `start_sync_shards` while the last one runs).
pub fn next_committee(
    rng: &mut impl Rng,
    current: &BTreeMap<ShardIndex, NodeId>,
    nodes: &[NodeId],
    move_p: f64,
    membership_p: f64,
    hot: Option<NodeId>,
) -> BTreeMap<ShardIndex, NodeId> {
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
        for _ in 0..500 {
            c = next_committee(&mut rng, &c, &nodes, 0.5, 0.5, Some(NodeId(4)));
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
        assert_eq!(next_committee(&mut rng, &c, &nodes, 0.0, 0.0, None), c);
    }
}
