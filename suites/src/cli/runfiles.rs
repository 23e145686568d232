//! The run a subcommand acts on (replay, shrink, report): a seed of the scenario, or a run
//! file. A file written by a build with another behaviour fingerprint loads with one warning
//! line on stderr, since replaying it on this build may give another run.

use super::args::{number, ScenarioArgs};
use super::error::CliError;
use clap::Args;
use shardstorm_harness::runfile::RunFile;
use shardstorm_harness::RunSpec;
use std::path::{Path, PathBuf};

/// `--seed S [scenario options]` or `FILE` (each subcommand requires one of the two).
#[derive(Args, Debug)]
pub struct RunSource {
    /// This seed of the (standard unless given) scenario
    #[arg(long, value_name = "S", allow_negative_numbers = true, value_parser = number::<u64>)]
    pub seed: Option<u64>,
    /// This run file
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}

/// What a [`RunSource`] names.
pub enum Source {
    Seed(RunSpec),
    File(RunFile),
}

impl RunSource {
    /// The seed's spec, or the loaded run file (scenario options with a file are an error).
    pub fn load(&self) -> Result<Source, CliError> {
        match &self.file {
            None => Ok(Source::Seed(
                self.scenario.spec(self.seed.unwrap_or_default())?,
            )),
            Some(path) => {
                self.scenario.reject_with_file()?;
                Ok(Source::File(load(path)?))
            }
        }
    }
}

/// Loads a run file; warns on stderr when another build wrote it.
pub fn load(path: &Path) -> Result<RunFile, CliError> {
    let file = RunFile::load(path)?;
    if let Some(mismatch) = file.build_mismatch() {
        eprintln!("shardstorm: warning: {mismatch}: the replay may differ");
    }
    Ok(file)
}
