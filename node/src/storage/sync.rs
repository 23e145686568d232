//! Per-shard sync state (spec 4.4 to 4.7): S2 (record start of sync), sync progress committed
//! atomically with the slivers it covers, the pending-recovery set and S4 (finish).

use super::shard::{put_status, require, require_in_write};
use super::slivers::insert_sliver;
use super::tables::{
    open, open_value, seal, seal_value, shard_blob_key, shard_bounds, split_shard_blob_key,
    ShardBlobKey, PENDING, PENDING_NAME, PROGRESS, PROGRESS_NAME, SHARD_STATUS, SLIVERS,
};
use super::{Storage, StorageError, WriteKind};
use crate::status::ShardStatus;
use crate::types::{BlobId, ShardIndex, SliverType};
use redb::{Table, WriteTransaction};

/// Sync progress: the last synced blob id and the sliver type of its pass.
pub type Progress = (BlobId, SliverType);

impl Storage {
    /// S2: status `ActiveSync` and progress deleted, in one transaction.
    pub fn record_start_shard_sync(&self, shard: ShardIndex) -> Result<(), StorageError> {
        self.write(WriteKind::Batch, |txn| {
            let mut table = txn.open_table(SHARD_STATUS)?;
            require(&table, shard)?;
            put_status(&mut table, shard, ShardStatus::ActiveSync)?;
            txn.open_table(PROGRESS)?.remove(shard.0)?;
            Ok(())
        })
    }

    /// The shard's sync progress, if any.
    pub fn progress(&self, shard: ShardIndex) -> Result<Option<Progress>, StorageError> {
        self.read(|txn| {
            require(&txn.open_table(SHARD_STATUS)?, shard)?;
            let table = txn.open_table(PROGRESS)?;
            let key = shard.0.to_be_bytes();
            match table.get(shard.0)? {
                None => Ok(None),
                Some(v) => open_value(PROGRESS_NAME, &key, v.value()).map(Some),
            }
        })
    }

    /// One transfer batch, atomically: stores `slivers` (of type `ty`), adds `(ty, id)` to the
    /// pending-recovery set for every `skipped` id and, if `progress` is `Some`, sets progress
    /// (`None` leaves it unchanged).
    pub fn commit_sync_batch(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        slivers: &[(BlobId, Vec<u8>)],
        skipped: &[BlobId],
        progress: Option<Progress>,
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Batch, |txn| {
            require_in_write(txn, shard)?;
            let mut table = txn.open_table(SLIVERS)?;
            for (id, sliver) in slivers {
                insert_sliver(&mut table, shard, ty, id, sliver)?;
            }
            let mut pending = txn.open_table(PENDING)?;
            for id in skipped {
                insert_pending(&mut pending, shard, ty, id)?;
            }
            if let Some(p) = progress {
                put_progress(txn, shard, &p)?;
            }
            Ok(())
        })
    }

    /// The pending-recovery set of the shard, sorted (primary first, then by blob id).
    pub fn pending(&self, shard: ShardIndex) -> Result<Vec<(SliverType, BlobId)>, StorageError> {
        self.read(|txn| {
            require(&txn.open_table(SHARD_STATUS)?, shard)?;
            let table = txn.open_table(PENDING)?;
            let (lo, hi) = shard_bounds(shard);
            let mut out = Vec::new();
            for row in table.range::<&ShardBlobKey>(&lo..=&hi)? {
                let (k, v) = row?;
                let key = k.value();
                open(PENDING_NAME, key, v.value())?;
                out.push(split_shard_blob_key(key)?);
            }
            Ok(out)
        })
    }

    /// Adds entries to the pending-recovery set (one transaction).
    pub fn add_pending(
        &self,
        shard: ShardIndex,
        entries: &[(SliverType, BlobId)],
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Batch, |txn| {
            require_in_write(txn, shard)?;
            let mut table = txn.open_table(PENDING)?;
            for (ty, id) in entries {
                insert_pending(&mut table, shard, *ty, id)?;
            }
            Ok(())
        })
    }

    /// Removes one entry from the pending-recovery set (absent entries are ignored).
    pub fn remove_pending(
        &self,
        shard: ShardIndex,
        entry: (SliverType, BlobId),
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Delete, |txn| {
            require_in_write(txn, shard)?;
            let key = shard_blob_key(shard, entry.0, &entry.1);
            txn.open_table(PENDING)?.remove(&key)?;
            Ok(())
        })
    }

    /// S4: in one transaction, deletes progress and sets the status to `to` iff the current
    /// one is in `only_if`. Returns the status after the transaction.
    pub fn finish_sync(
        &self,
        shard: ShardIndex,
        only_if: &[ShardStatus],
        to: ShardStatus,
    ) -> Result<ShardStatus, StorageError> {
        self.write(WriteKind::Batch, |txn| {
            let mut table = txn.open_table(SHARD_STATUS)?;
            let current = require(&table, shard)?;
            txn.open_table(PROGRESS)?.remove(shard.0)?;
            if !only_if.contains(&current) {
                return Ok(current);
            }
            put_status(&mut table, shard, to)?;
            Ok(to)
        })
    }
}

fn insert_pending(
    table: &mut Table<'_, &'static ShardBlobKey, &'static [u8]>,
    shard: ShardIndex,
    ty: SliverType,
    id: &BlobId,
) -> Result<(), StorageError> {
    let key = shard_blob_key(shard, ty, id);
    let sealed = seal(PENDING_NAME, &key, &[]);
    table.insert(&key, sealed.as_slice())?;
    Ok(())
}

fn put_progress(
    txn: &WriteTransaction,
    shard: ShardIndex,
    progress: &Progress,
) -> Result<(), StorageError> {
    let sealed = seal_value(PROGRESS_NAME, &shard.0.to_be_bytes(), progress)?;
    txn.open_table(PROGRESS)?
        .insert(shard.0, sealed.as_slice())?;
    Ok(())
}
