//! shardstorm-node: the system under test. A storage node running shard sync and blob-metadata
//! recovery as specified in `spec/shard-sync.md`, on real storage (redb), real erasure coding and
//! real (simulated) TCP.

pub mod blob;
pub mod chain;
pub mod chain_client;
pub mod chain_host;
pub mod config;
pub mod ctx;
pub mod fail_points;
pub mod node;
pub mod status;
pub mod storage;
pub mod types;
pub mod wire;

pub use chain::{Chain, ChainEvent, Committee};
pub use config::{Bug, NodeConfig, UnknownBug};
pub use ctx::{NodeCtx, Probe, ProbeEvent};
pub use node::{run, AdminRequest, NodeHandle, NodeSetup, NodeSnapshot};
pub use status::{legal_transition, NodeStatus, ShardStatus};
pub use types::{BlobId, BlobInfo, Epoch, NodeId, ShardIndex, SliverType};
