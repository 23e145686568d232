//! `shardstorm merge`: combine the JSON summaries of sharded `explore --json` runs into one,
//! and (`--corpus OUT`) the corpus directories of guided campaigns into one.
//!
//! Shards run side by side on separate machines, so the merged `wall_s` is the LONGEST
//! shard's wall time (not the sum); `seeds`, the simulated seconds and the violations add up,
//! and `seeds_per_min` and `sim_s_per_wall_s` are recomputed from those totals over that wall
//! time: the whole campaign's throughput. A summary's `features` cannot be united from counts
//! (the merged figure is the largest shard's); merging the corpus directories gives the exact
//! union: campaigns are kept by id and entries by name, so a corpus that every shard loaded
//! counts once. A file named twice is counted once.

use super::error::{CliError, CliResult, Outcome};
use clap::Args;
use shardstorm_harness::explore::Summary;
use shardstorm_harness::guided::corpus::Corpus;
use std::path::{Path, PathBuf};

/// Arguments of `merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// JSON summaries written by `explore --json`, or corpus directories (with --corpus)
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Merge the corpus directories among FILE into this directory
    #[arg(long, value_name = "OUT")]
    pub corpus: Option<PathBuf>,
}

/// Reads one summary.
pub fn read_summary(path: &Path) -> Result<Summary, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::ReadSummary {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CliError::BadSummary {
        path: path.to_path_buf(),
        source,
    })
}

/// Merges the corpus directories `dirs` (and `out` itself, if it holds one) into `out`.
fn merge_corpora(dirs: &[&PathBuf], out: &Path) -> Result<Corpus, CliError> {
    let usage = |e: shardstorm_harness::guided::corpus::CorpusError| CliError::Usage(e.to_string());
    let mut merged = Corpus::load(out).map_err(usage)?;
    for dir in dirs {
        merged.absorb(Corpus::load(dir).map_err(usage)?);
    }
    merged.save(out).map_err(usage)?;
    Ok(merged)
}

/// The files in order, each file once (the same file named twice, by any path, would count
/// its seeds twice); a warning on stderr names each repeat.
fn distinct(files: &[PathBuf]) -> Vec<&Path> {
    let mut seen = std::collections::BTreeSet::new();
    files
        .iter()
        .filter(|path| {
            let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let first = seen.insert(key);
            if !first {
                eprintln!(
                    "shardstorm: warning: {} given more than once; counted once",
                    path.display()
                );
            }
            first
        })
        .map(PathBuf::as_path)
        .collect()
}

/// Prints the merged summary as JSON; exits 1 if it holds a violation.
pub fn run(args: &MergeArgs) -> CliResult {
    let (dirs, files): (Vec<&PathBuf>, Vec<&PathBuf>) = args.files.iter().partition(|p| p.is_dir());
    let files: Vec<PathBuf> = files.into_iter().cloned().collect();
    if !dirs.is_empty() && args.corpus.is_none() {
        return Err(CliError::Usage(format!(
            "{} is a directory: merging corpus directories needs --corpus OUT",
            dirs[0].display()
        )));
    }
    if let Some(out) = &args.corpus {
        let merged = merge_corpora(&dirs, out)?;
        let coverage = merged.coverage();
        eprintln!(
            "corpus {}: {} entries, {} runs, {} features",
            out.display(),
            merged.entries.len(),
            coverage.runs,
            coverage.feature_count()
        );
        if files.is_empty() {
            let json = serde_json::json!({
                "corpus": out,
                "entries": merged.entries.len(),
                "runs": coverage.runs,
                "features": coverage.feature_count(),
                "fail_points_never_fired": coverage.never_fired(),
                "fail_points_never_reached": coverage.never_reached(),
            });
            println!("{json}");
            return Ok(Outcome::Clean);
        }
    }
    let parts = distinct(&files)
        .into_iter()
        .map(read_summary)
        .collect::<Result<Vec<_>, _>>()?;
    let merged = Summary::merge(&parts);
    println!("{}", serde_json::to_string(&merged)?);
    Ok(Outcome::failed_if(!merged.violations.is_empty()))
}
