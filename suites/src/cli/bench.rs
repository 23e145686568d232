//! `shardstorm bench`: on the standard scenario (5 nodes, 20 shards, 6 epochs, 100 blobs,
//! swarm faults), measure seeds per minute and simulated seconds per wall second with every
//! worker busy, the seeds and wall seconds to the first failure with each catalogue bug
//! switched on, and the peak resident memory (VmHWM).

use super::args::{jobs, parse_jobs};
use super::error::{CliResult, Outcome};
use super::progress::{measured, Reporter, ViolationsTo};
use clap::Args;
use serde::Serialize;
use shardstorm_harness::explore::{explore, ExploreConfig, SeedSource, Summary};
use shardstorm_harness::{run as run_spec, RunSpec};
use shardstorm_node::Bug;
use std::time::Instant;

/// Arguments of `bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Print the results as one JSON object
    #[arg(long)]
    pub json: bool,
    /// Seeds of the throughput measurement
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub seeds: u64,
    /// Seeds explored per bug before reporting "not found"
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub bug_budget: u64,
    /// Worker threads [default: available parallelism]
    #[arg(long, value_name = "J", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Only these bugs (repeatable) [default: the whole catalogue]
    #[arg(long = "bug", value_name = "NAME", value_parser = super::args::bug_parser())]
    pub bugs: Vec<Bug>,
}

/// Time to the first failure with one bug switched on.
#[derive(Debug, Serialize)]
pub struct BugResult {
    pub bug: String,
    pub found: bool,
    /// Seeds up to and including the first failing one.
    pub seeds: Option<u64>,
    /// Wall seconds until the first failure was found.
    pub wall_s: Option<f64>,
    pub invariant: Option<String>,
    /// Seeds explored in all (the budget, or fewer after a failure).
    pub explored: u64,
    /// Failing seeds skipped because they fail without the bug too (the fixed node's failures).
    pub baseline_failures: Vec<u64>,
}

/// Everything `bench` measured.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub scenario: String,
    pub jobs: usize,
    pub seeds: u64,
    pub wall_s: f64,
    pub seeds_per_min: f64,
    pub sim_s_per_wall_s: f64,
    /// CPU seconds (user + system, all threads) the throughput run used.
    pub cpu_s: Option<f64>,
    /// Seeds per CPU minute: the throughput per fully busy core, whatever else the machine runs.
    pub seeds_per_cpu_min: Option<f64>,
    /// Violations of the fixed node during the throughput run.
    pub violations: usize,
    pub bugs: Vec<BugResult>,
    /// Peak resident memory of this process (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
}

fn campaign(seeds: SeedSource, jobs: usize, template: RunSpec, stop: bool) -> ExploreConfig {
    ExploreConfig {
        seeds,
        jobs,
        shard: None,
        template,
        stop_after_first: stop,
        out: None,
    }
}

fn explore_quietly(label: &str, config: &ExploreConfig) -> Summary {
    let reporter = Reporter::new(label, config.total(), None, ViolationsTo::Stderr);
    let summary = explore(config, &|e| {
        if let shardstorm_harness::explore::Event::Progress(_) = e {
            reporter.on_event(e);
        }
    });
    reporter.finish();
    summary
}

/// Explores seeds `0..budget` with `bug` on until a failure that the same seed without the
/// bug does not have (failing seeds of the fixed node are skipped and listed).
fn bug_result(bug: Bug, budget: u64, jobs: usize) -> BugResult {
    let started = Instant::now();
    let template = RunSpec {
        bugs: [bug].into(),
        ..RunSpec::standard(0)
    };
    let mut result = BugResult {
        bug: bug.name().to_string(),
        found: false,
        seeds: None,
        wall_s: None,
        invariant: None,
        explored: 0,
        baseline_failures: Vec::new(),
    };
    let mut start = 0;
    while start < budget {
        let seeds = SeedSource::Count {
            start,
            n: budget - start,
        };
        let round_began = started.elapsed().as_secs_f64();
        let summary = explore_quietly(bug.name(), &campaign(seeds, jobs, template.clone(), true));
        result.explored += summary.seeds;
        let Some(first) = summary.violations.iter().min_by_key(|f| f.seed) else {
            break;
        };
        if !run_spec(&RunSpec::standard(first.seed)).passed() {
            result.baseline_failures.push(first.seed);
            start = first.seed + 1;
            continue;
        }
        result.found = true;
        result.seeds = Some(first.seed + 1);
        result.wall_s = summary.first_violation_s.map(|s| round_began + s);
        result.invariant = Some(first.invariant.clone());
        break;
    }
    result
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (USER_HZ = 100).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident memory from /proc/self/status, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Runs the benchmark and prints a table (or JSON).
pub fn run(args: &BenchArgs) -> CliResult {
    let jobs = jobs(args.jobs);
    let standard = RunSpec::standard(0);
    let cpu_before = cpu_seconds();
    let seeds = SeedSource::Count {
        start: 0,
        n: args.seeds,
    };
    let throughput = measured(
        "bench: throughput",
        explore_quietly(
            "throughput",
            &campaign(seeds, jobs, standard.clone(), false),
        ),
    );
    let cpu_s = cpu_before.zip(cpu_seconds()).map(|(a, b)| b - a);
    let bugs = if args.bugs.is_empty() {
        Bug::ALL.to_vec()
    } else {
        args.bugs.clone()
    };
    let report = BenchReport {
        scenario: format!(
            "{} nodes, {} shards, {} epochs, {} blobs, swarm faults",
            standard.nodes, standard.shards, standard.epochs, standard.blobs
        ),
        jobs,
        seeds: throughput.seeds,
        wall_s: throughput.wall_s,
        seeds_per_min: throughput.seeds_per_min,
        sim_s_per_wall_s: throughput.sim_s_per_wall_s,
        cpu_s,
        seeds_per_cpu_min: cpu_s
            .filter(|c| *c > 0.0)
            .map(|c| throughput.seeds as f64 / c * 60.0),
        violations: throughput.violations.len(),
        bugs: bugs
            .into_iter()
            .map(|b| measured("bench: bug", bug_result(b, args.bug_budget, jobs)))
            .collect(),
        peak_rss_mib: peak_rss_mib(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report, args.bug_budget);
    }
    Ok(Outcome::Clean)
}

fn print_table(r: &BenchReport, budget: u64) {
    println!("standard scenario: {}; {} jobs", r.scenario, r.jobs);
    println!(
        "throughput: {} seeds in {:.1} s: {:.0} seeds/min, {:.0} simulated s per wall s, {} violations",
        r.seeds, r.wall_s, r.seeds_per_min, r.sim_s_per_wall_s, r.violations
    );
    if let (Some(cpu), Some(rate)) = (r.cpu_s, r.seeds_per_cpu_min) {
        println!(
            "cpu: {cpu:.1} s user+system: {rate:.0} seeds per CPU-minute (per fully busy core)"
        );
    }
    println!("{:<34} {:>8} {:>8}  invariant", "bug", "seeds", "wall s");
    for b in &r.bugs {
        match (b.seeds, b.wall_s) {
            (Some(seeds), wall) => println!(
                "{:<34} {seeds:>8} {:>8.1}  {}",
                b.bug,
                wall.unwrap_or_default(),
                b.invariant.as_deref().unwrap_or("-")
            ),
            (None, _) => println!(
                "{:<34} {:>8} {:>8}  not found in {budget} seeds",
                b.bug, "-", "-"
            ),
        }
    }
    for b in r.bugs.iter().filter(|b| !b.baseline_failures.is_empty()) {
        let seeds: Vec<String> = b.baseline_failures.iter().map(u64::to_string).collect();
        println!(
            "  {}: skipped seeds that fail without the bug too: {}",
            b.bug,
            seeds.join(", ")
        );
    }
    match r.peak_rss_mib {
        Some(mib) => println!("peak resident memory: {mib:.1} MiB"),
        None => println!("peak resident memory: unknown (no /proc/self/status)"),
    }
}
