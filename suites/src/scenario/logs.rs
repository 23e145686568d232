//! Captures the log lines of the code under test for assertions such as "the node warned that it
//! skipped an unowned shard".
//!
//! tracing-test's `#[traced_test]` only sees events of the test crate itself (its default
//! filter is the test binary's name; `no-env-filter` is not enabled in this workspace), so it
//! cannot see `shardstorm_node`'s events. This installs a `fmt` subscriber as the *thread-local*
//! default of the test thread (where the whole simulation runs), writing into a buffer, for as
//! long as the capture lives.

use shardstorm_faults::LockExt;
use std::io;
use std::sync::{Arc, Mutex};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock_ok().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A capture of log lines on the current thread; dropping it uninstalls it.
pub struct LogCapture {
    buffer: Buffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    /// Captures events matching `filter` (an `EnvFilter` directive such as
    /// `"shardstorm_node=info"`) on this thread.
    pub fn install(filter: &str) -> Self {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self {
            buffer,
            _guard: guard,
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.0.lock_ok()).into_owned()
    }

    /// Captured lines containing every one of `parts`.
    pub fn lines_with(&self, parts: &[&str]) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .map(str::to_string)
            .collect()
    }

    /// Whether some captured line contains every one of `parts`.
    pub fn contains(&self, parts: &[&str]) -> bool {
        !self.lines_with(parts).is_empty()
    }
}
