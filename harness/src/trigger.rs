//! Triggered schedule entries at run time: each waits until its time has come, then fires the
//! first time its node reaches its fail point (counted by the registry's ledger from that
//! moment on).

use shardstorm_faults::{Fault, Registry};
use std::time::Duration;

/// One `at <point>@<node> [after <t>] <fault>` entry being watched.
#[derive(Debug, Clone)]
pub struct Trigger {
    point: String,
    node: String,
    after_ms: u64,
    fault: Fault,
    /// Hits of the point on the node when the trigger armed (`None` until then).
    baseline: Option<u64>,
    fired: bool,
}

impl Trigger {
    pub fn new(point: &str, node: &str, after: Duration, fault: &Fault) -> Self {
        Self {
            point: point.to_string(),
            node: node.to_string(),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            fault: fault.clone(),
            baseline: None,
            fired: false,
        }
    }

    /// The fault to apply now, once: the point was reached after the trigger armed. An entry
    /// with no `after` counts hits from the start of the run.
    pub fn poll(&mut self, registry: &Registry, now_ms: u64) -> Option<Fault> {
        if self.fired || now_ms < self.after_ms {
            return None;
        }
        let hits = registry.reached(&self.node, &self.point);
        let baseline = *self
            .baseline
            .get_or_insert(if self.after_ms == 0 { 0 } else { hits });
        if hits > baseline {
            self.fired = true;
            return Some(self.fault.clone());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardstorm_faults::Hit;

    fn hit(registry: &Registry, node: &str, point: &str) {
        assert_eq!(registry.handle(node).eval_sync(point), Hit::Pass);
    }

    #[test]
    fn fires_once_on_the_first_hit_after_it_armed() {
        let registry = Registry::new(1);
        let mut t = Trigger::new("p", "n1", Duration::from_secs(5), &Fault::EpochChange);
        hit(&registry, "n1", "p");
        assert_eq!(t.poll(&registry, 1000), None, "not armed yet");
        assert_eq!(
            t.poll(&registry, 5000),
            None,
            "an earlier hit does not count"
        );
        hit(&registry, "n2", "p");
        assert_eq!(
            t.poll(&registry, 5010),
            None,
            "another node's hit does not count"
        );
        hit(&registry, "n1", "p");
        assert_eq!(t.poll(&registry, 5020), Some(Fault::EpochChange));
        hit(&registry, "n1", "p");
        assert_eq!(t.poll(&registry, 5030), None, "fires once");
    }

    #[test]
    fn without_after_a_hit_before_the_first_poll_counts() {
        let registry = Registry::new(1);
        let mut t = Trigger::new("p", "n1", Duration::ZERO, &Fault::EpochChange);
        hit(&registry, "n1", "p");
        assert_eq!(t.poll(&registry, 0), Some(Fault::EpochChange));
    }
}
