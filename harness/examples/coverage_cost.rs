//! What computing a run's coverage costs next to the run itself:
//! `cargo run --release -p shardstorm-harness --example coverage_cost -- 40` runs seeds
//! 0..40 of the standard scenario on one thread and prints both totals.

use shardstorm_harness::coverage::RunCoverage;
use shardstorm_harness::run::run_with_ledger;
use shardstorm_harness::RunSpec;
use std::time::{Duration, Instant};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(40);
    let (mut runs, mut coverage) = (Duration::ZERO, Duration::ZERO);
    let (mut events, mut features) = (0usize, 0usize);
    for seed in 0..n {
        let started = Instant::now();
        let (result, ledger) = run_with_ledger(&RunSpec::standard(seed));
        let ran = Instant::now();
        let cov = RunCoverage::of_run(result.trace.events(), &ledger);
        coverage += ran.elapsed();
        runs += ran - started;
        events += result.trace.len();
        features += cov.features.len();
    }
    println!(
        "{n} seeds: runs {:.2} s, coverage {:.3} s ({:.2}% of the runs); {} trace events and {} features per run",
        runs.as_secs_f64(),
        coverage.as_secs_f64(),
        100.0 * coverage.as_secs_f64() / runs.as_secs_f64().max(1e-9),
        events / n.max(1) as usize,
        features / n.max(1) as usize
    );
}
