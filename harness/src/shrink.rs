//! Shrinking a failing run: delta debugging over the fault schedule, then shorter and later
//! faults, a smaller workload and cluster history, and churn switched off, keeping a change
//! only when a replay still fails with the same invariant. The result is 1-minimal with
//! respect to the schedule's entries and carries explicit knobs and schedule, so it replays
//! without drawing anything from the seed.

use crate::oracle::{Invariant, Violation};
use crate::run::run;
use crate::run_spec::RunSpec;
use shardstorm_faults::{Fault, Schedule, ScheduleEntry};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Replays a shrink may spend before it returns the best spec found so far.
pub const DEFAULT_MAX_REPLAYS: usize = 400;

/// Durations are not shortened below this (a shorter fault is as good as none).
const MIN_DURATION: Duration = Duration::from_millis(50);

/// How many later positions are tried per timed entry.
const MOVE_ATTEMPTS: u32 = 2;

/// Limits of one shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShrinkConfig {
    /// Stop after this many replays (each one `run()`), returning the best spec so far.
    pub max_replays: usize,
}

impl Default for ShrinkConfig {
    fn default() -> Self {
        Self {
            max_replays: DEFAULT_MAX_REPLAYS,
        }
    }
}

/// The minimized run.
#[derive(Clone, Debug)]
pub struct ShrinkOutcome {
    /// The smallest failing spec found, with explicit knobs and schedule.
    pub spec: RunSpec,
    /// The invariant every kept replay failed with.
    pub result_invariant: Invariant,
    /// The violation of the last replay of `spec`.
    pub violation: Violation,
    /// Replays run, the first (unshrunk) run included.
    pub replays: usize,
    /// Schedule entries before and after shrinking.
    pub original_faults: usize,
    pub final_faults: usize,
    /// True when the final check proved `spec` 1-minimal; false when the replay budget ran out.
    pub minimal: bool,
}

/// Why a spec could not be shrunk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShrinkError {
    /// The run passes: there is nothing to shrink.
    #[error("seed {seed} does not fail: nothing to shrink")]
    DoesNotFail { seed: u64 },
    /// The harness panicked on the first run.
    #[error("seed {seed}: the harness panicked: {message}")]
    Panicked { seed: u64, message: String },
    /// The run fails, but not with the invariant asked for.
    #[error("seed {seed} fails with {found}, not with the requested {wanted}")]
    OtherInvariant {
        seed: u64,
        wanted: Invariant,
        found: Invariant,
    },
}

/// Shrinks a failing run with the default replay budget; `progress` gets the replay count
/// after every replay.
pub fn shrink(
    spec: &RunSpec,
    invariant: Option<Invariant>,
    progress: &mut dyn FnMut(usize),
) -> Result<ShrinkOutcome, ShrinkError> {
    shrink_with(spec, invariant, &ShrinkConfig::default(), progress)
}

/// Shrinks a failing run within `config`'s limits.
pub fn shrink_with(
    spec: &RunSpec,
    invariant: Option<Invariant>,
    config: &ShrinkConfig,
    progress: &mut dyn FnMut(usize),
) -> Result<ShrinkOutcome, ShrinkError> {
    let explicit = explicit(spec);
    let mut shrinker = Shrinker::new(config, progress);
    let first = match shrinker.replay(&explicit) {
        Replay::Failed(v) => v,
        Replay::Passed => return Err(ShrinkError::DoesNotFail { seed: spec.seed }),
        Replay::Panicked(message) => {
            return Err(ShrinkError::Panicked {
                seed: spec.seed,
                message,
            })
        }
    };
    let target = invariant.unwrap_or(first.invariant);
    if first.invariant != target {
        return Err(ShrinkError::OtherInvariant {
            seed: spec.seed,
            wanted: target,
            found: first.invariant,
        });
    }
    shrinker.start(explicit, target, first);
    shrinker.reduce();
    Ok(shrinker.finish())
}

/// The spec with its knobs and schedule resolved, so replays never redraw them. The schedule
/// goes through its text form, so the spec is exactly what a run file replays.
pub fn explicit(spec: &RunSpec) -> RunSpec {
    let knobs = spec.resolved_knobs();
    let drawn = spec.resolved_schedule(&knobs);
    let schedule = drawn.to_string().parse().unwrap_or(drawn);
    RunSpec {
        knobs: Some(knobs),
        schedule: Some(schedule),
        ..spec.clone()
    }
}

/// The schedule of an explicit spec.
fn schedule_of(spec: &RunSpec) -> &[ScheduleEntry] {
    spec.schedule.as_ref().map_or(&[], |s| s.entries.as_slice())
}

/// `spec` with `entries` as its schedule.
fn with_entries(spec: &RunSpec, entries: Vec<ScheduleEntry>) -> RunSpec {
    RunSpec {
        schedule: Some(Schedule::new(entries)),
        ..spec.clone()
    }
}

/// Everything of a spec that a replay depends on, as text (the replay cache's key).
fn cache_key(spec: &RunSpec) -> String {
    let knobs = spec
        .knobs
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let schedule = spec
        .schedule
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let bugs: Vec<&str> = spec.bugs.iter().map(|b| b.name()).collect();
    format!(
        "{} {} {} {} {} {} {bugs:?}\n{knobs}\n{schedule}",
        spec.seed, spec.nodes, spec.shards, spec.epochs, spec.blobs, spec.tick_ms
    )
}

/// What one replay did.
#[derive(Clone, Debug)]
enum Replay {
    Passed,
    Failed(Violation),
    /// The harness itself panicked (not a node: host panics are `NodePanic` violations).
    Panicked(String),
}

/// The state of one shrink: the best failing spec so far and the replay budget.
struct Shrinker<'a> {
    max_replays: usize,
    replays: usize,
    progress: &'a mut dyn FnMut(usize),
    cache: BTreeMap<String, Replay>,
    target: Option<Invariant>,
    best: Option<(RunSpec, Violation)>,
    original_faults: usize,
}

impl<'a> Shrinker<'a> {
    fn new(config: &ShrinkConfig, progress: &'a mut dyn FnMut(usize)) -> Self {
        Self {
            max_replays: config.max_replays.max(1),
            replays: 0,
            progress,
            cache: BTreeMap::new(),
            target: None,
            best: None,
            original_faults: 0,
        }
    }

    fn start(&mut self, spec: RunSpec, target: Invariant, violation: Violation) {
        self.original_faults = schedule_of(&spec).len();
        self.target = Some(target);
        self.best = Some((spec, violation));
    }

    fn exhausted(&self) -> bool {
        self.replays >= self.max_replays
    }

    fn best(&self) -> &RunSpec {
        match &self.best {
            Some((spec, _)) => spec,
            None => unreachable!("the shrinker starts with a failing spec"),
        }
    }

    /// Runs `spec` once (or answers from the cache).
    fn replay(&mut self, spec: &RunSpec) -> Replay {
        let key = cache_key(spec);
        if let Some(known) = self.cache.get(&key) {
            return known.clone();
        }
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| run(spec))) {
            Ok(result) => result.violation.map_or(Replay::Passed, Replay::Failed),
            Err(panic) => Replay::Panicked(crate::panic_message(panic.as_ref())),
        };
        self.replays += 1;
        (self.progress)(self.replays);
        self.cache.insert(key, outcome.clone());
        outcome
    }

    /// Whether `candidate` still fails with the target invariant; adopts it as the best spec
    /// if so. False without a replay once the budget is spent.
    fn try_keep(&mut self, candidate: RunSpec) -> bool {
        if self.exhausted() && !self.cache.contains_key(&cache_key(&candidate)) {
            return false;
        }
        match self.replay(&candidate) {
            Replay::Failed(v) if Some(v.invariant) == self.target => {
                self.best = Some((candidate, v));
                true
            }
            _ => false,
        }
    }

    /// Every reduction pass (the 1-minimality check follows in `finish`).
    fn reduce(&mut self) {
        self.ddmin();
        // Smaller runs first: every later replay gets cheaper.
        self.fewer_epochs();
        self.fewer_blobs();
        self.churn_off();
        self.shorten_durations();
        self.shorten_delays();
        self.shorten_pauses();
        self.move_later();
    }

    /// Delta debugging over the schedule's entries: remove chunks of halving size, down to
    /// single entries.
    fn ddmin(&mut self) {
        let mut chunks = 2usize;
        loop {
            let entries = schedule_of(self.best()).to_vec();
            if entries.len() < 2 || self.exhausted() {
                if entries.len() == 1 {
                    self.try_keep(with_entries(self.best(), Vec::new()));
                }
                return;
            }
            chunks = chunks.min(entries.len());
            if self.remove_some_chunk(&entries, chunks) {
                chunks = chunks.saturating_sub(1).max(2);
            } else if chunks < entries.len() {
                chunks = (chunks * 2).min(entries.len());
            } else {
                return;
            }
        }
    }

    /// Tries removing each of `chunks` consecutive chunks; true once one removal still fails.
    fn remove_some_chunk(&mut self, entries: &[ScheduleEntry], chunks: usize) -> bool {
        let size = entries.len().div_ceil(chunks);
        for start in (0..entries.len()).step_by(size) {
            let rest: Vec<ScheduleEntry> = entries
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < start || *i >= start + size)
                .map(|(_, e)| e.clone())
                .collect();
            if self.try_keep(with_entries(self.best(), rest)) {
                return true;
            }
        }
        false
    }

    /// Halves each fault's duration while the run still fails.
    fn shorten_durations(&mut self) {
        for index in 0..schedule_of(self.best()).len() {
            while !self.exhausted() {
                let mut entries = schedule_of(self.best()).to_vec();
                let Some(d) = entry_fault_mut(&mut entries[index]).duration_mut() else {
                    break;
                };
                if *d < MIN_DURATION * 2 {
                    break;
                }
                *d = whole_ms(*d / 2);
                if !self.try_keep(with_entries(self.best(), entries)) {
                    break;
                }
            }
        }
    }

    /// Halves the `delay(ms)` of fail-point actions while the run still fails.
    fn shorten_delays(&mut self) {
        for index in 0..schedule_of(self.best()).len() {
            while !self.exhausted() {
                let mut entries = schedule_of(self.best()).to_vec();
                let Fault::FailPoint { action, .. } = entry_fault_mut(&mut entries[index]) else {
                    break;
                };
                let Some(shorter) = halve_delays(action) else {
                    break;
                };
                *action = shorter;
                if !self.try_keep(with_entries(self.best(), entries)) {
                    break;
                }
            }
        }
    }

    /// Shortens pauses: moves each timed `open-gate` earlier, halfway towards the time its fail
    /// point was armed, while the run still fails.
    fn shorten_pauses(&mut self) {
        let gates: Vec<ScheduleEntry> = schedule_of(self.best())
            .iter()
            .filter(|e| e.at().is_some() && matches!(e.fault(), Fault::OpenGate { .. }))
            .cloned()
            .collect();
        for gate in gates {
            let mut current = gate;
            while !self.exhausted() {
                let Some(earlier) = earlier_gate(schedule_of(self.best()), &current) else {
                    break;
                };
                let Some(index) = schedule_of(self.best()).iter().position(|e| *e == current)
                else {
                    break;
                };
                let mut entries = schedule_of(self.best()).to_vec();
                entries[index] = earlier.clone();
                if !self.try_keep(with_entries(self.best(), entries)) {
                    break;
                }
                current = earlier;
            }
        }
    }

    /// Moves each timed entry later, towards the next entry's time (the last one towards the
    /// end of the chaos phase), keeping the order of the schedule.
    fn move_later(&mut self) {
        let len = schedule_of(self.best()).len();
        for index in (0..len).rev() {
            for attempt in 0..MOVE_ATTEMPTS {
                if self.exhausted() || !self.move_entry(index, attempt) {
                    break;
                }
            }
        }
    }

    /// One attempt to move entry `index` later: by the whole gap to its successor first, then
    /// by halves of it. True if the move was kept.
    fn move_entry(&mut self, index: usize, attempt: u32) -> bool {
        let spec = self.best().clone();
        let entries = schedule_of(&spec);
        let Some(at) = entries[index].at() else {
            return false;
        };
        let limit = match entries.get(index + 1).and_then(ScheduleEntry::at) {
            Some(next) => next,
            None => latest_start(&spec, &entries[index]),
        };
        let gap = limit.saturating_sub(at);
        let step = whole_ms(gap / 2u32.pow(attempt + 1).max(1));
        if step < MIN_DURATION {
            return false;
        }
        let mut moved = entries.to_vec();
        if let ScheduleEntry::Timed { at: t, .. } = &mut moved[index] {
            *t = at + step;
        }
        self.try_keep(with_entries(&spec, moved))
    }

    /// Halves the number of blobs while the run still fails.
    fn fewer_blobs(&mut self) {
        while self.best().blobs > 1 && !self.exhausted() {
            let candidate = RunSpec {
                blobs: self.best().blobs / 2,
                ..self.best().clone()
            };
            if !self.try_keep(candidate) {
                break;
            }
        }
    }

    /// Removes epochs one at a time while the run still fails.
    fn fewer_epochs(&mut self) {
        while self.best().epochs > 1 && !self.exhausted() {
            let candidate = RunSpec {
                epochs: self.best().epochs - 1,
                ..self.best().clone()
            };
            if !self.try_keep(candidate) {
                break;
            }
        }
    }

    /// Switches off the knobs that only drive committee churn, together and then one by one.
    fn churn_off(&mut self) {
        let edits: [fn(&mut shardstorm_faults::Knobs); 3] = [
            |k| {
                k.churn_move = 0.0;
                k.churn_membership = 0.0;
            },
            |k| k.churn_move = 0.0,
            |k| k.churn_membership = 0.0,
        ];
        for edit in edits {
            let mut candidate = self.best().clone();
            let Some(knobs) = candidate.knobs.as_mut() else {
                return;
            };
            let before = knobs.clone();
            edit(knobs);
            if *knobs != before {
                self.try_keep(candidate);
            }
        }
    }

    /// Removes single entries until none can go: afterwards removing any remaining entry makes
    /// the run pass or fail differently. False if the budget ran out first.
    fn make_one_minimal(&mut self) -> bool {
        'restart: loop {
            let entries = schedule_of(self.best()).to_vec();
            for index in 0..entries.len() {
                if self.exhausted()
                    && !self
                        .cache
                        .contains_key(&cache_key(&without(self.best(), index)))
                {
                    return false;
                }
                if self.try_keep(without(self.best(), index)) {
                    continue 'restart;
                }
            }
            return true;
        }
    }

    fn finish(mut self) -> ShrinkOutcome {
        let minimal = self.make_one_minimal();
        let (spec, violation) = match self.best.take() {
            Some(best) => best,
            None => unreachable!("the shrinker starts with a failing spec"),
        };
        ShrinkOutcome {
            result_invariant: violation.invariant,
            final_faults: schedule_of(&spec).len(),
            original_faults: self.original_faults,
            replays: self.replays,
            minimal,
            spec,
            violation,
        }
    }
}

/// `spec` without schedule entry `index`.
fn without(spec: &RunSpec, index: usize) -> RunSpec {
    let mut entries = schedule_of(spec).to_vec();
    entries.remove(index);
    with_entries(spec, entries)
}

/// `action` with every `delay(ms)` halved, or `None` if it has no delay worth halving.
fn halve_delays(action: &str) -> Option<String> {
    let mut out = String::with_capacity(action.len());
    let mut rest = action;
    let mut changed = false;
    while let Some(pos) = rest.find("delay(") {
        let (head, tail) = rest.split_at(pos + "delay(".len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        match tail[..digits].parse::<u64>() {
            Ok(ms) if ms >= 2 * MIN_DURATION.as_millis() as u64 => {
                out.push_str(&(ms / 2).to_string());
                changed = true;
            }
            _ => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `gate` (a timed `open-gate`) moved halfway towards the latest earlier arming of its fail
/// point (or time 0), or `None` when the gap is already short.
fn earlier_gate(entries: &[ScheduleEntry], gate: &ScheduleEntry) -> Option<ScheduleEntry> {
    let (ScheduleEntry::Timed { at, fault }, Fault::OpenGate { point, .. }) = (gate, gate.fault())
    else {
        return None;
    };
    let armed = entries
        .iter()
        .filter_map(|e| match (e.at(), e.fault()) {
            (Some(t), Fault::FailPoint { point: p, .. }) if p == point && t <= *at => Some(t),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    let step = whole_ms(at.saturating_sub(armed) / 2);
    (step >= MIN_DURATION).then(|| ScheduleEntry::Timed {
        at: *at - step,
        fault: fault.clone(),
    })
}

/// The fault of an entry, to edit.
fn entry_fault_mut(entry: &mut ScheduleEntry) -> &mut Fault {
    match entry {
        ScheduleEntry::Timed { fault, .. } | ScheduleEntry::Triggered { fault, .. } => fault,
    }
}

/// The latest start of the last timed entry: it must still heal before the chaos phase ends.
fn latest_start(spec: &RunSpec, entry: &ScheduleEntry) -> Duration {
    let knobs = spec.resolved_knobs();
    let end = spec.chaos_duration(&knobs);
    end.saturating_sub(entry.fault().duration().unwrap_or_default())
}

/// Truncates to whole milliseconds (the schedule text's precision).
fn whole_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardstorm_node::Bug;

    /// A spec in which a joining node's metadata recovery is held at `sync.metadata.pause`
    /// while lag detection moves it to `RecoveryCatchUp`; bug C then flips it back to
    /// `Active`. Plus faults that have nothing to do with it.
    fn clobber_spec() -> RunSpec {
        static SPEC: std::sync::OnceLock<RunSpec> = std::sync::OnceLock::new();
        SPEC.get_or_init(|| {
            (0..60)
                .map(clobber_spec_for)
                .find(|spec| {
                    run(spec).violation.map(|v| v.invariant) == Some(Invariant::MetadataCompletion)
                })
                .expect("some seed of the clobber scenario fails with metadata-completion")
        })
        .clone()
    }

    fn clobber_spec_for(seed: u64) -> RunSpec {
        let mut spec = RunSpec::standard(seed);
        spec.epochs = 4;
        spec.blobs = 16;
        let mut knobs = shardstorm_faults::Knobs::quiet();
        knobs.epoch_ms = 6_000;
        knobs.churn_membership = 1.0;
        knobs.churn_move = 0.3;
        spec.knobs = Some(knobs);
        let mut text = String::from("0.000s failpoint * sync.metadata.pause pause\n");
        for i in 0..spec.nodes {
            text.push_str(&format!(
                "at sync.metadata.pause@n{i} status n{i} RecoveryCatchUp\n"
            ));
        }
        text.push_str("2.000s latency 80ms for 3.000s\n4.000s partition n0 n1 for 2.000s\n");
        spec.schedule = Some(text.parse().expect("schedule parses"));
        spec.bugs.insert(Bug::StaleStatusClobber);
        spec
    }

    #[test]
    fn delays_halve_and_gates_move_towards_their_arming() {
        assert_eq!(
            halve_delays("delay(400)->2*delay(1000)").as_deref(),
            Some("delay(200)->2*delay(500)")
        );
        assert_eq!(halve_delays("delay(60)"), None);
        assert_eq!(halve_delays("pause"), None);
        let s: Schedule = "2.000s failpoint n1 p pause\n10.000s open-gate n1 p\n"
            .parse()
            .expect("parses");
        let moved = earlier_gate(&s.entries, &s.entries[1]).expect("moves");
        assert_eq!(moved.to_string(), "6.000s open-gate n1 p");
        let close: Schedule = "2.000s failpoint n1 p pause\n2.080s open-gate n1 p\n"
            .parse()
            .expect("parses");
        assert_eq!(earlier_gate(&close.entries, &close.entries[1]), None);
    }

    /// Replays `spec` without each entry in turn: every one must pass or fail differently.
    fn assert_one_minimal(spec: &RunSpec, invariant: Invariant) {
        for index in 0..schedule_of(spec).len() {
            let smaller = without(spec, index);
            let verdict = run(&smaller).violation.map(|v| v.invariant);
            assert_ne!(
                verdict,
                Some(invariant),
                "entry {index} is not needed:\n{}",
                smaller.schedule.unwrap_or_default()
            );
        }
    }

    #[test]
    fn shrinks_a_status_clobber_to_a_one_minimal_schedule() {
        let spec = clobber_spec();
        let mut calls = 0;
        let outcome = shrink(&spec, None, &mut |n| calls = n).expect("the spec fails");
        let schedule = outcome.spec.schedule.clone().expect("explicit schedule");
        eprintln!(
            "{} replays, {} -> {} faults:\n{schedule}",
            outcome.replays, outcome.original_faults, outcome.final_faults
        );
        assert_eq!(outcome.result_invariant, Invariant::MetadataCompletion);
        assert!(outcome.minimal);
        assert_eq!(calls, outcome.replays);
        assert_eq!(
            (outcome.original_faults, outcome.final_faults),
            (8, schedule.len())
        );
        assert!(outcome.final_faults <= 2, "{schedule}");
        assert!(outcome.spec.knobs.is_some());
        assert!(outcome.spec.blobs < spec.blobs && outcome.spec.epochs < spec.epochs);
        let replay = run(&outcome.spec)
            .violation
            .expect("the shrunk spec still fails");
        assert_eq!(replay.invariant, Invariant::MetadataCompletion);
        assert_one_minimal(&outcome.spec, Invariant::MetadataCompletion);
    }

    #[test]
    fn a_passing_spec_does_not_shrink() {
        let mut spec = clobber_spec();
        spec.bugs.clear();
        let err = shrink(&spec, None, &mut |_| {}).expect_err("passes");
        assert_eq!(err, ShrinkError::DoesNotFail { seed: spec.seed });
        let wrong = shrink(&clobber_spec(), Some(Invariant::Liveness), &mut |_| {})
            .expect_err("other invariant");
        assert!(
            matches!(
                wrong,
                ShrinkError::OtherInvariant {
                    found: Invariant::MetadataCompletion,
                    ..
                }
            ),
            "{wrong}"
        );
    }

    #[test]
    fn a_spent_budget_returns_the_best_spec_so_far() {
        let config = ShrinkConfig { max_replays: 3 };
        let outcome = shrink_with(&clobber_spec(), None, &config, &mut |_| {}).expect("fails");
        assert_eq!(outcome.replays, 3);
        assert!(!outcome.minimal);
        assert_eq!(outcome.result_invariant, Invariant::MetadataCompletion);
        assert!(outcome.final_faults <= outcome.original_faults);
    }

    /// Shrink timing on a swarm seed: `SHRINK_SEED=21 SHRINK_BUGS=stale-status-clobber`.
    #[test]
    #[ignore]
    fn shrink_a_swarm_seed() {
        let seed = std::env::var("SHRINK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(21);
        let mut spec = RunSpec::standard(seed);
        for name in std::env::var("SHRINK_BUGS")
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
        {
            spec.bugs.insert(name.parse().expect("a catalogue bug"));
        }
        let t = std::time::Instant::now();
        let outcome = shrink(&spec, None, &mut |n| {
            if n % 25 == 0 {
                eprintln!("{n} replays, {:?}", t.elapsed());
            }
        });
        let outcome = outcome.expect("the seed fails");
        eprintln!(
            "{}: {} replays in {:?}, {} -> {} faults, blobs {} epochs {} minimal {}\n{}{}",
            outcome.result_invariant,
            outcome.replays,
            t.elapsed(),
            outcome.original_faults,
            outcome.final_faults,
            outcome.spec.blobs,
            outcome.spec.epochs,
            outcome.minimal,
            outcome.spec.knobs.clone().unwrap_or_default(),
            outcome.spec.schedule.clone().unwrap_or_default()
        );
    }
}
