//! The per-shard primary and secondary sliver maps (blob id -> sliver), scanned in ascending
//! blob-id order.

use super::shard::{require, require_in_write};
use super::tables::{
    open, seal, shard_blob_key, split_shard_blob_key, type_bounds, ShardBlobKey, SHARD_STATUS,
    SLIVERS, SLIVERS_NAME,
};
use super::{Storage, StorageError, WriteKind};
use crate::types::{BlobId, ShardIndex, SliverType};
use redb::{ReadTransaction, Table};
use std::collections::BTreeSet;

impl Storage {
    /// Stores one sliver. `ShardNotFound` without shard storage.
    pub fn put_sliver(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        id: BlobId,
        sliver: &[u8],
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            require_in_write(txn, shard)?;
            insert_sliver(&mut txn.open_table(SLIVERS)?, shard, ty, &id, sliver)
        })
    }

    /// Stores slivers of any shards in one transaction; fails as a whole (`ShardNotFound`) if
    /// one of the shards has no storage.
    pub fn put_slivers(
        &self,
        slivers: &[(ShardIndex, SliverType, BlobId, Vec<u8>)],
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Batch, |txn| {
            let shards: BTreeSet<ShardIndex> = slivers.iter().map(|s| s.0).collect();
            for shard in shards {
                require_in_write(txn, shard)?;
            }
            let mut table = txn.open_table(SLIVERS)?;
            for (shard, ty, id, sliver) in slivers {
                insert_sliver(&mut table, *shard, *ty, id, sliver)?;
            }
            Ok(())
        })
    }

    /// The stored sliver, if any.
    pub fn sliver(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        id: BlobId,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(|txn| {
            let key = shard_blob_key(shard, ty, &id);
            match txn.open_table(SLIVERS)?.get(&key)? {
                // A shard without storage has no slivers (S8 deletes both maps with the
                // status), so only a miss needs the shard's existence checked.
                None => require_read(txn, shard).map(|()| None),
                Some(v) => Ok(Some(open(SLIVERS_NAME, &key, v.value())?.to_vec())),
            }
        })
    }

    pub fn has_sliver(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        id: BlobId,
    ) -> Result<bool, StorageError> {
        Ok(self.sliver(shard, ty, id)?.is_some())
    }

    /// The ids of every stored sliver of type `ty`, ascending.
    pub fn sliver_ids(
        &self,
        shard: ShardIndex,
        ty: SliverType,
    ) -> Result<Vec<BlobId>, StorageError> {
        let mut out = Vec::new();
        self.scan_slivers(shard, ty, |id| out.push(id))?;
        Ok(out)
    }

    pub fn sliver_count(&self, shard: ShardIndex, ty: SliverType) -> Result<u64, StorageError> {
        let mut count = 0;
        self.scan_slivers(shard, ty, |_| count += 1)?;
        Ok(count)
    }

    /// Calls `f` with every stored blob id of the shard's `ty` map, ascending, checking every
    /// entry's checksum.
    fn scan_slivers(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        mut f: impl FnMut(BlobId),
    ) -> Result<(), StorageError> {
        self.read(|txn| {
            require_read(txn, shard)?;
            let table = txn.open_table(SLIVERS)?;
            let (lo, hi) = type_bounds(shard, ty);
            for row in table.range::<&ShardBlobKey>(&lo..=&hi)? {
                let (k, v) = row?;
                let key = k.value();
                open(SLIVERS_NAME, key, v.value())?;
                f(split_shard_blob_key(key)?.1);
            }
            Ok(())
        })
    }
}

fn require_read(txn: &ReadTransaction, shard: ShardIndex) -> Result<(), StorageError> {
    require(&txn.open_table(SHARD_STATUS)?, shard).map(drop)
}

pub(crate) fn insert_sliver(
    table: &mut Table<'_, &'static ShardBlobKey, &'static [u8]>,
    shard: ShardIndex,
    ty: SliverType,
    id: &BlobId,
    sliver: &[u8],
) -> Result<(), StorageError> {
    let key = shard_blob_key(shard, ty, id);
    let sealed = seal(SLIVERS_NAME, &key, sliver);
    table.insert(&key, sealed.as_slice())?;
    Ok(())
}
