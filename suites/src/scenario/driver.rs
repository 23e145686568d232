//! Runs one scenario: registers its body as the turmoil client `test`, steps the simulation from
//! the test thread until the client is done, applies the crashes and restarts it (or a fail
//! point) asked for between steps, and checks the safety oracle after every step. The verdict is
//! an [`Outcome`]: failed spec assertions, oracle violations, a simulation error, and the trace.

use crate::scenario::client::{Command, Ctl, ScenarioError, Shared};
use shardstorm_faults::{DriverCommand, LockExt, Registry};
use shardstorm_harness::apply::{self, Undo};
use shardstorm_harness::cluster::MAX_LATENCY;
use shardstorm_harness::monitor::{Monitor, Stepped};
use shardstorm_harness::oracle::SafetyOracle;
use shardstorm_harness::{Cluster, HarnessEvent, TraceKind, Violation};
use shardstorm_node::NodeId;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The verdict of one scenario run.
pub struct Outcome {
    pub name: String,
    pub seed: u64,
    /// Failed spec assertions (and hard scenario errors), in order.
    pub failures: Vec<String>,
    /// Every safety violation the oracle reported, in trace order.
    pub violations: Vec<Violation>,
    /// The simulation failed (a node panicked, or the simulated time ran out).
    pub sim_error: Option<String>,
    /// Whether the scenario body ran to its end.
    pub finished: bool,
    pub condensed: String,
    pub full_trace: String,
    pub trace_hash: String,
    pub sim_ms: u64,
    pub steps: u64,
    /// The fail-point registry of the run (its ledger says which points were reached).
    pub registry: Registry,
}

impl Outcome {
    /// No failed assertion, no violation, no simulation error, body finished.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
            && self.violations.is_empty()
            && self.sim_error.is_none()
            && self.finished
    }

    /// Names of the invariants the oracle reported.
    pub fn invariants(&self) -> BTreeSet<String> {
        self.violations
            .iter()
            .map(|v| v.invariant.name().to_string())
            .collect()
    }

    /// How often `point` was evaluated on `node`.
    pub fn reached(&self, node: NodeId, point: &str) -> u64 {
        self.registry.reached(&node.host(), point)
    }

    /// A readable verdict: failures, violations with context, the tail of the trace.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let verdict = if self.passed() { "passed" } else { "FAILED" };
        let _ = writeln!(
            out,
            "scenario {} (seed {}) {verdict} at {:.3}s simulated, {} steps",
            self.name,
            self.seed,
            self.sim_ms as f64 / 1000.0,
            self.steps
        );
        for f in &self.failures {
            let _ = writeln!(out, "  spec assertion failed: {f}");
        }
        for v in &self.violations {
            let _ = writeln!(out, "  {v}");
        }
        if let Some(v) = self.violations.first() {
            let _ = writeln!(out, "  context of the first violation:");
            for line in &v.context {
                let _ = writeln!(out, "    {line}");
            }
        }
        if let Some(e) = &self.sim_error {
            let _ = writeln!(out, "  simulation error: {e}");
        }
        if !self.finished {
            let _ = writeln!(out, "  the scenario body did not finish");
        }
        if !self.passed() {
            let _ = writeln!(out, "  condensed trace:");
            for line in self.condensed.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        out
    }

    /// Panics with the report unless the scenario passed.
    #[track_caller]
    pub fn assert_passed(&self) {
        assert!(self.passed(), "{}", self.report());
    }

    /// Asserts the run was caught: the oracle named one of `invariants`, or one failed spec
    /// assertion contains one of `assertions`. Returns the evidence (for logging).
    #[track_caller]
    pub fn assert_caught(&self, invariants: &[&str], assertions: &[&str]) -> String {
        let mut evidence = Vec::new();
        for v in &self.violations {
            if invariants.contains(&v.invariant.name()) {
                evidence.push(format!("oracle: {v}"));
            }
        }
        for f in &self.failures {
            if assertions.iter().any(|a| f.contains(a)) {
                evidence.push(format!("spec assertion: {f}"));
            }
        }
        assert!(
            !evidence.is_empty(),
            "expected the bug to be caught (invariants {invariants:?} or assertions {assertions:?}), but it was not:\n{}",
            self.report()
        );
        evidence.join("\n")
    }

    /// The snapshot text: a verdict header and the condensed trace (simulated times only).
    pub fn snapshot_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# scenario {} seed {}", self.name, self.seed);
        let _ = writeln!(
            out,
            "# verdict: {}",
            if self.passed() { "passed" } else { "FAILED" }
        );
        for f in &self.failures {
            let _ = writeln!(out, "# failed: {f}");
        }
        for v in &self.violations {
            let _ = writeln!(
                out,
                "# violation: {} on {:?} {:?}: {}",
                v.invariant, v.node, v.shard, v.message
            );
        }
        out.push_str(&self.condensed);
        out
    }
}

/// A crash-and-restart a fail point asked for, due at a simulated time.
struct PendingBounce {
    node: NodeId,
    at_ms: u64,
}

/// Runs `body` as the client of `cluster` until it returns, under the safety oracle (for nodes
/// with the simulation configuration's `switch_to_recovery_interval`).
pub fn run_scenario<F, Fut>(cluster: Cluster, name: &str, seed: u64, body: F) -> Outcome
where
    F: FnOnce(Ctl) -> Fut,
    Fut: Future<Output = Result<(), ScenarioError>> + 'static,
{
    let oracle = SafetyOracle::new(cluster.chain.clone());
    run_scenario_with_oracle(cluster, oracle, name, seed, body)
}

/// [`run_scenario`] under a given oracle (nodes configured with another switch interval:
/// `SafetyOracle::with_switch_interval`).
pub fn run_scenario_with_oracle<F, Fut>(
    mut cluster: Cluster,
    oracle: SafetyOracle,
    name: &str,
    seed: u64,
    body: F,
) -> Outcome
where
    F: FnOnce(Ctl) -> Fut,
    Fut: Future<Output = Result<(), ScenarioError>> + 'static,
{
    let shared = Arc::new(Mutex::new(Shared::default()));
    let ctl = Ctl::new(
        cluster.slots(),
        cluster.registry.clone(),
        cluster.chain.clone(),
        cluster.encoding.clone(),
        cluster.recorder.clone(),
        shared.clone(),
    );
    let finished = Arc::new(AtomicBool::new(false));
    let done = finished.clone();
    let client_ctl = ctl.clone();
    let future = body(ctl);
    cluster.sim.client("test", async move {
        if let Err(e) = future.await {
            client_ctl.fail(format!("scenario stopped: {e}"));
        }
        done.store(true, Ordering::SeqCst);
        Ok(())
    });
    cluster.recorder.record_at(
        0,
        None,
        TraceKind::Harness(HarnessEvent::Scenario {
            name: name.to_string(),
            seed,
        }),
    );

    let mut violations = Vec::new();
    let mut bounces: Vec<PendingBounce> = Vec::new();
    let mut heals: Vec<(u64, Undo)> = Vec::new();
    let mut sim_error = None;
    let mut poisoned = false;
    let mut steps = 0u64;
    let mut monitor = Monitor::new(oracle, None);
    loop {
        apply_commands(&mut cluster, &shared, &mut bounces, &mut heals);
        steps += 1;
        match monitor.step(&mut cluster, &mut violations) {
            Stepped::Done => break,
            Stepped::Running => {}
            Stepped::Failed(e) => {
                poisoned = true;
                sim_error = Some(e);
                break;
            }
        }
    }
    let failures = std::mem::take(&mut shared.lock_ok().failures);
    let (condensed, full_trace, trace_hash) = {
        let trace = cluster.recorder.lock();
        (trace.condensed(), trace.text(), trace.hash())
    };
    let outcome = Outcome {
        name: name.to_string(),
        seed,
        failures,
        violations,
        sim_error,
        finished: finished.load(Ordering::SeqCst),
        condensed,
        full_trace,
        trace_hash,
        sim_ms: cluster.now_ms(),
        steps,
        registry: cluster.registry.clone(),
    };
    if poisoned {
        // A runtime that panicked mid-step may panic again when dropped: leak it instead.
        std::mem::forget(cluster);
    }
    outcome
}

/// Applies the client's commands, the fail points' crash/restart requests, and due bounces.
fn apply_commands(
    cluster: &mut Cluster,
    shared: &Arc<Mutex<Shared>>,
    bounces: &mut Vec<PendingBounce>,
    heals: &mut Vec<(u64, Undo)>,
) {
    let commands = std::mem::take(&mut shared.lock_ok().commands);
    let now = cluster.now_ms();
    for command in commands {
        match command {
            Command::Crash(node) => cluster.crash(node),
            Command::Restart(node) => {
                cluster.restart(node);
                *shared.lock_ok().restarts.entry(node).or_default() += 1;
            }
            Command::Network(fault) => {
                let undo = apply::apply(cluster, &fault, MAX_LATENCY, &mut Vec::new());
                heals.extend(
                    undo.into_iter()
                        .map(|(d, u)| (now + d.as_millis() as u64, u)),
                );
            }
        }
    }
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(heals)
        .into_iter()
        .partition(|(at, _)| *at <= now);
    *heals = later;
    for (_, undo) in due {
        apply::undo(cluster, &undo, MAX_LATENCY);
    }
    for command in cluster.registry.take_commands() {
        match command {
            DriverCommand::Crash { node } => {
                if let Some(node) = NodeId::from_host(&node) {
                    cluster.crash(node);
                }
            }
            DriverCommand::Restart { node, after_ms } => {
                if let Some(node) = NodeId::from_host(&node) {
                    cluster.crash(node);
                    bounces.push(PendingBounce {
                        node,
                        at_ms: now + after_ms,
                    });
                }
            }
        }
    }
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(bounces)
        .into_iter()
        .partition(|b| b.at_ms <= now);
    *bounces = later;
    for b in due {
        cluster.restart(b.node);
        *shared.lock_ok().restarts.entry(b.node).or_default() += 1;
    }
}
