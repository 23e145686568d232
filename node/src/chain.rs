//! The chain: epochs, committees (shard -> node), blob lifecycle events (registered, certified,
//! extended, deleted, invalidated), the event stream nodes resume from a cursor, and `epoch_sync_done` attestations that end an epoch change.
//!
//! This is the chain's own state: the chain host (`crate::chain_host`) serves it over the
//! network to the nodes and the workload client, and the harness reads it directly (the oracle
//! checks against it, the driver runs epoch changes on it). It models a consensus system: it
//! stays honest and up; all access is synchronous and never held across an await.

use crate::types::{BlobId, Epoch, NodeId, ShardIndex};
use serde::{Deserialize, Serialize};
use shardstorm_faults::LockExt;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// The assignment of shards to nodes for one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Committee {
    pub epoch: Epoch,
    pub shards: BTreeMap<ShardIndex, NodeId>,
}

impl Committee {
    /// Shards owned by `node`.
    pub fn shards_of(&self, node: NodeId) -> BTreeSet<ShardIndex> {
        self.shards
            .iter()
            .filter(|(_, n)| **n == node)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Owner of `shard`.
    pub fn owner(&self, shard: ShardIndex) -> Option<NodeId> {
        self.shards.get(&shard).copied()
    }

    /// Members (nodes owning at least one shard), ascending.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.shards.values().copied().collect()
    }

    pub fn contains(&self, node: NodeId) -> bool {
        self.shards.values().any(|n| *n == node)
    }

    pub fn n_shards(&self) -> usize {
        self.shards.len()
    }
}

/// One event of the chain's event stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChainEvent {
    BlobRegistered {
        blob: BlobId,
        end_epoch: Epoch,
        epoch: Epoch,
    },
    BlobCertified {
        blob: BlobId,
        epoch: Epoch,
    },
    /// A certified blob's end epoch was extended (an extension certification).
    BlobExtended {
        blob: BlobId,
        end_epoch: Epoch,
        epoch: Epoch,
    },
    BlobDeleted {
        blob: BlobId,
        epoch: Epoch,
    },
    BlobInvalidated {
        blob: BlobId,
        epoch: Epoch,
    },
    EpochChangeStart {
        epoch: Epoch,
    },
    EpochChangeDone {
        epoch: Epoch,
    },
}

impl ChainEvent {
    /// The epoch the event was emitted in.
    pub fn epoch(&self) -> Epoch {
        match self {
            ChainEvent::BlobRegistered { epoch, .. }
            | ChainEvent::BlobCertified { epoch, .. }
            | ChainEvent::BlobExtended { epoch, .. }
            | ChainEvent::BlobDeleted { epoch, .. }
            | ChainEvent::BlobInvalidated { epoch, .. }
            | ChainEvent::EpochChangeStart { epoch }
            | ChainEvent::EpochChangeDone { epoch } => *epoch,
        }
    }
}

impl fmt::Display for ChainEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainEvent::BlobRegistered {
                blob,
                end_epoch,
                epoch,
            } => {
                write!(f, "blob-registered {blob} end={end_epoch} epoch={epoch}")
            }
            ChainEvent::BlobCertified { blob, epoch } => {
                write!(f, "blob-certified {blob} epoch={epoch}")
            }
            ChainEvent::BlobExtended {
                blob,
                end_epoch,
                epoch,
            } => {
                write!(f, "blob-extended {blob} end={end_epoch} epoch={epoch}")
            }
            ChainEvent::BlobDeleted { blob, epoch } => {
                write!(f, "blob-deleted {blob} epoch={epoch}")
            }
            ChainEvent::BlobInvalidated { blob, epoch } => {
                write!(f, "blob-invalidated {blob} epoch={epoch}")
            }
            ChainEvent::EpochChangeStart { epoch } => write!(f, "epoch-change-start {epoch}"),
            ChainEvent::EpochChangeDone { epoch } => write!(f, "epoch-change-done {epoch}"),
        }
    }
}

/// Errors of chain transactions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ChainError {
    #[error("blob {0} is not registered")]
    UnknownBlob(BlobId),
    #[error("blob {0} is already registered")]
    AlreadyRegistered(BlobId),
    #[error("blob {0} cannot change state: {1}")]
    BadBlobState(BlobId, String),
    #[error("epoch change {0} has not finished")]
    EpochChangeInProgress(Epoch),
    #[error("committee must assign every shard 0..{expected}, got {got} shards")]
    BadCommittee { expected: usize, got: usize },
    #[error(
        "certificate for {blob} was collected in epoch {certificate}, the chain is at {current}"
    )]
    StaleCertificate {
        blob: BlobId,
        certificate: Epoch,
        current: Epoch,
    },
    #[error("an extension must add at least one epoch")]
    EmptyExtension,
    #[error("node {0} is not registered")]
    UnknownNode(NodeId),
    #[error("the transaction needs a registered node's signature")]
    Unsigned,
}

/// The chain's record of one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    pub registered_epoch: Epoch,
    pub end_epoch: Epoch,
    pub certified_epoch: Option<Epoch>,
    pub deleted: bool,
    pub invalid: bool,
}

impl BlobRecord {
    /// Certified and not retired at `epoch`.
    pub fn is_certified_at(&self, epoch: Epoch) -> bool {
        self.certified_epoch.is_some_and(|c| c <= epoch)
            && !self.deleted
            && !self.invalid
            && self.end_epoch > epoch
    }
}

#[derive(Debug, Default)]
struct ChainState {
    epoch: Epoch,
    n_shards: usize,
    committees: BTreeMap<Epoch, Committee>,
    events: Vec<ChainEvent>,
    first_available_event: u64,
    blobs: BTreeMap<BlobId, BlobRecord>,
    attestations: BTreeMap<Epoch, BTreeSet<NodeId>>,
    done: BTreeSet<Epoch>,
    keys: BTreeMap<NodeId, [u8; 32]>,
    received: Vec<ReceivedAttestation>,
    /// Woken whenever an event is emitted.
    new_events: Arc<Notify>,
}

impl ChainState {
    /// Appends an event to the stream and wakes the chain host's held event reads.
    fn emit(&mut self, event: ChainEvent) {
        self.events.push(event);
        self.new_events.notify_waiters();
    }

    fn attest(&mut self, node: NodeId, epoch: Epoch) -> AttestationOutcome {
        if epoch != self.epoch {
            return AttestationOutcome::NotCurrentEpoch {
                current: self.epoch,
            };
        }
        if self.done.contains(&epoch) {
            return AttestationOutcome::AlreadyDone;
        }
        let Some(committee) = self.committees.get(&epoch).cloned() else {
            return AttestationOutcome::NotMember;
        };
        if !committee.contains(node) {
            return AttestationOutcome::NotMember;
        }
        let attested = self.attestations.entry(epoch).or_default();
        attested.insert(node);
        let weight = committee
            .shards
            .values()
            .filter(|n| attested.contains(n))
            .count();
        if 3 * weight > 2 * committee.n_shards() {
            self.done.insert(epoch);
            self.emit(ChainEvent::EpochChangeDone { epoch });
        }
        AttestationOutcome::Recorded
    }
}

/// What the chain made of one `epoch_sync_done`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttestationOutcome {
    /// Counted towards the epoch change.
    Recorded,
    /// The epoch change has already ended.
    AlreadyDone,
    /// Not the chain's current epoch (a stale or a future attestation).
    NotCurrentEpoch { current: Epoch },
    /// The sender is not a member of that epoch's committee.
    NotMember,
}

/// One `epoch_sync_done` as the chain received it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAttestation {
    pub node: NodeId,
    pub epoch: Epoch,
    /// The chain's epoch when it arrived.
    pub chain_epoch: Epoch,
    pub outcome: AttestationOutcome,
}

/// Shared handle on the chain.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    state: Arc<Mutex<ChainState>>,
}

impl Chain {
    /// A chain whose epoch 0 has an empty committee and whose first epoch change, to epoch 1
    /// with `genesis` as its committee, has started: every genesis member gains its shards.
    pub fn new(genesis: BTreeMap<ShardIndex, NodeId>) -> Self {
        let n_shards = genesis.len();
        let mut state = ChainState {
            epoch: 1,
            n_shards,
            ..Default::default()
        };
        state.committees.insert(
            0,
            Committee {
                epoch: 0,
                shards: BTreeMap::new(),
            },
        );
        state.committees.insert(
            1,
            Committee {
                epoch: 1,
                shards: genesis,
            },
        );
        state.emit(ChainEvent::EpochChangeStart { epoch: 1 });
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Operator override: ends the running epoch change without attestations (test fixtures).
    pub fn force_epoch_change_done(&self) {
        let mut s = self.lock();
        let epoch = s.epoch;
        if s.done.insert(epoch) {
            s.emit(ChainEvent::EpochChangeDone { epoch });
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChainState> {
        self.state.lock_ok()
    }

    /// Registers a node's public key (ed25519, 32 bytes).
    pub fn register_node(&self, node: NodeId, key: [u8; 32]) {
        self.lock().keys.insert(node, key);
    }

    pub fn node_key(&self, node: NodeId) -> Option<[u8; 32]> {
        self.lock().keys.get(&node).copied()
    }

    pub fn epoch(&self) -> Epoch {
        self.lock().epoch
    }

    pub fn n_shards(&self) -> usize {
        self.lock().n_shards
    }

    pub fn committee(&self, epoch: Epoch) -> Option<Committee> {
        self.lock().committees.get(&epoch).cloned()
    }

    /// Whether the epoch change to `epoch` has ended (enough `epoch_sync_done`).
    pub fn is_epoch_change_done(&self, epoch: Epoch) -> bool {
        self.lock().done.contains(&epoch)
    }

    /// Starts the epoch change to `epoch + 1` with `shards` as its committee.
    pub fn start_epoch_change(
        &self,
        shards: BTreeMap<ShardIndex, NodeId>,
    ) -> Result<Epoch, ChainError> {
        let mut s = self.lock();
        if !s.done.contains(&s.epoch) {
            return Err(ChainError::EpochChangeInProgress(s.epoch));
        }
        let complete =
            shards.len() == s.n_shards && shards.keys().enumerate().all(|(i, k)| k.0 as usize == i);
        if !complete {
            return Err(ChainError::BadCommittee {
                expected: s.n_shards,
                got: shards.len(),
            });
        }
        s.epoch += 1;
        let epoch = s.epoch;
        s.committees.insert(epoch, Committee { epoch, shards });
        s.emit(ChainEvent::EpochChangeStart { epoch });
        Ok(epoch)
    }

    /// Records `epoch_sync_done(epoch)` from `node` and says what became of it. The epoch
    /// change ends once the attesting members own more than two thirds of the shards. Every
    /// attestation received is logged with its outcome ([`Chain::received_attestations`]).
    pub fn epoch_sync_done(&self, node: NodeId, epoch: Epoch) -> AttestationOutcome {
        let mut s = self.lock();
        let outcome = s.attest(node, epoch);
        let chain_epoch = s.epoch;
        s.received.push(ReceivedAttestation {
            node,
            epoch,
            chain_epoch,
            outcome,
        });
        outcome
    }

    /// Every `epoch_sync_done` the chain received, in arrival order.
    pub fn received_attestations(&self) -> Vec<ReceivedAttestation> {
        self.received_attestations_since(0)
    }

    /// The received attestations from position `from` of the log on.
    pub fn received_attestations_since(&self, from: usize) -> Vec<ReceivedAttestation> {
        self.lock()
            .received
            .get(from..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Nodes that attested `epoch`.
    pub fn attestations(&self, epoch: Epoch) -> BTreeSet<NodeId> {
        self.lock()
            .attestations
            .get(&epoch)
            .cloned()
            .unwrap_or_default()
    }

    pub fn register_blob(&self, blob: BlobId, lifetime_epochs: Epoch) -> Result<(), ChainError> {
        let mut s = self.lock();
        if s.blobs.contains_key(&blob) {
            return Err(ChainError::AlreadyRegistered(blob));
        }
        let epoch = s.epoch;
        let end_epoch = epoch + lifetime_epochs;
        s.blobs.insert(
            blob,
            BlobRecord {
                registered_epoch: epoch,
                end_epoch,
                certified_epoch: None,
                deleted: false,
                invalid: false,
            },
        );
        s.emit(ChainEvent::BlobRegistered {
            blob,
            end_epoch,
            epoch,
        });
        Ok(())
    }

    /// Certifies with a certificate collected in `epoch`: signatures of a committee that is no
    /// longer current do not count, so a stale certificate is rejected.
    pub fn certify_blob_from(&self, blob: BlobId, epoch: Epoch) -> Result<(), ChainError> {
        if epoch != self.epoch() {
            return Err(ChainError::StaleCertificate {
                blob,
                certificate: epoch,
                current: self.epoch(),
            });
        }
        self.certify_blob(blob)
    }

    /// Certifies a blob in the current epoch (an operator or fixture shortcut).
    pub fn certify_blob(&self, blob: BlobId) -> Result<(), ChainError> {
        let mut s = self.lock();
        let epoch = s.epoch;
        let record = s
            .blobs
            .get_mut(&blob)
            .ok_or(ChainError::UnknownBlob(blob))?;
        if record.certified_epoch.is_some() {
            return Ok(());
        }
        if record.deleted || record.invalid || record.end_epoch <= epoch {
            return Err(ChainError::BadBlobState(blob, "retired".into()));
        }
        record.certified_epoch = Some(epoch);
        s.emit(ChainEvent::BlobCertified { blob, epoch });
        Ok(())
    }

    /// Extends a certified, unretired blob's lifetime by `epochs`; returns the new end epoch.
    pub fn extend_blob(&self, blob: BlobId, epochs: Epoch) -> Result<Epoch, ChainError> {
        if epochs == 0 {
            return Err(ChainError::EmptyExtension);
        }
        let mut s = self.lock();
        let epoch = s.epoch;
        let record = s
            .blobs
            .get_mut(&blob)
            .ok_or(ChainError::UnknownBlob(blob))?;
        if record.certified_epoch.is_none() {
            return Err(ChainError::BadBlobState(blob, "not certified".into()));
        }
        if record.deleted || record.invalid || record.end_epoch <= epoch {
            return Err(ChainError::BadBlobState(blob, "retired".into()));
        }
        record.end_epoch = record.end_epoch.saturating_add(epochs);
        let end_epoch = record.end_epoch;
        s.emit(ChainEvent::BlobExtended {
            blob,
            end_epoch,
            epoch,
        });
        Ok(end_epoch)
    }

    pub fn delete_blob(&self, blob: BlobId) -> Result<(), ChainError> {
        self.retire_once(
            blob,
            |r| &mut r.deleted,
            |blob, epoch| ChainEvent::BlobDeleted { blob, epoch },
        )
    }

    /// Submits an invalid-blob certificate (the node verified the inconsistency proof).
    pub fn invalidate_blob(&self, blob: BlobId) -> Result<(), ChainError> {
        self.retire_once(
            blob,
            |r| &mut r.invalid,
            |blob, epoch| ChainEvent::BlobInvalidated { blob, epoch },
        )
    }

    /// Sets the retirement flag `flag` picks on `blob`'s record and emits `event` in the current
    /// epoch; nothing happens when the flag is already set.
    fn retire_once(
        &self,
        blob: BlobId,
        flag: fn(&mut BlobRecord) -> &mut bool,
        event: fn(BlobId, Epoch) -> ChainEvent,
    ) -> Result<(), ChainError> {
        let mut s = self.lock();
        let epoch = s.epoch;
        let record = s
            .blobs
            .get_mut(&blob)
            .ok_or(ChainError::UnknownBlob(blob))?;
        let retired = flag(record);
        if *retired {
            return Ok(());
        }
        *retired = true;
        s.emit(event(blob, epoch));
        Ok(())
    }

    pub fn blob(&self, blob: BlobId) -> Option<BlobRecord> {
        self.lock().blobs.get(&blob).copied()
    }

    /// Every blob record, ascending by id.
    pub fn blobs(&self) -> Vec<(BlobId, BlobRecord)> {
        self.lock().blobs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Up to `max` events starting at index `from` (clamped to the first available one).
    pub fn events_from(&self, from: u64, max: usize) -> Vec<(u64, ChainEvent)> {
        let s = self.lock();
        let start = from.max(s.first_available_event) as usize;
        s.events
            .iter()
            .enumerate()
            .skip(start)
            .take(max)
            .map(|(i, e)| (i as u64, e.clone()))
            .collect()
    }

    /// Index of the next event to be emitted.
    /// Notified whenever the chain emits an event (enable the `Notified` before reading the
    /// stream, so an event emitted in between is not missed).
    pub fn new_events(&self) -> Arc<Notify> {
        self.lock().new_events.clone()
    }

    pub fn event_count(&self) -> u64 {
        self.lock().events.len() as u64
    }

    /// The oldest event still available (older history was pruned).
    pub fn first_available_event(&self) -> u64 {
        self.lock().first_available_event
    }

    /// Prunes event history before `index` (models nodes joining with incomplete history).
    pub fn prune_events_before(&self, index: u64) {
        let mut s = self.lock();
        s.first_available_event = index.min(s.events.len() as u64);
    }

    /// Epoch of the first available event (its epoch, or the current epoch if none).
    pub fn first_complete_epoch(&self) -> Epoch {
        let s = self.lock();
        s.events
            .get(s.first_available_event as usize)
            .map_or(s.epoch, |e| e.epoch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis(n: u16, nodes: u16) -> BTreeMap<ShardIndex, NodeId> {
        (0..n).map(|i| (ShardIndex(i), NodeId(i % nodes))).collect()
    }

    #[test]
    fn epoch_change_ends_after_a_two_thirds_quorum_of_shards() {
        let chain = Chain::new(genesis(6, 3));
        assert_eq!(
            chain.start_epoch_change(genesis(6, 3)),
            Err(ChainError::EpochChangeInProgress(1))
        );
        chain.force_epoch_change_done();
        let e = chain.start_epoch_change(genesis(6, 3)).unwrap();
        assert_eq!(e, 2);
        assert_eq!(
            chain.start_epoch_change(genesis(6, 3)),
            Err(ChainError::EpochChangeInProgress(2))
        );
        chain.epoch_sync_done(NodeId(0), 2);
        chain.epoch_sync_done(NodeId(1), 2);
        assert!(
            !chain.is_epoch_change_done(2),
            "4 of 6 shards is not more than two thirds"
        );
        chain.epoch_sync_done(NodeId(2), 2);
        assert!(chain.is_epoch_change_done(2));
        assert!(chain.start_epoch_change(genesis(6, 2)).is_ok());
    }

    #[test]
    fn non_members_and_stale_attestations_are_ignored() {
        let chain = Chain::new(genesis(3, 3));
        chain.force_epoch_change_done();
        chain.start_epoch_change(genesis(3, 3)).unwrap();
        assert_eq!(
            chain.epoch_sync_done(NodeId(9), 2),
            AttestationOutcome::NotMember
        );
        assert_eq!(
            chain.epoch_sync_done(NodeId(0), 1),
            AttestationOutcome::NotCurrentEpoch { current: 2 }
        );
        assert!(chain.attestations(2).is_empty());
        let received = chain.received_attestations();
        assert_eq!(received.len(), 2, "rejected attestations are logged too");
        assert_eq!(received[1].node, NodeId(0));
        assert_eq!(received[1].chain_epoch, 2);
    }

    #[test]
    fn blob_lifecycle_emits_events_in_order() {
        let chain = Chain::new(genesis(4, 2));
        let b = BlobId([7; 32]);
        chain.register_blob(b, 3).unwrap();
        assert_eq!(
            chain.register_blob(b, 3),
            Err(ChainError::AlreadyRegistered(b))
        );
        chain.certify_blob(b).unwrap();
        chain.delete_blob(b).unwrap();
        let events: Vec<_> = chain
            .events_from(1, 10)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(events.len(), 3);
        assert!(matches!(
            events[1],
            ChainEvent::BlobCertified { epoch: 1, .. }
        ));
        assert!(!chain.blob(b).unwrap().is_certified_at(1));
        assert_eq!(
            chain.certify_blob(BlobId([1; 32])),
            Err(ChainError::UnknownBlob(BlobId([1; 32])))
        );
        assert!(matches!(
            chain.certify_blob_from(b, 0),
            Err(ChainError::StaleCertificate { .. })
        ));
    }

    #[test]
    fn only_certified_live_blobs_can_be_extended() {
        let chain = Chain::new(genesis(4, 2));
        let b = BlobId([9; 32]);
        chain.register_blob(b, 3).unwrap();
        assert_eq!(
            chain.extend_blob(b, 2),
            Err(ChainError::BadBlobState(b, "not certified".into()))
        );
        chain.certify_blob(b).unwrap();
        assert_eq!(chain.extend_blob(b, 0), Err(ChainError::EmptyExtension));
        assert_eq!(chain.extend_blob(b, 2), Ok(6));
        assert_eq!(chain.blob(b).unwrap().end_epoch, 6);
        let last = chain.events_from(chain.event_count() - 1, 1);
        assert_eq!(
            last[0].1,
            ChainEvent::BlobExtended {
                blob: b,
                end_epoch: 6,
                epoch: 1
            }
        );
        chain.delete_blob(b).unwrap();
        assert_eq!(
            chain.extend_blob(b, 1),
            Err(ChainError::BadBlobState(b, "retired".into()))
        );
        let unknown = BlobId([2; 32]);
        assert_eq!(
            chain.extend_blob(unknown, 1),
            Err(ChainError::UnknownBlob(unknown))
        );
    }

    #[test]
    fn deleting_and_invalidating_emit_one_event_each_and_repeat_quietly() {
        type Retire = fn(&Chain, BlobId) -> Result<(), ChainError>;
        type Flag = fn(&BlobRecord) -> bool;
        let cases: [(&str, Retire, Flag); 2] = [
            ("delete", Chain::delete_blob, |r| r.deleted),
            ("invalidate", Chain::invalidate_blob, |r| r.invalid),
        ];
        for (what, retire, flag) in cases {
            let chain = Chain::new(genesis(4, 2));
            let b = BlobId([5; 32]);
            chain.register_blob(b, 3).unwrap();
            let before = chain.event_count();
            retire(&chain, b).unwrap();
            retire(&chain, b).unwrap();
            assert_eq!(chain.event_count(), before + 1, "{what}: one event");
            assert!(flag(&chain.blob(b).unwrap()), "{what}: flag set");
            let unknown = BlobId([6; 32]);
            assert_eq!(
                retire(&chain, unknown),
                Err(ChainError::UnknownBlob(unknown)),
                "{what}"
            );
        }
    }

    #[test]
    fn incomplete_committees_are_rejected() {
        let chain = Chain::new(genesis(4, 2));
        chain.force_epoch_change_done();
        let err = chain.start_epoch_change(genesis(3, 2)).unwrap_err();
        assert_eq!(
            err,
            ChainError::BadCommittee {
                expected: 4,
                got: 3
            }
        );
    }
}
