//! `shardstorm merge`: combine the JSON summaries of sharded `explore --json` runs into one.
//!
//! Shards run side by side on separate machines, so the merged `wall_s` is the LONGEST
//! shard's wall time (not the sum); `seeds`, the simulated seconds and the violations add up,
//! and `seeds_per_min` and `sim_s_per_wall_s` are recomputed from those totals over that wall
//! time: the whole campaign's throughput. A file named twice is counted once.

use super::error::{CliError, CliResult, Outcome};
use clap::Args;
use shardstorm_harness::explore::Summary;
use std::path::{Path, PathBuf};

/// Arguments of `merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// JSON summaries written by `explore --json`
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
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
    let parts = distinct(&args.files)
        .into_iter()
        .map(read_summary)
        .collect::<Result<Vec<_>, _>>()?;
    let merged = Summary::merge(&parts);
    println!("{}", serde_json::to_string(&merged)?);
    Ok(Outcome::failed_if(!merged.violations.is_empty()))
}
