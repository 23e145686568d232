//! The oracle: safety checkers (`checkers`, one per concern) that follow every trace event and
//! audit what each node's database holds against the oracle's own model (`model`) and its own
//! copy of the spec's rules (`rules`), combined by `safety`; and the liveness audit of the
//! converged cluster (`liveness`). A violation names the invariant, the node and shard, the
//! simulated time and the trace lines before it.

mod checkers;
mod liveness;
mod model;
mod rules;
mod safety;

pub use liveness::{audit, AuditInput, BlobTruth};
pub use model::NodeModel;
pub use safety::SafetyOracle;

/// When the oracle audits a node's stored state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuditPoint {
    /// Right after a crash, before the restarted node's own restart logic runs: what the disk
    /// holds after lost unsynced and torn writes.
    AfterRestart,
    /// The node reported `EpochChangeStart`.
    EpochChangeStart,
    /// The node finished processing an `EpochChangeStart`.
    EpochChangeProcessed,
    /// The chain completed an epoch change (every up node).
    EpochChangeDone,
    /// A write's outcome was unknown (a disk error): the first quiet step after it.
    AfterDiskError,
    /// The end of the run (every up node).
    End,
}

impl AuditPoint {
    pub fn name(&self) -> &'static str {
        match self {
            AuditPoint::AfterRestart => "after-restart",
            AuditPoint::EpochChangeStart => "epoch-change-start",
            AuditPoint::EpochChangeProcessed => "epoch-change-processed",
            AuditPoint::EpochChangeDone => "epoch-change-done",
            AuditPoint::AfterDiskError => "after-disk-error",
            AuditPoint::End => "end",
        }
    }
}

use shardstorm_node::{NodeId, ShardIndex};
use std::fmt;

/// Every invariant the oracle checks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1: every node-status write follows the legal-transition table.
    LegalTransition,
    /// 2: `RecoverMetadata -> Active` only by the task that completed metadata recovery, and
    /// only while the stored status is still `RecoverMetadata`.
    MetadataCompletion,
    /// 3: no sync path rewrites `LockedToMove` while the shard is not owned.
    LockedShardRewritten,
    /// 4: S2 only on shards owned in the current committee.
    SyncOfUnownedShard,
    /// 5: progress monotonic, committed with its slivers, no sliver fetched twice.
    ProgressMonotonic,
    /// 6: `epoch_sync_done` only when no sync is in flight or failed and every owned shard is
    /// `Active`.
    PrematureAttestation,
    /// 9: the source never serves a requester that does not own the shard in the source's
    /// committee view.
    ServedNonOwner,
    /// A sync switches to direct recovery only when forced by an error or after no progress
    /// for `switch_to_recovery_interval`.
    RecoverySwitch,
    /// No unverified sliver is stored; every stored sliver matches its blob's encoding.
    UnverifiedSliver,
    /// A node panicked (a host of the simulation failed).
    NodePanic,
    /// What a node's storage holds, or a `from` it reports, contradicts the history of its
    /// reported writes (a write lost, reverted by a crash, or never reported).
    StoredState,
    /// A shard-status write broke its writer's precondition (spec 3).
    ShardTransition,
    /// 8: replaying `EpochChangeStart` after a crash reaches the same state as processing it
    /// once.
    ReplayIdempotent,
    /// The oracle could not read a node's storage (it is unreadable for the node too).
    UnreadableStorage,
    /// Every certified blob stays reconstructible while the fault budget holds.
    Reconstructible,
    /// 7 and liveness: after healing, the cluster converges.
    Liveness,
}

impl Invariant {
    pub const ALL: [Invariant; 16] = [
        Invariant::LegalTransition,
        Invariant::MetadataCompletion,
        Invariant::LockedShardRewritten,
        Invariant::SyncOfUnownedShard,
        Invariant::ProgressMonotonic,
        Invariant::PrematureAttestation,
        Invariant::ServedNonOwner,
        Invariant::RecoverySwitch,
        Invariant::UnverifiedSliver,
        Invariant::NodePanic,
        Invariant::StoredState,
        Invariant::ShardTransition,
        Invariant::ReplayIdempotent,
        Invariant::UnreadableStorage,
        Invariant::Reconstructible,
        Invariant::Liveness,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Invariant::LegalTransition => "legal-transition",
            Invariant::MetadataCompletion => "metadata-completion",
            Invariant::LockedShardRewritten => "locked-shard-rewritten",
            Invariant::SyncOfUnownedShard => "sync-of-unowned-shard",
            Invariant::ProgressMonotonic => "progress-monotonic",
            Invariant::PrematureAttestation => "premature-attestation",
            Invariant::ServedNonOwner => "served-non-owner",
            Invariant::RecoverySwitch => "recovery-switch",
            Invariant::UnverifiedSliver => "unverified-sliver",
            Invariant::NodePanic => "node-panic",
            Invariant::StoredState => "stored-state",
            Invariant::ShardTransition => "shard-transition",
            Invariant::ReplayIdempotent => "replay-idempotent",
            Invariant::UnreadableStorage => "unreadable-storage",
            Invariant::Reconstructible => "reconstructible",
            Invariant::Liveness => "liveness",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Invariant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Invariant::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| format!("unknown invariant `{s}`"))
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: Invariant,
    pub node: Option<NodeId>,
    pub shard: Option<ShardIndex>,
    pub t_ms: u64,
    pub message: String,
    /// The trace lines before the violation (at most 30).
    pub context: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node.map_or_else(|| "-".into(), |n| n.to_string());
        let shard = self.shard.map_or_else(|| "-".into(), |s| s.to_string());
        write!(
            f,
            "invariant {} violated at {:.3}s on node {node} shard {shard}: {}",
            self.invariant,
            self.t_ms as f64 / 1000.0,
            self.message
        )
    }
}
