//! The control client: a turmoil client that carries out, inside the simulation, what the
//! driver asks of running nodes (direct status writes, the final audit's snapshots and reads).

use crate::trace::{HarnessEvent, Recorder, TraceKind};
use crate::workload;
use futures::StreamExt;
use shardstorm_faults::LockExt;
use shardstorm_node::blob::EncodingConfig;
use shardstorm_node::node::NodeSnapshot;
use shardstorm_node::{AdminRequest, BlobId, Chain, NodeHandle, NodeId, NodeStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the driver asks the control client to do.
pub enum ControlCommand {
    /// A direct (blind) status write on a node.
    SetStatus { node: NodeId, status: NodeStatus },
    /// Snapshot every running node and read back the given blobs.
    Audit { blobs: Vec<(BlobId, Vec<u8>)> },
}

/// What an audit collected.
#[derive(Clone, Debug, Default)]
pub struct AuditData {
    pub snapshots: BTreeMap<NodeId, NodeSnapshot>,
    pub unreachable: Vec<NodeId>,
    pub reads: BTreeMap<BlobId, bool>,
}

/// The driver's side of the control client.
#[derive(Clone)]
pub struct Control {
    tx: mpsc::UnboundedSender<ControlCommand>,
    pub audit: Arc<Mutex<Option<AuditData>>>,
}

impl Control {
    pub fn send(&self, command: ControlCommand) {
        let _ = self.tx.send(command);
    }

    /// Takes a finished audit's data, if any.
    pub fn take_audit(&self) -> Option<AuditData> {
        self.audit.lock_ok().take()
    }
}

/// Registers the control client on the simulation.
pub fn install(
    sim: &mut turmoil::Sim<'static>,
    slots: BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>>,
    chain: Chain,
    encoding: EncodingConfig,
    recorder: Recorder,
) -> Control {
    let (tx, rx) = mpsc::unbounded_channel();
    let audit = Arc::new(Mutex::new(None));
    let out = audit.clone();
    sim.client("control", async move {
        run(rx, slots, chain, encoding, recorder, out).await;
        Ok(())
    });
    Control { tx, audit }
}

fn handle_of(
    slots: &BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>>,
    node: NodeId,
) -> Option<NodeHandle> {
    slots.get(&node).and_then(|s| s.lock_ok().clone())
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<ControlCommand>,
    slots: BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>>,
    chain: Chain,
    encoding: EncodingConfig,
    recorder: Recorder,
    audit_out: Arc<Mutex<Option<AuditData>>>,
) {
    while let Some(command) = rx.recv().await {
        match command {
            ControlCommand::SetStatus { node, status } => {
                let outcome = match handle_of(&slots, node) {
                    Some(h) => h.request(AdminRequest::SetNodeStatus(status)).await.err(),
                    None => Some("node is down".to_string()),
                };
                if let Some(e) = outcome {
                    recorder.record(
                        Some(node),
                        TraceKind::Harness(HarnessEvent::StatusChangeNotApplied(e)),
                    );
                }
            }
            ControlCommand::Audit { blobs } => {
                let data = audit(&slots, &chain, &encoding, blobs).await;
                *audit_out.lock_ok() = Some(data);
            }
        }
    }
}

async fn audit(
    slots: &BTreeMap<NodeId, Arc<Mutex<Option<NodeHandle>>>>,
    chain: &Chain,
    encoding: &EncodingConfig,
    blobs: Vec<(BlobId, Vec<u8>)>,
) -> AuditData {
    let mut data = AuditData::default();
    for node in slots.keys() {
        match handle_of(slots, *node) {
            Some(h) => match h.snapshot().await {
                Ok(s) => {
                    data.snapshots.insert(*node, s);
                }
                Err(_) => data.unreachable.push(*node),
            },
            None => data.unreachable.push(*node),
        }
    }
    let reads: Vec<(BlobId, bool)> = futures::stream::iter(blobs)
        .map(|(blob, bytes)| async move {
            (
                blob,
                workload::read_blob(chain, encoding, blob, &bytes).await,
            )
        })
        .buffered(8)
        .collect()
        .await;
    data.reads = reads.into_iter().collect();
    data
}
