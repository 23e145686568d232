//! Epoch change (spec section 6): routing of `EpochChangeStart(e)` to the in-sync, catch-up or
//! full-recovery path, in-sync shard changes, and the finisher that attests, drops removed
//! shards and only then completes the event.

use super::{lock, node_spawn, Node, NodeError, ShardDiff};
use crate::config::Bug;
use crate::ctx::{AttestationPath, NodeStatusWriter, ProbeEvent, ShardStatusWriter};
use crate::fail_points;
use crate::status::{NodeStatus, ShardStatus};
use crate::types::{Epoch, ShardIndex};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// What the finisher of one epoch change must do.
struct FinisherJob {
    index: u64,
    epoch: Epoch,
    shards_gained: bool,
    to_remove: BTreeSet<ShardIndex>,
}

impl Node {
    /// Processes `EpochChangeStart(e)`; returns whether the event is complete now.
    pub(super) async fn process_epoch_change(
        self: &Arc<Self>,
        index: u64,
        e: Epoch,
    ) -> Result<bool, NodeError> {
        self.ctx
            .fail
            .check(fail_points::EPOCH_CHANGE_START_ENTRY)
            .await?;
        self.ctx.report(ProbeEvent::EpochChangeStart { epoch: e });
        let previous_finisher = lock(&self.finisher).take();
        if let Some(finisher) = previous_finisher {
            let _ = finisher.await;
        }
        self.wait_for_pending_events(e).await;
        let shard_map = self.shard_map_lock.write().await;
        let status = self.status()?.unwrap_or(NodeStatus::Standby);
        if status.is_catching_up() {
            drop(shard_map);
            return self.catch_up_path(index, e).await;
        }
        let chain_epoch = self.chain.epoch().await;
        if chain_epoch > e {
            drop(shard_map);
            let _ = self
                .ctx
                .fail
                .eval(fail_points::NODE_ENTER_RECOVERY_MODE)
                .await;
            self.enter_recovery_mode(NodeStatusWriter::N4, e).await?;
            return self.catch_up_path(index, e).await;
        }
        self.set_view(self.chain.view(e).await);
        // The chain calls above can wait (a slow or cut link to the chain): a catch-up status
        // written meanwhile (lag detection, an operator) must not be overwritten by N9 below.
        let status = if self.config.has(Bug::StatusReadBeforeChainWait) {
            status
        } else {
            self.status()?.unwrap_or(NodeStatus::Standby)
        };
        if status.is_catching_up() {
            drop(shard_map);
            return self.catch_up_path(index, e).await;
        }
        self.in_sync_path(index, e, status, shard_map).await
    }

    /// The in-sync path of 6.1 step 5.
    async fn in_sync_path(
        self: &Arc<Self>,
        index: u64,
        e: Epoch,
        status: NodeStatus,
        shard_map: tokio::sync::RwLockWriteGuard<'_, ()>,
    ) -> Result<bool, NodeError> {
        let view = self.view();
        let member = view.current.contains(self.ctx.id);
        let new_joiner = status == NodeStatus::Standby && member;
        if !member {
            self.write_node_status(NodeStatusWriter::N9, NodeStatus::Standby, None)
                .await?;
        }
        if let Some(NodeStatus::RecoveryInProgress(_)) = self.status()? {
            drop(shard_map);
            return self.full_recovery_path(index, e).await;
        }
        self.shard_changes(index, e, new_joiner, shard_map).await
    }

    fn diff(&self) -> Result<ShardDiff, NodeError> {
        let view = self.view();
        let p = view.previous.shards_of(self.ctx.id);
        let c = view.current.shards_of(self.ctx.id);
        Ok(ShardDiff::compute(&p, &c, &self.storage.shards()?))
    }

    /// In-sync shard changes (6.2).
    async fn shard_changes(
        self: &Arc<Self>,
        index: u64,
        e: Epoch,
        new_joiner: bool,
        shard_map: tokio::sync::RwLockWriteGuard<'_, ()>,
    ) -> Result<bool, NodeError> {
        let diff = self.diff()?;
        if !diff.gained.is_empty() {
            // A replay after a crash finds the storages this epoch change already created
            // (and perhaps synced): they are not left over from an earlier tenure.
            let replay = self.storage.gained_epoch()? >= e;
            for shard in &diff.gained {
                if !replay || self.config.has(Bug::ReplayResyncsSyncedShard) {
                    self.reset_stale_shard(*shard)?;
                }
                // `db.create_shard.before` is evaluated once, by the storage write.
                self.create_shard(*shard)?;
            }
            self.storage.set_gained_epoch(e)?;
            drop(shard_map);
            if new_joiner {
                self.write_node_status(NodeStatusWriter::N8, NodeStatus::RecoverMetadata, None)
                    .await?;
            }
            self.start_sync_shards(diff.gained.iter().copied().collect(), new_joiner)
                .await;
        }
        self.lock_shards(&diff.to_lock).await?;
        self.start_finisher(FinisherJob {
            index,
            epoch: e,
            shards_gained: !diff.gained.is_empty(),
            to_remove: diff.to_remove,
        });
        Ok(false)
    }

    /// A gained shard (not owned in the previous committee) whose storage is still `Active` is
    /// left over from an earlier tenure that was never locked (the node was down when it lost
    /// the shard): its contents are stale, so its storage is dropped (S8) and created anew.
    fn reset_stale_shard(&self, shard: ShardIndex) -> Result<(), NodeError> {
        if self.config.has(Bug::StaleActiveShardRegained) {
            return Ok(());
        }
        if self.storage.shard_status(shard)? == Some(ShardStatus::Active) {
            tracing::warn!(node = %self.ctx.id, %shard, "regained shard is Active from an old tenure; resyncing it");
            self.cancel_shard_sync(shard);
            self.drop_shard(shard)?;
        }
        Ok(())
    }

    /// S7 for every shard in `to_lock` that has storage.
    async fn lock_shards(&self, to_lock: &BTreeSet<ShardIndex>) -> Result<(), NodeError> {
        for shard in to_lock {
            if self.storage.has_shard(*shard)? {
                self.write_shard_status(*shard, ShardStatus::LockedToMove, ShardStatusWriter::S7)
                    .await?;
            }
        }
        Ok(())
    }

    /// The catch-up path: skip old epochs; at the current one decide N5, N6 or N7.
    async fn catch_up_path(self: &Arc<Self>, index: u64, e: Epoch) -> Result<bool, NodeError> {
        if e < self.chain.epoch().await {
            return Ok(true);
        }
        self.set_view(self.chain.view(e).await);
        let view = self.view();
        let (in_previous, in_current) = (
            view.previous.contains(self.ctx.id),
            view.current.contains(self.ctx.id),
        );
        if !in_current {
            self.write_node_status(NodeStatusWriter::N5, NodeStatus::Standby, None)
                .await?;
            let diff = self.diff()?;
            self.lock_shards(&diff.to_lock).await?;
            self.start_finisher(FinisherJob {
                index,
                epoch: e,
                shards_gained: false,
                to_remove: diff.to_remove,
            });
            return Ok(false);
        }
        let diff = self.diff()?;
        if !in_previous && !diff.gained.is_empty() {
            let shard_map = self.shard_map_lock.write().await;
            for shard in &diff.gained {
                self.reset_stale_shard(*shard)?;
                self.create_shard(*shard)?;
            }
            self.write_node_status(NodeStatusWriter::N6, NodeStatus::RecoverMetadata, None)
                .await?;
            return self.shard_changes(index, e, true, shard_map).await;
        }
        self.full_recovery_path(index, e).await
    }

    /// Forgets a shard's pending-recovery set (node recovery fills whatever is missing).
    fn clear_pending(&self, shard: ShardIndex) -> Result<(), NodeError> {
        if self.storage.has_shard(shard)? {
            for entry in self.storage.pending(shard)? {
                self.storage.remove_pending(shard, entry)?;
            }
        }
        Ok(())
    }

    /// The full-recovery path (6.4).
    async fn full_recovery_path(self: &Arc<Self>, index: u64, e: Epoch) -> Result<bool, NodeError> {
        self.write_node_status(
            NodeStatusWriter::N7,
            NodeStatus::RecoveryInProgress(e),
            None,
        )
        .await?;
        let diff = self.diff()?;
        for shard in &diff.all_owned {
            self.create_shard(*shard)?;
        }
        for shard in &diff.all_owned {
            if !self.config.has(Bug::RecoveryClobbersRunningSync) {
                self.cancel_shard_sync(*shard);
                self.clear_pending(*shard)?;
            }
            self.write_shard_status(*shard, ShardStatus::Active, ShardStatusWriter::S6)
                .await?;
        }
        self.lock_shards(&diff.to_lock).await?;
        self.clone().restart_node_recovery(e);
        if diff.to_remove.is_empty() {
            return Ok(true);
        }
        self.start_finisher(FinisherJob {
            index,
            epoch: e,
            shards_gained: true,
            to_remove: diff.to_remove,
        });
        Ok(false)
    }

    fn start_finisher(self: &Arc<Self>, job: FinisherJob) {
        let node = self.clone();
        let handle = node_spawn(&self.ctx.fail, async move {
            node.finish_epoch_change(job).await
        });
        *lock(&self.finisher) = Some(handle);
    }

    /// The finisher (6.3): attest if nothing was gained, drop removed shards, retry both with
    /// backoff until they succeed, then complete the event.
    async fn finish_epoch_change(self: Arc<Self>, job: FinisherJob) {
        let mut delay = self.config.finisher_backoff_min;
        loop {
            match self.finisher_step(&job).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(node = %self.ctx.id, epoch = job.epoch, error = %e, "finisher retry")
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.config.finisher_backoff_max);
        }
        while let Err(e) = self.mark_event_complete(job.index).await {
            tracing::warn!(node = %self.ctx.id, error = %e, "cannot persist the event cursor");
            tokio::time::sleep(
                self.config
                    .finisher_backoff_min
                    .max(Duration::from_millis(10)),
            )
            .await;
        }
    }

    async fn finisher_step(&self, job: &FinisherJob) -> Result<(), NodeError> {
        self.ctx
            .fail
            .check(fail_points::EPOCH_FINISHER_BLOCK)
            .await?;
        let view = self.view();
        if !job.shards_gained && view.current.contains(self.ctx.id) && view.epoch() == job.epoch {
            self.attest(job.epoch, AttestationPath::Finisher);
        }
        for shard in &job.to_remove {
            if !self.config.has(Bug::DroppedShardSyncBlocksAttestation) {
                self.cancel_shard_sync(*shard);
            }
            self.drop_shard(*shard)?;
        }
        Ok(())
    }
}
