//! shardstorm-faults: the fault-injection framework (interface stub; see issue #3).

mod failpoint;
pub use failpoint::{FailPoints, Hit, Injected};
