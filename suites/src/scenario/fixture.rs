//! The two-node fixture of spec section 9 (the "T fixture").
//!
//! Epoch 1: node 0 and node 1 own the shards of `assignment` (`[[0,1],[2,3]]` lists node 0's and
//! node 1's shards). 23 blobs, blob i (i = 1..=23) is 32 bytes of value i, encoded for real;
//! every blob is registered and certified on the chain in epoch 1, and each node stores, for
//! every shard it owns, both slivers of every blob plus the blob's metadata and blob info (all
//! shard storages `Active`). The chain then advances to the target epoch (2 by default) whose
//! committee is the swap: node 1 owns node 0's old shards and node 0 owns node 1's. Node 1 gets
//! new storages (status `None`) for node 0's old shards; its own old shards stay `Active`,
//! now unowned; both nodes re-read the committee. Node 0, the owner of the previous committee,
//! is the sync source. Nodes do not process chain events: the scenario drives them.
//!
//! Options beyond the spec's fixture, for the failure-injection scenarios: blobs that expire at
//! a given epoch, blobs whose slivers the source lacks on its old shards, and a source that also
//! stores the shards it owns in the target epoch (so that erasure-code recovery on node 1, which
//! asks the *other* members for symbols, has enough of them).

use crate::scenario::client::{Ctl, ScenarioError};
use shardstorm_harness::{Cluster, ClusterBuilder};
use shardstorm_node::blob::{encode, EncodedBlob, EncodingConfig};
use shardstorm_node::node::{NodeSnapshot, SeedBlob};
use shardstorm_node::{
    AdminRequest, BlobId, BlobInfo, Chain, Epoch, NodeConfig, NodeId, ShardIndex, ShardStatus,
    SliverType,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A cluster whose nodes process chain events (epoch changes, blob events), for the scenarios
/// that need the node's own event processing; `owners[i]` owns shard `i` in epoch 1.
pub fn processing_cluster(seed: u64, nodes: u16, owners: &[u16], config: NodeConfig) -> Cluster {
    let mut builder = ClusterBuilder::new(seed, nodes, owners.len() as u16);
    builder.genesis = Some(
        owners
            .iter()
            .enumerate()
            .map(|(s, n)| (ShardIndex(s as u16), NodeId(*n)))
            .collect(),
    );
    builder.config = config;
    builder.process_events = true;
    builder.sim_duration = Duration::from_secs(3600);
    builder.build()
}

/// Number of blobs of the fixture.
pub const BLOBS: u8 = 23;

/// End epoch of blobs that do not expire during a scenario.
pub const FAR_END_EPOCH: Epoch = 100;

/// One fixture blob with its real encoding.
#[derive(Clone, Debug)]
pub struct TBlob {
    /// 1..=23: the blob is 32 bytes of this value.
    pub index: u8,
    pub encoded: EncodedBlob,
    pub end_epoch: Epoch,
}

impl TBlob {
    pub fn id(&self) -> BlobId {
        self.encoded.blob_id
    }

    /// Blake3 of this blob's sliver of `ty` for `shard` (what a snapshot shows when stored).
    pub fn sliver_hash(&self, shard: ShardIndex, ty: SliverType) -> Option<[u8; 32]> {
        self.encoded
            .sliver(shard, ty)
            .map(|s| *blake3::hash(s).as_bytes())
    }

    fn info(&self) -> BlobInfo {
        BlobInfo {
            registered_epoch: 1,
            end_epoch: self.end_epoch,
            certified_epoch: Some(1),
            deleted: false,
            invalid: false,
        }
    }
}

/// How a blob leaves the certified set during a scenario.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Retirement {
    Deleted,
    Invalidated,
    /// Expires at the target epoch (its end epoch becomes the target epoch).
    Expired,
}

/// The T fixture and its options.
#[derive(Clone, Debug)]
pub struct TFixture {
    /// Shards of node 0 and node 1 in epoch 1 (and every epoch before the target).
    pub assignment: [Vec<u16>; 2],
    /// The epoch the cluster ends at; its committee is the swap.
    pub epoch: Epoch,
    pub blobs: Vec<TBlob>,
    pub encoding: EncodingConfig,
    /// Blob indices whose slivers the source (node 0) lacks on its epoch-1 shards.
    pub source_lacks: BTreeSet<u8>,
    /// Node 0 also stores (as `Active`, with every sliver) the shards it owns in the target
    /// epoch, so other members hold enough recovery symbols for any shard.
    pub source_stores_new_shards: bool,
}

/// Shards of an assignment list as `ShardIndex`es.
fn shards(list: &[u16]) -> impl Iterator<Item = ShardIndex> + '_ {
    list.iter().map(|s| ShardIndex(*s))
}

impl TFixture {
    /// The spec's fixture for `assignment` (node 0's shards, node 1's shards).
    pub fn new(node0: &[u16], node1: &[u16]) -> Self {
        let n_shards = (node0.len() + node1.len()) as u16;
        let encoding = EncodingConfig::new(n_shards).expect("the fixture needs at least 4 shards");
        let blobs = (1..=BLOBS)
            .map(|i| TBlob {
                index: i,
                encoded: encode(&encoding, &[i; 32]).expect("32-byte blobs encode"),
                end_epoch: FAR_END_EPOCH,
            })
            .collect();
        Self {
            assignment: [node0.to_vec(), node1.to_vec()],
            epoch: 2,
            blobs,
            encoding,
            source_lacks: BTreeSet::new(),
            source_stores_new_shards: false,
        }
    }

    /// The spec's default assignment `[[0],[1,2,3]]`: node 1 gains shard 0.
    pub fn standard() -> Self {
        Self::new(&[0], &[1, 2, 3])
    }

    /// Makes the first `count` blobs (by index) expire at `end_epoch`.
    pub fn expiring(mut self, count: usize, end_epoch: Epoch) -> Self {
        for b in self.blobs.iter_mut().take(count) {
            b.end_epoch = end_epoch;
        }
        self
    }

    /// The cluster ends at `epoch` (committees before it are the assignment).
    pub fn at_epoch(mut self, epoch: Epoch) -> Self {
        assert!(epoch >= 2, "the swap needs a previous epoch");
        self.epoch = epoch;
        self
    }

    /// The source lacks the slivers of the first `count` blobs on its old shards.
    pub fn source_lacking(mut self, count: u8) -> Self {
        self.source_lacks = (1..=count).collect();
        self
    }

    /// The source also stores its target-epoch shards (recovery symbols for node 1).
    pub fn with_recovery_symbols(mut self) -> Self {
        self.source_stores_new_shards = true;
        self
    }

    pub fn n_shards(&self) -> u16 {
        self.encoding.n_shards()
    }

    /// Epoch-1 committee: shard -> node.
    pub fn genesis(&self) -> BTreeMap<ShardIndex, NodeId> {
        let mut map = BTreeMap::new();
        for (node, list) in self.assignment.iter().enumerate() {
            for s in shards(list) {
                map.insert(s, NodeId(node as u16));
            }
        }
        map
    }

    /// Target-epoch committee: the swap.
    pub fn swap(&self) -> BTreeMap<ShardIndex, NodeId> {
        self.genesis()
            .into_iter()
            .map(|(s, n)| (s, NodeId(1 - n.0)))
            .collect()
    }

    /// Blobs still certified at the target epoch.
    pub fn certified(&self) -> Vec<&TBlob> {
        self.blobs
            .iter()
            .filter(|b| b.end_epoch > self.epoch)
            .collect()
    }

    /// The blob of index `i` (1..=23).
    pub fn blob(&self, i: u8) -> &TBlob {
        &self.blobs[usize::from(i) - 1]
    }

    /// A cluster of the two fixture nodes that do not process events, with the chain prepared.
    pub fn cluster(&self, seed: u64, config: NodeConfig) -> Cluster {
        let mut builder = ClusterBuilder::new(seed, 2, self.n_shards());
        builder.genesis = Some(self.genesis());
        builder.config = config;
        builder.process_events = false;
        builder.sim_duration = Duration::from_secs(3600);
        let cluster = builder.build();
        self.prepare_chain(&cluster.chain);
        cluster
    }

    /// Registers and certifies every blob in epoch 1, then advances to the target epoch.
    pub fn prepare_chain(&self, chain: &Chain) {
        assert_eq!(chain.epoch(), 1, "the fixture starts from a fresh chain");
        for b in &self.blobs {
            chain
                .register_blob(b.id(), b.end_epoch - 1)
                .expect("fresh blob registers");
            chain
                .certify_blob(b.id())
                .expect("registered blob certifies");
        }
        for epoch in 2..=self.epoch {
            chain.force_epoch_change_done();
            let committee = if epoch == self.epoch {
                self.swap()
            } else {
                self.genesis()
            };
            chain
                .start_epoch_change(committee)
                .expect("complete committee");
        }
    }

    /// What one node stores: blob info and metadata of every blob, and both slivers of every
    /// blob on `stored` shards (minus the blobs it lacks).
    fn seed_blobs(
        &self,
        stored: &[ShardIndex],
        lacks: &BTreeSet<u8>,
        lacking_on: &[ShardIndex],
    ) -> Vec<SeedBlob> {
        self.blobs
            .iter()
            .map(|b| {
                let mut slivers = Vec::new();
                for shard in stored {
                    if lacks.contains(&b.index) && lacking_on.contains(shard) {
                        continue;
                    }
                    for ty in SliverType::ALL {
                        if let Some(s) = b.encoded.sliver(*shard, ty) {
                            slivers.push((*shard, ty, s.to_vec()));
                        }
                    }
                }
                SeedBlob {
                    blob: b.id(),
                    info: b.info(),
                    metadata: Some(b.encoded.metadata.clone()),
                    slivers,
                }
            })
            .collect()
    }

    /// Creates and seeds the nodes' storages as the fixture says, then makes both nodes re-read
    /// the target epoch's committee. Runs inside the scenario client.
    pub async fn seed(&self, ctl: &Ctl) -> Result<(), ScenarioError> {
        let (n0, n1) = (NodeId(0), NodeId(1));
        ctl.note(format!(
            "fixture: assignment {:?}, {} blobs certified in epoch 1, chain at epoch {} (swap)",
            self.assignment,
            self.blobs.len(),
            self.epoch
        ));
        let old0: Vec<ShardIndex> = shards(&self.assignment[0]).collect();
        let old1: Vec<ShardIndex> = shards(&self.assignment[1]).collect();
        let mut stored0 = old0.clone();
        if self.source_stores_new_shards {
            stored0.extend(old1.iter().copied());
        }
        for (node, stored) in [(n0, &stored0), (n1, &old1)] {
            for shard in stored {
                ctl.request(node, AdminRequest::CreateShard(*shard)).await?;
                ctl.request(
                    node,
                    AdminRequest::SetShardStatus(*shard, ShardStatus::Active),
                )
                .await?;
            }
            let lacks = if node == n0 {
                self.source_lacks.clone()
            } else {
                BTreeSet::new()
            };
            ctl.request(
                node,
                AdminRequest::Seed(self.seed_blobs(stored, &lacks, &old0)),
            )
            .await?;
        }
        for shard in &old0 {
            ctl.request(n1, AdminRequest::CreateShard(*shard)).await?;
        }
        for node in [n0, n1] {
            ctl.request(node, AdminRequest::ReadCommittee(self.epoch))
                .await?;
        }
        ctl.note("fixture ready");
        Ok(())
    }

    /// Retires blobs (by index) as the node learns it from events: the chain records deletions
    /// and invalidations, and `node`'s blob-info table is rewritten (nodes of this fixture do
    /// not process events).
    pub async fn retire(
        &self,
        ctl: &Ctl,
        node: NodeId,
        blobs: &[(u8, Retirement)],
    ) -> Result<(), ScenarioError> {
        let chain_error = |e: shardstorm_node::chain::ChainError| ScenarioError(e.to_string());
        let mut seeds = Vec::new();
        for (i, how) in blobs {
            let b = self.blob(*i);
            let mut info = b.info();
            match how {
                Retirement::Deleted => {
                    info.deleted = true;
                    ctl.chain.delete_blob(b.id()).map_err(chain_error)?;
                }
                Retirement::Invalidated => {
                    info.invalid = true;
                    ctl.chain.invalidate_blob(b.id()).map_err(chain_error)?;
                }
                Retirement::Expired => info.end_epoch = self.epoch,
            }
            seeds.push(SeedBlob {
                blob: b.id(),
                info,
                metadata: None,
                slivers: Vec::new(),
            });
        }
        ctl.request(node, AdminRequest::Seed(seeds)).await
    }

    /// Blobs of `expected` whose slivers of `shard` are missing or wrong in `snapshot`, by type.
    pub fn sliver_mismatches(
        &self,
        snapshot: &NodeSnapshot,
        shard: u16,
        expected: &[&TBlob],
    ) -> Vec<String> {
        let shard = ShardIndex(shard);
        let Some(stored) = snapshot.shards.get(&shard) else {
            return vec![format!("{shard} has no storage")];
        };
        let mut out = Vec::new();
        for b in expected {
            for ty in SliverType::ALL {
                let map = match ty {
                    SliverType::Primary => &stored.primary,
                    SliverType::Secondary => &stored.secondary,
                };
                match (map.get(&b.id()), b.sliver_hash(shard, ty)) {
                    (Some(h), Some(e)) if *h == e => {}
                    (None, _) => {
                        out.push(format!("blob {} ({}) {ty} sliver missing", b.index, b.id()))
                    }
                    _ => out.push(format!(
                        "blob {} ({}) {ty} sliver differs from its encoding",
                        b.index,
                        b.id()
                    )),
                }
            }
        }
        out
    }

    /// The spec's `fully_synced_with_metadata` for `shard`: every certified blob's primary and
    /// secondary slivers equal the expected encoding, and its metadata is stored.
    pub fn fully_synced_with_metadata(
        &self,
        snapshot: &NodeSnapshot,
        shard: u16,
    ) -> Result<(), String> {
        let certified = self.certified();
        let mut problems = self.sliver_mismatches(snapshot, shard, &certified);
        for b in &certified {
            if !snapshot.metadata.contains(&b.id()) {
                problems.push(format!("blob {} ({}) metadata missing", b.index, b.id()));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let n = problems.len();
        problems.truncate(4);
        Err(format!(
            "shard {shard} not fully synced with metadata ({n} problems): {}",
            problems.join("; ")
        ))
    }

    /// (primary, secondary) sliver counts of `shard` in `snapshot`.
    pub fn sliver_counts(snapshot: &NodeSnapshot, shard: u16) -> (usize, usize) {
        snapshot
            .shards
            .get(&ShardIndex(shard))
            .map_or((0, 0), |s| (s.primary.len(), s.secondary.len()))
    }

    /// The status of `shard` in `snapshot` (`None` when the storage is missing).
    pub fn shard_status(snapshot: &NodeSnapshot, shard: u16) -> Option<ShardStatus> {
        snapshot.shards.get(&ShardIndex(shard)).map(|s| s.status)
    }
}
