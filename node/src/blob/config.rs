//! Encoding parameters: the shard count and its supported range, the fault bound `f`, the
//! data-symbol count `k` of each code and the symbol sizes.

use super::error::BlobError;
use crate::types::SliverType;
use reed_solomon_simd::ReedSolomonEncoder;

/// Smallest supported shard count (`f >= 1`, so each code has at least one parity symbol).
pub const MIN_SHARDS: u16 = 4;
/// Largest supported shard count: `reed-solomon-simd` codes any combination of up to 32,768
/// data and up to 32,768 parity symbols, and both codes stay within that up to here.
pub const MAX_SHARDS: u16 = 32_768;

/// The erasure-code parameters of a system with `n_shards` shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodingConfig {
    n_shards: u16,
}

impl EncodingConfig {
    /// A config for `n_shards` shards, [`MIN_SHARDS`]` <= n_shards <= `[`MAX_SHARDS`].
    pub fn new(n_shards: u16) -> Result<Self, BlobError> {
        if !(MIN_SHARDS..=MAX_SHARDS).contains(&n_shards) {
            return Err(BlobError::InvalidShardCount(n_shards));
        }
        for ty in SliverType::ALL {
            let k = usize::from(k_for(n_shards, ty));
            if !ReedSolomonEncoder::supports(k, usize::from(n_shards) - k) {
                return Err(BlobError::InvalidShardCount(n_shards));
            }
        }
        Ok(Self { n_shards })
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

/// `ceil(len / k)` rounded up to an even number (the code works on 16-bit symbols), at least
/// 2. Saturates on absurd lengths (only metadata can claim those; such metadata then fails
/// every sliver-length check).
pub(crate) fn symbol_size_for(n_shards: u16, ty: SliverType, unencoded_length: u64) -> usize {
    let k = u64::from(k_for(n_shards, ty).max(1));
    let size = unencoded_length.div_ceil(k).max(1).saturating_add(1) & !1;
    usize::try_from(size).unwrap_or(usize::MAX & !1)
}
