//! Encoding a blob into sliver pairs, verifying one sliver, rebuilding one sliver from other
//! shards' slivers (with the consistency check that yields an inconsistency proof) and decoding.

use super::config::EncodingConfig;
use super::error::{BlobError, InconsistencyProof, RecoveryError};
use super::metadata::{hash_sliver, BlobMetadata, SliverPairHashes};
use crate::types::{BlobId, ShardIndex, SliverType};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use std::collections::BTreeMap;

/// A blob encoded for every shard: `primary[i]` and `secondary[i]` belong to shard `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedBlob {
    pub blob_id: BlobId,
    pub metadata: BlobMetadata,
    pub primary: Vec<Vec<u8>>,
    pub secondary: Vec<Vec<u8>>,
}

impl EncodedBlob {
    /// Shard `shard`'s sliver of type `ty`, if the shard is in range.
    pub fn sliver(&self, shard: ShardIndex, ty: SliverType) -> Option<&[u8]> {
        let slivers = match ty {
            SliverType::Primary => &self.primary,
            SliverType::Secondary => &self.secondary,
        };
        slivers.get(usize::from(shard.0)).map(Vec::as_slice)
    }
}

/// Encodes `data` into one primary and one secondary sliver per shard, with their metadata.
pub fn encode(cfg: &EncodingConfig, data: &[u8]) -> Result<EncodedBlob, BlobError> {
    let primary = encode_type(cfg, SliverType::Primary, data)?;
    let secondary = encode_type(cfg, SliverType::Secondary, data)?;
    Ok(assemble(cfg, data.len() as u64, primary, secondary))
}

/// What a byzantine client uploads: `bad_shard`'s primary sliver is replaced by garbage before
/// the metadata is computed, so that sliver verifies against the metadata but is not a symbol
/// of the code. Recovering any primary sliver of this blob yields an inconsistency proof.
pub fn encode_inconsistent(
    cfg: &EncodingConfig,
    data: &[u8],
    bad_shard: ShardIndex,
) -> Result<EncodedBlob, BlobError> {
    check_shard(cfg.n_shards(), bad_shard)?;
    let mut primary = encode_type(cfg, SliverType::Primary, data)?;
    let mask = blake3::hash(data);
    let mut mask_bytes = mask.as_bytes().iter().cycle();
    for byte in &mut primary[usize::from(bad_shard.0)] {
        *byte ^= mask_bytes.next().copied().unwrap_or(0xa5) | 1;
    }
    let secondary = encode_type(cfg, SliverType::Secondary, data)?;
    Ok(assemble(cfg, data.len() as u64, primary, secondary))
}

/// Checks a received sliver against the blob's metadata: shard in range, length, hash.
pub fn verify_sliver(
    metadata: &BlobMetadata,
    shard: ShardIndex,
    ty: SliverType,
    sliver: &[u8],
) -> Result<(), BlobError> {
    metadata.check_shape()?;
    check_shard(metadata.n_shards, shard)?;
    let expected = metadata.sliver_len(ty);
    if sliver.len() != expected {
        return Err(BlobError::SliverLength {
            shard,
            ty,
            expected,
            actual: sliver.len(),
        });
    }
    match metadata.sliver_hash(shard, ty) {
        Some(hash) if hash == hash_sliver(sliver) => Ok(()),
        _ => Err(BlobError::SliverHash { shard, ty }),
    }
}

/// Rebuilds `target`'s sliver of type `ty` from other shards' slivers of the same type.
///
/// Slivers that do not verify against `metadata` are ignored; `k(ty)` verified ones are needed
/// (the first `k` that verify, in input order, one per shard). The code word they determine is
/// checked against every hash of the metadata: any mismatch means the blob was encoded
/// inconsistently and yields [`RecoveryError::Inconsistent`].
pub fn recover_sliver(
    cfg: &EncodingConfig,
    metadata: &BlobMetadata,
    target: ShardIndex,
    ty: SliverType,
    symbols: &[(ShardIndex, Vec<u8>)],
) -> Result<Vec<u8>, RecoveryError> {
    check_config(cfg, metadata)?;
    check_shard(cfg.n_shards(), target)?;
    let need = usize::from(cfg.k(ty));
    let verified = verified_symbols(metadata, ty, symbols, need);
    if verified.len() < need {
        return Err(RecoveryError::NotEnoughSymbols {
            have: verified.len(),
            need,
        });
    }
    let mut word = rebuild_code_word(cfg, ty, &verified)?;
    if first_mismatch(metadata, ty, &word, &verified).is_some() {
        return Err(RecoveryError::Inconsistent(InconsistencyProof {
            blob_id: metadata.blob_id(),
            shard: target,
            ty,
        }));
    }
    Ok(std::mem::take(&mut word[usize::from(target.0)]))
}

/// Rebuilds the blob from at least `k(primary)` primary slivers that verify against `metadata`
/// (others are ignored). Fails with [`BlobError::Inconsistent`] if the blob was encoded wrongly.
pub fn decode(
    cfg: &EncodingConfig,
    metadata: &BlobMetadata,
    symbols: &[(ShardIndex, Vec<u8>)],
) -> Result<Vec<u8>, BlobError> {
    let ty = SliverType::Primary;
    check_config(cfg, metadata)?;
    let k = usize::from(cfg.k(ty));
    let verified = verified_symbols(metadata, ty, symbols, k);
    if verified.len() < k {
        return Err(BlobError::NotEnoughSymbols {
            have: verified.len(),
            need: k,
        });
    }
    let word = rebuild_code_word(cfg, ty, &verified)?;
    if let Some(shard) = first_mismatch(metadata, ty, &word, &verified) {
        return Err(BlobError::Inconsistent(InconsistencyProof {
            blob_id: metadata.blob_id(),
            shard,
            ty,
        }));
    }
    let mut data: Vec<u8> = word.into_iter().take(k).flatten().collect();
    data.truncate(usize::try_from(metadata.unencoded_length).unwrap_or(usize::MAX));
    Ok(data)
}

fn check_shard(n_shards: u16, shard: ShardIndex) -> Result<(), BlobError> {
    if shard.0 >= n_shards {
        return Err(BlobError::ShardOutOfRange { shard, n_shards });
    }
    Ok(())
}

fn check_config(cfg: &EncodingConfig, metadata: &BlobMetadata) -> Result<(), BlobError> {
    metadata.check_shape()?;
    if cfg.n_shards() != metadata.n_shards {
        return Err(BlobError::ConfigMismatch {
            config: cfg.n_shards(),
            metadata: metadata.n_shards,
        });
    }
    Ok(())
}

/// All `n` symbols of the code of `ty`: the data split into `k` zero-padded pieces, then parity.
fn encode_type(
    cfg: &EncodingConfig,
    ty: SliverType,
    data: &[u8],
) -> Result<Vec<Vec<u8>>, BlobError> {
    if data.is_empty() {
        return Err(BlobError::EmptyBlob);
    }
    let size = cfg.symbol_size(ty, data.len() as u64);
    let k = usize::from(cfg.k(ty));
    let mut shards: Vec<Vec<u8>> = (0..k).map(|i| piece(data, i, k, size)).collect();
    let parity = parity(cfg, ty, size, &shards)?;
    shards.extend(parity);
    Ok(shards)
}

/// The `n - k` parity symbols of the `k` data symbols `data` (each `size` bytes).
fn parity(
    cfg: &EncodingConfig,
    ty: SliverType,
    size: usize,
    data: &[Vec<u8>],
) -> Result<Vec<Vec<u8>>, BlobError> {
    let k = usize::from(cfg.k(ty));
    let mut encoder =
        ReedSolomonEncoder::new(k, usize::from(cfg.n_shards()) - k, size).map_err(coding_error)?;
    for shard in data {
        encoder.add_original_shard(shard).map_err(coding_error)?;
    }
    let result = encoder.encode().map_err(coding_error)?;
    Ok(result.recovery_iter().map(<[u8]>::to_vec).collect())
}

fn coding_error(e: reed_solomon_simd::Error) -> BlobError {
    BlobError::Coding(e.to_string())
}

/// Data piece `i < k`, zero-padded to `size`.
fn piece(data: &[u8], i: usize, k: usize, size: usize) -> Vec<u8> {
    debug_assert!(i < k);
    let mut out = vec![0; size];
    let start = (i * size).min(data.len());
    let end = (start + size).min(data.len());
    out[..end - start].copy_from_slice(&data[start..end]);
    out
}

fn assemble(
    cfg: &EncodingConfig,
    unencoded_length: u64,
    primary: Vec<Vec<u8>>,
    secondary: Vec<Vec<u8>>,
) -> EncodedBlob {
    let hashes = primary
        .iter()
        .zip(&secondary)
        .map(|(p, s)| SliverPairHashes {
            primary: hash_sliver(p),
            secondary: hash_sliver(s),
        })
        .collect();
    let metadata = BlobMetadata {
        unencoded_length,
        n_shards: cfg.n_shards(),
        hashes,
    };
    EncodedBlob {
        blob_id: metadata.blob_id(),
        metadata,
        primary,
        secondary,
    }
}

/// Up to `want` symbols that verify against the metadata (in input order, one per shard), keyed
/// by shard index. Stops verifying once `want` are found.
fn verified_symbols<'a>(
    metadata: &BlobMetadata,
    ty: SliverType,
    symbols: &'a [(ShardIndex, Vec<u8>)],
    want: usize,
) -> BTreeMap<u16, &'a [u8]> {
    let mut out = BTreeMap::new();
    for (shard, sliver) in symbols {
        if out.len() == want {
            break;
        }
        if !out.contains_key(&shard.0) && verify_sliver(metadata, *shard, ty, sliver).is_ok() {
            out.insert(shard.0, sliver.as_slice());
        }
    }
    out
}

/// The full code word determined by `k` verified symbols (of equal length, the metadata's
/// sliver length): missing data symbols are decoded, then the parity is re-encoded.
fn rebuild_code_word(
    cfg: &EncodingConfig,
    ty: SliverType,
    verified: &BTreeMap<u16, &[u8]>,
) -> Result<Vec<Vec<u8>>, BlobError> {
    let n = usize::from(cfg.n_shards());
    let k = usize::from(cfg.k(ty));
    let size = verified.values().next().map_or(0, |s| s.len());
    let mut data: Vec<Option<Vec<u8>>> = vec![None; k];
    for (&index, sliver) in verified.range(..cfg.k(ty)) {
        data[usize::from(index)] = Some(sliver.to_vec());
    }
    if data.iter().any(Option::is_none) {
        let mut decoder = ReedSolomonDecoder::new(k, n - k, size).map_err(coding_error)?;
        for (&index, sliver) in verified {
            let index = usize::from(index);
            if index < k {
                decoder.add_original_shard(index, sliver)
            } else {
                decoder.add_recovery_shard(index - k, sliver)
            }
            .map_err(coding_error)?;
        }
        let restored = decoder.decode().map_err(coding_error)?;
        for (index, sliver) in restored.restored_original_iter() {
            if let Some(slot) = data.get_mut(index) {
                *slot = Some(sliver.to_vec());
            }
        }
    }
    let data: Vec<Vec<u8>> = data
        .into_iter()
        .map(|s| s.ok_or_else(|| BlobError::Coding("data symbol left undecoded".into())))
        .collect::<Result<_, _>>()?;
    let parity = parity(cfg, ty, size, &data)?;
    let mut word = data;
    word.extend(parity);
    Ok(word)
}

/// The first rebuilt (not given) shard whose symbol does not match its metadata hash. The
/// given ones were verified already.
fn first_mismatch(
    metadata: &BlobMetadata,
    ty: SliverType,
    word: &[Vec<u8>],
    given: &BTreeMap<u16, &[u8]>,
) -> Option<ShardIndex> {
    word.iter()
        .zip(&metadata.hashes)
        .enumerate()
        .filter(|(i, _)| !given.contains_key(&(*i as u16)))
        .find(|(_, (sliver, hashes))| hash_sliver(sliver) != *hashes.get(ty))
        .map(|(i, _)| ShardIndex(i as u16))
}
