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
    eprintln!("wall {:?} sim {} ms steps {} events {}", t.elapsed(), result.sim_ms, result.steps, result.trace.len());
    if let Some(v) = &result.violation {
        eprintln!("{}\n{}", v, v.context.join("\n"));
    }
    eprintln!("{}", result.trace.condensed());
    assert!(result.passed());
}
