//! The trace of a run: every probe event, fault, fail-point firing, chain event and harness
//! action as one canonical line (simulated ms, node, event), in order. A run's identity is the
//! hash of its trace; the condensed view (statuses, faults, epochs) is what snapshots show.

use shardstorm_faults::{Fault, LockExt};
use shardstorm_node::{BlobId, Epoch, NodeId, NodeStatus, ProbeEvent};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceKind {
    Probe(ProbeEvent),
    /// A fault the driver applied.
    Fault(Fault),
    /// A fail point that fired (point, action).
    FailPoint {
        point: String,
        action: String,
    },
    /// A chain event or operator action.
    Chain(ChainNote),
    /// Anything else the harness did (phase changes, restarts, audits).
    Harness(HarnessEvent),
}

/// What the operator or the workload did on the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainNote {
    /// The driver started an epoch change; `summary` lists each node's shards.
    EpochChange {
        epoch: Epoch,
        summary: String,
    },
    Register {
        blob: BlobId,
        lifetime: Epoch,
        consistent: bool,
    },
    Certify {
        blob: BlobId,
        shards: usize,
    },
    Delete {
        blob: BlobId,
    },
}

impl fmt::Display for ChainNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainNote::EpochChange { epoch, summary } => {
                write!(f, "epoch-change {epoch} {summary}")
            }
            ChainNote::Register {
                blob,
                lifetime,
                consistent,
            } => write!(
                f,
                "register {blob} lifetime={lifetime} consistent={consistent}"
            ),
            ChainNote::Certify { blob, shards } => write!(f, "certify {blob} shards={shards}"),
            ChainNote::Delete { blob } => write!(f, "delete {blob}"),
        }
    }
}

/// What the harness itself did or decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HarnessEvent {
    /// The first line of a campaign run.
    RunStart {
        seed: u64,
        bugs: Vec<String>,
    },
    /// The node configuration the run uses.
    NodeConfig(String),
    /// The first line of a scenario test.
    Scenario {
        name: String,
        seed: u64,
    },
    /// A node was crashed (its runtime dropped, its disk lost unsynced writes).
    Crashed,
    /// A node was restarted.
    Restarted,
    /// The liveness phase began healing every fault.
    Heal,
    /// Healing restarted a node, and why.
    HealRestart(&'static str),
    /// The final audit found the cluster converged.
    Converged,
    /// The schedule put the cluster where liveness cannot be judged.
    LivenessWillNotBeJudged(String),
    LivenessNotJudged(String),
    /// A direct status write could not be delivered.
    StatusChangeNotApplied(String),
    /// A scheduled status write the protocol never makes from outside.
    StatusSkipped(NodeStatus),
    /// A remark (scenario steps written in the spec's words).
    Note(String),
}

impl fmt::Display for HarnessEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HarnessEvent::*;
        match self {
            RunStart { seed, bugs } => write!(f, "run seed={seed} bugs={bugs:?}"),
            NodeConfig(c) => write!(f, "node config {c}"),
            Scenario { name, seed } => write!(f, "scenario {name} seed={seed}"),
            Crashed => f.write_str("crashed"),
            Restarted => f.write_str("restarted"),
            Heal => f.write_str("heal"),
            HealRestart(reason) => write!(f, "heal restart: {reason}"),
            Converged => f.write_str("converged"),
            LivenessWillNotBeJudged(why) => write!(f, "liveness will not be judged: {why}"),
            LivenessNotJudged(why) => write!(f, "liveness not judged: {why}"),
            StatusChangeNotApplied(e) => write!(f, "status change not applied: {e}"),
            StatusSkipped(status) => write!(
                f,
                "status {status} skipped (not written from outside by the protocol)"
            ),
            Note(text) => f.write_str(text),
        }
    }
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    pub t_ms: u64,
    pub node: Option<NodeId>,
    pub kind: TraceKind,
}

impl TraceEvent {
    /// Whether the condensed view keeps this event.
    pub fn is_condensed(&self) -> bool {
        match &self.kind {
            TraceKind::Probe(p) => matches!(
                p,
                ProbeEvent::NodeStatus { .. }
                    | ProbeEvent::ShardStatus { .. }
                    | ProbeEvent::Attestation { .. }
                    | ProbeEvent::MetadataRecoveryFinish { .. }
                    | ProbeEvent::Fatal { .. }
                    | ProbeEvent::Started
            ),
            TraceKind::Fault(_) | TraceKind::Chain(_) | TraceKind::FailPoint { .. } => true,
            TraceKind::Harness(_) => true,
        }
    }
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = self.node.map_or_else(|| "-".to_string(), |n| n.to_string());
        write!(f, "{:>9.3}s {node:<4} ", self.t_ms as f64 / 1000.0)?;
        match &self.kind {
            TraceKind::Probe(p) => write!(f, "{p}"),
            TraceKind::Fault(s) => write!(f, "fault {s}"),
            TraceKind::FailPoint { point, action } => write!(f, "failpoint {point} {action}"),
            TraceKind::Chain(s) => write!(f, "chain {s}"),
            TraceKind::Harness(s) => write!(f, "harness {s}"),
        }
    }
}

/// The recorded trace with a running hash per event.
#[derive(Debug, Default)]
pub struct Trace {
    events: Vec<TraceEvent>,
    hashes: Vec<u64>,
    running: blake3::Hasher,
}

impl Trace {
    pub fn push(&mut self, event: TraceEvent) {
        let line = event.to_string();
        self.running.update(line.as_bytes());
        self.running.update(b"\n");
        let h = self.running.finalize();
        self.hashes.push(u64::from_le_bytes(
            h.as_bytes()[..8].try_into().unwrap_or_default(),
        ));
        self.events.push(event);
    }

    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Running hash after each event (for the determinism check).
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// The run's identity: the hash of the whole trace, 16 hex digits.
    pub fn hash(&self) -> String {
        format!("{:016x}", self.hashes.last().copied().unwrap_or(0))
    }

    /// Full text, one line per event.
    pub fn text(&self) -> String {
        self.events.iter().map(|e| format!("{e}\n")).collect()
    }

    /// The condensed view used in snapshots.
    pub fn condensed(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.is_condensed())
            .map(|e| format!("{e}\n"))
            .collect()
    }

    /// The last `n` lines before (and including) event `index`.
    pub fn context(&self, index: usize, n: usize) -> Vec<String> {
        let end = (index + 1).min(self.events.len());
        self.events[end.saturating_sub(n)..end]
            .iter()
            .map(|e| e.to_string())
            .collect()
    }
}

/// Shared, cloneable recorder: the probe of every node and the driver's log.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    trace: Arc<Mutex<Trace>>,
}

impl Recorder {
    pub fn lock(&self) -> MutexGuard<'_, Trace> {
        self.trace.lock_ok()
    }

    /// Records an event at the current simulated time.
    pub fn record(&self, node: Option<NodeId>, kind: TraceKind) {
        let t_ms = turmoil::sim_elapsed().map_or(0, |d| d.as_millis() as u64);
        self.record_at(t_ms, node, kind);
    }

    pub fn record_at(&self, t_ms: u64, node: Option<NodeId>, kind: TraceKind) {
        self.lock().push(TraceEvent { t_ms, node, kind });
    }
}

impl shardstorm_node::Probe for Recorder {
    fn record(&self, node: NodeId, event: ProbeEvent) {
        Recorder::record(self, Some(node), TraceKind::Probe(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_event_and_its_order() {
        let mut a = Trace::default();
        let mut b = Trace::default();
        let e1 = TraceEvent {
            t_ms: 1,
            node: None,
            kind: TraceKind::Harness(HarnessEvent::Note("x".into())),
        };
        let e2 = TraceEvent {
            t_ms: 2,
            node: Some(NodeId(1)),
            kind: TraceKind::Fault(Fault::Crash { node: "n1".into() }),
        };
        a.push(e1.clone());
        a.push(e2.clone());
        b.push(e2);
        b.push(e1);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hashes().len(), 2);
        assert_eq!(a.events()[1].to_string(), "    0.002s n1   fault crash n1");
    }
}
