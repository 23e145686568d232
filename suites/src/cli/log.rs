//! `--log <FILTER>`: the `tracing` events of the code under test on stderr, selected by an
//! `EnvFilter` directive such as `shardstorm_node=debug`. Lines carry no timestamp: wall-clock
//! time differs between runs of the same seed, and readers compare logs of replays.

use super::error::CliError;
use clap::Args;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// The `--log` option of the subcommands that run simulations.
#[derive(Args, Clone, Debug, Default)]
pub struct LogArgs {
    /// Print log events matching FILTER to stderr (EnvFilter syntax), e.g.
    /// shardstorm_node=debug or shardstorm_node=info,shardstorm_harness=debug
    #[arg(long = "log", value_name = "FILTER", value_parser = parse_filter)]
    pub filter: Option<String>,
}

/// Parses an `EnvFilter` directive list, for `--log`.
fn parse(text: &str) -> Result<EnvFilter, CliError> {
    let bad = |reason: String| CliError::LogFilter {
        filter: text.to_string(),
        reason,
    };
    if text.trim().is_empty() {
        return Err(bad(
            "expected a directive such as shardstorm_node=debug".into()
        ));
    }
    EnvFilter::builder()
        .parse(text)
        .map_err(|e| bad(e.to_string()))
}

/// Checks a `--log` value while the command line is parsed.
fn parse_filter(text: &str) -> Result<String, String> {
    parse(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

impl LogArgs {
    /// Installs the process-wide stderr subscriber when `--log` was given (all worker
    /// threads log through it).
    pub fn install(&self) -> Result<(), CliError> {
        let Some(text) = &self.filter else {
            return Ok(());
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(parse(text)?)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| CliError::Usage(format!("cannot install the --log subscriber: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_or_say_why_not() {
        assert!(parse_filter("shardstorm_node=debug").is_ok());
        assert!(parse_filter("shardstorm_node=info,shardstorm_harness=debug").is_ok());
        assert!(parse_filter("debug").is_ok());
        for bad in ["", "  ", "shardstorm_node=loud", "[{"] {
            let message = parse_filter(bad).expect_err(bad);
            assert!(message.starts_with("bad log filter"), "{bad}: {message}");
            assert!(!message.contains('\n'), "{bad}: {message}");
        }
    }
}
