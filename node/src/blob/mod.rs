//! Blobs: Reed-Solomon erasure coding (GF(2^16), `reed-solomon-simd`) of a blob into one
//! primary and one secondary sliver per shard, the blob metadata that commits to every sliver
//! (one blake3 hash per sliver), the blob id (the hash of the metadata), sliver verification,
//! recovery of one sliver from other shards' slivers (with inconsistency detection) and decoding.
//!
//! The code: with `n` shards and `f = (n - 1) / 3`, the primary code has `k = n - 2f` data
//! symbols and the secondary code `k = n - f`. Each code splits the blob into `k` equal,
//! zero-padded pieces (symbol size `ceil(len / k)` rounded up to an even number of bytes, at
//! least two) and adds `n - k` parity symbols; shard `i` stores symbol `i` of each code as its
//! primary and secondary sliver. Shard counts from [`MIN_SHARDS`] (4) to [`MAX_SHARDS`]
//! (32,768) are supported; [`EncodingConfig::new`] refuses others with a typed error.

mod coding;
mod config;
mod error;
mod metadata;

#[cfg(test)]
mod tests;

pub use coding::{decode, encode, encode_inconsistent, recover_sliver, verify_sliver, EncodedBlob};
pub use config::{EncodingConfig, MAX_SHARDS, MIN_SHARDS};
pub use error::{BlobError, InconsistencyProof, RecoveryError};
pub use metadata::{hash_sliver, BlobMetadata, SliverPairHashes};
