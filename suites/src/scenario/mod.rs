//! Scenario fixtures for the chaos suites: the hand-driven two-node fixture of spec section 9
//! (`fixture`), the control a scenario's turmoil client has over the nodes, the fail-point
//! registry and the driver (`client`), the step loop that runs a scenario under the safety oracle
//! and collects its verdict (`driver`), a capture of the node's log lines (`logs`) and the
//! location and naming of insta snapshots (`snapshots`).
//!
//! A scenario is an async body that receives a [`Ctl`] and performs the spec's steps through the
//! nodes' admin handles. Spec assertions are soft: a failed one is recorded with a message and
//! the scenario goes on, so a bug-enabled run reports every assertion it breaks together with
//! the invariants the oracle flagged. [`Outcome`] carries both, plus the condensed trace that
//! the regression snapshots show.

pub mod client;
pub mod driver;
pub mod fixture;
pub mod logs;
pub mod snapshots;

pub use client::{Ctl, ScenarioError};
pub use driver::{run_scenario, run_scenario_with_oracle, Outcome};
pub use fixture::{processing_cluster, Retirement, TBlob, TFixture};
pub use logs::LogCapture;

use shardstorm_node::{Bug, NodeConfig};
use std::time::Duration;

/// Simulated time `wait_until_no_sync_tasks` waits (spec section 9: 2 minutes).
pub const NO_SYNC_TASKS_TIMEOUT: Duration = Duration::from_secs(120);

/// Simulated time to wait for "entered" at the metadata pause (spec section 9: 30 s).
pub const ENTERED_TIMEOUT: Duration = Duration::from_secs(30);

/// The metadata pause fail point of the pause recipe.
pub const METADATA_PAUSE: &str = "sync.metadata.pause";

/// The simulation node configuration with `bugs` switched on.
pub fn config_with(bugs: &[Bug]) -> NodeConfig {
    let mut config = NodeConfig::simulation();
    config.bugs = bugs.iter().copied().collect();
    config
}
