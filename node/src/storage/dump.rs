//! A whole-database dump for auditors: everything the node's database holds (spec 1.1), read
//! through the storage layer's own table layout and checksums in one read transaction. The
//! harness's oracle audits a node by opening a *copy* of its disk ([`SimDisk::image`]) and
//! dumping it, so it reads what is stored, never what the node reports, and never touches the
//! node's own database handle.

use super::tables::{
    open, open_value, split_shard_blob_key, ShardBlobKey, BLOB_INFO, BLOB_INFO_NAME,
    KEY_EVENT_CURSOR, KEY_NODE_STATUS, METADATA, METADATA_NAME, NODE, NODE_NAME, PENDING, PROGRESS,
    PROGRESS_NAME, SHARD_STATUS, SHARD_STATUS_NAME, SLIVERS, SLIVERS_NAME,
};
use super::{Disk, DiskImage, Progress, SimDisk, Storage, StorageError};
use crate::blob::{hash_sliver, BlobMetadata};
use crate::status::{NodeStatus, ShardStatus};
use crate::types::{BlobId, BlobInfo, ShardIndex, SliverType};
use redb::{ReadTransaction, ReadableTable};
use std::collections::{BTreeMap, BTreeSet};

/// One shard's stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredShard {
    pub status: ShardStatus,
    pub progress: Option<Progress>,
    pub pending: BTreeSet<(SliverType, BlobId)>,
    /// (type, blob) -> blake3 hash of the stored sliver bytes.
    pub slivers: BTreeMap<(SliverType, BlobId), [u8; 32]>,
}

/// Everything one node's database holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    pub status: Option<NodeStatus>,
    pub event_cursor: u64,
    pub shards: BTreeMap<ShardIndex, StoredShard>,
    pub metadata: BTreeMap<BlobId, BlobMetadata>,
    pub blob_info: BTreeMap<BlobId, BlobInfo>,
}

impl StoredState {
    /// A digest of the state an epoch change is responsible for: node status, shard statuses,
    /// progress, pending sets and the stored slivers (spec invariant 8).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(format!("{:?}", self.status).as_bytes());
        for (shard, s) in &self.shards {
            h.update(format!("|{shard}:{:?}:{:?}", s.status, s.progress).as_bytes());
            for (ty, blob) in &s.pending {
                h.update(format!("p{ty}{blob}").as_bytes());
            }
            for ((ty, blob), hash) in &s.slivers {
                h.update(format!("s{ty}{blob}").as_bytes());
                h.update(hash);
            }
        }
        *h.finalize().as_bytes()
    }
}

impl Storage {
    /// Reads the whole database in one transaction, checking every value's checksum.
    pub fn dump(&self) -> Result<StoredState, StorageError> {
        self.read(|txn| {
            let (status, event_cursor) = read_node(txn)?;
            Ok(StoredState {
                status,
                event_cursor,
                shards: read_shards(txn)?,
                metadata: read_metadata(txn)?,
                blob_info: read_blob_info(txn)?,
            })
        })
    }
}

/// Opens a fault-free copy of `disk` as it is now (`DiskImage::Visible`, what the running
/// process reads) or as a crash would leave it (`DiskImage::Durable`) and dumps it. The copy
/// is dropped afterwards: the disk itself is neither read through its fault switches nor
/// written.
pub fn dump_disk(disk: &SimDisk, image: DiskImage) -> Result<StoredState, StorageError> {
    let copy = disk.image(image);
    if copy.stats().len == 0 {
        // Never opened: nothing is stored yet.
        return Ok(StoredState::default());
    }
    Storage::open(&Disk::Sim(copy))?.dump()
}

fn read_node(txn: &ReadTransaction) -> Result<(Option<NodeStatus>, u64), StorageError> {
    let table = txn.open_table(NODE)?;
    let status = match table.get(KEY_NODE_STATUS)? {
        None => None,
        Some(v) => Some(open_value(
            NODE_NAME,
            KEY_NODE_STATUS.as_bytes(),
            v.value(),
        )?),
    };
    let cursor = match table.get(KEY_EVENT_CURSOR)? {
        None => 0,
        Some(v) => open_value(NODE_NAME, KEY_EVENT_CURSOR.as_bytes(), v.value())?,
    };
    Ok((status, cursor))
}

fn read_shards(txn: &ReadTransaction) -> Result<BTreeMap<ShardIndex, StoredShard>, StorageError> {
    let mut shards = BTreeMap::new();
    for row in txn.open_table(SHARD_STATUS)?.iter()? {
        let (k, v) = row?;
        let shard = ShardIndex(k.value());
        let status = open_value(SHARD_STATUS_NAME, &shard.0.to_be_bytes(), v.value())?;
        shards.insert(
            shard,
            StoredShard {
                status,
                progress: None,
                pending: BTreeSet::new(),
                slivers: BTreeMap::new(),
            },
        );
    }
    for row in txn.open_table(PROGRESS)?.iter()? {
        let (k, v) = row?;
        let shard = ShardIndex(k.value());
        let progress: Progress = open_value(PROGRESS_NAME, &shard.0.to_be_bytes(), v.value())?;
        shard_entry(&mut shards, shard, "progress")?.progress = Some(progress);
    }
    for row in txn.open_table(PENDING)?.iter()? {
        let (k, _) = row?;
        let key: &ShardBlobKey = k.value();
        let entry = split_shard_blob_key(key)?;
        shard_entry(&mut shards, key_shard(key), "pending entry")?
            .pending
            .insert(entry);
    }
    for row in txn.open_table(SLIVERS)?.iter()? {
        let (k, v) = row?;
        let key: &ShardBlobKey = k.value();
        let entry = split_shard_blob_key(key)?;
        let sliver = open(SLIVERS_NAME, key, v.value())?;
        shard_entry(&mut shards, key_shard(key), "sliver")?
            .slivers
            .insert(entry, hash_sliver(sliver));
    }
    Ok(shards)
}

fn key_shard(key: &ShardBlobKey) -> ShardIndex {
    ShardIndex(u16::from_be_bytes([key[0], key[1]]))
}

/// Per-shard rows of a shard without a status row are a broken invariant of the layout.
fn shard_entry<'a>(
    shards: &'a mut BTreeMap<ShardIndex, StoredShard>,
    shard: ShardIndex,
    what: &str,
) -> Result<&'a mut StoredShard, StorageError> {
    shards
        .get_mut(&shard)
        .ok_or_else(|| StorageError::Corrupted(format!("{what} of {shard}, which has no storage")))
}

fn read_metadata(txn: &ReadTransaction) -> Result<BTreeMap<BlobId, BlobMetadata>, StorageError> {
    let mut out = BTreeMap::new();
    for row in txn.open_table(METADATA)?.iter()? {
        let (k, v) = row?;
        let id = *k.value();
        out.insert(BlobId(id), open_value(METADATA_NAME, &id, v.value())?);
    }
    Ok(out)
}

fn read_blob_info(txn: &ReadTransaction) -> Result<BTreeMap<BlobId, BlobInfo>, StorageError> {
    let mut out = BTreeMap::new();
    for row in txn.open_table(BLOB_INFO)?.iter()? {
        let (k, v) = row?;
        let id = *k.value();
        out.insert(BlobId(id), open_value(BLOB_INFO_NAME, &id, v.value())?);
    }
    Ok(out)
}
