//! The campaign runner: one simulation per worker thread, each worker pulling the next seed of
//! the campaign (a count or a time budget, optionally one deterministic `--shard I/N` slice of
//! the seed space) from a shared counter; every violation becomes a [`Found`] with its exact
//! replay command and, with an output directory, a run file. Memory stays flat: each run's
//! result (and its trace) is dropped as soon as its verdict is recorded.

use crate::coverage::{CoverageMap, RunCoverage};
use crate::guided::{explore_guided, Guidance};
use crate::oracle::Violation;
use crate::run::{run_with_ledger, RunResult};
use crate::run_spec::RunSpec;
use crate::runfile::RunFile;
use serde::{Deserialize, Serialize};
use shardstorm_faults::LockExt;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The invariant name given to a run whose harness panicked.
pub const HARNESS_PANIC: &str = "harness-panic";

/// Which seeds a campaign explores.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// Seeds `start .. start + n`.
    Count { start: u64, n: u64 },
    /// Seeds from `start` on until `limit` of wall time has passed (runs in flight finish).
    Duration { start: u64, limit: Duration },
}

/// One slice of the seed space: the seeds `s` with `s % count == index`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

/// A `--shard I/N` that is not a slice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("expected I/N (e.g. 0/4), found {0:?}")]
    Syntax(String),
    #[error("shard count must be at least 1, found {0}")]
    ZeroCount(u64),
    #[error("shard index {index} must be below the shard count {count} (indices are 0-based)")]
    IndexTooLarge { index: u64, count: u64 },
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(syntax)?;
        let index: u64 = i.trim().parse().map_err(|_| syntax())?;
        let count: u64 = n.trim().parse().map_err(|_| syntax())?;
        match (index, count) {
            (_, 0) => Err(ShardError::ZeroCount(count)),
            (index, count) if index >= count => Err(ShardError::IndexTooLarge { index, count }),
            _ => Ok(Shard { index, count }),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A campaign.
#[derive(Clone, Debug)]
pub struct ExploreConfig {
    pub seeds: SeedSource,
    /// Worker threads (at least one runs).
    pub jobs: usize,
    pub shard: Option<Shard>,
    /// Nodes, shards, epochs, blobs, bugs and tick of every run; its seed is replaced and its
    /// knobs and schedule should be `None` (drawn per seed).
    pub template: RunSpec,
    /// Stop pulling new seeds once a violation is found (runs in flight finish).
    pub stop_after_first: bool,
    /// Where to write a run file per failure (`None`: write nothing).
    pub out: Option<PathBuf>,
    /// Coverage feedback (`None`: plain swarm seeds, see [`crate::guided`]).
    pub guidance: Option<Guidance>,
}

/// One violation found by a campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub seed: u64,
    pub invariant: String,
    pub node: Option<String>,
    /// The exact command that replays this seed.
    pub replay: String,
    /// The run file written for it, if any.
    pub file: Option<PathBuf>,
    /// The run's index in a guided campaign (its schedule is its own, not the seed's: only
    /// the run file replays it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// The violation as the oracle describes it.
    #[serde(default)]
    pub message: String,
    /// Why no run file could be written (not serialized).
    #[serde(skip)]
    pub file_error: Option<String>,
}

impl Found {
    /// The command that replays the run file, if one was written.
    pub fn file_replay(&self) -> Option<String> {
        self.file
            .as_ref()
            .map(|f| format!("cargo run --release -- replay {}", f.display()))
    }
}

/// What a campaign did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub seeds: u64,
    pub wall_s: f64,
    pub seeds_per_min: f64,
    pub sim_s_per_wall_s: f64,
    /// Total simulated seconds of all seeds.
    #[serde(default)]
    pub sim_s: f64,
    /// Wall seconds until the first violation was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_violation_s: Option<f64>,
    pub violations: Vec<Found>,
    /// Distinct coverage features the campaign reached (see [`crate::coverage`]).
    #[serde(default)]
    pub features: usize,
    /// Catalogued fail points at which no armed action fired.
    #[serde(default)]
    pub fail_points_never_fired: Vec<String>,
    /// Catalogued fail points no node reached.
    #[serde(default)]
    pub fail_points_never_reached: Vec<String>,
    /// The corpus of a guided campaign.
    #[serde(default)]
    pub corpus: Option<CorpusSummary>,
    /// (runs, features) every [`CURVE_STEP`] runs: how coverage grew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_curve: Vec<(u64, usize)>,
}

/// Runs between two points of [`Summary::feature_curve`].
pub const CURVE_STEP: u64 = 100;

/// The corpus line of a guided campaign's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CorpusSummary {
    /// Entries at the end (loaded ones included).
    pub entries: usize,
    /// Entries this campaign added.
    pub added: usize,
    /// Where it was loaded from and saved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Why it could not be loaded or saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Summary {
    fn new(seeds: u64, wall_s: f64, sim_s: f64, mut violations: Vec<Found>) -> Self {
        violations.sort_by(|a, b| (a.seed, &a.invariant).cmp(&(b.seed, &b.invariant)));
        let per_s = |x: f64| if wall_s > 0.0 { x / wall_s } else { 0.0 };
        Self {
            seeds,
            wall_s,
            seeds_per_min: per_s(seeds as f64) * 60.0,
            sim_s_per_wall_s: per_s(sim_s),
            sim_s,
            first_violation_s: None,
            violations,
            features: 0,
            fail_points_never_fired: Vec::new(),
            fail_points_never_reached: Vec::new(),
            corpus: None,
            feature_curve: Vec::new(),
        }
    }

    /// Fills in the coverage figures of `map`.
    pub fn with_coverage(mut self, map: &CoverageMap) -> Self {
        self.features = map.feature_count();
        self.fail_points_never_fired = map.never_fired();
        self.fail_points_never_reached = map.never_reached();
        self
    }

    /// The one summary line of a campaign.
    pub fn line(&self) -> String {
        format!(
            "{} seeds in {:.1} s: {:.0} seeds/min, {:.0} simulated s per wall s, {} violation{}",
            self.seeds,
            self.wall_s,
            self.seeds_per_min,
            self.sim_s_per_wall_s,
            self.violations.len(),
            if self.violations.len() == 1 { "" } else { "s" }
        )
    }

    /// Combines the summaries of shards that ran side by side (on separate machines): seeds,
    /// simulated seconds and violations add up, the wall time is the longest shard's, and
    /// both rates are recomputed from those totals (the whole campaign's throughput).
    pub fn merge(parts: &[Summary]) -> Summary {
        let seeds = parts.iter().map(|p| p.seeds).sum();
        let wall_s = parts.iter().map(|p| p.wall_s).fold(0.0, f64::max);
        let sim_s = parts.iter().map(Summary::sim_seconds).sum();
        let mut violations: Vec<Found> = parts.iter().flat_map(|p| p.violations.clone()).collect();
        violations.sort_by(|a, b| (a.seed, &a.invariant).cmp(&(b.seed, &b.invariant)));
        violations.dedup_by(|a, b| a.seed == b.seed && a.invariant == b.invariant);
        let mut merged = Summary::new(seeds, wall_s, sim_s, violations);
        merged.first_violation_s = parts
            .iter()
            .filter_map(|p| p.first_violation_s)
            .reduce(f64::min);
        // Feature sets cannot be united from counts: the largest is a lower bound (merge the
        // corpus directories for the exact figure). A point unfired anywhere is unfired.
        merged.features = parts.iter().map(|p| p.features).max().unwrap_or(0);
        let with_coverage: Vec<&Summary> = parts.iter().filter(|p| p.features > 0).collect();
        let everywhere = |list: fn(&Summary) -> &Vec<String>| -> Vec<String> {
            let Some(first) = with_coverage.first() else {
                return Vec::new();
            };
            list(first)
                .iter()
                .filter(|p| with_coverage.iter().all(|s| list(s).contains(p)))
                .cloned()
                .collect()
        };
        merged.fail_points_never_fired = everywhere(|s| &s.fail_points_never_fired);
        merged.fail_points_never_reached = everywhere(|s| &s.fail_points_never_reached);
        let corpora: Vec<&CorpusSummary> = parts.iter().filter_map(|p| p.corpus.as_ref()).collect();
        if !corpora.is_empty() {
            merged.corpus = Some(CorpusSummary {
                entries: corpora.iter().map(|c| c.entries).max().unwrap_or(0),
                added: corpora.iter().map(|c| c.added).sum(),
                dir: None,
                error: None,
            });
        }
        merged
    }

    /// Simulated seconds, recomputed from the rate for summaries that lack `sim_s`.
    fn sim_seconds(&self) -> f64 {
        if self.sim_s > 0.0 {
            self.sim_s
        } else {
            self.sim_s_per_wall_s * self.wall_s
        }
    }
}

/// A progress report, sent after every finished seed.
#[derive(Clone, Debug)]
pub struct Progress {
    pub done: u64,
    /// Seeds in the campaign (`None` for a time budget).
    pub total: Option<u64>,
    pub elapsed: Duration,
    /// The campaign's time budget, if any.
    pub limit: Option<Duration>,
    pub seeds_per_min: f64,
    pub violations: usize,
}

/// What a campaign reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    Violation(&'a Found),
    Progress(Progress),
}

impl ExploreConfig {
    /// The first seed of this campaign's slice at or after `start`.
    fn first_seed(&self, start: u64) -> u128 {
        let start = u128::from(start);
        match self.shard {
            None => start,
            Some(Shard { index, count }) => {
                let (index, count) = (u128::from(index), u128::from(count));
                start + (index + count - start % count) % count
            }
        }
    }

    fn stride(&self) -> u128 {
        self.shard.map_or(1, |s| u128::from(s.count))
    }

    /// The `k`-th seed of the campaign, if there is one.
    pub fn seed_at(&self, k: u64) -> Option<u64> {
        let (start, end) = match self.seeds {
            SeedSource::Count { start, n } => (start, u128::from(start) + u128::from(n)),
            SeedSource::Duration { start, .. } => (start, u128::from(u64::MAX) + 1),
        };
        let seed = self.first_seed(start) + u128::from(k) * self.stride();
        (seed < end).then(|| u64::try_from(seed).ok()).flatten()
    }

    /// How many seeds the campaign has (`None` for a time budget).
    pub fn total(&self) -> Option<u64> {
        let SeedSource::Count { start, n } = self.seeds else {
            return None;
        };
        let (first, end) = (self.first_seed(start), u128::from(start) + u128::from(n));
        let count = if first >= end {
            0
        } else {
            (end - 1 - first) / self.stride() + 1
        };
        u64::try_from(count).ok()
    }

    fn limit(&self) -> Option<Duration> {
        match self.seeds {
            SeedSource::Duration { limit, .. } => Some(limit),
            SeedSource::Count { .. } => None,
        }
    }

    /// The spec of one seed.
    pub fn spec(&self, seed: u64) -> RunSpec {
        RunSpec {
            seed,
            ..self.template.clone()
        }
    }
}

/// The `shardstorm` arguments that reproduce `spec` (seed, bugs, a non-standard preset whose
/// sizes it has, or else the sizes that differ from the standard scenario).
pub fn replay_args(spec: &RunSpec) -> String {
    let preset = crate::Preset::of(spec).unwrap_or(crate::Preset::Standard);
    let standard = preset.spec(spec.seed);
    let mut args = format!("--seed {}", spec.seed);
    if preset != crate::Preset::Standard {
        args.push_str(&format!(" --preset {preset}"));
    }
    for bug in &spec.bugs {
        args.push_str(&format!(" --bug {bug}"));
    }
    let sizes = [
        ("nodes", u64::from(spec.nodes), u64::from(standard.nodes)),
        ("shards", u64::from(spec.shards), u64::from(standard.shards)),
        ("epochs", u64::from(spec.epochs), u64::from(standard.epochs)),
        ("blobs", u64::from(spec.blobs), u64::from(standard.blobs)),
    ];
    for (flag, value, default) in sizes {
        if value != default {
            args.push_str(&format!(" --{flag} {value}"));
        }
    }
    args
}

/// The exact command line that replays `spec` from its seed.
pub fn replay_command(spec: &RunSpec) -> String {
    format!("cargo run --release -- replay {}", replay_args(spec))
}

/// Shared state of the workers.
struct Tally {
    started: Instant,
    next: AtomicU64,
    done: AtomicU64,
    sim_ms: AtomicU64,
    found: AtomicUsize,
    stop: AtomicBool,
    first_violation: Mutex<Option<Duration>>,
    violations: Mutex<Vec<Found>>,
    /// Every run's coverage (counts only add up: the same map whatever the order).
    coverage: Mutex<CoverageMap>,
    curve: Mutex<Vec<(u64, usize)>>,
}

/// Runs the campaign; `on_event` is called from the worker threads.
pub fn explore(config: &ExploreConfig, on_event: &(dyn Fn(Event<'_>) + Sync)) -> Summary {
    if let Some(guidance) = &config.guidance {
        let started = Instant::now();
        let outcome = explore_guided(config, guidance, on_event);
        let wall_s = started.elapsed().as_secs_f64();
        let mut summary = Summary::new(
            outcome.runs,
            wall_s,
            outcome.sim_ms as f64 / 1000.0,
            outcome.violations,
        )
        .with_coverage(&outcome.coverage);
        summary.first_violation_s = outcome.first_violation.map(|d| d.as_secs_f64());
        summary.feature_curve = outcome.feature_curve;
        summary.corpus = Some(CorpusSummary {
            entries: outcome.corpus_entries,
            added: outcome.corpus_added,
            dir: guidance.corpus.clone(),
            error: outcome.corpus_error,
        });
        return summary;
    }
    let tally = Tally {
        started: Instant::now(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        sim_ms: AtomicU64::new(0),
        found: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        first_violation: Mutex::new(None),
        violations: Mutex::new(Vec::new()),
        coverage: Mutex::new(CoverageMap::default()),
        curve: Mutex::new(Vec::new()),
    };
    let total = config.total();
    let jobs = total.map_or(config.jobs, |t| {
        config.jobs.min(usize::try_from(t).unwrap_or(usize::MAX))
    });
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| worker(config, &tally, on_event));
        }
    });
    let wall_s = tally.started.elapsed().as_secs_f64();
    let violations = tally.violations.into_inner_ok();
    let sim_s = tally.sim_ms.load(Ordering::Relaxed) as f64 / 1000.0;
    let mut summary = Summary::new(
        tally.done.load(Ordering::Relaxed),
        wall_s,
        sim_s,
        violations,
    );
    let first = tally.first_violation.into_inner_ok();
    summary.first_violation_s = first.map(|d| d.as_secs_f64());
    let coverage = tally.coverage.into_inner_ok();
    summary.feature_curve = tally.curve.into_inner_ok();
    summary.with_coverage(&coverage)
}

/// One worker: pull seeds until the campaign is over.
fn worker(config: &ExploreConfig, tally: &Tally, on_event: &(dyn Fn(Event<'_>) + Sync)) {
    let limit = config.limit();
    loop {
        let out_of_time = limit.is_some_and(|l| tally.started.elapsed() >= l);
        if out_of_time || tally.stop.load(Ordering::Relaxed) || crate::interrupt::stop_requested() {
            return;
        }
        let Some(seed) = config.seed_at(tally.next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        let spec = config.spec(seed);
        let (found, sim_ms, coverage) = run_seed(&spec, config.out.as_deref());
        tally.sim_ms.fetch_add(sim_ms, Ordering::Relaxed);
        if let Some(coverage) = coverage {
            let mut map = tally.coverage.lock_ok();
            map.add(&coverage);
            if map.runs.is_multiple_of(CURVE_STEP) {
                let point = (map.runs, map.feature_count());
                tally.curve.lock_ok().push(point);
            }
        }
        if let Some(found) = found {
            record(config, tally, found, on_event);
        }
        let done = tally.done.fetch_add(1, Ordering::Relaxed) + 1;
        let elapsed = tally.started.elapsed();
        on_event(Event::Progress(Progress {
            done,
            total: config.total(),
            elapsed,
            limit,
            seeds_per_min: done as f64 / elapsed.as_secs_f64().max(1e-9) * 60.0,
            violations: tally.found.load(Ordering::Relaxed),
        }));
    }
}

fn record(
    config: &ExploreConfig,
    tally: &Tally,
    found: Found,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) {
    tally.found.fetch_add(1, Ordering::Relaxed);
    if config.stop_after_first {
        tally.stop.store(true, Ordering::Relaxed);
    }
    let mut first = tally.first_violation.lock_ok();
    first.get_or_insert_with(|| tally.started.elapsed());
    drop(first);
    on_event(Event::Violation(&found));
    tally.violations.lock_ok().push(found);
}

/// Runs one seed; returns its violation (if any), its simulated milliseconds and its
/// coverage. The result, trace included, is dropped here.
fn run_seed(spec: &RunSpec, out: Option<&Path>) -> (Option<Found>, u64, Option<RunCoverage>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_with_ledger(spec))) {
        Ok((result, ledger)) => {
            let found = result
                .violation
                .as_ref()
                .map(|v| found_in_run(&result, v, out, None));
            let coverage = RunCoverage::of_run(result.trace.events(), &ledger);
            (found, result.sim_ms, Some(coverage))
        }
        Err(panic) => {
            let found = panicked_run(spec, crate::panic_message(panic.as_ref()), out, None);
            (Some(found), 0, None)
        }
    }
}

/// The `Found` of a failed run (`run`: its index in a guided campaign), its run file written
/// to `out`.
pub(crate) fn found_in_run(
    result: &RunResult,
    v: &Violation,
    out: Option<&Path>,
    run: Option<u64>,
) -> Found {
    let mut found = Found {
        seed: result.spec.seed,
        invariant: v.invariant.name().to_string(),
        node: v.node.map(|n| n.to_string()),
        replay: replay_command(&result.spec),
        file: None,
        run: None,
        message: v.to_string(),
        file_error: None,
    };
    finish(
        &mut found,
        &result.spec,
        out,
        run,
        &RunFile::from_result(result),
    );
    found
}

/// The `Found` of a run whose harness panicked (its run file expects nothing).
pub(crate) fn panicked_run(
    spec: &RunSpec,
    message: String,
    out: Option<&Path>,
    run: Option<u64>,
) -> Found {
    let mut found = Found {
        seed: spec.seed,
        invariant: HARNESS_PANIC.to_string(),
        node: None,
        replay: replay_command(spec),
        file: None,
        run: None,
        message: format!("the harness panicked: {message}"),
        file_error: None,
    };
    finish(&mut found, spec, out, run, &RunFile::from_spec(spec));
    found
}

/// Writes the run file and, for a run whose schedule is not the seed's own (guided or
/// rare-point runs carry their knobs and schedule), points the replay at that file.
fn finish(found: &mut Found, spec: &RunSpec, out: Option<&Path>, run: Option<u64>, file: &RunFile) {
    let own_schedule = spec.schedule.is_some() || spec.knobs.is_some();
    found.run = run;
    if let Some(dir) = out {
        save(found, dir, file);
    }
    if own_schedule {
        found.replay = found.file_replay().unwrap_or_else(|| {
            "no replay by seed: this run's schedule is its own (explore --out DIR writes its run file)"
                .to_string()
        });
    }
}

/// Writes `file` as `dir/seed-<S>-<invariant>.run` (`seed-<S>-run-<K>-<invariant>.run` for
/// run `K` of a guided campaign), recording the path or the error.
fn save(found: &mut Found, dir: &Path, file: &RunFile) {
    let name = match found.run {
        Some(k) => format!("seed-{}-run-{k}-{}.run", found.seed, found.invariant),
        None => format!("seed-{}-{}.run", found.seed, found.invariant),
    };
    let path = dir.join(name);
    let saved = std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
        .and_then(|()| file.save(&path).map_err(|e| e.to_string()));
    match saved {
        Ok(()) => found.file = Some(path),
        Err(e) => found.file_error = Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardstorm_node::Bug;

    fn config(seeds: SeedSource, shard: Option<Shard>) -> ExploreConfig {
        let mut template = RunSpec::standard(0);
        template.blobs = 6;
        template.epochs = 2;
        ExploreConfig {
            seeds,
            jobs: 2,
            shard,
            template,
            stop_after_first: false,
            out: None,
            guidance: None,
        }
    }

    fn seeds_of(c: &ExploreConfig) -> Vec<u64> {
        (0..).map_while(|k| c.seed_at(k)).collect()
    }

    #[test]
    fn shard_specs_parse_and_bad_ones_are_rejected() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert_eq!(
            "3/2".parse::<Shard>(),
            Err(ShardError::IndexTooLarge { index: 3, count: 2 })
        );
        assert_eq!(
            "2/2".parse::<Shard>(),
            Err(ShardError::IndexTooLarge { index: 2, count: 2 })
        );
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::ZeroCount(0)));
        assert!(matches!("1-4".parse::<Shard>(), Err(ShardError::Syntax(_))));
        assert!(matches!("a/4".parse::<Shard>(), Err(ShardError::Syntax(_))));
        assert_eq!(Shard { index: 1, count: 4 }.to_string(), "1/4");
    }

    #[test]
    fn shards_partition_the_seed_range() {
        let count = SeedSource::Count { start: 5, n: 11 };
        assert_eq!(seeds_of(&config(count, None)), (5..16).collect::<Vec<_>>());
        let mut all = Vec::new();
        for index in 0..3 {
            let c = config(count, Some(Shard { index, count: 3 }));
            let seeds = seeds_of(&c);
            assert!(seeds.iter().all(|s| s % 3 == index), "{seeds:?}");
            assert_eq!(c.total(), Some(seeds.len() as u64));
            all.extend(seeds);
        }
        all.sort_unstable();
        assert_eq!(all, (5..16).collect::<Vec<_>>());
        let empty = config(
            SeedSource::Count { start: 0, n: 1 },
            Some(Shard { index: 1, count: 2 }),
        );
        assert_eq!((empty.total(), empty.seed_at(0)), (Some(0), None));
        let timed = config(
            SeedSource::Duration {
                start: 0,
                limit: Duration::ZERO,
            },
            None,
        );
        assert_eq!((timed.total(), timed.seed_at(7)), (None, Some(7)));
    }

    #[test]
    fn replay_command_names_seed_bugs_and_non_standard_sizes() {
        let mut spec = RunSpec::standard(9);
        assert_eq!(
            replay_command(&spec),
            "cargo run --release -- replay --seed 9"
        );
        spec.bugs.insert(Bug::StaleStatusClobber);
        spec.blobs = 6;
        assert_eq!(
            replay_args(&spec),
            "--seed 9 --bug stale-status-clobber --blobs 6"
        );
        let walrus = crate::Preset::Walrus.spec(4);
        assert_eq!(replay_args(&walrus), "--seed 4 --preset walrus");
        let fewer = RunSpec {
            blobs: 10,
            ..walrus
        };
        assert_eq!(
            replay_args(&fewer),
            "--seed 4 --nodes 25 --shards 1000 --epochs 4 --blobs 10"
        );
    }

    #[test]
    fn summary_json_has_the_documented_keys() {
        let found = Found {
            seed: 3,
            invariant: "liveness".into(),
            node: Some("n1".into()),
            replay: "cargo run --release -- replay --seed 3".into(),
            file: None,
            run: None,
            message: String::new(),
            file_error: None,
        };
        let summary = Summary::new(10, 2.0, 100.0, vec![found]);
        let json: serde_json::Value = serde_json::to_value(&summary).expect("serializes");
        for key in [
            "seeds",
            "wall_s",
            "seeds_per_min",
            "sim_s_per_wall_s",
            "violations",
        ] {
            assert!(json.get(key).is_some(), "missing {key}: {json}");
        }
        for key in ["seed", "invariant", "node", "replay"] {
            assert!(
                json["violations"][0].get(key).is_some(),
                "missing {key}: {json}"
            );
        }
        assert_eq!(json["seeds_per_min"], 300.0);
        assert_eq!(json["sim_s_per_wall_s"], 50.0);
    }

    #[test]
    fn merge_adds_seeds_and_uses_the_longest_wall_time() {
        let a = Summary::new(100, 10.0, 1000.0, Vec::new());
        let mut b = Summary::new(50, 20.0, 500.0, Vec::new());
        b.sim_s = 0.0; // an old summary without `sim_s`: recomputed from its rate
        let merged = Summary::merge(&[a, b]);
        assert_eq!(merged.seeds, 150);
        assert_eq!(merged.wall_s, 20.0);
        assert_eq!(merged.sim_s, 1500.0);
        assert_eq!(merged.seeds_per_min, 450.0);
        assert_eq!(merged.sim_s_per_wall_s, 75.0);
    }

    #[test]
    fn a_small_campaign_counts_every_seed_and_reports_progress() {
        let c = config(SeedSource::Count { start: 0, n: 4 }, None);
        let reports = AtomicU64::new(0);
        let summary = explore(&c, &|e| {
            if let Event::Progress(_) = e {
                reports.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(summary.seeds, 4);
        assert_eq!(reports.load(Ordering::Relaxed), 4);
        assert!(summary.sim_s > 0.0 && summary.wall_s > 0.0, "{summary:?}");
    }
}
