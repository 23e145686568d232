//! Attestation (spec 6.3, invariant 6), from the oracle's own counts: a per-shard-sync
//! attestation only when the oracle saw no sync of that node running or terminally failed and
//! every shard the chain gives the node is `Active` in the model; the finisher only for an epoch
//! in which the chain gave the node no new shard, while it is a member and the epoch is
//! current (or the one before it, while the next epoch change waits for this finisher); node recovery only from `RecoveryInProgress` of that epoch. The node's own task
//! counts are compared with the oracle's. At every audit, each attestation the chain recorded
//! must be one the oracle saw and accepted, and none the chain received from this node may
//! come from outside that epoch's committee (the chain's log of what arrived, whatever the node
//! reported).

use super::{found, Checker, EventCx, Found, StateCx};
use crate::oracle::Invariant;
use shardstorm_node::chain::AttestationOutcome;
use shardstorm_node::ctx::AttestationPath;
use shardstorm_node::{Epoch, NodeId, ProbeEvent, ShardIndex, ShardStatus};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct AttestationChecker {
    /// (epoch, node) of every attestation the oracle saw.
    seen: BTreeSet<(Epoch, NodeId)>,
    /// Per node, how much of the chain's log of received attestations its audits checked.
    received_checked: BTreeMap<NodeId, usize>,
}

impl Checker for AttestationChecker {
    fn on_event(&mut self, cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        let ProbeEvent::Attestation {
            epoch,
            path,
            tasks_in_flight,
            tasks_failed,
        } = event
        else {
            return None;
        };
        self.seen.insert((*epoch, cx.node));
        let premature = |message: String| found(Invariant::PrematureAttestation, None, message);
        let committee = cx.chain.committee(*epoch);
        if !committee.as_ref().is_some_and(|c| c.contains(cx.node)) {
            return premature(format!(
                "epoch_sync_done({epoch}) by {path:?} from a node that is not a member of committee {epoch}"
            ));
        }
        match path {
            AttestationPath::ShardSync => {
                let running = cx.model.sync_running.len();
                let failed = cx.model.sync_failed.len();
                if running + failed + tasks_in_flight + tasks_failed > 0 {
                    return premature(format!(
                        "epoch_sync_done({epoch}) with {running} syncs running and {failed} failed by the trace (the node counts {tasks_in_flight} and {tasks_failed})"
                    ));
                }
            }
            AttestationPath::Finisher => return finisher(cx, *epoch),
            AttestationPath::NodeRecovery => {
                if cx.model.certain() && cx.model.recovered != Some(*epoch) {
                    return premature(format!(
                        "epoch_sync_done({epoch}) by node recovery, not right after N11 ended RecoveryInProgress({epoch}) (status {})",
                        super::show(cx.model.status.as_ref())
                    ));
                }
            }
        }
        owned_not_active(cx, *epoch).and_then(|list| {
            premature(format!(
                "epoch_sync_done({epoch}) by {path:?} while owned shards are not Active: {list}"
            ))
        })
    }

    fn check_state(&mut self, cx: &StateCx<'_>) -> Option<Found> {
        let checked = self.received_checked.entry(cx.node).or_default();
        let new = cx.chain.received_attestations_since(*checked);
        *checked += new.len();
        if let Some(r) = new
            .iter()
            .find(|r| r.node == cx.node && r.outcome == AttestationOutcome::NotMember)
        {
            return found(
                Invariant::PrematureAttestation,
                None,
                format!(
                    "the chain received epoch_sync_done({}) from this node, which is not a member of committee {} (chain at epoch {})",
                    r.epoch, r.epoch, r.chain_epoch
                ),
            );
        }
        let epoch = cx.chain.epoch();
        for e in [epoch.saturating_sub(1), epoch] {
            if cx.chain.attestations(e).contains(&cx.node) && !self.seen.contains(&(e, cx.node)) {
                return found(
                    Invariant::PrematureAttestation,
                    None,
                    format!("the chain recorded epoch_sync_done({e}) from this node, which no trace event accounts for"),
                );
            }
        }
        None
    }
}

/// Spec 6.3 (1): only when no shard was gained in `epoch`, the node is a member and the chain
/// is at `epoch`.
fn finisher(cx: &EventCx<'_>, epoch: Epoch) -> Option<Found> {
    // The node checks its own committee epoch, which trails the chain's by at most one epoch
    // change while the next one waits for this finisher (spec 6.1 step 2).
    let chain_epoch = cx.chain.epoch();
    if epoch > chain_epoch || epoch + 1 < chain_epoch {
        return found(
            Invariant::PrematureAttestation,
            None,
            format!("the finisher sent epoch_sync_done({epoch}) while the chain is at epoch {chain_epoch} (not current, nor the one before it)"),
        );
    }
    let shards = |e: Epoch| {
        cx.chain
            .committee(e)
            .map(|c| c.shards_of(cx.node))
            .unwrap_or_default()
    };
    let previous = shards(epoch.saturating_sub(1));
    let gained: Vec<String> = shards(epoch)
        .difference(&previous)
        .map(|s| s.to_string())
        .collect();
    if gained.is_empty() {
        return None;
    }
    found(
        Invariant::PrematureAttestation,
        None,
        format!(
            "the finisher sent epoch_sync_done({epoch}) although the node gained {} in that epoch",
            gained.join(",")
        ),
    )
}

/// Shards the chain gives the node in `epoch` that the model does not hold `Active`.
fn owned_not_active(cx: &EventCx<'_>, epoch: Epoch) -> Option<String> {
    if !cx.model.certain() {
        return None;
    }
    let owned: BTreeSet<ShardIndex> = if epoch == cx.chain.epoch() {
        cx.chain
            .committee(epoch)
            .map(|c| c.shards_of(cx.node))
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    let list: Vec<String> = owned
        .iter()
        .filter(|s| cx.model.shards.get(s) != Some(&ShardStatus::Active))
        .map(|s| format!("{s}={}", super::show(cx.model.shards.get(s))))
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}
