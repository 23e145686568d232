//! One run end to end: build the cluster from a `RunSpec`, drive the chaos phase, run the
//! liveness phase, and return the verdict with the trace and its hash.

use crate::cluster::{ClusterBuilder, MAX_LATENCY};
use crate::driver::Driver;
use crate::node_control;
use crate::oracle::Violation;
use crate::run_spec::RunSpec;
use crate::trace::{HarnessEvent, Trace, TraceKind};
use crate::workload::{self, WorkloadConfig, WorkloadLog};
use shardstorm_faults::{budget, Knobs, LedgerEntry, Schedule};
use std::time::Duration;

/// Outcome of one run.
#[derive(Debug)]
pub struct RunResult {
    pub spec: RunSpec,
    pub knobs: Knobs,
    pub schedule: Schedule,
    pub violation: Option<Violation>,
    pub trace: Trace,
    pub trace_hash: String,
    pub sim_ms: u64,
    pub steps: u64,
}

impl RunResult {
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

/// Runs one seed.
pub fn run(spec: &RunSpec) -> RunResult {
    run_with_ledger(spec).0
}

/// Runs one seed; also returns the fail-point ledger (reach and fire counts per node and
/// point), which coverage needs and the trace does not hold.
pub fn run_with_ledger(spec: &RunSpec) -> (RunResult, Vec<LedgerEntry>) {
    let knobs = spec.resolved_knobs();
    let schedule = spec.resolved_schedule(&knobs);
    let mut builder = ClusterBuilder::new(spec.seed, spec.nodes, spec.shards);
    builder.config = crate::buggify::node_config(spec.seed);
    builder.config.bugs = spec.bugs.clone();
    builder.tick = Duration::from_millis(spec.tick_ms.max(1));
    builder.max_latency = MAX_LATENCY;
    let mut cluster = builder.build();
    let chaos = spec.chaos_duration(&knobs);
    let log = WorkloadLog::default();
    let wl = WorkloadConfig {
        blobs: spec.blobs,
        duration: chaos.mul_f64(0.8),
        seed: spec.seed ^ 0x776f_726b,
        min_size: 256,
        max_size: 2048,
        lifetime: (2, 12),
        delete_probability: 0.05,
        inconsistent_probability: 0.02,
    };
    let (encoding, recorder, wlog) = (
        cluster.encoding.clone(),
        cluster.recorder.clone(),
        log.clone(),
    );
    cluster.sim.client("workload", async move {
        workload::run(wl, encoding, recorder, wlog).await
    });
    let slots = cluster.slots();
    let (chain, encoding, recorder) = (
        cluster.chain.clone(),
        cluster.encoding.clone(),
        cluster.recorder.clone(),
    );
    let control = node_control::install(&mut cluster.sim, slots, chain, encoding, recorder);
    cluster.recorder.record_at(
        0,
        None,
        TraceKind::Harness(HarnessEvent::RunStart {
            seed: spec.seed,
            bugs: spec.bugs.iter().map(|b| b.name().to_string()).collect(),
        }),
    );
    let config = crate::buggify::describe(&builder.config);
    cluster.recorder.record_at(
        0,
        None,
        TraceKind::Harness(HarnessEvent::NodeConfig(config)),
    );
    let switch_ms = builder.config.switch_to_recovery_interval.as_millis() as u64;
    let oracle =
        crate::oracle::SafetyOracle::with_switch_interval(cluster.chain.clone(), switch_ms);
    let mut driver = Driver::new(
        cluster,
        control,
        log,
        spec,
        knobs.clone(),
        &schedule,
        oracle,
    );
    let judge = budget::check(&schedule, usize::from(spec.nodes)).is_ok();
    if driver.chaos(chaos) && driver.violation.is_none() {
        let unjudged = match driver.liveness_unjudged.take() {
            Some(why) => Some(why),
            None => (!judge).then(|| "the schedule exceeds the fault budget".to_string()),
        };
        driver.violation = driver.liveness(unjudged);
    }
    let sim_ms = driver.cluster.now_ms();
    let steps = driver.steps;
    let violation = driver.violation.take();
    let trace = std::mem::take(&mut *driver.cluster.recorder.lock());
    let trace_hash = trace.hash();
    let ledger = driver.cluster.registry.ledger();
    if driver.poisoned {
        // A runtime that panicked mid-step may panic again when dropped: leak it instead.
        std::mem::forget(driver);
    }
    let result = RunResult {
        spec: spec.clone(),
        knobs,
        schedule,
        violation,
        trace,
        trace_hash,
        sim_ms,
        steps,
    };
    (result, ledger)
}
