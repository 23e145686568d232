//! Run files as the subcommands that take one (replay, shrink, report) load them: a file
//! written by a build with another behaviour fingerprint loads with one warning line on
//! stderr, since replaying it on this build may give another run.

use super::error::CliError;
use shardstorm_harness::runfile::RunFile;
use std::path::Path;

/// Loads a run file; warns on stderr when another build wrote it.
pub fn load(path: &Path) -> Result<RunFile, CliError> {
    let file = RunFile::load(path)?;
    if let Some(mismatch) = file.build_mismatch() {
        eprintln!("shardstorm: warning: {mismatch}: the replay may differ");
    }
    Ok(file)
}
