//! The workload client: writes blobs (encode, register, upload to the committee, certify once
//! more than two thirds of the shards stored both slivers), deletes some, occasionally uploads
//! an inconsistently encoded blob, and reads blobs back. It keeps the ground truth the oracle
//! audits against.

use crate::oracle::BlobTruth;
use crate::trace::{ChainNote, Recorder, TraceKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shardstorm_faults::LockExt;
use shardstorm_node::blob::{decode, encode, encode_inconsistent, EncodedBlob, EncodingConfig};
use shardstorm_node::chain::ChainError;
use shardstorm_node::chain_client::ChainClient;
use shardstorm_node::wire::{
    self, CallTimeouts, ChainRequest, Envelope, Request, Response, NODE_PORT,
};
use shardstorm_node::{BlobId, Chain, NodeId, ShardIndex, SliverType};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the workload behaves.
#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub blobs: u32,
    /// Spread the writes over this much simulated time.
    pub duration: Duration,
    pub seed: u64,
    pub min_size: usize,
    pub max_size: usize,
    /// Blob lifetime in epochs, drawn uniformly from this range.
    pub lifetime: (u64, u64),
    /// Probability that a write is followed by deleting an earlier blob.
    pub delete_probability: f64,
    /// Probability that a blob is uploaded inconsistently encoded (byzantine client).
    pub inconsistent_probability: f64,
}

/// Ground truth of one written blob.
#[derive(Clone, Debug)]
pub struct WrittenBlob {
    pub data: Vec<u8>,
    pub truth: BlobTruth,
    pub certified: bool,
}

/// What the workload did, shared with the driver and the audit.
#[derive(Clone, Debug, Default)]
pub struct WorkloadLog {
    inner: Arc<Mutex<BTreeMap<BlobId, WrittenBlob>>>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

impl WorkloadLog {
    /// Stops the workload before its next write (the liveness phase stops it; a write in
    /// flight finishes).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn blobs(&self) -> BTreeMap<BlobId, WrittenBlob> {
        self.inner.lock_ok().clone()
    }

    fn insert(&self, id: BlobId, blob: WrittenBlob) {
        self.inner.lock_ok().insert(id, blob);
    }

    fn set_certified(&self, id: BlobId) {
        if let Some(b) = self.inner.lock_ok().get_mut(&id) {
            b.certified = true;
        }
    }

    /// Ground truth for the audit.
    pub fn truths(&self) -> BTreeMap<BlobId, BlobTruth> {
        // Only the hashes: the oracle asks for them at every state audit, so the blobs' data
        // is not copied.
        self.inner
            .lock_ok()
            .iter()
            .map(|(k, v)| (*k, v.truth.clone()))
            .collect()
    }
}

/// Timeouts for client calls.
pub fn client_timeouts() -> CallTimeouts {
    CallTimeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_secs(2),
        max_frame_bytes: 64 << 20,
    }
}

async fn client_call(node: NodeId, request: &Request) -> Result<Response, wire::WireError> {
    let payload = wire::encode(request, 64 << 20)?;
    let envelope = Envelope {
        sender: None,
        payload,
        signature: None,
    };
    wire::call(&node.host(), NODE_PORT, &envelope, client_timeouts()).await
}

/// The workload's main loop (a turmoil client of the chain host and the nodes).
pub async fn run(
    cfg: WorkloadConfig,
    encoding: EncodingConfig,
    recorder: Recorder,
    log: WorkloadLog,
) -> turmoil::Result {
    let chain = ChainClient::anonymous(client_timeouts());
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let interval = cfg.duration / cfg.blobs.max(1);
    let mut written: Vec<BlobId> = Vec::new();
    for _ in 0..cfg.blobs {
        tokio::time::sleep(interval).await;
        if log.stopped() {
            break;
        }
        let size = rng.random_range(cfg.min_size..=cfg.max_size);
        let data: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        let inconsistent = rng.random_bool(cfg.inconsistent_probability);
        let lifetime = rng.random_range(cfg.lifetime.0..=cfg.lifetime.1);
        if let Some(id) = write_blob(
            &chain,
            &encoding,
            &recorder,
            &log,
            data,
            inconsistent,
            lifetime,
            &mut rng,
        )
        .await
        {
            written.push(id);
        }
        if !written.is_empty() && rng.random_bool(cfg.delete_probability) {
            let victim = written.swap_remove(rng.random_range(0..written.len()));
            let delete = chain.transact(ChainRequest::DeleteBlob { blob: victim });
            if delete.await.is_ok() {
                recorder.record(None, TraceKind::Chain(ChainNote::Delete { blob: victim }));
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn write_blob(
    chain: &ChainClient,
    encoding: &EncodingConfig,
    recorder: &Recorder,
    log: &WorkloadLog,
    data: Vec<u8>,
    inconsistent: bool,
    lifetime: u64,
    rng: &mut ChaCha8Rng,
) -> Option<BlobId> {
    let encoded = if inconsistent {
        let bad = ShardIndex(rng.random_range(0..encoding.n_shards()));
        encode_inconsistent(encoding, &data, bad).ok()?
    } else {
        encode(encoding, &data).ok()?
    };
    let id = encoded.blob_id;
    let truth = BlobTruth {
        primary: encoded
            .primary
            .iter()
            .map(|s| *blake3::hash(s).as_bytes())
            .collect(),
        secondary: encoded
            .secondary
            .iter()
            .map(|s| *blake3::hash(s).as_bytes())
            .collect(),
        consistent: !inconsistent,
    };
    let register = ChainRequest::RegisterBlob {
        blob: id,
        lifetime_epochs: lifetime,
    };
    chain.transact(register).await.ok()?;
    log.insert(
        id,
        WrittenBlob {
            data,
            truth,
            certified: false,
        },
    );
    recorder.record(
        None,
        TraceKind::Chain(ChainNote::Register {
            blob: id,
            lifetime,
            consistent: !inconsistent,
        }),
    );
    for _ in 0..3 {
        let epoch = chain.epoch().await;
        let stored = upload(chain, epoch, &encoded).await;
        if 3 * stored <= 2 * encoding.n_shards() as usize {
            break;
        }
        match chain
            .transact(ChainRequest::CertifyBlob { blob: id, epoch })
            .await
        {
            Ok(()) => {
                log.set_certified(id);
                recorder.record(
                    None,
                    TraceKind::Chain(ChainNote::Certify {
                        blob: id,
                        shards: stored,
                    }),
                );
                break;
            }
            Err(ChainError::StaleCertificate { .. }) => continue,
            Err(_) => break,
        }
    }
    Some(id)
}

/// Uploads to every member of the current committee, retrying while nodes have not seen the
/// registration yet; returns how many shards stored both slivers.
async fn upload(chain: &ChainClient, epoch: u64, encoded: &EncodedBlob) -> usize {
    let committee = chain.committee(epoch).await.unwrap_or_default();
    let calls = committee.members().into_iter().map(|node| {
        let shards = committee.shards_of(node);
        let slivers: Vec<_> = shards
            .iter()
            .flat_map(|s| {
                let i = s.0 as usize;
                [
                    (*s, SliverType::Primary, encoded.primary[i].clone()),
                    (*s, SliverType::Secondary, encoded.secondary[i].clone()),
                ]
            })
            .collect();
        let request = Request::StoreBlob {
            metadata: encoded.metadata.clone(),
            slivers,
        };
        async move {
            for _ in 0..8 {
                if let Ok(Response::Stored(done)) = client_call(node, &request).await {
                    return done.len() / 2;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            0
        }
    });
    futures::future::join_all(calls).await.into_iter().sum()
}

/// Reads a blob back from the committee: collects primary slivers and decodes.
pub async fn read_blob(
    chain: &Chain,
    encoding: &EncodingConfig,
    blob: BlobId,
    expected: &[u8],
) -> bool {
    let members = chain
        .committee(chain.epoch())
        .map(|c| c.members())
        .unwrap_or_default();
    let metadata_req = Request::GetMetadata { blob };
    let mut metadata = None;
    let mut symbols = Vec::new();
    for node in members {
        if metadata.is_none() {
            if let Ok(Response::Metadata(m)) = client_call(node, &metadata_req).await {
                metadata = Some(m);
            }
        }
        if let Ok(Response::Symbols(s)) = client_call(node, &Request::ReadSlivers { blob }).await {
            symbols.extend(s);
        }
    }
    let Some(metadata) = metadata else {
        return false;
    };
    symbols.sort_by_key(|(s, _)| *s);
    symbols.dedup_by_key(|(s, _)| *s);
    decode(encoding, &metadata, &symbols).is_ok_and(|d| d == expected)
}
