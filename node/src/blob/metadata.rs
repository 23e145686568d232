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
    /// Encoded as one byte string of 64 bytes per pair: one copy to decode instead of a call
    /// per byte, and metadata of 1,000 shards stays within 64 KiB (a redb page order).
    #[serde(with = "pair_bytes")]
    pub hashes: Vec<SliverPairHashes>,
}

/// Serde of the hash pairs as one byte string (`primary | secondary` per pair); a sequence of
/// bytes is accepted too (self-describing formats).
mod pair_bytes {
    use super::SliverPairHashes;
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    const PAIR: usize = 64;

    pub fn serialize<S: Serializer>(hashes: &[SliverPairHashes], s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(hashes.len() * PAIR);
        for pair in hashes {
            bytes.extend_from_slice(&pair.primary);
            bytes.extend_from_slice(&pair.secondary);
        }
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SliverPairHashes>, D::Error> {
        d.deserialize_bytes(PairsVisitor)
    }

    fn pairs<E: Error>(bytes: &[u8]) -> Result<Vec<SliverPairHashes>, E> {
        if !bytes.len().is_multiple_of(PAIR) {
            return Err(E::invalid_length(bytes.len(), &"a multiple of 64 bytes"));
        }
        Ok(bytes
            .chunks_exact(PAIR)
            .map(|c| {
                let mut pair = SliverPairHashes {
                    primary: [0; 32],
                    secondary: [0; 32],
                };
                pair.primary.copy_from_slice(&c[..32]);
                pair.secondary.copy_from_slice(&c[32..]);
                pair
            })
            .collect())
    }

    struct PairsVisitor;

    impl<'de> Visitor<'de> for PairsVisitor {
        type Value = Vec<SliverPairHashes>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("hash pairs as a byte string of 64 bytes per pair")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            pairs(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            pairs(&bytes)
        }
    }
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
