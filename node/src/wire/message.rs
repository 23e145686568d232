//! Request and response messages, the signed envelope, and the typed service errors a node
//! answers with.

use super::chain_message::{ChainRequest, ChainResponse};
use crate::blob::BlobMetadata;
use crate::types::{BlobId, Epoch, NodeId, ShardIndex, SliverType};
use serde::{Deserialize, Serialize};

/// A request to a storage node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Shard sync page (spec 4.6): up to `count` slivers of `ty` from `start` (inclusive).
    SyncShard {
        shard: ShardIndex,
        ty: SliverType,
        start: BlobId,
        count: u32,
        epoch: Epoch,
    },
    /// Verified metadata of a blob.
    GetMetadata { blob: BlobId },
    /// This node's slivers of `ty` for `blob`, from every shard it stores, to rebuild another
    /// shard's sliver (recovery symbols).
    GetRecoverySymbols {
        blob: BlobId,
        ty: SliverType,
        epoch: Epoch,
    },
    /// Client upload of a blob's metadata (verified against the blob id) and of the slivers
    /// of the shards this node holds (each verified against the metadata).
    StoreBlob {
        metadata: BlobMetadata,
        slivers: Vec<(ShardIndex, SliverType, Vec<u8>)>,
    },
    /// Primary slivers this node holds for `blob` (client reads).
    ReadSlivers { blob: BlobId },
    /// A request to the chain host (storage nodes answer it `Malformed`).
    Chain(ChainRequest),
}

impl Request {
    pub fn kind(&self) -> &'static str {
        match self {
            Request::SyncShard { .. } => "sync-shard",
            Request::GetMetadata { .. } => "get-metadata",
            Request::GetRecoverySymbols { .. } => "get-recovery-symbols",
            Request::StoreBlob { .. } => "store-blob",
            Request::ReadSlivers { .. } => "read-slivers",
            Request::Chain(c) => c.kind(),
        }
    }
}

/// A node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Slivers(Vec<(BlobId, Vec<u8>)>),
    Metadata(BlobMetadata),
    Symbols(Vec<(ShardIndex, Vec<u8>)>),
    /// The slivers an upload stored.
    Stored(Vec<(ShardIndex, SliverType)>),
    /// The chain host's answer.
    Chain(ChainResponse),
    Error(ServiceError),
}

/// Typed errors a node returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServiceError {
    #[error("unauthorized")]
    Unauthorized,
    #[error("message verification failed")]
    MessageVerificationError,
    #[error("invalid epoch: request {request_epoch}, server {server_epoch}")]
    InvalidEpoch {
        request_epoch: Epoch,
        server_epoch: Epoch,
    },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("requested {requested} slivers, limit {limit}")]
    RequestedSliverCountExceedsLimit { requested: u32, limit: u32 },
    #[error("shard {0} is not assigned to this node")]
    ShardNotAssigned(ShardIndex),
    #[error("not found")]
    NotFound,
    #[error("invalid sliver: {0}")]
    InvalidSliver(String),
    #[error("invalid metadata: {0}")]
    InvalidMetadata(String),
    #[error("blob is not registered or is retired")]
    BlobNotRegistered,
    #[error("shard {0} does not accept uploads")]
    ShardLocked(ShardIndex),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// What goes in a frame: the encoded request, who sent it, and the sender's signature over the
/// request bytes (clients send unsigned requests).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub sender: Option<NodeId>,
    pub payload: Vec<u8>,
    pub signature: Option<Vec<u8>>,
}
