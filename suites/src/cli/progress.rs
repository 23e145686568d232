//! Campaign progress on stderr: an indicatif bar on a terminal (seeds done, rate,
//! violations), plain periodic lines otherwise; violations are printed as they are found.

use indicatif::{ProgressBar, ProgressStyle};
use shardstorm_faults::LockExt;
use shardstorm_harness::explore::{Event, Found, Progress};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain progress line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Where violations go: stdout normally, stderr when stdout carries JSON.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ViolationsTo {
    Stdout,
    Stderr,
}

/// Shows a campaign's progress.
pub struct Reporter {
    label: String,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
    violations_to: ViolationsTo,
}

impl Reporter {
    /// A reporter for a campaign of `total` seeds or a `limit` of wall time.
    pub fn new(label: &str, total: Option<u64>, limit: Option<Duration>, to: ViolationsTo) -> Self {
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| bar(label, total, limit));
        Self {
            label: label.to_string(),
            bar,
            last_line: Mutex::new(Instant::now()),
            violations_to: to,
        }
    }

    /// Handles one event of the campaign.
    pub fn on_event(&self, event: Event<'_>) {
        match event {
            Event::Violation(found) => self.violation(found),
            Event::Progress(p) => self.progress(&p),
        }
    }

    fn violation(&self, found: &Found) {
        let text = violation_text(found);
        let print = || match self.violations_to {
            ViolationsTo::Stdout => println!("{text}"),
            ViolationsTo::Stderr => eprintln!("{text}"),
        };
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn progress(&self, p: &Progress) {
        let status = format!(
            "{:.0} seeds/min, {} violations",
            p.seeds_per_min, p.violations
        );
        if let Some(bar) = &self.bar {
            match p.limit {
                Some(_) => bar.set_position(p.elapsed.as_secs()),
                None => bar.set_position(p.done),
            }
            bar.set_message(format!("{} seeds, {status}", p.done));
            return;
        }
        let mut last = self.last_line.lock_ok();
        if last.elapsed() >= LINE_EVERY || p.total == Some(p.done) {
            *last = Instant::now();
            let of = p.total.map_or_else(String::new, |t| format!("/{t}"));
            eprintln!(
                "{}: {}{of} seeds in {:.0} s, {status}",
                self.label,
                p.done,
                p.elapsed.as_secs_f64()
            );
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn bar(label: &str, total: Option<u64>, limit: Option<Duration>) -> ProgressBar {
    let (len, unit) = match (total, limit) {
        (Some(t), _) => (t, "seeds"),
        (None, Some(l)) => (l.as_secs(), "s"),
        (None, None) => (0, "seeds"),
    };
    let template =
        format!("{label} {{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style)
}

/// Prints a result to stderr as one JSON line (`label: {...}`) the moment it is measured, so a
/// long run (`bench`) shows its results as it goes and an interrupted one keeps them; returns
/// the value for the final report.
pub fn measured<T: serde::Serialize>(label: &str, value: T) -> T {
    match serde_json::to_string(&value) {
        Ok(json) => eprintln!("{label}: {json}"),
        Err(e) => eprintln!("{label}: (cannot encode the result: {e})"),
    }
    value
}

/// A violation with the commands that replay it.
pub fn violation_text(found: &Found) -> String {
    let mut text = format!(
        "VIOLATION seed {}: {}\n  replay: {}",
        found.seed, found.message, found.replay
    );
    if let Some(cmd) = found.file_replay() {
        text.push_str(&format!("\n  replay: {cmd}"));
    }
    if let Some(e) = &found.file_error {
        text.push_str(&format!("\n  (no run file: {e})"));
    }
    text
}
