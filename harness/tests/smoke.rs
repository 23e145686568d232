//! Smoke runs of whole simulations: a quiet cluster converges and a seed replays identically.

use shardstorm_faults::Knobs;
use shardstorm_harness::{run, RunSpec};

#[test]
fn quiet_cluster_converges() {
    let mut spec = RunSpec::standard(1);
    spec.knobs = Some(Knobs::quiet());
    spec.blobs = 30;
    spec.epochs = 3;
    let t = std::time::Instant::now();
    let result = run(&spec);
    eprintln!(
        "wall {:?} sim {} ms steps {} events {}",
        t.elapsed(),
        result.sim_ms,
        result.steps,
        result.trace.len()
    );
    if let Some(v) = &result.violation {
        eprintln!("{}\n{}", v, v.context.join("\n"));
    }
    eprintln!("{}", result.trace.condensed());
    assert!(result.passed());
}

#[test]
#[ignore]
fn swarm_seeds() {
    if let Ok(filter) = std::env::var("LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .without_time()
            .try_init();
    }
    let n: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let start: u64 = std::env::var("START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut failures = 0;
    let t = std::time::Instant::now();
    let mut sim = 0;
    for seed in start..start + n {
        let result = run(&RunSpec::standard(seed));
        sim += result.sim_ms;
        if let Ok(path) = std::env::var("TRACE_ALL") {
            std::fs::write(format!("{path}.{seed}"), result.trace.text()).unwrap();
        }
        if let Some(v) = &result.violation {
            failures += 1;
            eprintln!("seed {seed}: {v}");
            if let Ok(path) = std::env::var("TRACE_OUT") {
                std::fs::write(format!("{path}.{seed}"), result.trace.text()).unwrap();
            }
            if std::env::var("VERBOSE").is_ok() {
                eprintln!("{}\nschedule:\n{}", v.context.join("\n"), result.schedule);
            }
        }
    }
    eprintln!(
        "{n} seeds, {failures} failures, wall {:?}, sim {} s",
        t.elapsed(),
        sim / 1000
    );
}

/// Issue #2's first simulation: a chain and 4 nodes, 50 blobs, 3 epoch changes that move
/// shards, no faults; every node ends `Active` with every owned shard `Active` and every blob
/// readable (the liveness audit), for 20 seeds.
#[test]
fn four_nodes_fifty_blobs_three_moving_epochs_converge_for_twenty_seeds() {
    for seed in 0..20 {
        let mut knobs = Knobs::quiet();
        knobs.churn_move = 1.0;
        knobs.epoch_ms = 4_000;
        let spec = RunSpec {
            nodes: 4,
            blobs: 50,
            epochs: 3,
            knobs: Some(knobs),
            ..RunSpec::standard(seed)
        };
        let result = run(&spec);
        let moves = result
            .trace
            .events()
            .iter()
            .filter(|e| e.to_string().contains("LockedToMove by S7"))
            .count();
        assert!(moves > 0, "seed {seed}: no shard moved");
        if let Some(v) = &result.violation {
            panic!("seed {seed}: {v}\n{}", v.context.join("\n"));
        }
    }
}
