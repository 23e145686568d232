//! `shardstorm explore`: a randomized campaign over seeds (a count or a time budget,
//! optionally one `--shard I/N` slice), a run file per failure, one summary line or JSON.
//! The output directory is checked before the first seed runs; Ctrl-C (or SIGTERM) stops
//! pulling seeds and still prints the summary of what was explored.

use super::args::{count, jobs, number, parse_budget, parse_jobs, ScenarioArgs};
use super::error::{CliError, CliResult, Outcome};
use super::interrupt;
use super::log::LogArgs;
use super::progress::{Reporter, ViolationsTo};
use clap::Args;
use shardstorm_harness::explore::{explore, ExploreConfig, SeedSource, Shard};
use shardstorm_harness::guided::{Guidance, Mode};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Seeds explored when neither `--seeds` nor `--duration` is given.
pub const DEFAULT_SEEDS: u64 = 200;

/// Where failures' run files go unless `--out` is given: outside `regressions/`, which
/// `cargo test` replays (promote a file there by hand, see the README).
pub const DEFAULT_OUT: &str = "out/failures";

/// Arguments of `explore`.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Seeds to explore (at least 1)
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_SEEDS,
        conflicts_with = "duration",
        allow_negative_numbers = true,
        value_parser = count
    )]
    pub seeds: u64,
    /// First seed
    #[arg(long, value_name = "S", default_value_t = 0, allow_negative_numbers = true, value_parser = number::<u64>)]
    pub start: u64,
    /// Explore until this much wall time has passed (e.g. 90s, 10m, 1h) instead of a seed count
    #[arg(long, value_name = "TIME", value_parser = parse_budget)]
    pub duration: Option<Duration>,
    /// Worker threads, one simulation each [default: available parallelism]
    #[arg(long, value_name = "J", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Explore only the seeds s with s % N == I (0-based), for sharding across machines
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub log: LogArgs,
    /// Directory for a run file per failure (seed-<S>-<invariant>.run), created if missing
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Print the summary as one JSON object on stdout (violations go to stderr)
    #[arg(long)]
    pub json: bool,
    /// Stop pulling new seeds after the first violation
    #[arg(long)]
    pub stop_on_first: bool,
    /// Coverage-guided: a corpus of runs that reached new features, mutated and forked
    /// (--seeds counts every run; failures are run files, replay them by file)
    #[arg(long, conflicts_with = "rare_points")]
    pub guided: bool,
    /// Plain swarm seeds whose triggered faults favour rarely reached fail points
    #[arg(long)]
    pub rare_points: bool,
    /// Seed of the guided campaign's own choices (same seed and seed range: same runs)
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub campaign_seed: u64,
    /// Load the guided campaign's corpus and coverage from DIR and save them there
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Fail (exit 1) when a catalogued fail point was never reached
    #[arg(long)]
    pub require_reached: bool,
}

impl ExploreArgs {
    /// The campaign these arguments describe (its scenario validated).
    pub fn config(&self) -> Result<ExploreConfig, CliError> {
        let seeds = match self.duration {
            Some(limit) => SeedSource::Duration {
                start: self.start,
                limit,
            },
            None => SeedSource::Count {
                start: self.start,
                n: self.seeds,
            },
        };
        Ok(ExploreConfig {
            seeds,
            jobs: jobs(self.jobs),
            shard: self.shard,
            template: self.scenario.spec(0)?,
            stop_after_first: self.stop_on_first,
            out: Some(self.out.clone()),
            guidance: self.guidance(),
        })
    }

    /// The feedback these arguments ask for (`--corpus` alone implies `--guided`).
    pub fn guidance(&self) -> Option<Guidance> {
        let mode = if self.guided || (self.corpus.is_some() && !self.rare_points) {
            Mode::Guided
        } else if self.rare_points {
            Mode::RarePoints
        } else {
            return None;
        };
        Some(Guidance {
            mode,
            campaign_seed: self.campaign_seed,
            corpus: self.corpus.clone(),
        })
    }
}

/// Creates `dir` if needed and checks that a file can be written in it, before the campaign
/// starts (a failure found an hour in must not lose its run file).
pub fn check_out_dir(dir: &Path) -> Result<(), CliError> {
    let fail = |source| CliError::OutDir {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".shardstorm-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

/// Runs the campaign and prints its summary.
pub fn run(args: &ExploreArgs) -> CliResult {
    let config = args.config()?;
    check_out_dir(&args.out)?;
    interrupt::stop_campaign_on_signal();
    let to = if args.json {
        ViolationsTo::Stderr
    } else {
        ViolationsTo::Stdout
    };
    let reporter = Reporter::new("explore", config.total(), args.duration, to);
    let summary = explore(&config, &|e| reporter.on_event(e));
    reporter.finish();
    if interrupt::interrupted() {
        eprintln!(
            "shardstorm: explore: interrupted after {} seeds; the summary covers those",
            summary.seeds
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("summary: {}", summary.line());
        println!("{}", coverage_line(&summary));
    }
    if let Some(error) = summary.corpus.as_ref().and_then(|c| c.error.as_ref()) {
        eprintln!("shardstorm: corpus: {error}");
    }
    let unreached = args.require_reached && !summary.fail_points_never_reached.is_empty();
    if unreached {
        eprintln!(
            "shardstorm: fail points never reached: {}",
            summary.fail_points_never_reached.join(", ")
        );
    }
    Ok(Outcome::failed_if(
        !summary.violations.is_empty() || unreached,
    ))
}

/// The coverage line under the summary: features, fail points never reached or fired, corpus.
pub fn coverage_line(summary: &shardstorm_harness::explore::Summary) -> String {
    let mut line = format!(
        "coverage: {} features; fail points never reached: {}; never fired: {}",
        summary.features,
        summary.fail_points_never_reached.len(),
        summary.fail_points_never_fired.len()
    );
    if let Some(c) = &summary.corpus {
        line.push_str(&format!("; corpus {} entries ({} new)", c.entries, c.added));
    }
    line
}
