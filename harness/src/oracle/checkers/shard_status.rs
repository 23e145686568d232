//! Shard status (spec 3, invariants 3 and 4): every write judged by its writer's precondition
//! on the status the model says was stored; S2 only on owned shards; no sync path (S2 to S5)
//! rewrites `LockedToMove` of a shard its node does not own; and at every audit the set of
//! shards with storage and their statuses equal the history.

use super::{found, show, Checker, EventCx, Found, StateCx};
use crate::oracle::rules::shard_writer_rule;
use crate::oracle::Invariant;
use shardstorm_node::ctx::ShardStatusWriter;
use shardstorm_node::{Epoch, ProbeEvent, ShardIndex, ShardStatus};
use std::collections::BTreeSet;

pub struct ShardStatusChecker;

impl Checker for ShardStatusChecker {
    fn on_event(&mut self, cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        let ProbeEvent::ShardStatus {
            shard,
            from,
            to,
            writer,
            epoch,
        } = event
        else {
            return None;
        };
        let modelled = cx.model.shards.get(shard).copied();
        let stored = if cx.model.certain() {
            if *from != modelled {
                return found(
                    Invariant::StoredState,
                    Some(*shard),
                    format!(
                        "{writer:?} reports overwriting {} of {shard}, but the last write left {}",
                        show(from.as_ref()),
                        show(modelled.as_ref())
                    ),
                );
            }
            modelled
        } else {
            *from
        };
        check_write(cx, *shard, stored, *to, *writer, *epoch)
    }

    fn check_state(&mut self, cx: &StateCx<'_>) -> Option<Found> {
        if !cx.model.certain() {
            return None;
        }
        let stored: BTreeSet<ShardIndex> = cx.state.shards.keys().copied().collect();
        let modelled: BTreeSet<ShardIndex> = cx.model.shards.keys().copied().collect();
        if let Some(shard) = stored.symmetric_difference(&modelled).next() {
            let (has, says) = if stored.contains(shard) {
                ("has", "no reported write created it")
            } else {
                ("lacks", "no reported drop removed it")
            };
            return found(
                Invariant::StoredState,
                Some(*shard),
                format!("storage {has} shard {shard}, but {says}"),
            );
        }
        for (shard, s) in &cx.state.shards {
            let want = cx.model.shards.get(shard);
            if want != Some(&s.status) {
                return found(
                    Invariant::StoredState,
                    Some(*shard),
                    format!(
                        "storage holds {shard} {}, the reported writes leave {}",
                        s.status,
                        show(want)
                    ),
                );
            }
        }
        None
    }
}

fn check_write(
    cx: &EventCx<'_>,
    shard: ShardIndex,
    stored: Option<ShardStatus>,
    to: ShardStatus,
    writer: ShardStatusWriter,
    epoch: Epoch,
) -> Option<Found> {
    use ShardStatusWriter::*;
    let owner = cx.chain.committee(epoch).and_then(|c| c.owner(shard));
    let owned = owner == Some(cx.node);
    if writer == S2 && !owned {
        return found(
            Invariant::SyncOfUnownedShard,
            Some(shard),
            format!("S2 started a sync of {shard}, owned by {owner:?} in epoch {epoch}"),
        );
    }
    if matches!(writer, S2 | S3 | S4 | S5) && stored == Some(ShardStatus::LockedToMove) && !owned {
        return found(
            Invariant::LockedShardRewritten,
            Some(shard),
            format!(
                "{writer:?} rewrote LockedToMove of unowned {shard} (owner {owner:?} in epoch {epoch})"
            ),
        );
    }
    shard_writer_rule(writer, stored, to).and_then(|rule| {
        found(
            Invariant::ShardTransition,
            Some(shard),
            format!(
                "{writer:?} wrote {shard} {to} over {}: {rule}",
                show(stored.as_ref())
            ),
        )
    })
}
