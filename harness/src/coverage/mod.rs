//! Coverage of a run, computed after the run from its trace and its fail-point ledger (see
//! [`features`]), and of a campaign (see [`map`]). Generic states of the spec only: the
//! features never name a catalogue bug, a bug-specific fail point or a timing.

pub mod features;
pub mod map;

pub use features::{Feature, Features};
pub use map::{CoverageMap, PointStats};

use crate::trace::TraceEvent;
use serde::{Deserialize, Serialize};
use shardstorm_faults::LedgerEntry;
use std::collections::BTreeMap;

/// Reach and fire counts of one fail point in one run, all nodes together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointHits {
    pub point: String,
    pub reached: u64,
    pub fired: u64,
}

/// What one run covered, compact enough to keep per corpus entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCoverage {
    /// Hashed features (with their hit-count buckets), sorted, no duplicates.
    pub features: Vec<u64>,
    /// (feature, simulated ms at which the run reached it), sorted by feature; features from
    /// the ledger have no time and are absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moments: Vec<(u64, u64)>,
    /// Per fail point reached in the run, its counts.
    pub points: Vec<PointHits>,
    /// `node@point` for every pair reached in the run.
    pub node_points: Vec<String>,
}

impl RunCoverage {
    /// The coverage of a run from its trace and ledger.
    pub fn of_run(trace: &[TraceEvent], ledger: &[LedgerEntry]) -> Self {
        let features = Features::of_run(trace, ledger);
        let mut points: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut node_points = Vec::new();
        for entry in ledger {
            let p = points.entry(entry.point.as_str()).or_default();
            p.0 += entry.counts.reached;
            p.1 += entry.counts.fired;
            if entry.counts.reached > 0 {
                node_points.push(format!("{}@{}", entry.node, entry.point));
            }
        }
        node_points.sort();
        node_points.dedup();
        Self {
            features: features.hashes(),
            moments: features.moments(),
            points: points
                .into_iter()
                .map(|(point, (reached, fired))| PointHits {
                    point: point.to_string(),
                    reached,
                    fired,
                })
                .collect(),
            node_points,
        }
    }

    /// When the run reached feature `f` (simulated ms), if known.
    pub fn moment(&self, f: u64) -> Option<u64> {
        self.moments
            .binary_search_by_key(&f, |(h, _)| *h)
            .ok()
            .map(|i| self.moments[i].1)
    }
}

#[cfg(test)]
mod tests;
