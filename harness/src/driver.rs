//! The driver loop, the only holder of `&mut Sim`: between steps it applies due schedule
//! faults, fail-point driver commands, heals, supervisor restarts and epoch changes with churn;
//! after every step the safety oracle checks the new trace events. Then the liveness phase
//! heals everything, runs one last epoch change without churn, and audits convergence.

use crate::apply::{self, Undo};
use crate::churn::{churn_rng, next_committee, Churn, RETURN_DEPTH};
use crate::cluster::{Cluster, MAX_LATENCY};
use crate::monitor::{Monitor, Stepped};
use crate::node_control::{Control, ControlCommand};
use crate::oracle::{audit, AuditInput, AuditPoint, Invariant, SafetyOracle, Violation};
use crate::run_spec::RunSpec;
use crate::trace::{ChainNote, HarnessEvent, TraceKind};
use crate::trigger::Trigger;
use crate::workload::WorkloadLog;
use rand_chacha::ChaCha8Rng;
use shardstorm_faults::{Knobs, Schedule, ScheduleEntry};
use shardstorm_node::{NodeId, NodeStatus, ProbeEvent, ShardStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long healing may take before non-convergence is a liveness violation.
pub const LIVENESS_DEADLINE: Duration = Duration::from_secs(120);
/// How long after a fatal error the supervisor restarts a node.
const SUPERVISOR_DELAY_MS: u64 = 1000;
/// How long before an epoch change the deferred status writes are sent.
const STATUS_LEAD_MS: u64 = 200;

/// State of one run's driver.
pub struct Driver {
    pub cluster: Cluster,
    pub control: Control,
    pub monitor: Monitor,
    pub workload: WorkloadLog,
    knobs: Knobs,
    timed: Vec<(Duration, shardstorm_faults::Fault)>,
    next_timed: usize,
    triggered: Vec<Trigger>,
    /// Set when the schedule drove the cluster into a state the protocol never reaches, so
    /// only safety is judged (see `apply_triggered`).
    pub liveness_unjudged: Option<String>,
    undos: BTreeMap<(u64, u64), Undo>,
    undo_seq: u64,
    restarts: BTreeMap<NodeId, u64>,
    /// Status writes waiting for the next epoch change.
    deferred_status: Vec<(NodeId, NodeStatus)>,
    churn: ChaCha8Rng,
    epochs_planned: u32,
    epochs_started: u32,
    next_epoch_ms: u64,
    max_latency: Duration,
    pub violation: Option<Violation>,
    pub steps: u64,
    /// A host panicked inside `step`; the simulation must not be touched (or dropped) again.
    pub poisoned: bool,
}

impl Driver {
    pub fn new(
        cluster: Cluster,
        control: Control,
        workload: WorkloadLog,
        spec: &RunSpec,
        knobs: Knobs,
        schedule: &Schedule,
        oracle: SafetyOracle,
    ) -> Self {
        let (seed, epochs, max_latency) = (spec.seed, spec.epochs, MAX_LATENCY);
        let mut timed = Vec::new();
        let mut triggered = Vec::new();
        for entry in &schedule.entries {
            match entry {
                ScheduleEntry::Timed { at, fault } => timed.push((*at, fault.clone())),
                ScheduleEntry::Triggered {
                    point,
                    node,
                    after,
                    fault,
                } => triggered.push(Trigger::new(point, node, *after, fault)),
            }
        }
        Self {
            cluster,
            control,
            monitor: Monitor::new(oracle, Some(workload.clone())),
            workload,
            next_epoch_ms: knobs.epoch_ms,
            knobs,
            timed,
            next_timed: 0,
            triggered,
            liveness_unjudged: None,
            undos: BTreeMap::new(),
            undo_seq: 0,
            restarts: BTreeMap::new(),
            deferred_status: Vec::new(),
            churn: churn_rng(seed),
            epochs_planned: epochs,
            epochs_started: 0,
            max_latency,
            violation: None,
            steps: 0,
            poisoned: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.cluster.now_ms()
    }

    fn log(&self, event: HarnessEvent) {
        self.cluster
            .recorder
            .record_at(self.now_ms(), None, TraceKind::Harness(event));
    }

    /// One simulation step under the oracle; false once a violation was found.
    fn step(&mut self) -> bool {
        self.steps += 1;
        let first_new = self.cluster.recorder.lock().len();
        let mut found = Vec::new();
        if let Stepped::Failed(e) = self.monitor.step(&mut self.cluster, &mut found) {
            self.poisoned = true;
            let context = {
                let trace = self.cluster.recorder.lock();
                trace.context(trace.len().saturating_sub(1), 30)
            };
            self.violation = Some(Violation {
                invariant: Invariant::NodePanic,
                node: None,
                shard: None,
                t_ms: self.now_ms(),
                message: e.lines().next().unwrap_or("host failed").to_string(),
                context,
            });
            return false;
        }
        let fatal: Vec<NodeId> = self.cluster.recorder.lock().events()[first_new..]
            .iter()
            .filter(|e| matches!(e.kind, TraceKind::Probe(ProbeEvent::Fatal { .. })))
            .filter_map(|e| e.node)
            .collect();
        let at = self.now_ms() + SUPERVISOR_DELAY_MS;
        for node in fatal {
            self.restarts.entry(node).or_insert(at);
        }
        if let Some(v) = found.into_iter().next() {
            self.violation = Some(v);
            return false;
        }
        true
    }

    /// Everything due between two steps of the chaos phase.
    fn between_steps(&mut self) {
        let now = Duration::from_millis(self.now_ms());
        while self.next_timed < self.timed.len() && self.timed[self.next_timed].0 <= now {
            let fault = self.timed[self.next_timed].1.clone();
            self.next_timed += 1;
            self.apply_fault(&fault);
        }
        let now_ms = self.now_ms();
        for i in 0..self.triggered.len() {
            if let Some(fault) = self.triggered[i].poll(&self.cluster.registry, now_ms) {
                self.apply_triggered(&fault);
            }
        }
        self.run_commands();
        self.run_due_undos(false);
        self.run_due_restarts();
    }

    fn apply_fault(&mut self, fault: &shardstorm_faults::Fault) {
        let now = self.now_ms();
        match fault {
            shardstorm_faults::Fault::EpochChange => self.bring_epoch_change_forward(now),
            shardstorm_faults::Fault::Reshuffle { seed } => self.churn = churn_rng(*seed),
            _ => {}
        }
        for (after, undo) in apply::apply(
            &mut self.cluster,
            fault,
            self.max_latency,
            &mut self.deferred_status,
        ) {
            self.undo_seq += 1;
            self.undos
                .insert((now + after.as_millis() as u64, self.undo_seq), undo);
        }
    }

    /// `epoch-change`: the next planned epoch change starts at `at` or as soon as the current
    /// one ended (a no-op once every planned epoch change started).
    fn bring_epoch_change_forward(&mut self, at: u64) {
        if self.epochs_started < self.epochs_planned {
            self.next_epoch_ms = self.next_epoch_ms.min(at);
        }
    }

    /// A fault triggered by a fail point is applied at once, status changes included: the
    /// schedule asked for exactly that interleaving, as the spec's T3 does. `RecoveryCatchUp` is
    /// only written by the protocol as an epoch change starts (N3/N4), so when no epoch change
    /// is under way the next one is brought forward to follow the write. Written during an
    /// epoch change, it can strand that change (the node never re-runs it in catch-up mode), a
    /// state the protocol never reaches: safety is still checked, liveness no longer judged.
    fn apply_triggered(&mut self, fault: &shardstorm_faults::Fault) {
        let timed = std::mem::take(&mut self.deferred_status);
        self.apply_fault(fault);
        let writes = std::mem::replace(&mut self.deferred_status, timed);
        if writes.is_empty() {
            return;
        }
        apply::send_status_changes(&self.cluster, &self.control, writes);
        let chain = &self.cluster.chain;
        let epoch = chain.epoch();
        if chain.is_epoch_change_done(epoch) {
            let now = self.now_ms();
            self.bring_epoch_change_forward(now + STATUS_LEAD_MS);
        } else if self.liveness_unjudged.is_none() {
            let why = format!("a status write landed during epoch change {epoch}");
            self.log(HarnessEvent::LivenessWillNotBeJudged(why.clone()));
            self.liveness_unjudged = Some(why);
        }
    }

    fn run_commands(&mut self) {
        for command in self.cluster.registry.take_commands() {
            match command {
                shardstorm_faults::DriverCommand::Crash { node } => {
                    if let Some(id) = NodeId::from_host(&node) {
                        self.cluster.crash(id);
                    }
                }
                shardstorm_faults::DriverCommand::Restart { node, after_ms } => {
                    if let Some(id) = NodeId::from_host(&node) {
                        self.cluster.crash(id);
                        self.restarts.insert(id, self.now_ms() + after_ms);
                    }
                }
            }
        }
    }

    fn run_due_undos(&mut self, all: bool) {
        let now = self.now_ms();
        let due: Vec<(u64, u64)> = self
            .undos
            .keys()
            .copied()
            .filter(|(t, _)| all || *t <= now)
            .collect();
        for key in due {
            if let Some(undo) = self.undos.remove(&key) {
                apply::undo(&mut self.cluster, &undo, self.max_latency);
            }
        }
    }

    fn run_due_restarts(&mut self) {
        let now = self.now_ms();
        let due: Vec<NodeId> = self
            .restarts
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(n, _)| *n)
            .collect();
        for node in due {
            self.restarts.remove(&node);
            self.cluster.restart(node);
        }
    }

    /// Starts the next epoch change once it is due and the previous one ended.
    fn maybe_change_epoch(&mut self, churn: bool) -> bool {
        let chain = &self.cluster.chain;
        if !chain.is_epoch_change_done(chain.epoch()) {
            return false;
        }
        let current = chain.committee(chain.epoch()).unwrap_or_default().shards;
        let nodes: Vec<NodeId> = self.cluster.nodes.keys().copied().collect();
        let next = if churn {
            let earlier: Vec<_> = (1..=RETURN_DEPTH as u64)
                .map(|back| {
                    let epoch = chain.epoch().saturating_sub(back);
                    chain.committee(epoch).unwrap_or_default().shards
                })
                .collect();
            next_committee(
                &mut self.churn,
                &current,
                &earlier,
                &nodes,
                Churn::of(&self.knobs),
            )
        } else {
            current
        };
        let summary = committee_summary(&next);
        match self.cluster.chain.start_epoch_change(next) {
            Ok(epoch) => {
                self.cluster.recorder.record_at(
                    self.now_ms(),
                    None,
                    TraceKind::Chain(ChainNote::EpochChange { epoch, summary }),
                );
                true
            }
            Err(_) => false,
        }
    }

    /// The chaos phase: faults, churn and the workload until every planned epoch started.
    pub fn chaos(&mut self, duration: Duration) -> bool {
        let end = duration.as_millis() as u64;
        let hard_end = 3 * end;
        loop {
            let now = self.now_ms();
            if (now >= end && self.epochs_started >= self.epochs_planned) || now >= hard_end {
                return true;
            }
            self.between_steps();
            let chain = &self.cluster.chain;
            let epoch_due = self.epochs_started < self.epochs_planned
                && now >= self.next_epoch_ms
                && chain.is_epoch_change_done(chain.epoch());
            if epoch_due && !self.deferred_status.is_empty() {
                // Let the status writes land first; the epoch change follows shortly after.
                let mut writes = std::mem::take(&mut self.deferred_status);
                writes.sort_by_key(|(n, _)| *n);
                writes.dedup_by_key(|(n, _)| *n);
                apply::send_status_changes(&self.cluster, &self.control, writes);
                self.next_epoch_ms = now + STATUS_LEAD_MS;
            } else if epoch_due && self.maybe_change_epoch(true) {
                self.epochs_started += 1;
                self.next_epoch_ms = now + self.knobs.epoch_ms;
            }
            if !self.step() {
                return false;
            }
        }
    }

    /// Heals every fault and restarts every down node.
    fn heal(&mut self) {
        self.log(HarnessEvent::Heal);
        self.workload.stop();
        self.deferred_status.clear();
        for (selector, point, _) in self.cluster.registry.rules() {
            self.cluster.registry.open_gate(selector, &point);
        }
        self.cluster.registry.clear_all();
        self.run_due_undos(true);
        self.cluster.sim.set_fail_rate(0.0);
        self.cluster.sim.set_max_message_latency(self.max_latency);
        for host in self.cluster.nodes.values() {
            host.disk.set_eio(false);
            host.disk.set_corrupt_reads(0);
            host.switches
                .byzantine_source
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        let pending: BTreeSet<NodeId> = std::mem::take(&mut self.restarts).into_keys().collect();
        let nodes: Vec<NodeId> = self.cluster.nodes.keys().copied().collect();
        for node in nodes {
            if let Some(reason) = self.restart_reason(node, &pending) {
                self.cluster.recorder.record_at(
                    self.now_ms(),
                    Some(node),
                    TraceKind::Harness(HarnessEvent::HealRestart(reason)),
                );
                self.cluster.restart(node);
            }
        }
    }

    /// Why healing restarts a node: it is down, its supervisor restart is pending, or it is in
    /// a state the spec says only a restart resolves.
    fn restart_reason(&self, node: NodeId, pending: &BTreeSet<NodeId>) -> Option<&'static str> {
        if !self.cluster.nodes[&node].up {
            return Some("down");
        }
        if pending.contains(&node) {
            return Some("fatal error");
        }
        self.monitor
            .oracle
            .nodes
            .get(&node)
            .and_then(|m| m.needs_restart())
    }

    /// The liveness phase; returns the audit's violations (empty when converged).
    pub fn liveness(&mut self, unjudged: Option<String>) -> Option<Violation> {
        self.heal();
        let start = self.now_ms();
        let deadline = start + LIVENESS_DEADLINE.as_millis() as u64;
        let mut final_epoch = false;
        let mut audit_pending = false;
        let mut next_check = start + 1000;
        let mut last: Vec<Violation> = Vec::new();
        loop {
            if !self.step() {
                return self.violation.clone();
            }
            self.run_commands();
            self.run_due_restarts();
            let now = self.now_ms();
            if !final_epoch && self.maybe_change_epoch(false) {
                final_epoch = true;
            }
            if audit_pending {
                if let Some(data) = self.control.take_audit() {
                    audit_pending = false;
                    last = self.judge_audit(&data, now);
                    if let Some(v) = last.iter().find(|v| {
                        !matches!(
                            v.invariant,
                            Invariant::Liveness | Invariant::Reconstructible
                        )
                    }) {
                        return Some(v.clone());
                    }
                    if last.is_empty() {
                        self.log(HarnessEvent::Converged);
                        return None;
                    }
                }
            } else if now >= next_check && final_epoch {
                next_check = now + 2000;
                if self.model_converged() || now + 2000 >= deadline {
                    self.control.send(ControlCommand::Audit {
                        blobs: self.readable_blobs(),
                    });
                    audit_pending = true;
                }
            }
            if now >= deadline && !audit_pending {
                break;
            }
            if now >= deadline + 60_000 {
                break;
            }
        }
        if let Some(why) = unjudged {
            self.log(HarnessEvent::LivenessNotJudged(why));
            return None;
        }
        let stuck = (!final_epoch).then(|| self.stuck_epoch_change());
        let mut first = last
            .into_iter()
            .next()
            .or(stuck)
            .unwrap_or_else(|| Violation {
                invariant: Invariant::Liveness,
                node: None,
                shard: None,
                t_ms: self.now_ms(),
                message: "the cluster did not converge and no audit completed".into(),
                context: Vec::new(),
            });
        let trace = self.cluster.recorder.lock();
        first.context = trace.context(trace.len().saturating_sub(1), 30);
        Some(first)
    }

    /// The epoch change that never ended, with who attested it.
    fn stuck_epoch_change(&self) -> Violation {
        let chain = &self.cluster.chain;
        let epoch = chain.epoch();
        let committee = chain.committee(epoch).unwrap_or_default();
        let attested = chain.attestations(epoch);
        let weight = committee
            .shards
            .values()
            .filter(|n| attested.contains(n))
            .count();
        let missing: Vec<String> = committee
            .members()
            .difference(&attested)
            .map(|n| n.to_string())
            .collect();
        Violation {
            invariant: Invariant::Liveness,
            node: None,
            shard: None,
            t_ms: self.now_ms(),
            message: format!(
                "epoch change {epoch} never completed after healing: attested by {weight}/{} shards, missing {}",
                committee.n_shards(),
                missing.join(",")
            ),
            context: Vec::new(),
        }
    }

    /// The final audit: first every node's stored state (a safety violation there is
    /// reported as such), then convergence.
    fn judge_audit(&mut self, data: &crate::node_control::AuditData, now: u64) -> Vec<Violation> {
        let mut safety = Vec::new();
        self.monitor
            .audit_all(&self.cluster, AuditPoint::End, &mut safety);
        if !safety.is_empty() {
            return safety;
        }
        let truths = self.workload.truths();
        let mut found = audit(&AuditInput {
            chain: &self.cluster.chain,
            snapshots: &data.snapshots,
            truths: &truths,
            reads: &data.reads,
            t_ms: now,
        });
        for node in &data.unreachable {
            found.push(Violation {
                invariant: Invariant::Liveness,
                node: Some(*node),
                shard: None,
                t_ms: now,
                message: "node unreachable after healing".into(),
                context: Vec::new(),
            });
        }
        found
    }

    /// Certified blobs to read back, with their bytes.
    fn readable_blobs(&self) -> Vec<(shardstorm_node::BlobId, Vec<u8>)> {
        let epoch = self.cluster.chain.epoch();
        self.workload
            .blobs()
            .into_iter()
            .filter(|(id, b)| {
                b.truth.consistent
                    && self
                        .cluster
                        .chain
                        .blob(*id)
                        .is_some_and(|r| r.is_certified_at(epoch))
            })
            .map(|(id, b)| (id, b.data))
            .collect()
    }

    /// The cheap convergence test on the oracle's model.
    fn model_converged(&self) -> bool {
        let chain = &self.cluster.chain;
        let committee = chain.committee(chain.epoch()).unwrap_or_default();
        self.cluster.nodes.keys().all(|node| {
            let Some(m) = self.monitor.oracle.nodes.get(node) else {
                return false;
            };
            let owned: BTreeSet<_> = committee.shards_of(*node);
            let want = if owned.is_empty() {
                NodeStatus::Standby
            } else {
                NodeStatus::Active
            };
            m.status == Some(want)
                && m.sync_running.is_empty()
                && owned
                    .iter()
                    .all(|s| m.shards.get(s) == Some(&ShardStatus::Active))
        })
    }
}

fn committee_summary(c: &BTreeMap<shardstorm_node::ShardIndex, NodeId>) -> String {
    let mut by_node: BTreeMap<NodeId, Vec<u16>> = BTreeMap::new();
    for (s, n) in c {
        by_node.entry(*n).or_default().push(s.0);
    }
    by_node
        .iter()
        .map(|(n, s)| {
            format!(
                "{n}:{}",
                s.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
