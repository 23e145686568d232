//! Each safety invariant fed a hand-made violating trace (it must fire) and a clean one.

use super::*;
use shardstorm_node::ctx::{
    AttestationPath as AP, NodeStatusWriter as NW, ShardStatusWriter as SW,
};
use NodeStatus::*;

const N1: NodeId = NodeId(1);

fn chain() -> Chain {
    // Epoch 1: n0 owns s0, s1; n1 owns s2, s3. Epoch 2: swapped.
    let genesis = (0..4).map(|i| (ShardIndex(i), NodeId(i / 2))).collect();
    let chain = Chain::new(genesis);
    chain.force_epoch_change_done();
    let swapped = (0..4).map(|i| (ShardIndex(i), NodeId(1 - i / 2))).collect();
    chain.start_epoch_change(swapped).unwrap();
    chain
}

fn ev(t_ms: u64, p: ProbeEvent) -> TraceEvent {
    TraceEvent {
        t_ms,
        node: Some(N1),
        kind: TraceKind::Probe(p),
    }
}

fn status(from: Option<NodeStatus>, to: NodeStatus, writer: NW, task: Option<u64>) -> ProbeEvent {
    ProbeEvent::NodeStatus {
        from,
        to,
        writer,
        task,
    }
}

fn shard(i: u16, from: ShardStatus, to: ShardStatus, writer: SW, epoch: u64) -> ProbeEvent {
    ProbeEvent::ShardStatus {
        shard: ShardIndex(i),
        from: Some(from),
        to,
        writer,
        epoch,
    }
}

fn run(events: Vec<ProbeEvent>) -> Option<Violation> {
    let trace: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(i, p)| ev(i as u64, p))
        .collect();
    SafetyOracle::new(chain()).check_new(&trace)
}

fn fires(events: Vec<ProbeEvent>, invariant: Invariant) {
    let v = run(events).unwrap_or_else(|| panic!("{invariant} did not fire"));
    assert_eq!(v.invariant, invariant, "{v}");
    assert!(!v.context.is_empty());
}

#[test]
fn legal_transition_fires_on_catch_up_to_active_and_passes_legal_writes() {
    fires(
        vec![
            status(None, Standby, NW::N1, None),
            status(Some(Standby), Active, NW::Direct, None),
        ],
        Invariant::LegalTransition,
    );
    fires(
        vec![status(Some(Active), RecoverMetadata, NW::N8, None)],
        Invariant::LegalTransition,
    );
    assert_eq!(
        run(vec![
            status(None, Standby, NW::N1, None),
            status(Some(Standby), RecoverMetadata, NW::N8, None)
        ]),
        None
    );
}

#[test]
fn metadata_completion_fires_on_stale_clobber_and_on_a_task_without_recovery() {
    // Bug C: N10 lands on RecoveryCatchUp.
    fires(
        vec![status(Some(RecoveryCatchUp), Active, NW::N10, Some(1))],
        Invariant::MetadataCompletion,
    );
    // Bug A / completion window: a task that never recovered metadata flips.
    fires(
        vec![status(Some(RecoverMetadata), Active, NW::N10, Some(2))],
        Invariant::MetadataCompletion,
    );
    // The fixed path: the task completed recovery first.
    let ok = vec![
        ProbeEvent::MetadataRecoveryFinish {
            task: 3,
            ok: true,
            blobs: 5,
        },
        status(Some(RecoverMetadata), Active, NW::N10, Some(3)),
    ];
    assert_eq!(run(ok), None);
    // A completion from before a restart does not count for the new process.
    fires(
        vec![
            ProbeEvent::MetadataRecoveryFinish {
                task: 3,
                ok: true,
                blobs: 5,
            },
            ProbeEvent::Started,
            status(Some(RecoverMetadata), Active, NW::N10, Some(3)),
        ],
        Invariant::MetadataCompletion,
    );
}

#[test]
fn locked_shard_rewrite_fires_for_unowned_shards_only() {
    // In epoch 2 n1 owns s0, s1; s3 is unowned. Blind S4 over LockedToMove.
    fires(
        vec![shard(
            3,
            ShardStatus::LockedToMove,
            ShardStatus::Active,
            SW::S4,
            2,
        )],
        Invariant::LockedShardRewritten,
    );
    fires(
        vec![shard(
            3,
            ShardStatus::LockedToMove,
            ShardStatus::ActiveRecover,
            SW::S3,
            2,
        )],
        Invariant::LockedShardRewritten,
    );
    // Owned again: S6 or S4 over LockedToMove is legitimate.
    assert_eq!(
        run(vec![shard(
            0,
            ShardStatus::LockedToMove,
            ShardStatus::Active,
            SW::S4,
            2
        )]),
        None
    );
    assert_eq!(
        run(vec![shard(
            3,
            ShardStatus::LockedToMove,
            ShardStatus::Active,
            SW::S6,
            2
        )]),
        None
    );
}

#[test]
fn sync_of_unowned_shard_fires_on_s2_of_a_lost_shard() {
    fires(
        vec![shard(
            3,
            ShardStatus::LockedToMove,
            ShardStatus::ActiveSync,
            SW::S2,
            2,
        )],
        Invariant::SyncOfUnownedShard,
    );
    assert_eq!(
        run(vec![shard(
            0,
            ShardStatus::None,
            ShardStatus::ActiveSync,
            SW::S2,
            2
        )]),
        None
    );
}

#[test]
fn progress_fires_when_a_batch_starts_at_or_before_committed_progress() {
    let b = |i: u8| BlobId([i; 32]);
    let progress = |first, last| ProbeEvent::SyncProgress {
        shard: ShardIndex(0),
        ty: SliverType::Primary,
        first: b(first),
        last: b(last),
        slivers: 1,
        skipped: 0,
    };
    fires(
        vec![progress(1, 5), ProbeEvent::Started, progress(5, 9)],
        Invariant::ProgressMonotonic,
    );
    fires(vec![progress(6, 5)], Invariant::ProgressMonotonic);
    assert_eq!(
        run(vec![progress(1, 5), ProbeEvent::Started, progress(6, 9)]),
        None
    );
    // S2 wipes progress: starting over is legal.
    assert_eq!(
        run(vec![
            progress(1, 5),
            shard(0, ShardStatus::None, ShardStatus::ActiveSync, SW::S2, 2),
            progress(1, 9)
        ]),
        None
    );
}

#[test]
fn premature_attestation_fires_with_syncs_in_flight_or_inactive_owned_shards() {
    let attest = |in_flight, failed, path| ProbeEvent::Attestation {
        epoch: 2,
        path,
        tasks_in_flight: in_flight,
        tasks_failed: failed,
    };
    fires(
        vec![attest(1, 0, AP::ShardSync)],
        Invariant::PrematureAttestation,
    );
    fires(
        vec![attest(0, 1, AP::ShardSync)],
        Invariant::PrematureAttestation,
    );
    // Bug A: shard s0 (owned in epoch 2) was orphaned at None.
    fires(
        vec![
            shard(0, ShardStatus::None, ShardStatus::None, SW::S1, 2),
            shard(1, ShardStatus::ActiveSync, ShardStatus::Active, SW::S4, 2),
            attest(0, 0, AP::ShardSync),
        ],
        Invariant::PrematureAttestation,
    );
    let clean = vec![
        shard(0, ShardStatus::ActiveSync, ShardStatus::Active, SW::S4, 2),
        shard(1, ShardStatus::ActiveSync, ShardStatus::Active, SW::S4, 2),
        attest(0, 0, AP::ShardSync),
    ];
    assert_eq!(run(clean), None);
}

fn served(requester: u16, i: u16, epoch: u64) -> ProbeEvent {
    ProbeEvent::SliversServed {
        requester: NodeId(requester),
        shard: ShardIndex(i),
        epoch,
        slivers: 3,
    }
}

#[test]
fn served_non_owner_fires_when_the_requester_does_not_own_the_shard_in_that_epoch() {
    // Epoch 2 swapped the shards: s2 belongs to n0 now, s0 to n1.
    fires(vec![served(1, 2, 2)], Invariant::ServedNonOwner);
    assert_eq!(run(vec![served(1, 0, 2)]), None);
    assert_eq!(run(vec![served(1, 2, 1)]), None, "n1 owned s2 in epoch 1");
}

#[test]
fn unverified_sliver_fires() {
    let stored = ProbeEvent::SliverStored {
        shard: ShardIndex(0),
        ty: SliverType::Primary,
        blob: BlobId([1; 32]),
        verified: false,
    };
    fires(vec![stored], Invariant::UnverifiedSliver);
}

#[test]
fn recovery_switch_fires_when_a_progressing_sync_switches_unforced() {
    let start = ProbeEvent::SyncStart {
        shard: ShardIndex(0),
        epoch: 2,
    };
    let progress = ProbeEvent::SyncProgress {
        shard: ShardIndex(0),
        ty: SliverType::Primary,
        first: BlobId([1; 32]),
        last: BlobId([2; 32]),
        slivers: 1,
        skipped: 0,
    };
    let switch = |forced| ProbeEvent::DirectRecovery {
        shard: ShardIndex(0),
        forced,
    };
    let trace = |events: Vec<(u64, ProbeEvent)>| -> Vec<TraceEvent> {
        events.into_iter().map(|(t, p)| ev(t, p)).collect()
    };
    let mut oracle = SafetyOracle::with_switch_interval(chain(), 10_000);
    let v = oracle.check_new(&trace(vec![
        (0, start.clone()),
        (9_000, progress.clone()),
        (15_000, switch(false)),
    ]));
    assert_eq!(v.map(|v| v.invariant), Some(Invariant::RecoverySwitch));
    let mut oracle = SafetyOracle::with_switch_interval(chain(), 10_000);
    assert_eq!(
        oracle.check_new(&trace(vec![
            (0, start.clone()),
            (9_000, progress),
            (20_000, switch(false))
        ])),
        None
    );
    let mut oracle = SafetyOracle::with_switch_interval(chain(), 10_000);
    assert_eq!(
        oracle.check_new(&trace(vec![(0, start), (100, switch(true))])),
        None,
        "forced switches are legal"
    );
}
