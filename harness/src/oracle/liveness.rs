//! The liveness audit of a healed cluster: members `Active` and non-members `Standby`, every
//! owned shard `Active` with every certified blob's slivers, metadata complete, no pending
//! recovery, every stored sliver equal to its blob's true encoding, every blob readable.

use super::{Invariant, Violation};
use shardstorm_node::node::NodeSnapshot;
use shardstorm_node::{BlobId, Chain, NodeId, NodeStatus, ShardIndex, ShardStatus, SliverType};
use std::collections::{BTreeMap, BTreeSet};

/// What the workload knows about a blob it wrote.
#[derive(Clone, Debug)]
pub struct BlobTruth {
    pub primary: Vec<[u8; 32]>,
    pub secondary: Vec<[u8; 32]>,
    /// False for blobs a byzantine client encoded inconsistently.
    pub consistent: bool,
}

/// Everything the audit looks at.
pub struct AuditInput<'a> {
    pub chain: &'a Chain,
    pub snapshots: &'a BTreeMap<NodeId, NodeSnapshot>,
    pub truths: &'a BTreeMap<BlobId, BlobTruth>,
    /// blob -> whether a client could read it back (decoded bytes equal the original).
    pub reads: &'a BTreeMap<BlobId, bool>,
    pub t_ms: u64,
}

struct Findings {
    t_ms: u64,
    out: Vec<Violation>,
}

impl Findings {
    fn add(
        &mut self,
        invariant: Invariant,
        node: Option<NodeId>,
        shard: Option<ShardIndex>,
        message: String,
    ) {
        self.out.push(Violation {
            invariant,
            node,
            shard,
            t_ms: self.t_ms,
            message,
            context: Vec::new(),
        });
    }
}

/// Audits the cluster; returns every violation found (empty when converged).
pub fn audit(input: &AuditInput<'_>) -> Vec<Violation> {
    let mut f = Findings {
        t_ms: input.t_ms,
        out: Vec::new(),
    };
    let epoch = input.chain.epoch();
    let committee = input.chain.committee(epoch).unwrap_or_default();
    let certified: BTreeSet<BlobId> = input
        .chain
        .blobs()
        .into_iter()
        .filter(|(id, r)| {
            r.is_certified_at(epoch) && input.truths.get(id).is_some_and(|t| t.consistent)
        })
        .map(|(id, _)| id)
        .collect();
    for (node, snap) in input.snapshots {
        check_slivers_match_truth(&mut f, *node, snap, input.truths);
        let owned = committee.shards_of(*node);
        check_node_status(&mut f, *node, snap, !owned.is_empty());
        for shard in owned {
            check_owned_shard(&mut f, *node, shard, snap, &certified);
        }
        if committee.contains(*node) {
            let missing = certified.difference(&snap.metadata).count();
            if missing > 0 {
                f.add(
                    Invariant::Liveness,
                    Some(*node),
                    None,
                    format!("metadata missing for {missing} certified blobs"),
                );
            }
        }
    }
    for blob in &certified {
        if input.reads.get(blob) == Some(&false) {
            f.add(
                Invariant::Reconstructible,
                None,
                None,
                format!("certified blob {blob} cannot be read back"),
            );
        }
    }
    f.out
}

fn check_node_status(f: &mut Findings, node: NodeId, snap: &NodeSnapshot, member: bool) {
    let want = if member {
        NodeStatus::Active
    } else {
        NodeStatus::Standby
    };
    if snap.status != Some(want) {
        let got = snap.status.map_or("(none)".to_string(), |s| s.to_string());
        f.add(
            Invariant::Liveness,
            Some(node),
            None,
            format!("status {got}, expected {want} after healing"),
        );
    }
}

fn check_owned_shard(
    f: &mut Findings,
    node: NodeId,
    shard: ShardIndex,
    snap: &NodeSnapshot,
    certified: &BTreeSet<BlobId>,
) {
    if snap.sync_tasks_failed.contains(&shard) {
        return; // a terminally failed sync is retried only by a restart (spec invariant 7)
    }
    let Some(s) = snap.shards.get(&shard) else {
        f.add(
            Invariant::Liveness,
            Some(node),
            Some(shard),
            "owned shard has no storage".into(),
        );
        return;
    };
    if s.status != ShardStatus::Active {
        f.add(
            Invariant::Liveness,
            Some(node),
            Some(shard),
            format!("owned shard is {}, not Active", s.status),
        );
    }
    for (ty, map) in [
        (SliverType::Primary, &s.primary),
        (SliverType::Secondary, &s.secondary),
    ] {
        let missing: Vec<String> = certified
            .iter()
            .filter(|b| !map.contains_key(b))
            .map(|b| b.to_string())
            .collect();
        if !missing.is_empty() {
            let (n, first) = (missing.len(), missing[..missing.len().min(3)].join(", "));
            f.add(
                Invariant::Liveness,
                Some(node),
                Some(shard),
                format!("{n} certified blobs lack their {ty} sliver (first: {first})"),
            );
        }
    }
    if !s.pending.is_empty() {
        f.add(
            Invariant::Liveness,
            Some(node),
            Some(shard),
            format!("{} blobs still pending recovery", s.pending.len()),
        );
    }
}

fn check_slivers_match_truth(
    f: &mut Findings,
    node: NodeId,
    snap: &NodeSnapshot,
    truths: &BTreeMap<BlobId, BlobTruth>,
) {
    for (shard, s) in &snap.shards {
        for (ty, map) in [
            (SliverType::Primary, &s.primary),
            (SliverType::Secondary, &s.secondary),
        ] {
            for (blob, hash) in map {
                let Some(truth) = truths.get(blob) else {
                    continue;
                };
                let expected = match ty {
                    SliverType::Primary => truth.primary.get(shard.0 as usize),
                    SliverType::Secondary => truth.secondary.get(shard.0 as usize),
                };
                if expected != Some(hash) {
                    f.add(
                        Invariant::UnverifiedSliver,
                        Some(node),
                        Some(*shard),
                        format!("stored {ty} sliver of blob {blob} does not match its encoding"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
