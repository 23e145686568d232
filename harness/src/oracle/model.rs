//! The oracle's canonical history of one node: what its storage must hold if every write it
//! reported committed and nothing else was written (statuses, shard storage, progress), plus
//! the in-memory facts the oracle counts itself from the trace (running and failed syncs,
//! outer tasks that completed metadata recovery). After a crash, and whenever a write's outcome
//! became unknown (a disk error, a crash point right after a commit), the model is *uncertain*
//! until the next state audit re-bases it on what the disk holds.

use shardstorm_node::ctx::{NodeStatusWriter, ShardStatusWriter, SyncOutcome, TaskId};
use shardstorm_node::storage::{Progress, StoredState};
use shardstorm_node::{Epoch, NodeStatus, ProbeEvent, ShardIndex, ShardStatus};
use std::collections::{BTreeMap, BTreeSet};

/// What the oracle knows of one node.
#[derive(Debug, Default, Clone)]
pub struct NodeModel {
    pub status: Option<NodeStatus>,
    /// Shards with storage and their status.
    pub shards: BTreeMap<ShardIndex, ShardStatus>,
    /// Committed sync progress per shard (persisted).
    pub progress: BTreeMap<ShardIndex, Progress>,
    /// Running per-shard syncs of this process, with their sync epoch.
    pub sync_running: BTreeMap<ShardIndex, Epoch>,
    /// Per-shard syncs that ended in terminal failure (their map entry stays).
    pub sync_failed: BTreeSet<ShardIndex>,
    /// The sync epoch of the sync that committed each shard's latest progress (kept across
    /// restarts: a resumed sync may run under a later epoch than the progress it resumes).
    pub progress_epoch: BTreeMap<ShardIndex, Epoch>,
    /// Outer tasks of this process that completed metadata recovery.
    pub metadata_done: BTreeSet<TaskId>,
    /// The last metadata recovery of this process failed.
    pub metadata_failed: bool,
    /// Per shard: simulated ms of the running sync's start or last committed progress.
    pub last_progress_ms: BTreeMap<ShardIndex, u64>,
    /// The epoch `e` of the last node-status write if it was N11 over `RecoveryInProgress(e)`
    /// (node recovery then attests `e`).
    pub recovered: Option<Epoch>,
    /// Why the model may lag the disk (until the next audit), if it may.
    pub uncertain: Option<&'static str>,
    /// Process incarnations seen (the first `Started` is 1).
    pub incarnation: u32,
    /// The node is down (crashed, not restarted yet).
    pub down: bool,
}

impl NodeModel {
    /// Why this node is stuck in a state the spec says only a restart resolves, if it is.
    pub fn needs_restart(&self) -> Option<&'static str> {
        if self.metadata_failed && self.status == Some(NodeStatus::RecoverMetadata) {
            return Some("metadata recovery failed");
        }
        (!self.sync_failed.is_empty()).then_some("a shard sync failed terminally")
    }

    /// Whether the model is known to equal the disk.
    pub fn certain(&self) -> bool {
        self.uncertain.is_none()
    }

    /// The crash: in-memory state is gone; the disk keeps only committed writes.
    pub fn crashed(&mut self) {
        self.down = true;
        self.sync_running.clear();
        self.sync_failed.clear();
        self.metadata_done.clear();
        self.metadata_failed = false;
        self.uncertain.get_or_insert("the node crashed");
    }

    /// Re-bases the persisted part of the model on what the disk holds.
    pub fn rebase(&mut self, state: &StoredState) {
        self.status = state.status;
        self.shards = state.shards.iter().map(|(i, s)| (*i, s.status)).collect();
        self.progress = state
            .shards
            .iter()
            .filter_map(|(i, s)| s.progress.map(|p| (*i, p)))
            .collect();
        self.uncertain = None;
    }

    /// Applies one reported event (after the checkers have judged it).
    pub fn apply(&mut self, event: &ProbeEvent, t_ms: u64) {
        match event {
            ProbeEvent::Started => {
                self.incarnation += 1;
                self.down = false;
                self.metadata_failed = false;
                self.metadata_done.clear();
                self.sync_running.clear();
                self.sync_failed.clear();
            }
            ProbeEvent::NodeStatus { to, writer, .. } => {
                self.recovered = match (writer, self.status) {
                    (NodeStatusWriter::N11, Some(NodeStatus::RecoveryInProgress(e))) => Some(e),
                    _ => None,
                };
                self.status = Some(*to);
            }
            ProbeEvent::MetadataRecoveryFinish { task, ok, .. } => {
                self.metadata_failed = !ok;
                if *ok {
                    self.metadata_done.insert(*task);
                }
            }
            ProbeEvent::ShardStatus {
                shard, to, writer, ..
            } => {
                self.shards.insert(*shard, *to);
                if matches!(writer, ShardStatusWriter::S2 | ShardStatusWriter::S4) {
                    self.progress.remove(shard);
                }
                if *writer == ShardStatusWriter::S6 {
                    // Full node recovery took the shard over: progress left by its transfer is
                    // stale from here on (also once the shard is later locked), so what it
                    // covers is no longer the transfer's to fill.
                    self.progress_epoch.remove(shard);
                }
            }
            ProbeEvent::ShardDropped { shard } => {
                self.shards.remove(shard);
                self.progress.remove(shard);
            }
            ProbeEvent::SyncStart { shard, epoch } => {
                self.last_progress_ms.insert(*shard, t_ms);
                self.sync_running.insert(*shard, *epoch);
                self.sync_failed.remove(shard);
            }
            ProbeEvent::SyncFinish { shard, outcome, .. } => {
                self.sync_running.remove(shard);
                match outcome {
                    SyncOutcome::Failed => {
                        self.sync_failed.insert(*shard);
                    }
                    // S4 deletes progress even when it leaves a concurrent lock in place (and
                    // then reports no status write).
                    SyncOutcome::Success => {
                        self.progress.remove(shard);
                    }
                    // The node forgot the task: a failed one no longer blocks attestation (node
                    // recovery took the shard over, or its storage was dropped).
                    SyncOutcome::Cancelled => {
                        self.sync_failed.remove(shard);
                    }
                    SyncOutcome::SimulatedCrash => {}
                }
            }
            ProbeEvent::SyncProgress {
                shard, ty, last, ..
            } => {
                self.last_progress_ms.insert(*shard, t_ms);
                self.progress.insert(*shard, (*last, *ty));
                if let Some(epoch) = self.sync_running.get(shard) {
                    self.progress_epoch.insert(*shard, *epoch);
                }
            }
            _ => {}
        }
    }
}
