//! The safety checkers, one module per concern, in the style of TigerBeetle's state checker:
//! each follows the trace event by event (`on_event`, judged against the oracle's model before
//! the event is applied to it) and audits what a node's database actually holds
//! (`check_state`, against the model and the chain, before the model is re-based on it).

mod attestation;
mod node_status;
mod progress;
mod replay;
mod shard_status;
mod slivers;
mod source;

pub use attestation::AttestationChecker;
pub use node_status::NodeStatusChecker;
pub use progress::ProgressChecker;
pub use replay::ReplayChecker;
pub use shard_status::ShardStatusChecker;
pub use slivers::SliverChecker;
pub use source::SourceChecker;

use super::model::NodeModel;
use super::{AuditPoint, BlobTruth, Invariant};
use shardstorm_node::storage::StoredState;
use shardstorm_node::{BlobId, Chain, NodeId, ProbeEvent, ShardIndex};
use std::collections::BTreeMap;

/// A broken invariant found by a checker, before the oracle attaches node, time and context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub invariant: Invariant,
    pub shard: Option<ShardIndex>,
    pub message: String,
}

/// A finding.
pub fn found(invariant: Invariant, shard: Option<ShardIndex>, message: String) -> Option<Found> {
    Some(Found {
        invariant,
        shard,
        message,
    })
}

/// What a checker sees of one event.
pub struct EventCx<'a> {
    pub node: NodeId,
    pub t_ms: u64,
    pub chain: &'a Chain,
    /// The node's model before the event.
    pub model: &'a NodeModel,
    /// The nodes' `switch_to_recovery_interval`, in ms.
    pub switch_interval_ms: u64,
}

/// What a checker sees of one state audit.
pub struct StateCx<'a> {
    pub node: NodeId,
    pub point: AuditPoint,
    pub chain: &'a Chain,
    /// The node's model before it is re-based on `state`.
    pub model: &'a NodeModel,
    pub state: &'a StoredState,
    /// The true encoding of every blob the workload wrote.
    pub truths: &'a BTreeMap<BlobId, BlobTruth>,
}

/// One concern of the oracle.
pub trait Checker {
    fn on_event(&mut self, _cx: &EventCx<'_>, _event: &ProbeEvent) -> Option<Found> {
        None
    }

    fn check_state(&mut self, _cx: &StateCx<'_>) -> Option<Found> {
        None
    }

    /// Whether this checker needs an audit of `node` as soon as possible (beyond the regular
    /// audit points).
    fn wants_audit(&self, _node: NodeId) -> bool {
        false
    }
}

/// Every checker, in the order they judge.
pub fn all() -> Vec<Box<dyn Checker>> {
    vec![
        Box::new(NodeStatusChecker),
        Box::new(ShardStatusChecker),
        Box::new(ProgressChecker::default()),
        Box::new(AttestationChecker::default()),
        Box::new(SourceChecker),
        Box::new(SliverChecker),
        Box::new(ReplayChecker::default()),
    ]
}

/// `s` or `(none)`.
pub fn show<T: std::fmt::Display>(v: Option<&T>) -> String {
    v.map_or_else(|| "(none)".to_string(), |v| v.to_string())
}
