//! The coverage features of one run, read from its trace and its fail-point ledger after the
//! run: generic states of the spec, never a catalogue bug.
//!
//! - every catalogued fail point reached and fired (hit counts bucketed);
//! - every node-status and shard-status transition with its writer (N1.., S1..);
//! - each transition (and each fired fail point) paired with the node's concurrent activity at
//!   that instant (metadata recovery running, a shard sync running, a shard recovering, an
//!   epoch change in progress, a restart in progress, catch-up, node recovery) and, one
//!   feature per kind, with the fault kinds active on the node itself or elsewhere;
//! - ordered pairs of a node's protocol events within [`PAIR_WINDOW_MS`];
//! - the last [`HISTORY`] steps of each state machine of the spec, whatever the time between
//!   them: of each node (its status writes, starts, crashes, epoch changes, metadata
//!   recovery, attestations) and of each shard on each node (its status writes, whether its
//!   own sync ran at that moment, creation, drop, sync start and end, recovery, the node's
//!   starts and crashes). A shard that was locked while its sync ran and is later gained
//!   again is a history no shorter feature tells apart.
//!
//! Every feature counts its occurrences; the feature kept is (feature, AFL hit-count bucket)
//! hashed into a `u64` ([`Features::hashes`]), so reaching a state more often is new too.
//! Everything is ordered (BTreeMap) and the hash is a fixed mix of small integers, so a run's
//! features are the same on every machine and in every process.

use crate::run_spec::FAIL_POINTS;
use crate::trace::{HarnessEvent, TraceEvent, TraceKind};
use shardstorm_faults::{Fault, LedgerEntry};
use shardstorm_node::ctx::{AttestationPath, NodeStatusWriter, ShardStatusWriter, SyncOutcome};
use shardstorm_node::{NodeId, NodeStatus, ProbeEvent, ShardStatus};
use std::collections::BTreeMap;
use std::fmt;

/// Two protocol events of one node at most this far apart (simulated ms) form a pair.
pub const PAIR_WINDOW_MS: u64 = 1000;
/// A node counts as restarting for this long (simulated ms) after it started.
pub const RESTART_WINDOW_MS: u64 = 2000;
/// A status write from outside counts as an active fault for this long (simulated ms).
const STATUS_FAULT_MS: u64 = 1000;
/// The most recent distinct event classes of a node kept for pairing.
const PAIR_DEPTH: usize = 6;
/// Steps of a node's or a shard's history one feature holds.
pub const HISTORY: usize = 3;

/// The node's concurrent activity at an instant, one bit each.
pub mod activity {
    /// Metadata recovery running.
    pub const METADATA_RECOVERY: u8 = 1 << 0;
    /// At least one shard sync running.
    pub const SHARD_SYNC: u8 = 1 << 1;
    /// At least one shard sync switched to recovery (direct or symbol recovery).
    pub const SHARD_RECOVERY: u8 = 1 << 2;
    /// The node started an epoch change it has not attested yet.
    pub const EPOCH_CHANGE: u8 = 1 << 3;
    /// The node started recently (restart ordering, `restart_syncs`).
    pub const RESTART: u8 = 1 << 4;
    /// The node's status is a catch-up status.
    pub const CATCH_UP: u8 = 1 << 5;
    /// The node's status is `RecoveryInProgress`.
    pub const NODE_RECOVERY: u8 = 1 << 6;

    pub(super) const NAMES: [&str; 7] = [
        "mdrec", "sync", "recover", "epoch", "restart", "catchup", "noderec",
    ];
}

/// A kind of fault active at an instant (from the trace's `fault` lines).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActiveFault {
    Crash,
    Partition,
    Loss,
    Latency,
    DiskEio,
    DiskCorrupt,
    Byzantine,
    FailpointPause,
    FailpointError,
    FailpointDelay,
    FailpointCrash,
    StatusWrite,
    /// The node's link to the chain host is cut.
    ChainPartition,
}

/// One coverage feature before bucketing. Points are indices into [`FAIL_POINTS`]
/// (`u16::MAX`: a point outside the catalogue); statuses are variant codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Feature {
    PointReached {
        point: u16,
    },
    PointFired {
        point: u16,
    },
    PointFiredIn {
        point: u16,
        activity: u8,
    },
    NodeTransition {
        from: u8,
        to: u8,
        writer: u8,
    },
    NodeTransitionIn {
        from: u8,
        to: u8,
        writer: u8,
        activity: u8,
    },
    NodeTransitionUnder {
        from: u8,
        to: u8,
        writer: u8,
        fault: ActiveFault,
        on_self: bool,
    },
    ShardTransition {
        from: u8,
        to: u8,
        writer: u8,
    },
    ShardTransitionIn {
        from: u8,
        to: u8,
        writer: u8,
        activity: u8,
    },
    ShardTransitionUnder {
        from: u8,
        to: u8,
        writer: u8,
        fault: ActiveFault,
        on_self: bool,
    },
    /// Event `first` of a node followed by `then` within [`PAIR_WINDOW_MS`].
    Pair {
        first: u16,
        then: u16,
    },
    /// The last [`HISTORY`] steps of a node (oldest first, see [`step`]).
    NodeHistory {
        steps: [u16; HISTORY],
    },
    /// The last [`HISTORY`] steps of one shard on one node (oldest first, see [`step`]).
    ShardHistory {
        steps: [u16; HISTORY],
    },
}

/// Steps of the node and shard histories: high byte the kind, low byte a detail.
pub mod step {
    /// A status write: detail `to << 4 | writer`.
    pub const STATUS: u16 = 1 << 8;
    /// A shard status write while the shard's own sync ran: detail as [`STATUS`].
    pub const STATUS_IN_SYNC: u16 = 2 << 8;
    pub const CREATED: u16 = 3 << 8;
    pub const DROPPED: u16 = 4 << 8;
    pub const SYNC_START: u16 = 5 << 8;
    /// Detail: the outcome (1 success, 2 failed, 3 crash, 4 cancelled).
    pub const SYNC_FINISH: u16 = 6 << 8;
    pub const RECOVERY: u16 = 7 << 8;
    pub const STARTED: u16 = 8 << 8;
    pub const CRASHED: u16 = 9 << 8;
    pub const EPOCH_START: u16 = 10 << 8;
    /// Detail: 1 finished, 0 failed.
    pub const MDREC: u16 = 11 << 8;
    pub const MDREC_START: u16 = 12 << 8;
    pub const ABORTED: u16 = 13 << 8;
    /// Detail: the attestation path.
    pub const ATTESTED: u16 = 14 << 8;
    pub const NODE_RECOVERY: u16 = 15 << 8;

    pub(super) const NAMES: [&str; 16] = [
        "-",
        "status",
        "status-in-sync",
        "created",
        "dropped",
        "sync-start",
        "sync-finish",
        "recovery",
        "started",
        "crashed",
        "epoch-change",
        "mdrec-finish",
        "mdrec-start",
        "aborted",
        "attested",
        "node-recovery",
    ];
}

/// A node's or a shard's last steps, most recent last.
#[derive(Debug, Default, Clone)]
struct History {
    steps: [u16; HISTORY],
}

impl History {
    /// Appends `step`; the history after it, or `None` when it repeats the last step (a
    /// repeat is not a step).
    fn push(&mut self, step: u16) -> Option<[u16; HISTORY]> {
        if self.steps[HISTORY - 1] == step {
            return None;
        }
        self.steps.rotate_left(1);
        self.steps[HISTORY - 1] = step;
        Some(self.steps)
    }
}

/// AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+.
pub fn bucket(count: u64) -> u8 {
    match count {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=7 => 4,
        8..=15 => 5,
        16..=31 => 6,
        32..=127 => 7,
        _ => 8,
    }
}

/// The smallest count of `bucket`.
fn bucket_floor(bucket: u8) -> u64 {
    match bucket {
        0..=3 => u64::from(bucket),
        4 => 4,
        5 => 8,
        6 => 16,
        7 => 32,
        _ => 128,
    }
}

/// A fixed 64-bit mix (splitmix64's finalizer).
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Feature {
    /// The fields packed into one integer (injective within each variant).
    fn pack(&self) -> u64 {
        let (tag, a, b, c, d): (u64, u64, u64, u64, u64) = match *self {
            Feature::PointReached { point } => (1, point.into(), 0, 0, 0),
            Feature::PointFired { point } => (2, point.into(), 0, 0, 0),
            Feature::PointFiredIn { point, activity } => (3, point.into(), activity.into(), 0, 0),
            Feature::NodeTransition { from, to, writer } => {
                (4, from.into(), to.into(), writer.into(), 0)
            }
            Feature::NodeTransitionIn {
                from,
                to,
                writer,
                activity,
            } => (5, from.into(), to.into(), writer.into(), activity.into()),
            Feature::NodeTransitionUnder {
                from,
                to,
                writer,
                fault,
                on_self,
            } => (
                6,
                from.into(),
                to.into(),
                writer.into(),
                (fault as u64) << 1 | u64::from(on_self),
            ),
            Feature::ShardTransition { from, to, writer } => {
                (7, from.into(), to.into(), writer.into(), 0)
            }
            Feature::ShardTransitionIn {
                from,
                to,
                writer,
                activity,
            } => (8, from.into(), to.into(), writer.into(), activity.into()),
            Feature::ShardTransitionUnder {
                from,
                to,
                writer,
                fault,
                on_self,
            } => (
                9,
                from.into(),
                to.into(),
                writer.into(),
                (fault as u64) << 1 | u64::from(on_self),
            ),
            Feature::Pair { first, then } => (10, first.into(), then.into(), 0, 0),
            Feature::NodeHistory { steps } | Feature::ShardHistory { steps } => {
                let tag: u64 = if matches!(self, Feature::NodeHistory { .. }) {
                    11
                } else {
                    12
                };
                let [x, y, z] = steps.map(u64::from);
                return tag << 56 | x << 32 | y << 16 | z;
            }
        };
        tag << 56 | a << 40 | b << 24 | c << 16 | d
    }

    /// The hit-count bucket of `count` occurrences: AFL's, except that how often a fail point
    /// was evaluated, or a history was seen, only counts as reached or not (those counts
    /// measure the workload's volume and the number of shards, not a state, and would make
    /// every run look new).
    pub fn bucket(&self, count: u64) -> u8 {
        match self {
            Feature::PointReached { .. }
            | Feature::NodeHistory { .. }
            | Feature::ShardHistory { .. } => u8::from(count > 0),
            _ => bucket(count),
        }
    }

    /// The hashed feature kept for `count` occurrences.
    pub fn hash(&self, count: u64) -> u64 {
        mix(self.pack() ^ mix(u64::from(self.bucket(count)) + 0x5eed))
    }
}

fn point_name(point: u16) -> &'static str {
    FAIL_POINTS
        .get(usize::from(point))
        .map_or("(uncatalogued)", |(n, _)| n)
}

fn activity_text(mask: u8) -> String {
    let names: Vec<&str> = (0..activity::NAMES.len())
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| activity::NAMES[i])
        .collect();
    if names.is_empty() {
        "idle".into()
    } else {
        names.join("+")
    }
}

const NODE_STATUS_NAMES: [&str; 7] = [
    "-",
    "Standby",
    "Active",
    "RecoverMetadata",
    "RecoveryCatchUp",
    "RecoveryInProgress",
    "RecoveryCatchUpWithIncompleteHistory",
];
const SHARD_STATUS_NAMES: [&str; 6] = [
    "-",
    "None",
    "Active",
    "ActiveSync",
    "ActiveRecover",
    "LockedToMove",
];

fn name_of(names: &[&'static str], code: u8) -> &'static str {
    names.get(usize::from(code)).copied().unwrap_or("?")
}

fn node_writer_name(code: u8) -> String {
    if code == 0 {
        "Direct".into()
    } else {
        format!("N{code}")
    }
}

fn shard_writer_name(code: u8) -> String {
    if code == 0 {
        "Direct".into()
    } else {
        format!("S{code}")
    }
}

fn on(on_self: bool) -> &'static str {
    if on_self {
        "self"
    } else {
        "other"
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let node = |from, to| {
            format!(
                "{} -> {}",
                name_of(&NODE_STATUS_NAMES, from),
                name_of(&NODE_STATUS_NAMES, to)
            )
        };
        let shard = |from, to| {
            format!(
                "{} -> {}",
                name_of(&SHARD_STATUS_NAMES, from),
                name_of(&SHARD_STATUS_NAMES, to)
            )
        };
        match *self {
            Feature::PointReached { point } => write!(f, "reached {}", point_name(point)),
            Feature::PointFired { point } => write!(f, "fired {}", point_name(point)),
            Feature::PointFiredIn { point, activity } => {
                write!(
                    f,
                    "fired {} during {}",
                    point_name(point),
                    activity_text(activity)
                )
            }
            Feature::NodeTransition { from, to, writer } => {
                write!(f, "node {} by {}", node(from, to), node_writer_name(writer))
            }
            Feature::NodeTransitionIn {
                from,
                to,
                writer,
                activity,
            } => write!(
                f,
                "node {} by {} during {}",
                node(from, to),
                node_writer_name(writer),
                activity_text(activity)
            ),
            Feature::NodeTransitionUnder {
                from,
                to,
                writer,
                fault,
                on_self,
            } => write!(
                f,
                "node {} by {} under {fault:?} on {}",
                node(from, to),
                node_writer_name(writer),
                on(on_self)
            ),
            Feature::ShardTransition { from, to, writer } => {
                write!(
                    f,
                    "shard {} by {}",
                    shard(from, to),
                    shard_writer_name(writer)
                )
            }
            Feature::ShardTransitionIn {
                from,
                to,
                writer,
                activity,
            } => write!(
                f,
                "shard {} by {} during {}",
                shard(from, to),
                shard_writer_name(writer),
                activity_text(activity)
            ),
            Feature::ShardTransitionUnder {
                from,
                to,
                writer,
                fault,
                on_self,
            } => write!(
                f,
                "shard {} by {} under {fault:?} on {}",
                shard(from, to),
                shard_writer_name(writer),
                on(on_self)
            ),
            Feature::Pair { first, then } => {
                write!(f, "{} then {}", class_text(first), class_text(then))
            }
            Feature::NodeHistory { steps } => {
                write!(
                    f,
                    "node history {}",
                    history_text(&steps, &NODE_STATUS_NAMES)
                )
            }
            Feature::ShardHistory { steps } => write!(
                f,
                "shard history {}",
                history_text(&steps, &SHARD_STATUS_NAMES)
            ),
        }
    }
}

fn history_text(steps: &[u16], statuses: &[&'static str]) -> String {
    let text: Vec<String> = steps
        .iter()
        .filter(|s| **s != 0)
        .map(|s| {
            let (kind, detail) = (*s & 0xff00, (*s & 0xff) as u8);
            let name = step::NAMES
                .get(usize::from(*s >> 8))
                .copied()
                .unwrap_or("?");
            match kind {
                step::STATUS | step::STATUS_IN_SYNC => {
                    format!("{name}:{}/{}", name_of(statuses, detail >> 4), detail & 0xf)
                }
                _ if detail != 0 => format!("{name}:{detail}"),
                _ => name.to_string(),
            }
        })
        .collect();
    text.join(" > ")
}

fn node_status_code(s: &NodeStatus) -> u8 {
    match s {
        NodeStatus::Standby => 1,
        NodeStatus::Active => 2,
        NodeStatus::RecoverMetadata => 3,
        NodeStatus::RecoveryCatchUp => 4,
        NodeStatus::RecoveryInProgress(_) => 5,
        NodeStatus::RecoveryCatchUpWithIncompleteHistory { .. } => 6,
    }
}

fn shard_status_code(s: &ShardStatus) -> u8 {
    match s {
        ShardStatus::None => 1,
        ShardStatus::Active => 2,
        ShardStatus::ActiveSync => 3,
        ShardStatus::ActiveRecover => 4,
        ShardStatus::LockedToMove => 5,
    }
}

fn node_writer_code(w: NodeStatusWriter) -> u8 {
    use NodeStatusWriter::*;
    match w {
        N1 => 1,
        N2 => 2,
        N3 => 3,
        N4 => 4,
        N5 => 5,
        N6 => 6,
        N7 => 7,
        N8 => 8,
        N9 => 9,
        N10 => 10,
        N11 => 11,
        Direct => 0,
    }
}

fn shard_writer_code(w: ShardStatusWriter) -> u8 {
    use ShardStatusWriter::*;
    match w {
        S1 => 1,
        S2 => 2,
        S3 => 3,
        S4 => 4,
        S5 => 5,
        S6 => 6,
        S7 => 7,
        S8 => 8,
        Direct => 0,
    }
}

/// The catalogue index of a fail point (`u16::MAX` outside the catalogue).
pub fn point_index(point: &str) -> u16 {
    FAIL_POINTS
        .iter()
        .position(|(n, _)| *n == point)
        .and_then(|i| u16::try_from(i).ok())
        .unwrap_or(u16::MAX)
}

/// Event classes of the pair features: high byte the kind, low byte a detail.
mod class {
    pub const STARTED: u16 = 1 << 8;
    pub const NODE_STATUS: u16 = 2 << 8;
    pub const SHARD_STATUS: u16 = 3 << 8;
    pub const SHARD_CREATED: u16 = 4 << 8;
    pub const SHARD_DROPPED: u16 = 5 << 8;
    pub const OUTER_START: u16 = 6 << 8;
    pub const OUTER_ABORTED: u16 = 7 << 8;
    pub const MDREC_START: u16 = 8 << 8;
    pub const MDREC_FINISH: u16 = 9 << 8;
    pub const SYNC_START: u16 = 10 << 8;
    pub const SYNC_FINISH: u16 = 11 << 8;
    pub const DIRECT_RECOVERY: u16 = 12 << 8;
    pub const RECOVERY_START: u16 = 13 << 8;
    pub const ATTESTATION: u16 = 14 << 8;
    pub const EPOCH_START: u16 = 15 << 8;
    pub const PENDING_WAIT: u16 = 16 << 8;
    pub const RECOVERY_MODE: u16 = 17 << 8;
    pub const BLOB_INVALIDATED: u16 = 18 << 8;
    pub const NODE_RECOVERY_START: u16 = 19 << 8;
    pub const FATAL: u16 = 20 << 8;
    pub const FIRED: u16 = 21 << 8;
    pub const CRASHED: u16 = 22 << 8;

    pub const NAMES: [&str; 23] = [
        "?",
        "started",
        "node-status",
        "shard-status",
        "shard-created",
        "shard-dropped",
        "outer-task-start",
        "outer-task-aborted",
        "metadata-recovery-start",
        "metadata-recovery-finish",
        "sync-start",
        "sync-finish",
        "direct-recovery",
        "recovery-start",
        "attestation",
        "epoch-change-start",
        "pending-events-wait",
        "recovery-mode",
        "blob-invalidated",
        "node-recovery-start",
        "fatal",
        "fired",
        "crashed",
    ];
}

fn class_text(c: u16) -> String {
    let kind = usize::from(c >> 8);
    let detail = (c & 0xff) as u8;
    let name = class::NAMES.get(kind).copied().unwrap_or("?");
    match c & 0xff00 {
        class::NODE_STATUS => format!("{name}:{}", name_of(&NODE_STATUS_NAMES, detail)),
        class::SHARD_STATUS => format!("{name}:{}", name_of(&SHARD_STATUS_NAMES, detail)),
        class::FIRED => format!("{name}:{}", point_name(u16::from(detail))),
        _ if detail != 0 => format!("{name}:{detail}"),
        _ => name.to_string(),
    }
}

/// The detail code of a sync's outcome (1 success, 2 failed, 3 crash, 4 cancelled).
fn outcome_code(outcome: SyncOutcome) -> u16 {
    match outcome {
        SyncOutcome::Success => 1,
        SyncOutcome::Failed => 2,
        SyncOutcome::SimulatedCrash => 3,
        SyncOutcome::Cancelled => 4,
    }
}

/// The detail code of an attestation's path (1 shard sync, 2 finisher, 3 node recovery).
fn path_code(path: AttestationPath) -> u16 {
    match path {
        AttestationPath::ShardSync => 1,
        AttestationPath::Finisher => 2,
        AttestationPath::NodeRecovery => 3,
    }
}

/// The pair class of a probe event (`None`: too frequent to pair, e.g. stored slivers).
fn probe_class(p: &ProbeEvent) -> Option<u16> {
    use ProbeEvent::*;
    Some(match p {
        Started => class::STARTED,
        NodeStatus { to, .. } => class::NODE_STATUS | u16::from(node_status_code(to)),
        ShardStatus { to, .. } => class::SHARD_STATUS | u16::from(shard_status_code(to)),
        ShardCreated { .. } => class::SHARD_CREATED,
        ShardDropped { .. } => class::SHARD_DROPPED,
        OuterTaskStart { .. } => class::OUTER_START,
        OuterTaskAborted { .. } => class::OUTER_ABORTED,
        MetadataRecoveryStart { .. } => class::MDREC_START,
        MetadataRecoveryFinish { ok, .. } => class::MDREC_FINISH | u16::from(*ok),
        SyncStart { .. } => class::SYNC_START,
        SyncFinish { outcome, .. } => class::SYNC_FINISH | outcome_code(*outcome),
        DirectRecovery { forced, .. } => class::DIRECT_RECOVERY | u16::from(*forced),
        RecoveryStart { .. } => class::RECOVERY_START,
        Attestation { path, .. } => class::ATTESTATION | path_code(*path),
        EpochChangeStart { .. } => class::EPOCH_START,
        EpochChangeProcessed { .. } => return None,
        PendingEventsWait { .. } => class::PENDING_WAIT,
        RecoveryMode { .. } => class::RECOVERY_MODE,
        BlobInvalidated { .. } => class::BLOB_INVALIDATED,
        NodeRecoveryStart { .. } => class::NODE_RECOVERY_START,
        Fatal { .. } => class::FATAL,
        SyncProgress { .. } | SliverStored { .. } | SliversServed { .. } => return None,
    })
}

/// What the scan knows about one node.
#[derive(Debug, Default)]
struct NodeState {
    status: Option<u8>,
    metadata_recovery: bool,
    /// Running syncs per shard.
    syncs: BTreeMap<u16, u32>,
    /// Shards whose running sync switched to recovery.
    recovering: BTreeMap<u16, ()>,
    /// The epoch of the epoch change the node started and has not attested yet.
    epoch_change: Option<u64>,
    started_ms: Option<u64>,
    /// Recent distinct event classes, most recent last.
    recent: Vec<(u16, u64)>,
    history: History,
    shards: BTreeMap<u16, History>,
}

impl NodeState {
    fn activity(&self, t_ms: u64) -> u8 {
        let mut mask = 0;
        if self.metadata_recovery {
            mask |= activity::METADATA_RECOVERY;
        }
        if !self.syncs.is_empty() {
            mask |= activity::SHARD_SYNC;
        }
        if !self.recovering.is_empty() {
            mask |= activity::SHARD_RECOVERY;
        }
        if self.epoch_change.is_some() {
            mask |= activity::EPOCH_CHANGE;
        }
        if self
            .started_ms
            .is_some_and(|s| t_ms.saturating_sub(s) < RESTART_WINDOW_MS)
        {
            mask |= activity::RESTART;
        }
        match self.status {
            Some(4 | 6) => mask |= activity::CATCH_UP,
            Some(5) => mask |= activity::NODE_RECOVERY,
            _ => {}
        }
        mask
    }

    /// The process ended: everything it ran is gone.
    fn crashed(&mut self) {
        self.metadata_recovery = false;
        self.syncs.clear();
        self.recovering.clear();
        self.epoch_change = None;
        self.started_ms = None;
    }
}

/// A fault from the trace, active over `[start, end)` (`end == None`: until healed).
#[derive(Debug)]
struct Active {
    kind: ActiveFault,
    /// The node it targets (`None`: network-wide or any node).
    node: Option<NodeId>,
    /// The point an armed fail point waits at (cleared by `clear-failpoint`).
    point: Option<String>,
    end: Option<u64>,
}

fn fail_point_kind(action: &str) -> ActiveFault {
    if action.contains("pause") {
        ActiveFault::FailpointPause
    } else if action.contains("delay") {
        ActiveFault::FailpointDelay
    } else if action.contains("crash") || action.contains("restart") {
        ActiveFault::FailpointCrash
    } else {
        ActiveFault::FailpointError
    }
}

/// The coverage features of one run.
#[derive(Debug, Default)]
pub struct Features {
    counts: BTreeMap<Feature, u64>,
    /// When each feature's count entered its current bucket (simulated ms).
    since: BTreeMap<Feature, u64>,
    nodes: BTreeMap<NodeId, NodeState>,
    faults: Vec<Active>,
}

impl Features {
    /// The features of a run: its trace, then its ledger's reach and fire counts.
    pub fn of_run(trace: &[TraceEvent], ledger: &[LedgerEntry]) -> Self {
        let mut features = Self::default();
        for event in trace {
            features.on_event(event);
        }
        features.on_ledger(ledger);
        features
    }

    fn count(&mut self, feature: Feature, t_ms: u64) {
        let count = self.counts.entry(feature).or_insert(0);
        *count += 1;
        if bucket_floor(feature.bucket(*count)) == *count {
            self.since.insert(feature, t_ms);
        }
    }

    fn node(&mut self, id: NodeId) -> &mut NodeState {
        self.nodes.entry(id).or_default()
    }

    /// The fault kinds active at `t_ms`, each once per (kind, on the node itself).
    fn active_faults(&mut self, node: NodeId, t_ms: u64) -> Vec<(ActiveFault, bool)> {
        self.faults.retain(|f| f.end.is_none_or(|e| t_ms < e));
        let mut kinds: Vec<(ActiveFault, bool)> = self
            .faults
            .iter()
            .map(|f| (f.kind, f.node.is_none_or(|n| n == node)))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }

    fn on_fault(&mut self, fault: &Fault, t_ms: u64) {
        let timed = |kind, node: Option<&String>, d: std::time::Duration| Active {
            kind,
            node: node.and_then(|n| NodeId::from_host(n)),
            point: None,
            end: Some(t_ms + d.as_millis() as u64),
        };
        let active = match fault {
            Fault::Crash { node } => Active {
                kind: ActiveFault::Crash,
                node: NodeId::from_host(node),
                point: None,
                end: None,
            },
            Fault::CrashRestart { node, down } => timed(ActiveFault::Crash, Some(node), *down),
            Fault::Restart { node } => {
                let id = NodeId::from_host(node);
                self.faults
                    .retain(|f| !(f.kind == ActiveFault::Crash && f.node == id));
                return;
            }
            Fault::Partition { duration, .. } | Fault::Hold { duration, .. } => {
                timed(ActiveFault::Partition, None, *duration)
            }
            Fault::ChainPartition {
                nodes, duration, ..
            } => {
                for node in nodes {
                    let cut = timed(ActiveFault::ChainPartition, Some(node), *duration);
                    self.faults.push(cut);
                }
                return;
            }
            Fault::MessageLoss { duration, .. } => timed(ActiveFault::Loss, None, *duration),
            Fault::LatencySpike { duration, .. } => timed(ActiveFault::Latency, None, *duration),
            Fault::DiskEio { node, duration } => timed(ActiveFault::DiskEio, Some(node), *duration),
            Fault::DiskCorruptReads { node, duration, .. } => {
                timed(ActiveFault::DiskCorrupt, Some(node), *duration)
            }
            Fault::Byzantine { node, duration } => {
                timed(ActiveFault::Byzantine, Some(node), *duration)
            }
            Fault::StatusChange { node, .. } => timed(
                ActiveFault::StatusWrite,
                Some(node),
                std::time::Duration::from_millis(STATUS_FAULT_MS),
            ),
            Fault::FailPoint {
                selector_node,
                point,
                action,
            } => Active {
                kind: fail_point_kind(action),
                node: selector_node.as_deref().and_then(NodeId::from_host),
                point: Some(point.clone()),
                end: None,
            },
            Fault::ClearFailPoint { point } => {
                self.faults
                    .retain(|f| f.point.as_deref() != Some(point.as_str()));
                return;
            }
            Fault::DiskTornOnCrash { .. }
            | Fault::OpenGate { .. }
            | Fault::EpochChange
            | Fault::Reshuffle { .. } => return,
        };
        self.faults.push(active);
    }

    fn pair(&mut self, node: NodeId, class: u16, t_ms: u64) {
        let recent = std::mem::take(&mut self.node(node).recent);
        let mut kept = Vec::with_capacity(PAIR_DEPTH);
        for &(first, at) in &recent {
            if t_ms.saturating_sub(at) <= PAIR_WINDOW_MS {
                self.count(Feature::Pair { first, then: class }, t_ms);
                if first != class {
                    kept.push((first, at));
                }
            }
        }
        kept.push((class, t_ms));
        if kept.len() > PAIR_DEPTH {
            kept.remove(0);
        }
        self.node(node).recent = kept;
    }

    fn on_event(&mut self, event: &TraceEvent) {
        let t = event.t_ms;
        match (&event.kind, event.node) {
            (TraceKind::Probe(p), Some(node)) => self.on_probe(node, p, t),
            (TraceKind::Fault(fault), _) => self.on_fault(fault, t),
            (TraceKind::FailPoint { point, .. }, Some(node)) => {
                let point = point_index(point);
                let activity = self.node(node).activity(t);
                self.count(Feature::PointFired { point }, t);
                self.count(Feature::PointFiredIn { point, activity }, t);
                let detail = point.min(0xfe);
                self.pair(node, class::FIRED | detail, t);
            }
            (TraceKind::Harness(HarnessEvent::Crashed), Some(node)) => {
                self.node(node).crashed();
                self.pair(node, class::CRASHED, t);
                self.every_history(node, step::CRASHED, t);
            }
            _ => {}
        }
    }

    /// Appends `step` to the node's history (`shard: None`) or to one shard's.
    fn history(&mut self, node: NodeId, shard: Option<u16>, step: u16, t: u64) {
        let state = self.node(node);
        let history = match shard {
            None => &mut state.history,
            Some(s) => state.shards.entry(s).or_default(),
        };
        if let Some(steps) = history.push(step) {
            let feature = match shard {
                None => Feature::NodeHistory { steps },
                Some(_) => Feature::ShardHistory { steps },
            };
            self.count(feature, t);
        }
    }

    /// Appends `step` to the node's history and to that of every shard it has held.
    fn every_history(&mut self, node: NodeId, step: u16, t: u64) {
        self.history(node, None, step, t);
        let shards: Vec<u16> = self.node(node).shards.keys().copied().collect();
        for shard in shards {
            self.history(node, Some(shard), step, t);
        }
    }

    /// The history step of a probe event: (its shard, or `None` for the node's, the step).
    fn history_step(&self, node: NodeId, p: &ProbeEvent) -> Option<(Option<u16>, u16)> {
        use ProbeEvent::*;
        let status = |to: u8, writer: u8| u16::from(to) << 4 | u16::from(writer);
        Some(match p {
            NodeStatus { to, writer, .. } => (
                None,
                step::STATUS | status(node_status_code(to), node_writer_code(*writer)),
            ),
            ShardStatus {
                shard, to, writer, ..
            } => {
                let in_sync = self
                    .nodes
                    .get(&node)
                    .is_some_and(|s| s.syncs.contains_key(&shard.0));
                let kind = if in_sync {
                    step::STATUS_IN_SYNC
                } else {
                    step::STATUS
                };
                let detail = status(shard_status_code(to), shard_writer_code(*writer));
                (Some(shard.0), kind | detail)
            }
            ShardCreated { shard } => (Some(shard.0), step::CREATED),
            ShardDropped { shard } => (Some(shard.0), step::DROPPED),
            SyncStart { shard, .. } => (Some(shard.0), step::SYNC_START),
            SyncFinish { shard, outcome, .. } => {
                (Some(shard.0), step::SYNC_FINISH | outcome_code(*outcome))
            }
            DirectRecovery { shard, .. } | RecoveryStart { shard, .. } => {
                (Some(shard.0), step::RECOVERY)
            }
            EpochChangeStart { .. } => (None, step::EPOCH_START),
            MetadataRecoveryStart { .. } => (None, step::MDREC_START),
            MetadataRecoveryFinish { ok, .. } => (None, step::MDREC | u16::from(*ok)),
            OuterTaskAborted { .. } => (None, step::ABORTED),
            Attestation { path, .. } => (None, step::ATTESTED | path_code(*path)),
            NodeRecoveryStart { .. } => (None, step::NODE_RECOVERY),
            _ => return None,
        })
    }

    fn on_probe(&mut self, node: NodeId, p: &ProbeEvent, t: u64) {
        let class = probe_class(p);
        if matches!(p, ProbeEvent::Started) {
            self.every_history(node, step::STARTED, t);
        } else if let Some((shard, step)) = self.history_step(node, p) {
            self.history(node, shard, step, t);
        }
        match p {
            ProbeEvent::Started => {
                let state = self.node(node);
                state.crashed();
                state.started_ms = Some(t);
            }
            ProbeEvent::NodeStatus {
                from, to, writer, ..
            } => {
                let (from, to) = (
                    from.as_ref().map_or(0, node_status_code),
                    node_status_code(to),
                );
                let writer = node_writer_code(*writer);
                let activity = self.node(node).activity(t);
                self.count(Feature::NodeTransition { from, to, writer }, t);
                self.count(
                    Feature::NodeTransitionIn {
                        from,
                        to,
                        writer,
                        activity,
                    },
                    t,
                );
                for (fault, on_self) in self.active_faults(node, t) {
                    let feature = Feature::NodeTransitionUnder {
                        from,
                        to,
                        writer,
                        fault,
                        on_self,
                    };
                    self.count(feature, t);
                }
                self.node(node).status = Some(to);
            }
            ProbeEvent::ShardStatus {
                from, to, writer, ..
            } => {
                let (from, to) = (
                    from.as_ref().map_or(0, shard_status_code),
                    shard_status_code(to),
                );
                let writer = shard_writer_code(*writer);
                let activity = self.node(node).activity(t);
                self.count(Feature::ShardTransition { from, to, writer }, t);
                self.count(
                    Feature::ShardTransitionIn {
                        from,
                        to,
                        writer,
                        activity,
                    },
                    t,
                );
                for (fault, on_self) in self.active_faults(node, t) {
                    let feature = Feature::ShardTransitionUnder {
                        from,
                        to,
                        writer,
                        fault,
                        on_self,
                    };
                    self.count(feature, t);
                }
            }
            ProbeEvent::MetadataRecoveryStart { .. } => self.node(node).metadata_recovery = true,
            ProbeEvent::MetadataRecoveryFinish { .. } => self.node(node).metadata_recovery = false,
            ProbeEvent::OuterTaskAborted { .. } => {
                // An aborted outer task takes the metadata recovery it ran with it.
                self.node(node).metadata_recovery = false;
            }
            ProbeEvent::SyncStart { shard, .. } => {
                *self.node(node).syncs.entry(shard.0).or_insert(0) += 1;
            }
            ProbeEvent::SyncFinish { shard, .. } => {
                let state = self.node(node);
                if let Some(n) = state.syncs.get_mut(&shard.0) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        state.syncs.remove(&shard.0);
                        state.recovering.remove(&shard.0);
                    }
                }
            }
            ProbeEvent::ShardDropped { shard } => {
                let state = self.node(node);
                state.syncs.remove(&shard.0);
                state.recovering.remove(&shard.0);
            }
            ProbeEvent::DirectRecovery { shard, .. } | ProbeEvent::RecoveryStart { shard, .. } => {
                self.node(node).recovering.insert(shard.0, ());
            }
            ProbeEvent::EpochChangeStart { epoch } => {
                self.node(node).epoch_change = Some(*epoch);
            }
            ProbeEvent::Attestation { epoch, .. } => {
                let state = self.node(node);
                if state.epoch_change.is_some_and(|e| e <= *epoch) {
                    state.epoch_change = None;
                }
            }
            _ => {}
        }
        if let Some(class) = class {
            self.pair(node, class, t);
        }
    }

    fn on_ledger(&mut self, ledger: &[LedgerEntry]) {
        let mut reached: BTreeMap<u16, u64> = BTreeMap::new();
        for entry in ledger {
            if entry.counts.reached > 0 {
                *reached.entry(point_index(&entry.point)).or_insert(0) += entry.counts.reached;
            }
        }
        for (point, n) in reached {
            let feature = Feature::PointReached { point };
            self.counts.insert(feature, n);
        }
    }

    /// The run's features, hashed with their buckets: sorted, no duplicates.
    pub fn hashes(&self) -> Vec<u64> {
        let mut hashes: Vec<u64> = self.counts.iter().map(|(f, n)| f.hash(*n)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes
    }

    /// Each hashed feature with the simulated ms at which the run reached it (features that
    /// come from the ledger carry no time and are left out), ordered by hash.
    pub fn moments(&self) -> Vec<(u64, u64)> {
        let mut moments: Vec<(u64, u64)> = self
            .since
            .iter()
            .filter_map(|(f, t)| Some((f.hash(*self.counts.get(f)?), *t)))
            .collect();
        moments.sort_unstable();
        moments.dedup_by_key(|(h, _)| *h);
        moments
    }

    /// Every feature with its count, in feature order (for people and tests).
    pub fn counted(&self) -> impl Iterator<Item = (&Feature, u64)> {
        self.counts.iter().map(|(f, n)| (f, *n))
    }

    /// Human-readable text of every feature with its count.
    pub fn describe(&self) -> Vec<String> {
        self.counted().map(|(f, n)| format!("{f} x{n}")).collect()
    }
}
