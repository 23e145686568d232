//! `shardstorm bench`: on the standard scenario (5 nodes, 20 shards, 6 epochs, 100 blobs,
//! swarm faults), measure seeds per minute and simulated seconds per wall second with every
//! worker busy, the seeds and wall seconds to the first failure with each catalogue bug
//! switched on, and the peak resident memory (VmHWM).

use super::args::{jobs, parse_jobs};
use super::error::{CliResult, Outcome};
use super::progress::{measured, Reporter, ViolationsTo};
use clap::Args;
use serde::Serialize;
use shardstorm_faults::LockExt;
use shardstorm_harness::explore::{explore, Event, ExploreConfig, SeedSource, Summary};
use shardstorm_harness::guided::{Guidance, Mode};
use shardstorm_harness::runfile::RunFile;
use shardstorm_harness::{run as run_spec, RunSpec};
use shardstorm_node::Bug;
use std::sync::Mutex;
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
    /// Random versus guided side by side: seeds and CPU seconds to the first failure per bug,
    /// features after --feature-seeds seeds of the fixed node
    #[arg(long)]
    pub compare: bool,
    /// Campaigns per bug and mode in --compare (campaign seeds 0.., fresh seeds offset by
    /// 1,000,000 per campaign); the table shows the median
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub campaigns: u64,
    /// Seeds of the fixed-node feature count in --compare (features after 500 and 2,000)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub feature_seeds: u64,
    /// A runnable size: 40 throughput seeds, 100 seeds per bug, 300 feature seeds
    #[arg(long)]
    pub quick: bool,
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
    /// `--compare`: random versus guided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

/// One bug, random or guided, in `--compare`.
#[derive(Debug, Serialize)]
pub struct ModeResult {
    pub campaign: u64,
    /// Runs up to and including the first failing one.
    pub seeds: Option<u64>,
    /// CPU seconds of this process until the first failure was reported.
    pub cpu_s: Option<f64>,
    pub wall_s: Option<f64>,
    pub invariant: Option<String>,
    pub explored: u64,
    /// The first failure also failed without the bug (not counted as found).
    pub baseline: bool,
}

/// One bug both ways, in `--compare`.
#[derive(Debug, Serialize)]
pub struct CompareBug {
    pub bug: String,
    pub random: Vec<ModeResult>,
    pub guided: Vec<ModeResult>,
}

/// Random versus guided.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub budget: u64,
    pub bugs: Vec<CompareBug>,
    /// (runs, features) of the fixed node, random and guided.
    pub random_features: Vec<(u64, usize)>,
    pub guided_features: Vec<(u64, usize)>,
    pub random_cpu_s: Option<f64>,
    pub guided_cpu_s: Option<f64>,
}

fn campaign(seeds: SeedSource, jobs: usize, template: RunSpec, stop: bool) -> ExploreConfig {
    ExploreConfig {
        seeds,
        jobs,
        shard: None,
        template,
        stop_after_first: stop,
        out: None,
        guidance: None,
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

/// One campaign with `bug` on, random or guided, until its first failure; the failure counts
/// only if the same run fails without the bug (else `baseline`).
fn mode_result(bug: Bug, guided: bool, k: u64, budget: u64, jobs: usize) -> ModeResult {
    let template = RunSpec {
        bugs: [bug].into(),
        ..RunSpec::standard(0)
    };
    let start = k * 1_000_000;
    let mut config = campaign(SeedSource::Count { start, n: budget }, jobs, template, true);
    let dir = std::env::temp_dir().join(format!(
        "shardstorm-bench-{}-{}-{k}-{guided}",
        std::process::id(),
        bug.name()
    ));
    config.out = Some(dir.clone());
    if guided {
        config.guidance = Some(Guidance {
            mode: Mode::Guided,
            campaign_seed: k,
            corpus: None,
        });
    }
    let cpu_start = cpu_seconds();
    let first_cpu = Mutex::new(None);
    let label = format!(
        "{}{}",
        if guided { "guided " } else { "random " },
        bug.name()
    );
    let reporter = Reporter::new(&label, config.total(), None, ViolationsTo::Stderr);
    let summary = explore(&config, &|e| match e {
        Event::Progress(_) => reporter.on_event(e),
        Event::Violation(_) => {
            let mut first = first_cpu.lock_ok();
            first.get_or_insert_with(cpu_seconds);
        }
    });
    reporter.finish();
    let first_cpu = first_cpu.into_inner_ok();
    let first = summary
        .violations
        .iter()
        .min_by_key(|f| f.run.unwrap_or(f.seed.saturating_sub(start)));
    let mut result = ModeResult {
        campaign: k,
        seeds: None,
        cpu_s: None,
        wall_s: None,
        invariant: None,
        explored: summary.seeds,
        baseline: false,
    };
    if let Some(first) = first {
        let spec = first
            .file
            .as_ref()
            .and_then(|f| RunFile::load(f).ok())
            .map(|f| f.spec);
        let mut without = spec.unwrap_or_else(|| RunSpec::standard(first.seed));
        without.bugs.clear();
        if run_spec(&without).passed() {
            result.seeds = Some(first.run.unwrap_or(first.seed - start) + 1);
            result.cpu_s = cpu_start.zip(first_cpu.flatten()).map(|(a, b)| b - a);
            result.wall_s = summary.first_violation_s;
            result.invariant = Some(first.invariant.clone());
        } else {
            result.baseline = true;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The fixed node's features over `seeds` runs, random or guided; and the CPU seconds.
fn feature_curve(guided: bool, seeds: u64, jobs: usize) -> (Vec<(u64, usize)>, Option<f64>) {
    let mut config = campaign(
        SeedSource::Count { start: 0, n: seeds },
        jobs,
        RunSpec::standard(0),
        false,
    );
    if guided {
        config.guidance = Some(Guidance {
            mode: Mode::Guided,
            campaign_seed: 0,
            corpus: None,
        });
    }
    let label = if guided {
        "guided features"
    } else {
        "random features"
    };
    let cpu = cpu_seconds();
    let summary = explore_quietly(label, &config);
    let cpu = cpu.zip(cpu_seconds()).map(|(a, b)| b - a);
    let mut curve = summary.feature_curve.clone();
    if curve.last().map(|(n, _)| *n) != Some(summary.seeds) {
        curve.push((summary.seeds, summary.features));
    }
    (curve, cpu)
}

fn comparison(args: &BenchArgs, bugs: &[Bug], budget: u64, jobs: usize) -> Comparison {
    let feature_seeds = if args.quick { 300 } else { args.feature_seeds };
    let (random_features, random_cpu_s) = feature_curve(false, feature_seeds, jobs);
    let (guided_features, guided_cpu_s) = feature_curve(true, feature_seeds, jobs);
    let bugs = bugs
        .iter()
        .map(|&bug| {
            let both = |guided| {
                (0..args.campaigns.max(1))
                    .map(|k| mode_result(bug, guided, k, budget, jobs))
                    .collect::<Vec<_>>()
            };
            CompareBug {
                bug: bug.name().to_string(),
                random: both(false),
                guided: both(true),
            }
        })
        .collect();
    Comparison {
        budget,
        bugs,
        random_features,
        guided_features,
        random_cpu_s,
        guided_cpu_s,
    }
}

/// The median of the found runs (a campaign that found nothing counts as more than any).
fn median(results: &[ModeResult], of: impl Fn(&ModeResult) -> Option<f64>) -> Option<f64> {
    let mut xs: Vec<f64> = results
        .iter()
        .map(|r| of(r).unwrap_or(f64::INFINITY))
        .collect();
    xs.sort_by(f64::total_cmp);
    let m = *xs.get(xs.len() / 2)?;
    m.is_finite().then_some(m)
}

/// Runs the benchmark and prints a table (or JSON).
pub fn run(args: &BenchArgs) -> CliResult {
    let jobs = jobs(args.jobs);
    let (throughput_seeds, bug_budget) = if args.quick {
        (40, 100)
    } else {
        (args.seeds, args.bug_budget)
    };
    let standard = RunSpec::standard(0);
    let cpu_before = cpu_seconds();
    let seeds = SeedSource::Count {
        start: 0,
        n: throughput_seeds,
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
        bugs: if args.compare {
            Vec::new()
        } else {
            bugs.iter()
                .map(|b| measured("bench: bug", bug_result(*b, bug_budget, jobs)))
                .collect()
        },
        comparison: args
            .compare
            .then(|| comparison(args, &bugs, bug_budget, jobs)),
        peak_rss_mib: peak_rss_mib(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report, bug_budget);
        if let Some(c) = &report.comparison {
            print_comparison(c);
        }
    }
    Ok(Outcome::Clean)
}

fn print_comparison(c: &Comparison) {
    let cell = |rs: &[ModeResult]| {
        let seeds = median(rs, |r| r.seeds.map(|s| s as f64));
        let cpu = median(rs, |r| r.cpu_s);
        match (seeds, cpu) {
            (Some(s), Some(cpu)) => format!("{s:>8.0} {cpu:>8.1}"),
            (Some(s), None) => format!("{s:>8.0} {:>8}", "?"),
            _ => format!("{:>8} {:>8}", "-", "-"),
        }
    };
    println!(
        "random vs guided, median over {} campaign(s), budget {} runs each ('-': not found):",
        c.bugs.first().map_or(0, |b| b.random.len()),
        c.budget
    );
    println!(
        "{:<38} {:>8} {:>8} | {:>8} {:>8}",
        "bug", "random", "cpu s", "guided", "cpu s"
    );
    for b in &c.bugs {
        println!("{:<38} {} | {}", b.bug, cell(&b.random), cell(&b.guided));
    }
    let at = |curve: &[(u64, usize)], n: u64| {
        curve
            .iter()
            .rfind(|(k, _)| *k <= n)
            .map_or("-".to_string(), |(k, f)| format!("{f} (after {k})"))
    };
    let last = c.random_features.last().map_or(0, |(n, _)| *n);
    let mut marks: Vec<u64> = [500, 2000].into_iter().filter(|n| *n < last).collect();
    marks.push(last);
    for n in marks {
        println!(
            "features after {n} seeds of the fixed node: random {}, guided {}",
            at(&c.random_features, n),
            at(&c.guided_features, n)
        );
    }
    if let (Some(r), Some(g)) = (c.random_cpu_s, c.guided_cpu_s) {
        println!("feature campaigns' CPU seconds: random {r:.1}, guided {g:.1}");
    }
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
