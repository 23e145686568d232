//! What one fail-point evaluation came to, after delays, pauses and crashes were carried out.

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
