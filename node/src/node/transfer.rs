//! One transfer attempt of a per-shard sync (spec 4.4) and its recovery phase (spec 4.5).

use super::{Node, NodeError};
use crate::blob::verify_sliver;
use crate::ctx::{ProbeEvent, ShardStatusWriter};
use crate::fail_points;
use crate::status::ShardStatus;
use crate::types::{BlobId, Epoch, ShardIndex, SliverType};
use crate::wire::{Request, Response};
use futures::StreamExt;
use std::collections::VecDeque;

/// A parsed `sync.fetch_sliver(type, n, retryable)` argument.
struct FetchFault {
    ty: SliverType,
    at: usize,
    retryable: bool,
}

fn parse_fetch_fault(arg: &str) -> Option<FetchFault> {
    let mut parts = arg.split(',').map(str::trim);
    let ty = parts.next()?.parse().ok()?;
    let at = parts.next()?.parse().ok()?;
    let retryable = parts.next().map_or(Some(true), |r| r.parse().ok())?;
    Some(FetchFault { ty, at, retryable })
}

impl Node {
    /// One transfer attempt: check the per-attempt invariant, run the passes from the resume
    /// point, run the recovery phase, then S4.
    pub(super) async fn transfer_attempt(
        &self,
        shard: ShardIndex,
        epoch: Epoch,
        directly_recover: bool,
    ) -> Result<(), NodeError> {
        let status = self
            .storage
            .shard_status(shard)?
            .ok_or(NodeError::ShardNotAssigned(shard))?;
        match status {
            ShardStatus::ActiveSync | ShardStatus::ActiveRecover | ShardStatus::LockedToMove => {}
            other => panic!("per-attempt invariant violated: shard {shard} is {other:?} at the start of a transfer attempt"),
        }
        if status != ShardStatus::ActiveRecover {
            let progress = self.storage.progress(shard)?;
            let passes: &[SliverType] = match progress {
                Some((_, SliverType::Secondary)) => &[SliverType::Secondary],
                _ => &SliverType::ALL,
            };
            for (i, ty) in passes.iter().enumerate() {
                let after = if i == 0 {
                    progress.map(|(id, _)| id)
                } else {
                    None
                };
                self.transfer_pass(shard, epoch, *ty, after, directly_recover)
                    .await?;
            }
        }
        self.recovery_phase(shard, epoch).await?;
        self.finish_shard_sync(shard).await?;
        Ok(())
    }

    /// One pass over one sliver type.
    async fn transfer_pass(
        &self,
        shard: ShardIndex,
        epoch: Epoch,
        ty: SliverType,
        after: Option<BlobId>,
        directly_recover: bool,
    ) -> Result<(), NodeError> {
        assert!(epoch != 0, "shard sync for epoch 0");
        let mut expected: VecDeque<BlobId> = self
            .storage
            .certified_before(epoch)?
            .into_iter()
            .filter(|id| after.is_none_or(|a| *id > a))
            .collect();
        if !directly_recover {
            let fault = self
                .ctx
                .fail
                .arg(fail_points::SYNC_FETCH_SLIVER)
                .await
                .and_then(|a| parse_fetch_fault(&a));
            let mut fetched = 0usize;
            while let Some(next) = expected.front().copied() {
                let page = self.fetch_page(shard, ty, next, epoch).await?;
                fetched += page.len();
                if let Some(f) = fault.as_ref().filter(|f| f.ty == ty && fetched >= f.at) {
                    return Err(NodeError::InjectedFetch {
                        retryable: f.retryable,
                    });
                }
                if page.is_empty() {
                    break;
                }
                self.commit_page(shard, ty, page, &mut expected)?;
            }
        }
        let rest: Vec<_> = expected.into_iter().map(|id| (ty, id)).collect();
        if !rest.is_empty() {
            self.storage.add_pending(shard, &rest)?;
        }
        Ok(())
    }

    /// Requests one page from the source: the owner of the shard in the committee of E−1.
    async fn fetch_page(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        start: BlobId,
        epoch: Epoch,
    ) -> Result<Vec<(BlobId, Vec<u8>)>, NodeError> {
        let source = self
            .chain
            .committee(epoch - 1)
            .await
            .and_then(|c| c.owner(shard))
            .ok_or(NodeError::NoSyncClient(shard))?;
        let count = self.config.sliver_count_per_sync_request;
        match self
            .call_node(
                source,
                &Request::SyncShard {
                    shard,
                    ty,
                    start,
                    count,
                    epoch,
                },
            )
            .await?
        {
            Response::Slivers(slivers) => Ok(slivers),
            Response::Error(e) => Err(e.into()),
            _ => Err(NodeError::UnexpectedResponse("sync-shard")),
        }
    }

    /// Stores a page in one batch: verified slivers, skipped expected blobs into the pending
    /// set, and the new progress record.
    fn commit_page(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        page: Vec<(BlobId, Vec<u8>)>,
        expected: &mut VecDeque<BlobId>,
    ) -> Result<(), NodeError> {
        let first = page.first().map(|(id, _)| *id).unwrap_or(BlobId::MIN);
        let last = page.last().map(|(id, _)| *id).unwrap_or(BlobId::MIN);
        let mut store = Vec::new();
        let mut skipped = Vec::new();
        let mut returned = page.into_iter().peekable();
        while let Some(id) = expected.front().copied().filter(|id| *id <= last) {
            expected.pop_front();
            while returned.next_if(|(r, _)| *r < id).is_some() {}
            match returned.next_if(|(r, _)| *r == id) {
                Some((_, sliver)) if self.sliver_verifies(id, shard, ty, &sliver) => {
                    store.push((id, sliver))
                }
                _ => skipped.push(id),
            }
        }
        self.storage
            .commit_sync_batch(shard, ty, &store, &skipped, Some((last, ty)))?;
        for (blob, _) in &store {
            self.ctx.report(ProbeEvent::SliverStored {
                shard,
                ty,
                blob: *blob,
                verified: true,
            });
        }
        self.ctx.report(ProbeEvent::SyncProgress {
            shard,
            ty,
            first,
            last,
            slivers: store.len(),
            skipped: skipped.len(),
        });
        Ok(())
    }

    /// Whether a received sliver matches the stored metadata (no metadata: it cannot be
    /// verified, so it is not stored and goes to recovery).
    pub(super) fn sliver_verifies(
        &self,
        blob: BlobId,
        shard: ShardIndex,
        ty: SliverType,
        sliver: &[u8],
    ) -> bool {
        match self.storage.metadata(blob) {
            Ok(Some(metadata)) => verify_sliver(&metadata, shard, ty, sliver).is_ok(),
            _ => false,
        }
    }

    /// Spec 4.5: S3, then rounds of "recover missing blobs" until the pending set is empty.
    async fn recovery_phase(&self, shard: ShardIndex, epoch: Epoch) -> Result<(), NodeError> {
        let pending = self.storage.pending(shard)?;
        if pending.is_empty() {
            return Ok(());
        }
        self.write_shard_status_if(
            shard,
            &[ShardStatus::ActiveSync],
            ShardStatus::ActiveRecover,
            ShardStatusWriter::S3,
        )
        .await?;
        self.ctx.report(ProbeEvent::RecoveryStart {
            shard,
            pending: pending.len(),
        });
        let _ = self.ctx.fail.eval(fail_points::SYNC_RECOVERY_START).await;
        self.ctx
            .fail
            .check(fail_points::SYNC_RECOVERY_AFTER_START)
            .await?;
        let mut skip_cert_check = self
            .ctx
            .fail
            .flag(fail_points::SYNC_RECOVERY_SKIP_INITIAL_CERT_CHECK)
            .await;
        loop {
            let pending = self.storage.pending(shard)?;
            if pending.is_empty() {
                return Ok(());
            }
            let limit = self.config.max_concurrent_blob_recovery.max(1);
            let results: Vec<_> = futures::stream::iter(pending)
                .map(|(ty, blob)| {
                    self.recover_pending_entry(shard, ty, blob, epoch, skip_cert_check)
                })
                .buffered(limit)
                .collect()
                .await;
            for r in results {
                r?;
            }
            skip_cert_check = false;
            if self.storage.pending(shard)?.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(self.config.recovery_round_interval).await;
        }
    }

    /// One pending entry: drop it if stored or no longer certified, else rebuild and store it.
    /// Storage errors abort the phase; recovery errors keep the entry for the next round.
    async fn recover_pending_entry(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        blob: BlobId,
        epoch: Epoch,
        skip_cert_check: bool,
    ) -> Result<(), NodeError> {
        let stored = self.storage.has_sliver(shard, ty, blob)?;
        if stored || (!skip_cert_check && self.is_retired(blob)?) {
            self.storage.remove_pending(shard, (ty, blob))?;
            return Ok(());
        }
        let _ = self
            .ctx
            .fail
            .eval(fail_points::SYNC_RECOVERY_RECOVER_BLOB)
            .await;
        match self.recover_and_store(blob, shard, ty, epoch).await {
            Ok(()) | Err(NodeError::Retired) => self.storage.remove_pending(shard, (ty, blob))?,
            Err(NodeError::Storage(e)) => return Err(e.into()),
            Err(e) => {
                tracing::info!(node = %self.ctx.id, %shard, %blob, error = %e, "blob recovery failed; retry next round")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_fault_arguments_parse() {
        let f = parse_fetch_fault("secondary, 5, false").unwrap();
        assert_eq!((f.ty, f.at, f.retryable), (SliverType::Secondary, 5, false));
        assert!(parse_fetch_fault("primary,3").unwrap().retryable);
        assert!(parse_fetch_fault("tertiary,3").is_none());
        assert!(parse_fetch_fault("primary,x").is_none());
    }
}
