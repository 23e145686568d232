//! Source serving (spec 4.6, invariant 9): a page of slivers goes only to the shard's owner in
//! the chain's committee of the epoch the source served it under.

use super::{found, Checker, EventCx, Found};
use crate::oracle::Invariant;
use shardstorm_node::ProbeEvent;

pub struct SourceChecker;

impl Checker for SourceChecker {
    fn on_event(&mut self, cx: &EventCx<'_>, event: &ProbeEvent) -> Option<Found> {
        let ProbeEvent::SliversServed {
            requester,
            shard,
            epoch,
            ..
        } = event
        else {
            return None;
        };
        let owner = cx.chain.committee(*epoch).and_then(|c| c.owner(*shard));
        if owner == Some(*requester) {
            return None;
        }
        let owner = owner.map_or_else(|| "nobody".to_string(), |o| o.to_string());
        found(
            Invariant::ServedNonOwner,
            Some(*shard),
            format!(
                "served slivers of {shard} to {requester} under epoch {epoch}, whose owner is {owner}"
            ),
        )
    }
}
