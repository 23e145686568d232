//! Stored slivers and metadata (spec 0 and 4.4): the node stores only slivers that verify
//! against their blob's metadata. At every audit the oracle hashes every stored sliver itself
//! and compares it with the blob's true encoding (the workload's, or for blobs it did not write,
//! stored metadata that hashes to the blob id the chain registered), so a corrupted sliver from
//! a byzantine source that got stored is caught whatever the node reported; and every stored
//! metadata must hash to its blob id.

use super::{found, Checker, EventCx, Found, StateCx};
use crate::oracle::Invariant;
use shardstorm_node::{ProbeEvent, SliverType};

pub struct SliverChecker;

impl Checker for SliverChecker {
    fn on_event(&mut self, _cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        match event {
            ProbeEvent::SliverStored {
                shard,
                ty,
                blob,
                verified: false,
            } => found(
                Invariant::UnverifiedSliver,
                Some(*shard),
                format!("stored an unverified {ty} sliver of blob {blob}"),
            ),
            _ => None,
        }
    }

    fn check_state(&mut self, cx: &StateCx<'_>) -> Option<Found> {
        for (blob, metadata) in &cx.state.metadata {
            if metadata.blob_id() != *blob {
                return found(
                    Invariant::UnverifiedSliver,
                    None,
                    format!("stored metadata of {blob} does not hash to its blob id"),
                );
            }
        }
        for (shard, stored) in &cx.state.shards {
            for ((ty, blob), hash) in &stored.slivers {
                let index = usize::from(shard.0);
                let want = match cx.truths.get(blob) {
                    Some(t) => match ty {
                        SliverType::Primary => t.primary.get(index).copied(),
                        SliverType::Secondary => t.secondary.get(index).copied(),
                    },
                    None => cx
                        .state
                        .metadata
                        .get(blob)
                        .and_then(|m| m.sliver_hash(*shard, *ty)),
                };
                if want.is_some_and(|w| w != *hash) {
                    return found(
                        Invariant::UnverifiedSliver,
                        Some(*shard),
                        format!("the stored {ty} sliver of {blob} on {shard} is not the blob's encoding"),
                    );
                }
            }
        }
        None
    }
}
