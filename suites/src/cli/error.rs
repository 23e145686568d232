//! The CLI's errors and exit codes: 0 clean, 1 a violation was found (or a run did not do
//! what was expected), 2 bad usage or input.

use shardstorm_harness::runfile::RunFileError;
use std::path::PathBuf;
use std::process::ExitCode;

/// What a subcommand found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed or reproduced as expected: exit 0.
    Clean,
    /// A violation, a divergence or a run that did not reproduce: exit 1.
    Failed,
}

impl Outcome {
    /// `Failed` when `failed`, else `Clean`.
    pub fn failed_if(failed: bool) -> Self {
        if failed {
            Outcome::Failed
        } else {
            Outcome::Clean
        }
    }

    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
        }
    }
}

/// Bad usage or input; printed as one line, exit 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    RunFile(#[from] RunFileError),
    #[error(transparent)]
    Spec(#[from] shardstorm_harness::SpecError),
    #[error("cannot write to {}: {source}", dir.display())]
    OutDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read summary {}: {source}", path.display())]
    ReadSummary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a shardstorm JSON summary: {source}", path.display())]
    BadSummary {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot run {}: {source}", exe.display())]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error("fresh process for seed {seed} failed: {detail}")]
    FreshProcess { seed: u64, detail: String },
    #[error("bad log filter {filter:?}: {reason}")]
    LogFilter { filter: String, reason: String },
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    pub const EXIT_CODE: u8 = 2;
}

/// The result of a subcommand.
pub type CliResult = Result<Outcome, CliError>;
