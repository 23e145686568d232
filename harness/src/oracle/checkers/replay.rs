//! Replay (spec 7, invariant 8): `EpochChangeStart(e)` replayed after a crash reaches the same
//! state as processing it once. When a node processes an epoch change it had already finished
//! processing in an earlier incarnation (the crash came before the event was marked complete),
//! the checker compares the state the disk held right after the crash (before the node's own
//! restart logic) with the state after the replay: equal digests pass at once; otherwise every
//! difference must be one that syncs running meanwhile or the finisher explain. A replay may
//! not create or drop other shards, rewrite an `Active` or `LockedToMove` shard, wipe committed
//! progress, lose a stored sliver or a pending entry, or change the node status. Audits run
//! between simulation steps: a replay followed in the same step by a later epoch change is not
//! judged, since the two cannot be told apart; nor is a replay that finds the chain already past
//! its epoch (N4: it takes the catch-up path, which the first processing did not).

use super::{found, Checker, EventCx, Found, StateCx};
use crate::oracle::{AuditPoint, Invariant};
use shardstorm_node::storage::{StoredShard, StoredState};
use shardstorm_node::{BlobId, SliverType};
use shardstorm_node::{Chain, Epoch, NodeId, NodeStatus, ProbeEvent, ShardIndex, ShardStatus};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
struct NodeReplay {
    /// Epoch changes whose processing finished in an earlier incarnation.
    processed_before: BTreeSet<Epoch>,
    /// ... and in this one.
    processed_now: BTreeSet<Epoch>,
    /// The state after the last crash (the after-restart audit).
    after_crash: Option<StoredState>,
    /// A replay under way: its epoch.
    replaying: Option<Epoch>,
    /// A replay whose processing finished: judged at the next audit.
    judge: Option<Epoch>,
    /// A node-status write by a path other than the epoch change happened during the replay
    /// window (lag detection), so the status is not compared.
    status_moved: bool,
}

#[derive(Default)]
pub struct ReplayChecker {
    nodes: BTreeMap<NodeId, NodeReplay>,
}

impl Checker for ReplayChecker {
    fn on_event(&mut self, cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        let r = self.nodes.entry(cx.node).or_default();
        match event {
            ProbeEvent::Started => {
                let now = std::mem::take(&mut r.processed_now);
                r.processed_before.extend(now);
                r.replaying = None;
                r.judge = None;
                r.status_moved = false;
            }
            ProbeEvent::EpochChangeStart { epoch } => {
                if r.judge.is_some_and(|j| *epoch > j) {
                    // A later epoch change processed before the audit (catch-up in the same
                    // step): its writes cannot be told from the replay's, so the replay is not
                    // judged (audits run between steps).
                    r.judge = None;
                }
                let replay = r.processed_before.contains(epoch) && !r.processed_now.contains(epoch);
                if replay && r.after_crash.is_some() {
                    r.replaying = Some(*epoch);
                }
            }
            ProbeEvent::NodeStatus { writer, .. } => {
                use shardstorm_node::ctx::NodeStatusWriter::*;
                if *writer == N4 {
                    // The chain had moved past the epoch by the time the replay asked it: the
                    // replay rightly takes the catch-up path the first processing did not, so
                    // the two are not comparable.
                    r.replaying = None;
                }
                if !matches!(writer, N4 | N5 | N6 | N7 | N8 | N9) {
                    r.status_moved = true;
                }
            }
            ProbeEvent::EpochChangeProcessed { epoch } => {
                r.processed_now.insert(*epoch);
                if r.replaying == Some(*epoch) {
                    r.replaying = None;
                    r.judge = Some(*epoch);
                }
            }
            _ => {}
        }
        None
    }

    fn wants_audit(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|r| r.judge.is_some())
    }

    fn check_state(&mut self, cx: &StateCx<'_>) -> Option<Found> {
        let r = self.nodes.entry(cx.node).or_default();
        if cx.point == AuditPoint::AfterRestart {
            r.after_crash = Some(cx.state.clone());
            r.status_moved = false;
            return None;
        }
        let epoch = r.judge.take()?;
        let before = r.after_crash.as_ref()?;
        if before.digest() == cx.state.digest() {
            return None;
        }
        let why = explain(cx.chain, cx.node, epoch, before, cx.state, r.status_moved)?;
        found(
            Invariant::ReplayIdempotent,
            why.0,
            format!(
                "replaying EpochChangeStart({epoch}) after a crash {}",
                why.1
            ),
        )
    }
}

/// The first difference between `before` (the crash) and `after` (the replay) that nothing
/// but the replay explains.
fn explain(
    chain: &Chain,
    node: NodeId,
    epoch: Epoch,
    before: &StoredState,
    after: &StoredState,
    status_moved: bool,
) -> Option<(Option<ShardIndex>, String)> {
    if !status_moved && !same_variant(before.status, after.status) {
        return Some((
            None,
            format!(
                "changed the node status from {:?} to {:?}",
                before.status, after.status
            ),
        ));
    }
    let keep: BTreeSet<ShardIndex> = [epoch.saturating_sub(1), epoch]
        .iter()
        .filter_map(|e| chain.committee(*e))
        .flat_map(|c| c.shards_of(node))
        .collect();
    for shard in after.shards.keys() {
        if !before.shards.contains_key(shard) {
            return Some((Some(*shard), format!("created storage for {shard} again")));
        }
    }
    for (shard, b) in &before.shards {
        match after.shards.get(shard) {
            None if keep.contains(shard) => {
                return Some((
                    Some(*shard),
                    format!("dropped the storage of {shard}, which it still owns"),
                ))
            }
            None => {}
            Some(a) => {
                if let Some(why) = shard_difference(chain, b, a) {
                    return Some((Some(*shard), format!("{why} of {shard}")));
                }
            }
        }
    }
    None
}

fn same_variant(a: Option<NodeStatus>, b: Option<NodeStatus>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::mem::discriminant(&a) == std::mem::discriminant(&b),
        (a, b) => a == b,
    }
}

/// What a replay changed in one shard that a running sync does not explain.
fn shard_difference(chain: &Chain, b: &StoredShard, a: &StoredShard) -> Option<String> {
    use ShardStatus::*;
    let forward = match (b.status, a.status) {
        (x, y) if x == y => true,
        (None, ActiveSync | ActiveRecover | Active) => true,
        (ActiveSync, ActiveRecover | Active) | (ActiveRecover, ActiveSync | Active) => true,
        _ => false,
    };
    if !forward {
        return Some(format!("rewrote {} to {}", b.status, a.status));
    }
    if matches!(a.status, ActiveSync | ActiveRecover) {
        if let Some(p) = b.progress {
            if !a.progress.is_some_and(|q| not_behind(q, p)) {
                return Some(format!("wiped the committed progress {:?}", p));
            }
        }
    }
    let live = |blob: &BlobId| {
        chain
            .blob(*blob)
            .is_some_and(|r| r.is_certified_at(chain.epoch()))
    };
    if let Some((ty, blob)) = b
        .slivers
        .keys()
        .find(|k| live(&k.1) && !a.slivers.contains_key(k))
    {
        return Some(format!("lost the stored {ty} sliver of {blob}"));
    }
    b.pending
        .iter()
        .find(|k| live(&k.1) && !a.pending.contains(k) && !a.slivers.contains_key(k))
        .map(|(ty, blob)| format!("lost the pending {ty} entry of {blob}"))
}

fn not_behind(now: (BlobId, SliverType), then: (BlobId, SliverType)) -> bool {
    match (now.1, then.1) {
        (SliverType::Secondary, SliverType::Primary) => true,
        (x, y) if x == y => now.0 >= then.0,
        _ => false,
    }
}
