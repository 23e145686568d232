//! One step of the simulation under the safety oracle, shared by the campaign driver and the
//! scenario driver: new trace events are checked before and after `sim.step()`, the state
//! audits they asked for are carried out on fault-free copies of the nodes' disks (a restarted
//! node's disk before its own restart logic runs, since the node only runs inside the step),
//! disk errors mark a node's model uncertain until its next audit, and the chain's completion of
//! an epoch change audits every node that is up.

use crate::cluster::Cluster;
use crate::oracle::{AuditPoint, BlobTruth, SafetyOracle, Violation};
use crate::panics::panic_message;
use crate::workload::WorkloadLog;
use shardstorm_node::storage::{dump_disk, DiskImage, SimDisk, StorageError, StoredState};
use shardstorm_node::{BlobId, Epoch, NodeId};
use std::collections::BTreeMap;

/// How one step went.
#[derive(Debug)]
pub enum Stepped {
    /// The simulation goes on.
    Running,
    /// Every client of the simulation finished.
    Done,
    /// A host failed (a node panicked) or the simulation ran out of time; the simulation must
    /// not be touched (or dropped) again.
    Failed(String),
}

/// The oracle and what it needs to audit a cluster.
pub struct Monitor {
    pub oracle: SafetyOracle,
    /// The workload's blobs (their true encoding); scenarios have none.
    workload: Option<WorkloadLog>,
    /// Per node: disk errors seen so far (EIO plus corrupted reads).
    disk_errors: BTreeMap<NodeId, u64>,
    /// The last epoch whose completion was audited.
    done_epoch: Epoch,
    /// State audits on (`SHARDSTORM_STATE_AUDITS=off` turns them off, to measure their cost).
    audits_on: bool,
    /// Per node: the last state read from its disk and the disk version it was read at. A disk
    /// whose visible bytes did not change since holds the same state, so it is not read again.
    stored: BTreeMap<NodeId, (u64, StoredState)>,
}

impl Monitor {
    pub fn new(oracle: SafetyOracle, workload: Option<WorkloadLog>) -> Self {
        Self {
            oracle,
            workload,
            disk_errors: BTreeMap::new(),
            done_epoch: 0,
            audits_on: std::env::var("SHARDSTORM_STATE_AUDITS").map_or(true, |v| v != "off"),
            stored: BTreeMap::new(),
        }
    }

    /// Checks, steps, checks and audits; every violation found is pushed to `found`.
    pub fn step(&mut self, cluster: &mut Cluster, found: &mut Vec<Violation>) -> Stepped {
        // What the harness did between steps (crashes, restarts): a restarted node is audited
        // now, before its restart logic runs inside the step.
        self.check_events(cluster, found);
        let sim = &mut cluster.sim;
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sim.step()))
            .unwrap_or_else(|panic| {
                Err(format!("a node panicked: {}", panic_message(panic.as_ref())).into())
            });
        let done = match stepped {
            Ok(done) => done,
            Err(e) => return Stepped::Failed(e.to_string()),
        };
        self.check(cluster, found);
        if done {
            Stepped::Done
        } else {
            Stepped::Running
        }
    }

    /// Checks the new trace events and carries out the audits they asked for.
    fn check_events(&mut self, cluster: &Cluster, found: &mut Vec<Violation>) {
        self.read_trace(cluster, found);
        self.audit(cluster, Vec::new(), found);
    }

    fn read_trace(&mut self, cluster: &Cluster, found: &mut Vec<Violation>) {
        let trace = cluster.recorder.lock();
        while let Some(v) = self.oracle.check_new(trace.events()) {
            found.push(v);
        }
    }

    /// After a step: checks the new trace events, tracks disk errors, then carries out the
    /// audits due.
    pub fn check(&mut self, cluster: &Cluster, found: &mut Vec<Violation>) {
        self.read_trace(cluster, found);
        self.track_disk_errors(cluster);
        let mut due = self.oracle.take_audit_requests();
        let epoch = cluster.chain.epoch();
        if epoch > self.done_epoch && cluster.chain.is_epoch_change_done(epoch) {
            self.done_epoch = epoch;
            due.extend(
                cluster
                    .nodes
                    .keys()
                    .map(|n| (*n, AuditPoint::EpochChangeDone)),
            );
        }
        self.audit(cluster, due, found);
    }

    /// Audits every node that is up (the end of a run).
    pub fn audit_all(&mut self, cluster: &Cluster, point: AuditPoint, found: &mut Vec<Violation>) {
        let due = cluster.nodes.keys().map(|n| (*n, point)).collect();
        self.audit(cluster, due, found);
    }

    /// A disk error makes the outcome of the write it hit unknown: the node's model is
    /// uncertain until an audit in a step without new errors re-bases it.
    fn track_disk_errors(&mut self, cluster: &Cluster) {
        for (node, host) in &cluster.nodes {
            let stats = host.disk.stats();
            let errors = stats.eio_errors + stats.corrupted_reads;
            let seen = self.disk_errors.entry(*node).or_insert(0);
            if errors > *seen {
                *seen = errors;
                self.oracle
                    .mark_uncertain(*node, "a disk error hit a write");
            } else if self.oracle.uncertain(*node) && host.up {
                self.oracle.request_audit(*node, AuditPoint::AfterDiskError);
            }
        }
    }

    fn audit(
        &mut self,
        cluster: &Cluster,
        mut due: Vec<(NodeId, AuditPoint)>,
        found: &mut Vec<Violation>,
    ) {
        due.extend(self.oracle.take_audit_requests());
        if due.is_empty() || !self.audits_on {
            return;
        }
        due.sort();
        due.dedup_by_key(|(n, _)| *n);
        let truths = self.truths();
        let t_ms = cluster.now_ms();
        for (node, point) in due {
            let Some(host) = cluster.nodes.get(&node) else {
                continue;
            };
            if !host.up {
                continue;
            }
            let v = match read_state(&mut self.stored, node, &host.disk) {
                Ok(state) => self.oracle.audit(node, point, state, &truths, t_ms),
                Err(e) => Some(self.oracle.unreadable(node, point, e.to_string(), t_ms)),
            };
            // The trace excerpt is formatted only for a violation.
            let v = v.map(|mut v| {
                let trace = cluster.recorder.lock();
                v.context = trace.context(trace.len().saturating_sub(1), 30);
                v
            });
            found.extend(v);
        }
    }

    fn truths(&self) -> BTreeMap<BlobId, BlobTruth> {
        self.workload
            .as_ref()
            .map(|w| w.truths())
            .unwrap_or_default()
    }
}

/// What `disk` holds now: read from a copy of it, or the state read at the same version.
fn read_state<'a>(
    stored: &'a mut BTreeMap<NodeId, (u64, StoredState)>,
    node: NodeId,
    disk: &SimDisk,
) -> Result<&'a StoredState, StorageError> {
    let version = disk.version();
    let fresh = stored.get(&node).is_some_and(|(v, _)| *v == version);
    if !fresh {
        let state = dump_disk(disk, DiskImage::Visible)?;
        stored.insert(node, (version, state));
    }
    Ok(&stored[&node].1)
}
