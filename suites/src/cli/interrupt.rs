//! Ctrl-C and SIGTERM during a campaign: the first asks the campaign to stop pulling seeds
//! (runs in flight finish, then the summary and JSON of what was explored are printed as
//! usual); a second one ends the process at once (exit 130).

use std::sync::atomic::{AtomicBool, Ordering};

/// Installs the handler (once per process; later calls do nothing).
pub fn stop_campaign_on_signal() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let installed = ctrlc::set_handler(|| {
        if shardstorm_harness::interrupt::stop_requested() {
            eprintln!("shardstorm: interrupted again: quitting without a summary");
            std::process::exit(130);
        }
        shardstorm_harness::interrupt::request_stop();
        eprintln!(
            "shardstorm: interrupted: finishing the runs in flight, then the summary \
             (interrupt again to quit at once)"
        );
    });
    if let Err(e) = installed {
        eprintln!("shardstorm: warning: Ctrl-C will end the campaign without a summary: {e}");
    }
}

/// True when the campaign was cut short by a signal.
pub fn interrupted() -> bool {
    shardstorm_harness::interrupt::stop_requested()
}
