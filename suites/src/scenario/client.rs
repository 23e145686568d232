//! What a scenario's turmoil client can do: reach each node's admin handle (across restarts),
//! configure fail points and wait for them, ask the driver loop to crash or restart a node,
//! write spec steps into the trace, and record soft assertion failures.
//!
//! Waits are in simulated time (the client runs on its own host of the simulation) and poll;
//! a wait that times out records a failed check and returns `false`, so the scenario can go on
//! and report every spec assertion a buggy node breaks.

use crate::scenario::{ENTERED_TIMEOUT, METADATA_PAUSE, NO_SYNC_TASKS_TIMEOUT};
use shardstorm_faults::{Fault, LockExt, Registry, Selector};
use shardstorm_harness::{HarnessEvent, Recorder, TraceKind};
use shardstorm_node::blob::EncodingConfig;
use shardstorm_node::chain::ChainError;
use shardstorm_node::{
    AdminRequest, Chain, NodeHandle, NodeId, NodeSnapshot, NodeStatus, ShardIndex, ShardStatus,
};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A hard scenario error: a node could not be reached or refused a request, a fail-point
/// action did not parse. The scenario stops; the outcome records it as a failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub String);

/// A chain transaction the scenario makes (register, certify, an epoch change) was refused.
impl From<ChainError> for ScenarioError {
    fn from(e: ChainError) -> Self {
        ScenarioError(e.to_string())
    }
}

/// How often waits poll.
const POLL: Duration = Duration::from_millis(10);

/// How long to wait for a node's admin handle to appear (start-up or restart).
const HANDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A fault the client asks the driver loop to apply between steps.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Crash(NodeId),
    Restart(NodeId),
    /// A network fault, applied as the nemesis would and healed when its duration ends.
    Network(Fault),
}

/// State shared by the client and the driver loop.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) commands: Vec<Command>,
    /// Restarts applied per node (the client waits for the count to move).
    pub(crate) restarts: BTreeMap<NodeId, u64>,
    /// Failed spec assertions, in order.
    pub(crate) failures: Vec<String>,
}

/// The scenario client's control over the cluster.
#[derive(Clone)]
pub struct Ctl {
    slots: BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>>,
    pub registry: Registry,
    pub chain: Chain,
    pub encoding: EncodingConfig,
    recorder: Recorder,
    pub(crate) shared: Arc<Mutex<Shared>>,
}

impl Ctl {
    pub(crate) fn new(
        slots: BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>>,
        registry: Registry,
        chain: Chain,
        encoding: EncodingConfig,
        recorder: Recorder,
        shared: Arc<Mutex<Shared>>,
    ) -> Self {
        Self {
            slots,
            registry,
            chain,
            encoding,
            recorder,
            shared,
        }
    }

    // ----- trace and assertions -----

    /// Writes a spec step (or any remark) into the trace, so snapshots read like the spec.
    pub fn note(&self, text: impl Into<String>) {
        self.recorder
            .record(None, TraceKind::Harness(HarnessEvent::Note(text.into())));
    }

    /// Records a failed spec assertion.
    pub fn fail(&self, message: impl Into<String>) {
        let message = message.into();
        self.note(format!("CHECK FAILED: {message}"));
        self.shared.lock_ok().failures.push(message);
    }

    /// Records `message` as failed unless `ok`; returns `ok`.
    pub fn check(&self, ok: bool, message: impl Into<String>) -> bool {
        if !ok {
            self.fail(message);
        }
        ok
    }

    /// Records a failure unless `actual == expected`; returns whether they matched.
    pub fn check_eq<T: PartialEq + Debug>(&self, what: &str, actual: T, expected: T) -> bool {
        self.check(
            actual == expected,
            format!("{what}: expected {expected:?}, got {actual:?}"),
        )
    }

    /// Records a failure unless `shard`'s storage in `snapshot` has status `expected` (the
    /// check is named `shard <n> status`); returns whether it had.
    pub fn check_shard_status(
        &self,
        snapshot: &NodeSnapshot,
        shard: u16,
        expected: ShardStatus,
    ) -> bool {
        let actual = snapshot.shards.get(&ShardIndex(shard)).map(|s| s.status);
        self.check_eq(&format!("shard {shard} status"), actual, Some(expected))
    }

    /// Records the error of a soft step as a failed check.
    pub fn soft<T>(&self, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    // ----- nodes -----

    fn current_handle(&self, node: NodeId) -> Option<NodeHandle> {
        self.slots
            .get(&node)
            .and_then(|s| s.lock_ok().clone())
            .filter(|h| !h.is_closed())
    }

    /// The node's admin handle, waiting (up to 30 s) while it starts.
    pub async fn handle(&self, node: NodeId) -> Result<NodeHandle, ScenarioError> {
        let mut waited = Duration::ZERO;
        loop {
            if let Some(h) = self.current_handle(node) {
                return Ok(h);
            }
            if waited >= HANDLE_TIMEOUT {
                return Err(ScenarioError(format!(
                    "{node} did not come up within {HANDLE_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
            waited += POLL;
        }
    }

    /// Runs an admin request on a node.
    pub async fn request(&self, node: NodeId, request: AdminRequest) -> Result<(), ScenarioError> {
        let what = match &request {
            AdminRequest::Seed(blobs) => format!("Seed({} blobs)", blobs.len()),
            other => format!("{other:?}"),
        };
        self.handle(node)
            .await?
            .request(request)
            .await
            .map_err(|e| ScenarioError(format!("{node}: {what}: {e}")))
    }

    /// The node's persisted and in-memory state.
    pub async fn snapshot(&self, node: NodeId) -> Result<NodeSnapshot, ScenarioError> {
        self.handle(node)
            .await?
            .snapshot()
            .await
            .map_err(|e| ScenarioError(format!("{node}: snapshot: {e}")))
    }

    /// `start_sync_shards(shards)` of the fixed design (spec 8.3): no caller flag (the
    /// pre-fix flag is sent as `false`).
    pub async fn start_sync_shards(
        &self,
        node: NodeId,
        shards: &[u16],
    ) -> Result<(), ScenarioError> {
        self.start_sync_shards_flagged(node, shards, false).await
    }

    /// `start_sync_shards(shards, recover_metadata)` with the pre-fix caller flag (spec 8: the
    /// epoch change passed `new_joiner`). The fixed node ignores the flag; a node with
    /// `abort-drops-metadata-recovery` recovers metadata only when it is set.
    pub async fn start_sync_shards_flagged(
        &self,
        node: NodeId,
        shards: &[u16],
        recover_metadata: bool,
    ) -> Result<(), ScenarioError> {
        let shards = shards.iter().map(|s| ShardIndex(*s)).collect();
        self.request(
            node,
            AdminRequest::StartSyncShards {
                shards,
                recover_metadata,
            },
        )
        .await
    }

    pub async fn restart_syncs(&self, node: NodeId) -> Result<(), ScenarioError> {
        self.request(node, AdminRequest::RestartSyncs).await
    }

    /// A direct (blind) node-status write.
    pub async fn set_status(&self, node: NodeId, status: NodeStatus) -> Result<(), ScenarioError> {
        self.request(node, AdminRequest::SetNodeStatus(status))
            .await
    }

    pub async fn set_shard_status(
        &self,
        node: NodeId,
        shard: u16,
        status: ShardStatus,
    ) -> Result<(), ScenarioError> {
        self.request(
            node,
            AdminRequest::SetShardStatus(ShardIndex(shard), status),
        )
        .await
    }

    /// Deletes all stored metadata on the node.
    pub async fn clear_metadata(&self, node: NodeId) -> Result<(), ScenarioError> {
        self.request(node, AdminRequest::ClearMetadata).await
    }

    /// The spec's `wait_until_no_sync_tasks`: up to 2 simulated minutes until no per-shard task
    /// is unfinished and the outer task is absent or finished. Soft.
    pub async fn wait_until_no_sync_tasks(&self, node: NodeId) -> bool {
        self.wait_until_no_sync_tasks_for(node, NO_SYNC_TASKS_TIMEOUT)
            .await
    }

    /// `wait_until_no_sync_tasks` with another timeout. Soft.
    pub async fn wait_until_no_sync_tasks_for(&self, node: NodeId, timeout: Duration) -> bool {
        let mut waited = Duration::ZERO;
        loop {
            match self.handle(node).await {
                Ok(h) => {
                    if h.no_sync_tasks().await == Ok(true) {
                        return true;
                    }
                }
                Err(e) => {
                    return self.check(false, format!("wait_until_no_sync_tasks({node}): {e}"))
                }
            }
            if waited >= timeout {
                let detail = match self.snapshot(node).await {
                    Ok(s) => format!(
                        "running {:?}, failed {:?}, outer task running {}",
                        s.sync_tasks_running, s.sync_tasks_failed, s.outer_task_running
                    ),
                    Err(e) => e.to_string(),
                };
                return self.check(
                    false,
                    format!(
                        "wait_until_no_sync_tasks({node}) timed out after {timeout:?}: {detail}"
                    ),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
    }

    /// Asks the driver loop to restart (crash, then bounce) a node, and waits until the new
    /// process has published its admin handle.
    pub async fn restart(&self, node: NodeId) -> Result<(), ScenarioError> {
        self.note(format!("restart {node}"));
        let before = {
            let mut shared = self.shared.lock_ok();
            shared.commands.push(Command::Restart(node));
            shared.restarts.get(&node).copied().unwrap_or(0)
        };
        let mut waited = Duration::ZERO;
        loop {
            tokio::time::sleep(POLL).await;
            waited += POLL;
            let applied = self
                .shared
                .lock_ok()
                .restarts
                .get(&node)
                .copied()
                .unwrap_or(0)
                > before;
            if applied && self.current_handle(node).is_some() {
                return Ok(());
            }
            if waited >= HANDLE_TIMEOUT {
                return Err(ScenarioError(format!(
                    "{node} did not restart within {HANDLE_TIMEOUT:?}"
                )));
            }
        }
    }

    /// Polls the node's snapshot every 100 ms until `cond` holds (up to `timeout`) and returns
    /// that snapshot; records a failed check naming `what` otherwise. Soft.
    pub async fn wait_snapshot(
        &self,
        node: NodeId,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&NodeSnapshot) -> bool,
    ) -> Option<NodeSnapshot> {
        let step = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        loop {
            let last = self.snapshot(node).await;
            if let Ok(s) = &last {
                if cond(s) {
                    return last.ok();
                }
            }
            if waited >= timeout {
                let detail = match last {
                    Ok(s) => format!("status {:?}, cursor {}", s.status, s.event_cursor),
                    Err(e) => e.to_string(),
                };
                self.fail(format!(
                    "{what} on {node}: not within {timeout:?} ({detail})"
                ));
                return None;
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
    }

    /// The trace so far, one line per event.
    pub fn trace_lines(&self) -> Vec<String> {
        self.recorder
            .lock()
            .events()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    /// Trace lines of `node` containing `text`.
    pub fn trace_lines_of(&self, node: NodeId, text: &str) -> Vec<String> {
        let tag = format!(" {node} ");
        self.trace_lines()
            .into_iter()
            .filter(|l| l.contains(&tag) && l.contains(text))
            .collect()
    }

    /// Simulated sleep.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Polls `cond` every 10 ms for up to `timeout`; records a failed check naming `what` if it
    /// never held. Soft.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        let mut waited = Duration::ZERO;
        while !cond() {
            if waited >= timeout {
                return self.check(false, format!("{what}: not within {timeout:?}"));
            }
            tokio::time::sleep(POLL).await;
            waited += POLL;
        }
        true
    }

    /// Asks the driver loop to inject a network fault (a partition, a cut to the chain, loss);
    /// it heals by itself when its duration ends.
    pub fn inject(&self, fault: Fault) {
        self.note(format!("inject {fault}"));
        self.shared.lock_ok().commands.push(Command::Network(fault));
    }

    // ----- fail points -----

    /// Configures `point` on `node` (fail-rs action grammar).
    pub fn configure(&self, node: NodeId, point: &str, actions: &str) -> Result<(), ScenarioError> {
        self.note(format!("fail point {point} on {node}: {actions}"));
        self.registry
            .configure(Selector::Node(node.host()), point, actions)
            .map_err(|e| ScenarioError(format!("fail point {point}={actions}: {e}")))
    }

    /// Removes every rule of `point` (releasing tasks paused there).
    pub fn clear(&self, point: &str) {
        self.note(format!("clear fail point {point}"));
        self.registry.clear(point);
    }

    /// Opens the gate of `point` for `node`: tasks paused there resume, later hits pass.
    pub fn open_gate(&self, node: NodeId, point: &str) {
        self.note(format!("open the gate of {point} on {node}"));
        self.registry.open_gate(Selector::Node(node.host()), point);
    }

    /// How often `point` was evaluated on `node`.
    pub fn reached(&self, node: NodeId, point: &str) -> u64 {
        self.registry.reached(&node.host(), point)
    }

    /// Waits until `point` was reached `n` times on `node`. Soft.
    pub async fn wait_reached(&self, node: NodeId, point: &str, n: u64, timeout: Duration) -> bool {
        let registry = self.registry.clone();
        let host = node.host();
        self.wait_until(
            &format!("{point} reached {n} time(s) on {node}"),
            timeout,
            || registry.has_reached(&host, point, n),
        )
        .await
    }

    // ----- the pause recipe on sync.metadata.pause (spec section 9) -----

    /// Configures the pause: every task reaching the point waits until release.
    pub fn pause_metadata(&self, node: NodeId) -> Result<(), ScenarioError> {
        self.configure(node, METADATA_PAUSE, "pause")
    }

    /// Waits (up to 30 s) for "entered": the `n`-th task reached the pause. Soft.
    pub async fn wait_entered(&self, node: NodeId, n: u64) -> bool {
        let ok = self
            .wait_reached(node, METADATA_PAUSE, n, ENTERED_TIMEOUT)
            .await;
        if ok {
            self.note(format!("entered ({n}) on {node}"));
        }
        ok
    }

    /// Sets release: paused tasks resume and later tasks pass.
    pub fn release(&self, node: NodeId) {
        self.note(format!("release {METADATA_PAUSE} on {node}"));
        self.registry
            .open_gate(Selector::Node(node.host()), METADATA_PAUSE);
    }
}
