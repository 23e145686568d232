//! Shard storage and shard status (spec section 3): a shard's storage exists iff it has a status
//! row; creating it writes `None` (S1), dropping it deletes every per-shard row (S8).

use super::tables::{
    open_value, seal_value, shard_bounds, ShardBlobKey, PENDING, PROGRESS, SHARD_STATUS,
    SHARD_STATUS_NAME, SLIVERS,
};
use super::{Storage, StorageError, WriteKind};
use crate::status::ShardStatus;
use crate::types::ShardIndex;
use redb::{ReadableTable, Table, WriteTransaction};
use std::collections::BTreeSet;

impl Storage {
    /// Every shard with local storage.
    pub fn shards(&self) -> Result<BTreeSet<ShardIndex>, StorageError> {
        self.read(|txn| {
            let table = txn.open_table(SHARD_STATUS)?;
            let mut out = BTreeSet::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let shard = ShardIndex(k.value());
                open_value::<ShardStatus>(SHARD_STATUS_NAME, &shard.0.to_be_bytes(), v.value())?;
                out.insert(shard);
            }
            Ok(out)
        })
    }

    pub fn has_shard(&self, shard: ShardIndex) -> Result<bool, StorageError> {
        Ok(self.shard_status(shard)?.is_some())
    }

    /// S1: creates the shard's storage with status `None` if it has none. Returns whether it
    /// created it.
    pub fn create_shard(&self, shard: ShardIndex) -> Result<bool, StorageError> {
        self.write(WriteKind::CreateShard, |txn| {
            let mut table = txn.open_table(SHARD_STATUS)?;
            if status_in(&table, shard)?.is_some() {
                return Ok(false);
            }
            put_status(&mut table, shard, ShardStatus::None)?;
            Ok(true)
        })
    }

    /// S8: deletes the shard's storage (status, progress, pending set, both sliver maps).
    /// Dropping a shard without storage is a no-op.
    pub fn drop_shard(&self, shard: ShardIndex) -> Result<(), StorageError> {
        self.write(WriteKind::Delete, |txn| {
            txn.open_table(SHARD_STATUS)?.remove(shard.0)?;
            txn.open_table(PROGRESS)?.remove(shard.0)?;
            let (lo, hi) = shard_bounds(shard);
            txn.open_table(PENDING)?
                .retain_in::<&ShardBlobKey, _>(&lo..=&hi, |_, _| false)?;
            txn.open_table(SLIVERS)?
                .retain_in::<&ShardBlobKey, _>(&lo..=&hi, |_, _| false)?;
            Ok(())
        })
    }

    /// The shard's status; `None` (the Option) if it has no storage.
    pub fn shard_status(&self, shard: ShardIndex) -> Result<Option<ShardStatus>, StorageError> {
        self.read(|txn| status_in(&txn.open_table(SHARD_STATUS)?, shard))
    }

    /// Unconditional status write (S6, S7). `ShardNotFound` without storage.
    pub fn set_shard_status(
        &self,
        shard: ShardIndex,
        status: ShardStatus,
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            let mut table = txn.open_table(SHARD_STATUS)?;
            require(&table, shard)?;
            put_status(&mut table, shard, status)
        })
    }

    /// Conditional status write (S3, S5): writes `to` only if the current status is in
    /// `expected`, read and write in one transaction. Returns whether it wrote.
    pub fn set_shard_status_if(
        &self,
        shard: ShardIndex,
        expected: &[ShardStatus],
        to: ShardStatus,
    ) -> Result<bool, StorageError> {
        self.write(WriteKind::Put, |txn| {
            let mut table = txn.open_table(SHARD_STATUS)?;
            if !expected.contains(&require(&table, shard)?) {
                return Ok(false);
            }
            put_status(&mut table, shard, to)?;
            Ok(true)
        })
    }
}

/// The status of `shard` in an open status table.
pub(crate) fn status_in(
    table: &impl ReadableTable<u16, &'static [u8]>,
    shard: ShardIndex,
) -> Result<Option<ShardStatus>, StorageError> {
    match table.get(shard.0)? {
        None => Ok(None),
        Some(v) => open_value(SHARD_STATUS_NAME, &shard.0.to_be_bytes(), v.value()).map(Some),
    }
}

/// The status of `shard`, or `ShardNotFound`.
pub(crate) fn require(
    table: &impl ReadableTable<u16, &'static [u8]>,
    shard: ShardIndex,
) -> Result<ShardStatus, StorageError> {
    status_in(table, shard)?.ok_or(StorageError::ShardNotFound(shard))
}

/// `ShardNotFound` unless `shard` has storage, inside a write transaction.
pub(crate) fn require_in_write(
    txn: &WriteTransaction,
    shard: ShardIndex,
) -> Result<ShardStatus, StorageError> {
    require(&txn.open_table(SHARD_STATUS)?, shard)
}

pub(crate) fn put_status(
    table: &mut Table<'_, u16, &'static [u8]>,
    shard: ShardIndex,
    status: ShardStatus,
) -> Result<(), StorageError> {
    let sealed = seal_value(SHARD_STATUS_NAME, &shard.0.to_be_bytes(), &status)?;
    table.insert(shard.0, sealed.as_slice())?;
    Ok(())
}
