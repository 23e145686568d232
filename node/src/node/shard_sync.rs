//! The shard-sync handler (spec 4.1 and 4.2): the outer-task slot that a new
//! `start_sync_shards` aborts, `sync_shards_task` deriving its mode from the persisted status,
//! `start_new_shard_sync`, `restart_syncs`, and the per-shard task loop with backoff and the
//! switch to direct recovery. A sync that empties the task map while an outer task is still
//! starting syncs does not attest then: the attestation waits until no outer task is starting
//! syncs (the loop yields to the scheduler, so early syncs can finish before later ones start).

use super::error::{classify, SyncDecision};
use super::{lock, node_spawn, Node, NodeError};
use crate::config::Bug;
use crate::ctx::{
    AttestationPath, NodeStatusWriter, ProbeEvent, ShardStatusWriter, SyncOutcome, TaskId,
};
use crate::fail_points;
use crate::status::{NodeStatus, ShardStatus};
use crate::types::{Epoch, ShardIndex};
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Outer tasks that are still starting shard syncs, and the epochs of the syncs that emptied
/// the task map meanwhile (their attestation is held back until none is starting).
#[derive(Debug, Default)]
pub(super) struct StartingSyncs {
    outer_tasks: u32,
    held_back: BTreeSet<Epoch>,
}

/// Counts one outer task as starting shard syncs until it is dropped. Dropped after [`finish`]
/// (the task has started its syncs, or returned early) as the last one counted, it attests the
/// held-back epochs if the task map is still empty (a sync started meanwhile attests when it
/// succeeds). Dropped unfinished (the task was aborted, or the node crashed) it only stops
/// counting: the held-back epochs then go with the next attestation.
///
/// [`finish`]: Starting::finish
struct Starting {
    node: Arc<Node>,
    finished: bool,
}

impl Starting {
    fn new(node: &Arc<Node>) -> Self {
        lock(&node.starting_syncs).outer_tasks += 1;
        Self {
            node: node.clone(),
            finished: false,
        }
    }

    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let held_back = {
            let mut starting = lock(&self.node.starting_syncs);
            starting.outer_tasks = starting.outer_tasks.saturating_sub(1);
            if starting.outer_tasks > 0 || !self.finished {
                return;
            }
            std::mem::take(&mut starting.held_back)
        };
        if !held_back.is_empty() && lock(&self.node.sync_tasks).is_empty() {
            self.node.attest_all_synced(&held_back);
        }
    }
}

impl Node {
    /// Aborts the current outer task, if any, and spawns `sync_shards_task(shards)`.
    /// `recover_metadata` is the pre-fix caller flag, used only with
    /// `abort-drops-metadata-recovery`.
    pub(super) async fn start_sync_shards(
        self: &Arc<Self>,
        shards: Vec<ShardIndex>,
        recover_metadata: bool,
    ) {
        let mut slot = self.outer.lock().await;
        // Counted before the previous task is aborted (its count goes when it is dropped), so
        // that syncs finishing in between wait for this task to start its own.
        let starting = Starting::new(self);
        if let Some((task, handle)) = slot.current.take() {
            if !handle.is_finished() {
                handle.abort();
                self.ctx.report(ProbeEvent::OuterTaskAborted { task });
            }
        }
        let task = self.next_task_id();
        self.ctx.report(ProbeEvent::OuterTaskStart {
            task,
            shards: shards.clone(),
        });
        let node = self.clone();
        let handle = node_spawn(&self.ctx.fail, async move {
            node.sync_shards_task(task, shards, recover_metadata, starting)
                .await
        });
        slot.current = Some((task, handle));
    }

    /// `restart_metadata_sync`: the task derives its work from persisted state.
    pub(super) async fn restart_metadata_sync(self: &Arc<Self>) {
        self.start_sync_shards(Vec::new(), true).await;
    }

    async fn sync_shards_task(
        self: Arc<Self>,
        task: TaskId,
        shards: Vec<ShardIndex>,
        recover_metadata: bool,
        starting: Starting,
    ) {
        let mut starting = Some(starting);
        if let Err(e) = self
            .sync_shards_task_inner(task, shards, recover_metadata, &mut starting)
            .await
        {
            tracing::warn!(node = %self.ctx.id, task, error = %e, "sync-shards task failed");
        }
        if let Some(starting) = starting {
            starting.finish();
        }
    }

    async fn sync_shards_task_inner(
        self: &Arc<Self>,
        task: TaskId,
        shards: Vec<ShardIndex>,
        recover_metadata: bool,
        starting: &mut Option<Starting>,
    ) -> Result<(), NodeError> {
        let initial = self.storage.node_status()?;
        let metadata_mode = if self.config.has(Bug::AbortDropsMetadataRecovery) {
            recover_metadata && initial == Some(NodeStatus::RecoverMetadata)
        } else {
            initial == Some(NodeStatus::RecoverMetadata)
        };
        let list = if metadata_mode {
            if let Err(e) = self.recover_metadata(task).await {
                tracing::warn!(node = %self.ctx.id, task, error = %e, "metadata recovery failed");
                return Ok(());
            }
            self.metadata_mode_shards(&shards)?
        } else {
            shards
        };
        for shard in list {
            if let Err(e) = self.start_new_shard_sync(shard).await {
                tracing::warn!(node = %self.ctx.id, %shard, error = %e, "cannot start shard sync; skipped");
            }
        }
        if let Some(starting) = starting.take() {
            starting.finish();
        }
        self.complete_metadata_recovery(task, metadata_mode, initial)
            .await
    }

    /// The shards a metadata-mode task syncs: stored ∩ owned (fixed), every stored shard
    /// (`metadata-sync-of-unowned-shards`), or the caller's list (pre-fix epoch-change call).
    fn metadata_mode_shards(&self, caller: &[ShardIndex]) -> Result<Vec<ShardIndex>, NodeError> {
        let stored = self.storage.shards()?;
        if self.config.has(Bug::AbortDropsMetadataRecovery) && !caller.is_empty() {
            return Ok(caller.to_vec());
        }
        if self.config.has(Bug::MetadataSyncOfUnownedShards) {
            return Ok(stored.into_iter().collect());
        }
        let owned = self.owned_shards();
        for shard in stored.difference(&owned) {
            tracing::warn!(node = %self.ctx.id, %shard, "skipping shard not owned in the current committee");
        }
        Ok(stored.intersection(&owned).copied().collect())
    }

    /// N10 at the end of every outer task, in the variant the configuration selects.
    async fn complete_metadata_recovery(
        &self,
        task: TaskId,
        ran_metadata: bool,
        initial: Option<NodeStatus>,
    ) -> Result<(), NodeError> {
        let (w, rm, active) = (
            NodeStatusWriter::N10,
            NodeStatus::RecoverMetadata,
            NodeStatus::Active,
        );
        if self.config.has(Bug::StaleStatusClobber) {
            if initial == Some(rm) {
                self.write_node_status(w, active, Some(task)).await?;
            }
        } else if self.config.has(Bug::CompletionWindow)
            || self.config.has(Bug::AbortDropsMetadataRecovery)
        {
            self.write_node_status_if_racy(rm, w, active, Some(task))
                .await?;
        } else if ran_metadata {
            self.write_node_status_if(|s| *s == rm, w, active, Some(task))
                .await?;
        }
        Ok(())
    }

    /// Skips shards in the task map or `Active`; fails for shards without storage; otherwise S2
    /// and a new per-shard task.
    pub(super) async fn start_new_shard_sync(
        self: &Arc<Self>,
        shard: ShardIndex,
    ) -> Result<(), NodeError> {
        let status = self
            .storage
            .shard_status(shard)?
            .ok_or(NodeError::ShardNotAssigned(shard))?;
        if lock(&self.sync_tasks).contains_key(&shard) {
            // A task left over from before the shard was locked and regained would finish into
            // `LockedToMove`: replace it.
            let stale = status == ShardStatus::LockedToMove && self.owned_shards().contains(&shard);
            if !stale || self.config.has(Bug::RegainedLockedShardStaysLocked) {
                return Ok(());
            }
            self.cancel_shard_sync(shard);
        }
        if status == ShardStatus::Active {
            return Ok(());
        }
        self.record_start_shard_sync(shard).await?;
        self.spawn_shard_sync(shard);
        Ok(())
    }

    /// Spawns the per-shard task for the current committee epoch and records it in the map.
    fn spawn_shard_sync(self: &Arc<Self>, shard: ShardIndex) {
        let epoch = self.committee_epoch();
        let node = self.clone();
        let handle = node_spawn(&self.ctx.fail, async move {
            node.shard_sync_loop(shard, epoch).await
        });
        lock(&self.sync_tasks).insert(shard, handle);
    }

    /// Node start: resume syncs from persisted state (spec 4.1).
    pub(super) async fn restart_syncs(self: Arc<Self>) -> Result<(), NodeError> {
        if self.storage.node_status()? == Some(NodeStatus::RecoverMetadata) {
            self.restart_metadata_sync().await;
            return Ok(());
        }
        for shard in self.stored_shards().await? {
            if self.config.restart_always_retry_transfer_first {
                self.restart_retry_transfer(shard).await?;
            }
            let status = self.storage.shard_status(shard)?;
            if matches!(
                status,
                Some(ShardStatus::ActiveSync | ShardStatus::ActiveRecover)
            ) && !lock(&self.sync_tasks).contains_key(&shard)
            {
                self.spawn_shard_sync(shard);
            }
        }
        Ok(())
    }

    /// S5: `ActiveRecover` → `ActiveSync` on restart.
    async fn restart_retry_transfer(&self, shard: ShardIndex) -> Result<(), NodeError> {
        if self.config.has(Bug::BlindCompletionClobbersLock) {
            if self.storage.shard_status(shard)? == Some(ShardStatus::ActiveRecover) {
                self.write_shard_status_if(
                    shard,
                    &[],
                    ShardStatus::ActiveSync,
                    ShardStatusWriter::S5,
                )
                .await?;
            }
            return Ok(());
        }
        self.write_shard_status_if(
            shard,
            &[ShardStatus::ActiveRecover],
            ShardStatus::ActiveSync,
            ShardStatusWriter::S5,
        )
        .await?;
        Ok(())
    }

    /// The per-shard task loop (spec 4.2).
    async fn shard_sync_loop(self: Arc<Self>, shard: ShardIndex, epoch: Epoch) {
        self.ctx.report(ProbeEvent::SyncStart { shard, epoch });
        // Its committee is then cached for the attestation decision when it succeeds.
        let _ = self.chain.committee(epoch).await;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(shard.0));
        let mut directly_recover = false;
        let mut last_progress = tokio::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            let before = self.storage.progress(shard).ok().flatten();
            let result = match self.semaphore.clone().acquire_owned().await {
                Ok(_permit) => self.transfer_attempt(shard, epoch, directly_recover).await,
                Err(_) => Err(NodeError::Injected(shardstorm_faults::Injected {
                    point: "semaphore".into(),
                    message: "closed".into(),
                })),
            };
            let after = self.storage.progress(shard).ok().flatten();
            let made_progress = before != after;
            let error = match result {
                Ok(()) => {
                    return self
                        .shard_sync_succeeded(shard, epoch, SyncOutcome::Success)
                        .await
                }
                Err(e) => e,
            };
            tracing::info!(node = %self.ctx.id, %shard, error = %error, "shard sync attempt failed");
            if self.ctx.fail.flag(fail_points::SYNC_NO_RETRY).await {
                return self
                    .shard_sync_succeeded(shard, epoch, SyncOutcome::SimulatedCrash)
                    .await;
            }
            match classify(&error, directly_recover) {
                SyncDecision::Failed => {
                    tracing::error!(node = %self.ctx.id, %shard, error = %error, "shard sync failed terminally");
                    self.ctx.report(ProbeEvent::SyncFinish {
                        shard,
                        epoch,
                        outcome: SyncOutcome::Failed,
                    });
                    return;
                }
                SyncDecision::Retry { force } => {
                    let jitter =
                        rng.random_range(0..=self.config.backoff_jitter.as_millis() as u64);
                    tokio::time::sleep(self.config.sync_backoff(attempt, jitter)).await;
                    attempt = attempt.saturating_add(1);
                    if made_progress && !self.config.has(Bug::ProgressTimerNeverReset) {
                        last_progress = tokio::time::Instant::now();
                    }
                    let stalled = last_progress.elapsed() > self.config.switch_to_recovery_interval;
                    if (force || stalled) && !directly_recover {
                        directly_recover = true;
                        self.ctx.report(ProbeEvent::DirectRecovery {
                            shard,
                            forced: force,
                        });
                        let _ = self.ctx.fail.eval(fail_points::SYNC_DIRECT_RECOVERY).await;
                    }
                }
            }
        }
    }

    /// Removes the shard from the map; a real success that empties the map attests.
    async fn shard_sync_succeeded(&self, shard: ShardIndex, epoch: Epoch, outcome: SyncOutcome) {
        let remaining = {
            let mut tasks = lock(&self.sync_tasks);
            tasks.remove(&shard);
            tasks.len()
        };
        self.ctx.report(ProbeEvent::SyncFinish {
            shard,
            epoch,
            outcome,
        });
        if outcome == SyncOutcome::Success && remaining == 0 {
            let epochs = {
                let mut starting = lock(&self.starting_syncs);
                starting.held_back.insert(epoch);
                if starting.outer_tasks > 0 {
                    return;
                }
                std::mem::take(&mut starting.held_back)
            };
            self.attest_all_synced(&epochs);
        }
    }

    /// Every sync is done, the last ones for `epochs`: attests each of them and the current
    /// epoch, once each, in ascending order.
    fn attest_all_synced(&self, epochs: &BTreeSet<Epoch>) {
        // A member only: a node outside an epoch's committee has nothing to attest (a
        // resumed or locked shard's sync can finish after the node left it).
        // The committees are cached: the view's from reading it, a sync's own epoch's from
        // the start of its task (see `shard_sync_loop`).
        let member = |e: Epoch| {
            self.config.has(Bug::NonMemberAttestation)
                || self
                    .chain
                    .cached_committee(e)
                    .is_some_and(|c| c.contains(self.ctx.id))
        };
        let current = self.committee_epoch();
        let mut attest = BTreeSet::new();
        for &epoch in epochs {
            if member(epoch) {
                attest.insert(epoch);
            }
            if current > epoch && member(current) && !self.config.has(Bug::StaleEpochAttestation) {
                // Every sync is done, those of the current epoch included: attest it too.
                attest.insert(current);
            }
        }
        for epoch in attest {
            self.attest(epoch, AttestationPath::ShardSync);
        }
    }

    /// Reports `epoch_sync_done(epoch)` with the state of the task map and sends it to the
    /// chain from a task of its own, retried until the chain answers (so an unreachable chain
    /// holds up neither event processing nor the caller); any answer is final.
    pub(super) fn attest(&self, epoch: Epoch, path: AttestationPath) {
        let (in_flight, failed) = {
            let tasks = lock(&self.sync_tasks);
            let failed = tasks.values().filter(|h| h.is_finished()).count();
            (tasks.len() - failed, failed)
        };
        self.ctx.report(ProbeEvent::Attestation {
            epoch,
            path,
            tasks_in_flight: in_flight,
            tasks_failed: failed,
        });
        if let Err(e) = self.storage.set_unanswered_attestation(Some(epoch)) {
            tracing::warn!(node = %self.ctx.id, epoch, error = %e, "attestation outbox not written");
        }
        self.send_attestation(epoch);
    }

    /// Sends `epoch_sync_done(epoch)` from a task of its own until the chain answers, then
    /// clears the outbox if it still holds this epoch. A crash before the answer leaves the
    /// outbox set, and the restarted node sends it again (the chain counts a node once).
    pub(super) fn send_attestation(&self, epoch: Epoch) {
        let (chain, storage, node) = (self.chain.clone(), self.storage.clone(), self.ctx.id);
        node_spawn(&self.ctx.fail, async move {
            let outcome = chain.epoch_sync_done(epoch).await;
            tracing::info!(%node, epoch, ?outcome, "attestation answered");
            if storage.unanswered_attestation().ok().flatten() == Some(epoch) {
                let _ = storage.set_unanswered_attestation(None);
            }
        });
    }

    /// Aborts a shard's sync and forgets it: used when its storage is dropped (a sync of a shard
    /// the node neither stores nor owns can only fail, and its map entry would block every later
    /// per-shard attestation) and when full node recovery takes the shard over (S6).
    pub(super) fn cancel_shard_sync(&self, shard: ShardIndex) {
        if let Some(handle) = lock(&self.sync_tasks).remove(&shard) {
            handle.abort();
            tracing::info!(node = %self.ctx.id, %shard, "shard sync cancelled");
            let epoch = self.committee_epoch();
            self.ctx.report(ProbeEvent::SyncFinish {
                shard,
                epoch,
                outcome: SyncOutcome::Cancelled,
            });
        }
    }

    /// Whether any per-shard task is unfinished or the outer task is running.
    pub(super) async fn has_sync_work(&self) -> bool {
        let tasks_busy = lock(&self.sync_tasks).values().any(|h| !h.is_finished());
        let outer_busy = self
            .outer
            .lock()
            .await
            .current
            .as_ref()
            .is_some_and(|(_, h)| !h.is_finished());
        tasks_busy || outer_busy
    }
}
