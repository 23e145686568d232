//! The node-side handle of a fail-point registry: what code under test calls at every point.
//!
//! - Attached to a [`Registry`] (inside a simulation): the registry decides; see its docs.
//! - Not attached and not inside a turmoil simulation: the point evaluates through the `fail`
//!   crate, so a real process honours `FAILPOINTS=...` (set up with `fail::FailScenario`).
//! - Without the `failpoints` feature every evaluation is an inlined [`Hit::Pass`].

use std::sync::Arc;

use crate::hit::Hit;
use crate::process::ProcessLife;
use crate::registry::Registry;

/// A typed error a fail point injected into the code under test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected failure at {point}: {message}")]
pub struct Injected {
    pub point: String,
    pub message: String,
}

/// A node's handle on the fail-point registry of its simulation.
#[derive(Clone, Debug, Default)]
pub struct FailPoints {
    node: Arc<str>,
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    registry: Option<Registry>,
    /// The node process's halt flag and task reaper (see [`Self::halted`]).
    life: Arc<ProcessLife>,
}

/// The panic payload a crash point unwinds with (via `resume_unwind`, so no panic hook runs):
/// the code under test catches it where its tasks are polled and stops them, as a process that
/// died at that instant would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashUnwind;

/// Stops the current task right here, as a crash at this instant would.
pub fn unwind_crash() -> ! {
    std::panic::resume_unwind(Box::new(CrashUnwind))
}

impl FailPoints {
    /// A handle with no registry: never fires inside a simulation, uses the `fail` crate outside.
    pub fn disabled(node: impl Into<String>) -> Self {
        Self {
            node: Arc::from(node.into()),
            registry: None,
            life: Arc::default(),
        }
    }

    /// A handle evaluating through `registry` (see [`Registry::handle`]).
    fn attached(registry: Registry, node: &str) -> Self {
        Self {
            life: registry.life(node),
            node: Arc::from(node),
            registry: Some(registry),
        }
    }

    /// True from the moment a `crash` or `restart` fired on this node until the driver took
    /// the command: the node's process is dead and none of its tasks may progress.
    pub fn halted(&self) -> bool {
        self.life.halted()
    }

    /// The node process's life: halt flag and the reaper its tasks register with.
    pub fn life(&self) -> &Arc<ProcessLife> {
        &self.life
    }

    /// The node this handle belongs to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The registry this handle evaluates through, if any.
    pub fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }

    /// Evaluates an async fail point: `delay` sleeps in simulated time, `pause` waits at its
    /// gate, `crash`/`restart(ms)` queue a driver command and never return.
    #[cfg(feature = "failpoints")]
    pub async fn eval(&self, point: &str) -> Hit {
        match &self.registry {
            Some(registry) => registry.eval_async(&self.node, point).await,
            None => eval_fail_crate(point),
        }
    }

    /// Evaluates an async fail point (feature `failpoints` off: always passes).
    #[cfg(not(feature = "failpoints"))]
    #[inline(always)]
    pub async fn eval(&self, _point: &str) -> Hit {
        Hit::Pass
    }

    /// Evaluates a fail point from synchronous code: `pause` and `delay` are ignored (recorded
    /// in the ledger), `crash`/`restart(ms)` queue a driver command and return [`Hit::Crash`].
    #[cfg(feature = "failpoints")]
    pub fn eval_sync(&self, point: &str) -> Hit {
        match &self.registry {
            Some(registry) => registry.eval_sync(&self.node, point),
            None => eval_fail_crate(point),
        }
    }

    /// Evaluates a fail point from synchronous code (feature `failpoints` off: always passes).
    #[cfg(not(feature = "failpoints"))]
    #[inline(always)]
    pub fn eval_sync(&self, _point: &str) -> Hit {
        Hit::Pass
    }

    /// `return(msg)` becomes `Err(Injected)`.
    pub async fn check(&self, point: &str) -> Result<(), Injected> {
        match self.eval(point).await {
            Hit::Pass => Ok(()),
            Hit::Return(msg) => Err(Injected {
                point: point.to_string(),
                message: msg.unwrap_or_default(),
            }),
            Hit::Crash => Err(Injected {
                point: point.to_string(),
                message: "crash".into(),
            }),
        }
    }

    /// An "if" point: true when `return` fired.
    pub async fn flag(&self, point: &str) -> bool {
        matches!(self.eval(point).await, Hit::Return(_))
    }

    /// An "if" point from synchronous code.
    pub fn flag_sync(&self, point: &str) -> bool {
        matches!(self.eval_sync(point), Hit::Return(_))
    }

    /// An "arg" point: the argument of `return(arg)` when it fired.
    pub async fn arg(&self, point: &str) -> Option<String> {
        match self.eval(point).await {
            Hit::Return(arg) => arg,
            Hit::Pass | Hit::Crash => None,
        }
    }
}

impl Registry {
    /// The handle a node's code evaluates fail points through.
    pub fn handle(&self, node: &str) -> FailPoints {
        FailPoints::attached(self.clone(), node)
    }
}

/// The real-process path: `fail::eval` when not inside a turmoil simulation.
#[cfg(feature = "failpoints")]
fn eval_fail_crate(point: &str) -> Hit {
    if turmoil::in_simulation() {
        return Hit::Pass;
    }
    match fail::eval(point, |arg| arg) {
        None => Hit::Pass,
        Some(arg) => Hit::Return(arg),
    }
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use super::*;

    #[test]
    fn handle_is_send_sync_and_eval_future_is_send() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        fn assert_send<T: Send>(_: &T) {}
        let fp = Registry::new(1).handle("n1");
        assert_send_sync(&fp);
        assert_send(&fp.eval("p"));
        assert_send(&fp.check("p"));
    }

    #[test]
    fn disabled_handle_uses_fail_crate_outside_a_simulation() {
        let fp = FailPoints::disabled("n1");
        assert_eq!(fp.eval_sync("faults.test.fallback"), Hit::Pass);
        fail::cfg("faults.test.fallback", "return(hi)").expect("valid fail-rs action");
        assert_eq!(
            fp.eval_sync("faults.test.fallback"),
            Hit::Return(Some("hi".into()))
        );
        fail::cfg("faults.test.fallback_bare", "return").expect("valid fail-rs action");
        assert_eq!(fp.eval_sync("faults.test.fallback_bare"), Hit::Return(None));
        assert!(fp.flag_sync("faults.test.fallback_bare"));
        fail::remove("faults.test.fallback");
        fail::remove("faults.test.fallback_bare");
        assert_eq!(fp.eval_sync("faults.test.fallback"), Hit::Pass);
    }

    #[test]
    fn attached_handle_ignores_fail_crate() {
        fail::cfg("faults.test.attached", "return").expect("valid fail-rs action");
        let fp = Registry::new(1).handle("n1");
        assert_eq!(fp.eval_sync("faults.test.attached"), Hit::Pass);
        fail::remove("faults.test.attached");
    }
}
