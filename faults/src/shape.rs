//! The shape of the system under test, as the harness describes it to the nemesis: its nodes,
//! its fail-point catalogue, the statuses it accepts and the time every fault must heal within.

use std::time::Duration;

use crate::budget::allowed_faulty;
use crate::fault_kind::FaultKind;

/// How a fail point of the SUT behaves (from the catalogue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailPointKind {
    /// Async: may pause or delay.
    Async,
    /// A boolean: `return` makes it true.
    If,
    /// Carries a SUT-specific argument (the nemesis never arms these).
    Arg,
    /// A storage/event crash point.
    Crash,
    /// Only observed.
    Probe,
}

/// One fail point of the SUT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailPointSpec {
    pub name: String,
    pub kind: FailPointKind,
}

/// What the harness tells the nemesis about the system under test.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// The storage nodes (host names).
    pub nodes: Vec<String>,
    pub fail_points: Vec<FailPointSpec>,
    /// Status texts the harness accepts in `status` faults.
    pub statuses: Vec<String>,
    /// Every drawn fault starts and heals within this simulated time.
    pub duration: Duration,
    /// Whether the system has a chain host whose links to the nodes can be cut.
    #[serde(default)]
    pub chain: bool,
}

impl Shape {
    /// The fail points of one kind, in catalogue order.
    pub fn points(&self, kind: FailPointKind) -> Vec<&str> {
        self.fail_points
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The points a triggered fault may wait for: every catalogued point (reaching a point
    /// counts whatever its kind, so argument-carrying points such as a sliver fetch mark
    /// places in the code as well as the others do).
    pub fn trigger_points(&self) -> Vec<&str> {
        self.fail_points.iter().map(|p| p.name.as_str()).collect()
    }

    /// Whether the nemesis can draw `kind` for this shape.
    pub fn supports(&self, kind: FaultKind) -> bool {
        let node_faults = allowed_faulty(self.nodes.len()) > 0;
        let has = |k| self.fail_points.iter().any(|p| p.kind == k);
        match kind {
            FaultKind::Loss | FaultKind::Latency => true,
            FaultKind::StatusChange => !self.statuses.is_empty() && !self.nodes.is_empty(),
            FaultKind::FailpointPause | FaultKind::FailpointDelay => {
                node_faults && has(FailPointKind::Async)
            }
            FaultKind::FailpointError => node_faults && has(FailPointKind::If),
            FaultKind::FailpointCrash => node_faults && has(FailPointKind::Crash),
            FaultKind::Triggered => !self.nodes.is_empty() && !self.trigger_points().is_empty(),
            FaultKind::ChainPartition => node_faults && self.chain,
            _ => node_faults,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A moderate shape: `n` nodes, a few points of every kind, 2 simulated minutes.
    pub(crate) fn shape(n: usize) -> Shape {
        let fp = |name: &str, kind| FailPointSpec {
            name: name.into(),
            kind,
        };
        Shape {
            nodes: (1..=n).map(|i| format!("n{i}")).collect(),
            fail_points: vec![
                fp("sync.metadata.pause", FailPointKind::Async),
                fp("epoch.finisher.block", FailPointKind::Async),
                fp("sync.no_retry", FailPointKind::If),
                fp("source.return_error", FailPointKind::If),
                fp("sync.fetch_sliver", FailPointKind::Arg),
                fp("db.put.before", FailPointKind::Crash),
                fp("db.write_batch.after", FailPointKind::Crash),
                fp("sync.recovery.start", FailPointKind::Probe),
            ],
            statuses: vec!["RecoveryCatchUp".into(), "Standby".into()],
            duration: Duration::from_secs(120),
            chain: true,
        }
    }
}
