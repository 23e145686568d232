//! `shardstorm shrink`: minimize a failing seed or run file with the harness's delta
//! debugging and write the result as a run file that replays without drawing from the seed.

use super::error::{CliError, CliResult, Outcome};
use super::log::LogArgs;
use super::runfiles::{RunSource, Source};
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use shardstorm_harness::runfile::RunFile;
use shardstorm_harness::shrink::{shrink, ShrinkOutcome};
use shardstorm_harness::{run as run_spec, Invariant, RunSpec};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Arguments of `shrink`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("run").required(true).args(["seed", "file"])))]
pub struct ShrinkArgs {
    #[command(flatten)]
    pub run: RunSource,
    #[command(flatten)]
    pub log: LogArgs,
    /// The invariant that must keep failing [default: the file's expect-invariant, else the
    /// one the run violates]
    #[arg(long, value_name = "NAME")]
    pub invariant: Option<Invariant>,
    /// Where to write the minimized run file [default: FILE.min.run, or
    /// out/failures/seed-<S>-<invariant>.min.run]
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The spec to shrink and the invariant asked for.
fn target(args: &ShrinkArgs) -> Result<(RunSpec, Option<Invariant>), CliError> {
    let file = match args.run.load()? {
        Source::Seed(spec) => return Ok((spec, args.invariant)),
        Source::File(file) => file,
    };
    let expected = file
        .expect_invariant
        .as_deref()
        .and_then(|name| name.parse().ok());
    Ok((file.spec, args.invariant.or(expected)))
}

/// The default output path.
fn output_path(args: &ShrinkArgs, seed: u64, invariant: Invariant) -> PathBuf {
    if let Some(out) = &args.output {
        return out.clone();
    }
    match &args.run.file {
        Some(file) => file.with_extension("min.run"),
        None => {
            Path::new(super::explore::DEFAULT_OUT).join(format!("seed-{seed}-{invariant}.min.run"))
        }
    }
}

/// Reports the replay count while shrinking: a spinner on a terminal, periodic lines else.
struct ShrinkProgress {
    started: Instant,
    last_line: Instant,
    spinner: Option<ProgressBar>,
}

impl ShrinkProgress {
    fn new() -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template("shrink {elapsed_precise} {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::new_spinner().with_style(style)
        });
        Self {
            started: Instant::now(),
            last_line: Instant::now(),
            spinner,
        }
    }

    fn update(&mut self, replays: usize) {
        if let Some(spinner) = &self.spinner {
            spinner.set_message(format!("{replays} replays"));
        } else if self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("shrink: {replays} replays in {secs:.0} s");
        }
    }

    fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// Shrinks, writes the run file and prints how it went.
pub fn run(args: &ShrinkArgs) -> CliResult {
    let (spec, invariant) = target(args)?;
    // The directory of the result, checked before minutes of shrinking (the name may depend
    // on the invariant, the directory does not).
    let dir = output_path(args, spec.seed, Invariant::Liveness)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf);
    if let Some(dir) = &dir {
        super::explore::check_out_dir(dir)?;
    }
    let started = Instant::now();
    let mut progress = ShrinkProgress::new();
    let shrunk = shrink(&spec, invariant, &mut |replays| progress.update(replays));
    progress.finish();
    let outcome = match shrunk {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("shardstorm: shrink: {e}");
            return Ok(Outcome::Failed);
        }
    };
    let result = run_spec(&outcome.spec);
    let file = RunFile::from_result(&result);
    let path = output_path(args, spec.seed, outcome.result_invariant);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| {
            CliError::Usage(format!("cannot create {}: {source}", dir.display()))
        })?;
    }
    file.save(&path)?;
    print_outcome(&outcome, started.elapsed(), &path);
    let reproduced = file.expect_invariant.as_deref() == Some(outcome.result_invariant.name());
    if !reproduced {
        println!(
            "warning: the minimized run did not fail with {} on its final replay",
            outcome.result_invariant
        );
    }
    Ok(Outcome::failed_if(!reproduced))
}

fn print_outcome(o: &ShrinkOutcome, took: Duration, path: &Path) {
    let minimal = if o.minimal {
        "1-minimal"
    } else {
        "replay budget exhausted, not proven 1-minimal"
    };
    println!(
        "shrunk seed {} ({}): {} faults -> {} faults in {} replays, {:.1} s ({minimal})",
        o.spec.seed,
        o.result_invariant,
        o.original_faults,
        o.final_faults,
        o.replays,
        took.as_secs_f64()
    );
    println!("{}", o.violation);
    println!("wrote {}", path.display());
    println!("replay: cargo run --release -- replay {}", path.display());
}
