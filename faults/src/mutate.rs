//! Schedule mutation for guided exploration: a schedule seen as groups (a fault and the
//! entries that heal it), and operators that add, remove or move a group, retarget or change
//! a fault, move an epoch change, stretch the epoch length, splice two schedules, or fork a
//! fresh suffix after a moment. Every result is checked against the fault budget and must
//! heal by the horizon; an operator that cannot produce such a child yields `None`.
//!
//! Deterministic: every choice comes from the caller's RNG, groups keep schedule order.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::Rng;

use crate::budget::{check, check_healed};
use crate::fault::Fault;
use crate::fault_kind::FaultKind;
use crate::knobs::Knobs;
use crate::nemesis::{Nemesis, PointWeights};
use crate::schedule::{Schedule, ScheduleEntry};
use crate::shape::{FailPointKind, Shape};

/// Epoch lengths a mutation may choose (ms), the nemesis knobs' range.
pub const EPOCH_MS: (u64, u64) = (3_000, 30_000);

/// Actions of an armed boolean fail point.
const IF_ACTIONS: [&str; 5] = ["return", "1*return", "3*return", "20%return", "50%return"];

/// One fault with the entries that heal it (a crash and its restart, an armed fail point with
/// its gate opening and clearing); the first entry opens the group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub entries: Vec<ScheduleEntry>,
}

impl Group {
    /// When the group starts: its first timed entry, or a triggered entry's `after`.
    pub fn start(&self) -> Duration {
        match self.entries.first() {
            Some(ScheduleEntry::Timed { at, .. }) => *at,
            Some(ScheduleEntry::Triggered { after, .. }) => *after,
            None => Duration::ZERO,
        }
    }

    fn shift(&mut self, delta_ms: i64) {
        let moved = |d: Duration| {
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            Duration::from_millis(u64::try_from(ms.saturating_add(delta_ms)).unwrap_or(0))
        };
        for e in &mut self.entries {
            match e {
                ScheduleEntry::Timed { at, .. } => *at = moved(*at),
                ScheduleEntry::Triggered { after, .. } => *after = moved(*after),
            }
        }
    }

    fn scale(&mut self, num: u64, den: u64) {
        let scaled = |d: Duration| {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(ms.saturating_mul(num) / den.max(1))
        };
        for e in &mut self.entries {
            match e {
                ScheduleEntry::Timed { at, .. } => *at = scaled(*at),
                ScheduleEntry::Triggered { after, .. } => *after = scaled(*after),
            }
        }
    }
}

/// The schedule's groups, in schedule order of their first entries.
pub fn groups(schedule: &Schedule) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut crashes: BTreeMap<String, usize> = BTreeMap::new();
    let mut torn: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
    let mut armed: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &schedule.entries {
        let ScheduleEntry::Timed { at, fault } = entry else {
            groups.push(Group {
                entries: vec![entry.clone()],
            });
            continue;
        };
        let join = match fault {
            Fault::DiskTornOnCrash { node } => {
                torn.insert(node.clone(), (groups.len(), *at));
                None
            }
            Fault::Crash { node } => {
                let with_torn = torn.remove(node).filter(|(_, t)| t == at).map(|(g, _)| g);
                crashes.insert(node.clone(), with_torn.unwrap_or(groups.len()));
                with_torn
            }
            Fault::Restart { node } => crashes.remove(node),
            Fault::FailPoint { point, .. } => {
                armed.insert(point.clone(), groups.len());
                None
            }
            Fault::OpenGate { point, .. } => armed.get(point).copied(),
            Fault::ClearFailPoint { point } => armed.remove(point),
            _ => None,
        };
        match join {
            Some(g) => groups[g].entries.push(entry.clone()),
            None => groups.push(Group {
                entries: vec![entry.clone()],
            }),
        }
    }
    groups
}

/// The schedule of `groups` (sorted).
pub fn from_groups(groups: &[Group]) -> Schedule {
    Schedule::new(groups.iter().flat_map(|g| g.entries.clone()).collect())
}

/// What a mutation may use besides the schedule: the system's shape (its `duration` the
/// horizon of the parent's knobs) and optional weights toward rarely reached points.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub shape: &'a Shape,
    pub weights: Option<&'a PointWeights>,
}

/// A schedule and the knobs it runs under.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub knobs: Knobs,
    pub schedule: Schedule,
}

/// The mutation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operator {
    AddFault,
    RemoveFault,
    MoveFault,
    Retarget,
    ChangeAction,
    MoveEpochChange,
    EpochLength,
    Splice,
    /// Redraws the committee churn probabilities (shard moves, membership changes).
    Churn,
    /// Redraws the committee churn from a moment on (a `reshuffle`): the committees before
    /// it stay, the later ones differ.
    Reshuffle,
}

impl Operator {
    pub const ALL: [Operator; 10] = [
        Operator::AddFault,
        Operator::RemoveFault,
        Operator::MoveFault,
        Operator::Retarget,
        Operator::ChangeAction,
        Operator::MoveEpochChange,
        Operator::EpochLength,
        Operator::Splice,
        Operator::Churn,
        Operator::Reshuffle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operator::AddFault => "add",
            Operator::RemoveFault => "remove",
            Operator::MoveFault => "move",
            Operator::Retarget => "retarget",
            Operator::ChangeAction => "action",
            Operator::MoveEpochChange => "epoch-change",
            Operator::EpochLength => "epoch-length",
            Operator::Splice => "splice",
            Operator::Churn => "churn",
            Operator::Reshuffle => "reshuffle",
        }
    }
}

/// The horizon of `knobs` given the parent's horizon under `parent` knobs (the chaos phase
/// lasts a whole number of epochs).
fn horizon(shape: &Shape, parent: &Knobs, knobs: &Knobs) -> Duration {
    let ms = u64::try_from(shape.duration.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(ms / parent.epoch_ms.max(1) * knobs.epoch_ms)
}

/// True when `schedule` keeps the budget and heals by `horizon`.
pub fn admissible(schedule: &Schedule, nodes: usize, horizon: Duration) -> bool {
    check(schedule, nodes).is_ok() && check_healed(schedule, horizon).is_ok()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Applies `op` to `parent`; `None` when it does not apply or its child breaks the budget.
/// `other` is the second parent of a splice.
pub fn mutate<R: Rng>(
    rng: &mut R,
    op: Operator,
    parent: &Candidate,
    other: Option<&Candidate>,
    cx: Context<'_>,
) -> Option<Candidate> {
    let mut knobs = parent.knobs.clone();
    let mut gs = groups(&parent.schedule);
    let horizon_ms = ms(cx.shape.duration);
    match op {
        Operator::AddFault => {
            let group = draw_group(rng, &knobs, cx)?;
            gs.push(group);
        }
        Operator::RemoveFault => {
            if gs.is_empty() {
                return None;
            }
            gs.remove(rng.random_range(0..gs.len()));
        }
        Operator::MoveFault => {
            if gs.is_empty() {
                return None;
            }
            let i = rng.random_range(0..gs.len());
            let delta = rng.random_range(-5_000..=5_000i64);
            gs[i].shift(delta);
        }
        Operator::Retarget => {
            let i = pick(rng, &gs, |g| {
                matches!(
                    g.entries.first(),
                    Some(ScheduleEntry::Triggered { .. })
                        | Some(ScheduleEntry::Timed {
                            fault: Fault::FailPoint { .. },
                            ..
                        })
                )
            })?;
            retarget(rng, &mut gs[i], cx)?;
        }
        Operator::ChangeAction => {
            let i = pick(rng, &gs, |g| {
                matches!(
                    g.entries.first(),
                    Some(ScheduleEntry::Triggered { .. })
                        | Some(ScheduleEntry::Timed {
                            fault: Fault::FailPoint { .. },
                            ..
                        })
                )
            })?;
            change_action(rng, &mut gs[i], cx)?;
        }
        Operator::MoveEpochChange => {
            let at = Duration::from_millis(rng.random_range(0..horizon_ms.max(1)));
            let existing = pick(rng, &gs, |g| {
                matches!(
                    g.entries.first(),
                    Some(ScheduleEntry::Timed {
                        fault: Fault::EpochChange,
                        ..
                    })
                )
            });
            match existing {
                Some(i) if rng.random_bool(0.5) => {
                    gs[i].entries[0] = ScheduleEntry::Timed {
                        at,
                        fault: Fault::EpochChange,
                    }
                }
                _ => gs.push(Group {
                    entries: vec![ScheduleEntry::Timed {
                        at,
                        fault: Fault::EpochChange,
                    }],
                }),
            }
        }
        Operator::EpochLength => {
            let old = knobs.epoch_ms.max(1);
            let factor = rng.random_range(0.6..1.6f64);
            let new = ((old as f64 * factor) as u64).clamp(EPOCH_MS.0, EPOCH_MS.1);
            if new == old {
                return None;
            }
            knobs.epoch_ms = new;
            for g in &mut gs {
                g.scale(new, old);
            }
        }
        Operator::Churn => match rng.random_range(0..3) {
            0 => knobs.churn_move = quantize(rng.random_range(0.2..1.0)),
            1 => knobs.churn_membership = quantize(rng.random_range(0.1..0.9)),
            _ => knobs.churn_return = quantize(rng.random_range(0.0..0.8)),
        },
        Operator::Reshuffle => {
            let at = Duration::from_millis(rng.random_range(0..horizon_ms.max(1)));
            reshuffle(rng, &mut gs, at);
            if !churns(&knobs) {
                // Nothing to redraw: the child also moves shards.
                knobs.churn_move = quantize(rng.random_range(0.2..1.0));
            }
        }
        Operator::Splice => {
            let other = other?;
            let cut = Duration::from_millis(rng.random_range(0..horizon_ms.max(1)));
            gs.retain(|g| g.start() < cut);
            gs.extend(
                groups(&other.schedule)
                    .into_iter()
                    .filter(|g| g.start() >= cut),
            );
        }
    }
    let schedule = from_groups(&gs);
    let horizon = horizon(cx.shape, &parent.knobs, &knobs);
    (schedule != parent.schedule || knobs != parent.knobs)
        .then_some(())
        .filter(|()| admissible(&schedule, cx.shape.nodes.len(), horizon))
        .map(|()| Candidate { knobs, schedule })
}

/// The parent up to `at` (every group that started before it, with its heals) and the groups
/// of `fresh` that start at or after `at`, each kept only if the budget still holds. The
/// child runs exactly as the parent until `at`.
pub fn fork(parent: &Schedule, fresh: &Schedule, at: Duration, nodes: usize) -> Schedule {
    let mut gs: Vec<Group> = groups(parent)
        .into_iter()
        .filter(|g| g.start() < at)
        .collect();
    for g in groups(fresh).into_iter().filter(|g| g.start() >= at) {
        gs.push(g);
        if check(&from_groups(&gs), nodes).is_err() {
            gs.pop();
        }
    }
    from_groups(&gs)
}

/// Moves an existing `reshuffle` to `at` with a new seed half the time, else adds one at `at`.
pub fn reshuffle<R: Rng>(rng: &mut R, gs: &mut Vec<Group>, at: Duration) {
    let entry = ScheduleEntry::Timed {
        at,
        fault: Fault::Reshuffle { seed: rng.random() },
    };
    let existing = pick(rng, gs, |g| {
        matches!(
            g.entries.first(),
            Some(ScheduleEntry::Timed {
                fault: Fault::Reshuffle { .. },
                ..
            })
        )
    });
    match existing {
        Some(i) if rng.random_bool(0.5) => gs[i].entries[0] = entry,
        _ => gs.push(Group {
            entries: vec![entry],
        }),
    }
}

/// A knob value with three decimals, as the nemesis draws them.
fn quantize(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// True when the knobs move shards or change membership at epoch changes.
pub fn churns(knobs: &Knobs) -> bool {
    knobs.churn_move > 0.0 || knobs.churn_membership > 0.0
}

/// The index of a random group that `keep` accepts.
fn pick<R: Rng>(rng: &mut R, gs: &[Group], keep: impl Fn(&Group) -> bool) -> Option<usize> {
    let candidates: Vec<usize> = (0..gs.len()).filter(|i| keep(&gs[*i])).collect();
    candidates.choose(rng).copied()
}

/// One group of a fresh nemesis draw, with one kind (maybe a new one) switched on.
fn draw_group<R: Rng>(rng: &mut R, knobs: &Knobs, cx: Context<'_>) -> Option<Group> {
    let mut knobs = knobs.clone();
    let kind = *FaultKind::ALL.choose(rng)?;
    let knob = knobs.kind_mut(kind);
    knob.enabled = true;
    knob.rate = knob.rate.max(3.0);
    let schedule = Nemesis::schedule_weighted(rng.random(), &knobs, cx.shape, cx.weights);
    let gs = groups(&schedule);
    gs.choose(rng).cloned()
}

fn point_kind(shape: &Shape, point: &str) -> Option<FailPointKind> {
    shape
        .fail_points
        .iter()
        .find(|p| p.name == point)
        .map(|p| p.kind)
}

/// A point for a retargeted fault: half the time by the weights (rare pairs first) among
/// the points `keep` accepts, else uniformly among them.
fn new_point<R: Rng>(
    rng: &mut R,
    cx: Context<'_>,
    keep: impl Fn(&str) -> bool,
) -> Option<(Option<String>, String)> {
    if let Some(w) = cx.weights {
        if rng.random_bool(0.5) {
            if let Some((node, point)) = w.choose_where(rng, |_, p| keep(p)) {
                return Some((Some(node.to_string()), point.to_string()));
            }
        }
    }
    let points: Vec<&str> = cx
        .shape
        .fail_points
        .iter()
        .map(|p| p.name.as_str())
        .filter(|p| keep(p))
        .collect();
    points.choose(rng).map(|p| (None, p.to_string()))
}

fn retarget<R: Rng>(rng: &mut R, group: &mut Group, cx: Context<'_>) -> Option<()> {
    match group.entries.first_mut()? {
        ScheduleEntry::Triggered { point, node, .. } => {
            let (steered, p) = new_point(rng, cx, |_| true)?;
            *point = p;
            *node = match steered {
                Some(n) => n,
                None => cx.shape.nodes.choose(rng)?.clone(),
            };
            Some(())
        }
        ScheduleEntry::Timed {
            fault: Fault::FailPoint { point, .. },
            ..
        } => {
            let kind = point_kind(cx.shape, point)?;
            let old = point.clone();
            let (_, p) = new_point(rng, cx, |p| point_kind(cx.shape, p) == Some(kind))?;
            for e in &mut group.entries {
                if let ScheduleEntry::Timed { fault, .. } = e {
                    match fault {
                        Fault::FailPoint { point, .. }
                        | Fault::OpenGate { point, .. }
                        | Fault::ClearFailPoint { point }
                            if *point == old =>
                        {
                            *point = p.clone()
                        }
                        _ => {}
                    }
                }
            }
            Some(())
        }
        _ => None,
    }
}

fn change_action<R: Rng>(rng: &mut R, group: &mut Group, cx: Context<'_>) -> Option<()> {
    let first = group.entries.first_mut()?;
    if let ScheduleEntry::Triggered { fault, node, .. } = first {
        *fault = match fault {
            Fault::EpochChange => Fault::StatusChange {
                node: node.clone(),
                status: cx.shape.statuses.choose(rng)?.clone(),
            },
            _ => Fault::EpochChange,
        };
        return Some(());
    }
    let ScheduleEntry::Timed {
        at,
        fault:
            Fault::FailPoint {
                point,
                action,
                selector_node,
            },
    } = first
    else {
        return None;
    };
    let (at, point, anyone) = (*at, point.clone(), selector_node.is_none());
    let once = |a: String| {
        if anyone && !a.contains('*') && !a.contains('%') {
            format!("1*{a}")
        } else {
            a
        }
    };
    match point_kind(cx.shape, &point)? {
        FailPointKind::If => {
            *action = once(IF_ACTIONS.choose(rng)?.to_string());
        }
        FailPointKind::Crash => {
            *action = format!("1*restart({})", rng.random_range(500..=8000u64));
        }
        FailPointKind::Async => {
            let paused = action.contains("pause");
            let clear_at = group.entries.iter().find_map(|e| match e {
                ScheduleEntry::Timed {
                    at,
                    fault: Fault::ClearFailPoint { .. },
                } => Some(*at),
                _ => None,
            })?;
            let selector = match &group.entries[0] {
                ScheduleEntry::Timed {
                    fault: Fault::FailPoint { selector_node, .. },
                    ..
                } => selector_node.clone(),
                _ => None,
            };
            let new_action = if paused {
                group.entries.retain(|e| {
                    !matches!(
                        e,
                        ScheduleEntry::Timed {
                            fault: Fault::OpenGate { .. },
                            ..
                        }
                    )
                });
                once(format!("delay({})", rng.random_range(10..=2000u64)))
            } else {
                let gate = ScheduleEntry::Timed {
                    at: clear_at,
                    fault: Fault::OpenGate {
                        node: selector.clone(),
                        point: point.clone(),
                    },
                };
                let clear = group.entries.len() - 1;
                group.entries.insert(clear, gate);
                once("pause".to_string())
            };
            group.entries[0] = ScheduleEntry::Timed {
                at,
                fault: Fault::FailPoint {
                    selector_node: selector,
                    point,
                    action: new_action,
                },
            };
        }
        FailPointKind::Arg | FailPointKind::Probe => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::tests::shape;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn busy_knobs() -> Knobs {
        let mut knobs = Knobs::quiet();
        for kind in FaultKind::ALL {
            knobs.kind_mut(kind).enabled = true;
            knobs.kind_mut(kind).rate = 4.0;
        }
        knobs
    }

    #[test]
    fn groups_round_trip_and_keep_heals_with_their_fault() {
        let s = shape(5);
        for seed in 0..200 {
            let schedule = Nemesis::schedule(seed, &busy_knobs(), &s);
            let gs = groups(&schedule);
            assert_eq!(from_groups(&gs), schedule, "seed {seed}");
            for g in &gs {
                // Removing any one group leaves a schedule that still heals.
                let rest: Vec<Group> = gs.iter().filter(|h| *h != g).cloned().collect();
                let rest = from_groups(&rest);
                assert!(
                    check_healed(&rest, s.duration).is_ok(),
                    "seed {seed}:\n{rest}"
                );
            }
        }
    }

    #[test]
    fn every_mutation_respects_the_budget_and_heals() {
        let s = shape(5);
        let weights = PointWeights::new(vec![
            ("n1".into(), "sync.recovery.start".into(), 0.5),
            ("n2".into(), "db.put.before".into(), 0.01),
        ]);
        let mut applied: BTreeMap<Operator, usize> = BTreeMap::new();
        for seed in 0..300u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let knobs = Knobs::draw(seed, &s);
            let parent = Candidate {
                schedule: Nemesis::schedule(seed, &knobs, &s),
                knobs,
            };
            let other_knobs = busy_knobs();
            let other = Candidate {
                schedule: Nemesis::schedule(seed + 1, &other_knobs, &s),
                knobs: other_knobs,
            };
            let weights = (seed % 2 == 0).then_some(&weights);
            let cx = Context { shape: &s, weights };
            for op in Operator::ALL {
                let Some(child) = mutate(&mut rng, op, &parent, Some(&other), cx) else {
                    continue;
                };
                *applied.entry(op).or_default() += 1;
                let horizon = horizon(&s, &parent.knobs, &child.knobs);
                assert!(
                    check(&child.schedule, 5).is_ok(),
                    "{op:?} seed {seed}:\n{}",
                    child.schedule
                );
                assert!(check_healed(&child.schedule, horizon).is_ok());
                let text = child.schedule.to_string();
                assert_eq!(
                    text.parse::<Schedule>().expect("round trip"),
                    child.schedule
                );
            }
        }
        for op in Operator::ALL {
            assert!(
                applied.get(&op).copied().unwrap_or(0) > 10,
                "{op:?}: {applied:?}"
            );
        }
    }

    #[test]
    fn a_fork_keeps_the_prefix_and_takes_a_fresh_suffix() {
        let s = shape(5);
        let knobs = busy_knobs();
        let parent = Nemesis::schedule(1, &knobs, &s);
        let fresh = Nemesis::schedule(2, &knobs, &s);
        let at = Duration::from_secs(40);
        let child = fork(&parent, &fresh, at, 5);
        assert!(check(&child, 5).is_ok() && check_healed(&child, s.duration).is_ok());
        let before = |sch: &Schedule| -> Vec<String> {
            sch.entries
                .iter()
                .filter(|e| e.at().is_some_and(|t| t < at))
                .map(|e| e.to_string())
                .collect()
        };
        assert_eq!(before(&child), before(&parent));
        assert_ne!(child, parent);
    }

    #[test]
    fn weighted_triggers_favour_heavy_pairs_and_unweighted_draws_are_unchanged() {
        let s = shape(5);
        let mut knobs = Knobs::quiet();
        knobs.triggered.enabled = true;
        knobs.triggered.rate = 6.0;
        for seed in 0..20 {
            assert_eq!(
                Nemesis::schedule_weighted(seed, &knobs, &s, None),
                Nemesis::schedule(seed, &knobs, &s)
            );
        }
        let weights = PointWeights::new(vec![("n3".into(), "sync.recovery.start".into(), 1.0)]);
        let (mut steered, mut all) = (0, 0);
        for seed in 0..50 {
            let schedule = Nemesis::schedule_weighted(seed, &knobs, &s, Some(&weights));
            for e in &schedule.entries {
                if let ScheduleEntry::Triggered { point, node, .. } = e {
                    all += 1;
                    steered += usize::from(node == "n3" && point == "sync.recovery.start");
                }
            }
        }
        assert!(steered * 3 > all, "{steered} of {all}");
    }
}
