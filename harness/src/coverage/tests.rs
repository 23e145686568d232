//! Feature extraction on hand-made traces.

use super::features::{activity, bucket, point_index, ActiveFault, Feature, Features};
use super::RunCoverage;
use crate::trace::{TraceEvent, TraceKind};
use shardstorm_faults::{Counts, LedgerEntry};
use shardstorm_node::ctx::{NodeStatusWriter as NW, ShardStatusWriter as SW};
use shardstorm_node::{NodeId, NodeStatus, ProbeEvent, ShardIndex, ShardStatus};

fn probe(t_ms: u64, node: u16, p: ProbeEvent) -> TraceEvent {
    TraceEvent {
        t_ms,
        node: Some(NodeId(node)),
        kind: TraceKind::Probe(p),
    }
}

fn fault(t_ms: u64, text: &str) -> TraceEvent {
    TraceEvent {
        t_ms,
        node: None,
        kind: TraceKind::Fault(text.parse().expect("fault")),
    }
}

/// n1 restarts, recovers metadata, an epoch change starts meanwhile under a partition, and a
/// shard sync completes; n2 has a fail point fire.
fn trace() -> Vec<TraceEvent> {
    vec![
        probe(0, 1, ProbeEvent::Started),
        probe(
            10,
            1,
            ProbeEvent::NodeStatus {
                from: Some(NodeStatus::Standby),
                to: NodeStatus::RecoverMetadata,
                writer: NW::N2,
                task: Some(1),
            },
        ),
        probe(20, 1, ProbeEvent::MetadataRecoveryStart { task: 1 }),
        fault(3000, "partition n1 n2,n3 for 4.000s"),
        probe(3100, 1, ProbeEvent::EpochChangeStart { epoch: 2 }),
        probe(
            3200,
            1,
            ProbeEvent::SyncStart {
                shard: ShardIndex(4),
                epoch: 2,
            },
        ),
        probe(
            3300,
            1,
            ProbeEvent::ShardStatus {
                shard: ShardIndex(4),
                from: Some(ShardStatus::ActiveSync),
                to: ShardStatus::Active,
                writer: SW::S4,
                epoch: 2,
            },
        ),
        TraceEvent {
            t_ms: 9000,
            node: Some(NodeId(2)),
            kind: TraceKind::FailPoint {
                point: "sync.metadata.pause".into(),
                action: "pause".into(),
            },
        },
    ]
}

fn ledger() -> Vec<LedgerEntry> {
    let entry = |node: &str, point: &str, reached, fired| LedgerEntry {
        node: node.into(),
        point: point.into(),
        counts: Counts {
            reached,
            fired,
            ignored: 0,
        },
    };
    vec![
        entry("n1", "sync.fetch_sliver", 5, 0),
        entry("n2", "sync.fetch_sliver", 3, 0),
        entry("n2", "sync.metadata.pause", 1, 1),
    ]
}

/// `NodeTransition { from: 1, to: 2, writer: 3 }` seen once, as every build hashes it.
const PINNED_HASH: u64 = 0x1354_e1ea_1d52_7310;

fn has(features: &Features, wanted: Feature) -> Option<u64> {
    features
        .counted()
        .find(|(f, _)| **f == wanted)
        .map(|(_, n)| n)
}

#[test]
fn a_hand_made_trace_yields_the_expected_features() {
    let f = Features::of_run(&trace(), &ledger());
    let text = f.describe().join("\n");
    // Fail points: reached per point over all nodes (5 + 3), fired with the node's activity.
    let fetch = point_index("sync.fetch_sliver");
    let pause = point_index("sync.metadata.pause");
    assert_eq!(
        has(&f, Feature::PointReached { point: fetch }),
        Some(8),
        "{text}"
    );
    assert_eq!(has(&f, Feature::PointReached { point: pause }), Some(1));
    assert_eq!(has(&f, Feature::PointFired { point: pause }), Some(1));
    assert_eq!(
        has(
            &f,
            Feature::PointFiredIn {
                point: pause,
                activity: 0
            }
        ),
        Some(1)
    );
    // The node-status transition with its writer, during a restart.
    let (standby, recover_metadata) = (1, 3);
    let node = Feature::NodeTransition {
        from: standby,
        to: recover_metadata,
        writer: 2,
    };
    assert_eq!(has(&f, node), Some(1), "{text}");
    let during_restart = Feature::NodeTransitionIn {
        from: standby,
        to: recover_metadata,
        writer: 2,
        activity: activity::RESTART,
    };
    assert_eq!(has(&f, during_restart), Some(1), "{text}");
    // The shard-status transition: metadata recovery, sync and epoch change all running, the
    // partition active on the node itself.
    let (active_sync, active) = (3, 2);
    let busy = activity::METADATA_RECOVERY | activity::SHARD_SYNC | activity::EPOCH_CHANGE;
    let shard = Feature::ShardTransitionIn {
        from: active_sync,
        to: active,
        writer: 4,
        activity: busy,
    };
    assert_eq!(has(&f, shard), Some(1), "{text}");
    let under = Feature::ShardTransitionUnder {
        from: active_sync,
        to: active,
        writer: 4,
        fault: ActiveFault::Partition,
        on_self: true,
    };
    assert_eq!(has(&f, under), Some(1), "{text}");
    // Ordered pairs within the window: the epoch change started right before the sync; the
    // metadata recovery start is too long before the epoch change to pair with it.
    assert!(
        text.contains("epoch-change-start then sync-start x1"),
        "{text}"
    );
    assert!(
        !text.contains("metadata-recovery-start then epoch-change-start"),
        "{text}"
    );
    assert!(text.contains("started then node-status:RecoverMetadata x1"));
    // Nothing names a bug: every feature is a point, a transition, an activity or a pair.
    assert!(f.describe().iter().all(|line| !line.contains("bug")));
}

#[test]
fn hashes_are_stable_sorted_and_bucketed() {
    let a = RunCoverage::of_run(&trace(), &ledger());
    let b = RunCoverage::of_run(&trace(), &ledger());
    assert_eq!(a, b);
    assert!(a.features.windows(2).all(|w| w[0] < w[1]));
    // The same feature counted 1 and 2 times hashes differently; 4 and 7 times alike.
    let f = Feature::PointFired { point: 3 };
    assert_ne!(f.hash(1), f.hash(2));
    assert_eq!(f.hash(4), f.hash(7));
    assert_eq!(
        [1, 2, 3, 4, 7, 8, 16, 32, 127, 128, 5000].map(bucket),
        [1, 2, 3, 4, 4, 5, 6, 7, 7, 8, 8]
    );
    // A fixed value: hashes must not change between builds or machines (saved corpora and
    // coverage files hold them).
    let pinned = Feature::NodeTransition {
        from: 1,
        to: 2,
        writer: 3,
    }
    .hash(1);
    assert_eq!(pinned, PINNED_HASH, "{pinned:#x}");
    // Moments: the shard transition was reached at 3.3 s.
    let shard = Feature::ShardTransition {
        from: 3,
        to: 2,
        writer: 4,
    };
    assert_eq!(a.moment(shard.hash(1)), Some(3300));
    assert_eq!(
        a.node_points,
        [
            "n1@sync.fetch_sliver",
            "n2@sync.fetch_sliver",
            "n2@sync.metadata.pause"
        ]
    );
}

#[test]
fn a_crash_ends_the_nodes_activity() {
    let mut t = trace();
    t.insert(
        3,
        TraceEvent {
            t_ms: 2500,
            node: Some(NodeId(1)),
            kind: TraceKind::Harness(crate::trace::HarnessEvent::Crashed),
        },
    );
    let f = Features::of_run(&t, &[]);
    let text = f.describe().join("\n");
    // After the crash only the epoch change and the sync run; metadata recovery is gone.
    let shard = Feature::ShardTransitionIn {
        from: 3,
        to: 2,
        writer: 4,
        activity: activity::SHARD_SYNC | activity::EPOCH_CHANGE,
    };
    assert_eq!(has(&f, shard), Some(1), "{text}");
}

fn shard_probe(t_ms: u64, p: ProbeEvent) -> TraceEvent {
    probe(t_ms, 1, p)
}

fn shard_status(to: ShardStatus, writer: SW) -> ProbeEvent {
    ProbeEvent::ShardStatus {
        shard: ShardIndex(4),
        from: None,
        to,
        writer,
        epoch: 2,
    }
}

/// Shard 4 of n1 gained (S2), locked (S5) while its sync runs or after it ended, then gained
/// again (S2).
fn lock_and_regain(sync_still_running: bool) -> Vec<TraceEvent> {
    let sync_start = ProbeEvent::SyncStart {
        shard: ShardIndex(4),
        epoch: 2,
    };
    let sync_end = ProbeEvent::SyncFinish {
        shard: ShardIndex(4),
        epoch: 2,
        outcome: shardstorm_node::ctx::SyncOutcome::Success,
    };
    let mut t = vec![
        shard_probe(100, shard_status(ShardStatus::ActiveSync, SW::S2)),
        shard_probe(200, sync_start),
    ];
    let lock = shard_probe(900, shard_status(ShardStatus::LockedToMove, SW::S5));
    if sync_still_running {
        t.extend([lock, shard_probe(1000, sync_end)]);
    } else {
        t.extend([shard_probe(800, sync_end), lock]);
    }
    t.push(shard_probe(
        5000,
        shard_status(ShardStatus::ActiveSync, SW::S2),
    ));
    t
}

#[test]
fn shard_histories_tell_a_lock_during_the_sync_from_one_after_it() {
    let during = Features::of_run(&lock_and_regain(true), &[]);
    let after = Features::of_run(&lock_and_regain(false), &[]);
    let text = during.describe().join("\n");
    assert!(
        text.contains(
            "shard history status-in-sync:LockedToMove/5 > sync-finish:1 > status:ActiveSync/2 x1"
        ),
        "{text}"
    );
    let text = after.describe().join("\n");
    assert!(
        text.contains(
            "shard history sync-finish:1 > status:LockedToMove/5 > status:ActiveSync/2 x1"
        ),
        "{text}"
    );
    // The histories differ; every shorter feature of the two runs is the same.
    let histories = |f: &Features| -> Vec<Feature> {
        f.counted()
            .map(|(f, _)| *f)
            .filter(|f| matches!(f, Feature::ShardHistory { .. }))
            .collect()
    };
    assert_ne!(histories(&during), histories(&after));
}

#[test]
fn a_restart_is_a_step_of_every_shard_the_node_held() {
    let mut t = lock_and_regain(false);
    t.insert(4, probe(3000, 1, ProbeEvent::Started));
    let text = Features::of_run(&t, &[]).describe().join("\n");
    assert!(
        text.contains("shard history status:LockedToMove/5 > started > status:ActiveSync/2 x1"),
        "{text}"
    );
    assert!(text.contains("node history started x1"), "{text}");
}
