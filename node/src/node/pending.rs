//! Pending event work: the pending cache of blob registrations and its flush (fail point
//! `events.flush_pending_caches`), which every other blob-lifecycle event waits for; and the
//! certified events whose handling has not finished yet, which an epoch change waits for before
//! it proceeds (spec 6.1 step 3).

use super::{lock, node_spawn, Node, NodeError};
use crate::fail_points;
use crate::types::{BlobId, BlobInfo};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Certified events (by event index) whose handling has started but not finished.
#[derive(Debug)]
pub(super) struct PendingEvents {
    indices: Mutex<BTreeSet<u64>>,
    /// The number of pending events, for waiters (a `watch` loses no wake-up).
    count: watch::Sender<usize>,
}

impl Default for PendingEvents {
    fn default() -> Self {
        Self {
            indices: Mutex::default(),
            count: watch::channel(0).0,
        }
    }
}

impl PendingEvents {
    /// Marks event `index` pending until the returned guard is dropped (the handling finished,
    /// or its task was aborted).
    pub(super) fn start(self: &Arc<Self>, index: u64) -> PendingGuard {
        let len = {
            let mut indices = lock(&self.indices);
            indices.insert(index);
            indices.len()
        };
        self.count.send_replace(len);
        PendingGuard {
            events: self.clone(),
            index,
        }
    }

    fn finish(&self, index: u64) {
        let len = {
            let mut indices = lock(&self.indices);
            indices.remove(&index);
            indices.len()
        };
        self.count.send_replace(len);
    }

    /// The pending event indices, ascending.
    pub(super) fn indices(&self) -> BTreeSet<u64> {
        lock(&self.indices).clone()
    }

    /// Waits until no event is pending.
    pub(super) async fn wait_until_empty(&self) {
        let mut rx = self.count.subscribe();
        // The sender lives as long as `self`, so `wait_for` cannot fail here.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Keeps one certified event pending while alive.
#[derive(Debug)]
pub(super) struct PendingGuard {
    events: Arc<PendingEvents>,
    index: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.events.finish(self.index);
    }
}

/// One registration not yet flushed to storage: (event index, blob, info).
pub(super) type PendingRegistration = (u64, BlobId, BlobInfo);

impl Node {
    /// A registration goes into the pending cache; a background flush writes it and completes
    /// its event (so a crash before the flush replays the registration).
    pub(super) fn on_registered(self: &Arc<Self>, index: u64, blob: BlobId, info: BlobInfo) {
        lock(&self.pending_cache).push((index, blob, info));
        let node = self.clone();
        node_spawn(&self.ctx.fail, async move {
            while let Err(e) = node.flush_pending_caches().await {
                tracing::warn!(node = %node.ctx.id, error = %e, "pending-cache flush failed; retrying");
                tokio::time::sleep(node.config.event_poll_interval).await;
            }
        });
    }

    /// Writes every pending registration to storage and completes its event. A caller waits for
    /// a flush already in progress (they are serialized), so afterwards every registration
    /// processed before the call is in storage.
    pub(super) async fn flush_pending_caches(&self) -> Result<(), NodeError> {
        let _flush = self.flush_lock.lock().await;
        if lock(&self.pending_cache).is_empty() {
            return Ok(());
        }
        let _ = self
            .ctx
            .fail
            .eval(fail_points::EVENTS_FLUSH_PENDING_CACHES)
            .await;
        let entries = std::mem::take(&mut *lock(&self.pending_cache));
        if let Err(e) = self.write_registrations(&entries) {
            // Put them back, ahead of newer registrations.
            let mut cache = lock(&self.pending_cache);
            let newer = std::mem::take(&mut *cache);
            cache.extend(entries);
            cache.extend(newer);
            return Err(e);
        }
        self.mark_events_complete(entries.iter().map(|(index, _, _)| *index))
            .await
    }

    /// Stores the registrations whose blob has no info yet, in one transaction.
    fn write_registrations(&self, entries: &[(u64, BlobId, BlobInfo)]) -> Result<(), NodeError> {
        let mut absent = Vec::new();
        for (_, blob, info) in entries {
            if self.storage.blob_info(*blob)?.is_none() {
                absent.push((*blob, *info));
            }
        }
        if !absent.is_empty() {
            self.storage.put_blob_info_batch(&absent)?;
        }
        Ok(())
    }

    /// A blob's info from storage, or from the pending cache if its registration is not flushed
    /// yet (client uploads must not wait for the flush).
    pub(super) fn blob_info_or_pending(&self, blob: BlobId) -> Result<Option<BlobInfo>, NodeError> {
        if let Some(info) = self.storage.blob_info(blob)? {
            return Ok(Some(info));
        }
        Ok(lock(&self.pending_cache)
            .iter()
            .find(|(_, b, _)| *b == blob)
            .map(|(_, _, info)| *info))
    }

    /// Spec 6.1 step 3: waits until every pending certified event has been handled.
    pub(super) async fn wait_for_pending_events(&self, epoch: crate::types::Epoch) {
        let pending = self.pending_events.indices();
        if pending.is_empty() {
            return;
        }
        self.ctx.report(crate::ctx::ProbeEvent::PendingEventsWait {
            epoch,
            pending: pending.len(),
        });
        self.pending_events.wait_until_empty().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_guard_ends_the_wait() {
        let events = Arc::new(PendingEvents::default());
        events.wait_until_empty().await;
        let a = events.start(3);
        let b = events.start(5);
        assert_eq!(events.indices(), BTreeSet::from([3, 5]));
        drop(a);
        let waiter = {
            let events = events.clone();
            tokio::spawn(async move { events.wait_until_empty().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "event 5 is still pending");
        drop(b);
        waiter.await.unwrap();
        assert!(events.indices().is_empty());
    }
}
