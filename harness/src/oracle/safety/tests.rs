//! Each safety invariant fed a hand-made violating trace (it must fire) and a clean one.

use super::*;
use shardstorm_node::ctx::{
    AttestationPath as AP, NodeStatusWriter as NW, ShardStatusWriter as SW, SyncOutcome,
};
use shardstorm_node::{NodeStatus, ShardIndex, ShardStatus, SliverType};
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

fn trace_of(events: Vec<ProbeEvent>) -> Vec<TraceEvent> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, p)| ev(i as u64, p))
        .collect()
}

/// Runs `events` on an oracle whose model of n1 is uncertain (as after a disk error), so the
/// reported `from` values stand for the stored ones: the invariants judge single writes.
fn run(events: Vec<ProbeEvent>) -> Option<Violation> {
    let mut oracle = SafetyOracle::new(chain());
    oracle.mark_uncertain(N1, "test");
    oracle.check_new(&trace_of(events))
}

/// S1 for each shard (a fresh node creating storage).
fn created(shards: &[u16]) -> Vec<ProbeEvent> {
    shards
        .iter()
        .map(|i| ProbeEvent::ShardStatus {
            shard: ShardIndex(*i),
            from: None,
            to: ShardStatus::None,
            writer: SW::S1,
            epoch: 2,
        })
        .collect()
}

/// Runs `events` on an oracle that follows n1 from its first start (a certain model).
fn run_certain(events: Vec<ProbeEvent>) -> Option<Violation> {
    SafetyOracle::new(chain()).check_new(&trace_of(events))
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
    // Owned again, S4 over LockedToMove is no rewrite of an unowned lock, but S4 is
    // conditional (spec 3): it leaves a lock in place.
    fires(
        vec![shard(
            0,
            ShardStatus::LockedToMove,
            ShardStatus::Active,
            SW::S4,
            2,
        )],
        Invariant::ShardTransition,
    );
    // S6 over LockedToMove is legitimate.
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
    // Bug A: shard s0 (owned in epoch 2) was orphaned at None; s1 synced.
    let mut history = created(&[0, 1]);
    history.push(shard(
        1,
        ShardStatus::None,
        ShardStatus::ActiveSync,
        SW::S2,
        2,
    ));
    history.push(shard(
        1,
        ShardStatus::ActiveSync,
        ShardStatus::Active,
        SW::S4,
        2,
    ));
    history.push(attest(0, 0, AP::ShardSync));
    let v = run_certain(history.clone()).expect("orphaned shard");
    assert_eq!(v.invariant, Invariant::PrematureAttestation, "{v}");
    // Both synced: clean.
    history.pop();
    history.push(shard(
        0,
        ShardStatus::None,
        ShardStatus::ActiveSync,
        SW::S2,
        2,
    ));
    history.push(shard(
        0,
        ShardStatus::ActiveSync,
        ShardStatus::Active,
        SW::S4,
        2,
    ));
    history.push(attest(0, 0, AP::ShardSync));
    assert_eq!(run_certain(history), None);
    // The oracle counts syncs itself: a node that reports 0 in flight while the trace shows a
    // running sync is premature too.
    let running = vec![
        ProbeEvent::SyncStart {
            shard: ShardIndex(0),
            epoch: 2,
        },
        attest(0, 0, AP::ShardSync),
    ];
    fires(running, Invariant::PrematureAttestation);
    // A terminally failed sync blocks the per-shard path until something takes the shard over:
    // full node recovery cancels the failed task and makes the shard Active (S6), which
    // unblocks it (seed 2767 of the 10,000-seed campaign).
    let sync = |outcome| ProbeEvent::SyncFinish {
        shard: ShardIndex(0),
        epoch: 2,
        outcome,
    };
    let start = ProbeEvent::SyncStart {
        shard: ShardIndex(0),
        epoch: 2,
    };
    let failed = vec![
        start.clone(),
        sync(SyncOutcome::Failed),
        attest(0, 0, AP::ShardSync),
    ];
    fires(failed, Invariant::PrematureAttestation);
    let taken_over = vec![
        start,
        sync(SyncOutcome::Failed),
        sync(SyncOutcome::Cancelled),
        attest(0, 0, AP::ShardSync),
    ];
    assert_eq!(run(taken_over), None);
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
    oracle.mark_uncertain(N1, "test");
    let v = oracle.check_new(&trace(vec![
        (0, start.clone()),
        (9_000, progress.clone()),
        (15_000, switch(false)),
    ]));
    assert_eq!(v.map(|v| v.invariant), Some(Invariant::RecoverySwitch));
    let mut oracle = SafetyOracle::with_switch_interval(chain(), 10_000);
    oracle.mark_uncertain(N1, "test");
    assert_eq!(
        oracle.check_new(&trace(vec![
            (0, start.clone()),
            (9_000, progress),
            (20_000, switch(false))
        ])),
        None
    );
    let mut oracle = SafetyOracle::with_switch_interval(chain(), 10_000);
    oracle.mark_uncertain(N1, "test");
    assert_eq!(
        oracle.check_new(&trace(vec![(0, start), (100, switch(true))])),
        None,
        "forced switches are legal"
    );
}

// ---------------------------------------------------------------------------------------------
// Checks of state, not claims: reported `from`s against the history, state audits against the
// model and the chain, replay.

use shardstorm_node::storage::StoredShard;

fn stored_shard(status: ShardStatus) -> StoredShard {
    StoredShard {
        status,
        progress: None,
        pending: BTreeSet::new(),
        slivers: BTreeMap::new(),
    }
}

/// A state holding `status` and the given shards.
fn state(status: NodeStatus, shards: &[(u16, ShardStatus)]) -> StoredState {
    StoredState {
        status: Some(status),
        shards: shards
            .iter()
            .map(|(i, s)| (ShardIndex(*i), stored_shard(*s)))
            .collect(),
        ..StoredState::default()
    }
}

fn audit(oracle: &mut SafetyOracle, point: AuditPoint, s: &StoredState) -> Option<Violation> {
    oracle.audit(N1, point, s, &BTreeMap::new(), 0)
}

fn harness(t_ms: u64, h: crate::trace::HarnessEvent) -> TraceEvent {
    TraceEvent {
        t_ms,
        node: Some(N1),
        kind: TraceKind::Harness(h),
    }
}

#[test]
fn a_reported_from_that_contradicts_the_history_is_caught() {
    let bad = vec![
        status(None, Standby, NW::N1, None),
        // The node claims Active was stored; only Standby was ever written.
        status(Some(Active), RecoveryCatchUp, NW::N3, None),
    ];
    let v = run_certain(bad).expect("fires");
    assert_eq!(v.invariant, Invariant::StoredState, "{v}");
    let good = vec![
        status(None, Standby, NW::N1, None),
        status(Some(Standby), RecoveryCatchUp, NW::N3, None),
    ];
    assert_eq!(run_certain(good), None);
    // The legality check uses the history, not the claim: Standby -> Active stays illegal
    // even if the node says it overwrote RecoverMetadata.
    let mut oracle = SafetyOracle::new(chain());
    let claim = trace_of(vec![
        status(None, Standby, NW::N1, None),
        status(Some(RecoverMetadata), Active, NW::N10, Some(1)),
    ]);
    assert!(oracle.check_new(&claim).is_some());
}

#[test]
fn an_audit_catches_a_write_the_node_never_reported_or_lost() {
    let mut oracle = SafetyOracle::new(chain());
    let history = trace_of(
        [status(None, Standby, NW::N1, None)]
            .into_iter()
            .chain(created(&[0]))
            .collect(),
    );
    assert_eq!(oracle.check_new(&history), None);
    // Matching state: quiet.
    let good = state(Standby, &[(0, ShardStatus::None)]);
    assert_eq!(
        audit(&mut oracle, AuditPoint::EpochChangeStart, &good),
        None
    );
    // An unreported status write.
    let v = audit(
        &mut oracle,
        AuditPoint::EpochChangeStart,
        &state(RecoverMetadata, &[(0, ShardStatus::None)]),
    )
    .expect("unreported node status");
    assert_eq!(v.invariant, Invariant::StoredState, "{v}");
    assert!(v.message.contains("epoch-change-start"), "{v}");
    // An unreported shard (created without S1), and a lost one.
    let mut oracle = SafetyOracle::new(chain());
    oracle.check_new(&history);
    let extra = state(Standby, &[(0, ShardStatus::None), (1, ShardStatus::Active)]);
    let v = audit(&mut oracle, AuditPoint::EpochChangeDone, &extra).expect("extra shard");
    assert_eq!(
        (v.invariant, v.shard),
        (Invariant::StoredState, Some(ShardIndex(1)))
    );
    let mut oracle = SafetyOracle::new(chain());
    oracle.check_new(&history);
    let v = audit(&mut oracle, AuditPoint::End, &state(Standby, &[])).expect("lost shard");
    assert_eq!(v.invariant, Invariant::StoredState);
}

#[test]
fn after_a_crash_the_model_follows_the_disk_and_later_claims_are_judged_against_it() {
    let mut oracle = SafetyOracle::new(chain());
    let mut events = vec![ev(0, status(None, Standby, NW::N1, None))];
    events.push(harness(1, crate::trace::HarnessEvent::Crashed));
    events.push(harness(2, crate::trace::HarnessEvent::Restarted));
    assert_eq!(oracle.check_new(&events), None);
    assert_eq!(
        oracle.take_audit_requests(),
        vec![(N1, AuditPoint::AfterRestart)]
    );
    // The disk holds a write that committed right before the crash, never reported: after a
    // crash that is no violation, the model re-bases on it.
    let disk = state(RecoveryCatchUp, &[]);
    assert_eq!(audit(&mut oracle, AuditPoint::AfterRestart, &disk), None);
    // A later report that contradicts the disk is one.
    events.push(ev(3, ProbeEvent::Started));
    events.push(ev(4, status(Some(Standby), RecoverMetadata, NW::N8, None)));
    let v = oracle.check_new(&events).expect("contradicts the disk");
    assert_eq!(v.invariant, Invariant::StoredState, "{v}");
}

#[test]
fn stored_progress_must_match_the_batches_and_cover_its_slivers() {
    let b = |i: u8| BlobId([i; 32]);
    let mut events = vec![status(None, Standby, NW::N1, None)];
    events.extend(created(&[0]));
    events.push(shard(
        0,
        ShardStatus::None,
        ShardStatus::ActiveSync,
        SW::S2,
        2,
    ));
    events.push(ProbeEvent::SyncStart {
        shard: ShardIndex(0),
        epoch: 2,
    });
    events.push(ProbeEvent::SyncProgress {
        shard: ShardIndex(0),
        ty: SliverType::Primary,
        first: b(1),
        last: b(5),
        slivers: 2,
        skipped: 0,
    });
    let mut oracle = SafetyOracle::new(chain());
    assert_eq!(oracle.check_new(&trace_of(events.clone())), None);
    let info = shardstorm_node::BlobInfo {
        registered_epoch: 1,
        end_epoch: 10,
        certified_epoch: Some(1),
        deleted: false,
        invalid: false,
    };
    let mut s = state(Standby, &[(0, ShardStatus::ActiveSync)]);
    s.blob_info = [(b(1), info), (b(3), info), (b(9), info)]
        .into_iter()
        .collect();
    let sh = s.shards.get_mut(&ShardIndex(0)).unwrap();
    sh.progress = Some((b(5), SliverType::Primary));
    sh.slivers.insert((SliverType::Primary, b(1)), [0; 32]);
    sh.pending.insert((SliverType::Primary, b(3)));
    // Blobs are not on the chain in this test: make them certified there.
    let chain_with_blobs = chain();
    for i in [1u8, 3, 9] {
        chain_with_blobs.register_blob(b(i), 10).unwrap();
        chain_with_blobs.certify_blob(b(i)).unwrap();
    }
    let mut oracle = SafetyOracle::new(chain_with_blobs.clone());
    oracle.check_new(&trace_of(events.clone()));
    assert_eq!(audit(&mut oracle, AuditPoint::EpochChangeStart, &s), None);
    // Blob 3 neither stored nor pending although progress covers it.
    let mut lost = s.clone();
    lost.shards.get_mut(&ShardIndex(0)).unwrap().pending.clear();
    // The transfer is held to the blobs the node's stored blob info held certified at its last
    // audit before the sync started.
    let before_sync = |blob_info: bool| {
        let mut before = state(Standby, &[(0, ShardStatus::ActiveSync)]);
        if blob_info {
            before.blob_info = s.blob_info.clone();
        }
        let trace = trace_of(events.clone());
        let mut oracle = SafetyOracle::new(chain_with_blobs.clone());
        oracle.check_new(&trace[..trace.len() - 2]);
        assert_eq!(
            audit(&mut oracle, AuditPoint::EpochChangeStart, &before),
            None
        );
        oracle.check_new(&trace);
        oracle
    };
    let v = audit(&mut before_sync(true), AuditPoint::EpochChangeStart, &lost).expect("uncovered");
    assert_eq!(v.invariant, Invariant::ProgressMonotonic, "{v}");
    // The node learned blob 3 was certified only while the sync ran (seed 1100): its blob
    // sync, not the transfer, owes the sliver.
    assert_eq!(
        audit(&mut before_sync(false), AuditPoint::EpochChangeStart, &lost),
        None
    );
    // Full node recovery took the shard over (S6) and it was locked later (S7): the progress
    // its transfer left is stale and covers nothing any more (seed 7984).
    let mut taken_over = events.clone();
    taken_over.push(shard(
        0,
        ShardStatus::ActiveSync,
        ShardStatus::Active,
        SW::S6,
        3,
    ));
    taken_over.push(shard(
        0,
        ShardStatus::Active,
        ShardStatus::LockedToMove,
        SW::S7,
        4,
    ));
    let mut locked = lost.clone();
    locked.shards.get_mut(&ShardIndex(0)).unwrap().status = ShardStatus::LockedToMove;
    let mut oracle = SafetyOracle::new(chain_with_blobs.clone());
    oracle.check_new(&trace_of(taken_over));
    assert_eq!(
        audit(&mut oracle, AuditPoint::EpochChangeStart, &locked),
        None
    );
    // Progress behind the reported batches (a committed batch lost).
    let mut behind = s.clone();
    behind.shards.get_mut(&ShardIndex(0)).unwrap().progress = Some((b(1), SliverType::Primary));
    let mut oracle = SafetyOracle::new(chain_with_blobs);
    oracle.check_new(&trace_of(events));
    let v = audit(&mut oracle, AuditPoint::EpochChangeDone, &behind).expect("behind");
    assert_eq!(v.invariant, Invariant::StoredState, "{v}");
}

#[test]
fn a_stored_sliver_that_is_not_the_blobs_encoding_is_caught() {
    let blob = BlobId([7; 32]);
    let truth = BlobTruth {
        primary: vec![[1; 32]; 4],
        secondary: vec![[2; 32]; 4],
        consistent: true,
    };
    let truths: BTreeMap<_, _> = [(blob, truth)].into_iter().collect();
    let mut events = vec![status(None, Standby, NW::N1, None)];
    events.extend(created(&[0]));
    let mut s = state(Standby, &[(0, ShardStatus::None)]);
    s.shards
        .get_mut(&ShardIndex(0))
        .unwrap()
        .slivers
        .insert((SliverType::Primary, blob), [1; 32]);
    let mut oracle = SafetyOracle::new(chain());
    oracle.check_new(&trace_of(events.clone()));
    assert_eq!(oracle.audit(N1, AuditPoint::End, &s, &truths, 0), None);
    s.shards
        .get_mut(&ShardIndex(0))
        .unwrap()
        .slivers
        .insert((SliverType::Secondary, blob), [9; 32]);
    let mut oracle = SafetyOracle::new(chain());
    oracle.check_new(&trace_of(events));
    let v = oracle
        .audit(N1, AuditPoint::End, &s, &truths, 0)
        .expect("corrupted sliver");
    assert_eq!(v.invariant, Invariant::UnverifiedSliver, "{v}");
}

#[test]
fn attestations_follow_the_finisher_rules_and_the_chain_holds_no_unseen_one() {
    let finisher = ProbeEvent::Attestation {
        epoch: 2,
        path: AP::Finisher,
        tasks_in_flight: 0,
        tasks_failed: 0,
    };
    // n1 gained s0 and s1 in epoch 2: the finisher must not attest.
    fires(vec![finisher.clone()], Invariant::PrematureAttestation);
    // A node outside the committee attests.
    let outsider = TraceEvent {
        t_ms: 0,
        node: Some(NodeId(3)),
        kind: TraceKind::Probe(ProbeEvent::Attestation {
            epoch: 2,
            path: AP::ShardSync,
            tasks_in_flight: 0,
            tasks_failed: 0,
        }),
    };
    let v = SafetyOracle::new(chain())
        .check_new(&[outsider])
        .expect("non-member");
    assert_eq!(v.invariant, Invariant::PrematureAttestation);
    // The chain recorded an attestation the trace never showed.
    let c = chain();
    c.epoch_sync_done(N1, 2);
    let mut oracle = SafetyOracle::new(c);
    oracle.check_new(&trace_of(vec![status(None, Standby, NW::N1, None)]));
    let v = audit(
        &mut oracle,
        AuditPoint::EpochChangeDone,
        &state(Standby, &[]),
    )
    .expect("unseen attestation");
    assert_eq!(v.invariant, Invariant::PrematureAttestation, "{v}");
}

#[test]
fn a_replay_that_wipes_progress_is_caught_and_an_idempotent_one_is_not() {
    use crate::trace::HarnessEvent::{Crashed, Restarted};
    let b = BlobId([4; 32]);
    let mut s = state(Active, &[(0, ShardStatus::ActiveSync)]);
    s.shards.get_mut(&ShardIndex(0)).unwrap().progress = Some((b, SliverType::Primary));
    let prefix = vec![
        ev(0, ProbeEvent::EpochChangeStart { epoch: 2 }),
        ev(1, ProbeEvent::EpochChangeProcessed { epoch: 2 }),
        harness(2, Crashed),
        harness(3, Restarted),
    ];
    let replay = [
        ev(4, ProbeEvent::Started),
        ev(5, ProbeEvent::EpochChangeStart { epoch: 2 }),
        ev(6, ProbeEvent::EpochChangeProcessed { epoch: 2 }),
    ];
    for (after, want) in [
        (s.clone(), None),
        (
            {
                let mut wiped = s.clone();
                wiped.shards.get_mut(&ShardIndex(0)).unwrap().progress = None;
                wiped
            },
            Some(Invariant::ReplayIdempotent),
        ),
    ] {
        let mut oracle = SafetyOracle::new(chain());
        let mut events = prefix.clone();
        oracle.mark_uncertain(N1, "test");
        assert_eq!(oracle.check_new(&events), None);
        assert_eq!(audit(&mut oracle, AuditPoint::AfterRestart, &s), None);
        events.extend(replay.iter().cloned());
        oracle.mark_uncertain(N1, "test");
        assert_eq!(oracle.check_new(&events), None);
        assert!(oracle
            .take_audit_requests()
            .contains(&(N1, AuditPoint::EpochChangeProcessed)));
        let got = audit(&mut oracle, AuditPoint::EpochChangeProcessed, &after);
        assert_eq!(got.map(|v| v.invariant), want);
    }
    // Catch-up in the same step: epoch 3 is processed right after the replay of 2, before
    // the audit, so what changed cannot be pinned on the replay (seeds 3250 and 3427).
    let mut wiped = s.clone();
    wiped.shards.get_mut(&ShardIndex(0)).unwrap().progress = None;
    let mut oracle = SafetyOracle::new(chain());
    let mut events = prefix.clone();
    oracle.mark_uncertain(N1, "test");
    assert_eq!(oracle.check_new(&events), None);
    assert_eq!(audit(&mut oracle, AuditPoint::AfterRestart, &s), None);
    events.extend(replay.iter().cloned());
    events.push(ev(7, ProbeEvent::EpochChangeStart { epoch: 3 }));
    oracle.mark_uncertain(N1, "test");
    assert_eq!(oracle.check_new(&events), None);
    assert_eq!(
        audit(&mut oracle, AuditPoint::EpochChangeProcessed, &wiped),
        None
    );
    // The replay finds the chain already past epoch 2 and enters recovery mode (N4): it takes
    // the catch-up path, not comparable to the first processing. Without N4 the same status
    // change is pinned on the replay.
    let mut caught_up = s.clone();
    caught_up.status = Some(RecoveryCatchUp);
    for (n4, want) in [(true, None), (false, Some(Invariant::ReplayIdempotent))] {
        let mut oracle = SafetyOracle::new(chain());
        let mut events = prefix.clone();
        oracle.mark_uncertain(N1, "test");
        assert_eq!(oracle.check_new(&events), None);
        assert_eq!(audit(&mut oracle, AuditPoint::AfterRestart, &s), None);
        events.push(ev(4, ProbeEvent::Started));
        events.push(ev(5, ProbeEvent::EpochChangeStart { epoch: 2 }));
        if n4 {
            events.push(ev(6, status(Some(Active), RecoveryCatchUp, NW::N4, None)));
        }
        events.push(ev(7, ProbeEvent::EpochChangeProcessed { epoch: 2 }));
        oracle.mark_uncertain(N1, "test");
        assert_eq!(oracle.check_new(&events), None);
        let got = audit(&mut oracle, AuditPoint::EpochChangeProcessed, &caught_up);
        assert_eq!(got.map(|v| v.invariant), want, "N4 in the replay: {n4}");
    }
}

#[test]
fn the_chains_log_convicts_a_non_member_attestation_the_trace_never_showed() {
    // Epoch 2: n0 owns every shard; n1 is no member.
    let all_n0 = || (0..4).map(|i| (ShardIndex(i), NodeId(0))).collect();
    let c = Chain::new(all_n0());
    c.force_epoch_change_done();
    c.start_epoch_change(all_n0()).unwrap();
    // A stale attestation is no violation: the chain simply refuses it.
    c.epoch_sync_done(N1, 1);
    let mut oracle = SafetyOracle::new(c.clone());
    oracle.check_new(&trace_of(vec![status(None, Standby, NW::N1, None)]));
    let quiet = audit(&mut oracle, AuditPoint::End, &state(Standby, &[]));
    assert_eq!(quiet, None);
    c.epoch_sync_done(N1, 2);
    let v = audit(&mut oracle, AuditPoint::End, &state(Standby, &[]))
        .expect("non-member attestation in the chain's log");
    assert_eq!(v.invariant, Invariant::PrematureAttestation, "{v}");
    assert!(v.to_string().contains("not a member"), "{v}");
}
