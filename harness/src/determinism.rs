//! The determinism check: run a spec twice and compare the running hash after every trace
//! event; on divergence report the index and the first differing event line of both runs.
//! The fresh-process variant (the CLI re-executing itself) compares final hashes only.

use crate::run::run;
use crate::run_spec::RunSpec;
use crate::trace::Trace;
use shardstorm_faults::LockExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Shown in place of an event when one trace ended before the other.
const END: &str = "<end of trace>";

/// Two runs of the same spec that did not behave identically.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    /// The traces differ from event `index` (0-based) on.
    #[error("seed {seed} diverges at event #{index}:\n  run 1: {first}\n  run 2: {second}")]
    Events {
        seed: u64,
        index: usize,
        first: String,
        second: String,
    },
    /// Identical traces, different verdicts.
    #[error("seed {seed} has identical traces but different verdicts:\n  run 1: {first}\n  run 2: {second}")]
    Verdict {
        seed: u64,
        first: String,
        second: String,
    },
    /// A fresh process produced a different trace hash.
    #[error("seed {seed} diverges across processes: trace {in_process} in this process, {fresh} in a fresh one")]
    Process {
        seed: u64,
        in_process: String,
        fresh: String,
    },
}

/// Runs `spec` twice in this process; `Ok` carries the (identical) trace hash.
pub fn check(spec: &RunSpec) -> Result<String, Divergence> {
    let a = run(spec);
    let b = run(spec);
    if let Some((index, first, second)) = first_divergence(&a.trace, &b.trace) {
        return Err(Divergence::Events {
            seed: spec.seed,
            index,
            first,
            second,
        });
    }
    let verdict =
        |v: &Option<crate::Violation>| v.as_ref().map_or("pass".into(), |v| v.to_string());
    let (first, second) = (verdict(&a.violation), verdict(&b.violation));
    if first != second {
        return Err(Divergence::Verdict {
            seed: spec.seed,
            first,
            second,
        });
    }
    Ok(a.trace_hash)
}

/// The first event index where the running hashes differ, with both events' lines.
pub fn first_divergence(a: &Trace, b: &Trace) -> Option<(usize, String, String)> {
    let (ha, hb) = (a.hashes(), b.hashes());
    let index = ha.iter().zip(hb).position(|(x, y)| x != y).or_else(|| {
        let common = ha.len().min(hb.len());
        (ha.len() != hb.len()).then_some(common)
    })?;
    let line = |t: &Trace| {
        t.events()
            .get(index)
            .map_or_else(|| END.to_string(), |e| e.to_string())
    };
    Some((index, line(a), line(b)))
}

/// Compares this process's hash of a seed with the one a fresh process printed.
pub fn compare_fresh(seed: u64, in_process: &str, fresh: &str) -> Result<(), Divergence> {
    if in_process == fresh {
        return Ok(());
    }
    Err(Divergence::Process {
        seed,
        in_process: in_process.into(),
        fresh: fresh.into(),
    })
}

/// Checks every spec on `jobs` worker threads; `on_result` sees each result as it is ready.
/// Results come back in the order of `specs`.
pub fn check_all(
    specs: &[RunSpec],
    jobs: usize,
    on_result: &(dyn Fn(&RunSpec, &Result<String, Divergence>) + Sync),
) -> Vec<Result<String, Divergence>> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; specs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, specs.len().max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(spec) = specs.get(index) else { break };
                let result = check(spec);
                on_result(spec, &result);
                results.lock_ok()[index] = Some(result);
            });
        }
    });
    let results = results.into_inner_ok();
    results.into_iter().flatten().collect()
}

impl Divergence {
    /// The seed that diverged.
    pub fn seed(&self) -> u64 {
        match self {
            Divergence::Events { seed, .. }
            | Divergence::Verdict { seed, .. }
            | Divergence::Process { seed, .. } => *seed,
        }
    }
}

/// A short form for progress lines: `seed S: ok <hash>` or the divergence.
pub fn describe(seed: u64, result: &Result<String, Divergence>) -> String {
    match result {
        Ok(hash) => format!("seed {seed}: deterministic, trace {hash}"),
        Err(d) => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{HarnessEvent, TraceEvent, TraceKind};

    fn small_spec(seed: u64) -> RunSpec {
        let mut spec = RunSpec::standard(seed);
        spec.blobs = 8;
        spec.epochs = 2;
        spec
    }

    fn trace(lines: &[&str]) -> Trace {
        let mut t = Trace::default();
        for (i, l) in lines.iter().enumerate() {
            t.push(TraceEvent {
                t_ms: i as u64,
                node: None,
                kind: TraceKind::Harness(HarnessEvent::Note(l.to_string())),
            });
        }
        t
    }

    #[test]
    fn a_small_spec_runs_identically_twice() {
        let hash = check(&small_spec(11)).expect("deterministic");
        assert_eq!(hash.len(), 16);
        let results = check_all(&[small_spec(12), small_spec(13)], 2, &|_, _| {});
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    #[test]
    fn first_divergence_finds_the_differing_event() {
        let a = trace(&["x", "y", "z"]);
        let b = trace(&["x", "q", "z"]);
        let (index, first, second) = first_divergence(&a, &b).expect("differs");
        assert_eq!(index, 1);
        assert!(
            first.ends_with("harness y") && second.ends_with("harness q"),
            "{first} / {second}"
        );
        assert_eq!(first_divergence(&a, &trace(&["x", "y", "z"])), None);
        let (index, _, second) = first_divergence(&a, &trace(&["x", "y"])).expect("shorter");
        assert_eq!((index, second.as_str()), (2, END));
    }

    #[test]
    fn divergence_prints_index_and_both_lines() {
        let d = Divergence::Events {
            seed: 4,
            index: 9,
            first: "a".into(),
            second: "b".into(),
        };
        assert_eq!(
            d.to_string(),
            "seed 4 diverges at event #9:\n  run 1: a\n  run 2: b"
        );
        assert!(compare_fresh(4, "00", "00").is_ok());
        let fresh = compare_fresh(4, "00", "01").expect_err("differs");
        assert_eq!(fresh.seed(), 4);
        assert!(fresh
            .to_string()
            .contains("trace 00 in this process, 01 in a fresh one"));
    }
}
