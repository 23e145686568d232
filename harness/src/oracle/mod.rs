//! The oracle: safety invariants checked at every trace event (`safety`), and the liveness
//! audit of the converged cluster (`liveness`). A violation names the invariant, the node and
//! shard, the simulated time and the trace lines before it.

mod liveness;
mod safety;

pub use liveness::{audit, AuditInput, BlobTruth};
pub use safety::SafetyOracle;

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
    /// Every certified blob stays reconstructible while the fault budget holds.
    Reconstructible,
    /// 7 and liveness: after healing, the cluster converges.
    Liveness,
}

impl Invariant {
    pub const ALL: [Invariant; 12] = [
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
