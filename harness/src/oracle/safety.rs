//! The safety oracle: the per-node models and every checker. `check_new` follows the trace
//! event by event (checkers judge each event against the model, then the model applies it);
//! `audit` hands a node's stored state to every checker and then re-bases the model on it.
//! Events also say when an audit is due (`take_audit_requests`): a node's epoch change starts
//! or finishes processing, a node restarted, a write's outcome became unknown.

use super::checkers::{self, Checker, EventCx, Found, StateCx};
use super::model::NodeModel;
use super::{AuditPoint, BlobTruth, Invariant, Violation};
use crate::trace::{HarnessEvent, TraceEvent, TraceKind};
use shardstorm_node::storage::StoredState;
use shardstorm_node::{BlobId, Chain, NodeId, ProbeEvent};
use std::collections::{BTreeMap, BTreeSet};

/// The incremental safety checker.
pub struct SafetyOracle {
    chain: Chain,
    /// The nodes' `switch_to_recovery_interval`, in ms.
    switch_interval_ms: u64,
    pub nodes: BTreeMap<NodeId, NodeModel>,
    checkers: Vec<Box<dyn Checker>>,
    checked: usize,
    /// Audits the events asked for, in order, deduplicated.
    requests: BTreeSet<(NodeId, AuditPoint)>,
    /// State audits done so far.
    pub audits: u64,
}

impl SafetyOracle {
    pub fn new(chain: Chain) -> Self {
        let switch = shardstorm_node::NodeConfig::simulation().switch_to_recovery_interval;
        Self::with_switch_interval(chain, switch.as_millis() as u64)
    }

    /// An oracle for nodes configured with another `switch_to_recovery_interval`.
    pub fn with_switch_interval(chain: Chain, switch_interval_ms: u64) -> Self {
        Self {
            chain,
            switch_interval_ms,
            nodes: BTreeMap::new(),
            checkers: checkers::all(),
            checked: 0,
            requests: BTreeSet::new(),
            audits: 0,
        }
    }

    /// How many trace events were checked so far.
    pub fn checked(&self) -> usize {
        self.checked
    }

    /// Checks every event not yet checked; returns the first violation.
    pub fn check_new(&mut self, events: &[TraceEvent]) -> Option<Violation> {
        while self.checked < events.len() {
            let index = self.checked;
            self.checked += 1;
            let event = &events[index];
            let Some(node) = event.node else {
                continue;
            };
            let found = match &event.kind {
                TraceKind::Probe(probe) => self.apply(node, probe, event.t_ms),
                TraceKind::Harness(h) => {
                    self.on_harness(node, h);
                    None
                }
                TraceKind::FailPoint { point, .. } if point.starts_with("db.") => {
                    let model = self.nodes.entry(node).or_default();
                    model.uncertain.get_or_insert("a storage fail point fired");
                    None
                }
                _ => None,
            };
            if let Some(f) = found {
                return Some(violation(f, node, event.t_ms, context(events, index)));
            }
        }
        None
    }

    /// Crashes and restarts, as the harness recorded them.
    fn on_harness(&mut self, node: NodeId, event: &HarnessEvent) {
        match event {
            HarnessEvent::Crashed => self.nodes.entry(node).or_default().crashed(),
            HarnessEvent::Restarted => {
                self.requests.insert((node, AuditPoint::AfterRestart));
            }
            _ => {}
        }
    }

    /// Judges one probe event with every checker, then applies it to the model.
    fn apply(&mut self, node: NodeId, event: &ProbeEvent, t_ms: u64) -> Option<Found> {
        if let ProbeEvent::EpochChangeStart { .. } = event {
            self.requests.insert((node, AuditPoint::EpochChangeStart));
        }
        let model = self.nodes.entry(node).or_default();
        let cx = EventCx {
            node,
            t_ms,
            chain: &self.chain,
            model,
            switch_interval_ms: self.switch_interval_ms,
        };
        let found = self
            .checkers
            .iter_mut()
            .find_map(|c| c.on_event(&cx, event));
        model.apply(event, t_ms);
        if self.checkers.iter().any(|c| c.wants_audit(node)) {
            self.requests
                .insert((node, AuditPoint::EpochChangeProcessed));
        }
        found
    }

    /// A write's outcome on `node` is unknown until the next audit.
    pub fn mark_uncertain(&mut self, node: NodeId, why: &'static str) {
        let model = self.nodes.entry(node).or_default();
        model.uncertain.get_or_insert(why);
    }

    /// Asks for an audit of `node` at the next check.
    pub fn request_audit(&mut self, node: NodeId, point: AuditPoint) {
        self.requests.insert((node, point));
    }

    /// Audits the events asked for since the last call, in (node, point) order.
    pub fn take_audit_requests(&mut self) -> Vec<(NodeId, AuditPoint)> {
        std::mem::take(&mut self.requests).into_iter().collect()
    }

    /// Whether `node`'s model waits for an audit to be certain again.
    pub fn uncertain(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|m| !m.certain())
    }

    /// Audits what `node`'s storage holds; the model is re-based on it afterwards.
    pub fn audit(
        &mut self,
        node: NodeId,
        point: AuditPoint,
        state: &StoredState,
        truths: &BTreeMap<BlobId, BlobTruth>,
        t_ms: u64,
    ) -> Option<Violation> {
        self.audits += 1;
        let model = self.nodes.entry(node).or_default();
        let cx = StateCx {
            node,
            point,
            chain: &self.chain,
            model,
            state,
            truths,
        };
        let found = self.checkers.iter_mut().find_map(|c| c.check_state(&cx));
        model.rebase(state);
        found.map(|mut f| {
            f.message = format!("{} (state audit {})", f.message, point.name());
            violation(f, node, t_ms, Vec::new())
        })
    }

    /// The storage of `node` could not be read at an audit.
    pub fn unreadable(
        &self,
        node: NodeId,
        point: AuditPoint,
        error: String,
        t_ms: u64,
    ) -> Violation {
        let f = Found {
            invariant: Invariant::UnreadableStorage,
            shard: None,
            message: format!("state audit {}: {error}", point.name()),
        };
        violation(f, node, t_ms, Vec::new())
    }
}

fn context(events: &[TraceEvent], index: usize) -> Vec<String> {
    let start = index.saturating_sub(29);
    events[start..=index]
        .iter()
        .map(|e| e.to_string())
        .collect()
}

fn violation(f: Found, node: NodeId, t_ms: u64, context: Vec<String>) -> Violation {
    Violation {
        invariant: f.invariant,
        node: Some(node),
        shard: f.shard,
        t_ms,
        message: f.message,
        context,
    }
}

#[cfg(test)]
mod tests;
