//! `shardstorm replay`: run one seed or run file and print its verdict and trace hash; a run
//! file's `expect-*` lines say whether the run reproduced. A file written by another build
//! (another behaviour fingerprint) replays after a warning, and a report that it did not
//! reproduce names both builds.

use super::error::{CliResult, Outcome};
use super::log::LogArgs;
use super::runfiles::{RunSource, Source};
use clap::{ArgGroup, Args};
use shardstorm_harness::coverage::{Features, RunCoverage};
use shardstorm_harness::run::run_with_ledger;
use shardstorm_harness::runfile::BuildMismatch;
use shardstorm_harness::{RunResult, RunSpec};

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
}

/// What the replayed run is expected to do (from a run file's `expect-*` lines).
struct Expectation {
    invariant: Option<String>,
    hash: Option<String>,
    /// The file was written by another build.
    build: Option<BuildMismatch>,
}

impl Expectation {
    /// The mismatches between the expectation and the result (empty: reproduced).
    fn mismatches(&self, result: &RunResult) -> Vec<String> {
        let got = result
            .violation
            .as_ref()
            .map(|v| v.invariant.name().to_string());
        let mut out = Vec::new();
        if got != self.invariant {
            let show = |i: &Option<String>| i.clone().unwrap_or_else(|| "pass".into());
            out.push(format!(
                "expected {}, got {}",
                show(&self.invariant),
                show(&got)
            ));
        }
        if let Some(hash) = self.hash.as_ref().filter(|h| **h != result.trace_hash) {
            out.push(format!("expected trace {hash}, got {}", result.trace_hash));
        }
        if let Some(build) = self.build.as_ref().filter(|_| !out.is_empty()) {
            out.push(build.to_string());
        }
        out
    }
}

/// Replays and reports.
pub fn run(args: &ReplayArgs) -> CliResult {
    let (spec, expectation) = target(args)?;
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
    let Some(expectation) = expectation else {
        return Ok(Outcome::failed_if(!result.passed()));
    };
    let mismatches = expectation.mismatches(&result);
    if !args.hash_only {
        if mismatches.is_empty() {
            println!("reproduced: {}", verdict_word(&result));
        } else {
            println!("NOT reproduced: {}", mismatches.join("; "));
        }
    }
    Ok(Outcome::failed_if(!mismatches.is_empty()))
}

/// The spec to run and, for a run file with `expect-*` lines, what it should do.
fn target(args: &ReplayArgs) -> Result<(RunSpec, Option<Expectation>), super::error::CliError> {
    let file = match args.run.load()? {
        Source::Seed(spec) => return Ok((spec, None)),
        Source::File(file) => file,
    };
    let expects = file.expect_invariant.is_some() || file.expect_hash.is_some();
    let build = file.build_mismatch();
    let expectation = expects.then_some(Expectation {
        invariant: file.expect_invariant,
        hash: file.expect_hash,
        build,
    });
    Ok((file.spec, expectation))
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
