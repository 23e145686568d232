//! The storage node: its shared state, startup and restart ordering (spec section 7), and the
//! modules that implement each behaviour of the spec.

use shardstorm_faults::LockExt;
mod admin;
mod blob_sync;
mod committee;
mod epoch_change;
mod error;
mod events;
mod halt;
mod metadata;
mod node_recovery;
mod peers;
mod pending;
mod server;
mod shard_sync;
mod transfer;
mod writes;

pub use admin::{AdminRequest, NodeHandle, NodeSnapshot, SeedBlob, ShardSnapshot};
pub use committee::{CommitteeView, ShardDiff};
pub use error::{classify, NodeError, SyncDecision};

use crate::blob::EncodingConfig;
use crate::chain_client::ChainClient;
use crate::config::NodeConfig;
use crate::ctx::{NodeCtx, ProbeEvent, TaskId};
use crate::storage::{Disk, Storage};
use crate::types::{BlobId, Epoch, ShardIndex};
use crate::wire::NodeKey;
use events::EventTracker;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{RwLock, Semaphore};
use tokio::task::JoinHandle;

/// Everything a node process needs to start.
#[derive(Clone)]
pub struct NodeSetup {
    pub ctx: NodeCtx,
    pub config: NodeConfig,
    pub disk: Disk,
    pub encoding: EncodingConfig,
    pub key: NodeKey,
    /// Where the node publishes the handle tests and the harness use to reach it.
    pub handle_slot: Arc<Mutex<Option<NodeHandle>>>,
    /// Whether the node processes chain events (tests that drive a node by hand turn it off).
    pub process_events: bool,
}

/// The outer-task slot of the shard-sync handler.
#[derive(Default)]
struct OuterSlot {
    current: Option<(TaskId, JoinHandle<()>)>,
}

/// In-memory state of one node process (lost on crash).
pub struct Node {
    ctx: NodeCtx,
    config: NodeConfig,
    storage: Arc<Storage>,
    /// The node's client of the chain host.
    chain: Arc<ChainClient>,
    encoding: EncodingConfig,
    key: NodeKey,
    view: Mutex<CommitteeView>,
    status_lock: tokio::sync::Mutex<()>,
    shard_locks: Mutex<BTreeMap<ShardIndex, Arc<RwLock<()>>>>,
    shard_map_lock: RwLock<()>,
    outer: tokio::sync::Mutex<OuterSlot>,
    sync_tasks: Mutex<BTreeMap<ShardIndex, JoinHandle<()>>>,
    /// Outer tasks still starting shard syncs, and attestations they hold back.
    starting_syncs: Mutex<shard_sync::StartingSyncs>,
    semaphore: Arc<Semaphore>,
    finisher: Mutex<Option<JoinHandle<()>>>,
    node_recovery: Mutex<Option<JoinHandle<()>>>,
    /// In-flight blob syncs: blob → (index of the certified event they complete, task).
    blob_syncs: Mutex<BTreeMap<BlobId, (u64, JoinHandle<()>)>>,
    /// Certified events whose handling has not finished (an epoch change waits for them).
    pending_events: Arc<pending::PendingEvents>,
    /// Registrations not yet flushed to storage, in event order.
    pending_cache: Mutex<Vec<pending::PendingRegistration>>,
    /// Serializes pending-cache flushes, so a caller also waits for one in progress.
    flush_lock: tokio::sync::Mutex<()>,
    events: Mutex<EventTracker>,
    next_task: AtomicU64,
    /// Idle connections to other nodes.
    pool: crate::wire::Pool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock_ok()
}

impl Node {
    fn new(
        setup: &NodeSetup,
        storage: Storage,
        chain: Arc<ChainClient>,
        view: CommitteeView,
    ) -> Self {
        Self {
            ctx: setup.ctx.clone(),
            config: setup.config.clone(),
            storage: Arc::new(storage),
            chain,
            encoding: setup.encoding.clone(),
            key: setup.key.clone(),
            view: Mutex::new(view),
            status_lock: tokio::sync::Mutex::new(()),
            shard_locks: Mutex::default(),
            shard_map_lock: RwLock::new(()),
            outer: tokio::sync::Mutex::default(),
            sync_tasks: Mutex::default(),
            starting_syncs: Mutex::default(),
            semaphore: Arc::new(Semaphore::new(setup.config.shard_sync_concurrency.max(1))),
            finisher: Mutex::default(),
            node_recovery: Mutex::default(),
            blob_syncs: Mutex::default(),
            pending_events: Arc::default(),
            pending_cache: Mutex::default(),
            flush_lock: tokio::sync::Mutex::default(),
            events: Mutex::default(),
            next_task: AtomicU64::new(1),
            pool: crate::wire::Pool::default(),
        }
    }

    fn next_task_id(&self) -> TaskId {
        self.next_task.fetch_add(1, Ordering::Relaxed)
    }

    /// The committee view as last read.
    pub fn view(&self) -> CommitteeView {
        lock(&self.view).clone()
    }

    fn set_view(&self, view: CommitteeView) {
        *lock(&self.view) = view;
    }

    fn committee_epoch(&self) -> Epoch {
        lock(&self.view).epoch()
    }

    fn owned_shards(&self) -> std::collections::BTreeSet<ShardIndex> {
        lock(&self.view).current.shards_of(self.ctx.id)
    }

    /// Whether the node stores `shard`, read under the shard-map lock: it waits while an epoch
    /// change holds the lock for writing (spec 6.1 step 4), so it never sees a half-made change.
    async fn stores_shard(&self, shard: ShardIndex) -> Result<bool, NodeError> {
        let _map = self.shard_map_lock.read().await;
        Ok(self.storage.has_shard(shard)?)
    }

    /// The shards the node stores, read under the shard-map lock (see [`Node::stores_shard`]).
    async fn stored_shards(&self) -> Result<std::collections::BTreeSet<ShardIndex>, NodeError> {
        let _map = self.shard_map_lock.read().await;
        Ok(self.storage.shards()?)
    }

    fn shard_lock(&self, shard: ShardIndex) -> Arc<RwLock<()>> {
        lock(&self.shard_locks).entry(shard).or_default().clone()
    }

    /// Reports a fatal error and parks the process: the harness's supervisor restarts it.
    async fn fatal(&self, error: NodeError) -> ! {
        tracing::error!(node = %self.ctx.id, %error, "fatal error, node halts");
        self.ctx.report(ProbeEvent::Fatal {
            error: error.to_string(),
        });
        std::future::pending().await
    }
}

/// The timeouts of every call a node makes.
fn call_timeouts(config: &crate::NodeConfig) -> crate::wire::CallTimeouts {
    crate::wire::CallTimeouts {
        connect: config.connect_timeout,
        request: config.request_timeout,
        max_frame_bytes: config.max_frame_bytes,
    }
}

/// Spawns a task of the node that stops when the node is halted (see `halt`).
fn node_spawn<F>(fail: &shardstorm_faults::FailPoints, future: F) -> JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(halt::Halting::new(fail.clone(), future))
}

/// Runs a node process until the host is crashed: open storage, `restart_syncs`, restart node
/// recovery, then serve requests and process events (spec section 7).
pub async fn run(setup: NodeSetup) -> turmoil::Result {
    let fail = setup.ctx.fail.clone();
    halt::Halting::new(fail, run_process(setup)).await
}

async fn run_process(setup: NodeSetup) -> turmoil::Result {
    let mut storage = match Storage::open(&setup.disk) {
        Ok(s) => s,
        Err(e) => {
            setup.ctx.report(ProbeEvent::Fatal {
                error: format!("cannot open storage: {e}"),
            });
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    storage.set_fail_points(setup.ctx.fail.clone());
    // The committee view comes from the chain: a node that cannot reach it waits.
    let chain = Arc::new(ChainClient::for_node(
        setup.ctx.id,
        setup.key.clone(),
        setup.ctx.fail.clone(),
        call_timeouts(&setup.config),
    ));
    let view = chain.view(chain.epoch().await).await;
    let node = Arc::new(Node::new(&setup, storage, chain, view));
    node.ctx.report(ProbeEvent::Started);
    if let Err(e) = node.start().await {
        node.fatal(e).await;
    }
    let (handle, admin_rx) = admin::channel();
    *lock(&setup.handle_slot) = Some(handle);
    node_spawn(&node.ctx.fail, admin::serve(node.clone(), admin_rx));
    node_spawn(&node.ctx.fail, server::serve(node.clone()));
    if setup.process_events {
        if let Err(e) = node.clone().process_events().await {
            node.fatal(e).await;
        }
    }
    std::future::pending::<()>().await;
    Ok(())
}

impl Node {
    /// Steps 1 to 3 of the restart ordering.
    async fn start(self: &Arc<Self>) -> Result<(), NodeError> {
        if self.storage.node_status()?.is_none() {
            self.write_node_status(
                crate::ctx::NodeStatusWriter::N1,
                crate::NodeStatus::Standby,
                None,
            )
            .await?;
        }
        self.clone().restart_syncs().await?;
        if self
            .config
            .has(crate::Bug::UnansweredAttestationLostOnCrash)
        {
            // The reference: an attestation in flight at the crash is gone.
        } else if let Some(epoch) = self.storage.unanswered_attestation()? {
            self.send_attestation(epoch);
        }
        if let Some(crate::NodeStatus::RecoveryInProgress(e)) = self.storage.node_status()? {
            self.clone().restart_node_recovery(e);
        }
        Ok(())
    }
}
