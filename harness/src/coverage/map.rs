//! A campaign's coverage: for every hashed feature the number of runs that reached it, and for
//! every catalogued fail point (and every (node, point) pair) the runs that reached and fired
//! it. Counts only add up, so merging the maps of workers, batches or machines gives the same
//! map in any order; everything is a BTreeMap and serializes to stable JSON.

use super::RunCoverage;
use crate::run_spec::FAIL_POINTS;
use serde::{Deserialize, Serialize};
use shardstorm_faults::PointWeights;
use std::collections::BTreeMap;

/// Reach and fire counts of one fail point over a campaign.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointStats {
    /// Runs in which some node reached the point.
    pub runs_reached: u64,
    /// Runs in which an armed action fired at the point.
    pub runs_fired: u64,
    /// Evaluations, all runs and nodes.
    pub reached: u64,
    /// Fired actions, all runs and nodes.
    pub fired: u64,
}

/// The coverage of a campaign.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageMap {
    /// Runs added.
    pub runs: u64,
    /// Hashed feature -> runs that reached it.
    pub features: BTreeMap<u64, u64>,
    /// Fail point -> its counts (points never reached are absent).
    pub points: BTreeMap<String, PointStats>,
    /// `node@point` -> runs in which that node reached that point.
    pub node_points: BTreeMap<String, u64>,
}

impl CoverageMap {
    /// Adds one run; returns how many of its features no earlier run had.
    pub fn add(&mut self, run: &RunCoverage) -> usize {
        self.runs += 1;
        let mut new = 0;
        for f in &run.features {
            let n = self.features.entry(*f).or_insert(0);
            if *n == 0 {
                new += 1;
            }
            *n += 1;
        }
        for hits in &run.points {
            let stats = self.points.entry(hits.point.clone()).or_default();
            stats.reached += hits.reached;
            stats.fired += hits.fired;
            stats.runs_reached += u64::from(hits.reached > 0);
            stats.runs_fired += u64::from(hits.fired > 0);
        }
        for pair in &run.node_points {
            *self.node_points.entry(pair.clone()).or_insert(0) += 1;
        }
        new
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &CoverageMap) {
        self.runs += other.runs;
        for (f, n) in &other.features {
            *self.features.entry(*f).or_insert(0) += n;
        }
        for (p, s) in &other.points {
            let mine = self.points.entry(p.clone()).or_default();
            mine.runs_reached += s.runs_reached;
            mine.runs_fired += s.runs_fired;
            mine.reached += s.reached;
            mine.fired += s.fired;
        }
        for (pair, n) in &other.node_points {
            *self.node_points.entry(pair.clone()).or_insert(0) += n;
        }
    }

    /// Distinct features reached.
    pub fn feature_count(&self) -> usize {
        self.features.len()
    }

    /// Runs that reached feature `f`.
    pub fn count(&self, f: u64) -> u64 {
        self.features.get(&f).copied().unwrap_or(0)
    }

    /// How rare a run's features are: the sum over them of one over the runs that reached
    /// each (a feature only this run has counts 1).
    pub fn rarity(&self, features: &[u64]) -> f64 {
        features
            .iter()
            .map(|f| 1.0 / self.count(*f).max(1) as f64)
            .sum()
    }

    /// Catalogued fail points no run reached, in catalogue order.
    pub fn never_reached(&self) -> Vec<String> {
        self.catalogue_where(|s| s.is_none_or(|s| s.runs_reached == 0))
    }

    /// Catalogued fail points at which no armed action ever fired, in catalogue order.
    pub fn never_fired(&self) -> Vec<String> {
        self.catalogue_where(|s| s.is_none_or(|s| s.runs_fired == 0))
    }

    fn catalogue_where(&self, keep: impl Fn(Option<&PointStats>) -> bool) -> Vec<String> {
        FAIL_POINTS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| keep(self.points.get(*name)))
            .map(String::from)
            .collect()
    }

    /// Weights for triggered faults: every (node, point) pair some run reached, weighted one
    /// over one plus the runs that reached it (rarely reached pairs first).
    pub fn point_weights(&self) -> PointWeights {
        let pairs = self
            .node_points
            .iter()
            .filter_map(|(pair, runs)| {
                let (node, point) = pair.split_once('@')?;
                Some((
                    node.to_string(),
                    point.to_string(),
                    1.0 / (1.0 + *runs as f64),
                ))
            })
            .collect();
        PointWeights::new(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::PointHits;
    use super::*;

    fn run(features: &[u64], points: &[(&str, u64, u64)], pairs: &[&str]) -> RunCoverage {
        RunCoverage {
            features: features.to_vec(),
            moments: Vec::new(),
            points: points
                .iter()
                .map(|(p, r, f)| PointHits {
                    point: p.to_string(),
                    reached: *r,
                    fired: *f,
                })
                .collect(),
            node_points: pairs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn add_counts_new_features_and_merge_is_order_free() {
        let a = run(
            &[1, 2, 3],
            &[("sync.fetch_sliver", 10, 0)],
            &["n1@sync.fetch_sliver"],
        );
        let b = run(
            &[2, 4],
            &[("sync.fetch_sliver", 5, 1)],
            &["n2@sync.fetch_sliver"],
        );
        let mut ab = CoverageMap::default();
        assert_eq!(ab.add(&a), 3);
        assert_eq!(ab.add(&b), 1);
        let (mut x, mut y) = (CoverageMap::default(), CoverageMap::default());
        x.add(&b);
        y.add(&a);
        x.merge(&y);
        assert_eq!(x, ab);
        assert_eq!(ab.count(2), 2);
        assert_eq!(ab.feature_count(), 4);
        assert_eq!(ab.points["sync.fetch_sliver"].runs_fired, 1);
        assert!(!ab
            .never_reached()
            .contains(&"sync.fetch_sliver".to_string()));
        assert!(ab.never_fired().len() == FAIL_POINTS.len() - 1);
        let json = serde_json::to_string(&ab).expect("serializes");
        let back: CoverageMap = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, ab);
        assert!(ab.rarity(&[4]) > ab.rarity(&[2]));
    }

    #[test]
    fn rarely_reached_pairs_weigh_more() {
        let mut map = CoverageMap::default();
        for i in 0..9 {
            let pairs: &[&str] = if i == 0 { &["n1@a", "n2@b"] } else { &["n1@a"] };
            map.add(&run(&[], &[], pairs));
        }
        let w = map.point_weights();
        assert_eq!(w.weight("n1", "a"), Some(0.1));
        assert_eq!(w.weight("n2", "b"), Some(0.5));
        assert_eq!(w.weight("n3", "a"), None);
    }
}
