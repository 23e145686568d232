//! Safety invariants checked at every trace event, against a model of each node built from the
//! probe events (statuses, tasks, progress) and the chain's committees.

use super::{Invariant, Violation};
use crate::trace::{TraceEvent, TraceKind};
use shardstorm_node::ctx::{
    AttestationPath, NodeStatusWriter, ShardStatusWriter, SyncOutcome, TaskId,
};
use shardstorm_node::{
    legal_transition, BlobId, Chain, Epoch, NodeId, NodeStatus, ProbeEvent, ShardIndex,
    ShardStatus, SliverType,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the oracle knows of one node.
#[derive(Debug, Default, Clone)]
pub struct NodeModel {
    pub status: Option<NodeStatus>,
    pub shards: BTreeMap<ShardIndex, ShardStatus>,
    /// Outer tasks of the current process that completed metadata recovery.
    metadata_done: BTreeSet<TaskId>,
    pub sync_running: BTreeSet<ShardIndex>,
    pub sync_failed: BTreeSet<ShardIndex>,
    /// Last committed progress per (shard, type); persisted, so it survives restarts.
    progress: BTreeMap<(ShardIndex, SliverType), BlobId>,
    /// Per shard: simulated ms of the running sync's start or last committed progress.
    last_progress_ms: BTreeMap<ShardIndex, u64>,
    /// The last metadata recovery of this process failed (the spec leaves the node in
    /// `RecoverMetadata` until a restart or a new `start_sync_shards`).
    pub metadata_failed: bool,
}

impl NodeModel {
    /// Why this node is stuck in a state the spec says only a restart resolves, if it is.
    pub fn needs_restart(&self) -> Option<&'static str> {
        if self.metadata_failed && self.status == Some(NodeStatus::RecoverMetadata) {
            return Some("metadata recovery failed");
        }
        (!self.sync_failed.is_empty()).then_some("a shard sync failed terminally")
    }
}

/// The incremental safety checker.
pub struct SafetyOracle {
    chain: Chain,
    /// The nodes' `switch_to_recovery_interval`, in ms.
    switch_interval_ms: u64,
    pub nodes: BTreeMap<NodeId, NodeModel>,
    checked: usize,
}

/// A violation found at one event, before context is attached.
struct Found {
    invariant: Invariant,
    shard: Option<ShardIndex>,
    message: String,
}

fn found(invariant: Invariant, shard: Option<ShardIndex>, message: String) -> Option<Found> {
    Some(Found {
        invariant,
        shard,
        message,
    })
}

impl SafetyOracle {
    pub fn new(chain: Chain) -> Self {
        let switch = shardstorm_node::NodeConfig::simulation().switch_to_recovery_interval;
        Self::with_switch_interval(chain, switch.as_millis() as u64)
    }

    /// An oracle for nodes configured with another `switch_to_recovery_interval`.
    pub fn with_switch_interval(chain: Chain, switch_interval_ms: u64) -> Self {
        Self {
            chain,
            switch_interval_ms,
            nodes: BTreeMap::new(),
            checked: 0,
        }
    }

    /// How many trace events were checked so far.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// Checks every event not yet checked; returns the first violation.
    pub fn check_new(&mut self, events: &[TraceEvent]) -> Option<Violation> {
        while self.checked < events.len() {
            let index = self.checked;
            self.checked += 1;
            let event = &events[index];
            let (Some(node), TraceKind::Probe(probe)) = (event.node, &event.kind) else {
                continue;
            };
            if let Some(f) = self.apply(node, probe, event.t_ms) {
                let start = index.saturating_sub(29);
                let context = events[start..=index]
                    .iter()
                    .map(|e| e.to_string())
                    .collect();
                return Some(Violation {
                    invariant: f.invariant,
                    node: Some(node),
                    shard: f.shard,
                    t_ms: event.t_ms,
                    message: f.message,
                    context,
                });
            }
        }
        None
    }

    fn owner(&self, epoch: Epoch, shard: ShardIndex) -> Option<NodeId> {
        self.chain.committee(epoch).and_then(|c| c.owner(shard))
    }

    /// Updates the model with one probe event and checks it.
    fn apply(&mut self, node: NodeId, event: &ProbeEvent, t_ms: u64) -> Option<Found> {
        let switch_interval_ms = self.switch_interval_ms;
        let chain_epoch = self.chain.epoch();
        let owned_now: BTreeSet<ShardIndex> = self
            .chain
            .committee(chain_epoch)
            .map(|c| c.shards_of(node))
            .unwrap_or_default();
        let model = self.nodes.entry(node).or_default();
        match event {
            ProbeEvent::Started => {
                model.metadata_failed = false;
                model.metadata_done.clear();
                model.sync_running.clear();
                model.sync_failed.clear();
                None
            }
            ProbeEvent::NodeStatus {
                from,
                to,
                writer,
                task,
            } => {
                let result = check_node_status(model, from.as_ref(), to, *writer, *task);
                model.status = Some(*to);
                result
            }
            ProbeEvent::MetadataRecoveryFinish { task, ok, .. } => {
                model.metadata_failed = !ok;
                if *ok {
                    model.metadata_done.insert(*task);
                }
                None
            }
            ProbeEvent::ShardStatus {
                shard,
                from,
                to,
                writer,
                epoch,
            } => {
                let owner = self.owner(*epoch, *shard);
                let model = self.nodes.entry(node).or_default();
                let result =
                    check_shard_status(node, owner, *shard, from.as_ref(), *writer, *epoch);
                model.shards.insert(*shard, *to);
                if *writer == ShardStatusWriter::S2 {
                    model.progress.retain(|(s, _), _| s != shard);
                }
                result
            }
            ProbeEvent::ShardDropped { shard } => {
                model.shards.remove(shard);
                model.progress.retain(|(s, _), _| s != shard);
                None
            }
            ProbeEvent::SyncStart { shard, .. } => {
                model.last_progress_ms.insert(*shard, t_ms);
                model.sync_running.insert(*shard);
                model.sync_failed.remove(shard);
                None
            }
            ProbeEvent::SyncFinish { shard, outcome, .. } => {
                model.sync_running.remove(shard);
                match outcome {
                    SyncOutcome::Failed => {
                        model.sync_failed.insert(*shard);
                    }
                    SyncOutcome::Success => model.progress.retain(|(s, _), _| s != shard),
                    SyncOutcome::SimulatedCrash | SyncOutcome::Cancelled => {}
                }
                None
            }
            ProbeEvent::SyncProgress {
                shard,
                ty,
                first,
                last,
                ..
            } => {
                model.last_progress_ms.insert(*shard, t_ms);
                check_progress(model, *shard, *ty, *first, *last)
            }
            ProbeEvent::DirectRecovery {
                shard,
                forced: false,
            } => {
                let since = model
                    .last_progress_ms
                    .get(shard)
                    .map(|p| t_ms.saturating_sub(*p));
                match since {
                    Some(ms) if ms < switch_interval_ms => found(
                        Invariant::RecoverySwitch,
                        Some(*shard),
                        format!("switched to direct recovery {ms} ms after progress (interval {switch_interval_ms} ms)"),
                    ),
                    _ => None,
                }
            }
            ProbeEvent::SliverStored {
                shard,
                ty,
                blob,
                verified: false,
            } => found(
                Invariant::UnverifiedSliver,
                Some(*shard),
                format!("stored an unverified {ty} sliver of blob {blob}"),
            ),
            ProbeEvent::SliversServed {
                requester,
                shard,
                epoch,
                ..
            } => check_served(self.owner(*epoch, *shard), *requester, *shard, *epoch),
            ProbeEvent::Attestation {
                epoch,
                path,
                tasks_in_flight,
                tasks_failed,
            } => {
                let owned = if *epoch == chain_epoch {
                    owned_now
                } else {
                    BTreeSet::new()
                };
                check_attestation(
                    model,
                    *epoch,
                    *path,
                    *tasks_in_flight,
                    *tasks_failed,
                    &owned,
                )
            }
            _ => None,
        }
    }
}

/// Invariant 9: a page of slivers goes only to the shard's owner in the committee of the
/// epoch the source served it under.
fn check_served(
    owner: Option<NodeId>,
    requester: NodeId,
    shard: ShardIndex,
    epoch: Epoch,
) -> Option<Found> {
    if owner == Some(requester) {
        return None;
    }
    let owner = owner.map_or_else(|| "nobody".to_string(), |o| o.to_string());
    found(
        Invariant::ServedNonOwner,
        Some(shard),
        format!(
            "served slivers of {shard} to {requester} under epoch {epoch}, whose owner is {owner}"
        ),
    )
}

/// Invariants 1 and 2.
fn check_node_status(
    model: &NodeModel,
    from: Option<&NodeStatus>,
    to: &NodeStatus,
    writer: NodeStatusWriter,
    task: Option<TaskId>,
) -> Option<Found> {
    if writer == NodeStatusWriter::N10
        || (from == Some(&NodeStatus::RecoverMetadata) && *to == NodeStatus::Active)
    {
        if from != Some(&NodeStatus::RecoverMetadata) {
            return found(
                Invariant::MetadataCompletion,
                None,
                format!(
                    "{writer:?} wrote Active over {} (not RecoverMetadata)",
                    fmt_status(from)
                ),
            );
        }
        let completed = task.is_some_and(|t| model.metadata_done.contains(&t));
        if !completed {
            return found(
                Invariant::MetadataCompletion,
                None,
                format!("RecoverMetadata -> Active by task {task:?}, which did not complete metadata recovery"),
            );
        }
    }
    if !legal_transition(from, to) {
        return found(
            Invariant::LegalTransition,
            None,
            format!(
                "illegal transition {} -> {to} by {writer:?}",
                fmt_status(from)
            ),
        );
    }
    None
}

fn fmt_status(s: Option<&NodeStatus>) -> String {
    s.map_or_else(|| "(none)".to_string(), |s| s.to_string())
}

/// Invariants 3 and 4.
fn check_shard_status(
    node: NodeId,
    owner: Option<NodeId>,
    shard: ShardIndex,
    from: Option<&ShardStatus>,
    writer: ShardStatusWriter,
    epoch: Epoch,
) -> Option<Found> {
    use ShardStatusWriter::*;
    let owned = owner == Some(node);
    if writer == S2 && !owned {
        return found(
            Invariant::SyncOfUnownedShard,
            Some(shard),
            format!("S2 started a sync of {shard}, owned by {owner:?} in epoch {epoch}"),
        );
    }
    if matches!(writer, S2 | S3 | S4 | S5) && from == Some(&ShardStatus::LockedToMove) && !owned {
        return found(
            Invariant::LockedShardRewritten,
            Some(shard),
            format!("{writer:?} rewrote LockedToMove of unowned {shard} (owner {owner:?} in epoch {epoch})"),
        );
    }
    None
}

/// Invariant 5.
fn check_progress(
    model: &mut NodeModel,
    shard: ShardIndex,
    ty: SliverType,
    first: BlobId,
    last: BlobId,
) -> Option<Found> {
    let previous = model.progress.insert((shard, ty), last);
    if last < first {
        return found(
            Invariant::ProgressMonotonic,
            Some(shard),
            format!("{ty} batch ends at {last} before it starts at {first}"),
        );
    }
    match previous {
        Some(p) if first <= p => found(
            Invariant::ProgressMonotonic,
            Some(shard),
            format!("{ty} batch starts at {first}, not after the committed progress {p} (fetched twice or progress moved back)"),
        ),
        _ => None,
    }
}

/// Invariant 6 (and "attest only when every owned shard is Active").
fn check_attestation(
    model: &NodeModel,
    epoch: Epoch,
    path: AttestationPath,
    in_flight: usize,
    failed: usize,
    owned: &BTreeSet<ShardIndex>,
) -> Option<Found> {
    if path == AttestationPath::ShardSync
        && (in_flight > 0 || failed > 0 || !model.sync_running.is_empty())
    {
        return found(
            Invariant::PrematureAttestation,
            None,
            format!(
                "epoch_sync_done({epoch}) with {in_flight} syncs in flight and {failed} failed"
            ),
        );
    }
    if path == AttestationPath::Finisher {
        return None;
    }
    let not_active: Vec<String> = owned
        .iter()
        .filter(|s| model.shards.get(s) != Some(&ShardStatus::Active))
        .map(|s| {
            format!(
                "{s}={}",
                model
                    .shards
                    .get(s)
                    .map_or("missing".to_string(), |st| st.to_string())
            )
        })
        .collect();
    if !not_active.is_empty() {
        return found(
            Invariant::PrematureAttestation,
            None,
            format!(
                "epoch_sync_done({epoch}) by {path:?} while owned shards are not Active: {}",
                not_active.join(", ")
            ),
        );
    }
    None
}

#[cfg(test)]
mod tests;
