//! Node status (spec 2, invariants 1 and 2): every write judged against the oracle's own
//! tables with the status the model says was stored (not the `from` the node reports, which is
//! compared with the model too); `RecoverMetadata -> Active` only by the outer task that
//! completed metadata recovery; and at every audit the stored status equals the history.

use super::{found, show, Checker, EventCx, Found, StateCx};
use crate::oracle::rules::{legal_node_transition, node_writer_rule};
use crate::oracle::Invariant;
use shardstorm_node::ctx::{NodeStatusWriter, TaskId};
use shardstorm_node::{NodeStatus, ProbeEvent};

pub struct NodeStatusChecker;

impl Checker for NodeStatusChecker {
    fn on_event(&mut self, cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        let ProbeEvent::NodeStatus {
            from,
            to,
            writer,
            task,
        } = event
        else {
            return None;
        };
        let stored = if cx.model.certain() {
            if *from != cx.model.status {
                return found(
                    Invariant::StoredState,
                    None,
                    format!(
                        "{writer:?} reports overwriting {}, but the last write left {}",
                        show(from.as_ref()),
                        show(cx.model.status.as_ref())
                    ),
                );
            }
            cx.model.status
        } else {
            *from
        };
        check_write(cx, stored.as_ref(), to, *writer, *task)
    }

    fn check_state(&mut self, cx: &StateCx<'_>) -> Option<Found> {
        if !cx.model.certain() || cx.state.status == cx.model.status {
            return None;
        }
        found(
            Invariant::StoredState,
            None,
            format!(
                "storage holds node status {}, the reported writes leave {}",
                show(cx.state.status.as_ref()),
                show(cx.model.status.as_ref())
            ),
        )
    }
}

/// Invariants 1 and 2 and the writer's own rule, for a write over `stored`.
fn check_write(
    cx: &EventCx<'_>,
    stored: Option<&NodeStatus>,
    to: &NodeStatus,
    writer: NodeStatusWriter,
    task: Option<TaskId>,
) -> Option<Found> {
    let completes = writer == NodeStatusWriter::N10
        || (stored == Some(&NodeStatus::RecoverMetadata) && *to == NodeStatus::Active);
    if completes {
        if stored != Some(&NodeStatus::RecoverMetadata) {
            return found(
                Invariant::MetadataCompletion,
                None,
                format!(
                    "{writer:?} wrote Active over {} (not RecoverMetadata)",
                    show(stored)
                ),
            );
        }
        if !task.is_some_and(|t| cx.model.metadata_done.contains(&t)) {
            return found(
                Invariant::MetadataCompletion,
                None,
                format!(
                    "RecoverMetadata -> Active by {writer:?} task {task:?}, which did not complete metadata recovery"
                ),
            );
        }
    }
    if !legal_node_transition(stored, to) {
        return found(
            Invariant::LegalTransition,
            None,
            format!("illegal transition {} -> {to} by {writer:?}", show(stored)),
        );
    }
    node_writer_rule(writer, stored, to).and_then(|rule| {
        found(
            Invariant::LegalTransition,
            None,
            format!("{writer:?} wrote {to} over {}: {rule}", show(stored)),
        )
    })
}
