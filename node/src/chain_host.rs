//! The chain host: a turmoil host of its own (`chain:9100`) that serves the chain's state to
//! the nodes and the workload client over the nodes' wire protocol (length-delimited frames,
//! signed envelopes). Event reads are long polls; `epoch_sync_done` and inconsistency proofs
//! must carry a registered node's signature. The chain stays honest and up: faults reach only
//! the links to it.

use crate::chain::{Chain, ChainError};
use crate::types::NodeId;
use crate::wire::{
    self, ChainRequest, ChainResponse, Envelope, EventPage, Request, Response, ServiceError,
    CHAIN_PORT,
};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_util::codec::Framed;

/// The longest a read is held, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Events per page at most.
const MAX_PAGE: u32 = 256;

/// Serves the chain forever (the host's software).
pub async fn serve(chain: Chain, max_frame_bytes: usize) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", CHAIN_PORT)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let chain = chain.clone();
        tokio::spawn(async move { serve_connection(chain, stream, max_frame_bytes).await });
    }
}

async fn serve_connection(chain: Chain, stream: turmoil::net::TcpStream, limit: usize) {
    let mut framed = Framed::new(stream, wire::codec(limit));
    while let Some(frame) = framed.next().await {
        let response = match frame {
            Ok(bytes) => answer(&chain, &bytes, limit).await,
            Err(e) => Response::Error(ServiceError::Malformed(e.to_string())),
        };
        let Ok(bytes) = wire::encode(&response, limit) else {
            return;
        };
        if framed.send(bytes::Bytes::from(bytes)).await.is_err() {
            return;
        }
    }
}

/// Decodes, authenticates and answers one frame.
pub async fn answer(chain: &Chain, frame: &[u8], limit: usize) -> Response {
    let decoded = wire::decode::<Envelope>(frame, limit)
        .and_then(|env| wire::decode::<Request>(&env.payload, limit).map(|req| (env, req)));
    let (envelope, request) = match decoded {
        Ok(v) => v,
        Err(e) => return Response::Error(ServiceError::Malformed(e.to_string())),
    };
    let Request::Chain(request) = request else {
        return Response::Error(ServiceError::Malformed(format!(
            "{} is a storage-node request; this is the chain",
            request.kind()
        )));
    };
    let signer = match authenticate(chain, &envelope) {
        Ok(s) => s,
        Err(e) => return Response::Error(e),
    };
    if request.needs_node_signature() && signer.is_none() {
        return Response::Error(ServiceError::Unauthorized);
    }
    match execute(chain, request, signer).await {
        Ok(r) => Response::Chain(r),
        Err(e) => Response::Chain(ChainResponse::Rejected(e)),
    }
}

/// The signing node of a signed envelope (unsigned envelopes are anonymous clients).
fn authenticate(chain: &Chain, env: &Envelope) -> Result<Option<NodeId>, ServiceError> {
    let Some(sender) = env.sender else {
        return Ok(None);
    };
    let key = chain.node_key(sender).ok_or(ServiceError::Unauthorized)?;
    if !wire::verify_envelope(env, &key) {
        return Err(ServiceError::MessageVerificationError);
    }
    Ok(Some(sender))
}

async fn execute(
    chain: &Chain,
    request: ChainRequest,
    signer: Option<NodeId>,
) -> Result<ChainResponse, ChainError> {
    Ok(match request {
        ChainRequest::Events { from, max, wait_ms } => {
            let wait = Duration::from_millis(u64::from(wait_ms)).min(MAX_WAIT);
            ChainResponse::Events(events(chain, from, max.clamp(1, MAX_PAGE), wait).await)
        }
        ChainRequest::Epoch => ChainResponse::Epoch(chain.epoch()),
        ChainRequest::Committee { epoch } => ChainResponse::Committee(chain.committee(epoch)),
        ChainRequest::NodeKey { node } => ChainResponse::NodeKey(chain.node_key(node)),
        ChainRequest::EpochSyncDone { epoch } => {
            let node = signer.ok_or(ChainError::Unsigned)?;
            ChainResponse::Attestation(chain.epoch_sync_done(node, epoch))
        }
        ChainRequest::InvalidateBlob { blob } => {
            chain.invalidate_blob(blob)?;
            ChainResponse::Executed
        }
        ChainRequest::RegisterBlob {
            blob,
            lifetime_epochs,
        } => {
            chain.register_blob(blob, lifetime_epochs)?;
            ChainResponse::Executed
        }
        ChainRequest::CertifyBlob { blob, epoch } => {
            chain.certify_blob_from(blob, epoch)?;
            ChainResponse::Executed
        }
        ChainRequest::DeleteBlob { blob } => {
            chain.delete_blob(blob)?;
            ChainResponse::Executed
        }
    })
}

/// A page of events from `from`, held up to `wait` while there are none.
async fn events(chain: &Chain, from: u64, max: u32, wait: Duration) -> EventPage {
    let deadline = tokio::time::Instant::now() + wait;
    let signal = chain.new_events();
    loop {
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let events = chain.events_from(from, max as usize);
        if !events.is_empty() || tokio::time::Instant::now() >= deadline {
            return EventPage {
                events,
                first_available: chain.first_available_event(),
                first_complete_epoch: chain.first_complete_epoch(),
                event_count: chain.event_count(),
                epoch: chain.epoch(),
            };
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BlobId, ShardIndex};
    use crate::wire::node_keypair;
    use std::collections::BTreeMap;

    const LIMIT: usize = 1 << 20;

    fn chain() -> Chain {
        let genesis: BTreeMap<_, _> = (0..4).map(|i| (ShardIndex(i), NodeId(i % 2))).collect();
        let chain = Chain::new(genesis);
        chain.register_node(NodeId(0), node_keypair(1, NodeId(0)).public());
        chain
    }

    fn frame(sender: Option<NodeId>, request: ChainRequest) -> Vec<u8> {
        let payload = wire::encode(&Request::Chain(request), LIMIT).unwrap();
        let env = match sender {
            Some(n) => node_keypair(1, n).seal(n, payload),
            None => Envelope {
                sender: None,
                payload,
                signature: None,
            },
        };
        wire::encode(&env, LIMIT).unwrap()
    }

    fn run(chain: &Chain, frame: &[u8]) -> Response {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(answer(chain, frame, LIMIT))
    }

    #[test]
    fn attestations_need_a_registered_signer() {
        let chain = chain();
        let unsigned = frame(None, ChainRequest::EpochSyncDone { epoch: 1 });
        assert_eq!(
            run(&chain, &unsigned),
            Response::Error(ServiceError::Unauthorized)
        );
        let unknown = frame(Some(NodeId(1)), ChainRequest::EpochSyncDone { epoch: 1 });
        assert_eq!(
            run(&chain, &unknown),
            Response::Error(ServiceError::Unauthorized),
            "node 1 registered no key"
        );
        let signed = frame(Some(NodeId(0)), ChainRequest::EpochSyncDone { epoch: 1 });
        assert!(matches!(
            run(&chain, &signed),
            Response::Chain(ChainResponse::Attestation(_))
        ));
        assert_eq!(chain.received_attestations().len(), 1);
    }

    #[test]
    fn bad_frames_and_node_requests_get_typed_errors() {
        let chain = chain();
        assert!(matches!(
            run(&chain, b"\x01\x02garbage"),
            Response::Error(ServiceError::Malformed(_))
        ));
        let payload = wire::encode(
            &Request::GetMetadata {
                blob: BlobId([1; 32]),
            },
            LIMIT,
        )
        .unwrap();
        let env = Envelope {
            sender: None,
            payload,
            signature: None,
        };
        assert!(matches!(
            run(&chain, &wire::encode(&env, LIMIT).unwrap()),
            Response::Error(ServiceError::Malformed(_))
        ));
    }

    #[test]
    fn an_empty_event_read_waits_and_returns_the_stream_position() {
        let chain = chain();
        let read = frame(
            None,
            ChainRequest::Events {
                from: 1,
                max: 10,
                wait_ms: 500,
            },
        );
        let Response::Chain(ChainResponse::Events(page)) = run(&chain, &read) else {
            panic!("an event page");
        };
        assert!(page.events.is_empty());
        assert_eq!((page.event_count, page.epoch), (1, 1));
        let rejected = frame(
            None,
            ChainRequest::CertifyBlob {
                blob: BlobId([2; 32]),
                epoch: 1,
            },
        );
        assert_eq!(
            run(&chain, &rejected),
            Response::Chain(ChainResponse::Rejected(ChainError::UnknownBlob(BlobId(
                [2; 32]
            ))))
        );
    }
}
