//! Blob metadata (unencoded length, shard count, one hash per sliver), the blob id that commits
//! to it, and metadata verification.

use super::config::{symbol_size_for, MAX_SHARDS, MIN_SHARDS};
use super::error::BlobError;
use crate::types::{BlobId, ShardIndex, SliverType};
use serde::{Deserialize, Serialize};

/// The hashes of one shard's two slivers.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliverPairHashes {
    pub primary: [u8; 32],
    pub secondary: [u8; 32],
}

impl SliverPairHashes {
    /// The hash of the sliver of type `ty`.
    pub fn get(&self, ty: SliverType) -> &[u8; 32] {
        match ty {
            SliverType::Primary => &self.primary,
            SliverType::Secondary => &self.secondary,
        }
    }
}

/// What the blob id commits to. `hashes[i]` belongs to shard `i`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMetadata {
    pub unencoded_length: u64,
    pub n_shards: u16,
    pub hashes: Vec<SliverPairHashes>,
}

/// The hash of a sliver as the metadata records it (blake3).
pub fn hash_sliver(sliver: &[u8]) -> [u8; 32] {
    *blake3::hash(sliver).as_bytes()
}

impl BlobMetadata {
    /// blake3 of a fixed byte layout of the metadata (independent of the wire and table
    /// encodings): `u64 LE unencoded_length, u16 LE n_shards, u64 LE hashes.len()`, then each
    /// pair's primary and secondary hash.
    pub fn blob_id(&self) -> BlobId {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.unencoded_length.to_le_bytes());
        hasher.update(&self.n_shards.to_le_bytes());
        hasher.update(&(self.hashes.len() as u64).to_le_bytes());
        for pair in &self.hashes {
            hasher.update(&pair.primary);
            hasher.update(&pair.secondary);
        }
        BlobId(*hasher.finalize().as_bytes())
    }

    /// Checks that the metadata is well formed and hashes to `id`.
    pub fn verify(&self, id: &BlobId) -> Result<(), BlobError> {
        self.check_shape()?;
        let actual = self.blob_id();
        if actual != *id {
            return Err(BlobError::BlobIdMismatch {
                expected: *id,
                actual,
            });
        }
        Ok(())
    }

    /// Shard count in range, one hash pair per shard, non-empty blob.
    pub fn check_shape(&self) -> Result<(), BlobError> {
        if !(MIN_SHARDS..=MAX_SHARDS).contains(&self.n_shards) {
            return Err(BlobError::InvalidShardCount(self.n_shards));
        }
        if self.hashes.len() != usize::from(self.n_shards) {
            return Err(BlobError::MalformedMetadata(format!(
                "{} hash pairs for {} shards",
                self.hashes.len(),
                self.n_shards
            )));
        }
        if self.unencoded_length == 0 {
            return Err(BlobError::MalformedMetadata("unencoded length 0".into()));
        }
        Ok(())
    }

    /// The recorded hash of `shard`'s sliver of type `ty`, if the shard is in range.
    pub fn sliver_hash(&self, shard: ShardIndex, ty: SliverType) -> Option<[u8; 32]> {
        self.hashes.get(usize::from(shard.0)).map(|p| *p.get(ty))
    }

    /// The length every sliver of type `ty` of this blob has.
    pub fn sliver_len(&self, ty: SliverType) -> usize {
        symbol_size_for(self.n_shards, ty, self.unencoded_length)
    }
}
