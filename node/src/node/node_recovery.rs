//! Node recovery (spec 6.4, N11): rebuild whatever the node's owned shards lack for every blob
//! certified before the recovery epoch, then flip `RecoveryInProgress(e)` to `Active` and attest.

use super::{lock, node_spawn, Node, NodeError};
use crate::config::Bug;
use crate::ctx::{AttestationPath, NodeStatusWriter, ProbeEvent, ShardStatusWriter};
use crate::fail_points;
use crate::status::{NodeStatus, ShardStatus};
use crate::types::{BlobId, Epoch, ShardIndex, SliverType};
use std::sync::Arc;

impl Node {
    /// Aborts a running node recovery and starts one toward `epoch`.
    pub(super) fn restart_node_recovery(self: Arc<Self>, epoch: Epoch) {
        let node = self.clone();
        let handle = node_spawn(&self.ctx.fail, async move {
            match node.node_recovery(epoch).await {
                Err(NodeError::Storage(e))
                    if !node.config.has(Bug::NodeRecoveryStopsOnStorageError) =>
                {
                    // The restart resumes node recovery from the persisted status (section 7).
                    node.fatal(NodeError::Storage(e)).await
                }
                Err(e) => {
                    tracing::warn!(node = %node.ctx.id, epoch, error = %e, "node recovery stopped")
                }
                Ok(()) => {}
            }
        });
        if let Some(old) = lock(&self.node_recovery).replace(handle) {
            old.abort();
        }
    }

    async fn node_recovery(&self, epoch: Epoch) -> Result<(), NodeError> {
        self.ctx
            .fail
            .check(fail_points::NODE_RECOVERY_ENTRY)
            .await?;
        self.ctx.report(ProbeEvent::NodeRecoveryStart { epoch });
        if !self
            .config
            .has(Bug::RestartedNodeRecoverySkipsUncreatedShards)
        {
            self.take_over_uncreated_shards().await?;
        }
        loop {
            let missing = self.missing_slivers(epoch)?;
            if missing.is_empty() {
                break;
            }
            for (blob, shard, ty) in missing {
                let _ = self
                    .ctx
                    .fail
                    .eval(fail_points::NODE_RECOVERY_START_SYNC)
                    .await;
                if let Err(e) = self.recover_and_store(blob, shard, ty, epoch).await {
                    tracing::debug!(node = %self.ctx.id, %blob, error = %e, "node recovery: blob not recovered yet");
                }
            }
            tokio::time::sleep(self.config.recovery_round_interval).await;
        }
        let rip = NodeStatus::RecoveryInProgress(epoch);
        if self
            .write_node_status_if(
                |s| *s == rip,
                NodeStatusWriter::N11,
                NodeStatus::Active,
                None,
            )
            .await?
        {
            self.attest(epoch, AttestationPath::NodeRecovery);
        }
        Ok(())
    }

    /// A crash between N7 and the shard creation of the full-recovery path (6.4) leaves owned
    /// shards without storage; the restarted node recovery creates them and takes them over
    /// (S1, S6) as that path would have, so it rebuilds them too instead of skipping them.
    async fn take_over_uncreated_shards(&self) -> Result<(), NodeError> {
        for shard in self.owned_shards() {
            if !self.storage.has_shard(shard)? {
                self.create_shard(shard)?;
                self.write_shard_status(shard, ShardStatus::Active, ShardStatusWriter::S6)
                    .await?;
            }
        }
        Ok(())
    }

    /// (blob, shard, type) this node should hold for blobs certified before `epoch` but lacks.
    fn missing_slivers(
        &self,
        epoch: Epoch,
    ) -> Result<Vec<(BlobId, ShardIndex, SliverType)>, NodeError> {
        let owned = self.owned_shards();
        let mut missing = Vec::new();
        for blob in self.storage.certified_before(epoch)? {
            if self.is_retired(blob)? {
                continue;
            }
            for shard in &owned {
                for ty in SliverType::ALL {
                    if self.storage.has_shard(*shard)?
                        && !self.storage.has_sliver(*shard, ty, blob)?
                    {
                        missing.push((blob, *shard, ty));
                    }
                }
            }
        }
        Ok(missing)
    }
}
