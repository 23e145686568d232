//! Node configuration (spec section 1.2) and the public bug catalogue switches (section 12).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// A historical bug of the public catalogue that can be switched back on per node.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Bug {
    /// #3462 bug A: a new outer task aborts the one recovering metadata and skips recovery.
    AbortDropsMetadataRecovery,
    /// #3462 bug C: the `RecoverMetadata -> Active` flip uses the status read at task start.
    StaleStatusClobber,
    /// #3462 bug B: the metadata path syncs every stored shard, unowned ones included.
    MetadataSyncOfUnownedShards,
    /// #2530: sync completion writes shard statuses blindly, without the per-shard lock.
    BlindCompletionClobbersLock,
    /// #1919: the switch-to-recovery timer is never reset on progress.
    ProgressTimerNeverReset,
    /// Section 8.5: the reference completion is a separate read and write run by every outer
    /// task, so a concurrent status write can be clobbered or a fresh `RecoverMetadata` flipped.
    CompletionWindow,
    /// Found by exploration: the finisher drops a shard's storage (S8) while a sync of that
    /// shard is still running; the sync then fails terminally, its map entry stays, and the
    /// node never attests through the per-shard path again until it restarts.
    DroppedShardSyncBlocksAttestation,
    /// Found by exploration: full node recovery (S6) sets a shard `Active` while a per-shard
    /// sync of it, started by `restart_syncs`, is still pending; its next transfer attempt
    /// finds `Active` and the node panics on the per-attempt invariant.
    RecoveryClobbersRunningSync,
    /// Found by exploration: when a sync of an older epoch is the last to finish, the node
    /// attests only that stale epoch, never the current one, and the current epoch change can
    /// stall for want of its shards.
    StaleEpochAttestation,
    /// Found by exploration: a node that was down while it lost a shard never locks it (catch-up
    /// skips old epoch changes), so when it regains the shard the storage is still `Active` with
    /// stale contents and `start_new_shard_sync` skips it: blobs certified meanwhile are missing.
    StaleActiveShardRegained,
    /// Found by exploration: a shard moved out (locked) while its sync still ran and then moved
    /// back in is skipped by `start_new_shard_sync` because the old task is still in the map;
    /// the old task's S4 leaves `LockedToMove`, so the owned shard stays locked for good.
    RegainedLockedShardStaysLocked,
    /// Found by exploration: a storage error (a disk failing with EIO) ends the node-recovery
    /// task with a warning; nothing restarts it, so the node stays `RecoveryInProgress(e)`,
    /// never attests, and epoch change e never completes. The fixed node treats the error as
    /// fatal, so the restart resumes node recovery (spec section 7).
    NodeRecoveryStopsOnStorageError,
    /// Found by exploration (seed 895 of a 10-minute campaign): a storage error ends a
    /// certified event's blob sync with a log line; the event stays incomplete but nothing
    /// retries it while the node lives, so the blob's slivers stay missing. The fixed node
    /// retries the blob sync after a recovery round until the disk answers again.
    BlobSyncStopsOnStorageError,
    /// Found by the state-checking oracle: when the last sync finishes, the node attests its
    /// epoch (and the current one) even when it is not a member of that committee (it left
    /// the committee while a resumed or locked shard's sync ran): an `epoch_sync_done` from a
    /// non-member.
    NonMemberAttestation,
    /// Found by the state-checking oracle (invariant 8): replaying an epoch change after a
    /// crash takes a gained shard that its first processing already synced to `Active` for a
    /// shard left over from an earlier tenure, drops it and syncs it again from scratch.
    ReplayResyncsSyncedShard,
    /// Found by exploration once the chain became a host: processing an epoch change reads
    /// the node status before it waits for the chain (its epoch and committee); a
    /// `RecoveryCatchUp` written during that wait (lag detection, an operator) is then
    /// overwritten by `Standby` (N9) for a node outside the new committee.
    StatusReadBeforeChainWait,
    /// Found by exploration (seed 483): a crash right after N7 wrote `RecoveryInProgress(e)`,
    /// before the full-recovery path created the owned shards' storage; the restarted node
    /// recovery skips shards without storage, finds nothing missing, flips to `Active` (N11)
    /// and attests while owned shards do not exist.
    RestartedNodeRecoverySkipsUncreatedShards,
    /// Found by exploration (seed 2110) once attestations became network calls: a crash while
    /// `epoch_sync_done` is still being retried against a lossy link loses it; the restarted
    /// node has nothing left to sync and never attests again, so the epoch change never ends.
    /// The fixed node keeps the unanswered attestation in storage and sends it on restart.
    UnansweredAttestationLostOnCrash,
}

impl Bug {
    /// Every catalogue bug, in catalogue order.
    pub const ALL: [Bug; 18] = [
        Bug::AbortDropsMetadataRecovery,
        Bug::StaleStatusClobber,
        Bug::MetadataSyncOfUnownedShards,
        Bug::BlindCompletionClobbersLock,
        Bug::ProgressTimerNeverReset,
        Bug::CompletionWindow,
        Bug::DroppedShardSyncBlocksAttestation,
        Bug::RecoveryClobbersRunningSync,
        Bug::StaleEpochAttestation,
        Bug::StaleActiveShardRegained,
        Bug::RegainedLockedShardStaysLocked,
        Bug::NodeRecoveryStopsOnStorageError,
        Bug::BlobSyncStopsOnStorageError,
        Bug::NonMemberAttestation,
        Bug::ReplayResyncsSyncedShard,
        Bug::StatusReadBeforeChainWait,
        Bug::RestartedNodeRecoverySkipsUncreatedShards,
        Bug::UnansweredAttestationLostOnCrash,
    ];

    /// The catalogue name, as used on the command line and in run files.
    pub fn name(&self) -> &'static str {
        match self {
            Bug::AbortDropsMetadataRecovery => "abort-drops-metadata-recovery",
            Bug::StaleStatusClobber => "stale-status-clobber",
            Bug::MetadataSyncOfUnownedShards => "metadata-sync-of-unowned-shards",
            Bug::BlindCompletionClobbersLock => "blind-completion-clobbers-lock",
            Bug::ProgressTimerNeverReset => "progress-timer-never-reset",
            Bug::CompletionWindow => "completion-window",
            Bug::DroppedShardSyncBlocksAttestation => "dropped-shard-sync-blocks-attestation",
            Bug::RecoveryClobbersRunningSync => "recovery-clobbers-running-sync",
            Bug::StaleEpochAttestation => "stale-epoch-attestation",
            Bug::StaleActiveShardRegained => "stale-active-shard-regained",
            Bug::RegainedLockedShardStaysLocked => "regained-locked-shard-stays-locked",
            Bug::NodeRecoveryStopsOnStorageError => "node-recovery-stops-on-storage-error",
            Bug::BlobSyncStopsOnStorageError => "blob-sync-stops-on-storage-error",
            Bug::NonMemberAttestation => "non-member-attestation",
            Bug::ReplayResyncsSyncedShard => "replay-resyncs-synced-shard",
            Bug::StatusReadBeforeChainWait => "status-read-before-chain-wait",
            Bug::RestartedNodeRecoverySkipsUncreatedShards => {
                "restarted-node-recovery-skips-uncreated-shards"
            }
            Bug::UnansweredAttestationLostOnCrash => "unanswered-attestation-lost-on-crash",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown bug name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bug `{0}` (known: abort-drops-metadata-recovery, stale-status-clobber, metadata-sync-of-unowned-shards, blind-completion-clobbers-lock, progress-timer-never-reset, completion-window, dropped-shard-sync-blocks-attestation, recovery-clobbers-running-sync, stale-epoch-attestation, stale-active-shard-regained, regained-locked-shard-stays-locked, node-recovery-stops-on-storage-error, blob-sync-stops-on-storage-error, non-member-attestation, replay-resyncs-synced-shard, status-read-before-chain-wait, restarted-node-recovery-skips-uncreated-shards, unanswered-attestation-lost-on-crash)")]
pub struct UnknownBug(pub String);

impl std::str::FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBug(s.to_string()))
    }
}

/// Settings of one storage node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub sliver_count_per_sync_request: u32,
    /// Source-side cap on a sync request; `None` disables the check.
    pub max_sliver_count_per_sync_request: Option<u32>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Jitter bound of the sync backoff (spec: 1000 ms).
    pub backoff_jitter: Duration,
    pub switch_to_recovery_interval: Duration,
    pub max_concurrent_metadata_fetch: usize,
    pub shard_sync_concurrency: usize,
    pub max_concurrent_blob_recovery: usize,
    pub restart_always_retry_transfer_first: bool,
    /// Sleep between rounds of "recover missing blobs" (spec: 1 minute).
    pub recovery_round_interval: Duration,
    /// Finisher retry backoff (spec: 10 s to 5 min).
    pub finisher_backoff_min: Duration,
    pub finisher_backoff_max: Duration,
    /// Backoff between metadata fetch attempts.
    pub metadata_fetch_backoff: Duration,
    /// How often the event processor polls the chain for new events.
    pub event_poll_interval: Duration,
    /// Timeout of one connect, and of one whole request.
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Largest frame accepted from the network.
    pub max_frame_bytes: usize,
    /// Historical bugs switched back on (empty by default).
    pub bugs: BTreeSet<Bug>,
}

impl Default for NodeConfig {
    /// The spec's defaults (section 1.2).
    fn default() -> Self {
        Self {
            sliver_count_per_sync_request: 1000,
            max_sliver_count_per_sync_request: Some(100_000),
            backoff_min: Duration::from_secs(60),
            backoff_max: Duration::from_secs(600),
            backoff_jitter: Duration::from_millis(1000),
            switch_to_recovery_interval: Duration::from_secs(12 * 3600),
            max_concurrent_metadata_fetch: 100,
            shard_sync_concurrency: 10,
            max_concurrent_blob_recovery: 100,
            restart_always_retry_transfer_first: true,
            recovery_round_interval: Duration::from_secs(60),
            finisher_backoff_min: Duration::from_secs(10),
            finisher_backoff_max: Duration::from_secs(300),
            metadata_fetch_backoff: Duration::from_secs(1),
            event_poll_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_frame_bytes: 64 << 20,
            bugs: BTreeSet::new(),
        }
    }
}

impl NodeConfig {
    /// The defaults scaled to simulated clusters whose epochs last seconds, not days: every
    /// ratio between the timers is kept, absolute values shrink.
    pub fn simulation() -> Self {
        Self {
            sliver_count_per_sync_request: 50,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(5),
            backoff_jitter: Duration::from_millis(200),
            switch_to_recovery_interval: Duration::from_secs(8),
            max_concurrent_metadata_fetch: 10,
            recovery_round_interval: Duration::from_secs(1),
            finisher_backoff_min: Duration::from_millis(500),
            finisher_backoff_max: Duration::from_secs(5),
            metadata_fetch_backoff: Duration::from_millis(500),
            event_poll_interval: Duration::from_millis(50),
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
            ..Self::default()
        }
    }

    /// Whether a catalogue bug is switched on.
    pub fn has(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }

    /// Backoff before sync retry `attempt` (0-based): `min(max, min * 2^i + jitter)`.
    pub fn sync_backoff(&self, attempt: u32, jitter_ms: u64) -> Duration {
        let exp = self
            .backoff_min
            .saturating_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX));
        (exp + Duration::from_millis(jitter_ms)).min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_names_round_trip_and_unknown_names_are_rejected() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>().unwrap(), bug);
        }
        let err = "abort-drops".parse::<Bug>().unwrap_err();
        assert!(err.to_string().contains("unknown bug `abort-drops`"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let c = NodeConfig::default();
        assert_eq!(c.sync_backoff(0, 0), Duration::from_secs(60));
        assert_eq!(c.sync_backoff(1, 500), Duration::from_millis(120_500));
        assert_eq!(c.sync_backoff(10, 0), Duration::from_secs(600));
        assert_eq!(c.sync_backoff(200, 1000), Duration::from_secs(600));
    }
}
