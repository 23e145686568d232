//! Fault schedules: timed and fail-point-triggered faults, kept in time order, with a
//! plain-text form (one entry per line) whose `Display` parses back exactly.
//!
//! ```text
//! # comments and blank lines are allowed
//! at sync.metadata.pause@n1 crash n1
//! 1.000s failpoint n1 sync.metadata.pause pause
//! 12.500s crash n2
//! 13.000s restart n2
//! 20.000s partition n1 n3 for 4.000s
//! ```
//!
//! Order: triggered entries (armed from the start) come first, then timed entries by time;
//! entries with equal keys keep their insertion order (stable sort).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::fault::{fmt_secs, is_name, parse_secs, Fault};

/// One schedule line.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ScheduleEntry {
    /// Apply `fault` at simulated time `at`.
    Timed { at: Duration, fault: Fault },
    /// Apply `fault` the first time `point` is reached on `node` at or after simulated time
    /// `after` (the state-aware half of a schedule: it strikes while the node is at a given
    /// place in its code, whenever that happens).
    Triggered {
        point: String,
        node: String,
        #[serde(default)]
        after: Duration,
        fault: Fault,
    },
}

impl ScheduleEntry {
    /// The fault this entry applies.
    pub fn fault(&self) -> &Fault {
        match self {
            ScheduleEntry::Timed { fault, .. } | ScheduleEntry::Triggered { fault, .. } => fault,
        }
    }

    /// The time of a timed entry.
    pub fn at(&self) -> Option<Duration> {
        match self {
            ScheduleEntry::Timed { at, .. } => Some(*at),
            ScheduleEntry::Triggered { .. } => None,
        }
    }

    /// Sort key: triggered entries first, then by time.
    fn key(&self) -> Option<Duration> {
        self.at()
    }
}

impl fmt::Display for ScheduleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleEntry::Timed { at, fault } => write!(f, "{} {fault}", fmt_secs(*at)),
            ScheduleEntry::Triggered {
                point,
                node,
                after,
                fault,
            } => {
                write!(f, "at {point}@{node} ")?;
                if !after.is_zero() {
                    write!(f, "after {} ", fmt_secs(*after))?;
                }
                write!(f, "{fault}")
            }
        }
    }
}

/// A line of schedule text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScheduleError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl FromStr for ScheduleEntry {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let line = line.trim();
        let (head, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if head == "at" {
            return parse_triggered(rest);
        }
        let Some(at) = parse_secs(head) else {
            return Err(format!(
                "expected a time like \"12.500s\" or \"at <point>@<node>\", found {head:?}"
            ));
        };
        let fault = rest
            .parse()
            .map_err(|e: crate::fault::FaultParseError| e.0)?;
        Ok(ScheduleEntry::Timed { at, fault })
    }
}

fn parse_triggered(rest: &str) -> Result<ScheduleEntry, String> {
    let rest = rest.trim_start();
    let (trigger, fault) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let Some((point, node)) = trigger.rsplit_once('@') else {
        return Err(format!(
            "expected <point>@<node> after at, found {trigger:?}"
        ));
    };
    if !is_name(point) || !is_name(node) {
        return Err(format!(
            "expected <point>@<node> after at, found {trigger:?}"
        ));
    }
    let (after, fault) = parse_after(fault)?;
    let fault = fault
        .parse()
        .map_err(|e: crate::fault::FaultParseError| e.0)?;
    Ok(ScheduleEntry::Triggered {
        point: point.to_string(),
        node: node.to_string(),
        after,
        fault,
    })
}

/// An optional `after <secs>` in front of a triggered entry's fault.
fn parse_after(text: &str) -> Result<(Duration, &str), String> {
    let text = text.trim_start();
    let Some(rest) = text.strip_prefix("after ") else {
        return Ok((Duration::ZERO, text));
    };
    let rest = rest.trim_start();
    let (secs, fault) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let after = parse_secs(secs).ok_or_else(|| {
        format!("expected a time like \"12.500s\" after \"after\", found {secs:?}")
    })?;
    Ok((after, fault))
}

/// A fault schedule. Build it with [`Schedule::new`]/[`Schedule::push`] (or parse it) to keep
/// the entries in order; after editing `entries` directly call [`Schedule::sort`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    pub entries: Vec<ScheduleEntry>,
}

impl Schedule {
    /// A schedule of `entries`, stably sorted.
    pub fn new(entries: Vec<ScheduleEntry>) -> Self {
        let mut s = Self { entries };
        s.sort();
        s
    }

    /// Restores the order: triggered entries first, then timed ones by time (stable).
    pub fn sort(&mut self) {
        self.entries.sort_by_key(ScheduleEntry::key);
    }

    /// Inserts an entry after every entry with the same or an earlier key.
    pub fn push(&mut self, entry: ScheduleEntry) {
        let key = entry.key();
        let pos = self.entries.partition_point(|e| e.key() <= key);
        self.entries.insert(pos, entry);
    }

    /// Adds `fault` at time `at`.
    pub fn at(&mut self, at: Duration, fault: Fault) {
        self.push(ScheduleEntry::Timed { at, fault });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The time of the last timed entry plus its duration, if any (when the last fault heals).
    pub fn end(&self) -> Duration {
        self.entries
            .iter()
            .filter_map(|e| Some(e.at()? + e.fault().duration().unwrap_or_default()))
            .max()
            .unwrap_or_default()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut entries = Vec::new();
        for (i, raw) in s.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = line.parse().map_err(|message| ScheduleError {
                line: i + 1,
                message,
            })?;
            entries.push(entry);
        }
        Ok(Schedule::new(entries))
    }
}

/// Run files store a schedule as its text form.
impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const EXAMPLE: &str = "\
# PR 3462, test 1
at sync.metadata.pause@n1 crash n1

1.000s failpoint n1 sync.metadata.pause pause
1.000s failpoint * db.put.before 1*crash
3.000s status n2 RecoveryCatchUp
12.500s crash n2
13.000s restart n2
20.000s partition n1 n3 for 4.000s
20.000s partition-oneway n1 -> n3 for 4.000s
";

    #[test]
    fn parses_example_and_round_trips() {
        let s: Schedule = EXAMPLE.parse().expect("example parses");
        assert_eq!(s.len(), 8);
        let text = s.to_string();
        assert!(text.starts_with("at sync.metadata.pause@n1 crash n1\n1.000s failpoint"));
        let again: Schedule = text.parse().expect("display parses");
        assert_eq!(again, s);
        assert_eq!(again.to_string(), text);
        assert_eq!(s.end(), Duration::from_secs(24));
    }

    #[test]
    fn sorts_stably_by_time() {
        let s: Schedule =
            "5.000s crash n1\n1.000s crash n2\n5.000s restart n1\n1.000s restart n2\n"
                .parse()
                .expect("parses");
        assert_eq!(
            s.to_string(),
            "1.000s crash n2\n1.000s restart n2\n5.000s crash n1\n5.000s restart n1\n"
        );
        let mut pushed = Schedule::default();
        pushed.at(Duration::from_secs(5), "crash n1".parse().expect("fault"));
        pushed.at(Duration::from_secs(1), "crash n2".parse().expect("fault"));
        pushed.at(Duration::from_secs(5), "restart n1".parse().expect("fault"));
        assert_eq!(
            pushed.to_string(),
            "1.000s crash n2\n5.000s crash n1\n5.000s restart n1\n"
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let text = "1.000s crash n1\n# ok\n20.000s partition n1 n3 4s\n";
        let e = text.parse::<Schedule>().expect_err("bad line 3");
        assert_eq!(
            e.to_string(),
            "line 3: expected \"for <secs>s\" after partition, found \"4s\""
        );
        let e = "12s crash n1".parse::<Schedule>().expect_err("bad time");
        assert_eq!(e.line, 1);
        assert!(e.message.contains("expected a time"), "{e}");
        let e = "at nopoint crash n1"
            .parse::<Schedule>()
            .expect_err("bad trigger");
        assert!(e.message.contains("<point>@<node>"), "{e}");
        let e = "at p@n1".parse::<Schedule>().expect_err("no fault");
        assert!(e.message.contains("expected a fault"), "{e}");
    }

    #[test]
    fn serde_uses_text_form() {
        let s: Schedule = EXAMPLE.parse().expect("parses");
        let json = serde_json::to_string(&s).expect("serializes");
        let back: Schedule = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, s);
    }

    fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
        items[rng.random_range(0..items.len())]
    }

    fn nodes(rng: &mut ChaCha8Rng) -> Vec<String> {
        let n = rng.random_range(1..4);
        (0..n)
            .map(|_| pick(rng, &["n1", "n2", "n3", "n10", "node-7"]).to_string())
            .collect()
    }

    fn dur(rng: &mut ChaCha8Rng) -> Duration {
        Duration::from_millis(rng.random_range(0..200_000))
    }

    fn random_fault(rng: &mut ChaCha8Rng) -> Fault {
        let node = pick(rng, &["n1", "n2", "n3", "n10"]).to_string();
        let point = pick(rng, &["sync.metadata.pause", "db.put.before", "a_b:c-d"]).to_string();
        let sel = |rng: &mut ChaCha8Rng| {
            let s = pick(rng, &["*", "n1", "n*", "n*1"]);
            (s != "*").then(|| s.to_string())
        };
        match rng.random_range(0..17) {
            16 => Fault::EpochChange,
            0 => Fault::Crash { node },
            1 => Fault::Restart { node },
            2 => Fault::CrashRestart {
                node,
                down: dur(rng),
            },
            3 | 4 => Fault::Partition {
                a: nodes(rng),
                b: nodes(rng),
                oneway: rng.random_bool(0.5),
                duration: dur(rng),
            },
            5 => Fault::MessageLoss {
                rate: rng.random_range(0..=1000u32) as f64 / 1000.0,
                duration: dur(rng),
            },
            6 => Fault::LatencySpike {
                max_ms: rng.random_range(0..5000),
                duration: dur(rng),
            },
            7 => Fault::Hold {
                a: nodes(rng),
                b: nodes(rng),
                duration: dur(rng),
            },
            8 => Fault::DiskEio {
                node,
                duration: dur(rng),
            },
            9 => Fault::DiskTornOnCrash { node },
            10 => Fault::DiskCorruptReads {
                node,
                per_mille: rng.random_range(0..=1000),
                duration: dur(rng),
            },
            11 => Fault::StatusChange {
                node,
                status: pick(rng, &["Active", "RecoveryCatchUp", "Standby"]).into(),
            },
            12 => Fault::Byzantine {
                node,
                duration: dur(rng),
            },
            13 => Fault::FailPoint {
                selector_node: sel(rng),
                point,
                action: pick(
                    rng,
                    &["pause", "1*crash", "50%return(x y)", "delay(10)->off"],
                )
                .into(),
            },
            14 => Fault::ClearFailPoint { point },
            _ => Fault::OpenGate {
                node: sel(rng),
                point,
            },
        }
    }

    fn random_schedule(rng: &mut ChaCha8Rng) -> Schedule {
        let n = rng.random_range(0..30);
        let entries = (0..n)
            .map(|_| {
                let fault = random_fault(rng);
                if rng.random_bool(0.1) {
                    let point = pick(rng, &["sync.metadata.pause", "x.y"]).to_string();
                    let node = pick(rng, &["n1", "n2"]).to_string();
                    let after = if rng.random_bool(0.5) {
                        dur(rng)
                    } else {
                        Duration::ZERO
                    };
                    ScheduleEntry::Triggered {
                        point,
                        node,
                        after,
                        fault,
                    }
                } else {
                    ScheduleEntry::Timed {
                        at: dur(rng),
                        fault,
                    }
                }
            })
            .collect();
        Schedule::new(entries)
    }

    #[test]
    fn random_schedules_round_trip_exactly() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for case in 0..2000 {
            let s = random_schedule(&mut rng);
            let text = s.to_string();
            let back: Schedule = text
                .parse()
                .unwrap_or_else(|e| panic!("case {case}: {e}\n{text}"));
            assert_eq!(back, s, "case {case}:\n{text}");
            assert_eq!(back.to_string(), text, "case {case}");
        }
    }
}
