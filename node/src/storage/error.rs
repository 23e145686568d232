//! The typed error of every storage operation.

/// Why a storage operation failed. Never a panic: bad bytes become `Codec` or `Corrupted`, a
/// panic inside redb becomes `Corrupted`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The disk failed (EIO, a detected corrupted read, an injected `return` fail point). A
    /// write that failed this way was applied entirely or not at all.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// A value failed its checksum, the database failed an integrity check, or redb panicked on
    /// a bad page.
    #[error("storage corrupted: {0}")]
    Corrupted(String),
    /// The shard has no storage on this node.
    #[error("no storage for shard {0}")]
    ShardNotFound(crate::types::ShardIndex),
    /// A value's bytes (with a valid checksum) do not decode.
    #[error("cannot decode stored value: {0}")]
    Codec(String),
    /// A `crash` fail point fired around a write (the node is going down), or the simulated
    /// disk crashed under this handle.
    #[error("crashed (storage crash point or simulated disk crash)")]
    Crashed,
}

impl StorageError {
    /// Whether the database handle must be dropped and reopened before the next operation
    /// (redb refuses every operation after an I/O error until it is reopened).
    pub(crate) fn needs_reopen(&self) -> bool {
        matches!(self, StorageError::Io(_) | StorageError::Corrupted(_))
    }
}

impl From<redb::Error> for StorageError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Corrupted(msg) => StorageError::Corrupted(msg),
            redb::Error::Io(io) => StorageError::Io(io.to_string()),
            e @ (redb::Error::TableTypeMismatch { .. }
            | redb::Error::TypeDefinitionChanged { .. }
            | redb::Error::UpgradeRequired(_)
            | redb::Error::TableIsMultimap(_)) => StorageError::Corrupted(e.to_string()),
            other => StorageError::Io(other.to_string()),
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StorageError {
            fn from(e: $t) -> Self {
                redb::Error::from(e).into()
            }
        })*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
