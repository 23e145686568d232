//! The `shardstorm` command line: explore seeds, replay and check runs, merge sharded
//! summaries, benchmark the harness and shrink failures (see `shardstorm --help`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
