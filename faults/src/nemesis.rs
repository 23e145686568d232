//! The nemesis: draws a timed fault schedule per seed from the knobs and the harness-supplied
//! shape of the system, under the fault budget (see [`crate::budget`]).
//!
//! Each enabled kind strikes as a Poisson process at its rate, with its own RNG stream (so
//! turning one kind off leaves the others' draws alone). Arrivals are then admitted in time
//! order: a node-level fault is placed only on nodes with no other fault over its whole span
//! and only while at most f = floor((n-1)/3) nodes are faulty at every instant of it;
//! otherwise it is dropped. Every fault heals before `shape.duration`: crashes are followed by
//! a restart, pauses by an `open-gate`, armed fail points by a `clear-failpoint`. A fail point
//! is armed for one node at a time, and partitions never overlap. Status changes are instantaneous and do not count against
//! the budget; loss and latency spikes are network-wide and never overlap one of their kind.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::budget::allowed_faulty;
use crate::fault::{Fault, LinkDirection};
use crate::fault_kind::FaultKind;
use crate::knobs::Knobs;
use crate::schedule::{Schedule, ScheduleEntry};
use crate::shape::{FailPointKind, Shape};

/// The first RNG stream of schedule draws; kind `k` uses `SCHEDULE_STREAM + k`.
const SCHEDULE_STREAM: u64 = 0x5c4e_0000;
/// At most this many arrivals per kind (bounds pathological rates).
const MAX_ARRIVALS: usize = 1000;

/// Weights over (node, point) pairs for steering triggered faults, kept in a fixed order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointWeights {
    /// (node, point, weight), sorted by (node, point); weights are positive and finite.
    pairs: Vec<(String, String, f64)>,
}

impl PointWeights {
    /// Weights of `pairs`; non-positive or non-finite weights are dropped.
    pub fn new(mut pairs: Vec<(String, String, f64)>) -> Self {
        pairs.retain(|(_, _, w)| w.is_finite() && *w > 0.0);
        pairs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        pairs.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        Self { pairs }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The weight of one pair.
    pub fn weight(&self, node: &str, point: &str) -> Option<f64> {
        self.pairs
            .iter()
            .find(|(n, p, _)| n == node && p == point)
            .map(|(_, _, w)| *w)
    }

    /// Draws a (node, point) pair in proportion to its weight.
    pub fn choose<R: Rng>(&self, rng: &mut R) -> Option<(&str, &str)> {
        self.choose_where(rng, |_, _| true)
    }

    /// Draws among the pairs `keep` accepts, in proportion to their weights.
    pub fn choose_where<R: Rng>(
        &self,
        rng: &mut R,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Option<(&str, &str)> {
        let kept: Vec<&(String, String, f64)> =
            self.pairs.iter().filter(|(n, p, _)| keep(n, p)).collect();
        let total: f64 = kept.iter().map(|(_, _, w)| w).sum();
        if kept.is_empty() || total <= 0.0 {
            return None;
        }
        let mut x = rng.random::<f64>() * total;
        for (n, p, w) in &kept {
            if x < *w {
                return Some((n.as_str(), p.as_str()));
            }
            x -= w;
        }
        kept.last().map(|(n, p, _)| (n.as_str(), p.as_str()))
    }
}

/// Draws fault schedules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nemesis;

impl Nemesis {
    /// The schedule of `seed`: deterministic for (seed, knobs, shape), within the budget, and
    /// fully healed by `shape.duration`.
    pub fn schedule(seed: u64, knobs: &Knobs, shape: &Shape) -> Schedule {
        Self::schedule_weighted(seed, knobs, shape, None)
    }

    /// [`Nemesis::schedule`] with triggered faults steered: with `weights`, half of them pick
    /// their (node, point) in proportion to the weights (a campaign passes rarely reached
    /// pairs heavy), the other half uniformly as without. Without weights the draws are
    /// exactly those of [`Nemesis::schedule`].
    pub fn schedule_weighted(
        seed: u64,
        knobs: &Knobs,
        shape: &Shape,
        weights: Option<&PointWeights>,
    ) -> Schedule {
        let mut rngs: BTreeMap<FaultKind, ChaCha8Rng> = BTreeMap::new();
        let mut arrivals = Vec::new();
        for (index, kind) in FaultKind::ALL.into_iter().enumerate() {
            let knob = knobs.kind(kind);
            if !knob.enabled || !shape.supports(kind) {
                continue;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(SCHEDULE_STREAM + index as u64);
            let horizon = ms(shape.duration);
            arrivals.extend(poisson(&mut rng, knob.rate, horizon).map(|t| (t, kind)));
            rngs.insert(kind, rng);
        }
        arrivals.sort();
        let mut planner = Planner::new(shape);
        planner.weights = weights.filter(|w| !w.is_empty());
        for (t, kind) in arrivals {
            if let Some(rng) = rngs.get_mut(&kind) {
                planner.place(kind, t, rng);
            }
        }
        Schedule::new(planner.entries)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Arrival times (ms) of a Poisson process of `per_minute` events per simulated minute.
fn poisson(rng: &mut ChaCha8Rng, per_minute: f64, horizon: u64) -> impl Iterator<Item = u64> {
    let lambda = per_minute / 60_000.0;
    let mut times = Vec::new();
    let mut t = 0.0f64;
    while lambda > 0.0 && times.len() < MAX_ARRIVALS {
        let u: f64 = rng.random();
        t += -(1.0 - u).ln() / lambda;
        if !t.is_finite() || t >= horizon as f64 {
            break;
        }
        times.push(t as u64);
    }
    times.into_iter()
}

/// A node (index into `shape.nodes`) faulty over `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Busy {
    node: usize,
    start: u64,
    end: u64,
}

/// One fail-point arming the planner places.
struct Arming {
    kind: FailPointKind,
    action: String,
    /// How long the rule stays armed (ms).
    window: u64,
    /// How long a firing action can outlast the rule (ms): `restart`/`delay` arguments.
    tail: u64,
}

/// Admits faults under the budget and writes their schedule entries.
struct Planner<'a> {
    shape: &'a Shape,
    allowed: usize,
    horizon: u64,
    busy: Vec<Busy>,
    /// Per fail point, the end of its last arming.
    point_free_at: BTreeMap<String, u64>,
    /// Per network-wide kind (and partitions, which never overlap), the end of its last fault.
    global_free_at: BTreeMap<FaultKind, u64>,
    entries: Vec<ScheduleEntry>,
    /// Steers triggered faults (see [`Nemesis::schedule_weighted`]).
    weights: Option<&'a PointWeights>,
}

impl<'a> Planner<'a> {
    fn new(shape: &'a Shape) -> Self {
        Self {
            weights: None,
            shape,
            allowed: allowed_faulty(shape.nodes.len()),
            horizon: ms(shape.duration),
            busy: Vec::new(),
            point_free_at: BTreeMap::new(),
            global_free_at: BTreeMap::new(),
            entries: Vec::new(),
        }
    }

    fn push(&mut self, at: u64, fault: Fault) {
        let at = Duration::from_millis(at);
        self.entries.push(ScheduleEntry::Timed { at, fault });
    }

    fn node(&self, i: usize) -> String {
        self.shape.nodes[i].clone()
    }

    /// Draws a span in `lo..=hi` ms that ends by the horizon, or `None` if `lo` does not fit.
    fn span(&self, rng: &mut ChaCha8Rng, t: u64, lo: u64, hi: u64) -> Option<u64> {
        let room = self.horizon.checked_sub(t)?;
        (room >= lo).then(|| rng.random_range(lo..=hi.min(room)))
    }

    /// Distinct busy nodes at instant `x`.
    fn active_at(&self, x: u64) -> usize {
        let mut nodes: Vec<usize> = self
            .busy
            .iter()
            .filter(|b| b.start <= x && x < b.end)
            .map(|b| b.node)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    }

    /// The most nodes busy at any instant of `[start, end)`.
    fn peak(&self, start: u64, end: u64) -> usize {
        let inner = self.busy.iter().map(|b| b.start);
        std::iter::once(start)
            .chain(inner.filter(|s| (start..end).contains(s)))
            .map(|x| self.active_at(x))
            .max()
            .unwrap_or(0)
    }

    /// Reserves between 1 and `max` nodes that are free over `[start, end)` within the budget.
    fn reserve(
        &mut self,
        rng: &mut ChaCha8Rng,
        max: usize,
        start: u64,
        end: u64,
    ) -> Option<Vec<usize>> {
        let room = self.allowed.checked_sub(self.peak(start, end))?;
        let mut free: Vec<usize> = (0..self.shape.nodes.len())
            .filter(|n| {
                !self
                    .busy
                    .iter()
                    .any(|b| b.node == *n && b.start < end && start < b.end)
            })
            .collect();
        let most = max.min(room).min(free.len());
        if most == 0 {
            return None;
        }
        let k = rng.random_range(1..=most);
        free.shuffle(rng);
        free.truncate(k);
        free.sort_unstable();
        self.busy
            .extend(free.iter().map(|&node| Busy { node, start, end }));
        Some(free)
    }

    fn reserve_one(&mut self, rng: &mut ChaCha8Rng, start: u64, end: u64) -> Option<String> {
        let nodes = self.reserve(rng, 1, start, end)?;
        Some(self.node(nodes[0]))
    }

    /// The fail points of `kind` whose last arming ended before `t`.
    fn free_points(&self, kind: FailPointKind, t: u64) -> Vec<String> {
        let free_at = |p: &&str| self.point_free_at.get(*p).is_none_or(|f| *f < t);
        let points = self.shape.points(kind);
        points
            .into_iter()
            .filter(free_at)
            .map(String::from)
            .collect()
    }

    fn place(&mut self, kind: FaultKind, t: u64, rng: &mut ChaCha8Rng) {
        // A dropped arrival (no room in the budget) is simply skipped.
        let _placed: Option<()> = match kind {
            FaultKind::Crash => self.crash(rng, t, false),
            FaultKind::DiskTorn => self.crash(rng, t, true),
            FaultKind::Partition => self.partition(rng, t),
            FaultKind::Loss | FaultKind::Latency => self.network(rng, kind, t),
            FaultKind::DiskEio | FaultKind::DiskCorrupt | FaultKind::Byzantine => {
                self.node_fault(rng, kind, t)
            }
            FaultKind::StatusChange => self.status(rng, t),
            FaultKind::FailpointPause => self.fp_pause(rng, t),
            FaultKind::FailpointError => self.fp_error(rng, t),
            FaultKind::FailpointCrash => self.fp_crash(rng, t),
            FaultKind::FailpointDelay => self.fp_delay(rng, t),
            FaultKind::Triggered => self.triggered(rng, t),
            FaultKind::ChainPartition => self.chain_partition(rng, t),
        };
    }

    fn crash(&mut self, rng: &mut ChaCha8Rng, t: u64, torn: bool) -> Option<()> {
        let down = self.span(rng, t, 500, 10_000)?;
        let node = self.reserve_one(rng, t, t + down)?;
        if torn {
            self.push(t, Fault::DiskTornOnCrash { node: node.clone() });
        }
        self.push(t, Fault::Crash { node: node.clone() });
        self.push(t + down, Fault::Restart { node });
        Some(())
    }

    fn partition(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        if self
            .global_free_at
            .get(&FaultKind::Partition)
            .is_some_and(|f| *f > t)
        {
            return None;
        }
        let span = self.span(rng, t, 1000, 15_000)?;
        let side = self.reserve(rng, usize::MAX, t, t + span)?;
        self.global_free_at.insert(FaultKind::Partition, t + span);
        let (a, b): (Vec<usize>, Vec<usize>) =
            (0..self.shape.nodes.len()).partition(|n| side.contains(n));
        let (mut a, mut b) = (self.names(&a), self.names(&b));
        let oneway = rng.random_bool(0.5);
        if oneway && rng.random_bool(0.5) {
            std::mem::swap(&mut a, &mut b);
        }
        let duration = Duration::from_millis(span);
        self.push(
            t,
            Fault::Partition {
                a,
                b,
                oneway,
                duration,
            },
        );
        Some(())
    }

    /// Cuts one or two nodes off the chain host, both ways or one way.
    fn chain_partition(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let span = self.span(rng, t, 1000, 15_000)?;
        let nodes = self.reserve(rng, 2, t, t + span)?;
        let direction = *LinkDirection::ALL.choose(rng)?;
        let fault = Fault::ChainPartition {
            nodes: self.names(&nodes),
            direction,
            duration: Duration::from_millis(span),
        };
        self.push(t, fault);
        Some(())
    }

    fn names(&self, nodes: &[usize]) -> Vec<String> {
        nodes.iter().map(|&n| self.node(n)).collect()
    }

    fn network(&mut self, rng: &mut ChaCha8Rng, kind: FaultKind, t: u64) -> Option<()> {
        if self.global_free_at.get(&kind).is_some_and(|f| *f > t) {
            return None;
        }
        let span = self.span(rng, t, 1000, 20_000)?;
        self.global_free_at.insert(kind, t + span);
        let duration = Duration::from_millis(span);
        let fault = if kind == FaultKind::Loss {
            let rate = f64::from(rng.random_range(10..=300u32)) / 1000.0;
            Fault::MessageLoss { rate, duration }
        } else {
            let max_ms = rng.random_range(50..=2000);
            Fault::LatencySpike { max_ms, duration }
        };
        self.push(t, fault);
        Some(())
    }

    fn node_fault(&mut self, rng: &mut ChaCha8Rng, kind: FaultKind, t: u64) -> Option<()> {
        let span = self.span(rng, t, 500, 15_000)?;
        let node = self.reserve_one(rng, t, t + span)?;
        let duration = Duration::from_millis(span);
        let fault = match kind {
            FaultKind::DiskEio => Fault::DiskEio { node, duration },
            FaultKind::DiskCorrupt => Fault::DiskCorruptReads {
                node,
                per_mille: rng.random_range(1..=200),
                duration,
            },
            _ => Fault::Byzantine { node, duration },
        };
        self.push(t, fault);
        Some(())
    }

    fn status(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let node = self.shape.nodes.choose(rng)?.clone();
        let status = self.shape.statuses.choose(rng)?.clone();
        self.push(t, Fault::StatusChange { node, status });
        Some(())
    }

    /// Arms `arming.action` at a free point of `arming.kind` on one node at `t`, opens its
    /// gate (pauses) and clears it at `t + window`, and keeps the node reserved until
    /// `t + window + tail`.
    fn arm(&mut self, rng: &mut ChaCha8Rng, t: u64, arming: Arming) -> Option<()> {
        let end = t + arming.window;
        if end + arming.tail > self.horizon {
            return None;
        }
        let points = self.free_points(arming.kind, t);
        if points.is_empty() {
            return None;
        }
        let node = self.reserve_one(rng, t, end + arming.tail)?;
        let point = points.choose(rng)?.clone();
        self.point_free_at.insert(point.clone(), end);
        let pause = arming.action == "pause";
        // Half the time the rule targets whichever node reaches the point first (`*` with a
        // count of one), so rarely reached points hit the node that actually gets there. The
        // budget still reserves one node for it.
        let first_comer =
            !arming.action.contains('*') && !arming.action.contains('%') && rng.random_bool(0.5);
        let (selector_node, action) = if first_comer {
            (None, format!("1*{}", arming.action))
        } else {
            (Some(node), arming.action)
        };
        let armed = Fault::FailPoint {
            selector_node: selector_node.clone(),
            point: point.clone(),
            action,
        };
        self.push(t, armed);
        if pause {
            let node = selector_node;
            self.push(
                end,
                Fault::OpenGate {
                    node,
                    point: point.clone(),
                },
            );
        }
        self.push(end, Fault::ClearFailPoint { point });
        Some(())
    }

    /// A state-aware fault: once armed at `t`, the first time the chosen node reaches the
    /// chosen point, either the next epoch change starts right away (so a node is caught
    /// mid-way through whatever that point is part of) or a concurrent status write lands on
    /// that node. Neither counts against the budget: both are instantaneous.
    fn triggered(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let steered = match self.weights {
            Some(w) if rng.random_bool(0.5) => w.choose(rng),
            _ => None,
        };
        let (point, node) = match steered {
            Some((node, point)) => (point.to_string(), node.to_string()),
            None => {
                let points = self.shape.trigger_points();
                let point = points.choose(rng)?.to_string();
                (
                    point,
                    self.node(rng.random_range(0..self.shape.nodes.len())),
                )
            }
        };
        let status = self.shape.statuses.choose(rng).cloned();
        let fault = match status {
            Some(status) if rng.random_bool(0.5) => Fault::StatusChange {
                node: node.clone(),
                status,
            },
            _ => Fault::EpochChange,
        };
        self.entries.push(ScheduleEntry::Triggered {
            point,
            node,
            after: Duration::from_millis(t),
            fault,
        });
        Some(())
    }

    fn fp_pause(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let window = self.span(rng, t, 500, 15_000)?;
        let action = "pause".to_string();
        self.arm(
            rng,
            t,
            Arming {
                kind: FailPointKind::Async,
                action,
                window,
                tail: 0,
            },
        )
    }

    fn fp_error(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let window = self.span(rng, t, 500, 10_000)?;
        let actions = ["return", "1*return", "3*return", "20%return", "50%return"];
        let action = actions[rng.random_range(0..actions.len())].to_string();
        self.arm(
            rng,
            t,
            Arming {
                kind: FailPointKind::If,
                action,
                window,
                tail: 0,
            },
        )
    }

    fn fp_crash(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let window = self.span(rng, t, 500, 10_000)?;
        let down = rng.random_range(500..=8000u64);
        let action = format!("1*restart({down})");
        let kind = FailPointKind::Crash;
        self.arm(
            rng,
            t,
            Arming {
                kind,
                action,
                window,
                tail: down,
            },
        )
    }

    fn fp_delay(&mut self, rng: &mut ChaCha8Rng, t: u64) -> Option<()> {
        let window = self.span(rng, t, 500, 10_000)?;
        let delay = rng.random_range(10..=2000u64);
        let action = if rng.random_bool(0.5) {
            format!("delay({delay})")
        } else {
            format!("25%delay({delay})")
        };
        let kind = FailPointKind::Async;
        self.arm(
            rng,
            t,
            Arming {
                kind,
                action,
                window,
                tail: delay,
            },
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::budget::{check, check_healed};
    use crate::shape::tests::shape;

    fn everything_on() -> Knobs {
        let mut knobs = Knobs::quiet();
        for kind in FaultKind::ALL {
            knobs.kind_mut(kind).enabled = true;
            knobs.kind_mut(kind).rate = 6.0;
        }
        knobs
    }

    #[test]
    fn same_seed_same_schedule() {
        let s = shape(5);
        for seed in 0..100 {
            let knobs = Knobs::draw(seed, &s);
            let a = Nemesis::schedule(seed, &knobs, &s).to_string();
            let b = Nemesis::schedule(seed, &Knobs::draw(seed, &s), &s).to_string();
            assert_eq!(a, b, "seed {seed}");
        }
        let a = Nemesis::schedule(1, &everything_on(), &s).to_string();
        let b = Nemesis::schedule(2, &everything_on(), &s).to_string();
        assert_ne!(a, b);
    }

    #[test]
    fn draws_every_kind_when_all_are_on() {
        let s = shape(7);
        let text: String = (0..20)
            .map(|seed| Nemesis::schedule(seed, &everything_on(), &s).to_string())
            .collect();
        for word in [
            " crash ",
            " restart ",
            "partition ",
            "partition-oneway",
            " loss ",
            " latency ",
            "disk-eio",
            "disk-torn",
            "disk-corrupt",
            " status ",
            "epoch-change",
            "at sync.",
            "byzantine",
            " pause\n",
            "open-gate",
            "return\n",
            "restart(",
            "delay(",
            "clear-failpoint",
        ] {
            assert!(text.contains(word), "no {word:?} in\n{text}");
        }
    }

    #[test]
    fn turning_a_kind_off_keeps_the_others() {
        let s = shape(5);
        let mut knobs = Knobs::quiet();
        knobs.loss.enabled = true;
        let loss_only = Nemesis::schedule(4, &knobs, &s).to_string();
        knobs.latency.enabled = true;
        let both = Nemesis::schedule(4, &knobs, &s).to_string();
        for line in loss_only.lines() {
            assert!(both.contains(line), "{line} vanished");
        }
    }

    #[test]
    fn budget_holds_over_ten_thousand_schedules() {
        let shapes = [shape(4), shape(5), shape(7)];
        let all_on = everything_on();
        let mut faults = 0;
        for seed in 0..10_000u64 {
            let s = &shapes[(seed % 3) as usize];
            let knobs = if seed % 2 == 0 {
                Knobs::draw(seed, s)
            } else {
                all_on.clone()
            };
            let schedule = Nemesis::schedule(seed, &knobs, s);
            faults += schedule.len();
            let ctx = || format!("seed {seed}, {} nodes:\n{schedule}", s.nodes.len());
            if let Err(e) = check(&schedule, s.nodes.len()) {
                panic!("{e}\n{}", ctx());
            }
            if let Err(e) = check_healed(&schedule, s.duration) {
                panic!("{e}\n{}", ctx());
            }
            if seed % 50 == 0 {
                let back: Schedule = schedule.to_string().parse().expect("round trip");
                assert_eq!(back, schedule, "{}", ctx());
            }
        }
        assert!(
            faults > 100_000,
            "schedules are not trivially empty: {faults}"
        );
    }

    #[test]
    fn no_node_faults_below_four_nodes() {
        let s = shape(3);
        let schedule = Nemesis::schedule(5, &everything_on(), &s);
        assert!(schedule.entries.iter().all(|e| matches!(
            e.fault(),
            Fault::MessageLoss { .. }
                | Fault::LatencySpike { .. }
                | Fault::StatusChange { .. }
                | Fault::EpochChange
        )));
    }
}
