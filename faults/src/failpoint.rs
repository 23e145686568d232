//! The node-side handle of a fail point registry (temporary stub until the registry lands).

/// What a fail point evaluated to, after delays, pauses and crashes were carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    /// Not configured, `off`, or a probability/count that did not fire.
    Pass,
    /// `return` or `return(arg)` fired.
    Return(Option<String>),
    /// `crash` or `restart(ms)` fired at a synchronous point: the driver takes the node down at
    /// the next step; the caller must stop what it was doing (an async point never returns then).
    Crash,
}

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
    node: String,
}

impl FailPoints {
    /// A handle that never fires (no registry).
    pub fn disabled(node: impl Into<String>) -> Self {
        Self { node: node.into() }
    }
    /// The node this handle belongs to.
    pub fn node(&self) -> &str {
        &self.node
    }
    /// Evaluates an async fail point.
    pub async fn eval(&self, _point: &str) -> Hit {
        Hit::Pass
    }
    /// Evaluates a fail point from synchronous code (`pause` and `delay` are not allowed there).
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
