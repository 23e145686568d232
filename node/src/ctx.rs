//! The per-node context: identity, fail-point handle, probe and runtime switches. No globals: the
//! harness builds one `NodeCtx` per node and everything the node reports goes through it.

use crate::status::{NodeStatus, ShardStatus};
use crate::types::{BlobId, Epoch, NodeId, ShardIndex, SliverType};
use shardstorm_faults::FailPoints;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Identifies one outer sync-shards task (or another long-running task) of a node within one
/// process lifetime; the probe uses it to tie a status write to the task that made it.
pub type TaskId = u64;

/// Which rule of the spec wrote a node status (section 2.1), or a test's direct write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeStatusWriter {
    N1,
    N2,
    N3,
    N4,
    N5,
    N6,
    N7,
    N8,
    N9,
    N10,
    N11,
    /// A status change applied from outside (tests, the nemesis).
    Direct,
}

/// Which rule of the spec wrote a shard status (section 3), or a test's direct write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShardStatusWriter {
    S1,
    S2,
    S3,
    S4,
    S5,
    S6,
    S7,
    S8,
    Direct,
}

/// Which path sent an `epoch_sync_done` attestation (section 6.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttestationPath {
    ShardSync,
    Finisher,
    NodeRecovery,
}

/// How a per-shard sync task ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    Success,
    /// Terminal failure: the map entry stays, only a restart retries.
    Failed,
    /// `sync.no_retry` turned an error into a success that leaves the shard unfinished.
    SimulatedCrash,
    /// Aborted because the shard's storage was dropped.
    Cancelled,
}

/// Everything the node reports to the harness. `from` fields carry the value stored right
/// before the write, read in the same critical section as the write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    Started,
    NodeStatus {
        from: Option<NodeStatus>,
        to: NodeStatus,
        writer: NodeStatusWriter,
        task: Option<TaskId>,
    },
    ShardStatus {
        shard: ShardIndex,
        from: Option<ShardStatus>,
        to: ShardStatus,
        writer: ShardStatusWriter,
        /// The node's committee epoch at the write.
        epoch: Epoch,
    },
    ShardCreated {
        shard: ShardIndex,
    },
    ShardDropped {
        shard: ShardIndex,
    },
    OuterTaskStart {
        task: TaskId,
        shards: Vec<ShardIndex>,
    },
    OuterTaskAborted {
        task: TaskId,
    },
    MetadataRecoveryStart {
        task: TaskId,
    },
    MetadataRecoveryFinish {
        task: TaskId,
        ok: bool,
        blobs: usize,
    },
    SyncStart {
        shard: ShardIndex,
        epoch: Epoch,
    },
    SyncFinish {
        shard: ShardIndex,
        epoch: Epoch,
        outcome: SyncOutcome,
    },
    /// A committed batch of a transfer: progress is now `(last, ty)`.
    SyncProgress {
        shard: ShardIndex,
        ty: SliverType,
        first: BlobId,
        last: BlobId,
        slivers: usize,
        skipped: usize,
    },
    /// A sliver was stored by sync, recovery or an upload; `verified` says it matched metadata.
    SliverStored {
        shard: ShardIndex,
        ty: SliverType,
        blob: BlobId,
        verified: bool,
    },
    /// The sync switched to direct recovery: `forced` by an error, or for lack of progress.
    DirectRecovery {
        shard: ShardIndex,
        forced: bool,
    },
    RecoveryStart {
        shard: ShardIndex,
        pending: usize,
    },
    Attestation {
        epoch: Epoch,
        path: AttestationPath,
        tasks_in_flight: usize,
        tasks_failed: usize,
    },
    EpochChangeStart {
        epoch: Epoch,
    },
    /// Processing `EpochChangeStart(epoch)` returned (its finisher may still be running; the
    /// event is complete only once the cursor moves past it).
    EpochChangeProcessed {
        epoch: Epoch,
    },
    /// The epoch change waits for `pending` certified events still being handled (6.1 step 3).
    PendingEventsWait {
        epoch: Epoch,
        pending: usize,
    },
    RecoveryMode {
        event_epoch: Epoch,
    },
    BlobInvalidated {
        blob: BlobId,
    },
    NodeRecoveryStart {
        epoch: Epoch,
    },
    /// The source side of shard sync answered `requester` with a page of slivers of `shard`
    /// under its committee view of `epoch` (spec invariant 9 checks who was served).
    SliversServed {
        requester: NodeId,
        shard: ShardIndex,
        epoch: Epoch,
        slivers: usize,
    },
    Fatal {
        error: String,
    },
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), |v| v.to_string())
}

impl fmt::Display for ProbeEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProbeEvent::*;
        match self {
            Started => write!(f, "started"),
            NodeStatus { from, to, writer, task } => {
                write!(f, "node-status {} -> {to} by {writer:?} task={}", opt(from), opt(task))
            }
            ShardStatus { shard, from, to, writer, epoch } => {
                write!(f, "shard-status {shard} {} -> {to} by {writer:?} epoch={epoch}", opt(from))
            }
            ShardCreated { shard } => write!(f, "shard-created {shard}"),
            ShardDropped { shard } => write!(f, "shard-dropped {shard}"),
            OuterTaskStart { task, shards } => {
                let list: Vec<String> = shards.iter().map(|s| s.to_string()).collect();
                write!(f, "outer-start task={task} shards=[{}]", list.join(","))
            }
            OuterTaskAborted { task } => write!(f, "outer-aborted task={task}"),
            MetadataRecoveryStart { task } => write!(f, "metadata-start task={task}"),
            MetadataRecoveryFinish { task, ok, blobs } => {
                write!(f, "metadata-finish task={task} ok={ok} blobs={blobs}")
            }
            SyncStart { shard, epoch } => write!(f, "sync-start {shard} epoch={epoch}"),
            SliversServed { requester, shard, epoch, slivers } => {
                write!(f, "served {shard} to {requester} epoch={epoch} slivers={slivers}")
            }
            SyncFinish { shard, epoch, outcome } => write!(f, "sync-finish {shard} epoch={epoch} {outcome:?}"),
            SyncProgress { shard, ty, first, last, slivers, skipped } => {
                write!(f, "sync-progress {shard} {ty} first={first} last={last} slivers={slivers} skipped={skipped}")
            }
            SliverStored { shard, ty, blob, verified } => {
                write!(f, "sliver-stored {shard} {ty} {blob} verified={verified}")
            }
            DirectRecovery { shard, forced } => write!(f, "direct-recovery {shard} forced={forced}"),
            RecoveryStart { shard, pending } => write!(f, "recovery-start {shard} pending={pending}"),
            Attestation { epoch, path, tasks_in_flight, tasks_failed } => write!(
                f,
                "epoch-sync-done epoch={epoch} path={path:?} in_flight={tasks_in_flight} failed={tasks_failed}"
            ),
            EpochChangeStart { epoch } => write!(f, "epoch-change-start epoch={epoch}"),
            EpochChangeProcessed { epoch } => write!(f, "epoch-change-processed epoch={epoch}"),
            PendingEventsWait { epoch, pending } => {
                write!(f, "epoch-change-waits epoch={epoch} pending-events={pending}")
            }
            RecoveryMode { event_epoch } => write!(f, "recovery-mode event_epoch={event_epoch}"),
            BlobInvalidated { blob } => write!(f, "blob-invalidated {blob}"),
            NodeRecoveryStart { epoch } => write!(f, "node-recovery-start epoch={epoch}"),
            Fatal { error } => write!(f, "fatal {error}"),
        }
    }
}

/// Receives every probe event of a node. Implemented by the harness's trace recorder.
pub trait Probe: Send + Sync {
    fn record(&self, node: NodeId, event: ProbeEvent);
}

/// A probe that drops everything (unit tests, real processes).
pub struct NullProbe;

impl Probe for NullProbe {
    fn record(&self, _node: NodeId, _event: ProbeEvent) {}
}

/// Switches the harness flips while a node runs (faults that are not fail points).
#[derive(Debug, Default)]
pub struct Switches {
    /// Serve corrupted slivers to sync and recovery requests (a byzantine source).
    pub byzantine_source: AtomicBool,
}

impl Switches {
    pub fn byzantine(&self) -> bool {
        self.byzantine_source.load(Ordering::Relaxed)
    }
}

/// The context a node is built with.
#[derive(Clone)]
pub struct NodeCtx {
    pub id: NodeId,
    pub fail: FailPoints,
    pub probe: Arc<dyn Probe>,
    pub switches: Arc<Switches>,
    /// Seed for the node's own random choices (peer order); derived from the simulation seed.
    pub seed: u64,
}

impl NodeCtx {
    /// A context with no fail points, a null probe and seed 0.
    pub fn detached(id: NodeId) -> Self {
        Self {
            id,
            fail: FailPoints::disabled(id.host()),
            probe: Arc::new(NullProbe),
            switches: Arc::default(),
            seed: 0,
        }
    }

    /// Reports one event.
    pub fn report(&self, event: ProbeEvent) {
        self.probe.record(self.id, event);
    }
}
