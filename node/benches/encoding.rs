//! Micro-benchmarks of the blob and storage hot paths (run outside the simulation):
//! `cargo bench -p shardstorm-node --bench encoding`. Times with `std::time::Instant` over many
//! iterations and prints microseconds per operation.

use shardstorm_node::blob::{
    decode, encode, recover_sliver, verify_sliver, BlobMetadata, EncodedBlob, EncodingConfig,
    SliverPairHashes,
};
use shardstorm_node::storage::{Disk, SimDisk, Storage};
use shardstorm_node::wire::{self, Envelope, Request, Response};
use shardstorm_node::{BlobId, NodeId, ShardIndex, SliverType};
use std::hint::black_box;
use std::time::Instant;

const N_SHARDS: u16 = 20;

/// Rounds per measurement; the fastest round is reported (robust against a busy machine).
const ROUNDS: u32 = 5;

/// Runs `f` `iters` times per round and returns the best round's microseconds per call. `f`
/// gets a call number unique across rounds.
fn time(iters: u32, mut f: impl FnMut(u32)) -> f64 {
    for i in 0..iters.min(10) {
        f(i);
    }
    let mut best = f64::INFINITY;
    for round in 0..ROUNDS {
        let start = Instant::now();
        for i in 0..iters {
            f(10 + round * iters + i);
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / f64::from(iters));
    }
    best
}

fn blob_data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 251) as u8).collect()
}

fn verify_all(blob: &EncodedBlob) {
    blob.metadata.verify(&blob.blob_id).expect("metadata");
    for ty in SliverType::ALL {
        for i in 0..blob.metadata.n_shards {
            let s = ShardIndex(i);
            let sliver = blob.sliver(s, ty).expect("sliver");
            verify_sliver(&blob.metadata, s, ty, sliver).expect("verify");
        }
    }
}

fn symbols(blob: &EncodedBlob, ty: SliverType, skip: u16) -> Vec<(ShardIndex, Vec<u8>)> {
    (0..blob.metadata.n_shards)
        .filter(|&i| i != skip)
        .map(|i| {
            let s = ShardIndex(i);
            (s, blob.sliver(s, ty).unwrap_or_default().to_vec())
        })
        .collect()
}

fn row(name: &str, us: f64) {
    println!("| {name:<52} | {us:>10.2} |");
}

fn bench_blobs(cfg: &EncodingConfig) {
    for len in [2 * 1024, 16 * 1024] {
        let data = blob_data(len);
        let kib = len / 1024;
        row(
            &format!("encode {kib} KiB, {N_SHARDS} shards"),
            time(2000, |_| {
                black_box(encode(cfg, black_box(&data)).expect("encode"));
            }),
        );
        let blob = encode(cfg, &data).expect("encode");
        row(
            &format!("verify metadata + all 40 slivers, {kib} KiB"),
            time(2000, |_| verify_all(black_box(&blob))),
        );
        row(
            &format!("encode + verify, {kib} KiB"),
            time(2000, |_| {
                let blob = encode(cfg, black_box(&data)).expect("encode");
                verify_all(&blob);
            }),
        );
        for ty in SliverType::ALL {
            let k = usize::from(cfg.k(ty));
            let syms: Vec<_> = symbols(&blob, ty, 0).into_iter().take(k).collect();
            row(
                &format!("recover one {ty} sliver from k={k}, {kib} KiB"),
                time(2000, |_| {
                    black_box(
                        recover_sliver(cfg, &blob.metadata, ShardIndex(0), ty, &syms)
                            .expect("recover"),
                    );
                }),
            );
        }
        let k = usize::from(cfg.k(SliverType::Primary));
        let syms: Vec<_> = symbols(&blob, SliverType::Primary, u16::MAX)
            .into_iter()
            .skip(N_SHARDS as usize - k)
            .collect();
        row(
            &format!("decode from k={k} primary slivers, {kib} KiB"),
            time(2000, |_| {
                black_box(decode(cfg, &blob.metadata, &syms).expect("decode"));
            }),
        );
    }
}

fn id(i: u32) -> BlobId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    BlobId(b)
}

fn bench_storage(cfg: &EncodingConfig) {
    row(
        "Storage::open on a fresh SimDisk",
        time(500, |i| {
            black_box(Storage::open(&Disk::Sim(SimDisk::new(u64::from(i)))).expect("open"));
        }),
    );
    let disk = SimDisk::new(1);
    let storage = Storage::open(&Disk::Sim(disk.clone())).expect("open");
    let shard = ShardIndex(0);
    storage.create_shard(shard).expect("create");
    let blob = encode(cfg, &blob_data(2048)).expect("encode");
    let sliver = blob.primary[0].clone();
    row(
        "commit: set_event_cursor (one put)",
        time(2000, |i| {
            storage.set_event_cursor(u64::from(i)).expect("put")
        }),
    );
    row(
        "commit: put_sliver (one 2 KiB-blob sliver)",
        time(2000, |i| {
            storage
                .put_sliver(shard, SliverType::Primary, id(i), &sliver)
                .expect("put")
        }),
    );
    let mut next = 100_000;
    row(
        "commit: commit_sync_batch of 100 slivers + progress",
        time(200, |_| {
            let batch: Vec<_> = (next..next + 100)
                .map(|i| (id(i), sliver.clone()))
                .collect();
            next += 100;
            let last = batch.last().map(|(id, _)| *id).unwrap_or(BlobId::MIN);
            storage
                .commit_sync_batch(
                    shard,
                    SliverType::Primary,
                    &batch,
                    &[],
                    Some((last, SliverType::Primary)),
                )
                .expect("batch")
        }),
    );
    row(
        "read: sliver (one get)",
        time(5000, |i| {
            black_box(
                storage
                    .sliver(shard, SliverType::Primary, id(i % 2000))
                    .expect("get"),
            );
        }),
    );
    row(
        "read: shard_status",
        time(5000, |_| {
            black_box(storage.shard_status(shard).expect("get"));
        }),
    );
    let stats = disk.stats();
    println!(
        "\nSimDisk after the storage benchmarks: {} KiB, {} syncs",
        stats.len / 1024,
        stats.syncs
    );
}

/// Metadata of a blob over `n_shards` shards with made-up hashes (only its encoding is timed).
fn metadata_of(n_shards: u16) -> BlobMetadata {
    BlobMetadata {
        unencoded_length: 2048,
        n_shards,
        hashes: (0..n_shards)
            .map(|i| SliverPairHashes {
                primary: [i as u8; 32],
                secondary: [!(i as u8); 32],
            })
            .collect(),
    }
}

const FRAME_LIMIT: usize = 64 << 20;

fn bench_wire() {
    for n in [20u16, 1000] {
        let response = Response::Metadata(metadata_of(n));
        let bytes = wire::encode(&response, FRAME_LIMIT).expect("encode");
        row(
            &format!("wire: encode metadata response, {n} shards"),
            time(2000, |_| {
                black_box(wire::encode(black_box(&response), FRAME_LIMIT).expect("encode"));
            }),
        );
        row(
            &format!("wire: decode metadata response, {n} shards"),
            time(2000, |_| {
                black_box(
                    wire::decode::<Response>(black_box(&bytes), FRAME_LIMIT).expect("decode"),
                );
            }),
        );
    }
    let page = Response::Slivers((0..100).map(|i| (id(i), vec![i as u8; 256])).collect());
    let bytes = wire::encode(&page, FRAME_LIMIT).expect("encode");
    row(
        "wire: encode sync page, 100 slivers of 256 B",
        time(2000, |_| {
            black_box(wire::encode(black_box(&page), FRAME_LIMIT).expect("encode"));
        }),
    );
    row(
        "wire: decode sync page, 100 slivers of 256 B",
        time(2000, |_| {
            black_box(wire::decode::<Response>(black_box(&bytes), FRAME_LIMIT).expect("decode"));
        }),
    );
    let request = Request::SyncShard {
        shard: ShardIndex(3),
        ty: SliverType::Primary,
        start: id(7),
        count: 100,
        epoch: 4,
    };
    let payload = wire::encode(&request, FRAME_LIMIT).expect("encode");
    let envelope = wire::node_keypair(1, NodeId(2)).seal(NodeId(2), payload);
    let frame = wire::encode(&envelope, FRAME_LIMIT).expect("encode");
    row(
        "wire: decode signed envelope + sync request",
        time(5000, |_| {
            let env = wire::decode::<Envelope>(black_box(&frame), FRAME_LIMIT).expect("decode");
            black_box(wire::decode::<Request>(&env.payload, FRAME_LIMIT).expect("decode"));
        }),
    );
}

fn bench_metadata_table() {
    let storage = Storage::open(&Disk::Sim(SimDisk::new(2))).expect("open");
    for n in [20u16, 1000] {
        let m = metadata_of(n);
        storage.put_metadata(id(n.into()), &m).expect("put");
        row(
            &format!("read: metadata, {n} shards"),
            time(2000, |_| {
                black_box(storage.metadata(id(n.into())).expect("get"));
            }),
        );
    }
}

fn main() {
    let cfg = EncodingConfig::new(N_SHARDS).expect("config");
    println!("| {:<52} | {:>10} |", "operation", "µs/op");
    println!("|{:-<54}|{:-<12}|", "", "");
    bench_blobs(&cfg);
    bench_storage(&cfg);
    bench_wire();
    bench_metadata_table();
}
