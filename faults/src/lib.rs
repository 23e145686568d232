//! shardstorm-faults: the SUT-agnostic fault-injection framework of shardstorm.
//!
//! - [`Registry`] / [`FailPoints`]: per-simulation async fail points (fail-rs grammar, seeded
//!   probabilities, pause gates, crash/restart requests for the driver loop, a ledger).
//! - [`Fault`], [`Schedule`]: fault values and timed/triggered schedules with an exact
//!   plain-text form.
//! - [`Knobs`], [`Nemesis`], [`Shape`]: swarm knobs and per-seed schedules under the fault
//!   [`budget`] (at most f = floor((n-1)/3) faulty nodes at once).
//!
//! Everything is deterministic per seed: ChaCha8 RNGs derived from the seed, ordered maps only,
//! no wall clock.
//!
//! Feature `failpoints` (default): without it every [`FailPoints`] evaluation is an inlined
//! [`Hit::Pass`]; the registry still compiles (the harness uses it) but nothing evaluates
//! through it.

// Without `failpoints` the registry's evaluation path is compiled but unreachable.
#![cfg_attr(not(feature = "failpoints"), allow(dead_code))]

mod action;
pub mod budget;
mod failpoint;
mod fault;
mod fault_kind;
mod hit;
mod knobs;
mod ledger;
mod lock;
pub mod mutate;
mod nemesis;
mod process;
mod registry;
mod schedule;
mod selector;
mod shape;

#[cfg(all(test, feature = "failpoints"))]
mod sim_tests;

pub use action::{parse_action, parse_actions, Action, ActionError, Actions, Task};
pub use budget::{BudgetViolation, FaultyInterval};
pub use failpoint::{unwind_crash, CrashUnwind, FailPoints, Injected};
pub use fault::{fmt_secs, parse_secs, Fault, FaultParseError, LinkDirection};
pub use fault_kind::FaultKind;
pub use hit::Hit;
pub use knobs::{KindKnob, Knobs, KnobsError};
pub use ledger::{Counts, FiredEvent, LedgerEntry};
pub use lock::LockExt;
pub use nemesis::{Nemesis, PointWeights};
pub use process::{ProcessLife, Reap};
pub use registry::{DriverCommand, HitObserver, Registry};
pub use schedule::{Schedule, ScheduleEntry, ScheduleError};
pub use selector::{glob_match, Selector};
pub use shape::{FailPointKind, FailPointSpec, Shape};
