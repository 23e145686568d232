//! Metadata recovery (spec section 5): fetch the metadata of every blob certified before the
//! committee epoch, at most `max_concurrent_metadata_fetch` at once, each inside a retirement
//! check; the first error fails the phase.

use super::{Node, NodeError};
use crate::ctx::{ProbeEvent, TaskId};
use crate::fail_points;
use crate::types::BlobId;
use futures::StreamExt;

impl Node {
    /// Runs metadata recovery for outer task `task`.
    pub(super) async fn recover_metadata(&self, task: TaskId) -> Result<(), NodeError> {
        self.ctx.report(ProbeEvent::MetadataRecoveryStart { task });
        let result = self.recover_metadata_inner().await;
        let blobs = *result.as_ref().unwrap_or(&0);
        self.ctx.report(ProbeEvent::MetadataRecoveryFinish {
            task,
            ok: result.is_ok(),
            blobs,
        });
        result.map(|_| ())
    }

    async fn recover_metadata_inner(&self) -> Result<usize, NodeError> {
        self.ctx
            .fail
            .check(fail_points::SYNC_METADATA_ERROR_BEFORE_FETCH)
            .await?;
        self.ctx
            .fail
            .check(fail_points::SYNC_METADATA_PAUSE)
            .await?;
        let epoch = self.committee_epoch();
        let blobs = self.storage.certified_before(epoch)?;
        let error_at: Option<usize> = self
            .ctx
            .fail
            .arg(fail_points::SYNC_METADATA_ERROR_DURING_FETCH)
            .await
            .and_then(|a| a.trim().parse().ok());
        let count = blobs.len();
        let mut scheduled = 0usize;
        let mut fetches = futures::stream::iter(blobs)
            .map(|blob| {
                scheduled += 1;
                let fail_here = error_at == Some(scheduled);
                async move {
                    if fail_here {
                        return Err(NodeError::Injected(shardstorm_faults::Injected {
                            point: fail_points::SYNC_METADATA_ERROR_DURING_FETCH.into(),
                            message: format!("scan count {scheduled}"),
                        }));
                    }
                    self.recover_one_metadata(blob).await
                }
            })
            .buffer_unordered(self.config.max_concurrent_metadata_fetch.max(1));
        while let Some(result) = fetches.next().await {
            result?;
        }
        Ok(count)
    }

    /// One blob: stored metadata is reused; a retired blob counts as skipped.
    async fn recover_one_metadata(&self, blob: BlobId) -> Result<(), NodeError> {
        if self.storage.has_metadata(blob)? {
            return Ok(());
        }
        match self.fetch_metadata(blob).await {
            Ok(_) | Err(NodeError::Retired) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
