//! Unit tests of the storage: every operation on both disks, atomicity, crash recovery with
//! and without torn writes, EIO, corrupted reads and undecodable values.

use super::*;
use crate::blob::{encode, BlobMetadata, EncodingConfig};
use crate::fail_points;
use crate::status::{NodeStatus, ShardStatus};
use crate::types::{BlobId, BlobInfo, ShardIndex, SliverType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use tempfile::TempDir;

const P: SliverType = SliverType::Primary;
const S: SliverType = SliverType::Secondary;

fn id(n: u8) -> BlobId {
    let mut b = [0u8; 32];
    b[0] = n;
    b[31] = n.wrapping_mul(7);
    BlobId(b)
}

fn sh(i: u16) -> ShardIndex {
    ShardIndex(i)
}

fn sliver_bytes(shard: u16, ty: SliverType, blob: u8, version: u8) -> Vec<u8> {
    let len = 40 + usize::from(blob) * 3;
    (0..len)
        .map(|i| (i as u8) ^ blob ^ (shard as u8) ^ version ^ (ty as u8 * 0x55))
        .collect()
}

fn metadata_of(n: u8) -> BlobMetadata {
    let cfg = EncodingConfig::new(4).unwrap();
    encode(&cfg, &[n; 17]).unwrap().metadata
}

fn info(certified: Option<u64>, end: u64) -> BlobInfo {
    BlobInfo {
        registered_epoch: 0,
        end_epoch: end,
        certified_epoch: certified,
        deleted: false,
        invalid: false,
    }
}

/// A fresh simulated disk and a fresh directory disk (the TempDir must outlive the disk).
fn fresh_disks() -> Vec<(Disk, Option<TempDir>)> {
    let dir = TempDir::new().unwrap();
    vec![
        (Disk::Sim(SimDisk::new(42)), None),
        (Disk::Dir(dir.path().to_path_buf()), Some(dir)),
    ]
}

fn for_each_disk(test: impl Fn(&Disk)) {
    for (disk, _dir) in fresh_disks() {
        test(&disk);
    }
}

// ---------------------------------------------------------------------------------------------
// A full dump of the storage, and a model of it.

#[derive(Clone, Debug, PartialEq, Eq)]
struct ShardSnap {
    status: ShardStatus,
    progress: Option<Progress>,
    pending: BTreeSet<(SliverType, BlobId)>,
    slivers: BTreeMap<(SliverType, BlobId), Vec<u8>>,
}

impl ShardSnap {
    fn new() -> Self {
        ShardSnap {
            status: ShardStatus::None,
            progress: None,
            pending: BTreeSet::new(),
            slivers: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Snapshot {
    node_status: Option<NodeStatus>,
    cursor: u64,
    shards: BTreeMap<u16, ShardSnap>,
    metadata: BTreeMap<BlobId, BlobMetadata>,
    blob_info: BTreeMap<BlobId, BlobInfo>,
}

/// A short description of how two snapshots differ.
fn diff(got: &Snapshot, want: &Snapshot) -> String {
    let mut out = Vec::new();
    if got.node_status != want.node_status || got.cursor != want.cursor {
        out.push("node state".to_string());
    }
    let shards: BTreeSet<u16> = got
        .shards
        .keys()
        .chain(want.shards.keys())
        .copied()
        .collect();
    for i in shards {
        match (got.shards.get(&i), want.shards.get(&i)) {
            (Some(g), Some(w)) => {
                if g.status != w.status || g.progress != w.progress {
                    out.push(format!(
                        "shard {i} status/progress {:?}/{:?} vs {:?}/{:?}",
                        g.status, g.progress, w.status, w.progress
                    ));
                }
                if g.pending != w.pending {
                    out.push(format!(
                        "shard {i} pending {:?} vs {:?}",
                        g.pending, w.pending
                    ));
                }
                let gk: Vec<_> = g.slivers.keys().collect();
                let wk: Vec<_> = w.slivers.keys().collect();
                if gk != wk {
                    out.push(format!("shard {i} sliver keys {gk:?} vs {wk:?}"));
                } else if g.slivers != w.slivers {
                    out.push(format!("shard {i} sliver bytes"));
                }
            }
            (g, w) => out.push(format!("shard {i}: {} vs {}", g.is_some(), w.is_some())),
        }
    }
    if got.metadata != want.metadata {
        out.push(format!(
            "metadata {:?} vs {:?}",
            got.metadata.keys().collect::<Vec<_>>(),
            want.metadata.keys().collect::<Vec<_>>()
        ));
    }
    if got.blob_info != want.blob_info {
        out.push(format!(
            "blob info {:?} vs {:?}",
            got.blob_info.keys().collect::<Vec<_>>(),
            want.blob_info.keys().collect::<Vec<_>>()
        ));
    }
    out.join("; ")
}

fn snapshot(s: &Storage) -> Result<Snapshot, StorageError> {
    let mut shards = BTreeMap::new();
    for shard in s.shards()? {
        let mut slivers = BTreeMap::new();
        for ty in SliverType::ALL {
            let ids = s.sliver_ids(shard, ty)?;
            assert_eq!(s.sliver_count(shard, ty)?, ids.len() as u64);
            assert!(ids.windows(2).all(|w| w[0] < w[1]));
            for blob in ids {
                let bytes = s
                    .sliver(shard, ty, blob)?
                    .ok_or_else(|| StorageError::Corrupted("listed sliver missing".into()))?;
                slivers.insert((ty, blob), bytes);
            }
        }
        let pending = s.pending(shard)?;
        assert!(pending.windows(2).all(|w| w[0] < w[1]));
        let snap = ShardSnap {
            status: s
                .shard_status(shard)?
                .ok_or(StorageError::ShardNotFound(shard))?,
            progress: s.progress(shard)?,
            pending: pending.into_iter().collect(),
            slivers,
        };
        shards.insert(shard.0, snap);
    }
    let mut metadata = BTreeMap::new();
    for blob in s.metadata_ids()? {
        let m = s
            .metadata(blob)?
            .ok_or_else(|| StorageError::Corrupted("listed metadata missing".into()))?;
        metadata.insert(blob, m);
    }
    Ok(Snapshot {
        node_status: s.node_status()?,
        cursor: s.event_cursor()?,
        shards,
        metadata,
        blob_info: s.blob_infos()?.into_iter().collect(),
    })
}

#[derive(Clone, Debug)]
enum Op {
    NodeStatus(NodeStatus),
    Cursor(u64),
    Create(u16),
    Drop(u16),
    SetStatus(u16, ShardStatus),
    SetStatusIf(u16, Vec<ShardStatus>, ShardStatus),
    StartSync(u16),
    Batch(u16, SliverType, Vec<u8>, Vec<u8>, Option<(u8, SliverType)>),
    AddPending(u16, Vec<(SliverType, u8)>),
    RemovePending(u16, SliverType, u8),
    Finish(u16, Vec<ShardStatus>, ShardStatus),
    PutSliver(u16, SliverType, u8, u8),
    PutSlivers(Vec<(u16, SliverType, u8, u8)>),
    PutMetadata(u8),
    ClearMetadata,
    PutInfo(u8, Option<u64>, u64),
    ClearInfo,
}

const STATUSES: [ShardStatus; 5] = [
    ShardStatus::None,
    ShardStatus::Active,
    ShardStatus::ActiveSync,
    ShardStatus::ActiveRecover,
    ShardStatus::LockedToMove,
];

fn random_op(rng: &mut ChaCha8Rng) -> Op {
    let shard = rng.random_range(0..4u16);
    let blob = |rng: &mut ChaCha8Rng| rng.random_range(0..12u8);
    let ty = |rng: &mut ChaCha8Rng| if rng.random_bool(0.5) { P } else { S };
    let status = |rng: &mut ChaCha8Rng| STATUSES[rng.random_range(0..STATUSES.len())];
    let statuses = |rng: &mut ChaCha8Rng| {
        STATUSES
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.5))
            .collect::<Vec<_>>()
    };
    match rng.random_range(0..100) {
        0..=3 => Op::NodeStatus(match rng.random_range(0..3) {
            0 => NodeStatus::Standby,
            1 => NodeStatus::Active,
            _ => NodeStatus::RecoveryInProgress(rng.random_range(0..9)),
        }),
        4..=7 => Op::Cursor(rng.random_range(0..1000)),
        8..=17 => Op::Create(shard),
        18..=20 => Op::Drop(shard),
        21..=25 => Op::SetStatus(shard, status(rng)),
        26..=30 => Op::SetStatusIf(shard, statuses(rng), status(rng)),
        31..=35 => Op::StartSync(shard),
        36..=50 => {
            let n = rng.random_range(0..5);
            let slivers = (0..n).map(|_| blob(rng)).collect();
            let skipped = (0..rng.random_range(0..3)).map(|_| blob(rng)).collect();
            let progress = rng.random_bool(0.8).then(|| (blob(rng), ty(rng)));
            Op::Batch(shard, ty(rng), slivers, skipped, progress)
        }
        51..=55 => Op::AddPending(
            shard,
            (0..rng.random_range(1..4))
                .map(|_| (ty(rng), blob(rng)))
                .collect(),
        ),
        56..=60 => Op::RemovePending(shard, ty(rng), blob(rng)),
        61..=65 => Op::Finish(shard, statuses(rng), status(rng)),
        66..=75 => Op::PutSliver(shard, ty(rng), blob(rng), rng.random()),
        76..=80 => Op::PutSlivers(
            (0..rng.random_range(1..4))
                .map(|_| (rng.random_range(0..4), ty(rng), blob(rng), rng.random()))
                .collect(),
        ),
        81..=87 => Op::PutMetadata(blob(rng)),
        88 => Op::ClearMetadata,
        89..=98 => Op::PutInfo(
            blob(rng),
            rng.random_bool(0.7).then(|| rng.random_range(0..5)),
            rng.random_range(1..8),
        ),
        _ => Op::ClearInfo,
    }
}

fn run_op(s: &Storage, op: &Op) -> Result<(), StorageError> {
    match op.clone() {
        Op::NodeStatus(st) => s.set_node_status(st),
        Op::Cursor(c) => s.set_event_cursor(c),
        Op::Create(i) => s.create_shard(sh(i)).map(drop),
        Op::Drop(i) => s.drop_shard(sh(i)),
        Op::SetStatus(i, st) => s.set_shard_status(sh(i), st),
        Op::SetStatusIf(i, exp, to) => s.set_shard_status_if(sh(i), &exp, to).map(drop),
        Op::StartSync(i) => s.record_start_shard_sync(sh(i)),
        Op::Batch(i, ty, slivers, skipped, progress) => {
            let slivers: Vec<_> = slivers
                .iter()
                .map(|&b| (id(b), sliver_bytes(i, ty, b, 0)))
                .collect();
            let skipped: Vec<_> = skipped.iter().map(|&b| id(b)).collect();
            s.commit_sync_batch(
                sh(i),
                ty,
                &slivers,
                &skipped,
                progress.map(|(b, t)| (id(b), t)),
            )
        }
        Op::AddPending(i, entries) => {
            let entries: Vec<_> = entries.iter().map(|&(t, b)| (t, id(b))).collect();
            s.add_pending(sh(i), &entries)
        }
        Op::RemovePending(i, ty, b) => s.remove_pending(sh(i), (ty, id(b))),
        Op::Finish(i, only_if, to) => s.finish_sync(sh(i), &only_if, to).map(drop),
        Op::PutSliver(i, ty, b, v) => s.put_sliver(sh(i), ty, id(b), &sliver_bytes(i, ty, b, v)),
        Op::PutSlivers(list) => {
            let list: Vec<_> = list
                .iter()
                .map(|&(i, ty, b, v)| (sh(i), ty, id(b), sliver_bytes(i, ty, b, v)))
                .collect();
            s.put_slivers(&list)
        }
        Op::PutMetadata(b) => s.put_metadata(id(b), &metadata_of(b)),
        Op::ClearMetadata => s.clear_metadata(),
        Op::PutInfo(b, c, e) => s.put_blob_info(id(b), &info(c, e)),
        Op::ClearInfo => s.clear_blob_info(),
    }
}

/// The model's effect of `op`; `Err(ShardNotFound)` exactly when the storage must refuse it.
fn model_op(m: &mut Snapshot, op: &Op) -> Result<(), StorageError> {
    fn shard(m: &mut Snapshot, i: u16) -> Result<&mut ShardSnap, StorageError> {
        m.shards
            .get_mut(&i)
            .ok_or(StorageError::ShardNotFound(sh(i)))
    }
    match op.clone() {
        Op::NodeStatus(st) => m.node_status = Some(st),
        Op::Cursor(c) => m.cursor = c,
        Op::Create(i) => {
            m.shards.entry(i).or_insert_with(ShardSnap::new);
        }
        Op::Drop(i) => {
            m.shards.remove(&i);
        }
        Op::SetStatus(i, st) => shard(m, i)?.status = st,
        Op::SetStatusIf(i, exp, to) => {
            let s = shard(m, i)?;
            if exp.contains(&s.status) {
                s.status = to;
            }
        }
        Op::StartSync(i) => {
            let s = shard(m, i)?;
            s.status = ShardStatus::ActiveSync;
            s.progress = None;
        }
        Op::Batch(i, ty, slivers, skipped, progress) => {
            let s = shard(m, i)?;
            for b in slivers {
                s.slivers.insert((ty, id(b)), sliver_bytes(i, ty, b, 0));
            }
            for b in skipped {
                s.pending.insert((ty, id(b)));
            }
            if let Some((b, t)) = progress {
                s.progress = Some((id(b), t));
            }
        }
        Op::AddPending(i, entries) => {
            let s = shard(m, i)?;
            for (t, b) in entries {
                s.pending.insert((t, id(b)));
            }
        }
        Op::RemovePending(i, ty, b) => {
            shard(m, i)?.pending.remove(&(ty, id(b)));
        }
        Op::Finish(i, only_if, to) => {
            let s = shard(m, i)?;
            s.progress = None;
            if only_if.contains(&s.status) {
                s.status = to;
            }
        }
        Op::PutSliver(i, ty, b, v) => {
            shard(m, i)?
                .slivers
                .insert((ty, id(b)), sliver_bytes(i, ty, b, v));
        }
        Op::PutSlivers(list) => {
            // The storage reports the lowest missing shard.
            let shards: BTreeSet<u16> = list.iter().map(|l| l.0).collect();
            for i in shards {
                shard(m, i)?;
            }
            for (i, ty, b, v) in list {
                shard(m, i)?
                    .slivers
                    .insert((ty, id(b)), sliver_bytes(i, ty, b, v));
            }
        }
        Op::PutMetadata(b) => {
            m.metadata.insert(id(b), metadata_of(b));
        }
        Op::ClearMetadata => m.metadata.clear(),
        Op::PutInfo(b, c, e) => {
            m.blob_info.insert(id(b), info(c, e));
        }
        Op::ClearInfo => m.blob_info.clear(),
    }
    Ok(())
}

/// Runs `op` on the storage and the model; they must agree on success and on `ShardNotFound`.
fn step(s: &Storage, m: &mut Snapshot, op: &Op) {
    let mut next = m.clone();
    let expected = model_op(&mut next, op);
    let got = run_op(s, op);
    assert_eq!(got, expected, "{op:?}");
    *m = next;
}

// ---------------------------------------------------------------------------------------------
// Every operation, on both disks.

#[test]
fn node_state_on_both_disks() {
    for_each_disk(|disk| {
        let s = Storage::open(disk).unwrap();
        assert_eq!(s.node_status().unwrap(), None);
        assert_eq!(s.event_cursor().unwrap(), 0);
        let st = NodeStatus::RecoveryCatchUpWithIncompleteHistory {
            first_complete_epoch: 2,
            epoch_at_start: 5,
        };
        s.set_node_status(NodeStatus::Standby).unwrap();
        s.set_node_status(st).unwrap();
        s.set_event_cursor(17).unwrap();
        assert_eq!(s.node_status().unwrap(), Some(st));
        assert_eq!(s.event_cursor().unwrap(), 17);
        drop(s);
        let s = Storage::open(disk).unwrap();
        assert_eq!(s.node_status().unwrap(), Some(st));
        assert_eq!(s.event_cursor().unwrap(), 17);
    });
}

#[test]
fn shard_lifecycle_on_both_disks() {
    for_each_disk(|disk| {
        let s = Storage::open(disk).unwrap();
        assert!(s.shards().unwrap().is_empty());
        assert!(!s.has_shard(sh(3)).unwrap());
        assert_eq!(s.shard_status(sh(3)).unwrap(), None);
        assert!(s.create_shard(sh(3)).unwrap());
        assert!(!s.create_shard(sh(3)).unwrap());
        assert!(s.create_shard(sh(300)).unwrap());
        assert!(s.has_shard(sh(3)).unwrap());
        assert_eq!(s.shard_status(sh(3)).unwrap(), Some(ShardStatus::None));
        assert_eq!(s.shards().unwrap(), BTreeSet::from([sh(3), sh(300)]));

        s.set_shard_status(sh(3), ShardStatus::LockedToMove)
            .unwrap();
        assert!(
            !s.create_shard(sh(3)).unwrap(),
            "create keeps an existing status"
        );
        assert_eq!(
            s.shard_status(sh(3)).unwrap(),
            Some(ShardStatus::LockedToMove)
        );
        let active = [ShardStatus::ActiveSync, ShardStatus::ActiveRecover];
        assert!(!s
            .set_shard_status_if(sh(3), &active, ShardStatus::Active)
            .unwrap());
        assert_eq!(
            s.shard_status(sh(3)).unwrap(),
            Some(ShardStatus::LockedToMove)
        );
        assert!(s
            .set_shard_status_if(sh(3), &[ShardStatus::LockedToMove], ShardStatus::ActiveSync)
            .unwrap());
        assert_eq!(
            s.shard_status(sh(3)).unwrap(),
            Some(ShardStatus::ActiveSync)
        );

        let missing = Err(StorageError::ShardNotFound(sh(9)));
        assert_eq!(s.set_shard_status(sh(9), ShardStatus::Active), missing);
        assert_eq!(
            s.set_shard_status_if(sh(9), &STATUSES, ShardStatus::Active)
                .map(drop),
            missing
        );
        assert_eq!(s.shard_status(sh(9)).unwrap(), None);

        // drop_shard removes everything of that shard and nothing of another one.
        for i in [3, 300] {
            s.commit_sync_batch(
                sh(i),
                P,
                &[(id(1), vec![1; 10])],
                &[id(2)],
                Some((id(1), P)),
            )
            .unwrap();
            s.put_sliver(sh(i), S, id(4), &[4; 4]).unwrap();
        }
        s.drop_shard(sh(3)).unwrap();
        s.drop_shard(sh(3)).unwrap();
        assert_eq!(s.shards().unwrap(), BTreeSet::from([sh(300)]));
        assert_eq!(s.progress(sh(3)), Err(StorageError::ShardNotFound(sh(3))));
        assert!(s.create_shard(sh(3)).unwrap());
        assert_eq!(s.progress(sh(3)).unwrap(), None);
        assert!(s.pending(sh(3)).unwrap().is_empty());
        assert_eq!(s.sliver_count(sh(3), P).unwrap(), 0);
        assert_eq!(s.sliver_count(sh(3), S).unwrap(), 0);
        assert_eq!(s.shard_status(sh(3)).unwrap(), Some(ShardStatus::None));
        assert_eq!(s.progress(sh(300)).unwrap(), Some((id(1), P)));
        assert_eq!(s.pending(sh(300)).unwrap(), vec![(P, id(2))]);
        assert_eq!(s.sliver(sh(300), S, id(4)).unwrap(), Some(vec![4; 4]));
    });
}

#[test]
fn sync_state_on_both_disks() {
    for_each_disk(|disk| {
        let s = Storage::open(disk).unwrap();
        let i = sh(1);
        assert_eq!(
            s.record_start_shard_sync(i),
            Err(StorageError::ShardNotFound(i))
        );
        s.create_shard(i).unwrap();
        s.commit_sync_batch(i, P, &[], &[], Some((id(9), S)))
            .unwrap();
        s.record_start_shard_sync(i).unwrap();
        assert_eq!(s.shard_status(i).unwrap(), Some(ShardStatus::ActiveSync));
        assert_eq!(s.progress(i).unwrap(), None);

        let batch = vec![(id(1), vec![1; 30]), (id(3), vec![3; 30])];
        s.commit_sync_batch(i, P, &batch, &[id(0), id(2)], Some((id(3), P)))
            .unwrap();
        assert_eq!(s.progress(i).unwrap(), Some((id(3), P)));
        assert_eq!(s.sliver_ids(i, P).unwrap(), vec![id(1), id(3)]);
        assert_eq!(s.sliver_count(i, S).unwrap(), 0);
        // No progress: unchanged.
        s.commit_sync_batch(i, S, &[(id(5), vec![5; 9])], &[id(0)], None)
            .unwrap();
        assert_eq!(s.progress(i).unwrap(), Some((id(3), P)));
        assert_eq!(
            s.pending(i).unwrap(),
            vec![(P, id(0)), (P, id(2)), (S, id(0))]
        );
        s.add_pending(i, &[(S, id(7)), (P, id(1)), (P, id(1))])
            .unwrap();
        assert_eq!(
            s.pending(i).unwrap(),
            vec![(P, id(0)), (P, id(1)), (P, id(2)), (S, id(0)), (S, id(7))]
        );
        s.remove_pending(i, (P, id(1))).unwrap();
        s.remove_pending(i, (P, id(99))).unwrap();
        assert_eq!(
            s.pending(i).unwrap(),
            vec![(P, id(0)), (P, id(2)), (S, id(0)), (S, id(7))]
        );

        // S4 on a locked shard deletes progress but keeps the status.
        let syncing = [ShardStatus::ActiveSync, ShardStatus::ActiveRecover];
        s.set_shard_status(i, ShardStatus::LockedToMove).unwrap();
        assert_eq!(
            s.finish_sync(i, &syncing, ShardStatus::Active).unwrap(),
            ShardStatus::LockedToMove
        );
        assert_eq!(s.progress(i).unwrap(), None);
        s.set_shard_status(i, ShardStatus::ActiveRecover).unwrap();
        s.commit_sync_batch(i, S, &[], &[], Some((id(5), S)))
            .unwrap();
        assert_eq!(
            s.finish_sync(i, &syncing, ShardStatus::Active).unwrap(),
            ShardStatus::Active
        );
        assert_eq!(s.progress(i).unwrap(), None);
        assert_eq!(s.shard_status(i).unwrap(), Some(ShardStatus::Active));

        let j = sh(2);
        let missing = Err(StorageError::ShardNotFound(j));
        assert_eq!(s.commit_sync_batch(j, P, &batch, &[], None), missing);
        assert_eq!(s.add_pending(j, &[(P, id(1))]), missing);
        assert_eq!(s.remove_pending(j, (P, id(1))), missing);
        assert_eq!(s.pending(j).map(drop), missing);
        assert_eq!(
            s.finish_sync(j, &syncing, ShardStatus::Active).map(drop),
            missing
        );
    });
}

#[test]
fn slivers_on_both_disks() {
    for_each_disk(|disk| {
        let s = Storage::open(disk).unwrap();
        s.create_shard(sh(0)).unwrap();
        s.create_shard(sh(1)).unwrap();
        assert_eq!(s.sliver(sh(0), P, id(1)).unwrap(), None);
        assert!(!s.has_sliver(sh(0), P, id(1)).unwrap());
        s.put_sliver(sh(0), P, id(1), &[1, 2, 3]).unwrap();
        s.put_sliver(sh(0), P, id(1), &[1, 2, 4]).unwrap();
        assert_eq!(s.sliver(sh(0), P, id(1)).unwrap(), Some(vec![1, 2, 4]));
        assert!(s.has_sliver(sh(0), P, id(1)).unwrap());
        assert!(!s.has_sliver(sh(0), S, id(1)).unwrap());
        assert!(!s.has_sliver(sh(1), P, id(1)).unwrap());
        s.put_slivers(&[
            (sh(1), S, id(9), vec![9]),
            (sh(1), S, id(3), vec![3]),
            (sh(0), P, id(0), vec![]),
            (sh(1), P, id(5), vec![5; 1000]),
        ])
        .unwrap();
        assert_eq!(s.sliver_ids(sh(1), S).unwrap(), vec![id(3), id(9)]);
        assert_eq!(s.sliver_ids(sh(0), P).unwrap(), vec![id(0), id(1)]);
        assert_eq!(s.sliver(sh(0), P, id(0)).unwrap(), Some(vec![]));
        assert_eq!(s.sliver_count(sh(1), P).unwrap(), 1);
        assert_eq!(s.sliver_count(sh(1), S).unwrap(), 2);
        // One missing shard fails the whole batch.
        assert_eq!(
            s.put_slivers(&[(sh(0), S, id(7), vec![7]), (sh(4), S, id(7), vec![7])]),
            Err(StorageError::ShardNotFound(sh(4)))
        );
        assert!(!s.has_sliver(sh(0), S, id(7)).unwrap());
        let missing = Err(StorageError::ShardNotFound(sh(4)));
        assert_eq!(s.put_sliver(sh(4), P, id(1), &[1]), missing);
        assert_eq!(s.sliver(sh(4), P, id(1)).map(drop), missing);
        assert_eq!(s.sliver_ids(sh(4), P).map(drop), missing);
        assert_eq!(s.sliver_count(sh(4), P).map(drop), missing);
    });
}

#[test]
fn metadata_and_blob_info_on_both_disks() {
    for_each_disk(|disk| {
        let s = Storage::open(disk).unwrap();
        assert_eq!(s.metadata(id(1)).unwrap(), None);
        assert!(!s.has_metadata(id(1)).unwrap());
        s.put_metadata(id(2), &metadata_of(2)).unwrap();
        s.put_metadata_batch(&[(id(1), metadata_of(1)), (id(3), metadata_of(3))])
            .unwrap();
        assert_eq!(s.metadata(id(1)).unwrap(), Some(metadata_of(1)));
        assert!(s.has_metadata(id(3)).unwrap());
        assert_eq!(s.metadata_ids().unwrap(), vec![id(1), id(2), id(3)]);
        s.clear_metadata().unwrap();
        assert!(s.metadata_ids().unwrap().is_empty());
        assert!(!s.has_metadata(id(2)).unwrap());

        let retired = BlobInfo {
            deleted: true,
            ..info(Some(0), 9)
        };
        s.put_blob_info(id(4), &info(Some(1), 9)).unwrap();
        s.put_blob_info(id(1), &info(Some(2), 9)).unwrap();
        s.put_blob_info_batch(&[
            (id(2), info(None, 9)),
            (id(3), retired),
            (id(5), info(Some(0), 3)),
        ])
        .unwrap();
        assert_eq!(s.blob_info(id(4)).unwrap(), Some(info(Some(1), 9)));
        assert_eq!(s.blob_info(id(6)).unwrap(), None);
        let all = s.blob_infos().unwrap();
        assert_eq!(
            all.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
            vec![id(1), id(2), id(3), id(4), id(5)]
        );
        assert_eq!(s.certified_before(2).unwrap(), vec![id(4), id(5)]);
        assert_eq!(s.certified_before(3).unwrap(), vec![id(1), id(4)]);
        assert_eq!(s.certified_before(0).unwrap(), vec![]);
        s.clear_blob_info().unwrap();
        assert!(s.blob_infos().unwrap().is_empty());
    });
}

#[test]
fn random_workload_matches_the_model_and_survives_reopen_on_both_disks() {
    for_each_disk(|disk| {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut model = Snapshot::default();
        let mut s = Storage::open(disk).unwrap();
        for n in 0..400 {
            step(&s, &mut model, &random_op(&mut rng));
            if n % 50 == 49 {
                assert_eq!(snapshot(&s).unwrap(), model);
                drop(s);
                s = Storage::open(disk).unwrap();
                assert_eq!(snapshot(&s).unwrap(), model);
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Crashes, torn writes, EIO.

/// Sets up a shard with one committed batch.
fn sync_fixture(s: &Storage) {
    s.create_shard(sh(0)).unwrap();
    s.record_start_shard_sync(sh(0)).unwrap();
    s.commit_sync_batch(
        sh(0),
        P,
        &[(id(1), vec![1; 300])],
        &[id(0)],
        Some((id(1), P)),
    )
    .unwrap();
}

/// The batch whose atomicity is tested.
fn second_batch(s: &Storage) -> Result<(), StorageError> {
    let slivers: Vec<_> = (2..40).map(|b| (id(b), vec![b; 700])).collect();
    s.commit_sync_batch(sh(0), P, &slivers, &[id(40), id(41)], Some((id(39), P)))
}

/// Whether the second batch is fully present (Some(true)), fully absent (Some(false)) or torn.
fn second_batch_state(s: &Storage) -> Result<Option<bool>, StorageError> {
    let ids = s.sliver_ids(sh(0), P)?;
    let pending = s.pending(sh(0))?;
    let progress = s.progress(sh(0))?;
    assert_eq!(
        s.sliver(sh(0), P, id(1))?,
        Some(vec![1; 300]),
        "first batch lost"
    );
    let before = ids == vec![id(1)] && pending == vec![(P, id(0))] && progress == Some((id(1), P));
    let after = ids.len() == 39
        && pending == vec![(P, id(0)), (P, id(40)), (P, id(41))]
        && progress == Some((id(39), P))
        && s.sliver(sh(0), P, id(20))? == Some(vec![20; 700]);
    Ok(match (before, after) {
        (true, false) => Some(false),
        (false, true) => Some(true),
        _ => None,
    })
}

#[test]
fn commit_sync_batch_is_atomic_under_io_failures_and_crashes() {
    let mut outcomes = BTreeSet::new();
    for ops in 0..60u64 {
        for (crash, torn) in [(false, false), (true, false), (true, true)] {
            let disk = SimDisk::new(ops);
            disk.set_torn_writes(torn);
            let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
            sync_fixture(&s);
            disk.set_eio_after(ops);
            let result = second_batch(&s);
            disk.set_eio(false);
            let s = if crash {
                disk.crash();
                assert_eq!(s.node_status(), Err(StorageError::Crashed));
                Storage::open(&Disk::Sim(disk.clone())).unwrap()
            } else {
                s
            };
            let state = second_batch_state(&s).unwrap();
            assert!(
                state.is_some(),
                "torn batch: ops={ops} crash={crash} torn={torn}"
            );
            if result.is_ok() {
                assert_eq!(state, Some(true), "committed batch lost: ops={ops}");
            } else if crash && !torn {
                assert_eq!(state, Some(false), "unsynced batch survived: ops={ops}");
            } else {
                assert!(matches!(result, Err(StorageError::Io(_))), "{result:?}");
            }
            outcomes.insert((result.is_ok(), state));
        }
    }
    // Both a failed-and-absent and a committed outcome were exercised.
    assert!(outcomes.contains(&(false, Some(false))), "{outcomes:?}");
    assert!(outcomes.contains(&(true, Some(true))), "{outcomes:?}");
}

#[test]
fn crash_keeps_every_committed_transaction() {
    for seed in 0..20 {
        let disk = SimDisk::new(seed);
        disk.set_torn_writes(seed % 2 == 1);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Snapshot::default();
        let mut s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        for _ in 0..150 {
            step(&s, &mut model, &random_op(&mut rng));
            if rng.random_bool(0.05) {
                disk.crash();
                s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
                assert_eq!(snapshot(&s).unwrap(), model, "seed {seed}");
            }
        }
        disk.crash();
        let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        assert_eq!(snapshot(&s).unwrap(), model, "seed {seed}");
    }
}

#[test]
fn uncommitted_writes_are_gone_after_abort_and_after_crash() {
    for torn in [false, true] {
        let disk = SimDisk::new(7);
        disk.set_torn_writes(torn);
        let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        s.create_shard(sh(0)).unwrap();
        // A big transaction spills pages to the disk, then is dropped without commit.
        s.with_db(|db| {
            let txn = db.begin_write()?;
            {
                let mut t = txn.open_table(tables::SLIVERS)?;
                for b in 0..=255u8 {
                    for ty in SliverType::ALL {
                        slivers::insert_sliver(&mut t, sh(0), ty, &id(b), &[b; 20_000])?;
                    }
                }
            }
            drop(txn);
            Ok(())
        })
        .unwrap();
        assert_eq!(s.sliver_count(sh(0), P).unwrap(), 0);
        disk.crash();
        let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        assert_eq!(s.sliver_count(sh(0), P).unwrap(), 0);
        assert_eq!(s.shards().unwrap(), BTreeSet::from([sh(0)]));
    }
}

#[test]
fn torn_writes_never_lose_committed_data_over_many_seeds() {
    for seed in 0..150 {
        let disk = SimDisk::new(seed);
        disk.set_torn_writes(true);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Snapshot::default();
        let mut s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        for _ in 0..rng.random_range(5..40) {
            step(&s, &mut model, &random_op(&mut rng));
        }
        // The next operation fails part-way through (or does not fail), then the power goes.
        disk.set_eio_after(rng.random_range(0..40));
        let op = random_op(&mut rng);
        let mut with_op = model.clone();
        let applies = model_op(&mut with_op, &op).is_ok();
        let result = run_op(&s, &op);
        disk.set_eio(false);
        disk.crash();
        drop(s);
        // Reopen returns a typed error at worst (a panic would fail the test); with the prefix
        // model and checksummed commits it must in fact succeed.
        s = Storage::open(&Disk::Sim(disk.clone()))
            .unwrap_or_else(|e| panic!("seed {seed}: reopen failed: {e}"));
        let got = snapshot(&s).unwrap();
        if result.is_ok() {
            assert_eq!(got, with_op, "seed {seed}: committed op lost");
        } else if applies {
            assert!(
                got == model || got == with_op,
                "seed {seed}: torn op {op:?}"
            );
        } else {
            assert_eq!(got, model, "seed {seed}");
        }
    }
}

#[test]
fn eio_returns_io_errors_and_recovers_when_turned_off() {
    let disk = SimDisk::new(1);
    let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
    let mut model = Snapshot::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..60 {
        step(&s, &mut model, &random_op(&mut rng));
    }
    disk.set_eio(true);
    let writes = [
        Op::Create(7),
        Op::Cursor(5),
        Op::PutMetadata(1),
        Op::Batch(0, P, vec![1, 2], vec![3], Some((2, P))),
    ];
    for op in &writes {
        assert!(matches!(run_op(&s, op), Err(StorageError::Io(_))), "{op:?}");
    }
    // Reads fail too (the database must be reopened, which needs the disk).
    assert!(matches!(s.node_status(), Err(StorageError::Io(_))));
    assert!(matches!(s.shards(), Err(StorageError::Io(_))));
    assert!(matches!(
        Storage::open(&Disk::Sim(disk.clone())),
        Err(StorageError::Io(_))
    ));
    assert!(disk.stats().eio_errors > 0);
    disk.set_eio(false);
    assert_eq!(snapshot(&s).unwrap(), model);
    for _ in 0..20 {
        step(&s, &mut model, &random_op(&mut rng));
    }
    assert_eq!(snapshot(&s).unwrap(), model);
}

#[test]
fn a_storage_handle_is_dead_after_its_disk_crashed() {
    let disk = SimDisk::new(1);
    let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
    s.set_event_cursor(3).unwrap();
    disk.crash();
    assert_eq!(s.set_event_cursor(4), Err(StorageError::Crashed));
    assert_eq!(s.event_cursor(), Err(StorageError::Crashed));
    drop(s);
    let s = Storage::open(&Disk::Sim(disk)).unwrap();
    assert_eq!(s.event_cursor().unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// Corruption.

#[test]
fn corrupt_reads_give_typed_errors_or_correct_data() {
    let mut stats = BTreeMap::<&str, u32>::new();
    for seed in 0..60 {
        let disk = SimDisk::new(seed);
        let rate = if seed % 2 == 0 { 300 } else { 50 };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut model = Snapshot::default();
        let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        for _ in 0..80 {
            step(&s, &mut model, &random_op(&mut rng));
        }
        drop(s);
        disk.set_corrupt_reads(rate);
        // Reads only, each from a cold cache: every answer is an error or the truth.
        for _ in 0..20 {
            match Storage::open(&Disk::Sim(disk.clone())).and_then(|s| snapshot(&s)) {
                Ok(got) => {
                    assert!(
                        got == model,
                        "seed {seed}: wrong data: {}",
                        diff(&got, &model)
                    );
                    *stats.entry("ok").or_default() += 1;
                }
                Err(StorageError::Io(_)) => *stats.entry("io").or_default() += 1,
                Err(e) => panic!("seed {seed}: unexpected {e:?}"),
            }
        }
        // Writes under corruption, each from a cold cache: a write that failed is either
        // applied or not, never torn. (A database this small is mostly read while opening, so
        // writes rarely fail here.)
        let open = || loop {
            if let Ok(s) = Storage::open(&Disk::Sim(disk.clone())) {
                break s;
            }
        };
        for _ in 0..20 {
            let s = open();
            let op = random_op(&mut rng);
            let mut next = model.clone();
            let expected = model_op(&mut next, &op);
            match run_op(&s, &op) {
                Ok(()) => {
                    assert_eq!(expected, Ok(()), "seed {seed}: {op:?}");
                    model = next;
                }
                Err(StorageError::ShardNotFound(i)) => {
                    assert_eq!(expected, Err(StorageError::ShardNotFound(i)));
                }
                Err(StorageError::Io(_)) => {
                    *stats.entry("write io").or_default() += 1;
                    disk.set_corrupt_reads(0);
                    let got = snapshot(&s).unwrap();
                    assert!(got == model || got == next, "seed {seed}: torn {op:?}");
                    model = got;
                    disk.set_corrupt_reads(rate);
                }
                Err(e) => panic!("seed {seed}: unexpected {e:?}"),
            }
        }
        disk.set_corrupt_reads(0);
        let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
        assert_eq!(snapshot(&s).unwrap(), model, "seed {seed}");
    }
    assert!(stats.get("io").copied().unwrap_or(0) > 0, "{stats:?}");
    assert!(stats.get("ok").copied().unwrap_or(0) > 0, "{stats:?}");
}

#[test]
fn undecodable_and_unsealed_values_are_typed_errors() {
    for_each_disk(|disk| {
        let s = Storage::open(disk).unwrap();
        s.put_raw_node_payload(tables::KEY_NODE_STATUS, &[0xff; 3])
            .unwrap();
        assert!(matches!(s.node_status(), Err(StorageError::Codec(_))));
        s.put_raw_node_payload(tables::KEY_EVENT_CURSOR, &[1, 2])
            .unwrap();
        assert!(matches!(s.event_cursor(), Err(StorageError::Codec(_))));
        s.put_raw_node_unsealed(tables::KEY_EVENT_CURSOR, &[1, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        assert!(matches!(s.event_cursor(), Err(StorageError::Corrupted(_))));
        // Other tables still work, and a good write repairs the value.
        s.set_event_cursor(8).unwrap();
        assert_eq!(s.event_cursor().unwrap(), 8);
    });
}

#[test]
fn fail_points_that_do_not_fire_change_nothing() {
    let disk = Disk::Sim(SimDisk::new(3));
    let mut s = Storage::open(&disk).unwrap();
    s.set_fail_points(shardstorm_faults::FailPoints::disabled("n0"));
    let mut model = Snapshot::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..50 {
        step(&s, &mut model, &random_op(&mut rng));
    }
    assert_eq!(snapshot(&s).unwrap(), model);
}

/// A storage whose `db.*` points evaluate through a registry (outside a simulation, so a
/// `crash` comes back as `StorageError::Crashed`).
fn storage_with_registry() -> (Storage, shardstorm_faults::Registry) {
    let registry = shardstorm_faults::Registry::new(1);
    let mut s = Storage::open(&Disk::Sim(SimDisk::new(1))).unwrap();
    s.set_fail_points(registry.handle("n0"));
    s.create_shard(sh(0)).unwrap();
    (s, registry)
}

fn arm(registry: &shardstorm_faults::Registry, point: &str, action: &str) {
    registry.clear_all();
    registry
        .configure(shardstorm_faults::Selector::parse("n0"), point, action)
        .unwrap();
}

#[test]
fn crash_points_before_a_write_prevent_it_and_after_keep_it() {
    let (s, registry) = storage_with_registry();
    let batch = |s: &Storage| {
        s.commit_sync_batch(sh(0), P, &[(id(1), vec![1])], &[id(2)], Some((id(1), P)))
    };
    arm(&registry, fail_points::DB_WRITE_BATCH_BEFORE, "crash");
    assert_eq!(batch(&s), Err(StorageError::Crashed));
    assert_eq!(s.progress(sh(0)).unwrap(), None);
    assert!(s.pending(sh(0)).unwrap().is_empty());
    arm(
        &registry,
        fail_points::DB_WRITE_BATCH_BEFORE,
        "return(disk full)",
    );
    assert_eq!(
        batch(&s),
        Err(StorageError::Io("injected: disk full".into()))
    );
    assert_eq!(s.progress(sh(0)).unwrap(), None);
    arm(&registry, fail_points::DB_WRITE_BATCH_AFTER, "crash");
    assert_eq!(batch(&s), Err(StorageError::Crashed));
    assert_eq!(s.progress(sh(0)).unwrap(), Some((id(1), P)));
    assert_eq!(s.pending(sh(0)).unwrap(), vec![(P, id(2))]);

    arm(&registry, fail_points::DB_PUT_BEFORE, "crash");
    assert_eq!(s.set_event_cursor(9), Err(StorageError::Crashed));
    assert_eq!(s.event_cursor().unwrap(), 0);
    arm(&registry, fail_points::DB_PUT_AFTER, "crash");
    assert_eq!(
        s.set_shard_status(sh(0), ShardStatus::Active),
        Err(StorageError::Crashed)
    );
    assert_eq!(s.shard_status(sh(0)).unwrap(), Some(ShardStatus::Active));

    arm(&registry, fail_points::DB_DELETE_BEFORE, "crash");
    assert_eq!(s.drop_shard(sh(0)), Err(StorageError::Crashed));
    assert!(s.has_shard(sh(0)).unwrap());
    arm(&registry, fail_points::DB_DELETE_AFTER, "crash");
    assert_eq!(
        s.remove_pending(sh(0), (P, id(2))),
        Err(StorageError::Crashed)
    );
    assert!(s.pending(sh(0)).unwrap().is_empty());

    arm(&registry, fail_points::DB_CREATE_SHARD_BEFORE, "crash");
    assert_eq!(s.create_shard(sh(5)), Err(StorageError::Crashed));
    assert!(!s.has_shard(sh(5)).unwrap());
    registry.clear_all();
    assert!(s.create_shard(sh(5)).unwrap());
    assert!(registry.reached("n0", fail_points::DB_CREATE_SHARD_BEFORE) >= 2);
}

#[test]
fn write_kinds_name_the_catalogue_points() {
    assert_eq!(
        WriteKind::Batch.before(),
        fail_points::DB_WRITE_BATCH_BEFORE
    );
    assert_eq!(
        WriteKind::Batch.after(),
        Some(fail_points::DB_WRITE_BATCH_AFTER)
    );
    assert_eq!(WriteKind::Put.before(), fail_points::DB_PUT_BEFORE);
    assert_eq!(WriteKind::Put.after(), Some(fail_points::DB_PUT_AFTER));
    assert_eq!(WriteKind::Delete.before(), fail_points::DB_DELETE_BEFORE);
    assert_eq!(
        WriteKind::Delete.after(),
        Some(fail_points::DB_DELETE_AFTER)
    );
    assert_eq!(
        WriteKind::CreateShard.before(),
        fail_points::DB_CREATE_SHARD_BEFORE
    );
    assert_eq!(WriteKind::CreateShard.after(), None);
}

// ---------------------------------------------------------------------------------------------
// Dumps of disk images (what the oracle audits).

/// The model snapshot as a dump would show it (sliver bytes as hashes).
fn as_stored(m: &Snapshot) -> StoredState {
    StoredState {
        status: m.node_status,
        event_cursor: m.cursor,
        shards: m
            .shards
            .iter()
            .map(|(i, s)| {
                let shard = StoredShard {
                    status: s.status,
                    progress: s.progress,
                    pending: s.pending.iter().copied().collect(),
                    slivers: s
                        .slivers
                        .iter()
                        .map(|(k, v)| (*k, crate::blob::hash_sliver(v)))
                        .collect(),
                };
                (ShardIndex(*i), shard)
            })
            .collect(),
        metadata: m.metadata.clone(),
        blob_info: m.blob_info.clone(),
    }
}

#[test]
fn dump_of_a_live_disk_image_matches_the_model_and_leaves_the_disk_alone() {
    let disk = SimDisk::new(9);
    assert_eq!(
        dump_disk(&disk, DiskImage::Visible).unwrap(),
        StoredState::default()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut model = Snapshot::default();
    let s = Storage::open(&Disk::Sim(disk.clone())).unwrap();
    for n in 0..300 {
        step(&s, &mut model, &random_op(&mut rng));
        if n % 60 == 59 {
            let before = disk.stats();
            let dumped = dump_disk(&disk, DiskImage::Visible).unwrap();
            assert_eq!(dumped, as_stored(&model));
            assert_eq!(s.dump().unwrap(), dumped);
            assert_eq!(disk.stats(), before, "the audit touched the disk");
            // Every commit is durable: a crash image holds the same state.
            assert_eq!(dump_disk(&disk, DiskImage::Durable).unwrap(), dumped);
        }
    }
    // The digest sees a change of any part.
    let a = s.dump().unwrap();
    let mut b = a.clone();
    b.status = Some(NodeStatus::RecoveryCatchUp);
    assert_ne!(a.digest(), b.digest());
    assert_eq!(a.digest(), s.dump().unwrap().digest());
}

#[test]
fn dump_reports_per_shard_rows_without_storage_as_corruption() {
    let disk = Disk::Sim(SimDisk::new(3));
    let s = Storage::open(&disk).unwrap();
    s.create_shard(sh(1)).unwrap();
    s.write(WriteKind::Put, |txn| {
        let key = tables::shard_blob_key(sh(7), SliverType::Primary, &id(1));
        let sealed = tables::seal(tables::SLIVERS_NAME, &key, b"x");
        txn.open_table(tables::SLIVERS)?
            .insert(&key, sealed.as_slice())?;
        Ok(())
    })
    .unwrap();
    assert!(matches!(s.dump(), Err(StorageError::Corrupted(m)) if m.contains("7")));
}
