//! The liveness audit fed hand-made cluster states: it must fire on each way of not converging
//! and stay quiet on a converged cluster.

use super::*;
use shardstorm_node::node::ShardSnapshot;
use shardstorm_node::NodeStatus;

const N0: NodeId = NodeId(0);

fn blob() -> BlobId {
    BlobId([9; 32])
}

/// One node owning shards 0 and 1 of a certified blob.
fn chain() -> Chain {
    let chain = Chain::new(
        [(ShardIndex(0), N0), (ShardIndex(1), N0)]
            .into_iter()
            .collect(),
    );
    chain.register_blob(blob(), 10).unwrap();
    chain.certify_blob(blob()).unwrap();
    chain
}

fn truth() -> BTreeMap<BlobId, BlobTruth> {
    [(
        blob(),
        BlobTruth {
            primary: vec![[1; 32], [2; 32]],
            secondary: vec![[3; 32], [4; 32]],
            consistent: true,
        },
    )]
    .into()
}

fn shard(i: u8) -> ShardSnapshot {
    ShardSnapshot {
        status: ShardStatus::Active,
        primary: [(blob(), [1 + i; 32])].into(),
        secondary: [(blob(), [3 + i; 32])].into(),
        pending: Vec::new(),
        progress: None,
    }
}

fn converged() -> NodeSnapshot {
    NodeSnapshot {
        status: Some(NodeStatus::Active),
        committee_epoch: 1,
        shards: [(ShardIndex(0), shard(0)), (ShardIndex(1), shard(1))].into(),
        metadata: [blob()].into(),
        event_cursor: 3,
        outer_task_running: false,
        sync_tasks_running: Default::default(),
        sync_tasks_failed: Default::default(),
        node_recovery_running: false,
        blob_syncs_running: BTreeSet::new(),
        pending_events: BTreeSet::new(),
    }
}

fn run(snap: NodeSnapshot, reads: bool) -> Vec<Violation> {
    let chain = chain();
    let snapshots = [(N0, snap)].into();
    let truths = truth();
    let reads = [(blob(), reads)].into();
    audit(&AuditInput {
        chain: &chain,
        snapshots: &snapshots,
        truths: &truths,
        reads: &reads,
        t_ms: 5,
    })
}

fn fires(snap: NodeSnapshot, invariant: Invariant, needle: &str) {
    let found = run(snap, true);
    assert!(
        found
            .iter()
            .any(|v| v.invariant == invariant && v.message.contains(needle)),
        "expected {invariant} with `{needle}`, got {found:?}"
    );
}

#[test]
fn a_converged_cluster_passes() {
    assert_eq!(run(converged(), true), Vec::new());
}

#[test]
fn wrong_status_missing_slivers_pending_and_metadata_fire() {
    let mut s = converged();
    s.status = Some(NodeStatus::RecoverMetadata);
    fires(s, Invariant::Liveness, "expected Active");
    let mut s = converged();
    s.shards.get_mut(&ShardIndex(1)).unwrap().status = ShardStatus::None;
    fires(s, Invariant::Liveness, "not Active");
    let mut s = converged();
    s.shards.get_mut(&ShardIndex(0)).unwrap().secondary.clear();
    fires(s, Invariant::Liveness, "lack their secondary");
    let mut s = converged();
    s.shards
        .get_mut(&ShardIndex(0))
        .unwrap()
        .pending
        .push((shardstorm_node::SliverType::Primary, blob()));
    fires(s, Invariant::Liveness, "pending recovery");
    let mut s = converged();
    s.metadata.clear();
    fires(s, Invariant::Liveness, "metadata missing");
    let mut s = converged();
    s.shards.remove(&ShardIndex(1));
    fires(s, Invariant::Liveness, "no storage");
}

#[test]
fn a_sliver_that_differs_from_the_encoding_fires() {
    let mut s = converged();
    s.shards
        .get_mut(&ShardIndex(0))
        .unwrap()
        .primary
        .insert(blob(), [7; 32]);
    fires(s, Invariant::UnverifiedSliver, "does not match");
}

#[test]
fn an_unreadable_blob_fires() {
    let found = run(converged(), false);
    assert!(
        found
            .iter()
            .any(|v| v.invariant == Invariant::Reconstructible),
        "{found:?}"
    );
}

#[test]
fn a_terminally_failed_sync_exempts_its_shard() {
    let mut s = converged();
    s.shards.get_mut(&ShardIndex(1)).unwrap().status = ShardStatus::ActiveSync;
    s.sync_tasks_failed.insert(ShardIndex(1));
    assert_eq!(run(s, true), Vec::new());
}
