//! Sync progress (spec 4.4 and 4.7, invariant 5): within a pass a batch starts after the
//! committed progress (nothing fetched twice, also across a crash, since the model is re-based on
//! the disk at restart) and commits only while a transfer may run; at every audit the stored
//! progress equals the history (a completed sync cleared it, a crash lost none of it), and every
//! expected blob the progress covers has its sliver or a pending-recovery entry stored with it.
//! "Expected" is what the node's stored blob info held certified at its last audit before the
//! sync started: the transfer reads its expected set later, from a blob info that only grows, so
//! a blob the node learns is certified while the sync runs is left to its blob sync (or to the
//! catch-up that cancels it), not to the transfer.
//! A sync switches to direct recovery unforced only after the switch interval without progress.

use super::{found, Checker, EventCx, Found, StateCx};
use crate::oracle::rules::transfer_allowed;
use crate::oracle::Invariant;
use shardstorm_node::storage::{Progress, StoredShard};
use shardstorm_node::{
    BlobId, Chain, Epoch, NodeId, ProbeEvent, ShardIndex, ShardStatus, SliverType,
};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Default)]
pub struct ProgressChecker {
    /// Per node, the blobs its stored blob info held certified at its last audit.
    certified: BTreeMap<NodeId, BTreeSet<BlobId>>,
    /// Per (node, shard), those blobs as of the start of the shard's running sync.
    expected_at_start: BTreeMap<(NodeId, ShardIndex), BTreeSet<BlobId>>,
}

impl Checker for ProgressChecker {
    fn on_event(&mut self, cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        if let ProbeEvent::SyncStart { shard, .. } = event {
            let known = self.certified.get(&cx.node).cloned().unwrap_or_default();
            self.expected_at_start.insert((cx.node, *shard), known);
            return None;
        }
        if let ProbeEvent::DirectRecovery {
            shard,
            forced: false,
        } = event
        {
            return recovery_switch(cx, *shard);
        }
        let ProbeEvent::SyncProgress {
            shard,
            ty,
            first,
            last,
            ..
        } = event
        else {
            return None;
        };
        if last < first {
            return found(
                Invariant::ProgressMonotonic,
                Some(*shard),
                format!("{ty} batch ends at {last} before it starts at {first}"),
            );
        }
        let status = cx.model.shards.get(shard).copied();
        if cx.model.certain() && !transfer_allowed(status) {
            let status = status.map_or("no storage".to_string(), |s| s.to_string());
            return found(
                Invariant::ProgressMonotonic,
                Some(*shard),
                format!("a transfer batch of {shard} committed while the shard is {status}"),
            );
        }
        match cx.model.progress.get(shard) {
            Some((p, pty)) if pty == ty && first <= p => found(
                Invariant::ProgressMonotonic,
                Some(*shard),
                format!("{ty} batch starts at {first}, not after the committed progress {p} (fetched twice or progress moved back)"),
            ),
            Some((p, SliverType::Secondary)) if *ty == SliverType::Primary => found(
                Invariant::ProgressMonotonic,
                Some(*shard),
                format!("a primary batch after the secondary pass had committed progress {p} (the transfer started over)"),
            ),
            _ => None,
        }
    }

    fn check_state(&mut self, cx: &StateCx<'_>) -> Option<Found> {
        let found = self.check_audit(cx);
        let certified = cx
            .state
            .blob_info
            .iter()
            .filter(|(_, i)| i.certified_epoch.is_some())
            .map(|(b, _)| *b)
            .collect();
        self.certified.insert(cx.node, certified);
        found
    }
}

impl ProgressChecker {
    fn check_audit(&self, cx: &StateCx<'_>) -> Option<Found> {
        for (shard, stored) in &cx.state.shards {
            if cx.model.certain() && stored.progress != cx.model.progress.get(shard).copied() {
                return found(
                    Invariant::StoredState,
                    Some(*shard),
                    format!(
                        "storage holds progress {} of {shard}, the reported batches leave {}",
                        show(stored.progress),
                        show(cx.model.progress.get(shard).copied())
                    ),
                );
            }
            let Some(epoch) = cx.model.progress_epoch.get(shard) else {
                continue;
            };
            let Some(expected) = self.expected_at_start.get(&(cx.node, *shard)) else {
                continue;
            };
            if let Some(f) = covered(cx, *shard, stored, *epoch, expected) {
                return Some(f);
            }
        }
        None
    }
}

/// Spec 4.2 step 5: without a forcing error, a sync switches to direct recovery only after
/// `switch_to_recovery_interval` without progress.
fn recovery_switch(cx: &EventCx<'_>, shard: ShardIndex) -> Option<Found> {
    let since = cx
        .model
        .last_progress_ms
        .get(&shard)
        .map(|p| cx.t_ms.saturating_sub(*p))?;
    let interval = cx.switch_interval_ms;
    (since < interval).then_some(())?;
    found(
        Invariant::RecoverySwitch,
        Some(shard),
        format!("switched to direct recovery {since} ms after progress (interval {interval} ms)"),
    )
}

fn show(p: Option<Progress>) -> String {
    p.map_or_else(|| "(none)".to_string(), |(id, ty)| format!("({id}, {ty})"))
}

/// Every expected blob (certified before the epoch of the sync that committed the progress, by
/// the node's own stored blob info)
/// that the stored progress covers has its sliver or a pending entry, unless it retired.
fn covered(
    cx: &StateCx<'_>,
    shard: ShardIndex,
    stored: &StoredShard,
    epoch: Epoch,
    expected: &BTreeSet<BlobId>,
) -> Option<Found> {
    // After S6 (full recovery) an `Active` shard may keep stale progress: node recovery,
    // not the transfer, fills it in.
    if stored.status == ShardStatus::Active || stored.status == ShardStatus::None {
        return None;
    }
    let (upto, ty) = stored.progress?;
    let passes: &[SliverType] = match ty {
        SliverType::Primary => &[SliverType::Primary],
        SliverType::Secondary => &[SliverType::Primary, SliverType::Secondary],
    };
    for (blob, info) in &cx.state.blob_info {
        if !expected.contains(blob) || !info.is_certified_before(epoch) || retired(cx.chain, *blob)
        {
            continue;
        }
        for pass in passes {
            if *pass == ty && *blob > upto {
                continue;
            }
            let held = stored.slivers.contains_key(&(*pass, *blob))
                || stored.pending.contains(&(*pass, *blob));
            if !held {
                return found(
                    Invariant::ProgressMonotonic,
                    Some(shard),
                    format!(
                        "progress ({upto}, {ty}) covers {pass} {blob}, but neither its sliver nor a pending entry is stored"
                    ),
                );
            }
        }
    }
    None
}

fn retired(chain: &Chain, blob: BlobId) -> bool {
    let epoch = chain.epoch();
    chain.blob(blob).is_none_or(|r| !r.is_certified_at(epoch))
}
