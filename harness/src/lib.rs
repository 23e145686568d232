//! shardstorm-harness: the simulation engine. A cluster of storage nodes on turmoil, a driver
//! loop that applies faults and churn between steps, a trace of every event, an oracle that
//! checks the spec's invariants, a liveness phase, determinism checks, run files and shrinking.

pub mod apply;
pub mod buggify;
pub mod churn;
pub mod cluster;
pub mod coverage;
pub mod determinism;
pub mod driver;
pub mod explore;
pub mod guided;
pub mod interrupt;
pub mod monitor;
pub mod node_control;
pub mod oracle;
pub mod panics;
pub mod preset;
pub mod report;
pub mod run;
pub mod run_spec;
pub mod runfile;
pub mod shrink;
pub mod trace;
pub mod trigger;
pub mod workload;

pub use cluster::{Cluster, ClusterBuilder};
pub use oracle::{Invariant, Violation};
pub use panics::panic_message;
pub use preset::Preset;
pub use run::{run, RunResult};
pub use run_spec::{RunSpec, SpecError};
pub use trace::{ChainNote, HarnessEvent, Recorder, Trace, TraceEvent, TraceKind};
