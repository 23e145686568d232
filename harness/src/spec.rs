//! What one run is: the seed, the cluster's size, the bug switches, and the knobs and schedule
//! (drawn from the seed unless given), plus the node's fail-point catalogue that the nemesis
//! arms.

use shardstorm_faults::{FailPointKind, FailPointSpec, Knobs, Nemesis, Schedule, Shape};
use shardstorm_node::Bug;
use std::collections::BTreeSet;
use std::time::Duration;

/// Everything that determines a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    pub seed: u64,
    pub nodes: u16,
    pub shards: u16,
    pub epochs: u32,
    pub blobs: u32,
    pub bugs: BTreeSet<Bug>,
    /// `None`: drawn from the seed (swarm testing).
    pub knobs: Option<Knobs>,
    /// `None`: drawn by the nemesis from the seed and knobs.
    pub schedule: Option<Schedule>,
    pub tick_ms: u64,
}

/// The spec's fail-point catalogue (section 11) as the nemesis sees it.
pub const FAIL_POINTS: &[(&str, FailPointKind)] = &[
    // Test-only: ends a failing sync as if the node crashed, for tests that then call
    // `restart_syncs` (spec 4.3). Armed alone it leaves a live node with a dead sync, a state
    // no real node reaches, so the nemesis only observes it (real crashes come from `crash`).
    ("sync.no_retry", FailPointKind::Probe),
    ("sync.metadata.error_before_fetch", FailPointKind::If),
    ("sync.metadata.pause", FailPointKind::Async),
    ("sync.metadata.error_during_fetch", FailPointKind::Arg),
    ("sync.metadata.unavailable", FailPointKind::If),
    ("sync.fetch_sliver", FailPointKind::Arg),
    ("sync.direct_recovery", FailPointKind::Probe),
    ("sync.recovery.start", FailPointKind::Probe),
    ("sync.recovery.after_start", FailPointKind::If),
    ("sync.recovery.recover_blob", FailPointKind::Probe),
    ("sync.recovery.skip_initial_cert_check", FailPointKind::If),
    ("source.return_empty", FailPointKind::If),
    ("source.return_error", FailPointKind::If),
    ("node.enter_recovery_mode", FailPointKind::Async),
    ("node.incomplete_history", FailPointKind::Async),
    ("events.before_process", FailPointKind::Async),
    ("events.process", FailPointKind::Async),
    ("events.initial_cursor", FailPointKind::Arg),
    ("events.epoch_check", FailPointKind::Arg),
    ("events.flush_pending_caches", FailPointKind::Async),
    ("epoch.change_start.entry", FailPointKind::Async),
    ("epoch.finisher.block", FailPointKind::Async),
    ("node_recovery.entry", FailPointKind::Async),
    ("node_recovery.start_sync", FailPointKind::Async),
    ("blob_sync.certified_event", FailPointKind::Async),
    ("blob_sync.before_put_sliver", FailPointKind::Async),
    // A test-only switch: armed, certified events start no blob sync and nothing repairs that,
    // so the nemesis only observes it.
    ("blob_sync.skip_non_extension", FailPointKind::Probe),
    ("db.write_batch.before", FailPointKind::Crash),
    ("db.write_batch.after", FailPointKind::Crash),
    ("db.put.before", FailPointKind::Crash),
    ("db.put.after", FailPointKind::Crash),
    ("db.delete.before", FailPointKind::Crash),
    ("db.delete.after", FailPointKind::Crash),
    ("db.create_shard.before", FailPointKind::Crash),
    ("events.handle.before", FailPointKind::Crash),
    ("events.handle.after", FailPointKind::Crash),
    ("events.write.before", FailPointKind::Crash),
    ("events.write.after", FailPointKind::Crash),
];

/// Status texts the harness accepts in `status` faults.
pub const STATUS_FAULTS: &[&str] = &["RecoveryCatchUp"];

impl RunSpec {
    /// The standard scenario of the performance goals: 5 nodes, 20 shards, 6 epochs, 100 blobs.
    pub fn standard(seed: u64) -> Self {
        Self {
            seed,
            nodes: 5,
            shards: 20,
            epochs: 6,
            blobs: 100,
            bugs: BTreeSet::new(),
            knobs: None,
            schedule: None,
            tick_ms: 10,
        }
    }

    /// Host names of the storage nodes.
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes).map(|i| format!("n{i}")).collect()
    }

    /// The knobs of this run (drawn from the seed unless given).
    pub fn resolved_knobs(&self) -> Knobs {
        self.knobs
            .clone()
            .unwrap_or_else(|| Knobs::draw(self.seed, &self.shape()))
    }

    /// The chaos phase: one epoch length per epoch plus one more for the last change.
    pub fn chaos_duration(&self, knobs: &Knobs) -> Duration {
        Duration::from_millis(knobs.epoch_ms * (u64::from(self.epochs) + 1))
    }

    /// What the nemesis knows about the system under test.
    pub fn shape(&self) -> Shape {
        let knobs_free_duration = Duration::from_secs(60);
        Shape {
            nodes: self.node_names(),
            fail_points: FAIL_POINTS
                .iter()
                .map(|(n, k)| FailPointSpec {
                    name: n.to_string(),
                    kind: *k,
                })
                .collect(),
            statuses: STATUS_FAULTS.iter().map(|s| s.to_string()).collect(),
            duration: knobs_free_duration,
        }
    }

    /// The schedule of this run (drawn unless given).
    pub fn resolved_schedule(&self, knobs: &Knobs) -> Schedule {
        self.schedule.clone().unwrap_or_else(|| {
            let mut shape = self.shape();
            shape.duration = self.chaos_duration(knobs);
            Nemesis::schedule(self.seed, knobs, &shape)
        })
    }
}
