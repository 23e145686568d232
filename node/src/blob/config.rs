//! Encoding parameters: the shard count, the fault bound `f`, the data-symbol count `k` of each
//! code, symbol sizes, and the two Reed-Solomon coders built once per config.

use super::error::BlobError;
use crate::types::SliverType;
use reed_solomon_erasure::galois_8::ReedSolomon;

/// Smallest supported shard count (`f >= 1`).
pub const MIN_SHARDS: u16 = 4;
/// Largest supported shard count (GF(2^8) has 256 elements).
pub const MAX_SHARDS: u16 = 255;

/// The erasure-code parameters of a system with `n_shards` shards.
#[derive(Clone, Debug)]
pub struct EncodingConfig {
    n_shards: u16,
    primary: ReedSolomon,
    secondary: ReedSolomon,
}

impl PartialEq for EncodingConfig {
    fn eq(&self, other: &Self) -> bool {
        self.n_shards == other.n_shards
    }
}

impl Eq for EncodingConfig {}

impl EncodingConfig {
    /// A config for `n_shards` shards, `4 <= n_shards <= 255`.
    pub fn new(n_shards: u16) -> Result<Self, BlobError> {
        if !(MIN_SHARDS..=MAX_SHARDS).contains(&n_shards) {
            return Err(BlobError::InvalidShardCount(n_shards));
        }
        Ok(Self {
            n_shards,
            primary: coder(n_shards, SliverType::Primary)?,
            secondary: coder(n_shards, SliverType::Secondary)?,
        })
    }

    pub fn n_shards(&self) -> u16 {
        self.n_shards
    }

    /// The number of faulty shards tolerated: `(n - 1) / 3`.
    pub fn f(&self) -> u16 {
        max_faulty(self.n_shards)
    }

    /// Data symbols of the code of `ty`: primary `n - 2f`, secondary `n - f`.
    pub fn k(&self, ty: SliverType) -> u16 {
        k_for(self.n_shards, ty)
    }

    /// Size of one sliver of type `ty` of a blob of `unencoded_length` bytes.
    pub fn symbol_size(&self, ty: SliverType, unencoded_length: u64) -> usize {
        symbol_size_for(self.n_shards, ty, unencoded_length)
    }

    pub(crate) fn coder(&self, ty: SliverType) -> &ReedSolomon {
        match ty {
            SliverType::Primary => &self.primary,
            SliverType::Secondary => &self.secondary,
        }
    }
}

fn coder(n_shards: u16, ty: SliverType) -> Result<ReedSolomon, BlobError> {
    let k = usize::from(k_for(n_shards, ty));
    ReedSolomon::new(k, usize::from(n_shards) - k).map_err(|e| BlobError::Coding(format!("{e:?}")))
}

pub(crate) fn max_faulty(n_shards: u16) -> u16 {
    n_shards.saturating_sub(1) / 3
}

pub(crate) fn k_for(n_shards: u16, ty: SliverType) -> u16 {
    let f = max_faulty(n_shards);
    match ty {
        SliverType::Primary => n_shards - 2 * f,
        SliverType::Secondary => n_shards - f,
    }
}

/// `ceil(len / k)`, at least 1. Saturates on absurd lengths (only metadata can claim those;
/// such metadata then fails every sliver-length check).
pub(crate) fn symbol_size_for(n_shards: u16, ty: SliverType, unencoded_length: u64) -> usize {
    let k = u64::from(k_for(n_shards, ty).max(1));
    let size = unencoded_length.div_ceil(k).max(1);
    usize::try_from(size).unwrap_or(usize::MAX)
}
