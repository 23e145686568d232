//! What one run is: the seed, the cluster's size, the bug switches, and the knobs and schedule
//! (drawn from the seed unless given), plus the node's fail-point catalogue that the nemesis
//! arms, and the ranges a run must keep to ([`RunSpec::validate`]: checked once where a spec
//! is built from the command line or a run file, so a bad size or a schedule naming a node or
//! fail point the cluster lacks is a one-line usage error, never a panic, a hang or an
//! invented violation).

use shardstorm_faults::{
    parse_actions, FailPointKind, FailPointSpec, Fault, Knobs, Nemesis, Schedule, ScheduleEntry,
    Shape,
};
use shardstorm_node::blob::{MAX_SHARDS, MIN_SHARDS};
use shardstorm_node::fail_points as fp;
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
    (fp::SYNC_NO_RETRY, FailPointKind::Probe),
    (fp::SYNC_METADATA_ERROR_BEFORE_FETCH, FailPointKind::If),
    (fp::SYNC_METADATA_PAUSE, FailPointKind::Async),
    (fp::SYNC_METADATA_ERROR_DURING_FETCH, FailPointKind::Arg),
    (fp::SYNC_METADATA_UNAVAILABLE, FailPointKind::If),
    (fp::SYNC_FETCH_SLIVER, FailPointKind::Arg),
    (fp::SYNC_DIRECT_RECOVERY, FailPointKind::Probe),
    (fp::SYNC_RECOVERY_START, FailPointKind::Probe),
    (fp::SYNC_RECOVERY_AFTER_START, FailPointKind::If),
    (fp::SYNC_RECOVERY_RECOVER_BLOB, FailPointKind::Probe),
    (fp::SYNC_RECOVERY_SKIP_INITIAL_CERT_CHECK, FailPointKind::If),
    (fp::SOURCE_RETURN_EMPTY, FailPointKind::If),
    (fp::SOURCE_RETURN_ERROR, FailPointKind::If),
    (fp::NODE_ENTER_RECOVERY_MODE, FailPointKind::Async),
    (fp::NODE_INCOMPLETE_HISTORY, FailPointKind::Async),
    (fp::EVENTS_BEFORE_PROCESS, FailPointKind::Async),
    (fp::EVENTS_PROCESS, FailPointKind::Async),
    (fp::EVENTS_INITIAL_CURSOR, FailPointKind::Arg),
    (fp::EVENTS_EPOCH_CHECK, FailPointKind::Arg),
    (fp::EVENTS_FLUSH_PENDING_CACHES, FailPointKind::Async),
    (fp::EPOCH_CHANGE_START_ENTRY, FailPointKind::Async),
    (fp::EPOCH_FINISHER_BLOCK, FailPointKind::Async),
    (fp::NODE_RECOVERY_ENTRY, FailPointKind::Async),
    (fp::NODE_RECOVERY_START_SYNC, FailPointKind::Async),
    (fp::BLOB_SYNC_CERTIFIED_EVENT, FailPointKind::Async),
    (fp::BLOB_SYNC_BEFORE_PUT_SLIVER, FailPointKind::Async),
    // A test-only switch: armed, certified events start no blob sync and nothing repairs that,
    // so the nemesis only observes it.
    (fp::BLOB_SYNC_SKIP_NON_EXTENSION, FailPointKind::Probe),
    (fp::DB_WRITE_BATCH_BEFORE, FailPointKind::Crash),
    (fp::DB_WRITE_BATCH_AFTER, FailPointKind::Crash),
    (fp::DB_PUT_BEFORE, FailPointKind::Crash),
    (fp::DB_PUT_AFTER, FailPointKind::Crash),
    (fp::DB_DELETE_BEFORE, FailPointKind::Crash),
    (fp::DB_DELETE_AFTER, FailPointKind::Crash),
    (fp::DB_CREATE_SHARD_BEFORE, FailPointKind::Crash),
    (fp::EVENTS_HANDLE_BEFORE, FailPointKind::Crash),
    (fp::EVENTS_HANDLE_AFTER, FailPointKind::Crash),
    (fp::EVENTS_WRITE_BEFORE, FailPointKind::Crash),
    (fp::EVENTS_WRITE_AFTER, FailPointKind::Crash),
    // Not in the spec's catalogue: the node's side of its link to the chain host.
    (fp::CHAIN_REQUEST, FailPointKind::Async),
];

/// Status texts the harness accepts in `status` faults.
pub const STATUS_FAULTS: &[&str] = &["RecoveryCatchUp"];

/// Most storage nodes a run may have (turmoil links every host pair and scans them per step).
pub const MAX_NODES: u16 = 64;
/// Most blobs a run's workload may write.
pub const MAX_BLOBS: u32 = 100_000;
/// Most epoch changes a run may have (its simulated time is bounded too, see [`RunSpec::validate`]).
pub const MAX_EPOCHS: u32 = 1_000;
/// The simulated tick, in ms.
pub const TICK_MS: std::ops::RangeInclusive<u64> = 1..=1_000;
/// The epoch length a run file's knobs may set, in ms.
pub const EPOCH_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// The longest epoch [`Knobs::draw`] picks, in ms (a test checks the draw keeps to it): the
/// length assumed for a spec whose knobs are drawn per seed.
pub const MAX_DRAWN_EPOCH_MS: u64 = 30_000;
/// Simulated time the liveness phase may take after the chaos phase: its deadline, the grace
/// for an audit in flight, and one more epoch for the final epoch change.
const LIVENESS_ALLOWANCE: Duration = Duration::from_secs(120 + 60);

/// A run the harness cannot run as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{what} must be from {min} to {max}, found {found}")]
    OutOfRange {
        what: &'static str,
        min: u64,
        max: u64,
        found: u64,
    },
    #[error(
        "{epochs} epochs of {epoch_ms} ms need about {need_s} simulated s, more than the \
         simulation's limit of {limit_s} s: use fewer epochs or shorter ones"
    )]
    TooLong {
        epochs: u32,
        epoch_ms: u64,
        need_s: u64,
        limit_s: u64,
    },
    #[error("schedule entry `{entry}` names node `{node}`, but the cluster has {nodes}")]
    UnknownNode {
        entry: String,
        node: String,
        nodes: String,
    },
    #[error(
        "schedule entry `{entry}` names unknown fail point `{point}` (the catalogue is \
         FAIL_POINTS in harness/src/run_spec.rs)"
    )]
    UnknownFailPoint { entry: String, point: String },
    #[error("schedule entry `{entry}` writes status `{status}` (expected one of: {expected})")]
    UnknownStatus {
        entry: String,
        status: String,
        expected: String,
    },
    #[error("schedule entry `{entry}`: {reason}")]
    BadAction { entry: String, reason: String },
}

fn in_range(
    what: &'static str,
    found: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), SpecError> {
    if range.contains(&found) {
        return Ok(());
    }
    Err(SpecError::OutOfRange {
        what,
        min: *range.start(),
        max: *range.end(),
        found,
    })
}

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

    /// Checks the sizes, the tick, the epoch length against the simulation's time limit, and
    /// every schedule entry against this cluster (its nodes, the fail-point catalogue, the
    /// status faults). Knobs and schedule that are `None` (drawn per seed) are checked against
    /// what the draw can produce.
    pub fn validate(&self) -> Result<(), SpecError> {
        in_range("nodes", self.nodes.into(), 1..=MAX_NODES.into())?;
        in_range(
            "shards",
            self.shards.into(),
            MIN_SHARDS.into()..=MAX_SHARDS.into(),
        )?;
        in_range("epochs", self.epochs.into(), 0..=MAX_EPOCHS.into())?;
        in_range("blobs", self.blobs.into(), 0..=MAX_BLOBS.into())?;
        in_range("tick-ms", self.tick_ms, TICK_MS)?;
        let epoch_ms = match &self.knobs {
            Some(knobs) => {
                in_range("epoch_ms", knobs.epoch_ms, EPOCH_MS)?;
                knobs.epoch_ms
            }
            None => MAX_DRAWN_EPOCH_MS,
        };
        let limit = crate::cluster::SIMULATION_LIMIT;
        let need = Duration::from_millis(epoch_ms.saturating_mul(u64::from(self.epochs) + 2))
            .saturating_add(LIVENESS_ALLOWANCE);
        if need > limit {
            return Err(SpecError::TooLong {
                epochs: self.epochs,
                epoch_ms,
                need_s: need.as_secs(),
                limit_s: limit.as_secs(),
            });
        }
        if let Some(schedule) = &self.schedule {
            let names = self.node_names();
            for entry in &schedule.entries {
                check_entry(entry, &names)?;
            }
        }
        Ok(())
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
            chain: true,
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

/// Checks one schedule entry against the cluster's node names and the catalogues.
fn check_entry(entry: &ScheduleEntry, names: &[String]) -> Result<(), SpecError> {
    let text = || entry.to_string();
    let node = |n: &str| -> Result<(), SpecError> {
        let known = if n.contains('*') {
            n == "*"
                || names
                    .iter()
                    .any(|name| shardstorm_faults::glob_match(n, name))
        } else {
            names.iter().any(|name| name == n)
        };
        if known {
            return Ok(());
        }
        let nodes = match names {
            [] => "no nodes".to_string(),
            [only] => format!("only {only}"),
            [first, .., last] => format!("{first} to {last}"),
        };
        Err(SpecError::UnknownNode {
            entry: text(),
            node: n.to_string(),
            nodes,
        })
    };
    let point = |p: &str| -> Result<(), SpecError> {
        if FAIL_POINTS.iter().any(|(name, _)| *name == p) {
            return Ok(());
        }
        Err(SpecError::UnknownFailPoint {
            entry: text(),
            point: p.to_string(),
        })
    };
    if let ScheduleEntry::Triggered {
        point: p, node: n, ..
    } = entry
    {
        point(p)?;
        node(n)?;
    }
    match entry.fault() {
        Fault::Crash { node: n }
        | Fault::Restart { node: n }
        | Fault::CrashRestart { node: n, .. }
        | Fault::DiskEio { node: n, .. }
        | Fault::DiskTornOnCrash { node: n }
        | Fault::DiskCorruptReads { node: n, .. }
        | Fault::Byzantine { node: n, .. } => node(n)?,
        Fault::Partition { a, b, .. } | Fault::Hold { a, b, .. } => {
            a.iter().chain(b).try_for_each(|n| node(n))?
        }
        Fault::ChainPartition { nodes, .. } => nodes.iter().try_for_each(|n| node(n))?,
        Fault::StatusChange { node: n, status } => {
            node(n)?;
            if !STATUS_FAULTS.contains(&status.as_str()) {
                return Err(SpecError::UnknownStatus {
                    entry: text(),
                    status: status.clone(),
                    expected: STATUS_FAULTS.join(", "),
                });
            }
        }
        Fault::FailPoint {
            selector_node,
            point: p,
            action,
        } => {
            if let Some(n) = selector_node {
                node(n)?;
            }
            point(p)?;
            parse_actions(action).map_err(|e| SpecError::BadAction {
                entry: text(),
                reason: e.to_string(),
            })?;
        }
        Fault::ClearFailPoint { point: p } => point(p)?,
        Fault::OpenGate { node: n, point: p } => {
            if let Some(n) = n {
                node(n)?;
            }
            point(p)?;
        }
        Fault::MessageLoss { .. }
        | Fault::LatencySpike { .. }
        | Fault::EpochChange
        | Fault::Reshuffle { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_schedule(text: &str) -> RunSpec {
        RunSpec {
            schedule: Some(text.parse().expect("schedule parses")),
            ..RunSpec::standard(1)
        }
    }

    #[test]
    fn the_catalogue_is_exactly_the_nodes_fail_points() {
        let catalogue: Vec<&str> = FAIL_POINTS.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            catalogue,
            fp::ALL,
            "FAIL_POINTS and node's fail_points::ALL differ"
        );
    }

    #[test]
    fn the_standard_scenario_is_valid() {
        assert_eq!(RunSpec::standard(0).validate(), Ok(()));
        let resolved = RunSpec {
            knobs: Some(RunSpec::standard(3).resolved_knobs()),
            ..RunSpec::standard(3)
        };
        let knobs = resolved.knobs.clone().expect("knobs");
        let spec = RunSpec {
            schedule: Some(resolved.resolved_schedule(&knobs)),
            ..resolved
        };
        assert_eq!(spec.validate(), Ok(()));
    }

    /// An edit of the standard spec and the error it must cause.
    type Case = (fn(&mut RunSpec), &'static str);

    #[test]
    fn sizes_out_of_range_are_named() {
        let cases: [Case; 8] = [
            (|s| s.shards = 3, "shards must be from 4 to 32768, found 3"),
            (|s| s.shards = 0, "shards must be from 4 to 32768, found 0"),
            (
                |s| s.shards = 32_769,
                "shards must be from 4 to 32768, found 32769",
            ),
            (
                |s| s.nodes = 65_535,
                "nodes must be from 1 to 64, found 65535",
            ),
            (|s| s.nodes = 0, "nodes must be from 1 to 64"),
            (|s| s.tick_ms = u64::MAX, "tick-ms must be from 1 to 1000"),
            (|s| s.blobs = u32::MAX, "blobs must be from 0 to 100000"),
            (|s| s.epochs = 500, "simulation's limit of 3600 s"),
        ];
        for (edit, message) in cases {
            let mut spec = RunSpec::standard(0);
            edit(&mut spec);
            let err = spec.validate().expect_err(message);
            assert!(err.to_string().contains(message), "{err}");
        }
        let mut long = RunSpec::standard(0);
        let mut knobs = long.resolved_knobs();
        knobs.epoch_ms = 1_000_000;
        long.knobs = Some(knobs);
        let err = long.validate().expect_err("too long");
        assert!(matches!(err, SpecError::TooLong { .. }), "{err:?}");
    }

    #[test]
    fn drawn_epochs_keep_to_the_assumed_maximum() {
        for seed in 0..300 {
            let knobs = RunSpec::standard(seed).resolved_knobs();
            assert!(knobs.epoch_ms <= MAX_DRAWN_EPOCH_MS, "seed {seed}: {knobs}");
            assert!(EPOCH_MS.contains(&knobs.epoch_ms), "seed {seed}: {knobs}");
        }
    }

    #[test]
    fn schedule_entries_are_checked_against_the_cluster() {
        let good = "at sync.fetch_sliver@n2 after 1.000s epoch-change\n\
                    1.000s crash n4\n\
                    2.000s partition n0 n1,n2 for 1.000s\n\
                    3.000s failpoint n* sync.metadata.pause 125%2*pause\n\
                    4.000s status n1 RecoveryCatchUp\n";
        assert_eq!(with_schedule(good).validate(), Ok(()));
        let bad = [
            (
                "1.000s crash n99",
                "names node `n99`, but the cluster has n0 to n4",
            ),
            ("1.000s partition n1 n0,n7 for 1.000s", "node `n7`"),
            ("1.000s failpoint m* sync.metadata.pause pause", "node `m*`"),
            (
                "1.000s failpoint * no.such.point return",
                "unknown fail point `no.such.point`",
            ),
            ("at no.such@n1 crash n1", "unknown fail point `no.such`"),
            ("at sync.fetch_sliver@n9 crash n1", "node `n9`"),
            ("1.000s status n1 Active", "writes status `Active`"),
            ("1.000s clear-failpoint sync.nope", "unknown fail point"),
        ];
        for (line, message) in bad {
            let err = with_schedule(line).validate().expect_err(line);
            let text = err.to_string();
            assert!(text.contains(message), "{line}: {text}");
            assert!(!text.contains('\n'), "{text}");
        }
    }
}
