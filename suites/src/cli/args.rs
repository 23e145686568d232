//! Arguments shared by several subcommands: the scenario (bugs and cluster size, the standard
//! scenario unless given), worker threads, and `--duration` values such as `10m`.

use super::error::CliError;
use clap::Args;
use shardstorm_harness::RunSpec;
use shardstorm_node::Bug;
use std::time::Duration;

/// Bugs switched on and the cluster's size.
#[derive(Args, Clone, Debug, Default)]
pub struct ScenarioArgs {
    /// Switch a catalogue bug back on (repeatable), e.g. abort-drops-metadata-recovery
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<Bug>,
    /// Storage nodes [default: 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub nodes: Option<u16>,
    /// Shards [default: 20]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub shards: Option<u16>,
    /// Epoch changes [default: 6]
    #[arg(long, value_name = "N")]
    pub epochs: Option<u32>,
    /// Blobs the workload writes [default: 100]
    #[arg(long, value_name = "N")]
    pub blobs: Option<u32>,
}

impl ScenarioArgs {
    /// The standard scenario with these changes, for `seed`.
    pub fn spec(&self, seed: u64) -> RunSpec {
        let standard = RunSpec::standard(seed);
        RunSpec {
            bugs: self.bugs.iter().copied().collect(),
            nodes: self.nodes.unwrap_or(standard.nodes),
            shards: self.shards.unwrap_or(standard.shards),
            epochs: self.epochs.unwrap_or(standard.epochs),
            blobs: self.blobs.unwrap_or(standard.blobs),
            ..standard
        }
    }

    /// True when any flag was given (they only apply to `--seed` runs).
    pub fn any_given(&self) -> bool {
        !self.bugs.is_empty()
            || self.nodes.is_some()
            || self.shards.is_some()
            || self.epochs.is_some()
            || self.blobs.is_some()
    }

    /// An error when flags were given together with a run file.
    pub fn reject_with_file(&self) -> Result<(), CliError> {
        if self.any_given() {
            return Err(CliError::Usage(
                "--bug, --nodes, --shards, --epochs and --blobs apply to --seed; a run file \
                 carries its own"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Worker threads: the given count or the available parallelism.
pub fn jobs(given: Option<usize>) -> usize {
    given.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
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
        assert_eq!(args.spec(4), RunSpec::standard(4));
        assert!(args.reject_with_file().is_ok());
        let args = ScenarioArgs {
            blobs: Some(7),
            bugs: vec![Bug::CompletionWindow],
            ..args
        };
        assert_eq!(args.spec(4).blobs, 7);
        assert!(args.reject_with_file().is_err());
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
