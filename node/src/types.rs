//! Identifiers shared by every part of the node: epochs, shard indices, node ids, blob ids and
//! sliver types.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A committee epoch. Epoch 0 is the genesis epoch before any committee change.
pub type Epoch = u64;

/// Index of a shard, `0..n_shards`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardIndex(pub u16);

impl fmt::Display for ShardIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A storage node's identity. Its host name in the simulation is `n{id}`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u16);

impl NodeId {
    /// The node's host name in the simulation.
    pub fn host(&self) -> String {
        format!("n{}", self.0)
    }

    /// The node of a host name `n<i>` (the inverse of [`NodeId::host`]).
    pub fn from_host(name: &str) -> Option<NodeId> {
        name.strip_prefix('n')?.parse().ok().map(NodeId)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A blob id: the hash of the blob's metadata. Totally ordered; every per-blob scan runs in
/// ascending blob-id order. Encoded as a byte string (one call, not one per byte).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl BlobId {
    /// The smallest possible blob id.
    pub const MIN: BlobId = BlobId([0; 32]);

    /// Short hex form used in traces.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.short())
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

/// Which of the two slivers of a pair.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SliverType {
    Primary,
    Secondary,
}

impl SliverType {
    /// Both types, primary first (the order of a transfer).
    pub const ALL: [SliverType; 2] = [SliverType::Primary, SliverType::Secondary];

    pub fn as_str(&self) -> &'static str {
        match self {
            SliverType::Primary => "primary",
            SliverType::Secondary => "secondary",
        }
    }
}

impl fmt::Display for SliverType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SliverType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" | "p" => Ok(SliverType::Primary),
            "secondary" | "s" => Ok(SliverType::Secondary),
            other => Err(format!(
                "unknown sliver type `{other}` (expected primary or secondary)"
            )),
        }
    }
}

/// What the chain says about one blob, as the node's blob-info table keeps it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    /// Epoch at which the blob was registered.
    pub registered_epoch: Epoch,
    /// The blob expires at the start of this epoch.
    pub end_epoch: Epoch,
    /// Initial certified epoch, if certified.
    pub certified_epoch: Option<Epoch>,
    pub deleted: bool,
    pub invalid: bool,
}

impl BlobInfo {
    /// Certified (and not retired) at epoch `e`.
    pub fn is_certified_at(&self, e: Epoch) -> bool {
        self.certified_epoch.is_some_and(|c| c <= e) && !self.is_retired_at(e)
    }

    /// "Certified before E": initial certified epoch < E and still certified at E.
    pub fn is_certified_before(&self, e: Epoch) -> bool {
        self.certified_epoch.is_some_and(|c| c < e) && !self.is_retired_at(e)
    }

    /// Expired, deleted or marked invalid at epoch `e`.
    pub fn is_retired_at(&self, e: Epoch) -> bool {
        self.deleted || self.invalid || self.end_epoch <= e
    }
}
