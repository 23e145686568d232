//! Fault values: everything a schedule can inject, with a one-line text form (`crash n2`,
//! `partition n1 n3 for 4.000s`, ...) that parses back exactly.
//!
//! Text conventions: node names and point names use `[A-Za-z0-9_.:-]`; node lists are
//! comma-separated (`n1,n2`); a selector is a node name, a glob with `*`, or `*` for every
//! node; durations are seconds with exactly three decimals (`4.000s`), so they carry whole
//! milliseconds (finer parts are truncated when printed); loss rates have exactly three
//! decimals (`0.050`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::action::parse_actions;
use crate::selector::Selector;

/// One injectable fault. Node names are the harness's host names (`n1`, ...).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Fault {
    /// Crash the node (it stays down until a `Restart`).
    Crash { node: String },
    /// Bounce the node: restart a crashed node, or restart a running one.
    Restart { node: String },
    /// Crash the node and restart it `down` later.
    CrashRestart { node: String, down: Duration },
    /// Cut the links between `a` and `b` (only `a -> b` when `oneway`).
    Partition {
        a: Vec<String>,
        b: Vec<String>,
        oneway: bool,
        duration: Duration,
    },
    /// Cut the links between the nodes and the chain host, in one direction or both.
    ChainPartition {
        nodes: Vec<String>,
        direction: LinkDirection,
        duration: Duration,
    },
    /// Drop this fraction (0..=1) of messages everywhere.
    MessageLoss { rate: f64, duration: Duration },
    /// Raise the maximum message latency everywhere.
    LatencySpike { max_ms: u64, duration: Duration },
    /// Hold messages between `a` and `b`, releasing them afterwards.
    Hold {
        a: Vec<String>,
        b: Vec<String>,
        duration: Duration,
    },
    /// The node's disk fails every I/O with EIO.
    DiskEio { node: String, duration: Duration },
    /// The node's next crash tears its unsynced writes.
    DiskTornOnCrash { node: String },
    /// The node's disk corrupts this many reads per thousand.
    DiskCorruptReads {
        node: String,
        per_mille: u32,
        duration: Duration,
    },
    /// Write a SUT-specific status (as text) concurrently with the node's own writes.
    StatusChange { node: String, status: String },
    /// The node serves corrupted slivers.
    Byzantine { node: String, duration: Duration },
    /// Arm a fail point (`selector_node`: `None` = every node, or a node name or glob).
    FailPoint {
        selector_node: Option<String>,
        point: String,
        action: String,
    },
    /// Remove every rule of a fail point.
    ClearFailPoint { point: String },
    /// Open the pause gate of a fail point (`None` = for every node).
    OpenGate { node: Option<String>, point: String },
    /// Bring the next planned epoch change forward to now (as soon as the current one ended).
    EpochChange,
    /// Redraw the committee churn of every later epoch change from this seed (the churn
    /// before it is unchanged).
    Reshuffle { seed: u64 },
}

impl Fault {
    /// The leading keyword of the text form.
    pub fn keyword(&self) -> &'static str {
        match self {
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::CrashRestart { .. } => "crash-restart",
            Fault::Partition { oneway: false, .. } => "partition",
            Fault::Partition { oneway: true, .. } => "partition-oneway",
            Fault::ChainPartition { .. } => "chain-partition",
            Fault::MessageLoss { .. } => "loss",
            Fault::LatencySpike { .. } => "latency",
            Fault::Hold { .. } => "hold",
            Fault::DiskEio { .. } => "disk-eio",
            Fault::DiskTornOnCrash { .. } => "disk-torn",
            Fault::DiskCorruptReads { .. } => "disk-corrupt",
            Fault::StatusChange { .. } => "status",
            Fault::Byzantine { .. } => "byzantine",
            Fault::FailPoint { .. } => "failpoint",
            Fault::ClearFailPoint { .. } => "clear-failpoint",
            Fault::OpenGate { .. } => "open-gate",
            Fault::EpochChange => "epoch-change",
            Fault::Reshuffle { .. } => "reshuffle",
        }
    }

    /// The registry selector of a `FailPoint` or `OpenGate` (`All` for other faults).
    pub fn selector(&self) -> Selector {
        match self {
            Fault::FailPoint {
                selector_node: Some(s),
                ..
            }
            | Fault::OpenGate { node: Some(s), .. } => Selector::parse(s),
            _ => Selector::All,
        }
    }

    /// How long the fault lasts, for faults that heal by themselves.
    pub fn duration(&self) -> Option<Duration> {
        self.duration_ref().copied()
    }

    fn duration_ref(&self) -> Option<&Duration> {
        match self {
            Fault::CrashRestart { down: d, .. }
            | Fault::Partition { duration: d, .. }
            | Fault::ChainPartition { duration: d, .. }
            | Fault::MessageLoss { duration: d, .. }
            | Fault::LatencySpike { duration: d, .. }
            | Fault::Hold { duration: d, .. }
            | Fault::DiskEio { duration: d, .. }
            | Fault::DiskCorruptReads { duration: d, .. }
            | Fault::Byzantine { duration: d, .. } => Some(d),
            _ => None,
        }
    }

    /// The duration to edit (shrinking shortens faults), for faults that have one.
    pub fn duration_mut(&mut self) -> Option<&mut Duration> {
        match self {
            Fault::CrashRestart { down: d, .. }
            | Fault::Partition { duration: d, .. }
            | Fault::ChainPartition { duration: d, .. }
            | Fault::MessageLoss { duration: d, .. }
            | Fault::LatencySpike { duration: d, .. }
            | Fault::Hold { duration: d, .. }
            | Fault::DiskEio { duration: d, .. }
            | Fault::DiskCorruptReads { duration: d, .. }
            | Fault::Byzantine { duration: d, .. } => Some(d),
            _ => None,
        }
    }
}

/// Which way a cut link between nodes and the chain host drops messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LinkDirection {
    /// Nothing gets through.
    Both,
    /// The nodes' requests are lost (the chain never sees them).
    ToChain,
    /// The chain's answers are lost (the chain acts on requests the nodes never see answered).
    FromChain,
}

impl LinkDirection {
    pub const ALL: [LinkDirection; 3] = [
        LinkDirection::Both,
        LinkDirection::ToChain,
        LinkDirection::FromChain,
    ];

    fn name(self) -> &'static str {
        match self {
            LinkDirection::Both => "both",
            LinkDirection::ToChain => "to-chain",
            LinkDirection::FromChain => "from-chain",
        }
    }
}

impl fmt::Display for LinkDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LinkDirection {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|d| d.name() == s).ok_or(())
    }
}

/// Formats whole milliseconds as seconds with three decimals: `12.500s`.
pub fn fmt_secs(d: Duration) -> String {
    let ms = d.as_millis();
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// Parses exactly `<digits>.<3 digits>s`.
pub fn parse_secs(text: &str) -> Option<Duration> {
    text.strip_suffix('s')
        .and_then(parse_thousandths)
        .map(Duration::from_millis)
}

/// Parses exactly `<digits>.<3 digits>` into thousandths.
fn parse_thousandths(text: &str) -> Option<u64> {
    let (whole, frac) = text.split_once('.')?;
    if frac.len() != 3 {
        return None;
    }
    parse_digits(whole)?
        .checked_mul(1000)?
        .checked_add(parse_digits(frac)?)
}

/// Parses a non-empty run of ASCII digits.
fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// True for a node or point name: `[A-Za-z0-9_.:-]+`.
pub fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

fn is_selector(text: &str) -> bool {
    text == "*" || is_name(&text.replace('*', "x"))
}

fn fmt_nodes(nodes: &[String]) -> String {
    nodes.join(",")
}

fn fmt_selector(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("*")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kw = self.keyword();
        match self {
            Fault::Crash { node } | Fault::Restart { node } | Fault::DiskTornOnCrash { node } => {
                write!(f, "{kw} {node}")
            }
            Fault::CrashRestart { node, down } => write!(f, "{kw} {node} for {}", fmt_secs(*down)),
            Fault::Partition {
                a,
                b,
                oneway,
                duration,
            } => {
                let arrow = if *oneway { " ->" } else { "" };
                let (a, b, d) = (fmt_nodes(a), fmt_nodes(b), fmt_secs(*duration));
                write!(f, "{kw} {a}{arrow} {b} for {d}")
            }
            Fault::ChainPartition {
                nodes,
                direction,
                duration,
            } => write!(
                f,
                "{kw} {} {direction} for {}",
                fmt_nodes(nodes),
                fmt_secs(*duration)
            ),
            Fault::MessageLoss { rate, duration } => {
                write!(f, "{kw} {rate:.3} for {}", fmt_secs(*duration))
            }
            Fault::LatencySpike { max_ms, duration } => {
                write!(f, "{kw} {max_ms}ms for {}", fmt_secs(*duration))
            }
            Fault::Hold { a, b, duration } => {
                let (a, b, d) = (fmt_nodes(a), fmt_nodes(b), fmt_secs(*duration));
                write!(f, "{kw} {a} {b} for {d}")
            }
            Fault::DiskEio { node, duration } | Fault::Byzantine { node, duration } => {
                write!(f, "{kw} {node} for {}", fmt_secs(*duration))
            }
            Fault::DiskCorruptReads {
                node,
                per_mille,
                duration,
            } => write!(
                f,
                "{kw} {node} {per_mille}/1000 for {}",
                fmt_secs(*duration)
            ),
            Fault::StatusChange { node, status } => write!(f, "{kw} {node} {status}"),
            Fault::FailPoint {
                selector_node,
                point,
                action,
            } => write!(f, "{kw} {} {point} {action}", fmt_selector(selector_node)),
            Fault::ClearFailPoint { point } => write!(f, "{kw} {point}"),
            Fault::OpenGate { node, point } => write!(f, "{kw} {} {point}", fmt_selector(node)),
            Fault::EpochChange => f.write_str(kw),
            Fault::Reshuffle { seed } => write!(f, "{kw} {seed}"),
        }
    }
}

/// A fault text that does not parse; the message says what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultParseError(pub String);

/// A whitespace tokenizer that can also hand out the rest of the line.
struct Cursor<'a> {
    rest: &'a str,
    keyword: &'a str,
}

fn found(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("{t:?}"),
        None => "end of line".into(),
    }
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let text = self.rest.trim_start();
        if text.is_empty() {
            self.rest = text;
            return None;
        }
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        self.rest = &text[end..];
        Some(&text[..end])
    }

    fn err<T>(&self, what: &str, token: Option<&str>) -> Result<T, FaultParseError> {
        Err(FaultParseError(format!(
            "expected {what} after {}, found {}",
            self.keyword,
            found(token)
        )))
    }

    fn node(&mut self) -> Result<String, FaultParseError> {
        match self.next() {
            Some(t) if is_name(t) => Ok(t.to_string()),
            t => self.err("a node name", t),
        }
    }

    fn nodes(&mut self) -> Result<Vec<String>, FaultParseError> {
        match self.next() {
            Some(t) if t.split(',').all(is_name) => Ok(t.split(',').map(String::from).collect()),
            t => self.err("a comma-separated node list", t),
        }
    }

    fn point(&mut self) -> Result<String, FaultParseError> {
        match self.next() {
            Some(t) if is_name(t) => Ok(t.to_string()),
            t => self.err("a fail-point name", t),
        }
    }

    fn selector(&mut self) -> Result<Option<String>, FaultParseError> {
        match self.next() {
            Some("*") => Ok(None),
            Some(t) if is_selector(t) => Ok(Some(t.to_string())),
            t => self.err("a node, a glob or *", t),
        }
    }

    fn word(&mut self, word: &str) -> Result<(), FaultParseError> {
        match self.next() {
            Some(t) if t == word => Ok(()),
            t => self.err(&format!("{word:?}"), t),
        }
    }

    fn for_secs(&mut self) -> Result<Duration, FaultParseError> {
        let what = "\"for <secs>s\"";
        match self.next() {
            Some("for") => match self.next() {
                Some(t) => parse_secs(t).map_or_else(|| self.err(what, Some(t)), Ok),
                None => self.err(what, None),
            },
            t => self.err(what, t),
        }
    }

    fn suffixed(&mut self, suffix: &str, what: &str) -> Result<u64, FaultParseError> {
        match self.next() {
            Some(t) => t
                .strip_suffix(suffix)
                .and_then(parse_digits)
                .map_or_else(|| self.err(what, Some(t)), Ok),
            None => self.err(what, None),
        }
    }

    fn seed(&mut self) -> Result<u64, FaultParseError> {
        let token = self.next();
        match token.map(str::parse::<u64>) {
            Some(Ok(seed)) => Ok(seed),
            _ => self.err("a seed (an unsigned 64-bit number)", token),
        }
    }

    fn direction(&mut self) -> Result<LinkDirection, FaultParseError> {
        match self.next() {
            Some(t) => t
                .parse()
                .map_or_else(|_| self.err("both, to-chain or from-chain", Some(t)), Ok),
            None => self.err("both, to-chain or from-chain", None),
        }
    }

    fn rate(&mut self) -> Result<f64, FaultParseError> {
        let what = "a rate 0.000..=1.000";
        match self.next() {
            Some(t) => match parse_thousandths(t) {
                Some(k) if k <= 1000 => Ok(k as f64 / 1000.0),
                _ => self.err(what, Some(t)),
            },
            None => self.err(what, None),
        }
    }

    fn status(&mut self) -> Result<String, FaultParseError> {
        match self.next() {
            Some(t) => Ok(t.to_string()),
            None => self.err("a status", None),
        }
    }

    fn action(&mut self) -> Result<String, FaultParseError> {
        let text = self.rest.trim();
        self.rest = "";
        if text.is_empty() {
            return self.err("a fail-point action", None);
        }
        parse_actions(text).map_err(|e| FaultParseError(e.to_string()))?;
        Ok(text.to_string())
    }

    fn end(mut self) -> Result<(), FaultParseError> {
        match self.next() {
            None => Ok(()),
            Some(t) => Err(FaultParseError(format!(
                "unexpected {t:?} at the end of {}",
                self.keyword
            ))),
        }
    }
}

const KEYWORDS: &str = "crash, restart, crash-restart, partition, partition-oneway, \
chain-partition, loss, \
latency, hold, disk-eio, disk-torn, disk-corrupt, status, byzantine, failpoint, \
clear-failpoint, open-gate, epoch-change or reshuffle";

impl FromStr for Fault {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut c = Cursor {
            rest: s,
            keyword: "",
        };
        let Some(keyword) = c.next() else {
            return Err(FaultParseError(format!("expected a fault ({KEYWORDS})")));
        };
        c.keyword = keyword;
        let fault = parse_body(keyword, &mut c)?;
        c.end()?;
        Ok(fault)
    }
}

fn parse_body(keyword: &str, c: &mut Cursor<'_>) -> Result<Fault, FaultParseError> {
    Ok(match keyword {
        "crash" => Fault::Crash { node: c.node()? },
        "restart" => Fault::Restart { node: c.node()? },
        "crash-restart" => Fault::CrashRestart {
            node: c.node()?,
            down: c.for_secs()?,
        },
        "partition" | "partition-oneway" => parse_partition(keyword == "partition-oneway", c)?,
        "chain-partition" => Fault::ChainPartition {
            nodes: c.nodes()?,
            direction: c.direction()?,
            duration: c.for_secs()?,
        },
        "loss" => Fault::MessageLoss {
            rate: c.rate()?,
            duration: c.for_secs()?,
        },
        "latency" => Fault::LatencySpike {
            max_ms: c.suffixed("ms", "a latency like \"300ms\"")?,
            duration: c.for_secs()?,
        },
        "hold" => Fault::Hold {
            a: c.nodes()?,
            b: c.nodes()?,
            duration: c.for_secs()?,
        },
        "disk-eio" => Fault::DiskEio {
            node: c.node()?,
            duration: c.for_secs()?,
        },
        "disk-torn" => Fault::DiskTornOnCrash { node: c.node()? },
        "disk-corrupt" => parse_disk_corrupt(c)?,
        "status" => Fault::StatusChange {
            node: c.node()?,
            status: c.status()?,
        },
        "byzantine" => Fault::Byzantine {
            node: c.node()?,
            duration: c.for_secs()?,
        },
        "failpoint" => Fault::FailPoint {
            selector_node: c.selector()?,
            point: c.point()?,
            action: c.action()?,
        },
        "clear-failpoint" => Fault::ClearFailPoint { point: c.point()? },
        "open-gate" => Fault::OpenGate {
            node: c.selector()?,
            point: c.point()?,
        },
        "epoch-change" => Fault::EpochChange,
        "reshuffle" => Fault::Reshuffle { seed: c.seed()? },
        other => {
            return Err(FaultParseError(format!(
                "unknown fault {other:?} (expected {KEYWORDS})"
            )))
        }
    })
}

fn parse_partition(oneway: bool, c: &mut Cursor<'_>) -> Result<Fault, FaultParseError> {
    let a = c.nodes()?;
    if oneway {
        c.word("->")?;
    }
    Ok(Fault::Partition {
        a,
        b: c.nodes()?,
        oneway,
        duration: c.for_secs()?,
    })
}

fn parse_disk_corrupt(c: &mut Cursor<'_>) -> Result<Fault, FaultParseError> {
    let node = c.node()?;
    let per_mille = c.suffixed("/1000", "a rate like \"25/1000\"")?;
    let Ok(per_mille @ 0..=1000) = u32::try_from(per_mille) else {
        return Err(FaultParseError(format!(
            "disk-corrupt rate {per_mille}/1000 is above 1000/1000"
        )));
    };
    Ok(Fault::DiskCorruptReads {
        node,
        per_mille,
        duration: c.for_secs()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Fault {
        let fault: Fault = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
        assert_eq!(fault.to_string(), text);
        fault
    }

    #[test]
    fn every_fault_round_trips() {
        let lines = [
            "crash n2",
            "restart n2",
            "crash-restart n2 for 2.500s",
            "partition n1 n3 for 4.000s",
            "partition n1,n2 n3,n4,n5 for 0.001s",
            "partition-oneway n1 -> n3 for 4.000s",
            "chain-partition n2 both for 3.000s",
            "chain-partition n1,n4 to-chain for 1.500s",
            "chain-partition n3 from-chain for 9.999s",
            "loss 0.050 for 10.000s",
            "latency 300ms for 5.000s",
            "hold n1 n2,n3 for 1.250s",
            "disk-eio n2 for 3.000s",
            "disk-torn n2",
            "disk-corrupt n2 25/1000 for 3.000s",
            "status n2 RecoveryCatchUp",
            "byzantine n4 for 12.000s",
            "failpoint n1 sync.metadata.pause pause",
            "failpoint * db.put.before 1*crash",
            "failpoint n* sync.fetch_sliver 10%return(primary, 3, true)",
            "clear-failpoint sync.metadata.pause",
            "open-gate n1 sync.metadata.pause",
            "open-gate * sync.metadata.pause",
            "epoch-change",
            "reshuffle 18446744073709551615",
        ];
        for line in lines {
            round_trip(line);
        }
        assert_eq!(
            round_trip("partition-oneway n1 -> n3 for 4.000s"),
            Fault::Partition {
                a: vec!["n1".into()],
                b: vec!["n3".into()],
                oneway: true,
                duration: Duration::from_millis(4000),
            }
        );
        assert_eq!(
            round_trip("failpoint n* p return").selector(),
            Selector::Pattern("n*".into())
        );
    }

    #[test]
    fn seconds_are_strict() {
        assert_eq!(parse_secs("12.500s"), Some(Duration::from_millis(12_500)));
        assert_eq!(fmt_secs(Duration::from_millis(12_500)), "12.500s");
        for bad in [
            "4s", "4.5s", "4.0000s", "4.000", "-1.000s", "+1.000s", ".500s", "1.5x0s",
        ] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
    }

    fn bad(text: &str) -> String {
        match text.parse::<Fault>() {
            Ok(f) => panic!("{text:?} parsed as {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_say_what_was_expected() {
        assert_eq!(
            bad("partition n1 n3 4s"),
            "expected \"for <secs>s\" after partition, found \"4s\""
        );
        assert_eq!(
            bad("partition n1 n3 for 4s"),
            "expected \"for <secs>s\" after partition, found \"4s\""
        );
        assert!(bad("crash").contains("expected a node name after crash, found end of line"));
        assert!(bad("crash n1 n2").contains("unexpected \"n2\""));
        assert!(bad("loss 1.500 for 1.000s").contains("a rate 0.000..=1.000"));
        assert!(bad("latency 3s for 1.000s").contains("300ms"));
        assert!(bad("frob n1").contains("unknown fault \"frob\""));
        assert!(bad("failpoint n1 p abc%return").contains("bad fail-point action"));
        assert!(bad("failpoint n1 p").contains("a fail-point action"));
        assert!(bad("partition-oneway n1 n3 for 1.000s").contains("\"->\""));
        assert!(bad("disk-corrupt n1 2000/1000 for 1.000s").contains("above"));
        assert!(bad("crash n/1").contains("node name"));
        assert!(bad("chain-partition n1 sideways for 1.000s").contains(
            "expected both, to-chain or from-chain after chain-partition, found \"sideways\""
        ));
        assert!(bad("").contains("expected a fault"));
        assert!(bad("reshuffle -3").contains("expected a seed"));
        assert!(bad("reshuffle").contains("found end of line"));
    }
}
