//! The node's internal error type and the shard-sync error classification of spec section 4.3.

use crate::blob::RecoveryError;
use crate::chain::ChainError;
use crate::storage::StorageError;
use crate::types::ShardIndex;
use crate::wire::{ServiceError, WireError};
use shardstorm_faults::Injected;

/// Anything that can go wrong inside the node.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("transport: {0}")]
    Wire(#[from] WireError),
    #[error("peer answered: {0}")]
    Service(#[from] ServiceError),
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    #[error("{0}")]
    Injected(#[from] Injected),
    /// An injected `sync.fetch_sliver` error; `retryable` as configured.
    #[error("injected fetch error (retryable={retryable})")]
    InjectedFetch { retryable: bool },
    #[error("shard {0} has no local storage")]
    ShardNotAssigned(ShardIndex),
    #[error("no sync client for shard {0}")]
    NoSyncClient(ShardIndex),
    #[error("recovery: {0}")]
    Recovery(#[from] RecoveryError),
    #[error("unexpected response to {0}")]
    UnexpectedResponse(&'static str),
    #[error("blob retired")]
    Retired,
}

/// What a per-shard sync task does after a failed attempt (spec 4.2; a successful attempt
/// needs no decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDecision {
    Failed,
    Retry { force: bool },
}

/// Spec 4.3: classifies the error of a transfer attempt.
pub fn classify(error: &NodeError, directly_recover: bool) -> SyncDecision {
    let retry = match error {
        NodeError::Service(ServiceError::InvalidEpoch {
            request_epoch,
            server_epoch,
        }) => request_epoch > server_epoch,
        NodeError::Service(ServiceError::Unauthorized) => true,
        NodeError::Wire(w) => w.is_transport(),
        NodeError::InjectedFetch { retryable } => *retryable,
        _ => false,
    };
    match (retry, directly_recover) {
        (true, _) => SyncDecision::Retry { force: false },
        (false, false) => SyncDecision::Retry { force: true },
        (false, true) => SyncDecision::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_spec_table() {
        let behind = NodeError::Service(ServiceError::InvalidEpoch {
            request_epoch: 3,
            server_epoch: 2,
        });
        let ahead = NodeError::Service(ServiceError::InvalidEpoch {
            request_epoch: 2,
            server_epoch: 3,
        });
        assert_eq!(
            classify(&behind, false),
            SyncDecision::Retry { force: false }
        );
        assert_eq!(
            classify(&behind, true),
            SyncDecision::Retry { force: false }
        );
        assert_eq!(classify(&ahead, false), SyncDecision::Retry { force: true });
        assert_eq!(classify(&ahead, true), SyncDecision::Failed);
        let unauthorized = NodeError::Service(ServiceError::Unauthorized);
        assert_eq!(
            classify(&unauthorized, true),
            SyncDecision::Retry { force: false }
        );
        let timeout = NodeError::Wire(WireError::Timeout("n1".into()));
        assert_eq!(
            classify(&timeout, false),
            SyncDecision::Retry { force: false }
        );
        assert_eq!(
            classify(&NodeError::InjectedFetch { retryable: true }, true),
            SyncDecision::Retry { force: false }
        );
        assert_eq!(
            classify(&NodeError::InjectedFetch { retryable: false }, false),
            SyncDecision::Retry { force: true }
        );
        assert_eq!(
            classify(&NodeError::NoSyncClient(ShardIndex(1)), true),
            SyncDecision::Failed
        );
        let internal = NodeError::Service(ServiceError::Internal("x".into()));
        assert_eq!(
            classify(&internal, false),
            SyncDecision::Retry { force: true }
        );
    }
}
