//! Unit tests of the erasure coding, verification, recovery and decoding.

use super::*;
use crate::types::{BlobId, ShardIndex, SliverType};

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn symbols(blob: &EncodedBlob, ty: SliverType) -> Vec<(ShardIndex, Vec<u8>)> {
    (0..blob.metadata.n_shards)
        .map(|i| {
            let s = ShardIndex(i);
            (s, blob.sliver(s, ty).unwrap_or_default().to_vec())
        })
        .collect()
}

const SIZES: [usize; 7] = [1, 2, 3, 100, 1000, 2048, 16 * 1024 + 7];
const NS: [u16; 4] = [4, 7, 10, 20];

#[test]
fn config_parameters() {
    let cfg = EncodingConfig::new(20).unwrap();
    assert_eq!(
        (
            cfg.f(),
            cfg.k(SliverType::Primary),
            cfg.k(SliverType::Secondary)
        ),
        (6, 8, 14)
    );
    let cfg = EncodingConfig::new(4).unwrap();
    assert_eq!(
        (
            cfg.f(),
            cfg.k(SliverType::Primary),
            cfg.k(SliverType::Secondary)
        ),
        (1, 2, 3)
    );
    for bad in [0, 1, 3, MAX_SHARDS + 1, u16::MAX] {
        assert_eq!(
            EncodingConfig::new(bad),
            Err(BlobError::InvalidShardCount(bad))
        );
    }
    assert_eq!(
        BlobError::InvalidShardCount(0).to_string(),
        "invalid shard count 0 (expected 4..=32768)"
    );
    for good in [255, 256, 1000, MAX_SHARDS] {
        assert_eq!(EncodingConfig::new(good).map(|c| c.n_shards()), Ok(good));
    }
}

#[test]
fn symbols_have_an_even_length_of_at_least_two() {
    let cfg = EncodingConfig::new(10).unwrap();
    // k = 4 primary, 7 secondary.
    for (len, primary, secondary) in [(1, 2, 2), (8, 2, 2), (9, 4, 2), (28, 8, 4), (29, 8, 6)] {
        assert_eq!(cfg.symbol_size(SliverType::Primary, len), primary, "{len}");
        assert_eq!(
            cfg.symbol_size(SliverType::Secondary, len),
            secondary,
            "{len}"
        );
    }
    let blob = encode(&cfg, &data(29, 0)).unwrap();
    assert!(blob.primary.iter().all(|s| s.len() == 8));
    assert!(blob.secondary.iter().all(|s| s.len() == 6));
}

#[test]
fn large_shard_counts_round_trip_and_recover() {
    for n in [255, 256, 1000] {
        let cfg = EncodingConfig::new(n).unwrap();
        let original = data(10_000, n as u8);
        let blob = encode(&cfg, &original).unwrap();
        for ty in SliverType::ALL {
            let k = usize::from(cfg.k(ty));
            let all = symbols(&blob, ty);
            // Rebuild a data symbol (shard 0) and a parity symbol (the last shard) from the
            // last k others: mostly parity, so the decoder has to work.
            for target in [0, n - 1] {
                let others: Vec<_> = all
                    .iter()
                    .filter(|(s, _)| s.0 != target)
                    .rev()
                    .take(k)
                    .cloned()
                    .collect();
                let got = recover_sliver(&cfg, &blob.metadata, ShardIndex(target), ty, &others);
                assert_eq!(
                    got.as_deref(),
                    Ok(blob.sliver(ShardIndex(target), ty).unwrap()),
                    "n={n} {ty} {target}"
                );
            }
        }
        let k = usize::from(cfg.k(SliverType::Primary));
        let all = symbols(&blob, SliverType::Primary);
        assert_eq!(
            decode(&cfg, &blob.metadata, &all[all.len() - k..]).unwrap(),
            original
        );
    }
}

#[test]
fn the_largest_shard_count_encodes_and_decodes() {
    let cfg = EncodingConfig::new(MAX_SHARDS).unwrap();
    let original = data(20_000, 3);
    let blob = encode(&cfg, &original).unwrap();
    assert_eq!(blob.primary.len(), usize::from(MAX_SHARDS));
    let k = usize::from(cfg.k(SliverType::Primary));
    let all = symbols(&blob, SliverType::Primary);
    assert_eq!(
        decode(&cfg, &blob.metadata, &all[all.len() - k..]).unwrap(),
        original
    );
}

#[test]
fn blob_id_is_blake3_of_the_fixed_metadata_layout() {
    let cfg = EncodingConfig::new(7).unwrap();
    let blob = encode(&cfg, &data(500, 1)).unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&500u64.to_le_bytes());
    bytes.extend_from_slice(&7u16.to_le_bytes());
    bytes.extend_from_slice(&7u64.to_le_bytes());
    for pair in &blob.metadata.hashes {
        bytes.extend_from_slice(&pair.primary);
        bytes.extend_from_slice(&pair.secondary);
    }
    assert_eq!(bytes.len(), 18 + 7 * 64);
    assert_eq!(blob.blob_id, BlobId(*blake3::hash(&bytes).as_bytes()));
    assert_eq!(blob.metadata.blob_id(), blob.blob_id);
    blob.metadata.verify(&blob.blob_id).unwrap();
}

#[test]
fn round_trip_for_sizes_and_shard_counts() {
    for n in NS {
        let cfg = EncodingConfig::new(n).unwrap();
        for (seed, len) in SIZES.into_iter().enumerate() {
            let original = data(len, seed as u8);
            let blob = encode(&cfg, &original).unwrap();
            assert_eq!(blob.primary.len(), usize::from(n));
            assert_eq!(blob.secondary.len(), usize::from(n));
            for ty in SliverType::ALL {
                for i in 0..n {
                    let s = ShardIndex(i);
                    verify_sliver(&blob.metadata, s, ty, blob.sliver(s, ty).unwrap()).unwrap();
                }
            }
            // Decode from the last k primary slivers (mostly parity).
            let k = usize::from(cfg.k(SliverType::Primary));
            let all = symbols(&blob, SliverType::Primary);
            let tail = &all[all.len() - k..];
            assert_eq!(
                decode(&cfg, &blob.metadata, tail).unwrap(),
                original,
                "n={n} len={len}"
            );
        }
    }
}

#[test]
fn empty_blob_is_an_error() {
    let cfg = EncodingConfig::new(4).unwrap();
    assert_eq!(encode(&cfg, &[]), Err(BlobError::EmptyBlob));
    assert_eq!(
        encode_inconsistent(&cfg, &[], ShardIndex(0)),
        Err(BlobError::EmptyBlob)
    );
}

#[test]
fn every_shard_recovers_from_exactly_k_others() {
    for n in NS {
        let cfg = EncodingConfig::new(n).unwrap();
        let blob = encode(&cfg, &data(777, n as u8)).unwrap();
        for ty in SliverType::ALL {
            let k = usize::from(cfg.k(ty));
            let all = symbols(&blob, ty);
            for target in 0..n {
                // k others, starting right after the target and wrapping around.
                let others: Vec<_> = (1..=k)
                    .map(|d| all[(usize::from(target) + d) % usize::from(n)].clone())
                    .collect();
                let got =
                    recover_sliver(&cfg, &blob.metadata, ShardIndex(target), ty, &others).unwrap();
                assert_eq!(
                    got,
                    blob.sliver(ShardIndex(target), ty).unwrap(),
                    "n={n} {ty} {target}"
                );
            }
        }
    }
}

#[test]
fn not_enough_symbols() {
    let cfg = EncodingConfig::new(10).unwrap();
    let blob = encode(&cfg, &data(300, 3)).unwrap();
    for ty in SliverType::ALL {
        let k = usize::from(cfg.k(ty));
        let few: Vec<_> = symbols(&blob, ty).into_iter().skip(1).take(k - 1).collect();
        assert_eq!(
            recover_sliver(&cfg, &blob.metadata, ShardIndex(0), ty, &few),
            Err(RecoveryError::NotEnoughSymbols {
                have: k - 1,
                need: k
            })
        );
    }
    let k = usize::from(cfg.k(SliverType::Primary));
    let few: Vec<_> = symbols(&blob, SliverType::Primary)
        .into_iter()
        .take(k - 1)
        .collect();
    assert_eq!(
        decode(&cfg, &blob.metadata, &few),
        Err(BlobError::NotEnoughSymbols {
            have: k - 1,
            need: k
        })
    );
}

#[test]
fn duplicate_symbols_count_once() {
    let cfg = EncodingConfig::new(7).unwrap();
    let blob = encode(&cfg, &data(64, 9)).unwrap();
    let one = symbols(&blob, SliverType::Primary)[1].clone();
    let dup = vec![one; 10];
    assert_eq!(
        recover_sliver(
            &cfg,
            &blob.metadata,
            ShardIndex(0),
            SliverType::Primary,
            &dup
        ),
        Err(RecoveryError::NotEnoughSymbols { have: 1, need: 3 })
    );
}

#[test]
fn tampered_sliver_rejected_and_ignored() {
    let cfg = EncodingConfig::new(7).unwrap();
    let blob = encode(&cfg, &data(1000, 5)).unwrap();
    let ty = SliverType::Primary;
    let mut all = symbols(&blob, ty);
    all[2].1[0] ^= 1;
    assert_eq!(
        verify_sliver(&blob.metadata, ShardIndex(2), ty, &all[2].1),
        Err(BlobError::SliverHash {
            shard: ShardIndex(2),
            ty
        })
    );
    let short = &all[3].1[1..];
    assert!(matches!(
        verify_sliver(&blob.metadata, ShardIndex(3), ty, short),
        Err(BlobError::SliverLength { .. })
    ));
    assert!(matches!(
        verify_sliver(&blob.metadata, ShardIndex(7), ty, &all[3].1),
        Err(BlobError::ShardOutOfRange { .. })
    ));
    // A sliver presented as another shard's does not verify either.
    assert!(verify_sliver(&blob.metadata, ShardIndex(4), ty, &all[3].1).is_err());
    // k = 3: shards 1, 2 (tampered), 3 give only two verified symbols ...
    let three = all[1..4].to_vec();
    assert_eq!(
        recover_sliver(&cfg, &blob.metadata, ShardIndex(0), ty, &three),
        Err(RecoveryError::NotEnoughSymbols { have: 2, need: 3 })
    );
    // ... and with one more the tampered one is ignored and recovery succeeds.
    let four = all[1..5].to_vec();
    assert_eq!(
        recover_sliver(&cfg, &blob.metadata, ShardIndex(0), ty, &four).unwrap(),
        blob.primary[0]
    );
    assert_eq!(decode(&cfg, &blob.metadata, &all).unwrap(), data(1000, 5));
}

#[test]
fn inconsistent_blob_is_detected_by_recovery_and_decode() {
    for n in NS {
        let cfg = EncodingConfig::new(n).unwrap();
        let bad = ShardIndex(n / 2);
        let blob = encode_inconsistent(&cfg, &data(999, 7), bad).unwrap();
        blob.metadata.verify(&blob.blob_id).unwrap();
        let ty = SliverType::Primary;
        let all = symbols(&blob, ty);
        // Every primary sliver, the bad one included, verifies against the metadata.
        for (s, sliver) in &all {
            verify_sliver(&blob.metadata, *s, ty, sliver).unwrap();
        }
        for target in 0..n {
            let others: Vec<_> = all.iter().filter(|(s, _)| s.0 != target).cloned().collect();
            assert_eq!(
                recover_sliver(&cfg, &blob.metadata, ShardIndex(target), ty, &others),
                Err(RecoveryError::Inconsistent(InconsistencyProof {
                    blob_id: blob.blob_id,
                    shard: ShardIndex(target),
                    ty
                })),
                "n={n} target={target}"
            );
        }
        assert!(matches!(
            decode(&cfg, &blob.metadata, &all),
            Err(BlobError::Inconsistent(p)) if p.blob_id == blob.blob_id
        ));
        // The secondary code is consistent.
        let sec = symbols(&blob, SliverType::Secondary);
        assert_eq!(
            recover_sliver(
                &cfg,
                &blob.metadata,
                ShardIndex(0),
                SliverType::Secondary,
                &sec[1..]
            )
            .unwrap(),
            blob.secondary[0]
        );
    }
}

#[test]
fn metadata_tampering_is_detected() {
    let cfg = EncodingConfig::new(10).unwrap();
    let blob = encode(&cfg, &data(4096, 11)).unwrap();
    let id = blob.blob_id;
    let mut m = blob.metadata.clone();
    m.unencoded_length += 1;
    assert!(matches!(
        m.verify(&id),
        Err(BlobError::BlobIdMismatch { .. })
    ));
    let mut m = blob.metadata.clone();
    m.hashes[3].secondary[0] ^= 1;
    assert!(matches!(
        m.verify(&id),
        Err(BlobError::BlobIdMismatch { .. })
    ));
    let mut m = blob.metadata.clone();
    m.hashes.pop();
    assert!(matches!(
        m.verify(&id),
        Err(BlobError::MalformedMetadata(_))
    ));
    let mut m = blob.metadata.clone();
    m.n_shards = 3;
    assert_eq!(m.verify(&id), Err(BlobError::InvalidShardCount(3)));
    let mut m = blob.metadata.clone();
    m.unencoded_length = 0;
    assert!(matches!(
        m.verify(&id),
        Err(BlobError::MalformedMetadata(_))
    ));
    let mut other = id;
    other.0[0] ^= 1;
    assert!(matches!(
        blob.metadata.verify(&other),
        Err(BlobError::BlobIdMismatch { .. })
    ));
    // A config for another shard count is refused.
    let cfg7 = EncodingConfig::new(7).unwrap();
    assert!(matches!(
        decode(&cfg7, &blob.metadata, &symbols(&blob, SliverType::Primary)),
        Err(BlobError::ConfigMismatch {
            config: 7,
            metadata: 10
        })
    ));
}

#[test]
fn absurd_metadata_lengths_do_not_panic() {
    let cfg = EncodingConfig::new(4).unwrap();
    let blob = encode(&cfg, &data(10, 1)).unwrap();
    let mut m = blob.metadata.clone();
    m.unencoded_length = u64::MAX;
    let all = symbols(&blob, SliverType::Primary);
    assert!(decode(&cfg, &m, &all).is_err());
    assert!(recover_sliver(&cfg, &m, ShardIndex(0), SliverType::Primary, &all).is_err());
    assert!(verify_sliver(&m, ShardIndex(0), SliverType::Primary, &all[0].1).is_err());
}

#[test]
fn metadata_encodes_its_hashes_as_one_byte_string() {
    let cfg = EncodingConfig::new(1000).unwrap();
    let blob = encode(&cfg, &data(3000, 4)).unwrap();
    let bytes = postcard::to_allocvec(&blob.metadata).unwrap();
    // Length 3000 (2-byte varint), 1000 shards (2), byte-string length 64,000 (3), the pairs.
    assert_eq!(bytes.len(), 2 + 2 + 3 + 64_000);
    assert!(
        bytes.len() + 8 <= 64 * 1024,
        "fits a 64 KiB page order with its checksum"
    );
    assert_eq!(&bytes[7..39], &blob.metadata.hashes[0].primary);
    let back: BlobMetadata = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, blob.metadata);
    // A self-describing format (a sequence of numbers) decodes too.
    let json = serde_json::to_string(&blob.metadata).unwrap();
    assert_eq!(
        serde_json::from_str::<BlobMetadata>(&json).unwrap(),
        blob.metadata
    );
    // A byte string that is not whole pairs is an error, not a panic.
    let mut bad = postcard::to_allocvec(&(3000u64, 1000u16, vec![0u8; 65])).unwrap();
    assert!(postcard::from_bytes::<BlobMetadata>(&bad).is_err());
    bad.truncate(10);
    assert!(postcard::from_bytes::<BlobMetadata>(&bad).is_err());
}
