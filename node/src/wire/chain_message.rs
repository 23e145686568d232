//! Requests to the chain host and its answers. Reads (events, committees, keys) and the
//! workload's blob transactions are unsigned; a node's `epoch_sync_done` and its inconsistency
//! proofs are signed with the node's key like every node-to-node request.

use crate::chain::{AttestationOutcome, ChainError, ChainEvent, Committee};
use crate::types::{BlobId, Epoch, NodeId};
use serde::{Deserialize, Serialize};

/// A request to the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainRequest {
    /// Up to `max` events from index `from`; with none there yet, the chain holds the request
    /// for up to `wait_ms` until one arrives (a long poll).
    Events {
        from: u64,
        max: u32,
        wait_ms: u32,
    },
    /// The chain's current epoch.
    Epoch,
    /// The committee of `epoch`, if it exists yet.
    Committee {
        epoch: Epoch,
    },
    /// The registered public key of a node.
    NodeKey {
        node: NodeId,
    },
    /// `epoch_sync_done(epoch)` from the signing node.
    EpochSyncDone {
        epoch: Epoch,
    },
    /// An inconsistency proof for `blob`, from the signing node: the blob is invalidated.
    InvalidateBlob {
        blob: BlobId,
    },
    /// The workload client's blob transactions.
    RegisterBlob {
        blob: BlobId,
        lifetime_epochs: Epoch,
    },
    CertifyBlob {
        blob: BlobId,
        epoch: Epoch,
    },
    DeleteBlob {
        blob: BlobId,
    },
}

impl ChainRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            ChainRequest::Events { .. } => "chain-events",
            ChainRequest::Epoch => "chain-epoch",
            ChainRequest::Committee { .. } => "chain-committee",
            ChainRequest::NodeKey { .. } => "chain-node-key",
            ChainRequest::EpochSyncDone { .. } => "chain-epoch-sync-done",
            ChainRequest::InvalidateBlob { .. } => "chain-invalidate-blob",
            ChainRequest::RegisterBlob { .. } => "chain-register-blob",
            ChainRequest::CertifyBlob { .. } => "chain-certify-blob",
            ChainRequest::DeleteBlob { .. } => "chain-delete-blob",
        }
    }

    /// Whether the chain accepts the request only signed by a registered node.
    pub fn needs_node_signature(&self) -> bool {
        matches!(
            self,
            ChainRequest::EpochSyncDone { .. } | ChainRequest::InvalidateBlob { .. }
        )
    }
}

/// One page of the event stream, with what a node needs to start reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<(u64, ChainEvent)>,
    /// The first event still available (earlier ones are pruned).
    pub first_available: u64,
    /// The first epoch whose events are all still available.
    pub first_complete_epoch: Epoch,
    /// How many events the chain has emitted.
    pub event_count: u64,
    /// The chain's current epoch.
    pub epoch: Epoch,
}

/// The chain's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainResponse {
    Events(EventPage),
    Epoch(Epoch),
    Committee(Option<Committee>),
    NodeKey(Option<[u8; 32]>),
    Attestation(AttestationOutcome),
    /// A transaction was executed.
    Executed,
    /// A transaction was rejected.
    Rejected(ChainError),
}
