//! A process-wide request to end a campaign early (Ctrl-C, SIGTERM): once it is set, explore's
//! workers pull no new seed, the runs in flight finish, and the campaign returns the summary
//! of what it explored. Set by the CLI's signal handler; never read inside a simulation, so it
//! changes no run. (Tested end to end by `suites/tests/bad_inputs.rs`, which interrupts a
//! real campaign: a unit test here would stop the other tests' campaigns in this process.)

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every campaign of this process to stop pulling seeds.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// True once [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
