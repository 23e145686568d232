//! Every write of a node status or a shard status goes through here, so each one is reported to
//! the probe with the value it replaced. Node-status writes are blind overwrites (spec 1.1)
//! serialized by one lock; shard-status writes take the shard's read-write lock where the spec
//! says they are conditional.

use super::{Node, NodeError};
use crate::config::Bug;
use crate::ctx::{NodeStatusWriter, ProbeEvent, ShardStatusWriter, TaskId};
use crate::status::{NodeStatus, ShardStatus};
use crate::types::ShardIndex;

impl Node {
    /// A blind node-status write (no transition check), reported with the value it replaced.
    pub(super) async fn write_node_status(
        &self,
        writer: NodeStatusWriter,
        to: NodeStatus,
        task: Option<TaskId>,
    ) -> Result<(), NodeError> {
        let _guard = self.status_lock.lock().await;
        self.write_node_status_held(writer, to, task)
    }

    /// The write itself; the caller holds `status_lock`.
    fn write_node_status_held(
        &self,
        writer: NodeStatusWriter,
        to: NodeStatus,
        task: Option<TaskId>,
    ) -> Result<(), NodeError> {
        let from = self.storage.node_status()?;
        self.storage.set_node_status(to)?;
        tracing::debug!(node = %self.ctx.id, ?from, %to, ?writer, "node status");
        self.ctx.report(ProbeEvent::NodeStatus {
            from,
            to,
            writer,
            task,
        });
        Ok(())
    }

    /// Writes `to` only if the stored status satisfies `expected`, atomically with respect to
    /// every other node-status writer. Returns whether it wrote.
    pub(super) async fn write_node_status_if(
        &self,
        expected: impl Fn(&NodeStatus) -> bool,
        writer: NodeStatusWriter,
        to: NodeStatus,
        task: Option<TaskId>,
    ) -> Result<bool, NodeError> {
        let _guard = self.status_lock.lock().await;
        match self.storage.node_status()? {
            Some(current) if expected(&current) => {
                self.write_node_status_held(writer, to, task)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The reference completion of section 8.5: a re-read, an await point, then the write.
    pub(super) async fn write_node_status_if_racy(
        &self,
        expected: NodeStatus,
        writer: NodeStatusWriter,
        to: NodeStatus,
        task: Option<TaskId>,
    ) -> Result<bool, NodeError> {
        let reread = self.storage.node_status()?;
        tokio::task::yield_now().await;
        if reread == Some(expected) {
            self.write_node_status(writer, to, task).await?;
            return Ok(true);
        }
        Ok(false)
    }

    fn report_shard(
        &self,
        shard: ShardIndex,
        from: Option<ShardStatus>,
        to: ShardStatus,
        writer: ShardStatusWriter,
    ) {
        let epoch = self.committee_epoch();
        tracing::debug!(node = %self.ctx.id, %shard, ?from, %to, ?writer, "shard status");
        self.ctx.report(ProbeEvent::ShardStatus {
            shard,
            from,
            to,
            writer,
            epoch,
        });
    }

    /// An unconditional shard-status write (S6, S7, direct writes), under the shard's lock.
    pub(super) async fn write_shard_status(
        &self,
        shard: ShardIndex,
        to: ShardStatus,
        writer: ShardStatusWriter,
    ) -> Result<(), NodeError> {
        let lock = self.shard_lock(shard);
        let _guard = lock.write().await;
        let from = self.storage.shard_status(shard)?;
        self.storage.set_shard_status(shard, to)?;
        self.report_shard(shard, from, to, writer);
        Ok(())
    }

    /// A conditional write (S3, S5): reads and writes under the shard's lock; returns whether
    /// it wrote. With `blind-completion-clobbers-lock` it writes unconditionally, unlocked.
    pub(super) async fn write_shard_status_if(
        &self,
        shard: ShardIndex,
        expected: &[ShardStatus],
        to: ShardStatus,
        writer: ShardStatusWriter,
    ) -> Result<bool, NodeError> {
        if self.config.has(Bug::BlindCompletionClobbersLock) {
            let from = self.storage.shard_status(shard)?;
            self.storage.set_shard_status(shard, to)?;
            self.report_shard(shard, from, to, writer);
            return Ok(true);
        }
        let lock = self.shard_lock(shard);
        let _guard = lock.write().await;
        let from = self.storage.shard_status(shard)?;
        if !from.is_some_and(|s| expected.contains(&s)) {
            return Ok(false);
        }
        self.storage.set_shard_status(shard, to)?;
        self.report_shard(shard, from, to, writer);
        Ok(true)
    }

    /// S2: status `ActiveSync` and progress deleted in one batch.
    pub(super) async fn record_start_shard_sync(&self, shard: ShardIndex) -> Result<(), NodeError> {
        let lock = self.shard_lock(shard);
        let _guard = lock.write().await;
        let from = self.storage.shard_status(shard)?;
        self.storage.record_start_shard_sync(shard)?;
        self.report_shard(shard, from, ShardStatus::ActiveSync, ShardStatusWriter::S2);
        Ok(())
    }

    /// S4: progress deleted; `ActiveSync`/`ActiveRecover` become `Active`, any other status
    /// (a concurrent `LockedToMove`) stays.
    pub(super) async fn finish_shard_sync(
        &self,
        shard: ShardIndex,
    ) -> Result<ShardStatus, NodeError> {
        const ONLY_IF: [ShardStatus; 2] = [ShardStatus::ActiveSync, ShardStatus::ActiveRecover];
        let blind = self.config.has(Bug::BlindCompletionClobbersLock);
        let lock = self.shard_lock(shard);
        let _guard = if blind {
            None
        } else {
            Some(lock.write().await)
        };
        let from = self.storage.shard_status(shard)?;
        let only_if: &[ShardStatus] = if blind {
            &[
                ShardStatus::None,
                ShardStatus::Active,
                ShardStatus::ActiveSync,
                ShardStatus::ActiveRecover,
                ShardStatus::LockedToMove,
            ]
        } else {
            &ONLY_IF
        };
        let after = self
            .storage
            .finish_sync(shard, only_if, ShardStatus::Active)?;
        if from != Some(after) {
            self.report_shard(shard, from, after, ShardStatusWriter::S4);
        }
        Ok(after)
    }

    /// S1: creates the shard's storage at `None` if it is missing.
    pub(super) fn create_shard(&self, shard: ShardIndex) -> Result<(), NodeError> {
        if self.storage.create_shard(shard)? {
            self.ctx.report(ProbeEvent::ShardCreated { shard });
            self.report_shard(shard, None, ShardStatus::None, ShardStatusWriter::S1);
        }
        Ok(())
    }

    /// S8: drops the shard's storage.
    pub(super) fn drop_shard(&self, shard: ShardIndex) -> Result<(), NodeError> {
        if self.storage.has_shard(shard)? {
            self.storage.drop_shard(shard)?;
            self.ctx.report(ProbeEvent::ShardDropped { shard });
        }
        Ok(())
    }
}
