//! Talking to the chain host: every call under the wire timeouts, retried with capped
//! exponential backoff in simulated time while the chain is unreachable, and a cache of what
//! never changes once the chain has it (committees of past and current epochs, node keys).
//!
//! Callers choose how long to wait: [`ChainClient::call`] retries until the chain answers (the
//! event loop and attestations wait out a partition), [`ChainClient::try_call`] makes one
//! attempt (the request server answers its own caller instead of waiting). A node's client
//! signs its transactions (reads are public); the workload's is anonymous.

use crate::chain::{AttestationOutcome, ChainError, Committee};
use crate::fail_points;
use crate::node::CommitteeView;
use crate::types::{BlobId, Epoch, NodeId};
use crate::wire::{
    self, CallTimeouts, ChainRequest, ChainResponse, Envelope, EventPage, NodeKey, Pool, Request,
    Response, WireError, CHAIN_HOST, CHAIN_PORT,
};
use shardstorm_faults::{FailPoints, LockExt};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// First and largest pause between attempts.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Why one attempt got no answer from the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainCallError {
    #[error("chain unreachable: {0}")]
    Wire(#[from] WireError),
    #[error("chain refused the request: {0}")]
    Refused(wire::ServiceError),
    #[error("chain answered {0} with an unexpected response")]
    Unexpected(&'static str),
    #[error("injected at {0}")]
    Injected(String),
}

/// What never changes once the chain has it.
#[derive(Default)]
struct Cache {
    committees: BTreeMap<Epoch, Committee>,
    keys: BTreeMap<NodeId, [u8; 32]>,
}

/// A client of the chain host.
pub struct ChainClient {
    signer: Option<(NodeId, NodeKey)>,
    fail: Option<FailPoints>,
    timeouts: CallTimeouts,
    pool: Pool,
    cache: Mutex<Cache>,
}

impl ChainClient {
    /// A node's client: requests signed with its key, `chain.request` evaluated per attempt.
    pub fn for_node(id: NodeId, key: NodeKey, fail: FailPoints, timeouts: CallTimeouts) -> Self {
        Self {
            signer: Some((id, key)),
            fail: Some(fail),
            timeouts,
            pool: Pool::default(),
            cache: Mutex::default(),
        }
    }

    /// An anonymous client (the workload).
    pub fn anonymous(timeouts: CallTimeouts) -> Self {
        Self {
            signer: None,
            fail: None,
            timeouts,
            pool: Pool::default(),
            cache: Mutex::default(),
        }
    }

    /// Reads go unsigned (they are public); transactions of a node carry its signature.
    fn envelope(&self, request: ChainRequest) -> Result<Envelope, WireError> {
        let sign = request.needs_node_signature();
        let payload = wire::encode(&Request::Chain(request), self.timeouts.max_frame_bytes)?;
        Ok(match &self.signer {
            Some((id, key)) if sign => key.seal(*id, payload),
            _ => Envelope {
                sender: None,
                payload,
                signature: None,
            },
        })
    }

    /// One attempt.
    pub async fn try_call(&self, request: ChainRequest) -> Result<ChainResponse, ChainCallError> {
        if let Some(fail) = &self.fail {
            fail.check(fail_points::CHAIN_REQUEST)
                .await
                .map_err(|e| ChainCallError::Injected(e.point))?;
        }
        let kind = request.kind();
        let mut timeouts = self.timeouts;
        if let ChainRequest::Events { wait_ms, .. } = request {
            timeouts.request += Duration::from_millis(u64::from(wait_ms));
        }
        let envelope = self.envelope(request)?;
        match self
            .pool
            .call(CHAIN_HOST, CHAIN_PORT, &envelope, timeouts)
            .await?
        {
            Response::Chain(r) => Ok(r),
            Response::Error(e) => Err(ChainCallError::Refused(e)),
            _ => Err(ChainCallError::Unexpected(kind)),
        }
    }

    /// Retries until the chain gives an answer `pick` accepts, pausing with capped exponential
    /// backoff between attempts.
    async fn call<T>(&self, request: ChainRequest, pick: impl Fn(ChainResponse) -> Option<T>) -> T {
        let mut pause = RETRY_MIN;
        loop {
            match self.try_call(request.clone()).await {
                Ok(r) => match pick(r) {
                    Some(t) => return t,
                    None => tracing::warn!(kind = request.kind(), "unexpected chain response"),
                },
                Err(e) => {
                    tracing::debug!(kind = request.kind(), error = %e, "chain call failed; retrying")
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// A page of events from `from` (a long poll of up to `wait`); waits for the chain.
    pub async fn events(&self, from: u64, max: u32, wait: Duration) -> EventPage {
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        self.call(ChainRequest::Events { from, max, wait_ms }, |r| match r {
            ChainResponse::Events(page) => Some(page),
            _ => None,
        })
        .await
    }

    /// The chain's current epoch; waits for the chain.
    pub async fn epoch(&self) -> Epoch {
        self.call(ChainRequest::Epoch, |r| match r {
            ChainResponse::Epoch(e) => Some(e),
            _ => None,
        })
        .await
    }

    /// The committee of `epoch` if it is cached (no network).
    pub fn cached_committee(&self, epoch: Epoch) -> Option<Committee> {
        self.cache.lock_ok().committees.get(&epoch).cloned()
    }

    /// The committee of `epoch` (None until the chain has one); waits for the chain.
    pub async fn committee(&self, epoch: Epoch) -> Option<Committee> {
        if let Some(c) = self.cached_committee(epoch) {
            return Some(c);
        }
        let committee = self
            .call(ChainRequest::Committee { epoch }, |r| match r {
                ChainResponse::Committee(c) => Some(c),
                _ => None,
            })
            .await;
        committee.inspect(|c| self.remember(c))
    }

    /// The committee of `epoch` from the cache or one attempt.
    pub async fn try_committee(&self, epoch: Epoch) -> Result<Option<Committee>, ChainCallError> {
        if let Some(c) = self.cached_committee(epoch) {
            return Ok(Some(c));
        }
        match self.try_call(ChainRequest::Committee { epoch }).await? {
            ChainResponse::Committee(c) => Ok(c.inspect(|c| self.remember(c))),
            _ => Err(ChainCallError::Unexpected("chain-committee")),
        }
    }

    fn remember(&self, committee: &Committee) {
        self.cache
            .lock_ok()
            .committees
            .insert(committee.epoch, committee.clone());
    }

    /// The view (previous and current committee) for `epoch`; waits for the chain.
    pub async fn view(&self, epoch: Epoch) -> CommitteeView {
        let current = self.committee(epoch).await.unwrap_or_default();
        let previous = self
            .committee(epoch.saturating_sub(1))
            .await
            .unwrap_or_default();
        CommitteeView { previous, current }
    }

    /// A node's registered key from the cache or one attempt.
    pub async fn node_key(&self, node: NodeId) -> Result<Option<[u8; 32]>, ChainCallError> {
        if let Some(k) = self.cache.lock_ok().keys.get(&node) {
            return Ok(Some(*k));
        }
        match self.try_call(ChainRequest::NodeKey { node }).await? {
            ChainResponse::NodeKey(k) => {
                if let Some(k) = k {
                    self.cache.lock_ok().keys.insert(node, k);
                }
                Ok(k)
            }
            _ => Err(ChainCallError::Unexpected("chain-node-key")),
        }
    }

    /// `epoch_sync_done(epoch)`; retries until the chain answers, whatever the answer (every
    /// outcome is final: a stale or refused attestation is never sent again).
    pub async fn epoch_sync_done(&self, epoch: Epoch) -> AttestationOutcome {
        self.call(ChainRequest::EpochSyncDone { epoch }, |r| match r {
            ChainResponse::Attestation(o) => Some(o),
            _ => None,
        })
        .await
    }

    /// A transaction; waits for the chain, returns its verdict.
    pub async fn transact(&self, request: ChainRequest) -> Result<(), ChainError> {
        self.call(request, |r| match r {
            ChainResponse::Executed => Some(Ok(())),
            ChainResponse::Rejected(e) => Some(Err(e)),
            _ => None,
        })
        .await
    }

    /// An inconsistency proof for `blob`; waits for the chain.
    pub async fn invalidate_blob(&self, blob: BlobId) -> Result<(), ChainError> {
        self.transact(ChainRequest::InvalidateBlob { blob }).await
    }
}
