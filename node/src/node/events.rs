//! Event processing: the chain's event stream from the persisted cursor, the lag check that
//! enters recovery mode (N3), blob lifecycle events (registrations go through the pending cache,
//! see `pending`), and the cursor that only advances over a contiguous prefix of completed events
//! (an epoch change completes when its finisher does, a certified event when its blob sync does).

use super::blob_sync::CertifiedKind;
use super::{lock, Node, NodeError};
use crate::chain::ChainEvent;
use crate::ctx::{NodeStatusWriter, ProbeEvent};
use crate::fail_points;
use crate::status::NodeStatus;
use crate::types::{BlobId, BlobInfo, Epoch};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long the chain may hold an event read that finds nothing new (a long poll).
const EVENT_WAIT: Duration = Duration::from_millis(500);

/// Completed event indices and the persisted cursor (next event not yet completed).
#[derive(Debug, Default)]
pub(super) struct EventTracker {
    cursor: u64,
    completed: BTreeSet<u64>,
}

impl EventTracker {
    /// Marks `index` complete; returns the new cursor if it advanced.
    pub(super) fn complete(&mut self, index: u64) -> Option<u64> {
        if index < self.cursor {
            return None;
        }
        self.completed.insert(index);
        let before = self.cursor;
        while self.completed.remove(&self.cursor) {
            self.cursor += 1;
        }
        (self.cursor != before).then_some(self.cursor)
    }
}

impl Node {
    /// Marks an event complete and persists the cursor if it advanced.
    pub(super) async fn mark_event_complete(&self, index: u64) -> Result<(), NodeError> {
        self.mark_events_complete(std::iter::once(index)).await
    }

    /// Marks several events complete and persists the cursor once.
    pub(super) async fn mark_events_complete(
        &self,
        indices: impl Iterator<Item = u64>,
    ) -> Result<(), NodeError> {
        let advanced = {
            let mut events = lock(&self.events);
            indices.fold(None, |last, index| events.complete(index).or(last))
        };
        if let Some(cursor) = advanced {
            self.ctx
                .fail
                .check(fail_points::EVENTS_WRITE_BEFORE)
                .await?;
            self.storage.set_event_cursor(cursor)?;
            self.ctx.fail.check(fail_points::EVENTS_WRITE_AFTER).await?;
        }
        Ok(())
    }

    /// Marks an event complete from synchronous code (cancelled blob syncs).
    pub(super) fn complete_event_now(&self, index: u64) -> Result<(), NodeError> {
        let advanced = lock(&self.events).complete(index);
        if let Some(cursor) = advanced {
            self.storage.set_event_cursor(cursor)?;
        }
        Ok(())
    }

    /// N2, then processes events forever.
    pub(super) async fn process_events(self: Arc<Self>) -> Result<(), NodeError> {
        let mut next = self.initial_cursor().await?;
        lock(&self.events).cursor = next;
        let epoch_at_start = self.committee_epoch();
        let mut lag_checked = false;
        loop {
            let page = self.chain.events(next, 64, EVENT_WAIT).await;
            if page.events.is_empty() {
                tokio::time::sleep(self.config.event_poll_interval).await;
                continue;
            }
            for (index, event) in page.events {
                if !lag_checked {
                    lag_checked = true;
                    self.lag_check(event.epoch(), epoch_at_start).await?;
                }
                self.ctx
                    .fail
                    .check(fail_points::EVENTS_BEFORE_PROCESS)
                    .await?;
                let _ = self.ctx.fail.eval(fail_points::EVENTS_PROCESS).await;
                self.ctx
                    .fail
                    .check(fail_points::EVENTS_HANDLE_BEFORE)
                    .await?;
                let complete_now = self.handle_event(index, &event).await?;
                self.ctx
                    .fail
                    .check(fail_points::EVENTS_HANDLE_AFTER)
                    .await?;
                if complete_now {
                    self.mark_event_complete(index).await?;
                }
                next = index + 1;
            }
        }
    }

    /// The persisted cursor, after the N2 check for a fresh node with pruned history.
    async fn initial_cursor(&self) -> Result<u64, NodeError> {
        let mut cursor = self.storage.event_cursor()?;
        if cursor == 0 {
            if let Some(c) = self
                .ctx
                .fail
                .arg(fail_points::EVENTS_INITIAL_CURSOR)
                .await
                .and_then(|a| a.trim().parse().ok())
            {
                cursor = c;
            }
        }
        let stream = self.chain.events(cursor, 1, Duration::ZERO).await;
        let first = stream.first_available;
        if cursor == 0 && first > 0 {
            let _ = self
                .ctx
                .fail
                .eval(fail_points::NODE_INCOMPLETE_HISTORY)
                .await;
            let status = NodeStatus::RecoveryCatchUpWithIncompleteHistory {
                first_complete_epoch: stream.first_complete_epoch,
                epoch_at_start: self.committee_epoch(),
            };
            self.write_node_status(NodeStatusWriter::N2, status, None)
                .await?;
            self.storage.clear_blob_info()?;
            cursor = first;
            self.storage.set_event_cursor(cursor)?;
        }
        Ok(cursor.min(stream.event_count))
    }

    /// N3: the first event after startup is more than one epoch behind the committee.
    async fn lag_check(&self, event_epoch: Epoch, epoch_at_start: Epoch) -> Result<(), NodeError> {
        let threshold: Epoch = self
            .ctx
            .fail
            .arg(fail_points::EVENTS_EPOCH_CHECK)
            .await
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or(1);
        if event_epoch.saturating_add(threshold) < epoch_at_start
            && !self.status()?.is_some_and(|s| s.is_catching_up())
        {
            self.enter_recovery_mode(NodeStatusWriter::N3, event_epoch)
                .await?;
        }
        Ok(())
    }

    /// "Enter recovery mode": write `RecoveryCatchUp`, then cancel every in-flight blob sync.
    pub(super) async fn enter_recovery_mode(
        &self,
        writer: NodeStatusWriter,
        event_epoch: Epoch,
    ) -> Result<(), NodeError> {
        self.ctx.report(ProbeEvent::RecoveryMode { event_epoch });
        self.write_node_status(writer, NodeStatus::RecoveryCatchUp, None)
            .await?;
        self.cancel_blob_syncs()?;
        Ok(())
    }

    /// Handles one event; returns whether it is complete now (an epoch change may complete
    /// later, when its finisher does).
    async fn handle_event(
        self: &Arc<Self>,
        index: u64,
        event: &ChainEvent,
    ) -> Result<bool, NodeError> {
        match *event {
            ChainEvent::BlobRegistered {
                blob,
                end_epoch,
                epoch,
            } => {
                let info = BlobInfo {
                    registered_epoch: epoch,
                    end_epoch,
                    certified_epoch: None,
                    deleted: false,
                    invalid: false,
                };
                self.on_registered(index, blob, info);
                return Ok(false);
            }
            ChainEvent::BlobCertified { blob, epoch } => {
                return self.on_certified(index, blob, epoch).await
            }
            ChainEvent::BlobExtended {
                blob, end_epoch, ..
            } => return self.on_extended(index, blob, end_epoch).await,
            ChainEvent::BlobDeleted { blob, .. } => {
                self.on_retired(blob, |i| i.deleted = true).await?
            }
            ChainEvent::BlobInvalidated { blob, .. } => {
                self.on_retired(blob, |i| i.invalid = true).await?
            }
            ChainEvent::EpochChangeStart { epoch } => {
                let complete = self.process_epoch_change(index, epoch).await?;
                self.ctx.report(ProbeEvent::EpochChangeProcessed { epoch });
                return Ok(complete);
            }
            ChainEvent::EpochChangeDone { .. } => {}
        }
        Ok(true)
    }

    /// Records the certification and starts a blob sync; returns whether the event is
    /// complete now (otherwise the blob sync completes it). Waits for the pending-cache flush,
    /// so the blob's registration is in storage.
    async fn on_certified(
        self: &Arc<Self>,
        index: u64,
        blob: BlobId,
        epoch: Epoch,
    ) -> Result<bool, NodeError> {
        self.flush_pending_caches().await?;
        let Some(mut info) = self.storage.blob_info(blob)? else {
            tracing::warn!(node = %self.ctx.id, %blob, "certified event for an unknown blob");
            return Ok(true);
        };
        if info.certified_epoch.is_none() {
            info.certified_epoch = Some(epoch);
            self.storage.put_blob_info(blob, &info)?;
        }
        if info.is_retired_at(self.committee_epoch()) {
            return Ok(true);
        }
        self.start_blob_sync(blob, index, CertifiedKind::Initial)
            .await
    }

    /// Records a certified blob's new end epoch and starts a blob sync, as an extension
    /// certification; returns whether the event is complete now.
    async fn on_extended(
        self: &Arc<Self>,
        index: u64,
        blob: BlobId,
        end_epoch: Epoch,
    ) -> Result<bool, NodeError> {
        self.flush_pending_caches().await?;
        let Some(mut info) = self.storage.blob_info(blob)? else {
            tracing::warn!(node = %self.ctx.id, %blob, "extension event for an unknown blob");
            return Ok(true);
        };
        if info.end_epoch < end_epoch {
            info.end_epoch = end_epoch;
            self.storage.put_blob_info(blob, &info)?;
        }
        if info.certified_epoch.is_none() || info.is_retired_at(self.committee_epoch()) {
            return Ok(true);
        }
        self.start_blob_sync(blob, index, CertifiedKind::Extension)
            .await
    }

    async fn on_retired(
        &self,
        blob: BlobId,
        mark: impl FnOnce(&mut BlobInfo),
    ) -> Result<(), NodeError> {
        self.flush_pending_caches().await?;
        if let Some(mut info) = self.storage.blob_info(blob)? {
            mark(&mut info);
            self.storage.put_blob_info(blob, &info)?;
        }
        self.cancel_blob_sync(blob)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_advances_only_over_a_contiguous_prefix() {
        let mut t = EventTracker::default();
        assert_eq!(t.complete(0), Some(1));
        assert_eq!(
            t.complete(2),
            None,
            "event 1 (an epoch change) is still open"
        );
        assert_eq!(t.complete(3), None);
        assert_eq!(t.complete(1), Some(4));
        assert_eq!(
            t.complete(0),
            None,
            "replayed events do not move the cursor back"
        );
    }
}
