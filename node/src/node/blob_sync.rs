//! Rebuilding one shard's sliver of one blob from other members' recovery symbols, shared by the
//! recovery phase, node recovery and the blob sync a certified (or extension) event starts; and
//! handling of an inconsistency proof (the blob is invalidated on chain).

use super::pending::PendingGuard;
use super::{lock, node_spawn, Node, NodeError};
use crate::blob::{
    decode, encode, recover_sliver, verify_sliver, BlobMetadata, InconsistencyProof, RecoveryError,
};
use crate::config::Bug;
use crate::ctx::ProbeEvent;
use crate::fail_points;
use crate::status::NodeStatus;
use crate::storage::StorageError;
use crate::types::{BlobId, Epoch, ShardIndex, SliverType};
use crate::wire::{Request, Response};
use std::sync::Arc;

/// Which certification an event carries: the first one, or an extension of the end epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CertifiedKind {
    Initial,
    Extension,
}

impl Node {
    /// Whether the blob is expired, deleted or invalid at the committee epoch (or unknown).
    pub(super) fn is_retired(&self, blob: BlobId) -> Result<bool, NodeError> {
        let epoch = self.committee_epoch();
        Ok(self
            .storage
            .blob_info(blob)?
            .is_none_or(|info| info.is_retired_at(epoch)))
    }

    /// Stored metadata, or metadata recovered from other members (then stored).
    pub(super) async fn metadata_for(&self, blob: BlobId) -> Result<BlobMetadata, NodeError> {
        if let Some(m) = self.storage.metadata(blob)? {
            return Ok(m);
        }
        self.fetch_metadata(blob).await
    }

    /// Rebuilds and stores this node's sliver `(shard, ty)` of `blob`.
    pub(super) async fn recover_and_store(
        &self,
        blob: BlobId,
        shard: ShardIndex,
        ty: SliverType,
        epoch: Epoch,
    ) -> Result<(), NodeError> {
        let metadata = self.metadata_for(blob).await?;
        let symbols = self.collect_symbols(blob, ty, epoch).await;
        let mut rebuilt = recover_sliver(&self.encoding, &metadata, shard, ty, &symbols);
        if matches!(rebuilt, Err(RecoveryError::NotEnoughSymbols { .. }))
            && ty == SliverType::Secondary
        {
            rebuilt = self
                .rebuild_from_primaries(blob, &metadata, shard, epoch)
                .await;
        }
        match rebuilt {
            Ok(sliver) => {
                if self.is_retired(blob)? {
                    return Err(NodeError::Retired);
                }
                self.ctx
                    .fail
                    .check(fail_points::BLOB_SYNC_BEFORE_PUT_SLIVER)
                    .await?;
                self.storage.put_sliver(shard, ty, blob, &sliver)?;
                self.ctx.report(ProbeEvent::SliverStored {
                    shard,
                    ty,
                    blob,
                    verified: true,
                });
                Ok(())
            }
            Err(RecoveryError::Inconsistent(_)) => {
                tracing::warn!(node = %self.ctx.id, %blob, "inconsistency proof: invalidating blob");
                self.chain.invalidate_blob(blob).await?;
                self.ctx.report(ProbeEvent::BlobInvalidated { blob });
                Err(NodeError::Retired)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The other dimension: decode the blob from primary symbols and re-encode this shard's
    /// secondary sliver, checked against the metadata (a mismatch proves the blob inconsistent).
    async fn rebuild_from_primaries(
        &self,
        blob: BlobId,
        metadata: &BlobMetadata,
        shard: ShardIndex,
        epoch: Epoch,
    ) -> Result<Vec<u8>, RecoveryError> {
        let primaries = self.collect_symbols(blob, SliverType::Primary, epoch).await;
        let data = decode(&self.encoding, metadata, &primaries)?;
        let encoded = encode(&self.encoding, &data)?;
        let sliver = encoded
            .secondary
            .get(usize::from(shard.0))
            .cloned()
            .unwrap_or_default();
        if verify_sliver(metadata, shard, SliverType::Secondary, &sliver).is_err() {
            return Err(RecoveryError::Inconsistent(InconsistencyProof {
                blob_id: blob,
                shard,
                ty: SliverType::Secondary,
            }));
        }
        Ok(sliver)
    }

    /// Recovery symbols from every other member of the committee of `epoch` (and the
    /// previous one), in node order.
    async fn collect_symbols(
        &self,
        blob: BlobId,
        ty: SliverType,
        epoch: Epoch,
    ) -> Vec<(ShardIndex, Vec<u8>)> {
        let mut members = self
            .chain
            .committee(epoch)
            .await
            .map(|c| c.members())
            .unwrap_or_default();
        members.extend(
            self.chain
                .committee(epoch.saturating_sub(1))
                .await
                .map(|c| c.members())
                .unwrap_or_default(),
        );
        members.remove(&self.ctx.id);
        let request = Request::GetRecoverySymbols { blob, ty, epoch };
        let calls = members.into_iter().map(|m| self.call_node(m, &request));
        let mut symbols = self.own_symbols(blob, ty);
        for response in futures::future::join_all(calls).await {
            if let Ok(Response::Symbols(s)) = response {
                symbols.extend(s);
            }
        }
        symbols.sort_by_key(|(s, _)| *s);
        symbols.dedup_by_key(|(s, _)| *s);
        symbols
    }

    /// This node's own slivers of `ty` for `blob`, from every shard it stores.
    fn own_symbols(&self, blob: BlobId, ty: SliverType) -> Vec<(ShardIndex, Vec<u8>)> {
        let shards = self.storage.shards().unwrap_or_default();
        shards
            .into_iter()
            .filter_map(|s| {
                self.storage
                    .sliver(s, ty, blob)
                    .ok()
                    .flatten()
                    .map(|v| (s, v))
            })
            .collect()
    }

    /// Blob sync for a certified blob (event `index`): fetch whatever owned shard lacks.
    /// The event completes when the sync does, so a crash replays it. Returns whether the event
    /// is complete already: blob syncs never start while catching up, and with
    /// `blob_sync.skip_non_extension` only extension events start one.
    pub(super) async fn start_blob_sync(
        self: &Arc<Self>,
        blob: BlobId,
        index: u64,
        kind: CertifiedKind,
    ) -> Result<bool, NodeError> {
        if self
            .storage
            .node_status()?
            .is_none_or(|s| s.is_catching_up())
        {
            return Ok(true);
        }
        if kind == CertifiedKind::Initial
            && self
                .ctx
                .fail
                .flag(fail_points::BLOB_SYNC_SKIP_NON_EXTENSION)
                .await
        {
            return Ok(true);
        }
        let pending = self.pending_events.start(index);
        let node = self.clone();
        let handle = node_spawn(&self.ctx.fail, async move {
            node.certified_event_task(blob, index, pending).await
        });
        if let Some((old_index, old)) = lock(&self.blob_syncs).insert(blob, (index, handle)) {
            old.abort();
            self.complete_event_now(old_index)?;
        }
        Ok(false)
    }

    /// The certified event stays pending (6.1 step 3) until its handling is through
    /// `blob_sync.certified_event`; then the blob sync runs and completes the event.
    async fn certified_event_task(
        self: Arc<Self>,
        blob: BlobId,
        index: u64,
        pending: PendingGuard,
    ) {
        let _ = self
            .ctx
            .fail
            .eval(fail_points::BLOB_SYNC_CERTIFIED_EVENT)
            .await;
        drop(pending);
        loop {
            match self.blob_sync(blob).await {
                Ok(()) => {
                    lock(&self.blob_syncs).remove(&blob);
                    if let Err(e) = self.mark_event_complete(index).await {
                        tracing::warn!(node = %self.ctx.id, error = %e, "cannot complete the certified event");
                    }
                    return;
                }
                Err(NodeError::Storage(e))
                    if !self.config.has(Bug::BlobSyncStopsOnStorageError) =>
                {
                    // A failing disk may recover: try again after a recovery round.
                    tracing::debug!(node = %self.ctx.id, %blob, error = %e, "blob sync: storage error, retrying");
                    tokio::time::sleep(self.config.recovery_round_interval).await;
                }
                Err(e) => {
                    tracing::info!(node = %self.ctx.id, %blob, error = %e, "blob sync ended with an error");
                    return;
                }
            }
        }
    }

    async fn blob_sync(&self, blob: BlobId) -> Result<(), NodeError> {
        let epoch = self.committee_epoch();
        for shard in self.owned_shards() {
            for ty in SliverType::ALL {
                // Ownership and storage may change while earlier slivers are recovered.
                if !self.owned_shards().contains(&shard) || !self.stores_shard(shard).await? {
                    break;
                }
                if self.storage.has_sliver(shard, ty, blob)? {
                    continue;
                }
                match self
                    .recover_and_store_retrying(blob, shard, ty, epoch)
                    .await
                {
                    Err(NodeError::Storage(StorageError::ShardNotFound(_))) => break,
                    other => other?,
                }
            }
        }
        Ok(())
    }

    /// Retries a recovery until it succeeds or the blob retires.
    pub(super) async fn recover_and_store_retrying(
        &self,
        blob: BlobId,
        shard: ShardIndex,
        ty: SliverType,
        epoch: Epoch,
    ) -> Result<(), NodeError> {
        loop {
            match self.recover_and_store(blob, shard, ty, epoch).await {
                Ok(()) | Err(NodeError::Retired) => return Ok(()),
                Err(NodeError::Storage(e)) => return Err(e.into()),
                Err(e) => tracing::debug!(node = %self.ctx.id, %blob, error = %e, "recovery retry"),
            }
            if self.is_retired(blob)? || self.storage.has_sliver(shard, ty, blob)? {
                return Ok(());
            }
            tokio::time::sleep(self.config.recovery_round_interval).await;
        }
    }

    /// Cancels every in-flight blob sync (entering recovery mode); their events complete, node
    /// recovery takes over.
    pub(super) fn cancel_blob_syncs(&self) -> Result<(), NodeError> {
        for (_, (index, handle)) in std::mem::take(&mut *lock(&self.blob_syncs)) {
            handle.abort();
            self.complete_event_now(index)?;
        }
        Ok(())
    }

    /// Cancels the blob sync of one blob (it retired); its event completes.
    pub(super) fn cancel_blob_sync(&self, blob: BlobId) -> Result<(), NodeError> {
        let cancelled = lock(&self.blob_syncs).remove(&blob);
        if let Some((index, handle)) = cancelled {
            handle.abort();
            self.complete_event_now(index)?;
        }
        Ok(())
    }

    /// Status gate helper.
    pub(super) fn status(&self) -> Result<Option<NodeStatus>, NodeError> {
        Ok(self.storage.node_status()?)
    }
}
