//! The bounded randomized sweep: first every run file under `regressions/` is replayed and must
//! reproduce what it expects, then `CHAOS_SEEDS` seeds of the standard scenario (swarm knobs
//! and a nemesis schedule drawn from each seed, fixed node) must pass the oracle and the
//! liveness phase.
//!
//! Environment:
//! - `CHAOS_SEEDS=N`: explore N seeds (default 24, sized so the whole `cargo test` stays well
//!   under the CI budget on 2 cores in the dev profile);
//! - `CHAOS_SEED_START=S`: first seed (default 0);
//! - `CHAOS_SEED=S`: replay only seed S (and the regressions);
//! - `CHAOS_BUGS=name,name`: switch catalogue bugs on (to see the suite catch them);
//! - `CHAOS_REGRESSIONS=DIR`: replay the run files of DIR instead of `regressions/`.
//!
//! A failing seed is reported with its knobs and the exact replay command.

use shardstorm_harness::runfile::RunFile;
use shardstorm_harness::{run, RunResult, RunSpec};
use shardstorm_node::Bug;
use std::path::{Path, PathBuf};
use std::time::Instant;

const DEFAULT_SEEDS: u64 = 24;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={value:?}: {e}")),
    )
}

/// `regressions/` of the workspace, or `CHAOS_REGRESSIONS=DIR`.
fn regressions_dir() -> PathBuf {
    match std::env::var_os("CHAOS_REGRESSIONS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../regressions"),
    }
}

/// Every `*.run` file under `regressions/`, sorted.
fn regression_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(regressions_dir())
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "run"));
    files.sort();
    files
}

/// The trace hash of `shardstorm replay --seed S --hash-only` in a fresh process (a failing
/// seed is checked to reproduce outside this long-lived test process).
fn fresh_process_hash(seed: u64, bugs: &[String]) -> String {
    std::process::Command::new(env!("CARGO_BIN_EXE_shardstorm"))
        .args(["replay", "--seed", &seed.to_string(), "--hash-only"])
        .args(bugs.iter().flat_map(|b| ["--bug", b.as_str()]))
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .unwrap_or_else(|e| format!("<cannot run shardstorm: {e}>"))
}

/// The environment and command that rerun `seed` (with its bugs) in this suite.
fn suite_hint(seed: u64, bugs: &[String]) -> String {
    let bugs = if bugs.is_empty() {
        String::new()
    } else {
        format!("CHAOS_BUGS={} ", bugs.join(","))
    };
    format!("CHAOS_SEED={seed} {bugs}cargo test -p shardstorm-suites --test randomized")
}

#[test]
fn the_suite_hint_names_the_bugs() {
    assert_eq!(
        suite_hint(
            4,
            &["stale-status-clobber".into(), "completion-window".into()]
        ),
        "CHAOS_SEED=4 CHAOS_BUGS=stale-status-clobber,completion-window cargo test -p \
         shardstorm-suites --test randomized"
    );
    assert!(!suite_hint(4, &[]).contains("CHAOS_BUGS"));
}

/// The report of a failing seed: verdict, knobs, the violation's context, the replay command.
fn failure_report(result: &RunResult) -> String {
    let seed = result.spec.seed;
    let bugs: Vec<String> = result
        .spec
        .bugs
        .iter()
        .map(|b| b.name().to_string())
        .collect();
    let bug_args: String = bugs.iter().map(|b| format!(" --bug {b}")).collect();
    let fresh = fresh_process_hash(seed, &bugs);
    let reproduces = if fresh == result.trace_hash {
        "yes"
    } else {
        "NO"
    };
    let violation = result
        .violation
        .as_ref()
        .map_or_else(|| "pass".to_string(), |v| v.to_string());
    let context = result
        .violation
        .as_ref()
        .map(|v| v.context.join("\n    "))
        .unwrap_or_default();
    let knobs = result
        .knobs
        .to_string()
        .lines()
        .collect::<Vec<_>>()
        .join(" ");
    let schedule = result
        .schedule
        .to_string()
        .lines()
        .collect::<Vec<_>>()
        .join("\n    ");
    let hash = &result.trace_hash;
    format!(
        "seed {seed}: {violation}\n  knobs: {knobs}\n  schedule:\n    {schedule}\n  context:\n    {context}\n  trace {hash} here; {fresh} in a fresh process (same trace: {reproduces})\n  replay: cargo run --release -- replay --seed {seed}{bug_args}\n  (or, in this suite: {})",
        suite_hint(seed, &bugs)
    )
}

/// Replays every regression run file; returns the mismatches.
fn replay_regressions() -> Vec<String> {
    let mut failures = Vec::new();
    for path in regression_files() {
        let file = match RunFile::load(&path) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{}: cannot load: {e}", path.display()));
                continue;
            }
        };
        let started = Instant::now();
        let result = run(&file.spec);
        // The meaning `shardstorm replay` uses too: the same verdict reproduces; a changed
        // trace only means the node's behaviour changed along the way (a warning).
        let replayed = file.compare(&result);
        eprintln!(
            "regression {}: expected {}, got {} ({:.1?})",
            path.display(),
            replayed.expected.as_deref().unwrap_or("pass"),
            replayed.got.as_deref().unwrap_or("pass"),
            started.elapsed()
        );
        let mismatches = replayed.mismatches(false);
        if !mismatches.is_empty() {
            failures.push(format!(
                "{}: NOT reproduced: {}\n  replay: cargo run --release -- replay {}",
                path.display(),
                mismatches.join("; "),
                path.display()
            ));
        }
        if let Some(warning) = replayed.hash_warning(false) {
            eprintln!("  warning: {warning}");
        }
        if let Some(failure) = fixed_node_fails(&path, &file) {
            failures.push(failure);
        }
    }
    failures
}

/// A regression that pins a catalogue bug must also pass on the fixed node: same seed, knobs
/// and schedule, bugs switched off.
fn fixed_node_fails(path: &Path, file: &RunFile) -> Option<String> {
    if file.spec.bugs.is_empty() || file.expect_invariant.is_none() {
        return None;
    }
    let mut fixed = file.spec.clone();
    fixed.bugs.clear();
    let violation = run(&fixed).violation?;
    Some(format!(
        "{}: the fixed node fails this schedule: {}",
        path.display(),
        violation.message
    ))
}

#[test]
fn randomized_seeds_after_regressions() {
    let started = Instant::now();
    let mut failures = replay_regressions();
    let seeds: Vec<u64> = match env_u64("CHAOS_SEED") {
        Some(seed) => vec![seed],
        None => {
            let start = env_u64("CHAOS_SEED_START").unwrap_or(0);
            let n = env_u64("CHAOS_SEEDS").unwrap_or(DEFAULT_SEEDS);
            (start..start + n).collect()
        }
    };
    let bugs: Vec<Bug> = std::env::var("CHAOS_BUGS")
        .unwrap_or_default()
        .split(',')
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.trim()
                .parse()
                .unwrap_or_else(|e| panic!("CHAOS_BUGS: {e}"))
        })
        .collect();
    let mut simulated_ms = 0;
    for seed in &seeds {
        let t = Instant::now();
        let mut spec = RunSpec::standard(*seed);
        spec.bugs = bugs.iter().copied().collect();
        let result = run(&spec);
        simulated_ms += result.sim_ms;
        eprintln!(
            "seed {seed}: {} ({:.1?} wall, {:.1} s simulated, trace {})",
            result
                .violation
                .as_ref()
                .map_or("pass".to_string(), |v| v.invariant.to_string()),
            t.elapsed(),
            result.sim_ms as f64 / 1000.0,
            result.trace_hash
        );
        if !result.passed() {
            failures.push(failure_report(&result));
        }
    }
    eprintln!(
        "{} regression file(s), {} seed(s) in {:.1?} ({:.0} s simulated)",
        regression_files().len(),
        seeds.len(),
        started.elapsed(),
        simulated_ms as f64 / 1000.0
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
