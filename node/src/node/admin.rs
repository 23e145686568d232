//! The node's admin interface: what tests and the harness do to a running node from outside
//! (start syncs by hand, write a status directly, lock a shard, clear metadata, seed blobs,
//! inspect its state, in-flight blob syncs and pending certified events included). Requests run on the node's own runtime, so tasks they spawn die with it.

use super::{lock, Node, NodeError};
use crate::blob::BlobMetadata;
use crate::ctx::{NodeStatusWriter, ShardStatusWriter};
use crate::status::{NodeStatus, ShardStatus};
use crate::types::{BlobId, BlobInfo, Epoch, ShardIndex, SliverType};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A blob written straight into a node's storage (test fixtures).
#[derive(Clone, Debug)]
pub struct SeedBlob {
    pub blob: BlobId,
    pub info: BlobInfo,
    pub metadata: Option<BlobMetadata>,
    pub slivers: Vec<(ShardIndex, SliverType, Vec<u8>)>,
}

/// One shard as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSnapshot {
    pub status: ShardStatus,
    /// blob -> blake3 hash of the stored sliver.
    pub primary: BTreeMap<BlobId, [u8; 32]>,
    pub secondary: BTreeMap<BlobId, [u8; 32]>,
    pub pending: Vec<(SliverType, BlobId)>,
    pub progress: Option<(BlobId, SliverType)>,
}

/// A node's persisted and in-memory state, for assertions and the oracle's final audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSnapshot {
    pub status: Option<NodeStatus>,
    pub committee_epoch: Epoch,
    pub shards: BTreeMap<ShardIndex, ShardSnapshot>,
    pub metadata: BTreeSet<BlobId>,
    pub event_cursor: u64,
    pub outer_task_running: bool,
    pub sync_tasks_running: BTreeSet<ShardIndex>,
    pub sync_tasks_failed: BTreeSet<ShardIndex>,
    pub node_recovery_running: bool,
    /// Blobs whose blob sync (started by a certified or extension event) is still running.
    pub blob_syncs_running: BTreeSet<BlobId>,
    /// Certified events (by event index) whose handling has not finished (spec 6.1 step 3).
    pub pending_events: BTreeSet<u64>,
}

/// Something to do on a node.
#[derive(Debug)]
pub enum AdminRequest {
    /// `start_sync_shards(shards, recover_metadata)`. `recover_metadata` is the pre-fix
    /// caller's flag (spec 8: the epoch change passed `new_joiner`); the fixed node derives the
    /// mode from the persisted status and ignores it, `abort-drops-metadata-recovery` obeys it.
    StartSyncShards {
        shards: Vec<ShardIndex>,
        recover_metadata: bool,
    },
    RestartSyncs,
    SetNodeStatus(NodeStatus),
    SetShardStatus(ShardIndex, ShardStatus),
    CreateShard(ShardIndex),
    ClearMetadata,
    /// Re-read the committee view for an epoch from the chain.
    ReadCommittee(Epoch),
    Seed(Vec<SeedBlob>),
}

type Reply<T> = oneshot::Sender<Result<T, String>>;

pub(super) enum Message {
    Do(AdminRequest, Reply<()>),
    Snapshot(Reply<NodeSnapshot>),
    Idle(Reply<bool>),
}

/// A cloneable handle on a running node.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    tx: mpsc::UnboundedSender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("admin message")
    }
}

pub(super) fn channel() -> (NodeHandle, mpsc::UnboundedReceiver<Message>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (NodeHandle { tx }, rx)
}

async fn ask<T>(
    tx: &mpsc::UnboundedSender<Message>,
    make: impl FnOnce(Reply<T>) -> Message,
) -> Result<T, String> {
    let (reply, rx) = oneshot::channel();
    tx.send(make(reply))
        .map_err(|_| "node is down".to_string())?;
    rx.await.map_err(|_| "node went down".to_string())?
}

impl NodeHandle {
    /// Runs an admin request on the node and waits for it to be done.
    pub async fn request(&self, request: AdminRequest) -> Result<(), String> {
        ask(&self.tx, |r| Message::Do(request, r)).await
    }

    pub async fn snapshot(&self) -> Result<NodeSnapshot, String> {
        ask(&self.tx, Message::Snapshot).await
    }

    /// True when no per-shard task is unfinished and the outer task is absent or finished.
    pub async fn no_sync_tasks(&self) -> Result<bool, String> {
        ask(&self.tx, Message::Idle).await
    }

    /// Whether the node behind this handle is gone (crashed or restarted).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

pub(super) async fn serve(node: Arc<Node>, mut rx: mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = rx.recv().await {
        match message {
            Message::Do(request, reply) => {
                let _ = reply.send(node.admin(request).await.map_err(|e| e.to_string()));
            }
            Message::Snapshot(reply) => {
                let _ = reply.send(node.snapshot().await.map_err(|e| e.to_string()));
            }
            Message::Idle(reply) => {
                let _ = reply.send(Ok(!node.has_sync_work().await));
            }
        }
    }
}

impl Node {
    async fn admin(self: &Arc<Self>, request: AdminRequest) -> Result<(), NodeError> {
        match request {
            AdminRequest::StartSyncShards {
                shards,
                recover_metadata,
            } => self.start_sync_shards(shards, recover_metadata).await,
            AdminRequest::RestartSyncs => self.clone().restart_syncs().await?,
            AdminRequest::SetNodeStatus(s) => {
                self.write_node_status(NodeStatusWriter::Direct, s, None)
                    .await?
            }
            AdminRequest::SetShardStatus(shard, s) => {
                self.write_shard_status(shard, s, ShardStatusWriter::Direct)
                    .await?
            }
            AdminRequest::CreateShard(shard) => self.create_shard(shard)?,
            AdminRequest::ClearMetadata => self.storage.clear_metadata()?,
            AdminRequest::ReadCommittee(epoch) => self.set_view(self.chain.view(epoch).await),
            AdminRequest::Seed(blobs) => self.seed(blobs)?,
        }
        Ok(())
    }

    fn seed(&self, blobs: Vec<SeedBlob>) -> Result<(), NodeError> {
        for b in blobs {
            self.storage.put_blob_info(b.blob, &b.info)?;
            if let Some(m) = &b.metadata {
                self.storage.put_metadata(b.blob, m)?;
            }
            let writes: Vec<_> = b
                .slivers
                .into_iter()
                .map(|(s, t, d)| (s, t, b.blob, d))
                .collect();
            self.storage.put_slivers(&writes)?;
        }
        Ok(())
    }

    async fn snapshot(&self) -> Result<NodeSnapshot, NodeError> {
        let mut shards = BTreeMap::new();
        for shard in self.storage.shards()? {
            shards.insert(shard, self.shard_snapshot(shard)?);
        }
        let (running, failed) = {
            let tasks = lock(&self.sync_tasks);
            let failed: BTreeSet<_> = tasks
                .iter()
                .filter(|(_, h)| h.is_finished())
                .map(|(s, _)| *s)
                .collect();
            let running = tasks
                .keys()
                .filter(|s| !failed.contains(s))
                .copied()
                .collect();
            (running, failed)
        };
        Ok(NodeSnapshot {
            status: self.storage.node_status()?,
            committee_epoch: self.committee_epoch(),
            shards,
            metadata: self.storage.metadata_ids()?.into_iter().collect(),
            event_cursor: self.storage.event_cursor()?,
            outer_task_running: self
                .outer
                .lock()
                .await
                .current
                .as_ref()
                .is_some_and(|(_, h)| !h.is_finished()),
            sync_tasks_running: running,
            sync_tasks_failed: failed,
            node_recovery_running: lock(&self.node_recovery)
                .as_ref()
                .is_some_and(|h| !h.is_finished()),
            blob_syncs_running: lock(&self.blob_syncs)
                .iter()
                .filter(|(_, (_, h))| !h.is_finished())
                .map(|(b, _)| *b)
                .collect(),
            pending_events: self.pending_events.indices(),
        })
    }

    fn shard_snapshot(&self, shard: ShardIndex) -> Result<ShardSnapshot, NodeError> {
        let hashes = |ty| -> Result<BTreeMap<BlobId, [u8; 32]>, NodeError> {
            let mut out = BTreeMap::new();
            for blob in self.storage.sliver_ids(shard, ty)? {
                if let Some(s) = self.storage.sliver(shard, ty, blob)? {
                    out.insert(blob, *blake3::hash(&s).as_bytes());
                }
            }
            Ok(out)
        };
        Ok(ShardSnapshot {
            status: self
                .storage
                .shard_status(shard)?
                .unwrap_or(ShardStatus::None),
            primary: hashes(SliverType::Primary)?,
            secondary: hashes(SliverType::Secondary)?,
            pending: self.storage.pending(shard)?,
            progress: self.storage.progress(shard)?,
        })
    }
}
