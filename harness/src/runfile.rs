//! Run files: one run (seed, cluster size, bugs, knobs, schedule, tool version, build
//! fingerprint and what the run is expected to do) as a small text file that `shardstorm
//! replay` reproduces exactly.
//!
//! ```text
//! # shardstorm run file; replay with: cargo run --release -- replay <this file>
//! shardstorm-version = 0.1.0
//! build = 0123456789abcdef
//! seed = 42
//! nodes = 5
//! shards = 20
//! epochs = 6
//! blobs = 100
//! tick-ms = 10
//! bugs = abort-drops-metadata-recovery
//! expect-invariant = metadata-completion
//! expect-trace-hash = 0123456789abcdef
//!
//! [knobs]
//! crash.enabled=true
//! ...
//!
//! [schedule]
//! 12.500s crash n2
//! ```
//!
//! Keys come before the sections; `#` starts a comment line. Missing size keys take the
//! standard scenario's values, a missing `[knobs]` or `[schedule]` section is drawn from the
//! seed when the file is loaded (so the loaded spec never depends on drawing again), and a
//! missing `shardstorm-version` line is accepted (hand-written files). Writing is atomic.
//!
//! Identity: a different `shardstorm-version` is an error. `build` is the [`BUILD`]
//! fingerprint of the writer (a hash of the node, faults and harness sources, see
//! `harness/build.rs`): a different one is not an error, since most source changes leave a run
//! alone, but [`RunFile::build_mismatch`] lets a replay warn that it may differ and say so when
//! it does. Files without a `build` line (older files, hand-written ones) load as before.

use crate::oracle::Invariant;
use crate::run::RunResult;
use crate::run_spec::{RunSpec, SpecError};
use shardstorm_faults::{KnobsError, ScheduleError};
use shardstorm_node::{Bug, UnknownBug};
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The version written into and required of run files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The behaviour fingerprint of this build: 16 hex digits hashing the sources of the node,
/// faults and harness crates (computed by `harness/build.rs`).
pub const BUILD: &str = env!("SHARDSTORM_BUILD");

/// The first line of every written run file.
const HEADER: &str =
    "# shardstorm run file; replay with: cargo run --release -- replay <this file>";

/// The keys a run file may set before its sections.
const KEYS: &str = "shardstorm-version, build, seed, nodes, shards, epochs, blobs, tick-ms, bugs, \
                    expect-invariant, expect-trace-hash";

/// One replayable run and what it is expected to do.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFile {
    /// The run, with `knobs` and `schedule` always `Some`.
    pub spec: RunSpec,
    /// The invariant the run violates (`None`: it passes or nothing is expected).
    pub expect_invariant: Option<String>,
    /// The trace hash the run produces (16 hex digits).
    pub expect_hash: Option<String>,
    /// The [`BUILD`] fingerprint of the build that wrote the file (`None`: not recorded).
    pub build: Option<String>,
}

/// A run file written by a build with another behaviour fingerprint than this one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("run file written by build {written}, this is build {BUILD}")]
pub struct BuildMismatch {
    /// The fingerprint recorded in the file.
    pub written: String,
}

/// A replay compared with what its run file expects: the one meaning of "reproduced" that
/// `shardstorm replay` and the regression suite share. A run reproduces when it ends in the
/// expected invariant (or passes when a pass is expected); the trace hash is compared and
/// reported, and a changed hash is a failure only when asked for (`--strict-hash`), since most
/// node changes move the trace without touching the verdict a regression pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The expected invariant (`None`: a pass).
    pub expected: Option<String>,
    /// The invariant the replay violated (`None`: it passed).
    pub got: Option<String>,
    /// The recorded trace hash, if any.
    pub expected_hash: Option<String>,
    pub hash: String,
    /// The file was written by another build.
    pub build: Option<BuildMismatch>,
}

impl Replayed {
    /// The verdict is the expected one.
    pub fn reproduced(&self) -> bool {
        self.got == self.expected
    }

    /// A hash was recorded and the replay's differs.
    pub fn hash_changed(&self) -> bool {
        self.expected_hash.as_ref().is_some_and(|h| *h != self.hash)
    }

    /// Reproduced, and with `strict_hash` also the same trace.
    pub fn passes(&self, strict_hash: bool) -> bool {
        self.reproduced() && !(strict_hash && self.hash_changed())
    }

    /// Why the replay does not pass (empty when it does), the build named when it differs.
    pub fn mismatches(&self, strict_hash: bool) -> Vec<String> {
        let show = |i: &Option<String>| i.clone().unwrap_or_else(|| "pass".into());
        let mut out = Vec::new();
        if !self.reproduced() {
            out.push(format!(
                "expected {}, got {}",
                show(&self.expected),
                show(&self.got)
            ));
        }
        if strict_hash && self.hash_changed() {
            out.push(format!(
                "expected trace {}, got {}",
                self.expected_hash.as_deref().unwrap_or_default(),
                self.hash
            ));
        }
        if let Some(build) = self.build.as_ref().filter(|_| !out.is_empty()) {
            out.push(build.to_string());
        }
        out
    }

    /// The warning for a changed hash that is not a failure (`None` when none is due).
    pub fn hash_warning(&self, strict_hash: bool) -> Option<String> {
        if strict_hash || !self.hash_changed() {
            return None;
        }
        Some(format!(
            "trace {} differs from the recorded {} (same verdict, so the node's behaviour \
             changed along the way; --strict-hash makes this a failure)",
            self.hash,
            self.expected_hash.as_deref().unwrap_or_default()
        ))
    }
}

/// A run file that cannot be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("cannot read run file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write run file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<RunFileError>,
    },
    #[error("line {line}: expected `key = value`, `[section]` or `# comment`, found {text:?}")]
    Syntax { line: usize, text: String },
    #[error("line {line}: unknown key `{key}` (expected one of: {KEYS})")]
    UnknownKey { line: usize, key: String },
    #[error("line {line}: `{key}` given twice")]
    Duplicate { line: usize, key: String },
    #[error("line {line}: unknown section `[{name}]` (expected [knobs] or [schedule])")]
    UnknownSection { line: usize, name: String },
    #[error("line {line}: bad number {value:?} for `{key}` (expected {expected})")]
    BadNumber {
        line: usize,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("line {line}: {source}")]
    UnknownBug { line: usize, source: UnknownBug },
    #[error("line {line}: {message}")]
    BadInvariant { line: usize, message: String },
    #[error("line {line}: bad trace hash {value:?} (expected 16 hex digits)")]
    BadHash { line: usize, value: String },
    #[error("line {line}: bad build fingerprint {value:?} (expected 16 hex digits)")]
    BadBuild { line: usize, value: String },
    #[error("[knobs] section at line {line}: {source}")]
    Knobs { line: usize, source: KnobsError },
    #[error("[schedule] section: {source}")]
    Schedule { source: ScheduleError },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("missing `seed = N` line")]
    MissingSeed,
    #[error("line {line}: run file written by shardstorm {found}, this is {VERSION}")]
    Version { line: usize, found: String },
}

impl RunFileError {
    /// Attaches the file's path to a parse error.
    fn in_file(self, path: &Path) -> Self {
        RunFileError::InFile {
            path: path.to_path_buf(),
            source: Box::new(self),
        }
    }
}

impl RunFile {
    /// The run file of a finished run: its resolved knobs and schedule, its verdict and hash.
    pub fn from_result(result: &RunResult) -> Self {
        let mut spec = result.spec.clone();
        spec.knobs = Some(result.knobs.clone());
        spec.schedule = Some(result.schedule.clone());
        Self {
            spec,
            expect_invariant: result
                .violation
                .as_ref()
                .map(|v| v.invariant.name().to_string()),
            expect_hash: Some(result.trace_hash.clone()),
            build: Some(BUILD.to_string()),
        }
    }

    /// A run file for `spec` with nothing expected; knobs and schedule are resolved.
    pub fn from_spec(spec: &RunSpec) -> Self {
        Self {
            spec: resolved(spec.clone()),
            expect_invariant: None,
            expect_hash: None,
            build: Some(BUILD.to_string()),
        }
    }

    /// The difference when the file records a build fingerprint other than [`BUILD`]; `None`
    /// when it records this build or none at all.
    pub fn build_mismatch(&self) -> Option<BuildMismatch> {
        self.build
            .as_ref()
            .filter(|written| written.as_str() != BUILD)
            .map(|written| BuildMismatch {
                written: written.clone(),
            })
    }

    /// Compares a replay of this file with what the file expects.
    pub fn compare(&self, result: &RunResult) -> Replayed {
        Replayed {
            expected: self.expect_invariant.clone(),
            got: result
                .violation
                .as_ref()
                .map(|v| v.invariant.name().to_string()),
            expected_hash: self.expect_hash.clone(),
            hash: result.trace_hash.clone(),
            build: self.build_mismatch(),
        }
    }

    /// True when the file says what its replay should do (an `expect-*` line).
    pub fn expects(&self) -> bool {
        self.expect_invariant.is_some() || self.expect_hash.is_some()
    }

    /// Reads and parses a run file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, RunFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RunFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        text.parse().map_err(|e: RunFileError| e.in_file(path))
    }

    /// Writes the file atomically: a temporary file in the same directory, then a rename.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), RunFileError> {
        let path = path.as_ref();
        write_atomic(path, self.to_string().as_bytes()).map_err(|source| RunFileError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Fills in the knobs and schedule a spec would draw from its seed.
fn resolved(mut spec: RunSpec) -> RunSpec {
    let knobs = spec.resolved_knobs();
    spec.schedule = Some(spec.resolved_schedule(&knobs));
    spec.knobs = Some(knobs);
    spec
}

/// Writes `bytes` to a fresh temporary file next to `path`, syncs it and renames it over
/// `path`; on any error the temporary file is removed.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl fmt::Display for RunFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        writeln!(f, "{HEADER}")?;
        writeln!(f, "shardstorm-version = {VERSION}")?;
        if let Some(build) = &self.build {
            writeln!(f, "build = {build}")?;
        }
        writeln!(f, "seed = {}", s.seed)?;
        writeln!(f, "nodes = {}", s.nodes)?;
        writeln!(f, "shards = {}", s.shards)?;
        writeln!(f, "epochs = {}", s.epochs)?;
        writeln!(f, "blobs = {}", s.blobs)?;
        writeln!(f, "tick-ms = {}", s.tick_ms)?;
        let bugs: Vec<&str> = s.bugs.iter().map(|b| b.name()).collect();
        writeln!(f, "bugs = {}", bugs.join(","))?;
        if let Some(invariant) = &self.expect_invariant {
            writeln!(f, "expect-invariant = {invariant}")?;
        }
        if let Some(hash) = &self.expect_hash {
            writeln!(f, "expect-trace-hash = {hash}")?;
        }
        let knobs = s.resolved_knobs();
        write!(f, "\n[knobs]\n{knobs}")?;
        write!(f, "\n[schedule]\n{}", s.resolved_schedule(&knobs))
    }
}

/// Which part of the file a line belongs to.
#[derive(Copy, Clone, PartialEq)]
enum Part {
    Keys,
    Knobs,
    Schedule,
}

/// The file split into its parts. Section texts keep blank lines in place of every line
/// outside them, so the faults crate's line numbers are the file's line numbers.
struct Parts<'a> {
    keys: Vec<(usize, &'a str, &'a str)>,
    knobs: Option<(usize, String)>,
    schedule: Option<String>,
    /// Lines already in the knobs and the schedule text (so padding is linear, not a recount).
    knobs_lines: usize,
    schedule_lines: usize,
}

impl<'a> Parts<'a> {
    fn split(text: &'a str) -> Result<Self, RunFileError> {
        let mut parts = Parts {
            keys: Vec::new(),
            knobs: None,
            schedule: None,
            knobs_lines: 0,
            schedule_lines: 0,
        };
        let mut part = Part::Keys;
        for (i, raw) in text.lines().enumerate() {
            let (line, trimmed) = (i + 1, raw.trim());
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                part = parts.open(line, name.trim())?;
                continue;
            }
            match part {
                Part::Keys => parts.key_line(line, trimmed)?,
                Part::Knobs | Part::Schedule => parts.section_line(part, line, raw),
            }
        }
        Ok(parts)
    }

    fn open(&mut self, line: usize, name: &str) -> Result<Part, RunFileError> {
        let (part, slot_taken) = match name {
            "knobs" => (Part::Knobs, self.knobs.is_some()),
            "schedule" => (Part::Schedule, self.schedule.is_some()),
            _ => {
                return Err(RunFileError::UnknownSection {
                    line,
                    name: name.to_string(),
                })
            }
        };
        if slot_taken {
            return Err(RunFileError::Duplicate {
                line,
                key: format!("[{name}]"),
            });
        }
        match part {
            Part::Knobs => self.knobs = Some((line, String::new())),
            _ => self.schedule = Some(String::new()),
        }
        Ok(part)
    }

    fn key_line(&mut self, line: usize, trimmed: &'a str) -> Result<(), RunFileError> {
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return Ok(());
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(RunFileError::Syntax {
                line,
                text: trimmed.to_string(),
            });
        };
        let key = key.trim();
        if self.keys.iter().any(|(_, k, _)| *k == key) {
            return Err(RunFileError::Duplicate {
                line,
                key: key.to_string(),
            });
        }
        self.keys.push((line, key, value.trim()));
        Ok(())
    }

    /// Appends a section line, padding with blank lines up to its line number.
    fn section_line(&mut self, part: Part, line: usize, raw: &str) {
        let (text, have) = match part {
            Part::Knobs => (self.knobs.as_mut().map(|(_, t)| t), &mut self.knobs_lines),
            _ => (self.schedule.as_mut(), &mut self.schedule_lines),
        };
        if let Some(text) = text {
            let pad = (line - 1).saturating_sub(*have);
            text.extend(std::iter::repeat_n('\n', pad));
            text.push_str(raw);
            text.push('\n');
            *have += pad + 1;
        }
    }
}

fn number<T: FromStr + PartialOrd + From<u8>>(
    line: usize,
    key: &str,
    value: &str,
    min: u8,
    expected: &'static str,
) -> Result<T, RunFileError> {
    match value.parse::<T>() {
        Ok(n) if n >= T::from(min) => Ok(n),
        _ => Err(RunFileError::BadNumber {
            line,
            key: key.to_string(),
            value: value.to_string(),
            expected,
        }),
    }
}

fn parse_bugs(line: usize, value: &str) -> Result<BTreeSet<Bug>, RunFileError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            name.parse()
                .map_err(|source| RunFileError::UnknownBug { line, source })
        })
        .collect()
}

/// `value` in lower case when it is 16 hex digits.
fn hex16(value: &str) -> Option<String> {
    (value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

fn parse_hash(line: usize, value: &str) -> Result<String, RunFileError> {
    hex16(value).ok_or_else(|| RunFileError::BadHash {
        line,
        value: value.to_string(),
    })
}

fn parse_build(line: usize, value: &str) -> Result<String, RunFileError> {
    hex16(value).ok_or_else(|| RunFileError::BadBuild {
        line,
        value: value.to_string(),
    })
}

/// The top-level keys, applied to a standard spec.
struct Header {
    spec: RunSpec,
    seed_given: bool,
    expect_invariant: Option<String>,
    expect_hash: Option<String>,
    build: Option<String>,
}

impl Header {
    fn apply(&mut self, line: usize, key: &str, value: &str) -> Result<(), RunFileError> {
        const U16: &str = "an integer from 1 to 65535";
        const U32: &str = "an integer from 0 to 4294967295";
        const U64: &str = "an unsigned 64-bit integer";
        let s = &mut self.spec;
        match key {
            "shardstorm-version" if value != VERSION => {
                return Err(RunFileError::Version {
                    line,
                    found: value.to_string(),
                })
            }
            "shardstorm-version" => {}
            "build" => self.build = Some(parse_build(line, value)?),
            "seed" => {
                s.seed = number(line, key, value, 0, U64)?;
                self.seed_given = true;
            }
            "nodes" => s.nodes = number(line, key, value, 1, U16)?,
            "shards" => s.shards = number(line, key, value, 1, U16)?,
            "epochs" => s.epochs = number(line, key, value, 0, U32)?,
            "blobs" => s.blobs = number(line, key, value, 0, U32)?,
            "tick-ms" => s.tick_ms = number(line, key, value, 1, "a positive integer")?,
            "bugs" => s.bugs = parse_bugs(line, value)?,
            "expect-invariant" => {
                let invariant = Invariant::from_str(value)
                    .map_err(|message| RunFileError::BadInvariant { line, message })?;
                self.expect_invariant = Some(invariant.name().to_string());
            }
            "expect-trace-hash" => self.expect_hash = Some(parse_hash(line, value)?),
            _ => {
                return Err(RunFileError::UnknownKey {
                    line,
                    key: key.to_string(),
                })
            }
        }
        Ok(())
    }
}

impl FromStr for RunFile {
    type Err = RunFileError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts = Parts::split(text)?;
        let mut header = Header {
            spec: RunSpec::standard(0),
            seed_given: false,
            expect_invariant: None,
            expect_hash: None,
            build: None,
        };
        for (line, key, value) in &parts.keys {
            header.apply(*line, key, value)?;
        }
        if !header.seed_given {
            return Err(RunFileError::MissingSeed);
        }
        let mut spec = header.spec;
        if let Some((line, text)) = parts.knobs {
            spec.knobs = Some(
                text.parse()
                    .map_err(|source| RunFileError::Knobs { line, source })?,
            );
        }
        if let Some(text) = parts.schedule {
            spec.schedule = Some(
                text.parse()
                    .map_err(|source| RunFileError::Schedule { source })?,
            );
        }
        spec.validate()?;
        Ok(Self {
            spec: resolved(spec),
            expect_invariant: header.expect_invariant,
            expect_hash: header.expect_hash,
            build: header.build,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_spec(seed: u64) -> RunSpec {
        let mut spec = RunSpec::standard(seed);
        spec.blobs = 10;
        spec.epochs = 2;
        spec
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shardstorm-runfile-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }

    fn minimal() -> String {
        format!("shardstorm-version = {VERSION}\nseed = 7\n")
    }

    fn parse_err(text: &str) -> RunFileError {
        text.parse::<RunFile>().expect_err("must not parse")
    }

    #[test]
    fn real_run_round_trips_and_replays_to_the_same_hash() {
        let mut spec = small_spec(3);
        spec.bugs.insert(Bug::AbortDropsMetadataRecovery);
        let result = crate::run(&spec);
        let file = RunFile::from_result(&result);
        let text = file.to_string();
        assert!(text.starts_with(HEADER), "{text}");
        assert!(
            text.contains("bugs = abort-drops-metadata-recovery\n"),
            "{text}"
        );
        let back: RunFile = text.parse().expect("written file parses");
        assert_eq!(back, file);
        assert_eq!(back.to_string(), text);

        let dir = scratch_dir("roundtrip");
        let path = dir.join("seed-3.run");
        file.save(&path).expect("save");
        let loaded = RunFile::load(&path).expect("load");
        assert_eq!(loaded, file);
        let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("list").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        let replayed = crate::run(&loaded.spec);
        assert_eq!(Some(replayed.trace_hash), file.expect_hash);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn missing_sections_are_drawn_from_the_seed() {
        let file: RunFile = minimal().parse().expect("parses");
        let drawn = resolved(RunSpec::standard(7));
        assert_eq!(file.spec, drawn);
        assert!(file.spec.knobs.is_some() && file.spec.schedule.is_some());
        let bugs: RunFile = format!("{}bugs =\n", minimal())
            .parse()
            .expect("empty bugs");
        assert!(bugs.spec.bugs.is_empty());
    }

    #[test]
    fn unknown_key_names_its_line() {
        let err = parse_err(&format!("{}colour = blue\n", minimal()));
        assert!(
            matches!(err, RunFileError::UnknownKey { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("line 3: unknown key `colour`"),
            "{err}"
        );
    }

    #[test]
    fn bad_number_names_key_and_expectation() {
        let err = parse_err(&format!("{}nodes = five\n", minimal()));
        assert!(
            matches!(err, RunFileError::BadNumber { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("bad number \"five\" for `nodes`"),
            "{err}"
        );
        let zero = parse_err(&format!("{}nodes = 0\n", minimal()));
        assert!(matches!(zero, RunFileError::BadNumber { .. }), "{zero:?}");
        let seed = parse_err("seed = -1\n");
        assert!(
            matches!(seed, RunFileError::BadNumber { line: 1, .. }),
            "{seed:?}"
        );
    }

    #[test]
    fn unknown_bug_is_rejected() {
        let err = parse_err(&format!("{}bugs = abort-drops\n", minimal()));
        assert!(
            matches!(err, RunFileError::UnknownBug { line: 3, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("unknown bug `abort-drops`"),
            "{err}"
        );
    }

    #[test]
    fn bad_knob_and_schedule_lines_give_file_line_numbers() {
        let knobs = parse_err(&format!("{}\n[knobs]\ncrash.enabled=maybe\n", minimal()));
        assert!(
            matches!(knobs, RunFileError::Knobs { line: 4, .. }),
            "{knobs:?}"
        );
        assert!(
            knobs.to_string().contains("line 5: bad value \"maybe\""),
            "{knobs}"
        );
        let text = format!(
            "{}\n[schedule]\n1.000s crash n1\n2.000s explode n1\n",
            minimal()
        );
        let schedule = parse_err(&text);
        assert!(
            matches!(schedule, RunFileError::Schedule { .. }),
            "{schedule:?}"
        );
        assert!(
            schedule
                .to_string()
                .starts_with("[schedule] section: line 6:"),
            "{schedule}"
        );
    }

    #[test]
    fn missing_seed_and_syntax_errors() {
        let err = parse_err(&format!("shardstorm-version = {VERSION}\nnodes = 4\n"));
        assert!(matches!(err, RunFileError::MissingSeed), "{err:?}");
        let syntax = parse_err("seed 4\n");
        assert!(
            matches!(syntax, RunFileError::Syntax { line: 1, .. }),
            "{syntax:?}"
        );
        let section = parse_err("seed = 4\n[nemesis]\n");
        assert!(
            matches!(section, RunFileError::UnknownSection { line: 2, .. }),
            "{section:?}"
        );
        let twice = parse_err("seed = 4\nseed = 5\n");
        assert!(
            matches!(twice, RunFileError::Duplicate { line: 2, .. }),
            "{twice:?}"
        );
        let hash = parse_err("seed = 4\nexpect-trace-hash = xyz\n");
        assert!(
            matches!(hash, RunFileError::BadHash { line: 2, .. }),
            "{hash:?}"
        );
        let inv = parse_err("seed = 4\nexpect-invariant = nope\n");
        assert!(
            matches!(inv, RunFileError::BadInvariant { line: 2, .. }),
            "{inv:?}"
        );
    }

    #[test]
    fn sizes_and_schedules_the_cluster_cannot_run_are_rejected() {
        for (extra, message) in [
            ("shards = 3\n", "shards must be from 4 to 32768, found 3"),
            (
                "shards = 32769\n",
                "shards must be from 4 to 32768, found 32769",
            ),
            ("nodes = 65535\n", "nodes must be from 1 to 64"),
            (
                "tick-ms = 18446744073709551615\n",
                "tick-ms must be from 1 to 1000",
            ),
            ("\n[schedule]\n1.000s crash n99\n", "names node `n99`"),
            (
                "\n[schedule]\n1.000s failpoint * db.nope return\n",
                "unknown fail point `db.nope`",
            ),
        ] {
            let err = parse_err(&format!("{}{extra}", minimal()));
            assert!(matches!(err, RunFileError::Spec(_)), "{err:?}");
            assert!(err.to_string().contains(message), "{extra}: {err}");
        }
    }

    #[test]
    fn comment_heavy_sections_parse_and_count_lines_right() {
        // 6 MB of comments: quadratic line counting took minutes here; the running count is
        // linear (its speed is measured, not asserted). Line numbers must still be exact.
        let comments = "# a comment line in the schedule\n".repeat(200_000);
        let head = format!("{}\n[schedule]\n", minimal());
        let text = format!("{head}{comments}1.000s crash n1\n");
        let file: RunFile = text.parse().expect("parses");
        assert_eq!(file.spec.schedule.map(|s| s.len()), Some(1));
        let bad = format!("{head}{comments}not a fault\n");
        let line = head.lines().count() + 200_000 + 1;
        let err = parse_err(&bad).to_string();
        assert!(err.contains(&format!("line {line}")), "{err}");
    }

    #[test]
    fn reproduced_means_the_same_verdict_and_a_hash_change_is_a_warning() {
        let replayed = |got: Option<&str>, hash: &str| Replayed {
            expected: Some("liveness".into()),
            got: got.map(str::to_string),
            expected_hash: Some("00000000000000aa".into()),
            hash: hash.into(),
            build: None,
        };
        let same = replayed(Some("liveness"), "00000000000000aa");
        assert!(same.passes(true) && same.hash_warning(false).is_none());
        let moved = replayed(Some("liveness"), "00000000000000bb");
        assert!(moved.reproduced() && moved.passes(false) && !moved.passes(true));
        assert!(moved.mismatches(false).is_empty());
        assert!(moved
            .hash_warning(false)
            .is_some_and(|w| w.contains("--strict-hash")));
        assert_eq!(
            moved.mismatches(true),
            ["expected trace 00000000000000aa, got 00000000000000bb"]
        );
        let lost = replayed(None, "00000000000000aa");
        assert!(!lost.passes(false));
        assert_eq!(lost.mismatches(false), ["expected liveness, got pass"]);
    }

    #[test]
    fn version_mismatch_is_explained() {
        let err = parse_err("shardstorm-version = 0.0.1\nseed = 1\n");
        assert_eq!(
            err.to_string(),
            format!("line 1: run file written by shardstorm 0.0.1, this is {VERSION}")
        );
    }

    #[test]
    fn written_files_record_this_build() {
        assert_eq!(
            hex16(BUILD).as_deref(),
            Some(BUILD),
            "16 lower-case hex digits"
        );
        let text = RunFile::from_spec(&small_spec(2)).to_string();
        assert!(text.contains(&format!("\nbuild = {BUILD}\n")), "{text}");
        let back: RunFile = text.parse().expect("parses");
        assert_eq!(back.build.as_deref(), Some(BUILD));
        assert_eq!(back.build_mismatch(), None);
    }

    #[test]
    fn files_without_a_build_line_load_and_do_not_mismatch() {
        let file: RunFile = minimal().parse().expect("parses");
        assert_eq!(file.build, None);
        assert_eq!(file.build_mismatch(), None);
        assert!(!file.to_string().contains("build ="));
    }

    #[test]
    fn another_build_is_a_mismatch_not_an_error() {
        let other = if BUILD == "0000000000000000" {
            "0000000000000001"
        } else {
            "0000000000000000"
        };
        let file: RunFile = format!("{}build = {other}\n", minimal())
            .parse()
            .expect("another build still parses");
        let mismatch = file.build_mismatch().expect("a mismatch");
        assert_eq!(
            mismatch.to_string(),
            format!("run file written by build {other}, this is build {BUILD}")
        );
        let bad = parse_err(&format!("{}build = 12\n", minimal()));
        assert!(
            matches!(bad, RunFileError::BadBuild { line: 3, .. }),
            "{bad:?}"
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = scratch_dir("errors");
        let missing = RunFile::load(dir.join("absent.run")).expect_err("absent");
        assert!(matches!(missing, RunFileError::Read { .. }), "{missing:?}");
        let path = dir.join("bad.run");
        std::fs::write(&path, "seed = x\n").expect("write");
        let bad = RunFile::load(&path).expect_err("bad");
        assert!(
            bad.to_string().contains("bad.run: line 1: bad number"),
            "{bad}"
        );
        let unwritable = RunFile::from_spec(&small_spec(1)).save(dir.join("no/such/dir/x.run"));
        assert!(
            matches!(unwritable, Err(RunFileError::Write { .. })),
            "{unwritable:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
