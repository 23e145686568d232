//! `shardstorm report`: replay one seed or run file and write its self-contained HTML report
//! (knobs, schedule, verdict, timeline as inline SVG).

use super::error::{CliError, CliResult, Outcome};
use super::runfiles::{RunSource, Source};
use clap::{ArgGroup, Args};
use shardstorm_harness::report::render;
use shardstorm_harness::{run as run_spec, RunSpec};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `report`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("run").required(true).args(["seed", "file"])))]
pub struct ReportArgs {
    #[command(flatten)]
    pub run: RunSource,
    /// Where to write the page [default: FILE with .html, or seed-<S>.html]
    #[arg(short = 'o', long = "output", value_name = "HTML")]
    pub output: Option<PathBuf>,
}

fn target(args: &ReportArgs) -> Result<RunSpec, CliError> {
    Ok(match args.run.load()? {
        Source::Seed(spec) => spec,
        Source::File(file) => file.spec,
    })
}

fn output_path(args: &ReportArgs, seed: u64) -> PathBuf {
    match (&args.output, &args.run.file) {
        (Some(out), _) => out.clone(),
        (None, Some(file)) => file.with_extension("html"),
        (None, None) => PathBuf::from(format!("seed-{seed}.html")),
    }
}

/// Writes `text` to a temporary file next to `path`, then renames it into place.
fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Usage(format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .map_or_else(|| "report".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(fail)
}

/// Replays the run and writes its report.
pub fn run(args: &ReportArgs) -> CliResult {
    let spec = target(args)?;
    let result = run_spec(&spec);
    let path = output_path(args, spec.seed);
    write_atomic(&path, &render(&result))?;
    let verdict = result
        .violation
        .as_ref()
        .map_or_else(|| "pass".to_string(), |v| v.to_string());
    println!("seed {}: {verdict}", spec.seed);
    println!("wrote {} (trace {})", path.display(), result.trace_hash);
    Ok(Outcome::Clean)
}
