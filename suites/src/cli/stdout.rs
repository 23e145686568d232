//! A stdout that cannot be written (`> /dev/full`, a closed pipe with SIGPIPE ignored): the
//! standard `println!` panics with "failed printing to stdout". A panic hook recognizes that
//! panic, keeps its message off stderr and records the error, so `main` ends with one line
//! (`cannot write to stdout: ...`) and exit 2 instead of a panic report, wherever the
//! printing happened (a worker thread included). Every other panic is reported as before.

use super::error::CliError;
use shardstorm_faults::LockExt;
use std::sync::Mutex;

/// The first failed write to stdout, as the panic reported it.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

const MARKER: &str = "failed printing to stdout: ";

/// Installs the hook in front of the default one.
pub fn install_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = shardstorm_harness::panic_message(info.payload());
        let mut failed = FAILED.lock_ok();
        if let Some(reason) = message.strip_prefix(MARKER) {
            failed.get_or_insert_with(|| reason.to_string());
            return;
        }
        if failed.is_some() {
            // A consequence of the failed write (a scoped thread's panic re-raised on join).
            return;
        }
        drop(failed);
        default(info);
    }));
}

/// The stdout failure behind a panic, if there was one.
pub fn failure() -> Option<CliError> {
    let failed = FAILED.lock_ok();
    failed
        .as_ref()
        .map(|reason| CliError::Usage(format!("cannot write to stdout: {reason}")))
}
