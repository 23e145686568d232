//! Per-blob tables: blob metadata (filled in by metadata recovery) and blob info (what the
//! chain says about each blob; yields the certified list before an epoch).

use super::tables::{open_value, seal_value, BLOB_INFO, BLOB_INFO_NAME, METADATA, METADATA_NAME};
use super::{Storage, StorageError, WriteKind};
use crate::blob::BlobMetadata;
use crate::types::{BlobId, BlobInfo, Epoch};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

type BlobTable = TableDefinition<'static, &'static [u8; 32], &'static [u8]>;

impl Storage {
    pub fn put_metadata(&self, id: BlobId, metadata: &BlobMetadata) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            put_blob(txn, METADATA, METADATA_NAME, &id, metadata)
        })
    }

    /// Stores many blobs' metadata in one transaction.
    pub fn put_metadata_batch(
        &self,
        entries: &[(BlobId, BlobMetadata)],
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Batch, |txn| {
            for (id, m) in entries {
                put_blob(txn, METADATA, METADATA_NAME, id, m)?;
            }
            Ok(())
        })
    }

    pub fn metadata(&self, id: BlobId) -> Result<Option<BlobMetadata>, StorageError> {
        self.get_blob(METADATA, METADATA_NAME, &id)
    }

    pub fn has_metadata(&self, id: BlobId) -> Result<bool, StorageError> {
        Ok(self.metadata(id)?.is_some())
    }

    /// Deletes every blob's metadata.
    pub fn clear_metadata(&self) -> Result<(), StorageError> {
        self.write(WriteKind::Delete, |txn| {
            txn.open_table(METADATA)?.retain(|_, _| false)?;
            Ok(())
        })
    }

    /// Ids of every blob with metadata, ascending.
    pub fn metadata_ids(&self) -> Result<Vec<BlobId>, StorageError> {
        let all: Vec<(BlobId, BlobMetadata)> = self.scan_blobs(METADATA, METADATA_NAME)?;
        Ok(all.into_iter().map(|(id, _)| id).collect())
    }

    pub fn put_blob_info(&self, id: BlobId, info: &BlobInfo) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            put_blob(txn, BLOB_INFO, BLOB_INFO_NAME, &id, info)
        })
    }

    /// Stores many blobs' info in one transaction.
    pub fn put_blob_info_batch(&self, entries: &[(BlobId, BlobInfo)]) -> Result<(), StorageError> {
        self.write(WriteKind::Batch, |txn| {
            for (id, info) in entries {
                put_blob(txn, BLOB_INFO, BLOB_INFO_NAME, id, info)?;
            }
            Ok(())
        })
    }

    pub fn blob_info(&self, id: BlobId) -> Result<Option<BlobInfo>, StorageError> {
        self.get_blob(BLOB_INFO, BLOB_INFO_NAME, &id)
    }

    /// Every blob's info, ascending by blob id.
    pub fn blob_infos(&self) -> Result<Vec<(BlobId, BlobInfo)>, StorageError> {
        self.scan_blobs(BLOB_INFO, BLOB_INFO_NAME)
    }

    /// Deletes every blob's info (N2).
    pub fn clear_blob_info(&self) -> Result<(), StorageError> {
        self.write(WriteKind::Delete, |txn| {
            txn.open_table(BLOB_INFO)?.retain(|_, _| false)?;
            Ok(())
        })
    }

    /// The certified list before `epoch` (`BlobInfo::is_certified_before`), ascending.
    pub fn certified_before(&self, epoch: Epoch) -> Result<Vec<BlobId>, StorageError> {
        Ok(self
            .blob_infos()?
            .into_iter()
            .filter(|(_, info)| info.is_certified_before(epoch))
            .map(|(id, _)| id)
            .collect())
    }

    fn get_blob<T: DeserializeOwned>(
        &self,
        def: BlobTable,
        name: &str,
        id: &BlobId,
    ) -> Result<Option<T>, StorageError> {
        self.read(|txn| match txn.open_table(def)?.get(&id.0)? {
            None => Ok(None),
            Some(v) => open_value(name, &id.0, v.value()).map(Some),
        })
    }

    fn scan_blobs<T: DeserializeOwned>(
        &self,
        def: BlobTable,
        name: &str,
    ) -> Result<Vec<(BlobId, T)>, StorageError> {
        self.read(|txn| {
            let mut out = Vec::new();
            for row in txn.open_table(def)?.iter()? {
                let (k, v) = row?;
                let id = BlobId(*k.value());
                out.push((id, open_value(name, &id.0, v.value())?));
            }
            Ok(out)
        })
    }
}

fn put_blob<T: Serialize>(
    txn: &WriteTransaction,
    def: BlobTable,
    name: &str,
    id: &BlobId,
    value: &T,
) -> Result<(), StorageError> {
    let sealed = seal_value(name, &id.0, value)?;
    txn.open_table(def)?.insert(&id.0, sealed.as_slice())?;
    Ok(())
}
