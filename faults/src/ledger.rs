//! The fail-point ledger: per (node, point) reach/fire counters and the ordered log of fired
//! actions, kept in deterministic (BTreeMap) order for snapshots.

use std::collections::BTreeMap;
use std::time::Duration;

/// Counters of one (node, point) pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// How often the point was evaluated on the node (configured or not).
    pub reached: u64,
    /// How often a disruptive action fired (`off` is not counted).
    pub fired: u64,
    /// How often `pause` or `delay` fired at a synchronous call site and was ignored.
    pub ignored: u64,
}

/// One row of [`crate::Registry::ledger`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub node: String,
    pub point: String,
    pub counts: Counts,
}

/// One fired action, in the order they fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredEvent {
    /// Simulated time (`turmoil::sim_elapsed()`), zero outside a simulation host.
    pub at: Duration,
    pub node: String,
    pub point: String,
    /// The canonical action text, e.g. `1*crash`; ignored sync pauses/delays carry the suffix
    /// ` [ignored: sync point]`.
    pub action: String,
}

/// Reach/fire bookkeeping of one registry.
#[derive(Debug, Default)]
pub struct Ledger {
    counts: BTreeMap<String, BTreeMap<String, Counts>>,
    log: Vec<FiredEvent>,
}

impl Ledger {
    fn entry(&mut self, node: &str, point: &str) -> &mut Counts {
        // Look up by &str first so the hot path (a known pair) allocates nothing.
        if !self.counts.contains_key(node) {
            self.counts.insert(node.to_string(), BTreeMap::new());
        }
        let points = self.counts.get_mut(node).expect("inserted above");
        if !points.contains_key(point) {
            points.insert(point.to_string(), Counts::default());
        }
        points.get_mut(point).expect("inserted above")
    }

    /// Records that `point` was evaluated on `node`.
    pub fn reach(&mut self, node: &str, point: &str) {
        self.entry(node, point).reached += 1;
    }

    /// Records a fired action.
    pub fn fire(&mut self, at: Duration, node: &str, point: &str, action: String) {
        self.entry(node, point).fired += 1;
        self.push(at, node, point, action);
    }

    /// Records a `pause`/`delay` that fired at a sync point and was treated as a pass.
    pub fn ignore(&mut self, at: Duration, node: &str, point: &str, action: String) {
        self.entry(node, point).ignored += 1;
        self.push(at, node, point, format!("{action} [ignored: sync point]"));
    }

    fn push(&mut self, at: Duration, node: &str, point: &str, action: String) {
        self.log.push(FiredEvent {
            at,
            node: node.to_string(),
            point: point.to_string(),
            action,
        });
    }

    /// The counters of one pair (zero when never reached).
    pub fn counts(&self, node: &str, point: &str) -> Counts {
        self.counts
            .get(node)
            .and_then(|p| p.get(point))
            .cloned()
            .unwrap_or_default()
    }

    /// Every pair ever reached, ordered by (node, point).
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.counts
            .iter()
            .flat_map(|(node, points)| {
                points.iter().map(move |(point, counts)| LedgerEntry {
                    node: node.clone(),
                    point: point.clone(),
                    counts: counts.clone(),
                })
            })
            .collect()
    }

    /// Every fired action in firing order.
    pub fn log(&self) -> &[FiredEvent] {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_orders() {
        let mut l = Ledger::default();
        l.reach("n2", "b");
        l.reach("n1", "b");
        l.reach("n1", "a");
        l.reach("n1", "a");
        l.fire(Duration::from_millis(5), "n1", "a", "return".into());
        l.ignore(Duration::ZERO, "n2", "b", "pause".into());
        assert_eq!(
            l.counts("n1", "a"),
            Counts {
                reached: 2,
                fired: 1,
                ignored: 0
            }
        );
        assert_eq!(l.counts("n9", "a"), Counts::default());
        let order: Vec<_> = l
            .entries()
            .into_iter()
            .map(|e| format!("{}/{}", e.node, e.point))
            .collect();
        assert_eq!(order, ["n1/a", "n1/b", "n2/b"]);
        assert_eq!(l.log().len(), 2);
        assert_eq!(l.log()[1].action, "pause [ignored: sync point]");
    }
}
