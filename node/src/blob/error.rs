//! Typed errors of encoding, verification, decoding and recovery, and the inconsistency proof.

use crate::types::{BlobId, ShardIndex, SliverType};
use serde::{Deserialize, Serialize};

/// Why a blob could not be encoded or decoded, or why metadata or a sliver failed verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error(
        "invalid shard count {0} (expected {min}..={max})",
        min = super::MIN_SHARDS,
        max = super::MAX_SHARDS
    )]
    InvalidShardCount(u16),
    #[error("cannot encode an empty blob")]
    EmptyBlob,
    #[error("encoding config has {config} shards but the metadata has {metadata}")]
    ConfigMismatch { config: u16, metadata: u16 },
    #[error("malformed metadata: {0}")]
    MalformedMetadata(String),
    #[error("metadata hashes to blob id {actual}, expected {expected}")]
    BlobIdMismatch { expected: BlobId, actual: BlobId },
    #[error("shard {shard} out of range (n_shards = {n_shards})")]
    ShardOutOfRange { shard: ShardIndex, n_shards: u16 },
    #[error("{ty} sliver of shard {shard} has length {actual}, expected {expected}")]
    SliverLength {
        shard: ShardIndex,
        ty: SliverType,
        expected: usize,
        actual: usize,
    },
    #[error("{ty} sliver of shard {shard} does not match its metadata hash")]
    SliverHash { shard: ShardIndex, ty: SliverType },
    #[error("not enough verified slivers to decode: have {have}, need {need}")]
    NotEnoughSymbols { have: usize, need: usize },
    #[error("{0}")]
    Inconsistent(InconsistencyProof),
    #[error("erasure code failure: {0}")]
    Coding(String),
}

/// Evidence that a blob was encoded inconsistently: rebuilding `shard`'s sliver of type `ty`
/// from slivers that verify against the metadata produced slivers that do not.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InconsistencyProof {
    pub blob_id: BlobId,
    /// The shard whose sliver was being rebuilt (for [`super::decode`]: the first shard whose
    /// re-encoded sliver mismatched).
    pub shard: ShardIndex,
    pub ty: SliverType,
}

impl std::fmt::Display for InconsistencyProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "blob {} is inconsistently encoded ({} sliver of shard {})",
            self.blob_id, self.ty, self.shard
        )
    }
}

/// Why one sliver could not be rebuilt from other shards' slivers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("not enough verified symbols: have {have}, need {need}")]
    NotEnoughSymbols { have: usize, need: usize },
    #[error("{0}")]
    Inconsistent(InconsistencyProof),
    #[error(transparent)]
    Blob(#[from] BlobError),
}
