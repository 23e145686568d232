//! Benchmark of one shard transfer in simulation: 1,000 blobs of 16 KiB synced from the previous
//! owner to the new one (both sliver types), measured in wall time and simulated time.
//! Run: `cargo bench -p shardstorm-harness --bench transfer`.

use shardstorm_harness::ClusterBuilder;
use shardstorm_node::blob::encode;
use shardstorm_node::node::SeedBlob;
use shardstorm_node::{AdminRequest, BlobInfo, NodeId, ShardIndex, SliverType};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BLOBS: usize = 1000;
const BLOB_BYTES: usize = 16 * 1024;

fn main() {
    let shards = 4u16;
    let genesis: BTreeMap<ShardIndex, NodeId> =
        (0..shards).map(|s| (ShardIndex(s), NodeId(0))).collect();
    let mut builder = ClusterBuilder::new(1, 2, shards);
    builder.genesis = Some(genesis);
    builder.process_events = false;
    builder.config.sliver_count_per_sync_request = 100;
    let mut cluster = builder.build();
    let encoding = cluster.encoding.clone();
    let mut seeds = Vec::new();
    for i in 0..BLOBS {
        let mut data: Vec<u8> = (0..BLOB_BYTES).map(|b| (b * 31 + i * 7) as u8).collect();
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let e = encode(&encoding, &data).expect("encodes");
        cluster
            .chain
            .register_blob(e.blob_id, 100)
            .expect("registers");
        cluster.chain.certify_blob(e.blob_id).expect("certifies");
        let info = BlobInfo {
            registered_epoch: 1,
            end_epoch: 100,
            certified_epoch: Some(1),
            deleted: false,
            invalid: false,
        };
        let slivers = [
            (ShardIndex(0), SliverType::Primary, e.primary[0].clone()),
            (ShardIndex(0), SliverType::Secondary, e.secondary[0].clone()),
        ];
        seeds.push(SeedBlob {
            blob: e.blob_id,
            info,
            metadata: Some(e.metadata),
            slivers: slivers.to_vec(),
        });
    }
    cluster.chain.force_epoch_change_done();
    let mut moved: BTreeMap<ShardIndex, NodeId> =
        (0..shards).map(|s| (ShardIndex(s), NodeId(0))).collect();
    moved.insert(ShardIndex(0), NodeId(1));
    cluster.chain.start_epoch_change(moved).expect("epoch 2");
    let slots = cluster.slots();
    let done: Arc<Mutex<Option<Duration>>> = Arc::default();
    let out = done.clone();
    cluster.sim.client("bench", async move {
        let handle = |n: u16| loop {
            if let Some(h) = slots[&NodeId(n)].lock().unwrap().clone() {
                break h;
            }
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (n0, n1) = (handle(0), handle(1));
        n0.request(AdminRequest::CreateShard(ShardIndex(0))).await?;
        n0.request(AdminRequest::SetShardStatus(
            ShardIndex(0),
            shardstorm_node::ShardStatus::Active,
        ))
        .await?;
        n0.request(AdminRequest::Seed(seeds.clone())).await?;
        let infos: Vec<SeedBlob> = seeds
            .iter()
            .map(|s| SeedBlob {
                slivers: Vec::new(),
                ..s.clone()
            })
            .collect();
        n1.request(AdminRequest::Seed(infos)).await?;
        n0.request(AdminRequest::ReadCommittee(2)).await?;
        n1.request(AdminRequest::ReadCommittee(2)).await?;
        n1.request(AdminRequest::CreateShard(ShardIndex(0))).await?;
        let start = tokio::time::Instant::now();
        n1.request(AdminRequest::StartSyncShards {
            shards: vec![ShardIndex(0)],
            recover_metadata: false,
        })
        .await?;
        while !n1.no_sync_tasks().await? {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let snapshot = n1.snapshot().await?;
        let stored = snapshot.shards[&ShardIndex(0)].primary.len()
            + snapshot.shards[&ShardIndex(0)].secondary.len();
        assert_eq!(stored, 2 * BLOBS, "every sliver transferred");
        *out.lock().unwrap() = Some(start.elapsed());
        Ok(())
    });
    let wall = Instant::now();
    cluster.sim.run().expect("simulation runs");
    let wall = wall.elapsed();
    let simulated = done.lock().unwrap().expect("transfer finished");
    println!(
        "shard transfer: {BLOBS} blobs x {} KiB, both sliver types: {:.3} s wall (whole run), {:.3} s simulated transfer",
        BLOB_BYTES / 1024,
        wall.as_secs_f64(),
        simulated.as_secs_f64()
    );
}
