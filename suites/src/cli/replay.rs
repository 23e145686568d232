//! `shardstorm replay`: run one seed or run file and print its verdict and trace hash; a run
//! file's `expect-*` lines say whether the run reproduced, in the one meaning the regression
//! suite shares ([`RunFile::compare`]: the same invariant; another trace hash is a warning,
//! a failure with `--strict-hash`). A file written by another build (another behaviour
//! fingerprint) replays after a warning, and a report that it did not reproduce names both
//! builds.

use super::error::{CliResult, Outcome};
use super::log::LogArgs;
use super::runfiles::{RunSource, Source};
use clap::{ArgGroup, Args};
use shardstorm_harness::coverage::{Features, RunCoverage};
use shardstorm_harness::run::run_with_ledger;
use shardstorm_harness::runfile::RunFile;
use shardstorm_harness::RunResult;

/// Arguments of `replay`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("run").required(true).args(["seed", "file"])))]
pub struct ReplayArgs {
    #[command(flatten)]
    pub run: RunSource,
    #[command(flatten)]
    pub log: LogArgs,
    /// Print the whole trace
    #[arg(long)]
    pub trace: bool,
    /// Print the condensed trace (statuses, faults, epochs)
    #[arg(long, conflicts_with = "trace")]
    pub condensed: bool,
    /// Print only the trace hash
    #[arg(long, conflicts_with_all = ["trace", "condensed"])]
    pub hash_only: bool,
    /// Print the run's coverage features (one per line, with hit counts)
    #[arg(long, conflicts_with = "hash_only")]
    pub coverage: bool,
    /// Also fail (exit 1) when a run file's replay ends in the expected verdict but with
    /// another trace hash (by default that is a warning)
    #[arg(long)]
    pub strict_hash: bool,
}

/// Replays and reports.
pub fn run(args: &ReplayArgs) -> CliResult {
    let (spec, file) = match args.run.load()? {
        Source::Seed(spec) => (spec, None),
        Source::File(file) => (file.spec.clone(), Some(file).filter(RunFile::expects)),
    };
    let (result, ledger) = run_with_ledger(&spec);
    if args.coverage {
        let features = Features::of_run(result.trace.events(), &ledger);
        for line in features.describe() {
            println!("coverage {line}");
        }
        println!(
            "coverage: {} features",
            RunCoverage::of_run(result.trace.events(), &ledger)
                .features
                .len()
        );
    }
    if args.hash_only {
        println!("{}", result.trace_hash);
    } else {
        print_result(args, &result);
    }
    let Some(file) = file else {
        return Ok(Outcome::failed_if(!result.passed()));
    };
    let replayed = file.compare(&result);
    if let Some(warning) = replayed.hash_warning(args.strict_hash) {
        eprintln!("shardstorm: warning: {warning}");
    }
    let mismatches = replayed.mismatches(args.strict_hash);
    if !args.hash_only {
        if mismatches.is_empty() {
            println!("reproduced: {}", verdict_word(&result));
        } else {
            println!("NOT reproduced: {}", mismatches.join("; "));
        }
    }
    Ok(Outcome::failed_if(!mismatches.is_empty()))
}

fn verdict_word(result: &RunResult) -> String {
    match &result.violation {
        Some(v) => format!("{} (trace {})", v.invariant, result.trace_hash),
        None => format!("pass (trace {})", result.trace_hash),
    }
}

fn print_result(args: &ReplayArgs, result: &RunResult) {
    if args.trace {
        print!("{}", result.trace.text());
    } else if args.condensed {
        print!("{}", result.trace.condensed());
    }
    match &result.violation {
        None => println!("seed {}: pass", result.spec.seed),
        Some(v) => {
            println!("seed {}: {v}", result.spec.seed);
            if !args.trace && !args.condensed {
                v.context.iter().for_each(|line| println!("  {line}"));
            }
        }
    }
    println!(
        "trace {} ({} events, {:.1} simulated s, {} steps)",
        result.trace_hash,
        result.trace.len(),
        result.sim_ms as f64 / 1000.0,
        result.steps
    );
}
