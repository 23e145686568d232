//! Carrying out one fault value on the simulation, and undoing it when its duration ends.

use crate::cluster::Cluster;
use crate::node_control::{Control, ControlCommand};
use crate::trace::{HarnessEvent, TraceKind};
use shardstorm_faults::{Fault, LinkDirection};
use shardstorm_node::wire::CHAIN_HOST;
use shardstorm_node::{NodeId, NodeStatus};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How to heal a fault that lasts for a while.
#[derive(Clone, Debug, PartialEq)]
pub enum Undo {
    Repair { a: String, b: String, oneway: bool },
    Release { a: String, b: String },
    FailRate,
    Latency,
    DiskEio(NodeId),
    DiskCorrupt(NodeId),
    Byzantine(NodeId),
    Restart(NodeId),
}

/// Applies a fault; returns what must be undone and when (relative to now). Status changes are
/// not applied here but pushed to `deferred` (see `status_change`).
pub fn apply(
    cluster: &mut Cluster,
    fault: &Fault,
    max_latency: Duration,
    deferred: &mut Vec<(NodeId, NodeStatus)>,
) -> Vec<(Duration, Undo)> {
    cluster
        .recorder
        .record_at(cluster.now_ms(), None, TraceKind::Fault(fault.clone()));
    if cluster.registry.apply(fault).unwrap_or(false) {
        return Vec::new();
    }
    let node = |name: &String| NodeId::from_host(name).filter(|n| cluster.nodes.contains_key(n));
    match fault {
        Fault::Crash { node: n } => node(n).into_iter().for_each(|id| cluster.crash(id)),
        Fault::Restart { node: n } => node(n).into_iter().for_each(|id| cluster.restart(id)),
        Fault::CrashRestart { node: n, down } => {
            if let Some(id) = node(n) {
                cluster.crash(id);
                return vec![(*down, Undo::Restart(id))];
            }
        }
        Fault::Partition {
            a,
            b,
            oneway,
            duration,
        } => return partition(cluster, a, b, *oneway, *duration),
        Fault::ChainPartition {
            nodes,
            direction,
            duration,
        } => return chain_partition(cluster, nodes, *direction, *duration),
        Fault::Hold { a, b, duration } => {
            let mut undo = Vec::new();
            for (x, y) in pairs(a, b) {
                cluster.sim.hold(x.as_str(), y.as_str());
                undo.push((*duration, Undo::Release { a: x, b: y }));
            }
            return undo;
        }
        Fault::MessageLoss { rate, duration } => {
            cluster.sim.set_fail_rate(*rate);
            return vec![(*duration, Undo::FailRate)];
        }
        Fault::LatencySpike { max_ms, duration } => {
            cluster
                .sim
                .set_max_message_latency(Duration::from_millis(*max_ms).max(max_latency));
            return vec![(*duration, Undo::Latency)];
        }
        Fault::DiskEio { node: n, duration } => {
            if let Some(id) = node(n) {
                cluster.nodes[&id].disk.set_eio(true);
                return vec![(*duration, Undo::DiskEio(id))];
            }
        }
        Fault::DiskTornOnCrash { node: n } => node(n)
            .into_iter()
            .for_each(|id| cluster.nodes[&id].disk.set_torn_writes(true)),
        Fault::DiskCorruptReads {
            node: n,
            per_mille,
            duration,
        } => {
            if let Some(id) = node(n) {
                cluster.nodes[&id].disk.set_corrupt_reads(*per_mille);
                return vec![(*duration, Undo::DiskCorrupt(id))];
            }
        }
        Fault::Byzantine { node: n, duration } => {
            if let Some(id) = node(n) {
                cluster.nodes[&id]
                    .switches
                    .byzantine_source
                    .store(true, Ordering::Relaxed);
                return vec![(*duration, Undo::Byzantine(id))];
            }
        }
        Fault::StatusChange { node: n, status } => {
            status_change(cluster, node(n), status, deferred)
        }
        // Fail-point faults went to the registry above; the driver owns the epoch clock.
        Fault::FailPoint { .. }
        | Fault::ClearFailPoint { .. }
        | Fault::OpenGate { .. }
        | Fault::EpochChange
        | Fault::Reshuffle { .. } => {}
    }
    Vec::new()
}

fn pairs(a: &[String], b: &[String]) -> Vec<(String, String)> {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (x.clone(), y.clone())))
        .filter(|(x, y)| x != y)
        .collect()
}

fn partition(
    cluster: &mut Cluster,
    a: &[String],
    b: &[String],
    oneway: bool,
    duration: Duration,
) -> Vec<(Duration, Undo)> {
    let mut undo = Vec::new();
    for (x, y) in pairs(a, b) {
        if oneway {
            cluster.sim.partition_oneway(x.as_str(), y.as_str());
        } else {
            cluster.sim.partition(x.as_str(), y.as_str());
        }
        undo.push((duration, Undo::Repair { a: x, b: y, oneway }));
    }
    undo
}

/// Cuts nodes off the chain host: a one-way cut is a one-way partition from the side whose
/// messages are lost.
fn chain_partition(
    cluster: &mut Cluster,
    nodes: &[String],
    direction: LinkDirection,
    duration: Duration,
) -> Vec<(Duration, Undo)> {
    let chain = vec![CHAIN_HOST.to_string()];
    match direction {
        LinkDirection::Both => partition(cluster, nodes, &chain, false, duration),
        LinkDirection::ToChain => partition(cluster, nodes, &chain, true, duration),
        LinkDirection::FromChain => partition(cluster, &chain, nodes, true, duration),
    }
}

/// A direct status write, modelled on lag detection: `RecoveryCatchUp` is written right before
/// the next epoch change starts (as N3/N4 would find the node lagging), so the catch-up path has
/// an `EpochChangeStart` ahead of it. Any other status is not one the protocol writes from
/// outside, and is skipped.
fn status_change(
    cluster: &Cluster,
    node: Option<NodeId>,
    status: &str,
    deferred: &mut Vec<(NodeId, NodeStatus)>,
) {
    let (Some(node), Ok(status)) = (node, status.parse::<NodeStatus>()) else {
        return;
    };
    if status == NodeStatus::RecoveryCatchUp {
        deferred.push((node, status));
    } else {
        cluster.recorder.record_at(
            cluster.now_ms(),
            Some(node),
            TraceKind::Harness(HarnessEvent::StatusSkipped(status)),
        );
    }
}

/// Sends deferred status writes to the nodes that are up.
pub fn send_status_changes(
    cluster: &Cluster,
    control: &Control,
    deferred: Vec<(NodeId, NodeStatus)>,
) {
    for (node, status) in deferred {
        if cluster.nodes.get(&node).is_some_and(|h| h.up) {
            control.send(ControlCommand::SetStatus { node, status });
        }
    }
}

/// Undoes a healed fault.
pub fn undo(cluster: &mut Cluster, undo: &Undo, max_latency: Duration) {
    match undo {
        Undo::Repair {
            a,
            b,
            oneway: false,
        } => cluster.sim.repair(a.as_str(), b.as_str()),
        Undo::Repair { a, b, oneway: true } => cluster.sim.repair_oneway(a.as_str(), b.as_str()),
        Undo::Release { a, b } => cluster.sim.release(a.as_str(), b.as_str()),
        Undo::FailRate => cluster.sim.set_fail_rate(0.0),
        Undo::Latency => cluster.sim.set_max_message_latency(max_latency),
        Undo::DiskEio(id) => cluster.nodes[id].disk.set_eio(false),
        Undo::DiskCorrupt(id) => cluster.nodes[id].disk.set_corrupt_reads(0),
        Undo::Byzantine(id) => cluster.nodes[id]
            .switches
            .byzantine_source
            .store(false, Ordering::Relaxed),
        Undo::Restart(id) => {
            if !cluster.nodes[id].up {
                cluster.restart(*id);
            }
        }
    }
}
