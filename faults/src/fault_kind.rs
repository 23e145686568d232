//! The kinds of fault the nemesis draws, each switched on and rated by a knob.

/// A kind of fault the nemesis can draw.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum FaultKind {
    Crash,
    Partition,
    Loss,
    Latency,
    DiskEio,
    DiskTorn,
    DiskCorrupt,
    StatusChange,
    Byzantine,
    FailpointPause,
    FailpointError,
    FailpointCrash,
    FailpointDelay,
    /// A state-aware fault: a status change or an early epoch change the first time a node
    /// reaches a given fail point (a triggered schedule entry).
    Triggered,
    /// Nodes lose their link to the chain host (one way or both).
    ChainPartition,
}

impl FaultKind {
    /// Every kind, in knob order.
    pub const ALL: [FaultKind; 15] = [
        FaultKind::Crash,
        FaultKind::Partition,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::DiskEio,
        FaultKind::DiskTorn,
        FaultKind::DiskCorrupt,
        FaultKind::StatusChange,
        FaultKind::Byzantine,
        FaultKind::FailpointPause,
        FaultKind::FailpointError,
        FaultKind::FailpointCrash,
        FaultKind::FailpointDelay,
        FaultKind::Triggered,
        FaultKind::ChainPartition,
    ];

    /// The knob name (`crash`, `disk_eio`, `failpoint_pause`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Crash => "crash",
            FaultKind::Partition => "partition",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::DiskEio => "disk_eio",
            FaultKind::DiskTorn => "disk_torn",
            FaultKind::DiskCorrupt => "disk_corrupt",
            FaultKind::StatusChange => "status_change",
            FaultKind::Byzantine => "byzantine",
            FaultKind::FailpointPause => "failpoint_pause",
            FaultKind::FailpointError => "failpoint_error",
            FaultKind::FailpointCrash => "failpoint_crash",
            FaultKind::FailpointDelay => "failpoint_delay",
            FaultKind::Triggered => "triggered",
            FaultKind::ChainPartition => "chain_partition",
        }
    }

    /// Kinds added after the first ones draw their knob from a stream of their own (this
    /// offset from the knob stream), so adding them left every older draw alone; run files
    /// from before them may omit their knob (off).
    pub(crate) fn own_knob_stream(self) -> Option<u64> {
        match self {
            FaultKind::Triggered => Some(1),
            FaultKind::ChainPartition => Some(2),
            _ => None,
        }
    }

    /// The range [`Knobs::draw`] draws this kind's rate (faults per simulated minute) from.
    pub(crate) fn rate_range(self) -> (f64, f64) {
        match self {
            FaultKind::Loss | FaultKind::Latency | FaultKind::DiskTorn | FaultKind::Byzantine => {
                (0.5, 3.0)
            }
            _ => (0.5, 6.0),
        }
    }
}
