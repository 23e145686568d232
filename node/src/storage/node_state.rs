//! Node-level state: the node status (blind overwrite, spec 1.1) and the event cursor.

use super::tables::{
    open_value, seal_value, KEY_EVENT_CURSOR, KEY_GAINED_EPOCH, KEY_NODE_STATUS,
    KEY_UNANSWERED_ATTESTATION, NODE, NODE_NAME,
};
use super::{Storage, StorageError, WriteKind};
use crate::status::NodeStatus;
use redb::{ReadableTable, WriteTransaction};
use serde::{de::DeserializeOwned, Serialize};

impl Storage {
    /// The stored node status; `None` before the first write.
    pub fn node_status(&self) -> Result<Option<NodeStatus>, StorageError> {
        self.read_node(KEY_NODE_STATUS)
    }

    /// Blindly overwrites the node status.
    pub fn set_node_status(&self, status: NodeStatus) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            put_node(txn, KEY_NODE_STATUS, &status)
        })
    }

    /// The next chain event to process; 0 if never set.
    pub fn event_cursor(&self) -> Result<u64, StorageError> {
        Ok(self.read_node(KEY_EVENT_CURSOR)?.unwrap_or(0))
    }

    pub fn set_event_cursor(&self, cursor: u64) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            put_node(txn, KEY_EVENT_CURSOR, &cursor)
        })
    }

    /// The last epoch whose epoch change created the storage of its gained shards (0: none).
    pub fn gained_epoch(&self) -> Result<u64, StorageError> {
        Ok(self.read_node(KEY_GAINED_EPOCH)?.unwrap_or(0))
    }

    pub fn set_gained_epoch(&self, epoch: u64) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            put_node(txn, KEY_GAINED_EPOCH, &epoch)
        })
    }

    /// The epoch of the last `epoch_sync_done` sent and not yet answered by the chain (an
    /// outbox: a restart sends it again).
    pub fn unanswered_attestation(&self) -> Result<Option<u64>, StorageError> {
        Ok(self
            .read_node::<Option<u64>>(KEY_UNANSWERED_ATTESTATION)?
            .flatten())
    }

    pub fn set_unanswered_attestation(&self, epoch: Option<u64>) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            put_node(txn, KEY_UNANSWERED_ATTESTATION, &epoch)
        })
    }

    fn read_node<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        self.read(|txn| get_node(&txn.open_table(NODE)?, key))
    }

    /// Test hook: stores `payload` under a node key with a valid checksum, bypassing encoding.
    #[cfg(test)]
    pub(crate) fn put_raw_node_payload(
        &self,
        key: &str,
        payload: &[u8],
    ) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            let sealed = super::tables::seal(NODE_NAME, key.as_bytes(), payload);
            txn.open_table(NODE)?.insert(key, sealed.as_slice())?;
            Ok(())
        })
    }

    /// Test hook: stores raw bytes (no checksum) under a node key.
    #[cfg(test)]
    pub(crate) fn put_raw_node_unsealed(&self, key: &str, raw: &[u8]) -> Result<(), StorageError> {
        self.write(WriteKind::Put, |txn| {
            txn.open_table(NODE)?.insert(key, raw)?;
            Ok(())
        })
    }
}

pub(crate) fn get_node<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StorageError> {
    match table.get(key)? {
        None => Ok(None),
        Some(v) => open_value(NODE_NAME, key.as_bytes(), v.value()).map(Some),
    }
}

fn put_node<T: Serialize>(
    txn: &WriteTransaction,
    key: &str,
    value: &T,
) -> Result<(), StorageError> {
    let sealed = seal_value(NODE_NAME, key.as_bytes(), value)?;
    txn.open_table(NODE)?.insert(key, sealed.as_slice())?;
    Ok(())
}
