//! The `shardstorm` command line: argument parsing (clap), dispatch to one module per
//! subcommand (after installing the `--log` subscriber of those that have one), and the exit
//! codes (0 clean, 1 violation found, 2 bad usage or input, always
//! as one line on stderr).

mod args;
mod bench;
mod determinism;
mod error;
mod explore;
mod interrupt;
mod log;
mod merge;
mod progress;
mod replay;
mod report;
mod runfiles;
mod shrink;
mod stdout;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use error::{CliError, CliResult};
use std::process::ExitCode;

/// Deterministic chaos testing of shard sync on a simulated storage-node cluster.
#[derive(Parser, Debug)]
#[command(
    name = "shardstorm",
    version,
    arg_required_else_help = true,
    after_help = "Exit status: 0 clean; 1 a violation or divergence was found, or a run did not \
                  reproduce; 2 bad usage or input (one line on stderr)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Explore random seeds in parallel; write a run file per failure
    Explore(explore::ExploreArgs),
    /// Replay one seed or run file; print its verdict and trace hash
    Replay(replay::ReplayArgs),
    /// Run seeds twice and compare their traces event by event
    CheckDeterminism(determinism::CheckArgs),
    /// Combine the JSON summaries of sharded explore runs (wall time: the longest shard's)
    Merge(merge::MergeArgs),
    /// Measure throughput and time to first failure per catalogue bug
    Bench(bench::BenchArgs),
    /// Minimize a failing seed or run file into a small run file
    Shrink(shrink::ShrinkArgs),
    /// Write a self-contained HTML report (timeline, knobs, schedule) of a seed or run file
    Report(report::ReportArgs),
}

/// Restores the default SIGPIPE action, so `shardstorm replay --trace | head` ends quietly like
/// any Unix filter instead of panicking when stdout closes.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at startup, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Parses the command line, runs the subcommand and maps the result to an exit code.
pub fn main() -> ExitCode {
    restore_sigpipe();
    stdout::install_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let dispatched =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(&cli.command)));
    match dispatched {
        Ok(Ok(outcome)) => outcome.exit_code(),
        Ok(Err(e)) => usage_error(&e),
        Err(panic) => match stdout::failure() {
            Some(e) => usage_error(&e),
            None => std::panic::resume_unwind(panic),
        },
    }
}

impl Command {
    /// The `--log` option of the subcommands that have one.
    fn log(&self) -> Option<&log::LogArgs> {
        match self {
            Command::Explore(args) => Some(&args.log),
            Command::Replay(args) => Some(&args.log),
            Command::CheckDeterminism(args) => Some(&args.log),
            Command::Shrink(args) => Some(&args.log),
            Command::Merge(_) | Command::Bench(_) | Command::Report(_) => None,
        }
    }
}

fn dispatch(command: &Command) -> CliResult {
    if let Some(log) = command.log() {
        log.install()?;
    }
    if let Command::Bench(_) = command {
        interrupt::stop_campaign_on_signal();
    }
    match command {
        Command::Explore(args) => explore::run(args),
        Command::Replay(args) => replay::run(args),
        Command::CheckDeterminism(args) => determinism::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Bench(args) => {
            let outcome = bench::run(args);
            if interrupt::interrupted() {
                eprintln!(
                    "shardstorm: bench: interrupted: the measurements after the interruption \
                     explored few or no seeds (the lines printed before it are complete)"
                );
            }
            outcome
        }
        Command::Shrink(args) => shrink::run(args),
        Command::Report(args) => report::run(args),
    }
}

/// Prints a bad-input error as one line; exit 2.
fn usage_error(e: &CliError) -> ExitCode {
    eprintln!("shardstorm: error: {e}");
    ExitCode::from(CliError::EXIT_CODE)
}

/// Help and version print as clap renders them; every other clap error becomes one line.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(CliError::EXIT_CODE);
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(code);
    }
    eprintln!(
        "shardstorm: {} (see shardstorm --help)",
        one_line(&e.render().to_string())
    );
    ExitCode::from(code)
}

/// The message part of a rendered clap error (up to the first blank line), on one line.
fn one_line(rendered: &str) -> String {
    let lines: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
        .collect();
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("shardstorm").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_shard_is_rejected_on_one_line() {
        let e = parse(&["explore", "--shard", "3/2"]).expect_err("3/2 is not a shard");
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert_eq!(e.exit_code(), 2);
        let line = one_line(&e.render().to_string());
        assert!(
            line.contains("shard index 3 must be below the shard count 2"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn unknown_bug_and_subcommand_are_usage_errors() {
        let e = parse(&["explore", "--bug", "nope"]).expect_err("unknown bug");
        let line = one_line(&e.render().to_string());
        assert!(
            line.contains("invalid value 'nope' for '--bug <NAME>'"),
            "{line}"
        );
        for bug in shardstorm_node::Bug::ALL {
            assert!(line.contains(bug.name()), "{bug} missing from {line}");
        }
        let e = parse(&["frobnicate"]).expect_err("unknown subcommand");
        assert_eq!(e.exit_code(), 2);
        let e = parse(&["replay"]).expect_err("seed or file required");
        let line = one_line(&e.render().to_string());
        assert!(line.contains("--seed") && line.contains("FILE"), "{line}");
    }

    #[test]
    fn help_lists_every_catalogue_bug() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let explore = cli
            .find_subcommand_mut("explore")
            .expect("explore")
            .render_long_help()
            .to_string();
        for bug in shardstorm_node::Bug::ALL {
            assert!(
                explore.contains(bug.name()),
                "{bug} missing from:\n{explore}"
            );
        }
    }

    #[test]
    fn zero_and_negative_counts_are_rejected_clearly() {
        for (args, needle) in [
            (&["explore", "--seeds", "0"][..], "at least 1, found 0"),
            (&["explore", "--seeds", "-1"], "a negative number"),
            (&["explore", "--duration", "0s"], "longer than zero"),
            (&["replay", "--seed", "-3"], "a negative number"),
            (&["check-determinism", "--seeds", "0"], "at least 1"),
        ] {
            let e = parse(args).expect_err("rejected");
            let line = one_line(&e.render().to_string());
            assert!(line.contains(needle), "{args:?}: {line}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn explore_defaults_are_a_short_standard_campaign() {
        let Command::Explore(args) = parse(&["explore"]).expect("parses").command else {
            panic!("not explore")
        };
        let config = args.config().expect("valid");
        assert_eq!(config.total(), Some(explore::DEFAULT_SEEDS));
        assert_eq!(config.template, shardstorm_harness::RunSpec::standard(0));
        assert_eq!(args.out, std::path::PathBuf::from("out/failures"));
        assert!(parse(&["explore", "--seeds", "5", "--duration", "1m"]).is_err());
        let Command::Explore(args) = parse(&["explore", "--duration", "10m", "--shard", "1/4"])
            .expect("parses")
            .command
        else {
            panic!("not explore")
        };
        assert_eq!(args.config().expect("valid").total(), None);
    }
}
