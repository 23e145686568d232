//! `shardstorm check-determinism`: run every seed twice in this process (and, with
//! `--fresh-process`, once more in a fresh `shardstorm replay --hash-only`) and compare.

use super::args::{count, jobs, number, parallel_map, parse_jobs, ScenarioArgs};
use super::error::{CliError, CliResult, Outcome};
use super::log::LogArgs;
use clap::Args;
use shardstorm_harness::determinism::{check, compare_fresh, describe, Divergence};
use shardstorm_harness::explore::replay_args;
use shardstorm_harness::RunSpec;
use std::process::Command;

/// Arguments of `check-determinism`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Seeds to check
    #[arg(long, value_name = "N", default_value_t = 10, allow_negative_numbers = true, value_parser = count)]
    pub seeds: u64,
    /// First seed
    #[arg(long, value_name = "S", default_value_t = 0, allow_negative_numbers = true, value_parser = number::<u64>)]
    pub start: u64,
    /// Also replay each seed in a fresh process and compare its trace hash
    #[arg(long)]
    pub fresh_process: bool,
    /// Worker threads [default: available parallelism]
    #[arg(long, value_name = "J", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Checks every seed and prints one line per seed plus a summary line.
pub fn run(args: &CheckArgs) -> CliResult {
    let specs: Vec<RunSpec> = (0..args.seeds)
        .map_while(|i| args.start.checked_add(i))
        .map(|seed| args.scenario.spec(seed))
        .collect::<Result<_, _>>()?;
    let results = parallel_map(&specs, jobs(args.jobs), |spec| {
        let result = check_one(spec, args.fresh_process);
        if let Ok(checked) = &result {
            println!("{}", describe(spec.seed, checked));
        }
        result
    });
    let mut divergences = 0;
    for result in results {
        if result?.is_err() {
            divergences += 1;
        }
    }
    let how = if args.fresh_process {
        "in this and a fresh process"
    } else {
        "twice in this process"
    };
    println!(
        "check-determinism: {} seeds run {how}, {divergences} divergences",
        specs.len()
    );
    Ok(Outcome::failed_if(divergences > 0))
}

/// One seed: the in-process check, then the fresh-process hash if asked for.
fn check_one(spec: &RunSpec, fresh: bool) -> Result<Result<String, Divergence>, CliError> {
    let hash = match check(spec) {
        Ok(hash) => hash,
        Err(d) => return Ok(Err(d)),
    };
    if !fresh {
        return Ok(Ok(hash));
    }
    let other = fresh_hash(spec)?;
    Ok(compare_fresh(spec.seed, &hash, &other).map(|()| hash))
}

/// Runs `shardstorm replay <args> --hash-only` in a new process and returns its hash.
fn fresh_hash(spec: &RunSpec) -> Result<String, CliError> {
    let exe = std::env::current_exe().map_err(|source| CliError::Spawn {
        exe: "shardstorm".into(),
        source,
    })?;
    let output = Command::new(&exe)
        .arg("replay")
        .args(replay_args(spec).split_whitespace())
        .arg("--hash-only")
        .output()
        .map_err(|source| CliError::Spawn {
            exe: exe.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let ran = matches!(output.status.code(), Some(0 | 1));
    if !ran || stdout.len() != 16 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = format!(
            "{}: {}",
            output.status,
            stderr.lines().last().unwrap_or("no output")
        );
        return Err(CliError::FreshProcess {
            seed: spec.seed,
            detail,
        });
    }
    Ok(stdout)
}
