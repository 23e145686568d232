//! Arguments shared by several subcommands: the scenario (bugs, a size preset and cluster
//! sizes that override it, the standard scenario unless given, validated by
//! [`RunSpec::validate`] like a run file's), worker
//! threads (capped), seed counts and numbers (negative ones get a clear message, not clap's
//! "unexpected argument"), and `--duration` values such as `10m`.

use super::error::CliError;
use clap::builder::{PossibleValue, TypedValueParser};
use clap::Args;
use shardstorm_faults::LockExt;
use shardstorm_harness::{Preset, RunSpec, SpecError};
use shardstorm_node::blob::{MAX_SHARDS, MIN_SHARDS};
use shardstorm_node::Bug;
use std::time::Duration;

/// Bugs switched on and the cluster's size.
#[derive(Args, Clone, Debug, Default)]
pub struct ScenarioArgs {
    /// Switch a catalogue bug back on (repeatable)
    #[arg(long = "bug", value_name = "NAME", value_parser = bug_parser())]
    pub bugs: Vec<Bug>,
    /// Scenario sizes to start from: standard (5 nodes, 20 shards, 6 epochs, 100 blobs) or
    /// walrus (25 nodes, 1000 shards, 4 epochs, 1000 blobs); --nodes, --shards, --epochs and
    /// --blobs override it [default: standard]
    #[arg(long, value_name = "NAME", value_parser = preset_parser())]
    pub preset: Option<Preset>,
    /// Storage nodes, 1 to 64 [default: from --preset, 5 in standard]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = number::<u16>)]
    pub nodes: Option<u16>,
    /// Shards, 4 to 32768 [default: from --preset, 20 in standard]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = shard_count)]
    pub shards: Option<u16>,
    /// Epoch changes [default: from --preset, 6 in standard]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = number::<u32>)]
    pub epochs: Option<u32>,
    /// Blobs the workload writes, up to 100000 [default: from --preset, 100 in standard]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = number::<u32>)]
    pub blobs: Option<u32>,
}

/// The `--preset` values ([`Preset::ALL`]), listed in `--help` and in the error for an unknown
/// name.
pub fn preset_parser() -> impl TypedValueParser<Value = Preset> {
    clap::builder::PossibleValuesParser::new(Preset::ALL.map(|p| PossibleValue::new(p.name())))
        .try_map(|name: String| name.parse::<Preset>().map_err(|e| e.to_string()))
}

/// Parses a shard count in the range the erasure code supports, naming the range otherwise
/// (also for numbers too large for the shard index type, such as 70000).
pub fn shard_count(text: &str) -> Result<u16, String> {
    let found = number::<u64>(text)?;
    u16::try_from(found)
        .ok()
        .filter(|n| (MIN_SHARDS..=MAX_SHARDS).contains(n))
        .ok_or_else(|| {
            SpecError::OutOfRange {
                what: "shards",
                min: MIN_SHARDS.into(),
                max: MAX_SHARDS.into(),
                found,
            }
            .to_string()
        })
}

/// The `--bug` values: the whole catalogue ([`Bug::ALL`]), listed in `--help` and in the error
/// for an unknown name.
pub fn bug_parser() -> impl TypedValueParser<Value = Bug> {
    clap::builder::PossibleValuesParser::new(Bug::ALL.map(|b| PossibleValue::new(b.name())))
        .try_map(|name: String| name.parse::<Bug>().map_err(|e| e.to_string()))
}

/// Parses a non-negative whole number, saying so for `-1`, `70000` (for a `u16`) or `many`.
pub fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim().parse::<T>().map_err(|_| {
        let what = if text.trim().starts_with('-') {
            "a negative number"
        } else if text.trim().parse::<u128>().is_ok() {
            "too large"
        } else {
            "not a whole number"
        };
        format!("expected a whole number of at least 0, found {text:?} ({what})")
    })
}

/// Parses a count of at least 1 (`--seeds`).
pub fn count(text: &str) -> Result<u64, String> {
    match number::<u64>(text)? {
        0 => Err("expected at least 1, found 0 (nothing would run)".to_string()),
        n => Ok(n),
    }
}

impl ScenarioArgs {
    /// The preset's scenario (standard unless given) with these changes, for `seed`; an error
    /// names the size out of range.
    pub fn spec(&self, seed: u64) -> Result<RunSpec, CliError> {
        let base = self.preset.unwrap_or(Preset::Standard).spec(seed);
        let spec = RunSpec {
            bugs: self.bugs.iter().copied().collect(),
            nodes: self.nodes.unwrap_or(base.nodes),
            shards: self.shards.unwrap_or(base.shards),
            epochs: self.epochs.unwrap_or(base.epochs),
            blobs: self.blobs.unwrap_or(base.blobs),
            ..base
        };
        spec.validate()?;
        Ok(spec)
    }

    /// True when any flag was given (they only apply to `--seed` runs).
    pub fn any_given(&self) -> bool {
        !self.bugs.is_empty()
            || self.preset.is_some()
            || self.nodes.is_some()
            || self.shards.is_some()
            || self.epochs.is_some()
            || self.blobs.is_some()
    }

    /// An error when flags were given together with a run file.
    pub fn reject_with_file(&self) -> Result<(), CliError> {
        if self.any_given() {
            return Err(CliError::Usage(
                "--bug, --preset, --nodes, --shards, --epochs and --blobs apply to --seed; a \
                 run file carries its own"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Most worker threads per available core: each runs one simulation, so more only add memory
/// and contention.
pub const JOBS_PER_CORE: usize = 4;

/// Worker threads: the given count or the available parallelism, capped at
/// [`JOBS_PER_CORE`] per core (with a warning on stderr).
pub fn jobs(given: Option<usize>) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Some(given) = given else { return cores };
    let cap = cores.saturating_mul(JOBS_PER_CORE);
    if given > cap {
        eprintln!(
            "shardstorm: warning: --jobs {given} is more than {JOBS_PER_CORE} per core on \
             {cores} cores; using {cap}"
        );
        return cap;
    }
    given
}

/// Parses a worker-thread count (at least 1).
pub fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a number of worker threads of at least 1, found {text:?}"
        )),
    }
}

/// Parses a campaign's time budget: a duration (see [`parse_duration`]) longer than zero.
pub fn parse_budget(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "expected a time budget longer than zero, found {text:?} (nothing would run)"
        )),
        d => Ok(d),
    }
}

/// Parses `90`, `90s`, `10m`, `2h` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration like 90s, 10m or 1h30m, found {text:?}");
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        total = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| total.checked_add(n))
            .ok_or_else(bad)?;
    } else if text.trim().is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// Maps `f` over `items` on `jobs` threads; results in the order of `items`.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new((0..items.len()).map(|_| None).collect::<Vec<_>>());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock_ok()[i] = Some(r);
            });
        }
    });
    results.into_inner_ok().into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        for bad in ["", "m", "10x", "1.5m", "-3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scenario_defaults_to_the_standard_one() {
        let args = ScenarioArgs::default();
        assert_eq!(args.spec(4).expect("valid"), RunSpec::standard(4));
        assert!(args.reject_with_file().is_ok());
        let args = ScenarioArgs {
            blobs: Some(7),
            bugs: vec![Bug::CompletionWindow],
            ..args
        };
        assert_eq!(args.spec(4).expect("valid").blobs, 7);
        assert!(args.reject_with_file().is_err());
        let bad = ScenarioArgs {
            shards: Some(3),
            ..ScenarioArgs::default()
        };
        let err = bad.spec(0).expect_err("3 shards");
        assert_eq!(err.to_string(), "shards must be from 4 to 32768, found 3");
    }

    #[test]
    fn a_preset_gives_the_sizes_and_flags_override_it() {
        let walrus = ScenarioArgs {
            preset: Some(Preset::Walrus),
            ..ScenarioArgs::default()
        };
        assert_eq!(walrus.spec(2).expect("valid"), Preset::Walrus.spec(2));
        assert!(walrus.reject_with_file().is_err());
        let smaller = ScenarioArgs {
            shards: Some(256),
            epochs: Some(1),
            ..walrus
        };
        let spec = smaller.spec(2).expect("valid");
        assert_eq!(
            (spec.nodes, spec.shards, spec.epochs, spec.blobs),
            (25, 256, 1, 1000)
        );
    }

    #[test]
    fn shard_counts_outside_the_code_are_named() {
        assert_eq!(shard_count("1000"), Ok(1000));
        assert_eq!(shard_count("32768"), Ok(32768));
        for (text, found) in [("0", 0), ("3", 3), ("32769", 32769), ("70000", 70000)] {
            assert_eq!(
                shard_count(text),
                Err(format!("shards must be from 4 to 32768, found {found}"))
            );
        }
        assert!(shard_count("-1").unwrap_err().contains("a negative number"));
    }

    #[test]
    fn numbers_and_counts_explain_what_is_wrong() {
        assert_eq!(number::<u64>("7"), Ok(7));
        assert!(number::<u64>("-1")
            .unwrap_err()
            .contains("a negative number"));
        assert!(number::<u16>("70000").unwrap_err().contains("too large"));
        assert!(number::<u16>("7x")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(count("0").unwrap_err().contains("at least 1"));
        assert_eq!(count("3"), Ok(3));
        assert!(parse_budget("0s").unwrap_err().contains("longer than zero"));
        assert_eq!(parse_budget("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn jobs_are_capped_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(jobs(Some(1)), 1);
        assert_eq!(jobs(Some(1_000_000)), cores * JOBS_PER_CORE);
        assert_eq!(jobs(None), cores);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<u64> = (0..20).collect();
        assert_eq!(
            parallel_map(&items, 3, |x| x * 2),
            (0..20).map(|x| x * 2).collect::<Vec<_>>()
        );
    }
}
