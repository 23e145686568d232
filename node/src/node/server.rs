//! The node's request server: accepts connections, decodes frames, authenticates node
//! requests, and answers sync pages (the source side of spec 4.6, checks a to h in order),
//! metadata, recovery symbols, uploads and reads. Bad input gets a typed error, never a panic.

use super::{node_spawn, CommitteeView, Node, NodeError};
use crate::blob::verify_sliver;
use crate::ctx::ProbeEvent;
use crate::fail_points;
use crate::status::ShardStatus;
use crate::types::{BlobId, Epoch, NodeId, ShardIndex, SliverType};
use crate::wire::{self, Envelope, Request, Response, ServiceError, NODE_PORT};
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio_util::codec::Framed;

/// Accepts connections forever, one task per connection.
pub(super) async fn serve(node: Arc<Node>) {
    let listener = match turmoil::net::TcpListener::bind(("0.0.0.0", NODE_PORT)).await {
        Ok(l) => l,
        Err(e) => {
            node.fatal(NodeError::Wire(wire::WireError::Io(format!("bind: {e}"))))
                .await;
        }
    };
    while let Ok((stream, _)) = listener.accept().await {
        let conn = node.clone();
        node_spawn(&node.ctx.fail, async move {
            conn.serve_connection(stream).await
        });
    }
}

impl Node {
    async fn serve_connection(&self, stream: turmoil::net::TcpStream) {
        let mut framed = Framed::new(stream, wire::codec(self.config.max_frame_bytes));
        while let Some(frame) = framed.next().await {
            let response = match frame {
                Ok(bytes) => self.answer(&bytes).await,
                Err(e) => {
                    tracing::warn!(node = %self.ctx.id, error = %e, "bad frame; closing connection");
                    Response::Error(ServiceError::Malformed(e.to_string()))
                }
            };
            let Ok(bytes) = wire::encode(&response, self.config.max_frame_bytes) else {
                return;
            };
            if framed.send(bytes::Bytes::from(bytes)).await.is_err() {
                return;
            }
        }
    }

    /// Decodes and answers one frame.
    pub(super) async fn answer(&self, frame: &[u8]) -> Response {
        let limit = self.config.max_frame_bytes;
        let decoded = wire::decode::<Envelope>(frame, limit)
            .and_then(|env| wire::decode::<Request>(&env.payload, limit).map(|req| (env, req)));
        let (envelope, request) = match decoded {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(node = %self.ctx.id, error = %e, "malformed request");
                return Response::Error(ServiceError::Malformed(e.to_string()));
            }
        };
        let kind = request.kind();
        match self.dispatch(&envelope, request).await {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(node = %self.ctx.id, kind, error = %e, "request rejected");
                Response::Error(e)
            }
        }
    }

    async fn dispatch(&self, env: &Envelope, request: Request) -> Result<Response, ServiceError> {
        match request {
            Request::SyncShard {
                shard,
                ty,
                start,
                count,
                epoch,
            } => self.serve_sync(env, shard, ty, start, count, epoch).await,
            Request::GetMetadata { blob } => {
                self.authenticate(env).await?;
                self.storage
                    .metadata(blob)
                    .map_err(internal)?
                    .map(Response::Metadata)
                    .ok_or(ServiceError::NotFound)
            }
            Request::GetRecoverySymbols { blob, ty, .. } => {
                self.authenticate(env).await?;
                self.local_slivers(blob, ty).map(Response::Symbols)
            }
            Request::StoreBlob { metadata, slivers } => self.store_blob(metadata, slivers),
            Request::ReadSlivers { blob } => self
                .local_slivers(blob, SliverType::Primary)
                .map(Response::Symbols),
            Request::Chain(c) => Err(ServiceError::Malformed(format!(
                "{} is a chain request; this is a storage node",
                c.kind()
            ))),
        }
    }

    /// Checks the signature of a node's request (client requests are unsigned).
    async fn authenticate(&self, env: &Envelope) -> Result<Option<NodeId>, ServiceError> {
        let Some(sender) = env.sender else {
            return Ok(None);
        };
        let key = self
            .chain
            .node_key(sender)
            .await
            .map_err(chain_unavailable)?
            .ok_or(ServiceError::Unauthorized)?;
        if !wire::verify_envelope(env, &key) {
            return Err(ServiceError::MessageVerificationError);
        }
        Ok(Some(sender))
    }

    /// Whether `node` is a member of the previous, current or next committee (the next one from
    /// the chain: one attempt, and a chain that does not answer is an internal error).
    async fn knows(&self, view: &CommitteeView, node: NodeId) -> Result<bool, ServiceError> {
        if view.knows(node) {
            return Ok(true);
        }
        let next = self
            .chain
            .try_committee(view.epoch() + 1)
            .await
            .map_err(chain_unavailable)?;
        Ok(next.is_some_and(|c| c.contains(node)))
    }

    /// The source side of shard sync, checks a to h in the spec's order.
    async fn serve_sync(
        &self,
        env: &Envelope,
        shard: ShardIndex,
        ty: SliverType,
        start: BlobId,
        count: u32,
        epoch: Epoch,
    ) -> Result<Response, ServiceError> {
        let view = self.view();
        let requester = env.sender.ok_or(ServiceError::Unauthorized)?;
        if !self.knows(&view, requester).await? {
            return Err(ServiceError::Unauthorized);
        }
        self.authenticate(env).await?;
        if epoch != view.epoch() {
            return Err(ServiceError::InvalidEpoch {
                request_epoch: epoch,
                server_epoch: view.epoch(),
            });
        }
        if view.current.owner(shard) != Some(requester) {
            return Err(ServiceError::Unauthorized);
        }
        if self.ctx.fail.flag(fail_points::SOURCE_RETURN_ERROR).await {
            return Err(ServiceError::Internal(
                "injected source.return_error".into(),
            ));
        }
        if let Some(limit) = self
            .config
            .max_sliver_count_per_sync_request
            .filter(|l| count > *l)
        {
            return Err(ServiceError::RequestedSliverCountExceedsLimit {
                requested: count,
                limit,
            });
        }
        if !self
            .stores_shard(shard)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
        {
            return Err(ServiceError::ShardNotAssigned(shard));
        }
        let empty = self.ctx.fail.flag(fail_points::SOURCE_RETURN_EMPTY).await;
        let page = self.sync_page(shard, ty, start, count, epoch, empty)?;
        self.ctx.report(ProbeEvent::SliversServed {
            requester,
            shard,
            epoch,
            slivers: page.len(),
        });
        Ok(Response::Slivers(page))
    }

    /// Step h: walk the certified list before E from `start`, skipping missing slivers.
    fn sync_page(
        &self,
        shard: ShardIndex,
        ty: SliverType,
        start: BlobId,
        count: u32,
        epoch: Epoch,
        empty: bool,
    ) -> Result<Vec<(BlobId, Vec<u8>)>, ServiceError> {
        let mut page = Vec::new();
        if empty {
            return Ok(page);
        }
        for blob in self
            .storage
            .certified_before(epoch)
            .map_err(internal)?
            .into_iter()
            .filter(|b| *b >= start)
        {
            if page.len() >= count as usize {
                break;
            }
            if let Some(sliver) = self.storage.sliver(shard, ty, blob).map_err(internal)? {
                page.push((blob, self.maybe_corrupt(sliver)));
            }
        }
        Ok(page)
    }

    /// A byzantine source flips a byte of every sliver it serves.
    fn maybe_corrupt(&self, mut sliver: Vec<u8>) -> Vec<u8> {
        if self.ctx.switches.byzantine() {
            if let Some(b) = sliver.first_mut() {
                *b ^= 0x5a;
            }
        }
        sliver
    }

    /// This node's slivers of `ty` for `blob`, from every shard it stores.
    fn local_slivers(
        &self,
        blob: BlobId,
        ty: SliverType,
    ) -> Result<Vec<(ShardIndex, Vec<u8>)>, ServiceError> {
        let mut out = Vec::new();
        for shard in self.storage.shards().map_err(internal)? {
            if let Some(s) = self.storage.sliver(shard, ty, blob).map_err(internal)? {
                out.push((shard, self.maybe_corrupt(s)));
            }
        }
        Ok(out)
    }

    /// A client upload: metadata first, then every sliver that verifies and whose shard this
    /// node holds and has not locked.
    fn store_blob(
        &self,
        metadata: crate::blob::BlobMetadata,
        slivers: Vec<(ShardIndex, SliverType, Vec<u8>)>,
    ) -> Result<Response, ServiceError> {
        let blob = metadata.blob_id();
        metadata
            .verify(&blob)
            .map_err(|e| ServiceError::InvalidMetadata(e.to_string()))?;
        self.require_registered(blob)?;
        self.storage
            .put_metadata(blob, &metadata)
            .map_err(internal)?;
        let mut writes = Vec::new();
        let mut statuses = std::collections::BTreeMap::new();
        for (shard, ty, data) in slivers {
            let status = match statuses.get(&shard) {
                Some(status) => *status,
                None => {
                    let status = self.storage.shard_status(shard).map_err(internal)?;
                    *statuses.entry(shard).or_insert(status)
                }
            };
            if matches!(status, None | Some(ShardStatus::LockedToMove)) {
                continue;
            }
            if let Err(e) = verify_sliver(&metadata, shard, ty, &data) {
                return Err(ServiceError::InvalidSliver(e.to_string()));
            }
            writes.push((shard, ty, blob, data));
        }
        self.storage.put_slivers(&writes).map_err(internal)?;
        Ok(Response::Stored(
            writes.into_iter().map(|(s, t, _, _)| (s, t)).collect(),
        ))
    }

    fn require_registered(&self, blob: BlobId) -> Result<(), ServiceError> {
        let epoch = self.view().epoch();
        match self
            .blob_info_or_pending(blob)
            .map_err(|e| ServiceError::Internal(e.to_string()))?
        {
            Some(info) if !info.is_retired_at(epoch) => Ok(()),
            _ => Err(ServiceError::BlobNotRegistered),
        }
    }
}

fn internal(e: crate::storage::StorageError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

/// The chain did not answer a lookup the request needed.
fn chain_unavailable(e: crate::chain_client::ChainCallError) -> ServiceError {
    ServiceError::Internal(e.to_string())
}
