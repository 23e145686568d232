//! `shardstorm explore`: a randomized campaign over seeds (a count or a time budget,
//! optionally one `--shard I/N` slice), a run file per failure, one summary line or JSON.

use super::args::{jobs, parse_duration, parse_jobs, ScenarioArgs};
use super::error::{CliResult, Outcome};
use super::log::LogArgs;
use super::progress::{Reporter, ViolationsTo};
use clap::Args;
use shardstorm_harness::explore::{explore, ExploreConfig, SeedSource, Shard};
use std::path::PathBuf;
use std::time::Duration;

/// Seeds explored when neither `--seeds` nor `--duration` is given.
pub const DEFAULT_SEEDS: u64 = 200;

/// Arguments of `explore`.
#[derive(Args, Debug)]
pub struct ExploreArgs {
    /// Seeds to explore
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SEEDS, conflicts_with = "duration")]
    pub seeds: u64,
    /// First seed
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub start: u64,
    /// Explore until this much wall time has passed (e.g. 90s, 10m, 1h) instead of a seed count
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
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
    /// Directory for a run file per failure (seed-<S>-<invariant>.run)
    #[arg(long, value_name = "DIR", default_value = "regressions")]
    pub out: PathBuf,
    /// Print the summary as one JSON object on stdout (violations go to stderr)
    #[arg(long)]
    pub json: bool,
    /// Stop pulling new seeds after the first violation
    #[arg(long)]
    pub stop_on_first: bool,
}

impl ExploreArgs {
    /// The campaign these arguments describe.
    pub fn config(&self) -> ExploreConfig {
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
        ExploreConfig {
            seeds,
            jobs: jobs(self.jobs),
            shard: self.shard,
            template: self.scenario.spec(0),
            stop_after_first: self.stop_on_first,
            out: Some(self.out.clone()),
            guidance: None,
        }
    }
}

/// Runs the campaign and prints its summary.
pub fn run(args: &ExploreArgs) -> CliResult {
    let config = args.config();
    let to = if args.json {
        ViolationsTo::Stderr
    } else {
        ViolationsTo::Stdout
    };
    let reporter = Reporter::new("explore", config.total(), args.duration, to);
    let summary = explore(&config, &|e| reporter.on_event(e));
    reporter.finish();
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("summary: {}", summary.line());
    }
    Ok(Outcome::failed_if(!summary.violations.is_empty()))
}
