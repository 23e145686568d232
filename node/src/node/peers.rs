//! Talking to other members: signed calls with timeouts, and fetching verified blob metadata
//! from members in a seeded random order, retrying until it succeeds or the blob retires.

use super::{Node, NodeError};
use crate::blob::BlobMetadata;
use crate::fail_points;
use crate::types::{BlobId, NodeId};
use crate::wire::{self, CallTimeouts, Request, Response, NODE_PORT};
use rand::seq::SliceRandom;
use rand::SeedableRng;

impl Node {
    fn timeouts(&self) -> CallTimeouts {
        super::call_timeouts(&self.config)
    }

    /// Sends a signed request to another node.
    pub(super) async fn call_node(
        &self,
        to: NodeId,
        request: &Request,
    ) -> Result<Response, NodeError> {
        let payload = wire::encode(request, self.config.max_frame_bytes)?;
        let envelope = self.key.seal(self.ctx.id, payload);
        Ok(self
            .pool
            .call(&to.host(), NODE_PORT, &envelope, self.timeouts())
            .await?)
    }

    /// Members that serve reads (current and previous committee), minus this node, in an
    /// order drawn from the node's seed and the blob id.
    fn metadata_peers(&self, blob: BlobId) -> Vec<NodeId> {
        let view = self.view();
        let mut peers: Vec<NodeId> = view
            .current
            .members()
            .union(&view.previous.members())
            .copied()
            .collect();
        peers.retain(|p| *p != self.ctx.id);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&blob.0);
        seed[..8]
            .iter_mut()
            .zip(self.ctx.seed.to_le_bytes())
            .for_each(|(a, b)| *a ^= b);
        peers.shuffle(&mut rand_chacha::ChaCha8Rng::from_seed(seed));
        peers
    }

    /// Fetches, verifies and stores a blob's metadata; retries forever with backoff until it
    /// succeeds, and gives up with `Retired` once the blob retires.
    pub(super) async fn fetch_metadata(&self, blob: BlobId) -> Result<BlobMetadata, NodeError> {
        loop {
            if self.is_retired(blob)? {
                return Err(NodeError::Retired);
            }
            if !self
                .ctx
                .fail
                .flag(fail_points::SYNC_METADATA_UNAVAILABLE)
                .await
            {
                for peer in self.metadata_peers(blob) {
                    if let Ok(Response::Metadata(m)) =
                        self.call_node(peer, &Request::GetMetadata { blob }).await
                    {
                        if m.verify(&blob).is_ok() {
                            self.storage.put_metadata(blob, &m)?;
                            return Ok(m);
                        }
                        tracing::warn!(node = %self.ctx.id, %peer, %blob, "peer served metadata that does not verify");
                    }
                }
            }
            tokio::time::sleep(self.config.metadata_fetch_backoff).await;
        }
    }
}
