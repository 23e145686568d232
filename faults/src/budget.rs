//! The fault budget: which nodes a schedule makes faulty when, and the check that at most
//! f = floor((n-1)/3) distinct nodes are faulty at any instant.
//!
//! Interpretation of each entry (intervals are half-open, `[start, end)`):
//! - `crash n` at t: n is faulty until the next `restart n` (forever if there is none);
//!   `crash-restart n for d`: `[t, t+d)`; `restart n` alone (a bounce) takes no time.
//! - `partition`/`hold a b for d`: the smaller side (`a` on a tie) for `[t, t+d)`.
//! - `disk-eio`, `disk-corrupt`, `byzantine n for d`: n for `[t, t+d)`.
//! - `failpoint sel p actions`: from t until the rule ends (the next `clear-failpoint p`, a
//!   re-arm of the same selector and point, or for a pause-only chain an `open-gate` covering
//!   it), plus the longest `restart(ms)`/`delay(ms)` tail; a chain with `crash` lasts until the
//!   node's next `restart` after that. A node selector names the node; `*` or a glob counts as
//!   `min(total count, n)` anonymous nodes (the shared counts bound how many nodes it can hit).
//!   A chain of only `off` is harmless.
//! - `loss`, `latency`: no node is faulty (network-wide); they still must heal in time.
//! - `disk-torn`, `status`, `clear-failpoint`, `open-gate`: no faulty interval of their own.
//! - Triggered entries (`at point@node ...`) may fire at any time: their interval is the whole
//!   run.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::action::{parse_actions, Actions};
use crate::fault::{fmt_secs, Fault};
use crate::schedule::{Schedule, ScheduleEntry};
use crate::selector::Selector;

/// The largest number of nodes that may be faulty at once among `n_nodes`.
pub fn allowed_faulty(n_nodes: usize) -> usize {
    n_nodes.saturating_sub(1) / 3
}

/// When one schedule entry makes which nodes faulty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultyInterval {
    /// Index into `schedule.entries`.
    pub entry: usize,
    /// Named faulty nodes (empty for network-wide faults).
    pub nodes: BTreeSet<String>,
    /// Faulty nodes that cannot be named (wildcard fail points).
    pub anonymous: usize,
    pub start: Duration,
    /// `None`: never heals within the schedule.
    pub end: Option<Duration>,
}

impl FaultyInterval {
    fn active_at(&self, t: Duration) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e)
    }

    fn counts(&self) -> bool {
        (!self.nodes.is_empty() || self.anonymous > 0) && self.end != Some(self.start)
    }
}

/// The schedule exceeds the budget or leaves a fault unhealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetViolation {
    #[error("{faulty} of {n_nodes} nodes faulty at {} ({}), the budget allows {allowed}", fmt_secs(*.at), .nodes.join(","))]
    OverBudget {
        at: Duration,
        faulty: usize,
        allowed: usize,
        n_nodes: usize,
        /// The named faulty nodes; wildcard fail points add unnamed ones to `faulty`.
        nodes: Vec<String>,
    },
    #[error("entry {entry} ({fault}) is never healed")]
    NeverHealed { entry: usize, fault: String },
    #[error("entry {entry} ({fault}) heals at {}, after the horizon {}", fmt_secs(*.end), fmt_secs(*.horizon))]
    HealsLate {
        entry: usize,
        fault: String,
        end: Duration,
        horizon: Duration,
    },
}

/// Checks that at most [`allowed_faulty`]`(n_nodes)` distinct nodes are faulty at any instant.
/// Unhealed faults count until the end of time (the liveness phase heals them).
pub fn check(schedule: &Schedule, n_nodes: usize) -> Result<(), BudgetViolation> {
    let allowed = allowed_faulty(n_nodes);
    let intervals: Vec<_> = intervals(schedule, n_nodes)
        .into_iter()
        .filter(FaultyInterval::counts)
        .collect();
    let mut instants: Vec<Duration> = intervals.iter().map(|i| i.start).collect();
    instants.sort();
    instants.dedup();
    for at in instants {
        let (faulty, nodes) = faulty_at(&intervals, at, n_nodes);
        if faulty > allowed {
            return Err(BudgetViolation::OverBudget {
                at,
                faulty,
                allowed,
                n_nodes,
                nodes,
            });
        }
    }
    Ok(())
}

/// How many nodes are faulty at `at`, and the named ones.
fn faulty_at(intervals: &[FaultyInterval], at: Duration, n_nodes: usize) -> (usize, Vec<String>) {
    let active = intervals.iter().filter(|i| i.active_at(at));
    let mut named = BTreeSet::new();
    let mut anonymous = 0usize;
    for interval in active {
        named.extend(interval.nodes.iter().cloned());
        anonymous += interval.anonymous;
    }
    let extra = anonymous.min(n_nodes.saturating_sub(named.len()));
    (named.len() + extra, named.into_iter().collect())
}

/// Checks that every fault heals (crashes are restarted, pauses opened, fail points cleared)
/// no later than `horizon`.
pub fn check_healed(schedule: &Schedule, horizon: Duration) -> Result<(), BudgetViolation> {
    for interval in intervals(schedule, usize::MAX) {
        let fault = schedule.entries[interval.entry].to_string();
        match interval.end {
            None => {
                return Err(BudgetViolation::NeverHealed {
                    entry: interval.entry,
                    fault,
                })
            }
            Some(end) if end > horizon => {
                return Err(BudgetViolation::HealsLate {
                    entry: interval.entry,
                    fault,
                    end,
                    horizon,
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The faulty interval of every entry that has one (network-wide faults with no nodes).
pub fn intervals(schedule: &Schedule, n_nodes: usize) -> Vec<FaultyInterval> {
    (0..schedule.entries.len())
        .filter_map(|i| interval_of(schedule, i, n_nodes))
        .collect()
}

fn interval_of(schedule: &Schedule, i: usize, n_nodes: usize) -> Option<FaultyInterval> {
    let entry = &schedule.entries[i];
    let start = entry.at().unwrap_or_default();
    let (nodes, anonymous, end) = extent(schedule, i, start, n_nodes)?;
    let end = match entry {
        ScheduleEntry::Timed { .. } => end,
        ScheduleEntry::Triggered { .. } => None,
    };
    Some(FaultyInterval {
        entry: i,
        nodes,
        anonymous,
        start,
        end,
    })
}

type Extent = (BTreeSet<String>, usize, Option<Duration>);

fn named(nodes: &[&String], end: Option<Duration>) -> Option<Extent> {
    Some((nodes.iter().map(|n| n.to_string()).collect(), 0, end))
}

fn extent(schedule: &Schedule, i: usize, t: Duration, n_nodes: usize) -> Option<Extent> {
    match schedule.entries[i].fault() {
        Fault::Crash { node } => named(&[node], next_restart(schedule, i, node, t)),
        Fault::CrashRestart { node, down } => named(&[node], Some(t + *down)),
        Fault::Partition { a, b, duration, .. } | Fault::Hold { a, b, duration } => {
            let side = if b.len() < a.len() { b } else { a };
            Some((side.iter().cloned().collect(), 0, Some(t + *duration)))
        }
        Fault::ChainPartition {
            nodes, duration, ..
        } => Some((nodes.iter().cloned().collect(), 0, Some(t + *duration))),
        Fault::DiskEio { node, duration }
        | Fault::DiskCorruptReads { node, duration, .. }
        | Fault::Byzantine { node, duration } => named(&[node], Some(t + *duration)),
        Fault::MessageLoss { duration, .. } | Fault::LatencySpike { duration, .. } => {
            Some((BTreeSet::new(), 0, Some(t + *duration)))
        }
        Fault::FailPoint { point, action, .. } => {
            fail_point_extent(schedule, i, t, point, action, n_nodes)
        }
        Fault::Restart { .. }
        | Fault::DiskTornOnCrash { .. }
        | Fault::StatusChange { .. }
        | Fault::ClearFailPoint { .. }
        | Fault::OpenGate { .. }
        | Fault::EpochChange
        | Fault::Reshuffle { .. } => None,
    }
}

fn fail_point_extent(
    schedule: &Schedule,
    i: usize,
    t: Duration,
    point: &str,
    action: &str,
    n_nodes: usize,
) -> Option<Extent> {
    // An unparsable chain (only possible when built by hand) counts as disruptive forever.
    let actions: Option<Actions> = parse_actions(action).ok();
    if actions.as_ref().is_some_and(|a| !a.disrupts()) {
        return None;
    }
    let selector = schedule.entries[i].fault().selector();
    let (nodes, anonymous) = match &selector {
        Selector::Node(n) => (BTreeSet::from([n.clone()]), 0),
        _ => {
            let cap = actions.as_ref().and_then(Actions::fire_capacity);
            let cap = cap.map_or(n_nodes, |c| usize::try_from(c).unwrap_or(usize::MAX));
            (BTreeSet::new(), cap.min(n_nodes))
        }
    };
    let Some(actions) = actions else {
        return Some((nodes, anonymous, None));
    };
    let rule_end = rule_end(schedule, i, t, point, &selector, actions.only_pauses());
    let end = match (rule_end, &selector) {
        (None, _) => None,
        (Some(e), Selector::Node(n)) if actions.has_crash() => next_restart(schedule, i, n, e),
        (Some(_), _) if actions.has_crash() => None,
        (Some(e), _) => Some(e + Duration::from_millis(actions.tail_ms())),
    };
    Some((nodes, anonymous, end))
}

/// The later timed entries (index > i, time >= t) with their times.
fn later(schedule: &Schedule, i: usize, t: Duration) -> impl Iterator<Item = (Duration, &Fault)> {
    schedule.entries[i + 1..]
        .iter()
        .filter_map(move |e| e.at().filter(|at| *at >= t).map(|at| (at, e.fault())))
}

fn next_restart(schedule: &Schedule, i: usize, node: &str, t: Duration) -> Option<Duration> {
    later(schedule, i, t)
        .find(|(_, f)| matches!(f, Fault::Restart { node: n } if n == node))
        .map(|(at, _)| at)
}

/// When the rule armed by entry `i` stops acting.
fn rule_end(
    schedule: &Schedule,
    i: usize,
    t: Duration,
    point: &str,
    selector: &Selector,
    only_pauses: bool,
) -> Option<Duration> {
    later(schedule, i, t)
        .find(|(_, f)| match f {
            Fault::ClearFailPoint { point: p } => p == point,
            Fault::FailPoint { point: p, .. } => p == point && &f.selector() == selector,
            Fault::OpenGate { point: p, .. } => {
                only_pauses && p == point && covers(&f.selector(), selector)
            }
            _ => false,
        })
        .map(|(at, _)| at)
}

/// True if opening a gate for `opened` releases every node of `armed`.
fn covers(opened: &Selector, armed: &Selector) -> bool {
    match (opened, armed) {
        (Selector::All, _) => true,
        (o, a) if o == a => true,
        (o, Selector::Node(n)) => o.matches(n),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(text: &str) -> Schedule {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn f_of_n() {
        let f: Vec<_> = (0..=10).map(allowed_faulty).collect();
        assert_eq!(f, [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    }

    #[test]
    fn sequential_faults_fit() {
        let s = sched(
            "1.000s crash n1\n3.000s restart n1\n3.000s disk-eio n2 for 2.000s\n\
             5.000s partition n3 n1,n2,n4 for 1.000s\n6.000s loss 0.500 for 9.000s\n",
        );
        assert_eq!(check(&s, 4), Ok(()));
        assert_eq!(check_healed(&s, Duration::from_secs(15)), Ok(()));
    }

    #[test]
    fn detects_overlapping_crashes() {
        let s = sched("1.000s crash n1\n2.000s crash n2\n3.000s restart n1\n3.000s restart n2\n");
        let err = check(&s, 4).expect_err("two of four nodes down");
        assert_eq!(
            err.to_string(),
            "2 of 4 nodes faulty at 2.000s (n1,n2), the budget allows 1"
        );
        assert_eq!(check(&s, 7), Ok(()), "f = 2 with seven nodes");
    }

    #[test]
    fn detects_partition_and_disk_overlap() {
        let s =
            sched("1.000s partition n1 n2,n3,n4,n5 for 5.000s\n4.000s byzantine n5 for 1.000s\n");
        assert!(matches!(
            check(&s, 5),
            Err(BudgetViolation::OverBudget { faulty: 2, .. })
        ));
    }

    #[test]
    fn unrestarted_crash_counts_forever_and_is_unhealed() {
        let s = sched("1.000s crash n1\n50.000s disk-eio n2 for 1.000s\n");
        assert!(check(&s, 4).is_err());
        assert!(matches!(
            check_healed(&s, Duration::from_secs(60)),
            Err(BudgetViolation::NeverHealed { entry: 0, .. })
        ));
    }

    #[test]
    fn fail_point_rules_last_until_cleared_or_opened() {
        let s = sched(
            "1.000s failpoint n1 sync.metadata.pause pause\n\
             2.000s open-gate n1 sync.metadata.pause\n\
             2.000s failpoint n2 db.put.before 1*restart(500)\n\
             3.000s clear-failpoint db.put.before\n\
             3.500s crash n3\n4.000s restart n3\n",
        );
        let iv = intervals(&s, 4);
        let ends: Vec<_> = iv.iter().map(|i| i.end).collect();
        assert_eq!(
            ends,
            [
                Some(Duration::from_secs(2)),
                Some(Duration::from_millis(3500)),
                Some(Duration::from_secs(4))
            ]
        );
        assert_eq!(check(&s, 4), Ok(()));
        let overlap = sched(
            "1.000s failpoint n1 p delay(2000)\n2.000s clear-failpoint p\n3.000s crash n2\n4.000s restart n2\n",
        );
        assert!(check(&overlap, 4).is_err(), "the delay tail reaches 4 s");
    }

    #[test]
    fn wildcard_fail_points_count_their_capacity() {
        let one = sched("1.000s failpoint * db.put.before 1*crash\n");
        assert_eq!(check(&one, 4), Ok(()));
        let two = sched("1.000s failpoint * db.put.before 2*crash\n");
        assert!(check(&two, 4).is_err());
        assert!(check(&two, 7).is_ok());
        let unbounded = sched("1.000s failpoint n* p return\n");
        assert!(check(&unbounded, 7).is_err());
        let harmless = sched("1.000s failpoint * p off\n");
        assert_eq!(check(&harmless, 4), Ok(()));
    }

    #[test]
    fn triggered_entries_count_for_the_whole_run() {
        let s = sched("at p@n1 crash n1\n100.000s disk-eio n2 for 1.000s\n");
        assert!(check(&s, 4).is_err());
        let ok = sched("at p@n1 status n1 Standby\n100.000s disk-eio n2 for 1.000s\n");
        assert!(check(&ok, 4).is_ok());
    }

    #[test]
    fn heals_late_is_reported() {
        let s = sched("10.000s partition n1 n2 for 5.000s\n");
        assert!(matches!(
            check_healed(&s, Duration::from_secs(12)),
            Err(BudgetViolation::HealsLate { .. })
        ));
    }
}
