//! Coverage-guided exploration (`explore --guided`) and rare-point weighting
//! (`explore --rare-points`).
//!
//! A guided campaign keeps a [`corpus`] of run specs that added coverage features. Each new run
//! is a fresh swarm seed, a mutation of a corpus entry (one to three operators of
//! [`shardstorm_faults::mutate`]: add, remove or move a fault, retarget a triggered fault or an
//! armed fail point toward rarely reached points, change its action, move an epoch change,
//! stretch the epoch length, redraw the churn knobs, add or move a `reshuffle`, splice two
//! entries), or a fork: when a run reaches a feature the campaign has seen fewer than
//! [`FORK_BELOW`] times, [`FORKS`] runs keep its seed, knobs and schedule up to that moment and
//! draw a fresh fault suffix after it (half of them also redraw the committee churn from that
//! moment with a `reshuffle`, half bring the next epoch change forward to within 2 s of it).
//! The [`bandit`] shares the runs between these three generators by the new features each
//! yielded per run so far (at least a tenth each). Parents are picked in proportion to the
//! rarity of their features. Fresh seeds draw their triggered faults half the time toward
//! rarely reached (node, fail point) pairs; `--rare-points` is that alone, without corpus or
//! mutation.
//!
//! Deterministic: runs are generated in batches of [`BATCH`]; batch `b + 2` is generated from
//! the campaign state after merging batches `0..=b` in run order, so the same campaign seed
//! explores the same runs whatever the job count and the timing, while the workers never wait
//! for a batch to be generated.

pub mod bandit;
pub mod corpus;

use crate::coverage::{CoverageMap, RunCoverage};
use crate::explore::{
    found_in_run, panicked_run, Event, ExploreConfig, Found, Progress, SeedSource,
};
use crate::run::run_with_ledger;
use crate::run_spec::RunSpec;
use bandit::{Bandit, Generator};
use corpus::{Corpus, Entry};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardstorm_faults::mutate::{self, Candidate, Context, Operator};
use shardstorm_faults::{Knobs, LockExt, Nemesis, PointWeights, Shape};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Runs per batch.
pub const BATCH: usize = 8;
/// A run that reaches a feature seen fewer than this many times forks.
pub const FORK_BELOW: u64 = 2;
/// Forks per rare moment.
pub const FORKS: usize = 3;
/// Forks waiting at most.
const MAX_FORKS_QUEUED: usize = 4 * BATCH;
/// Operators stacked on one child at most.
const MAX_STACK: usize = 3;
/// Share of forks whose suffix also redraws the committee churn.
const RESHUFFLE_SHARE: f64 = 0.5;
/// Share of forks that bring the next epoch change forward to just after their moment.
const EPOCH_CHANGE_SHARE: f64 = 0.5;
/// How soon after the moment (ms) that epoch change starts at most.
const EPOCH_CHANGE_WITHIN_MS: u64 = 2_000;
/// Share of mutated children that also take a new seed.
const RESEED_SHARE: f64 = 0.5;
/// Tries to find an applicable mutation before falling back to a fresh seed.
const TRIES: usize = 8;

/// Which feedback a campaign uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Corpus, mutation, forks and rare-point weighting.
    Guided,
    /// Plain swarm seeds whose triggered faults favour rarely reached fail points.
    RarePoints,
}

/// The options of a campaign with feedback.
#[derive(Clone, Debug, PartialEq)]
pub struct Guidance {
    pub mode: Mode,
    /// Seeds every choice of the campaign (fresh seeds still come from the seed range).
    pub campaign_seed: u64,
    /// Load the corpus from and save it to this directory.
    pub corpus: Option<PathBuf>,
}

/// How a run of the campaign came about.
#[derive(Clone, Debug, PartialEq)]
enum Origin {
    Fresh,
    Mutated(Vec<Operator>),
    Forked(u64),
}

impl Origin {
    fn generator(&self) -> Generator {
        match self {
            Origin::Fresh => Generator::Fresh,
            Origin::Mutated(_) => Generator::Mutated,
            Origin::Forked(_) => Generator::Forked,
        }
    }

    fn text(&self) -> String {
        match self {
            Origin::Fresh => "fresh".into(),
            Origin::Mutated(ops) => {
                let names: Vec<&str> = ops.iter().map(|o| o.name()).collect();
                if names.is_empty() {
                    "mutated reseed".into()
                } else {
                    format!("mutated {}", names.join("+"))
                }
            }
            Origin::Forked(at) => format!(
                "fork at {}",
                shardstorm_faults::fmt_secs(Duration::from_millis(*at))
            ),
        }
    }
}

struct Job {
    index: u64,
    spec: RunSpec,
    origin: Origin,
}

struct Done {
    index: u64,
    /// Knobs and schedule resolved.
    spec: RunSpec,
    origin: Origin,
    coverage: Option<RunCoverage>,
    found: Option<Found>,
    sim_ms: u64,
}

/// A fork waiting for its turn: the parent and the moment.
struct Fork {
    parent: RunSpec,
    at_ms: u64,
}

/// What a campaign with feedback knows between batches.
struct State {
    mode: Mode,
    campaign_seed: u64,
    corpus: Corpus,
    /// The loaded coverage plus this campaign's runs.
    map: CoverageMap,
    /// This campaign's runs only (saved under its id).
    own: CoverageMap,
    forks: VecDeque<Fork>,
    /// The next fresh seed's position in the campaign's seed sequence.
    next_fresh: u64,
    explored: Vec<String>,
    curve: Vec<(u64, usize)>,
    /// New features per run of each generator, which sets their shares of the next runs.
    bandit: Bandit,
}

impl State {
    fn rng(&self, index: u64, salt: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.campaign_seed ^ salt);
        rng.set_stream(index);
        rng
    }

    fn shape(&self, knobs: &Knobs, spec: &RunSpec) -> Shape {
        let mut shape = spec.shape();
        shape.duration = spec.chaos_duration(knobs);
        shape
    }

    /// A fresh swarm seed; its triggered faults steered by `weights` once there are any.
    fn fresh(&mut self, config: &ExploreConfig, weights: &PointWeights) -> Option<RunSpec> {
        let seed = config.seed_at(self.next_fresh)?;
        self.next_fresh += 1;
        let mut spec = config.spec(seed);
        // In a guided campaign every other fresh seed is the plain swarm draw, so what blind
        // swarm testing finds quickly a guided campaign still finds.
        let plain = self.mode == Mode::Guided && self.next_fresh.is_multiple_of(2);
        if !weights.is_empty() && !plain {
            let knobs = spec.resolved_knobs();
            let shape = self.shape(&knobs, &spec);
            spec.schedule = Some(Nemesis::schedule_weighted(
                seed,
                &knobs,
                &shape,
                Some(weights),
            ));
            spec.knobs = Some(knobs);
        }
        Some(spec)
    }

    /// A child of a corpus entry picked by energy.
    fn mutated(
        &mut self,
        rng: &mut ChaCha8Rng,
        energy: &[f64],
        weights: &PointWeights,
    ) -> Option<(RunSpec, Vec<Operator>)> {
        let parent = pick_weighted(rng, energy, |i| self.corpus.entries[i].picks)?;
        self.corpus.entries[parent].picks += 1;
        let base = self.corpus.entries[parent].spec.clone();
        let mut candidate = Candidate {
            knobs: base.knobs.clone()?,
            schedule: base.schedule.clone()?,
        };
        let mut ops = Vec::new();
        let stack = rng.random_range(1..=MAX_STACK);
        for _ in 0..TRIES {
            if ops.len() >= stack {
                break;
            }
            let op = *Operator::ALL.choose(rng)?;
            let other = self.corpus.entries.choose(rng).and_then(|e| {
                Some(Candidate {
                    knobs: e.spec.knobs.clone()?,
                    schedule: e.spec.schedule.clone()?,
                })
            });
            let shape = self.shape(&candidate.knobs, &base);
            let cx = Context {
                shape: &shape,
                weights: Some(weights),
            };
            if let Some(child) = mutate::mutate(rng, op, &candidate, other.as_ref(), cx) {
                candidate = child;
                ops.push(op);
            }
        }
        let mut spec = base;
        // Now and then the same faults meet another workload, node configuration and churn.
        let reseed = rng.random_bool(RESEED_SHARE);
        if reseed {
            spec.seed = rng.random();
        } else if ops.is_empty() {
            return None;
        }
        spec.knobs = Some(candidate.knobs);
        spec.schedule = Some(candidate.schedule);
        Some((spec, ops))
    }

    fn forked(&mut self, rng: &mut ChaCha8Rng, weights: &PointWeights) -> Option<(RunSpec, u64)> {
        let fork = self.forks.pop_front()?;
        let knobs = fork.parent.knobs.clone()?;
        let parent_schedule = fork.parent.schedule.clone()?;
        let shape = self.shape(&knobs, &fork.parent);
        let fresh = Nemesis::schedule_weighted(rng.random(), &knobs, &shape, Some(weights));
        let at = Duration::from_millis(fork.at_ms);
        let mut schedule = mutate::fork(&parent_schedule, &fresh, at, shape.nodes.len());
        if mutate::churns(&knobs) && rng.random_bool(RESHUFFLE_SHARE) {
            // The suffix also takes committees of its own.
            let mut gs = mutate::groups(&schedule);
            mutate::reshuffle(rng, &mut gs, at);
            schedule = mutate::from_groups(&gs);
        }
        if rng.random_bool(EPOCH_CHANGE_SHARE) {
            // The rare state meets the next epoch change (the spec's main concurrent event).
            let soon = at + Duration::from_millis(rng.random_range(0..=EPOCH_CHANGE_WITHIN_MS));
            schedule.at(soon, shardstorm_faults::Fault::EpochChange);
        }
        if !mutate::admissible(&schedule, shape.nodes.len(), shape.duration) {
            return None;
        }
        let mut spec = fork.parent;
        spec.schedule = Some(schedule);
        Some((spec, fork.at_ms))
    }

    /// The runs `first .. first + n` of the campaign.
    fn batch(&mut self, config: &ExploreConfig, first: u64, n: usize) -> Vec<Job> {
        let weights = self.map.point_weights();
        let energy: Vec<f64> = self
            .corpus
            .entries
            .iter()
            .map(|e| self.map.rarity(&e.features))
            .collect();
        let mut jobs = Vec::with_capacity(n);
        for index in first..first + n as u64 {
            let mut rng = self.rng(index, 0x6775_6964_6564);
            let guided = self.mode == Mode::Guided && !self.corpus.entries.is_empty();
            let forks = !self.forks.is_empty();
            let generator = self.bandit.pick(&mut rng, |g| match g {
                Generator::Fresh => true,
                Generator::Mutated => guided,
                Generator::Forked => guided && forks,
            });
            let made = match generator {
                Generator::Forked => self
                    .forked(&mut rng, &weights)
                    .map(|(spec, at)| (spec, Origin::Forked(at))),
                Generator::Mutated => self
                    .mutated(&mut rng, &energy, &weights)
                    .map(|(spec, ops)| (spec, Origin::Mutated(ops))),
                Generator::Fresh => None,
            };
            let made = made.or_else(|| {
                self.fresh(config, &weights)
                    .map(|spec| (spec, Origin::Fresh))
            });
            let made = made.or_else(|| {
                // The seed range is spent: keep mutating if there is a corpus.
                guided
                    .then(|| self.mutated(&mut rng, &energy, &weights))
                    .flatten()
                    .map(|(spec, ops)| (spec, Origin::Mutated(ops)))
            });
            match made {
                Some((spec, origin)) => jobs.push(Job {
                    index,
                    spec,
                    origin,
                }),
                None => break,
            }
        }
        jobs
    }

    /// Merges one finished run (in run order).
    fn merge(&mut self, done: Done) {
        let text = crate::runfile::RunFile::from_spec(&done.spec).to_string();
        let hash = blake3::hash(text.as_bytes()).to_hex();
        self.explored.push(format!(
            "{} seed={} {} {}",
            done.index,
            done.spec.seed,
            done.origin.text(),
            &hash.as_str()[..16]
        ));
        let Some(coverage) = done.coverage else {
            return;
        };
        let new = self.map.add(&coverage);
        self.own.add(&coverage);
        if self.mode == Mode::Guided {
            self.bandit.record(done.origin.generator(), new);
        }
        if self.own.runs.is_multiple_of(crate::explore::CURVE_STEP) {
            self.curve.push((self.own.runs, self.map.feature_count()));
        }
        if self.mode != Mode::Guided || done.found.is_some() || new == 0 {
            return;
        }
        // A rare moment: one of the rarest features with a known time, drawn at random.
        let counted: Vec<(u64, u64)> = coverage
            .moments
            .iter()
            .map(|(f, t)| (self.map.count(*f), *t))
            .filter(|(count, t)| *count < FORK_BELOW && *t > 0)
            .collect();
        let rarest = counted.iter().map(|(c, _)| *c).min();
        let moments: Vec<u64> = counted
            .iter()
            .filter(|(c, _)| Some(*c) == rarest)
            .map(|(_, t)| *t)
            .collect();
        let mut rng = self.rng(done.index, 0x666f_726b);
        let rare = moments.choose(&mut rng).map(|t| ((), *t));
        if let Some((_, at_ms)) = rare {
            for _ in 0..FORKS {
                if self.forks.len() < MAX_FORKS_QUEUED {
                    self.forks.push_back(Fork {
                        parent: done.spec.clone(),
                        at_ms,
                    });
                }
            }
        }
        self.corpus.entries.push(Entry {
            spec: done.spec,
            features: coverage.features,
            picks: 0,
            origin: done.origin.text(),
        });
    }
}

/// Picks an index in proportion to `energy[i] / (1 + picks(i))`.
fn pick_weighted(
    rng: &mut ChaCha8Rng,
    energy: &[f64],
    picks: impl Fn(usize) -> u64,
) -> Option<usize> {
    let weights: Vec<f64> = energy
        .iter()
        .enumerate()
        .map(|(i, e)| e.max(1e-9) / (1.0 + picks(i) as f64))
        .collect();
    let total: f64 = weights.iter().sum();
    if weights.is_empty() || total <= 0.0 {
        return None;
    }
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return Some(i);
        }
        x -= w;
    }
    Some(weights.len() - 1)
}

/// Runs one job in a worker: the run, its coverage, its verdict.
fn execute(job: Job, out: Option<&std::path::Path>) -> Done {
    let Job {
        index,
        spec,
        origin,
    } = job;
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_with_ledger(&spec)));
    match ran {
        Ok((result, ledger)) => {
            let coverage = RunCoverage::of_run(result.trace.events(), &ledger);
            let found = result
                .violation
                .as_ref()
                .map(|v| found_in_run(&result, v, out, Some(index)));
            let mut resolved = result.spec.clone();
            resolved.knobs = Some(result.knobs.clone());
            resolved.schedule = Some(result.schedule.clone());
            Done {
                index,
                spec: resolved,
                origin,
                coverage: Some(coverage),
                found,
                sim_ms: result.sim_ms,
            }
        }
        Err(panic) => {
            let message = crate::panic_message(panic.as_ref());
            Done {
                index,
                found: Some(panicked_run(&spec, message, out, Some(index))),
                spec,
                origin,
                coverage: None,
                sim_ms: 0,
            }
        }
    }
}

/// What a campaign with feedback returns besides its violations.
pub struct Outcome {
    pub runs: u64,
    pub sim_ms: u64,
    pub violations: Vec<Found>,
    pub first_violation: Option<Duration>,
    /// The loaded coverage plus this campaign's.
    pub coverage: CoverageMap,
    /// Corpus entries at the end (loaded ones included).
    pub corpus_entries: usize,
    /// Entries this campaign added.
    pub corpus_added: usize,
    /// Why the corpus could not be loaded or saved, if so.
    pub corpus_error: Option<String>,
    /// One line per run in run order: index, seed, origin and a hash of its knobs and
    /// schedule (what determinism means here).
    pub explored: Vec<String>,
    /// (runs, features) every [`crate::explore::CURVE_STEP`] runs, in run order.
    pub feature_curve: Vec<(u64, usize)>,
}

/// The id under which a campaign stores its own coverage.
fn campaign_id(config: &ExploreConfig, g: &Guidance) -> String {
    let seeds = match config.seeds {
        SeedSource::Count { start, n } => format!("{start}+{n}"),
        SeedSource::Duration { start, limit } => format!("{start}@{}s", limit.as_secs()),
    };
    let shard = config.shard.map_or("all".to_string(), |s| s.to_string());
    format!(
        "{:?}-c{}-s{seeds}-{shard}-b{}",
        g.mode,
        g.campaign_seed,
        crate::runfile::BUILD
    )
}

/// Runs a campaign with feedback; `on_event` is called from the coordinating thread.
pub fn explore_guided(
    config: &ExploreConfig,
    g: &Guidance,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Outcome {
    let started = Instant::now();
    let mut corpus_error = None;
    let corpus = match &g.corpus {
        Some(dir) => Corpus::load(dir).unwrap_or_else(|e| {
            corpus_error = Some(e.to_string());
            Corpus::default()
        }),
        None => Corpus::default(),
    };
    let loaded_entries = corpus.entries.len();
    let mut state = State {
        mode: g.mode,
        campaign_seed: g.campaign_seed,
        map: corpus.coverage(),
        corpus,
        own: CoverageMap::default(),
        forks: VecDeque::new(),
        next_fresh: 0,
        explored: Vec::new(),
        curve: Vec::new(),
        bandit: Bandit::default(),
    };
    let total = config.total();
    let limit = match config.seeds {
        SeedSource::Duration { limit, .. } => Some(limit),
        SeedSource::Count { .. } => None,
    };
    let mut violations = Vec::new();
    let mut first_violation = None;
    let (mut runs, mut sim_ms) = (0u64, 0u64);
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let job_rx = Mutex::new(job_rx);
    let out = config.out.clone();
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.max(1) {
            let (job_rx, done_tx, out) = (&job_rx, done_tx.clone(), out.clone());
            scope.spawn(move || loop {
                let job = job_rx.lock_ok().recv();
                let Ok(job) = job else { return };
                if done_tx.send(execute(job, out.as_deref())).is_err() {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut job_tx = Some(job_tx);
        let mut generated = 0u64;
        let mut batch_ends: VecDeque<u64> = VecDeque::new();
        let mut stop = false;
        let send_batch = |state: &mut State,
                          generated: &mut u64,
                          batch_ends: &mut VecDeque<u64>,
                          stop: bool,
                          job_tx: &mut Option<mpsc::Sender<Job>>| {
            let out_of_time = limit.is_some_and(|l| started.elapsed() >= l);
            let room = total.map_or(BATCH as u64, |t| t.saturating_sub(*generated));
            let n = usize::try_from(room.min(BATCH as u64)).unwrap_or(BATCH);
            let interrupted = crate::interrupt::stop_requested();
            let jobs = if stop || out_of_time || interrupted || n == 0 {
                Vec::new()
            } else {
                state.batch(config, *generated, n)
            };
            if jobs.is_empty() {
                *job_tx = None;
                return;
            }
            *generated += jobs.len() as u64;
            batch_ends.push_back(*generated);
            if let Some(tx) = job_tx.as_ref() {
                for job in jobs {
                    let _ = tx.send(job);
                }
            }
        };
        send_batch(
            &mut state,
            &mut generated,
            &mut batch_ends,
            stop,
            &mut job_tx,
        );
        send_batch(
            &mut state,
            &mut generated,
            &mut batch_ends,
            stop,
            &mut job_tx,
        );
        let mut pending: std::collections::BTreeMap<u64, Done> = Default::default();
        let mut merged = 0u64;
        while let Ok(done) = done_rx.recv() {
            runs += 1;
            sim_ms += done.sim_ms;
            if let Some(found) = &done.found {
                first_violation.get_or_insert_with(|| started.elapsed());
                on_event(Event::Violation(found));
                violations.push(found.clone());
                stop |= config.stop_after_first;
            }
            let elapsed = started.elapsed();
            on_event(Event::Progress(Progress {
                done: runs,
                total,
                elapsed,
                limit,
                seeds_per_min: runs as f64 / elapsed.as_secs_f64().max(1e-9) * 60.0,
                violations: violations.len(),
            }));
            pending.insert(done.index, done);
            while let Some(done) = pending.remove(&merged) {
                state.merge(done);
                merged += 1;
                if batch_ends.front() == Some(&merged) {
                    batch_ends.pop_front();
                    if job_tx.is_some() {
                        send_batch(
                            &mut state,
                            &mut generated,
                            &mut batch_ends,
                            stop,
                            &mut job_tx,
                        );
                    }
                }
            }
            if job_tx.is_none() && runs >= generated {
                break;
            }
        }
        drop(job_tx);
    });
    let corpus_added = state.corpus.entries.len() - loaded_entries;
    if let Some(dir) = &g.corpus {
        state
            .corpus
            .campaigns
            .insert(campaign_id(config, g), state.own.clone());
        if let Err(e) = state.corpus.save(dir) {
            corpus_error = Some(e.to_string());
        }
    }
    Outcome {
        runs,
        sim_ms,
        violations,
        first_violation,
        coverage: state.map,
        corpus_entries: state.corpus.entries.len(),
        corpus_added,
        corpus_error,
        explored: state.explored,
        feature_curve: state.curve,
    }
}

#[cfg(test)]
mod tests;
