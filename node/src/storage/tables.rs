//! The database layout: table definitions, composite keys and the value envelope.
//!
//! Per-shard tables use fixed-size byte keys `shard (u16 BE) | sliver type (u8) | blob id` so
//! that one shard's (and one type's) entries are a contiguous key range, scanned and deleted as
//! a range in ascending blob-id order. Every value is `payload | checksum`, the checksum being
//! the first 8 bytes of blake3 over (table name, key, payload): a corrupted value or key is
//! reported as `Corrupted`, a well-checksummed payload that does not decode as `Codec`.

use super::error::StorageError;
use crate::types::{BlobId, ShardIndex, SliverType};
use redb::TableDefinition;
use serde::{de::DeserializeOwned, Serialize};

/// A per-shard, per-type, per-blob key.
pub(crate) type ShardBlobKey = [u8; 35];

pub(crate) const NODE_NAME: &str = "node";
pub(crate) const SHARD_STATUS_NAME: &str = "shard_status";
pub(crate) const PROGRESS_NAME: &str = "sync_progress";
pub(crate) const PENDING_NAME: &str = "pending_recovery";
pub(crate) const SLIVERS_NAME: &str = "slivers";
pub(crate) const METADATA_NAME: &str = "metadata";
pub(crate) const BLOB_INFO_NAME: &str = "blob_info";

pub(crate) const ALL_NAMES: [&str; 7] = [
    NODE_NAME,
    SHARD_STATUS_NAME,
    PROGRESS_NAME,
    PENDING_NAME,
    SLIVERS_NAME,
    METADATA_NAME,
    BLOB_INFO_NAME,
];

/// Node status and event cursor, keyed by name.
pub(crate) const NODE: TableDefinition<&str, &[u8]> = TableDefinition::new(NODE_NAME);
/// Shard storage exists iff the shard has a row here.
pub(crate) const SHARD_STATUS: TableDefinition<u16, &[u8]> =
    TableDefinition::new(SHARD_STATUS_NAME);
pub(crate) const PROGRESS: TableDefinition<u16, &[u8]> = TableDefinition::new(PROGRESS_NAME);
/// Pending-recovery set: key only, empty sealed payload.
pub(crate) const PENDING: TableDefinition<&ShardBlobKey, &[u8]> =
    TableDefinition::new(PENDING_NAME);
pub(crate) const SLIVERS: TableDefinition<&ShardBlobKey, &[u8]> =
    TableDefinition::new(SLIVERS_NAME);
pub(crate) const METADATA: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(METADATA_NAME);
pub(crate) const BLOB_INFO: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new(BLOB_INFO_NAME);

/// Keys of the `node` table.
pub(crate) const KEY_NODE_STATUS: &str = "node_status";
pub(crate) const KEY_EVENT_CURSOR: &str = "event_cursor";
pub(crate) const KEY_GAINED_EPOCH: &str = "gained_epoch";
pub(crate) const KEY_UNANSWERED_ATTESTATION: &str = "unanswered_attestation";

const CHECKSUM_LEN: usize = 8;

pub(crate) fn type_byte(ty: SliverType) -> u8 {
    match ty {
        SliverType::Primary => 0,
        SliverType::Secondary => 1,
    }
}

fn type_from_byte(b: u8) -> Option<SliverType> {
    match b {
        0 => Some(SliverType::Primary),
        1 => Some(SliverType::Secondary),
        _ => None,
    }
}

pub(crate) fn shard_blob_key(shard: ShardIndex, ty: SliverType, id: &BlobId) -> ShardBlobKey {
    shard_key_with(shard, type_byte(ty), id.0)
}

fn shard_key_with(shard: ShardIndex, ty: u8, id: [u8; 32]) -> ShardBlobKey {
    let mut key = [0u8; 35];
    key[..2].copy_from_slice(&shard.0.to_be_bytes());
    key[2] = ty;
    key[3..].copy_from_slice(&id);
    key
}

/// Lowest and highest key of one shard and sliver type.
pub(crate) fn type_bounds(shard: ShardIndex, ty: SliverType) -> (ShardBlobKey, ShardBlobKey) {
    (
        shard_key_with(shard, type_byte(ty), [0; 32]),
        shard_key_with(shard, type_byte(ty), [0xff; 32]),
    )
}

/// Lowest and highest key of one shard, all types.
pub(crate) fn shard_bounds(shard: ShardIndex) -> (ShardBlobKey, ShardBlobKey) {
    (
        shard_key_with(shard, 0, [0; 32]),
        shard_key_with(shard, 0xff, [0xff; 32]),
    )
}

/// The sliver type and blob id of a per-shard key.
pub(crate) fn split_shard_blob_key(
    key: &ShardBlobKey,
) -> Result<(SliverType, BlobId), StorageError> {
    let ty = type_from_byte(key[2])
        .ok_or_else(|| StorageError::Corrupted(format!("bad sliver type byte {}", key[2])))?;
    let mut id = [0u8; 32];
    id.copy_from_slice(&key[3..]);
    Ok((ty, BlobId(id)))
}

fn checksum(table: &str, key: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(&(table.len() as u64).to_le_bytes());
    h.update(table.as_bytes());
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(payload);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..CHECKSUM_LEN]);
    out
}

/// `payload | checksum(table, key, payload)`.
pub(crate) fn seal(table: &str, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + CHECKSUM_LEN);
    out.extend_from_slice(payload);
    out.extend_from_slice(&checksum(table, key, payload));
    out
}

/// The payload of a sealed value, after checking its checksum.
pub(crate) fn open<'a>(
    table: &str,
    key: &[u8],
    sealed: &'a [u8],
) -> Result<&'a [u8], StorageError> {
    let split = sealed
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| StorageError::Corrupted(format!("{table}: value shorter than checksum")))?;
    let (payload, sum) = sealed.split_at(split);
    if sum != checksum(table, key, payload) {
        return Err(StorageError::Corrupted(format!(
            "{table}: checksum mismatch"
        )));
    }
    Ok(payload)
}

/// The postcard encoding of a value, in a buffer of exactly its size.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    let codec = |e: postcard::Error| StorageError::Codec(e.to_string());
    let size = postcard::experimental::serialized_size(value).map_err(codec)?;
    postcard::to_extend(value, Vec::with_capacity(size)).map_err(codec)
}

/// Decodes a payload; allocations are bounded by its length (postcard gives no size hint for
/// a sequence longer than the input left), trailing bytes are refused.
pub(crate) fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, StorageError> {
    let (value, rest) =
        postcard::take_from_bytes(payload).map_err(|e| StorageError::Codec(e.to_string()))?;
    if !rest.is_empty() {
        return Err(StorageError::Codec(format!(
            "{} trailing bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Seals the postcard encoding of `value`.
pub(crate) fn seal_value<T: Serialize>(
    table: &str,
    key: &[u8],
    value: &T,
) -> Result<Vec<u8>, StorageError> {
    Ok(seal(table, key, &encode(value)?))
}

/// Checks and decodes a sealed value.
pub(crate) fn open_value<T: DeserializeOwned>(
    table: &str,
    key: &[u8],
    sealed: &[u8],
) -> Result<T, StorageError> {
    decode(open(table, key, sealed)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ShardStatus;

    #[test]
    fn keys_sort_by_shard_type_then_blob() {
        let a = shard_blob_key(ShardIndex(1), SliverType::Secondary, &BlobId([0xff; 32]));
        let b = shard_blob_key(ShardIndex(2), SliverType::Primary, &BlobId([0; 32]));
        let c = shard_blob_key(ShardIndex(256), SliverType::Primary, &BlobId([0; 32]));
        assert!(a < b && b < c);
        let (lo, hi) = type_bounds(ShardIndex(1), SliverType::Secondary);
        assert!(lo <= a && a <= hi);
        let (lo, hi) = shard_bounds(ShardIndex(1));
        assert!(lo <= a && a <= hi && hi < b);
        assert_eq!(
            split_shard_blob_key(&a).unwrap(),
            (SliverType::Secondary, BlobId([0xff; 32]))
        );
    }

    #[test]
    fn encoding_is_postcard_and_round_trips() {
        let v = (BlobId([3; 32]), SliverType::Secondary, 300u64);
        // The blob id as a byte string (length 32, then its bytes), variant index 1, then 300
        // as a varint.
        let mut expected = vec![32u8];
        expected.extend_from_slice(&[3; 32]);
        expected.extend_from_slice(&[1, 0xac, 0x02]);
        assert_eq!(encode(&v).unwrap(), expected);
        assert_eq!(decode::<(BlobId, SliverType, u64)>(&expected).unwrap(), v);
        let sealed = seal_value("t", b"k", &ShardStatus::LockedToMove).unwrap();
        assert_eq!(
            open_value::<ShardStatus>("t", b"k", &sealed).unwrap(),
            ShardStatus::LockedToMove
        );
        // Same bytes under another key or table do not verify.
        assert!(matches!(
            open_value::<ShardStatus>("t", b"j", &sealed),
            Err(StorageError::Corrupted(_))
        ));
        assert!(matches!(
            open_value::<ShardStatus>("u", b"k", &sealed),
            Err(StorageError::Corrupted(_))
        ));
        assert!(matches!(
            open("t", b"k", &[1, 2]),
            Err(StorageError::Corrupted(_))
        ));
    }

    #[test]
    fn bad_payloads_are_codec_errors() {
        let sealed = seal("t", b"k", &[9, 9, 9, 9, 9]);
        assert!(matches!(
            open_value::<ShardStatus>("t", b"k", &sealed),
            Err(StorageError::Codec(_))
        ));
        // A huge length prefix (a varint of u64::MAX) does not allocate.
        let mut huge = vec![0xff; 9];
        huge.push(0x01);
        let sealed = seal("t", b"k", &huge);
        assert!(matches!(
            open_value::<Vec<u64>>("t", b"k", &sealed),
            Err(StorageError::Codec(_))
        ));
        // Trailing bytes are refused.
        let mut payload = encode(&ShardStatus::Active).unwrap();
        payload.push(0);
        assert!(matches!(
            open_value::<ShardStatus>("t", b"k", &seal("t", b"k", &payload)),
            Err(StorageError::Codec(_))
        ));
    }
}
