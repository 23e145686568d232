//! The HTML report of one run: a self-contained page (no external assets, no scripts) with the
//! run's seed, bugs, knobs and schedule, the violated invariant, and a timeline drawn as inline
//! SVG: one lane per node with its node status over simulated time, sub-lanes for the statuses
//! of every shard it stored, fault markers and spans, crashes and restarts, and epoch
//! boundaries. The output depends only on the run, so the same run renders to the same bytes.
//!
//! A failing run's page zooms to the violation's causal window ([`Focus`]): from the fault that
//! started it (the last fault before the violation that touched the violating node, or of the
//! nodes holding the violating shard), or [`LEAD`] before the violation if that is earlier, at
//! most [`MAX_SPAN`] back, up to the violation. The violating node's lane and shard rows are
//! highlighted, the trace excerpt runs from the cause to the violation, and the whole run's
//! timeline follows, collapsed, with the window marked on it.

use crate::oracle::Violation;
use crate::run::RunResult;
use crate::trace::{ChainNote, HarnessEvent, TraceEvent, TraceKind};
use shardstorm_faults::{fmt_secs, Fault, FaultKind, Knobs, Selector};
use shardstorm_node::{NodeId, NodeStatus, ProbeEvent, ShardIndex, ShardStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::Duration;

/// Most condensed-trace lines the page embeds.
const MAX_TRACE_LINES: usize = 20_000;

/// The causal window reaches at least this far back before the violation.
pub const LEAD: Duration = Duration::from_secs(10);

/// ... and at most this far (before a little padding).
pub const MAX_SPAN: Duration = Duration::from_secs(60);

/// Lines of the trace excerpt kept from its start (the cause) and from its end (the violation)
/// when it is longer than both together.
const EXCERPT_HEAD: usize = 100;
const EXCERPT_TAIL: usize = 100;

/// The excerpt starts with at most this many condensed lines before the cause, from at most
/// [`EXCERPT_BEFORE_CAUSE_MS`] before it.
const EXCERPT_BEFORE_CAUSE: usize = 5;
const EXCERPT_BEFORE_CAUSE_MS: u64 = 2_000;

/// Renders the report page of one run.
pub fn render(result: &RunResult) -> String {
    let model = Timeline::build(result);
    let focus = result.violation.as_ref().map(|v| Focus::of(&model, v));
    let mut page = String::with_capacity(64 * 1024);
    page.push_str(&head(result));
    page.push_str(&summary_section(result));
    page.push_str(&verdict_section(result.violation.as_ref()));
    page.push_str(&timeline_section(result, &model, focus.as_ref()));
    if let (Some(v), Some(focus)) = (result.violation.as_ref(), focus.as_ref()) {
        page.push_str(&excerpt_section(result, v, focus));
    }
    page.push_str(&knobs_section(&result.knobs));
    page.push_str(&schedule_section(result));
    page.push_str(&trace_section(result));
    page.push_str("</body>\n</html>\n");
    page
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Page sections

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:18px 24px;color:#1d1d1f;background:#fff}
h1{font-size:20px;margin:0 0 6px}
h2{font-size:15px;margin:22px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
th{background:#f4f4f6}
pre{background:#f7f7f9;border:1px solid #e3e3e8;padding:8px;font-size:12px;overflow-x:auto;margin:4px 0}
.facts td:first-child{color:#555}
.verdict{padding:8px 12px;border-radius:4px;font-size:14px;margin:8px 0}
.fail{background:#fdecea;border:1px solid #e0a8a3}
.pass{background:#e8f5ec;border:1px solid #9fd3b0}
.legend{font-size:12px;display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0;align-items:center}
.legend b{font-weight:600;margin-right:2px}
.sw{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:-1px;border:1px solid #0002}
.off{color:#999}
svg text{font-family:system-ui,sans-serif}
.note{font-size:13px;margin:4px 0 8px;max-width:1340px}
details.whole-run{margin:10px 0}
details.whole-run>summary,details.oracle>summary{cursor:pointer;font-size:13px;margin:4px 0}
.hl-line{background:#ffe3e3;display:inline-block;width:100%}
.cause-line{background:#fbd3e9;font-weight:700;display:inline-block;width:100%}
.omitted{color:#777;font-style:italic}
";

fn head(result: &RunResult) -> String {
    let mut css = String::from(STYLE);
    for (class, colour, _) in NODE_STATUS_STYLES.iter().chain(SHARD_STATUS_STYLES) {
        let _ = writeln!(css, ".{class}{{fill:{colour};background:{colour}}}");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>shardstorm run, seed {}</title>\n<style>\n{css}</style>\n</head>\n<body>\n",
        result.spec.seed
    )
}

fn summary_section(result: &RunResult) -> String {
    let spec = &result.spec;
    let bugs: Vec<&str> = spec.bugs.iter().map(|b| b.name()).collect();
    let bugs = if bugs.is_empty() {
        "none".to_string()
    } else {
        bugs.join(", ")
    };
    let facts = [
        ("seed", spec.seed.to_string()),
        ("bugs", bugs),
        (
            "cluster",
            format!("{} nodes, {} shards", spec.nodes, spec.shards),
        ),
        (
            "workload",
            format!(
                "{} epochs, {} blobs, tick {} ms",
                spec.epochs, spec.blobs, spec.tick_ms
            ),
        ),
        (
            "simulated",
            format!(
                "{} ({} steps)",
                fmt_secs(Duration::from_millis(result.sim_ms)),
                result.steps
            ),
        ),
        (
            "trace",
            format!("{} events, hash {}", result.trace.len(), result.trace_hash),
        ),
    ];
    let mut out = format!(
        "<h1>shardstorm run, seed {}</h1>\n<table class=\"facts\">\n",
        spec.seed
    );
    for (key, value) in facts {
        let _ = writeln!(out, "<tr><td>{key}</td><td>{}</td></tr>", escape(&value));
    }
    out.push_str("</table>\n");
    out
}

fn verdict_section(violation: Option<&Violation>) -> String {
    let Some(v) = violation else {
        return "<div class=\"verdict pass\"><b>passed</b>: no invariant was violated and the cluster converged.</div>\n"
            .to_string();
    };
    format!(
        "<div class=\"verdict fail\"><b>violated: {}</b><br>{}</div>\n",
        escape(v.invariant.name()),
        escape(&v.to_string())
    )
}

/// The condensed trace from a little before the cause to the violation; lines of the
/// highlighted nodes and shard marked, the cause in bold. The oracle's own context (the last
/// events of every kind before the violation) follows, collapsed.
fn excerpt_section(result: &RunResult, v: &Violation, focus: &Focus) -> String {
    let events = result.trace.events();
    let last = events.iter().rposition(|e| e.t_ms <= focus.at);
    let condensed: Vec<usize> = (0..last.map_or(0, |i| i + 1))
        .filter(|i| events[*i].is_condensed())
        .collect();
    let first = match focus.cause_event {
        Some(cause) => {
            let at = condensed
                .iter()
                .position(|i| *i >= cause)
                .unwrap_or(condensed.len());
            let since = events[cause].t_ms.saturating_sub(EXCERPT_BEFORE_CAUSE_MS);
            let recent = condensed[..at]
                .iter()
                .rev()
                .take(EXCERPT_BEFORE_CAUSE)
                .take_while(|i| events[**i].t_ms >= since)
                .count();
            at - recent
        }
        None => condensed
            .iter()
            .position(|i| events[*i].t_ms >= focus.start)
            .unwrap_or(condensed.len()),
    };
    let shown = &condensed[first..];
    let line = |i: usize| {
        let e = &events[i];
        let text = escape(&e.to_string());
        if Some(i) == focus.cause_event {
            format!("<span class=\"cause-line\">{text}</span>")
        } else if focus.marks(e) {
            format!("<span class=\"hl-line\">{text}</span>")
        } else {
            text
        }
    };
    let mut body: Vec<String> = Vec::new();
    if shown.len() > EXCERPT_HEAD + EXCERPT_TAIL {
        body.extend(shown[..EXCERPT_HEAD].iter().map(|i| line(*i)));
        body.push(format!(
            "<span class=\"omitted\">... {} lines ...</span>",
            shown.len() - EXCERPT_HEAD - EXCERPT_TAIL
        ));
        body.extend(shown[shown.len() - EXCERPT_TAIL..].iter().map(|i| line(*i)));
    } else {
        body.extend(shown.iter().map(|i| line(*i)));
    }
    let from = match (focus.cause_event, &focus.cause) {
        (Some(_), Some(text)) => format!("the cause, <code>{}</code>", escape(text)),
        _ => format!("{} (no fault touched it before)", seconds(focus.start)),
    };
    let mut out = format!(
        "<h2>Trace around the cause</h2>\n<p class=\"note\">Condensed trace from {from} to the \
         violation at {} ({} lines){}.</p>\n<pre class=\"excerpt\">{}</pre>\n",
        seconds(focus.at),
        shown.len(),
        focus.marked_text(),
        body.join("\n")
    );
    if !v.context.is_empty() {
        let _ = write!(
            out,
            "<details class=\"oracle\"><summary>The last {} trace events before the violation \
             (every kind)</summary>\n<pre>{}</pre>\n</details>\n",
            v.context.len(),
            escape(&v.context.join("\n"))
        );
    }
    out
}

fn knobs_section(knobs: &Knobs) -> String {
    let mut out = String::from(
        "<h2>Knobs</h2>\n<div class=\"legend\" style=\"align-items:flex-start;gap:16px\">\n",
    );
    out.push_str("<table>\n<tr><th>fault kind</th><th>on</th><th>rate / min</th></tr>\n");
    for kind in FaultKind::ALL {
        let k = knobs.kind(kind);
        let class = if k.enabled { "" } else { " class=\"off\"" };
        let on = if k.enabled { "on" } else { "off" };
        let _ = writeln!(
            out,
            "<tr{class}><td>{}</td><td>{on}</td><td>{}</td></tr>",
            kind.name(),
            k.rate
        );
    }
    out.push_str("</table>\n<table>\n<tr><th>knob</th><th>value</th></tr>\n");
    for (key, value) in knobs.scalar_lines() {
        let _ = writeln!(out, "<tr><td>{key}</td><td>{}</td></tr>", escape(&value));
    }
    out.push_str("</table>\n</div>\n");
    out
}

fn schedule_section(result: &RunResult) -> String {
    let text = result.schedule.to_string();
    let body = if text.is_empty() {
        "(no faults)".to_string()
    } else {
        escape(text.trim_end())
    };
    format!(
        "<h2>Schedule ({} entries)</h2>\n<pre>{body}</pre>\n",
        result.schedule.len()
    )
}

fn trace_section(result: &RunResult) -> String {
    let lines: Vec<String> = result
        .trace
        .events()
        .iter()
        .filter(|e| e.is_condensed())
        .map(ToString::to_string)
        .collect();
    let shown = lines.len().min(MAX_TRACE_LINES);
    let mut body = escape(&lines[..shown].join("\n"));
    if shown < lines.len() {
        let _ = write!(body, "\n... {} more lines", lines.len() - shown);
    }
    format!("<h2>Condensed trace</h2>\n<details><summary>{} events</summary>\n<pre>{body}</pre>\n</details>\n", lines.len())
}

fn timeline_section(result: &RunResult, model: &Timeline, focus: Option<&Focus>) -> String {
    let violation = result.violation.as_ref();
    let whole = Scale {
        start: 0,
        end: model.end,
    };
    let Some(focus) = focus else {
        return format!(
            "<h2>Timeline</h2>\n{}{}",
            legend(),
            svg(model, violation, None, &whole, View::WholeRun)
        );
    };
    let window = Scale {
        start: focus.start,
        end: focus.end,
    };
    format!(
        "<h2>Timeline: the causal window</h2>\n<p class=\"note\">{}</p>\n{}{}\
         <details class=\"whole-run\"><summary>The whole run (0s to {}), the window shaded</summary>\n{}</details>\n",
        focus.describe(),
        legend(),
        svg(model, violation, Some(focus), &window, View::Window),
        seconds(model.end),
        svg(model, violation, Some(focus), &whole, View::WholeRun)
    )
}

fn legend() -> String {
    let mut out = String::from("<div class=\"legend\"><b>node status</b>");
    for (class, _, label) in NODE_STATUS_STYLES {
        let _ = write!(
            out,
            "<span><span class=\"sw {class}\"></span>{label}</span>"
        );
    }
    out.push_str("</div>\n<div class=\"legend\"><b>shard status</b>");
    for (class, _, label) in SHARD_STATUS_STYLES {
        let _ = write!(
            out,
            "<span><span class=\"sw {class}\"></span>{label}</span>"
        );
    }
    out.push_str("</div>\n<div class=\"legend\"><b>events</b>");
    let marks = [
        (
            format!("background:{FAULT_COLOUR}"),
            "fault (tick: applied, band: its duration)",
        ),
        (
            "background:repeating-linear-gradient(45deg,#222 0 2px,#fff0 2px 5px)".to_string(),
            "node down (crashed)",
        ),
        (
            format!("background:{EPOCH_COLOUR}"),
            "epoch change (dashed)",
        ),
        (
            format!("background:{HEAL_COLOUR}"),
            "heal: liveness phase (dotted, tinted)",
        ),
        (format!("background:{VIOLATION_COLOUR}"), "violation"),
    ];
    for (style, label) in marks {
        let _ = write!(
            out,
            "<span><span class=\"sw\" style=\"{style}\"></span>{label}</span>"
        );
    }
    let icons = [
        (
            "<path d=\"M2 2L10 10M2 10L10 2\" stroke=\"#111\" stroke-width=\"2\"/>",
            "crash",
        ),
        (
            "<polygon points=\"3,1 11,6 3,11\" fill=\"#fff\" stroke=\"#111\"/>",
            "restart",
        ),
        (
            "<circle cx=\"6\" cy=\"6\" r=\"3\" fill=\"#fff\" stroke=\"#123\"/>",
            "epoch-sync-done",
        ),
    ];
    for (icon, label) in icons {
        let _ = write!(
            out,
            "<span><svg width=\"12\" height=\"12\" style=\"vertical-align:-1px;margin-right:4px\">{icon}</svg>{label}</span>"
        );
    }
    out.push_str("</div>\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Colours

/// (CSS class, colour, legend label) of each node status variant.
const NODE_STATUS_STYLES: &[(&str, &str, &str)] = &[
    ("ns-standby", "#b8b8c0", "Standby"),
    ("ns-active", "#2f9e55", "Active"),
    ("ns-metadata", "#8e5ac8", "RecoverMetadata"),
    ("ns-catchup", "#f0a030", "RecoveryCatchUp"),
    (
        "ns-incomplete",
        "#c4622d",
        "RecoveryCatchUpWithIncompleteHistory",
    ),
    ("ns-progress", "#3a7bd5", "RecoveryInProgress"),
];

/// (CSS class, colour, legend label) of each shard status.
const SHARD_STATUS_STYLES: &[(&str, &str, &str)] = &[
    ("ss-none", "#d6d6dc", "None"),
    ("ss-active", "#7cc896", "Active"),
    ("ss-sync", "#7fb0ea", "ActiveSync"),
    ("ss-recover", "#f3b863", "ActiveRecover"),
    ("ss-locked", "#d9534f", "LockedToMove"),
];

const FAULT_COLOUR: &str = "#d63384";
const EPOCH_COLOUR: &str = "#555";
const HEAL_COLOUR: &str = "#1c7ed6";
const VIOLATION_COLOUR: &str = "#e03131";

fn node_status_class(status: &NodeStatus) -> &'static str {
    match status {
        NodeStatus::Standby => "ns-standby",
        NodeStatus::Active => "ns-active",
        NodeStatus::RecoverMetadata => "ns-metadata",
        NodeStatus::RecoveryCatchUp => "ns-catchup",
        NodeStatus::RecoveryCatchUpWithIncompleteHistory { .. } => "ns-incomplete",
        NodeStatus::RecoveryInProgress(_) => "ns-progress",
    }
}

fn shard_status_class(status: ShardStatus) -> &'static str {
    match status {
        ShardStatus::None => "ss-none",
        ShardStatus::Active => "ss-active",
        ShardStatus::ActiveSync => "ss-sync",
        ShardStatus::ActiveRecover => "ss-recover",
        ShardStatus::LockedToMove => "ss-locked",
    }
}

// ---------------------------------------------------------------------------------------------
// The timeline model: what the SVG draws, derived from the trace

/// A coloured interval of a lane.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    start: u64,
    end: u64,
    class: &'static str,
    label: String,
}

/// Builds consecutive segments from status changes: each lasts until the next change.
#[derive(Debug, Default)]
struct SegmentBuilder {
    done: Vec<Segment>,
    open: Option<(u64, &'static str, String)>,
}

impl SegmentBuilder {
    fn change(&mut self, t: u64, class: &'static str, label: String) {
        self.close(t);
        self.open = Some((t, class, label));
    }

    fn close(&mut self, t: u64) {
        if let Some((start, class, label)) = self.open.take() {
            if t > start {
                self.done.push(Segment {
                    start,
                    end: t,
                    class,
                    label,
                });
            }
        }
    }

    fn finish(mut self, end: u64) -> Vec<Segment> {
        self.close(end);
        self.done
    }
}

/// One node's lane.
#[derive(Debug, Default)]
struct NodeLane {
    statuses: SegmentBuilder,
    shards: BTreeMap<ShardIndex, SegmentBuilder>,
    crashes: Vec<u64>,
    restarts: Vec<u64>,
    attestations: Vec<(u64, String)>,
    down_since: Option<u64>,
    down: Vec<(u64, u64)>,
}

/// One applied fault.
#[derive(Debug)]
struct FaultMark {
    t: u64,
    /// Index of its event in the trace.
    event: usize,
    keyword: String,
    text: String,
    duration: Option<u64>,
    scope: Scope,
}

/// Everything the timeline shows.
#[derive(Debug)]
struct Timeline {
    end: u64,
    nodes: BTreeMap<NodeId, LaneView>,
    faults: Vec<FaultMark>,
    epochs: Vec<(u64, String)>,
    heal: Option<u64>,
}

/// What one node's lane draws: status segments, shard segments, crash and restart markers
/// and down intervals.
#[derive(Debug, Default)]
struct LaneView {
    statuses: Vec<Segment>,
    shards: BTreeMap<ShardIndex, Vec<Segment>>,
    crashes: Vec<u64>,
    restarts: Vec<u64>,
    /// `epoch_sync_done` attestations: time and probe text.
    attestations: Vec<(u64, String)>,
    down: Vec<(u64, u64)>,
}

impl Timeline {
    fn build(result: &RunResult) -> Self {
        let events = result.trace.events();
        let end = events
            .iter()
            .map(|e| e.t_ms)
            .max()
            .unwrap_or(0)
            .max(result.sim_ms)
            .max(1);
        // A little room after the last event, so its marks stay visible.
        let end = end + end / 100 + 1;
        let mut lanes: BTreeMap<NodeId, NodeLane> = (0..result.spec.nodes)
            .map(|i| (NodeId(i), NodeLane::default()))
            .collect();
        let mut faults = Vec::new();
        let mut epochs = Vec::new();
        let mut heal = None;
        for (index, event) in events.iter().enumerate() {
            if let Some(node) = event.node {
                lane_event(lanes.entry(node).or_default(), event);
            }
            match &event.kind {
                TraceKind::Fault(fault) => faults.push(fault_mark(event.t_ms, index, fault)),
                TraceKind::Chain(ChainNote::EpochChange { epoch, .. }) => {
                    epochs.push((event.t_ms, format!("e{epoch}")));
                }
                TraceKind::Harness(HarnessEvent::Heal) if heal.is_none() => heal = Some(event.t_ms),
                _ => {}
            }
        }
        let nodes = lanes
            .into_iter()
            .map(|(id, lane)| (id, finish_lane(lane, end)))
            .collect();
        Self {
            end,
            nodes,
            faults,
            epochs,
            heal,
        }
    }
}

/// Applies one event of a node to its lane.
fn lane_event(lane: &mut NodeLane, event: &TraceEvent) {
    let t = event.t_ms;
    match &event.kind {
        TraceKind::Probe(ProbeEvent::NodeStatus { to, .. }) => {
            lane.statuses
                .change(t, node_status_class(to), to.to_string());
        }
        TraceKind::Probe(ProbeEvent::ShardStatus { shard, to, .. }) => {
            lane.shards.entry(*shard).or_default().change(
                t,
                shard_status_class(*to),
                format!("{shard} {to}"),
            );
        }
        TraceKind::Probe(ProbeEvent::ShardCreated { shard }) => {
            lane.shards.entry(*shard).or_default();
        }
        TraceKind::Probe(ProbeEvent::ShardDropped { shard }) => {
            if let Some(builder) = lane.shards.get_mut(shard) {
                builder.close(t);
            }
        }
        TraceKind::Probe(p @ ProbeEvent::Attestation { .. }) => {
            lane.attestations.push((t, p.to_string()));
        }
        TraceKind::Harness(HarnessEvent::Crashed) => {
            lane.crashes.push(t);
            lane.down_since.get_or_insert(t);
        }
        TraceKind::Harness(HarnessEvent::Restarted) => {
            lane.restarts.push(t);
            if let Some(since) = lane.down_since.take() {
                lane.down.push((since, t));
            }
        }
        _ => {}
    }
}

fn finish_lane(mut lane: NodeLane, end: u64) -> LaneView {
    if let Some(since) = lane.down_since.take() {
        lane.down.push((since, end));
    }
    let shards = lane
        .shards
        .into_iter()
        .map(|(s, b)| (s, b.finish(end)))
        .collect();
    LaneView {
        statuses: lane.statuses.finish(end),
        shards,
        crashes: lane.crashes,
        restarts: lane.restarts,
        attestations: lane.attestations,
        down: lane.down,
    }
}

/// A fault event's marker: its keyword, duration and the nodes it touches.
fn fault_mark(t: u64, event: usize, fault: &Fault) -> FaultMark {
    FaultMark {
        t,
        event,
        keyword: fault.keyword().to_string(),
        text: fault.to_string(),
        duration: fault.duration().map(|d| d.as_millis() as u64),
        scope: fault_scope(fault),
    }
}

/// The nodes a fault touches.
#[derive(Clone, Debug, PartialEq)]
enum Scope {
    All,
    Nodes(BTreeSet<NodeId>),
    /// A fail-point selector glob (`n*1`).
    Pattern(String),
}

impl Scope {
    fn covers(&self, id: NodeId) -> bool {
        match self {
            Scope::All => true,
            Scope::Nodes(set) => set.contains(&id),
            Scope::Pattern(p) => shardstorm_faults::glob_match(p, &id.host()),
        }
    }
}

fn fault_scope(fault: &Fault) -> Scope {
    let ids = |names: &mut dyn Iterator<Item = &String>| {
        Scope::Nodes(names.filter_map(|n| NodeId::from_host(n)).collect())
    };
    match fault {
        Fault::Crash { node }
        | Fault::Restart { node }
        | Fault::CrashRestart { node, .. }
        | Fault::DiskEio { node, .. }
        | Fault::DiskTornOnCrash { node }
        | Fault::DiskCorruptReads { node, .. }
        | Fault::StatusChange { node, .. }
        | Fault::Byzantine { node, .. } => ids(&mut std::iter::once(node)),
        Fault::Partition { a, b, .. } | Fault::Hold { a, b, .. } => ids(&mut a.iter().chain(b)),
        Fault::ChainPartition { nodes, .. } => ids(&mut nodes.iter()),
        Fault::FailPoint { .. } | Fault::OpenGate { .. } => match fault.selector() {
            Selector::All => Scope::All,
            Selector::Node(n) => ids(&mut std::iter::once(&n)),
            Selector::Pattern(p) => Scope::Pattern(p),
        },
        Fault::MessageLoss { .. }
        | Fault::LatencySpike { .. }
        | Fault::ClearFailPoint { .. }
        | Fault::EpochChange
        | Fault::Reshuffle { .. } => Scope::All,
    }
}

// ---------------------------------------------------------------------------------------------
// The causal window

/// What a failing run's page zooms to and highlights.
#[derive(Clone, Debug, PartialEq)]
struct Focus {
    /// The window's first and last simulated millisecond.
    start: u64,
    end: u64,
    /// When the violation was detected.
    at: u64,
    /// The violating node, or else the nodes holding the violating shard: their lanes are
    /// highlighted and the cause is the last fault that touched one of them.
    nodes: BTreeSet<NodeId>,
    /// The violating shard: its rows are highlighted.
    shard: Option<ShardIndex>,
    /// The fault that started it: its text, time and trace index.
    cause: Option<String>,
    cause_t: Option<u64>,
    cause_event: Option<usize>,
}

impl Focus {
    fn of(model: &Timeline, v: &Violation) -> Self {
        let at = v.t_ms;
        let nodes: BTreeSet<NodeId> = match (v.node, v.shard) {
            (Some(node), _) => BTreeSet::from([node]),
            (None, Some(shard)) => model
                .nodes
                .iter()
                .filter(|(_, lane)| lane.shards.contains_key(&shard))
                .map(|(id, _)| *id)
                .collect(),
            (None, None) => BTreeSet::new(),
        };
        let cause = model
            .faults
            .iter()
            .rfind(|f| f.t <= at && (nodes.is_empty() || nodes.iter().any(|n| f.scope.covers(*n))));
        let lead = at.saturating_sub(LEAD.as_millis() as u64);
        let earliest = at.saturating_sub(MAX_SPAN.as_millis() as u64);
        let start = cause.map_or(lead, |c| c.t.min(lead)).max(earliest);
        // A little room on both sides, so marks at the edges stay readable.
        let pad = ((at - start) / 40).max(100);
        Self {
            start: start.saturating_sub(pad),
            end: (at + pad).min(model.end).max(at + 1),
            at,
            nodes,
            shard: v.shard,
            cause: cause.map(|c| c.text.clone()),
            cause_t: cause.map(|c| c.t),
            cause_event: cause.map(|c| c.event),
        }
    }

    /// Whether a trace event belongs to a highlighted node or shard.
    fn marks(&self, event: &TraceEvent) -> bool {
        let shard = match &event.kind {
            TraceKind::Probe(
                ProbeEvent::ShardStatus { shard, .. }
                | ProbeEvent::ShardCreated { shard }
                | ProbeEvent::ShardDropped { shard },
            ) => Some(*shard),
            _ => None,
        };
        let node = event.node.is_some_and(|n| self.nodes.contains(&n));
        match (self.shard, shard) {
            // A node's lines, but of its shards' lines only the violating shard's.
            (Some(s), Some(x)) => x == s && (node || self.nodes.is_empty()),
            _ => node,
        }
    }

    fn highlights_shard(&self, node: NodeId, shard: ShardIndex) -> bool {
        self.shard == Some(shard) && (self.nodes.is_empty() || self.nodes.contains(&node))
    }

    /// "n2", "n1, n3", or "" when no node is highlighted.
    fn node_names(&self) -> String {
        let names: Vec<String> = self.nodes.iter().map(ToString::to_string).collect();
        names.join(", ")
    }

    /// "; lines of n2 and shard s3 marked" and the like.
    fn marked_text(&self) -> String {
        match (self.nodes.is_empty(), self.shard) {
            (true, None) => String::new(),
            (false, None) => format!("; lines of {} marked", self.node_names()),
            (false, Some(s)) => format!(
                "; lines of {} marked (of its shard lines, those of {s})",
                self.node_names()
            ),
            (true, Some(s)) => format!("; lines about shard {s} marked"),
        }
    }

    /// One sentence on what the window shows and why.
    fn describe(&self) -> String {
        let whom = match (self.nodes.is_empty(), self.shard) {
            (true, _) => "the cluster".to_string(),
            (false, Some(s)) if self.nodes.len() > 1 => {
                format!("{} (the nodes holding {s})", self.node_names())
            }
            (false, _) => self.node_names(),
        };
        let cause = match (&self.cause, self.cause_t) {
            (Some(text), Some(t)) if t >= self.start => format!(
                "from the fault that started it, <code>{}</code> at {} (the last fault before \
                 the violation that touched {whom})",
                escape(text),
                seconds(t)
            ),
            (Some(text), Some(t)) => format!(
                "the last {} before the violation; the last fault that touched {whom}, \
                 <code>{}</code> at {}, lies before it (the window spans at most {})",
                seconds(self.at - self.start.min(self.at)),
                escape(text),
                seconds(t),
                fmt_secs(MAX_SPAN)
            ),
            _ => format!(
                "the last {} before the violation (no fault touched {whom} before it)",
                fmt_secs(LEAD)
            ),
        };
        let mut lit = Vec::new();
        if !self.nodes.is_empty() {
            lit.push(format!("lane {}", self.node_names()));
        }
        if let Some(s) = self.shard {
            lit.push(format!("shard row {s}"));
        }
        let lit = if lit.is_empty() {
            String::new()
        } else {
            format!(" Highlighted: {}.", lit.join(", "))
        };
        format!(
            "Simulated {} to {}: {cause}, up to the violation at {}.{lit} The whole run follows \
             below the window.",
            seconds(self.start),
            seconds(self.end),
            seconds(self.at)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// SVG drawing

const WIDTH: f64 = 1340.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const EPOCH_ROW: f64 = 12.0;
const FAULT_ROWS: usize = 3;
const FAULT_ROW_H: f64 = 12.0;
const AXIS_H: f64 = 18.0;
const NODE_H: f64 = 16.0;
const SHARD_H: f64 = 9.0;
const SHARD_GAP: f64 = 2.0;
const NODE_GAP: f64 = 10.0;
/// Approximate width of one label character at font size 10.
const CHAR_W: f64 = 5.6;
/// Approximate width of one character of the violation label (bold, size 11).
const LABEL_CHAR_W: f64 = 7.2;

/// Maps the shown span of simulated time to x.
struct Scale {
    start: u64,
    end: u64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let span = self.end.saturating_sub(self.start).max(1) as f64;
        let t = t.clamp(self.start, self.end) - self.start;
        LEFT + (t as f64 / span) * (WIDTH - LEFT - RIGHT)
    }

    /// Whether an instant is inside the shown span.
    fn shows(&self, t: u64) -> bool {
        (self.start..=self.end).contains(&t)
    }

    /// Whether an interval overlaps the shown span.
    fn overlaps(&self, from: u64, to: u64) -> bool {
        to > self.start && from < self.end
    }
}

/// Which of the page's timelines an SVG is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Window,
    WholeRun,
}

impl View {
    /// Prefix of the element ids inside the SVG (ids must be unique on the page).
    fn prefix(self) -> &'static str {
        match self {
            View::Window => "w-",
            View::WholeRun => "",
        }
    }

    fn class(self) -> &'static str {
        match self {
            View::Window => "window",
            View::WholeRun => "whole-run",
        }
    }
}

/// A number with one decimal: coordinates print the same on every platform.
fn n(v: f64) -> String {
    format!("{v:.1}")
}

fn seconds(t: u64) -> String {
    fmt_secs(Duration::from_millis(t))
}

/// Vertical extent of each node block.
struct Rows {
    top: f64,
    /// (node, y of its status lane, y below its last shard lane)
    blocks: Vec<(NodeId, f64, f64)>,
    bottom: f64,
}

fn rows(model: &Timeline) -> Rows {
    let top = EPOCH_ROW + FAULT_ROW_H * FAULT_ROWS as f64 + AXIS_H;
    let mut y = top + 4.0;
    let mut blocks = Vec::new();
    for (id, lane) in &model.nodes {
        let block_end = y + NODE_H + 2.0 + lane.shards.len() as f64 * (SHARD_H + SHARD_GAP);
        blocks.push((*id, y, block_end));
        y = block_end + NODE_GAP;
    }
    Rows {
        top,
        blocks,
        bottom: y,
    }
}

fn svg(
    model: &Timeline,
    violation: Option<&Violation>,
    focus: Option<&Focus>,
    scale: &Scale,
    view: View,
) -> String {
    let rows = rows(model);
    let height = rows.bottom + AXIS_H;
    let prefix = view.prefix();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline {}\" data-start-ms=\"{}\" \
         data-end-ms=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-size=\"10\" role=\"img\" aria-label=\"timeline, {}\">\n",
        view.class(),
        scale.start,
        scale.end,
        match view {
            View::Window => "causal window",
            View::WholeRun => "whole run",
        },
        w = n(WIDTH),
        h = n(height)
    );
    let _ = writeln!(
        out,
        "<defs><pattern id=\"{prefix}down\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"2\" height=\"5\" fill=\"#222\" fill-opacity=\"0.55\"/></pattern></defs>"
    );
    draw_axis(&mut out, scale, rows.top - 4.0, rows.top - AXIS_H + 2.0);
    draw_axis(&mut out, scale, rows.bottom, rows.bottom + 4.0);
    for (id, y, block_end) in &rows.blocks {
        if let Some(lane) = model.nodes.get(id) {
            let block = Block {
                id: *id,
                y: *y,
                end: *block_end,
            };
            draw_node(&mut out, scale, &block, lane, focus, prefix);
        }
    }
    draw_liveness_phase(&mut out, scale, model, &rows);
    if let (View::WholeRun, Some(focus)) = (view, focus) {
        draw_window_mark(&mut out, scale, focus, &rows);
    }
    draw_faults(&mut out, scale, model, &rows, focus);
    draw_epochs(&mut out, scale, model, &rows);
    if let Some(v) = violation.filter(|v| scale.shows(v.t_ms)) {
        draw_violation(&mut out, scale, v, &rows);
    }
    out.push_str("</svg>\n");
    out
}

/// Tick spacing giving at most about 14 ticks over `span` ms.
fn tick_step(span: u64) -> u64 {
    const STEPS: [u64; 15] = [
        50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 1_800_000,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 14)
        .unwrap_or(3_600_000)
}

fn draw_axis(out: &mut String, scale: &Scale, y: f64, label_y: f64) {
    let _ = writeln!(
        out,
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>",
        n(LEFT),
        n(y),
        n(scale.x(scale.end)),
        n(y)
    );
    let step = tick_step(scale.end - scale.start);
    let mut t = scale.start.div_ceil(step) * step;
    while t <= scale.end {
        let x = scale.x(t);
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#888\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{}s</text>",
            n(y - 3.0),
            n(y + 3.0),
            n(label_y + 8.0),
            t as f64 / 1000.0,
            x = n(x)
        );
        t += step;
    }
}

/// Where one node's block sits.
struct Block {
    id: NodeId,
    /// y of its status lane.
    y: f64,
    /// y below its last shard row.
    end: f64,
}

fn draw_node(
    out: &mut String,
    scale: &Scale,
    block: &Block,
    lane: &LaneView,
    focus: Option<&Focus>,
    prefix: &str,
) {
    let (id, y, block_end) = (block.id, block.y, block.end);
    let lit = focus.is_some_and(|f| f.nodes.contains(&id));
    let (class, fill, stroke, label_fill) = if lit {
        (
            "node hl-node",
            "#fdecea",
            format!(" stroke=\"{VIOLATION_COLOUR}\" stroke-width=\"1.5\""),
            VIOLATION_COLOUR,
        )
    } else {
        ("node", "#f6f6f8", String::new(), "#1d1d1f")
    };
    let _ = writeln!(
        out,
        "<g class=\"{class}\" id=\"{prefix}lane-{id}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"{stroke}/>",
        n(LEFT),
        n(y - 2.0),
        n(WIDTH - LEFT - RIGHT),
        n(block_end - y + 4.0)
    );
    let _ = writeln!(
        out,
        "<text x=\"6\" y=\"{}\" font-size=\"13\" font-weight=\"700\" fill=\"{label_fill}\">{id}</text>",
        n(y + 12.0)
    );
    for seg in lane
        .statuses
        .iter()
        .filter(|s| scale.overlaps(s.start, s.end))
    {
        draw_segment(out, scale, seg, y, NODE_H, &format!("{id} "));
    }
    let mut sy = y + NODE_H + 2.0;
    for (shard, segments) in &lane.shards {
        let lit_row = focus.is_some_and(|f| f.highlights_shard(id, *shard));
        if lit_row {
            let _ = writeln!(
                out,
                "<g class=\"shard-row hl-shard\" data-shard=\"{shard}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffc9c9\" stroke=\"{VIOLATION_COLOUR}\" stroke-width=\"1\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"10\" font-weight=\"700\" text-anchor=\"end\" fill=\"{VIOLATION_COLOUR}\">▸{shard}</text>",
                n(2.0),
                n(sy - 1.0),
                n(WIDTH - RIGHT - 2.0),
                n(SHARD_H + 2.0),
                n(LEFT - 4.0),
                n(sy + 8.0)
            );
        } else {
            let _ = writeln!(
                out,
                "<g class=\"shard-row\" data-shard=\"{shard}\"><text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"end\" fill=\"#444\">{shard}</text>",
                n(LEFT - 4.0),
                n(sy + 7.5)
            );
        }
        for seg in segments.iter().filter(|s| scale.overlaps(s.start, s.end)) {
            draw_segment(out, scale, seg, sy, SHARD_H, &format!("{id} "));
        }
        out.push_str("</g>\n");
        sy += SHARD_H + SHARD_GAP;
    }
    for (from, to) in lane.down.iter().filter(|(a, b)| scale.overlaps(*a, *b)) {
        let (x1, x2) = (scale.x(*from), scale.x(*to));
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"url(#{prefix}down)\"><title>{id} down {}..{}</title></rect>",
            n(x1),
            n(y),
            n((x2 - x1).max(1.0)),
            n(block_end - y),
            seconds(*from),
            seconds(*to)
        );
    }
    for t in lane.crashes.iter().filter(|t| scale.shows(**t)) {
        draw_crash(out, scale.x(*t), y, id, *t);
    }
    for t in lane.restarts.iter().filter(|t| scale.shows(**t)) {
        draw_restart(out, scale.x(*t), y, id, *t);
    }
    for (t, text) in lane.attestations.iter().filter(|(t, _)| scale.shows(*t)) {
        let _ = writeln!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"2.2\" fill=\"#fff\" stroke=\"#123\" stroke-width=\"1\"><title>{id} {} {}</title></circle>",
            n(scale.x(*t)),
            n(y + 3.5),
            seconds(*t),
            escape(text)
        );
    }
    out.push_str("</g>\n");
}

fn draw_segment(out: &mut String, scale: &Scale, seg: &Segment, y: f64, h: f64, prefix: &str) {
    let (x1, x2) = (scale.x(seg.start), scale.x(seg.end));
    let _ = writeln!(
        out,
        "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}{} {}..{}</title></rect>",
        seg.class,
        n(x1),
        n(y),
        n((x2 - x1).max(0.5)),
        n(h),
        escape(prefix),
        escape(&seg.label),
        seconds(seg.start),
        seconds(seg.end)
    );
}

fn draw_crash(out: &mut String, x: f64, y: f64, id: NodeId, t: u64) {
    let (c, r) = (y + NODE_H / 2.0, 4.0);
    let _ = writeln!(
        out,
        "<g stroke=\"#111\" stroke-width=\"2\"><title>{id} crashed at {}</title><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/></g>",
        seconds(t),
        n(x - r),
        n(c - r),
        n(x + r),
        n(c + r),
        n(x - r),
        n(c + r),
        n(x + r),
        n(c - r)
    );
}

fn draw_restart(out: &mut String, x: f64, y: f64, id: NodeId, t: u64) {
    let (top, bottom) = (y + 3.0, y + NODE_H - 3.0);
    let _ = writeln!(
        out,
        "<polygon points=\"{},{} {},{} {},{}\" fill=\"#fff\" stroke=\"#111\" stroke-width=\"1.2\"><title>{id} restarted at {}</title></polygon>",
        n(x),
        n(top),
        n(x + 8.0),
        n((top + bottom) / 2.0),
        n(x),
        n(bottom),
        seconds(t)
    );
}

/// Fault ticks with staggered keyword labels in the fault rows, plus ticks and duration bands
/// on every affected node's lane. The cause of the violation is drawn bold.
fn draw_faults(
    out: &mut String,
    scale: &Scale,
    model: &Timeline,
    rows: &Rows,
    focus: Option<&Focus>,
) {
    let mut row_ends = [f64::MIN; FAULT_ROWS];
    let label_top = EPOCH_ROW;
    for fault in &model.faults {
        let band_end = fault.t + fault.duration.unwrap_or(0);
        if !scale.shows(fault.t) && !scale.overlaps(fault.t, band_end) {
            continue;
        }
        let cause = focus.is_some_and(|f| f.cause_event == Some(fault.event));
        let title = format!("{} {}", seconds(fault.t), fault.text);
        if scale.shows(fault.t) {
            let x = scale.x(fault.t);
            let keyword = if cause {
                format!("{} (cause)", fault.keyword)
            } else {
                fault.keyword.clone()
            };
            let width = keyword.len() as f64 * CHAR_W + 4.0;
            let row = (0..FAULT_ROWS)
                .find(|r| row_ends[*r] < x)
                .unwrap_or_else(|| {
                    (0..FAULT_ROWS)
                        .min_by(|a, b| row_ends[*a].total_cmp(&row_ends[*b]))
                        .unwrap_or(0)
                });
            row_ends[row] = x + width;
            let ly = label_top + FAULT_ROW_H * (row as f64 + 1.0) - 2.0;
            let (label_x, anchor) = if x + width > WIDTH - RIGHT {
                (x - 2.0, "end")
            } else {
                (x + 2.0, "start")
            };
            let (class, weight) = if cause {
                ("fault cause", " font-weight=\"700\"")
            } else {
                ("fault", "")
            };
            let _ = writeln!(
                out,
                "<g class=\"{class}\"><title>{}</title><line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{FAULT_COLOUR}\"/><text x=\"{}\" y=\"{}\" fill=\"{FAULT_COLOUR}\" text-anchor=\"{anchor}\"{weight}>{}</text></g>",
                escape(&title),
                n(ly - 9.0),
                n(rows.top - 4.0),
                n(label_x),
                n(ly),
                escape(&keyword),
                x = n(x)
            );
        }
        for (id, y, block_end) in &rows.blocks {
            if fault.scope.covers(*id) {
                let block = Block {
                    id: *id,
                    y: *y,
                    end: *block_end,
                };
                draw_fault_on_lane(out, scale, fault, &block, &title, cause);
            }
        }
    }
}

fn draw_fault_on_lane(
    out: &mut String,
    scale: &Scale,
    fault: &FaultMark,
    block: &Block,
    title: &str,
    cause: bool,
) {
    let (y, block_end) = (block.y, block.end);
    let x = scale.x(fault.t);
    if let Some(d) = fault.duration.filter(|d| *d > 0) {
        if scale.overlaps(fault.t, fault.t + d) {
            let x2 = scale.x(fault.t + d);
            let _ = writeln!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{FAULT_COLOUR}\" fill-opacity=\"0.16\" stroke=\"{FAULT_COLOUR}\" stroke-opacity=\"0.5\" stroke-width=\"0.6\"><title>{}</title></rect>",
                n(x),
                n(y - 2.0),
                n((x2 - x).max(1.0)),
                n(block_end - y + 4.0),
                escape(title)
            );
        }
    }
    if scale.shows(fault.t) {
        let width = if cause { 3.0 } else { 1.5 };
        let _ = writeln!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{FAULT_COLOUR}\" stroke-width=\"{width}\"><title>{}</title></line>",
            n(y - 2.0),
            n(block_end + 2.0),
            escape(title),
            x = n(x)
        );
    }
}

fn draw_epochs(out: &mut String, scale: &Scale, model: &Timeline, rows: &Rows) {
    for (t, label) in model.epochs.iter().filter(|(t, _)| scale.shows(*t)) {
        let x = scale.x(*t);
        let _ = writeln!(
            out,
            "<g><title>epoch change {} at {}</title><line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{EPOCH_COLOUR}\" stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"9\" fill=\"{EPOCH_COLOUR}\" font-weight=\"600\">{}</text></g>",
            escape(label),
            seconds(*t),
            n(EPOCH_ROW - 1.0),
            n(rows.bottom),
            n(x + 2.0),
            escape(label),
            x = n(x)
        );
    }
    if let Some(t) = model.heal.filter(|t| scale.shows(*t)) {
        let x = scale.x(t);
        let _ = writeln!(
            out,
            "<g><title>heal at {}: the liveness phase starts</title><line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{HEAL_COLOUR}\" stroke-width=\"1.5\" stroke-dasharray=\"1 3\"/><text x=\"{}\" y=\"9\" fill=\"{HEAL_COLOUR}\" text-anchor=\"end\">heal</text></g>",
            seconds(t),
            n(EPOCH_ROW - 1.0),
            n(rows.bottom),
            n(x - 2.0),
            x = n(x)
        );
    }
}

fn draw_violation(out: &mut String, scale: &Scale, v: &Violation, rows: &Rows) {
    let x = scale.x(v.t_ms);
    let (y1, y2) = match v.node.and_then(|id| rows.blocks.iter().find(|b| b.0 == id)) {
        Some((_, y, end)) => (*y - 4.0, *end + 4.0),
        None => (rows.top, rows.bottom),
    };
    let label = format!("✗ {}", v.invariant.name());
    let box_w = label.chars().count() as f64 * LABEL_CHAR_W + 10.0;
    // Right of the line when it fits, else left of it; always inside the picture.
    let box_x = if x + 4.0 + box_w <= WIDTH - 2.0 {
        x + 4.0
    } else {
        (x - 4.0 - box_w).max(2.0)
    };
    let _ = writeln!(
        out,
        "<g class=\"violation\"><title>{}</title><line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{VIOLATION_COLOUR}\" stroke-width=\"3\"/>\
         <rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" rx=\"3\" fill=\"#fff\" stroke=\"{VIOLATION_COLOUR}\"/>\
         <text x=\"{}\" y=\"{}\" fill=\"{VIOLATION_COLOUR}\" font-weight=\"700\" font-size=\"11\">{}</text></g>",
        escape(&v.to_string()),
        n(y1),
        n(y2),
        n(box_x),
        n(y1 + 2.0),
        n(box_w),
        n(box_x + 5.0),
        n(y1 + 14.0),
        escape(&label),
        x = n(x)
    );
}

/// A light tint over the liveness phase (from heal to the end).
fn draw_liveness_phase(out: &mut String, scale: &Scale, model: &Timeline, rows: &Rows) {
    if let Some(t) = model.heal.filter(|t| *t <= scale.end) {
        let x = scale.x(t);
        let _ = writeln!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{HEAL_COLOUR}\" fill-opacity=\"0.06\"><title>liveness phase</title></rect>",
            n(x),
            n(rows.top),
            n((scale.x(scale.end) - x).max(0.0)),
            n(rows.bottom - rows.top)
        );
    }
}

/// The causal window, shaded on the whole run's timeline.
fn draw_window_mark(out: &mut String, scale: &Scale, focus: &Focus, rows: &Rows) {
    let (x1, x2) = (scale.x(focus.start), scale.x(focus.end));
    let _ = writeln!(
        out,
        "<rect class=\"window-mark\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{VIOLATION_COLOUR}\" fill-opacity=\"0.07\" stroke=\"{VIOLATION_COLOUR}\" stroke-dasharray=\"3 2\"><title>causal window {}..{}</title></rect>",
        n(x1),
        n(rows.top),
        n((x2 - x1).max(2.0)),
        n(rows.bottom - rows.top),
        seconds(focus.start),
        seconds(focus.end)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::Invariant;
    use crate::run_spec::RunSpec;
    use crate::trace::Trace;
    use shardstorm_faults::Schedule;
    use shardstorm_node::ctx::{NodeStatusWriter, ShardStatusWriter};

    fn probe(t_ms: u64, node: u16, event: ProbeEvent) -> TraceEvent {
        TraceEvent {
            t_ms,
            node: Some(NodeId(node)),
            kind: TraceKind::Probe(event),
        }
    }

    fn status(t_ms: u64, node: u16, to: NodeStatus) -> TraceEvent {
        probe(
            t_ms,
            node,
            ProbeEvent::NodeStatus {
                from: None,
                to,
                writer: NodeStatusWriter::Direct,
                task: None,
            },
        )
    }

    fn shard(t_ms: u64, node: u16, s: u16, to: ShardStatus) -> TraceEvent {
        let event = ProbeEvent::ShardStatus {
            shard: ShardIndex(s),
            from: None,
            to,
            writer: ShardStatusWriter::Direct,
            epoch: 1,
        };
        probe(t_ms, node, event)
    }

    fn other(t_ms: u64, node: Option<u16>, kind: TraceKind) -> TraceEvent {
        TraceEvent {
            t_ms,
            node: node.map(NodeId),
            kind,
        }
    }

    /// A synthetic run of three nodes with statuses, faults, a crash, epochs and a violation
    /// whose message contains markup.
    fn sample() -> RunResult {
        let mut spec = RunSpec::standard(42);
        spec.nodes = 3;
        spec.shards = 4;
        let schedule: Schedule =
            "1.000s partition n0 n1 for 2.000s\n2.500s crash n2\n4.000s restart n2\n"
                .parse()
                .expect("schedule");
        let mut trace = Trace::default();
        let events = vec![
            other(
                0,
                None,
                TraceKind::Harness(HarnessEvent::RunStart {
                    seed: 42,
                    bugs: Vec::new(),
                }),
            ),
            status(0, 0, NodeStatus::Standby),
            status(5, 0, NodeStatus::Active),
            status(5, 1, NodeStatus::Active),
            status(5, 2, NodeStatus::RecoverMetadata),
            shard(6, 0, 0, ShardStatus::Active),
            shard(6, 1, 1, ShardStatus::ActiveSync),
            shard(6, 2, 2, ShardStatus::None),
            other(
                500,
                None,
                TraceKind::Chain(ChainNote::EpochChange {
                    epoch: 1,
                    summary: "n0:0 n1:1 n2:2,3".into(),
                }),
            ),
            other(
                1000,
                None,
                TraceKind::Fault("partition n0 n1 for 2.000s".parse().expect("fault")),
            ),
            shard(1200, 1, 1, ShardStatus::Active),
            other(
                2500,
                None,
                TraceKind::Fault("crash n2".parse().expect("fault")),
            ),
            other(2500, Some(2), TraceKind::Harness(HarnessEvent::Crashed)),
            other(
                4000,
                None,
                TraceKind::Fault("restart n2".parse().expect("fault")),
            ),
            other(4000, Some(2), TraceKind::Harness(HarnessEvent::Restarted)),
            shard(4100, 2, 2, ShardStatus::LockedToMove),
            other(4500, None, TraceKind::Harness(HarnessEvent::Heal)),
            status(4600, 2, NodeStatus::Active),
        ];
        for e in events {
            trace.push(e);
        }
        let violation = Violation {
            invariant: Invariant::LegalTransition,
            node: Some(NodeId(2)),
            shard: None,
            t_ms: 4600,
            message: "RecoverMetadata -> Active by <N10> & \"friends\"".into(),
            context: vec!["    4.600s n2   node-status <x>".into()],
        };
        let trace_hash = trace.hash();
        RunResult {
            knobs: Knobs::quiet(),
            spec,
            schedule,
            violation: Some(violation),
            trace,
            trace_hash,
            sim_ms: 5000,
            steps: 500,
        }
    }

    #[test]
    fn page_has_an_svg_with_a_lane_per_node() {
        let html = render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(
            html.matches("aria-label=\"timeline, causal window\"")
                .count(),
            1
        );
        assert_eq!(
            html.matches("aria-label=\"timeline, whole run\"").count(),
            1
        );
        for node in ["n0", "n1", "n2"] {
            assert!(html.contains(&format!("id=\"lane-{node}\"")), "lane {node}");
            assert!(
                html.contains(&format!("id=\"w-lane-{node}\"")),
                "lane {node}"
            );
        }
        for needle in [
            "ns-active",
            "ss-locked",
            "ss-sync",
            "url(#down)",
            ">partition<",
            ">e1<",
            ">heal<",
            "legal-transition",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        assert!(!html.contains("<script"), "no scripts");
        assert_eq!(
            html.matches("http://").count(),
            html.matches("<svg xmlns=\"http://www.w3.org/2000/svg\"")
                .count(),
            "only the SVG namespace"
        );
    }

    #[test]
    fn text_is_escaped() {
        let html = render(&sample());
        assert!(html.contains("by &lt;N10&gt; &amp; &quot;friends&quot;"));
        assert!(html.contains("node-status &lt;x&gt;"));
        assert!(!html.contains("<N10>") && !html.contains("<x>"));
        assert_eq!(escape("a<b>&'\""), "a&lt;b&gt;&amp;&#39;&quot;");
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render(&sample()), render(&sample()));
    }

    #[test]
    fn passing_runs_say_so() {
        let mut result = sample();
        result.violation = None;
        let html = render(&result);
        assert!(html.contains("<b>passed</b>"));
        assert!(!html.contains("✗"));
        // One timeline, the whole run, nothing highlighted.
        assert_eq!(html.matches("class=\"timeline ").count(), 1);
        assert!(html.contains("aria-label=\"timeline, whole run\""));
        assert!(!html.contains("hl-node") && !html.contains("hl-shard"));
        assert!(!html.contains("Trace around the cause"));
    }

    /// A minute-long run: a partition at 5 s, an epoch change at 20 s, n2 crashed at 30 s and
    /// restarted at 31 s, n1 crashed at 35 s, and `violation` (default: n2's shard s2 at 40 s).
    fn long_sample(violation: Violation) -> RunResult {
        let mut result = sample();
        let fault = |t, text: &str| other(t, None, TraceKind::Fault(text.parse().expect("fault")));
        let events = vec![
            status(0, 0, NodeStatus::Active),
            status(0, 1, NodeStatus::Active),
            status(0, 2, NodeStatus::Active),
            shard(10, 0, 0, ShardStatus::Active),
            shard(10, 1, 1, ShardStatus::Active),
            shard(10, 2, 2, ShardStatus::Active),
            shard(10, 2, 3, ShardStatus::Active),
            fault(5_000, "partition n0 n1 for 2.000s"),
            other(
                20_000,
                None,
                TraceKind::Chain(ChainNote::EpochChange {
                    epoch: 1,
                    summary: "n0:0 n1:1 n2:2,3".into(),
                }),
            ),
            fault(30_000, "crash n2"),
            other(30_000, Some(2), TraceKind::Harness(HarnessEvent::Crashed)),
            fault(31_000, "restart n2"),
            other(31_000, Some(2), TraceKind::Harness(HarnessEvent::Restarted)),
            shard(33_000, 2, 2, ShardStatus::LockedToMove),
            shard(34_000, 1, 1, ShardStatus::ActiveSync),
            fault(35_000, "crash n1"),
            other(35_000, Some(1), TraceKind::Harness(HarnessEvent::Crashed)),
            shard(39_000, 2, 2, ShardStatus::Active),
            status(50_000, 0, NodeStatus::RecoveryCatchUp),
            other(200_000, None, TraceKind::Harness(HarnessEvent::Heal)),
        ];
        let mut trace = Trace::default();
        for e in events {
            trace.push(e);
        }
        result.trace_hash = trace.hash();
        result.trace = trace;
        result.sim_ms = 210_000;
        result.violation = Some(violation);
        result
    }

    fn violation(
        invariant: Invariant,
        node: Option<u16>,
        shard: Option<u16>,
        t_ms: u64,
    ) -> Violation {
        Violation {
            invariant,
            node: node.map(NodeId),
            shard: shard.map(ShardIndex),
            t_ms,
            message: "bad".into(),
            context: vec!["   40.000s n2   the oracle's last line".into()],
        }
    }

    /// The SVG of one view, from its opening tag to its end.
    fn view<'a>(html: &'a str, class: &str) -> &'a str {
        let start = html
            .find(&format!("class=\"timeline {class}\""))
            .unwrap_or_else(|| panic!("no {class} timeline"));
        let end = start + html[start..].find("</svg>").expect("svg ends");
        &html[start..end]
    }

    /// The trace excerpt's text.
    fn excerpt(html: &str) -> &str {
        let start = html.find("<pre class=\"excerpt\">").expect("an excerpt");
        let end = start + html[start..].find("</pre>").expect("pre ends");
        &html[start..end]
    }

    #[test]
    fn a_failure_zooms_to_its_causal_window() {
        let result = long_sample(violation(
            Invariant::LegalTransition,
            Some(2),
            Some(2),
            40_000,
        ));
        let html = render(&result);
        // Cause: n2's restart at 31 s, the last fault touching n2 (n1's crash at 35 s does not);
        // 10 s before the violation is earlier, so the window starts at 30 s, padded by 250 ms.
        let window = view(&html, "window");
        assert!(
            window.contains("data-start-ms=\"29750\" data-end-ms=\"40250\""),
            "{}",
            &window[..200]
        );
        assert!(window.contains("class=\"fault cause\""));
        assert!(window.contains(">restart (cause)<"));
        assert!(window.contains(">crash<"), "n2's crash at 30 s is inside");
        assert!(
            !window.contains(">partition<"),
            "the 5 s partition is outside"
        );
        assert!(!window.contains(">e1<"), "the 20 s epoch change is outside");
        assert!(window.contains("class=\"violation\""));
        // The violating node's lane and shard row are highlighted, and nothing else.
        assert!(window.contains("class=\"node hl-node\" id=\"w-lane-n2\""));
        assert_eq!(window.matches("hl-node").count(), 1);
        assert!(window.contains("class=\"shard-row hl-shard\" data-shard=\"s2\""));
        assert_eq!(window.matches("hl-shard").count(), 1);
        assert!(window.contains("class=\"shard-row\" data-shard=\"s3\""));
        // The whole run is still there, with everything and the window shaded.
        let whole = view(&html, "whole-run");
        assert!(whole.contains("data-start-ms=\"0\""));
        assert!(whole.contains(">partition<") && whole.contains(">e1<"));
        assert!(whole.contains("class=\"window-mark\""));
        assert!(whole.contains("class=\"node hl-node\" id=\"lane-n2\""));
        assert!(html.contains("<details class=\"whole-run\">"));
        // The excerpt runs from just before the cause to the violation.
        let lines = excerpt(&html);
        assert!(
            lines.contains("<span class=\"cause-line\">   31.000s -    fault restart n2</span>")
        );
        assert!(lines.contains("fault crash n2"));
        assert!(
            lines.contains("<span class=\"hl-line\">   39.000s n2   "),
            "{lines}"
        );
        assert!(!lines.contains("partition"), "{lines}");
        assert!(
            !lines.contains("50.000s"),
            "nothing after the violation: {lines}"
        );
        assert!(
            html.contains("the oracle&#39;s last line"),
            "the oracle's context is kept"
        );
    }

    #[test]
    fn a_liveness_failure_naming_a_shard_highlights_its_rows() {
        let result = long_sample(violation(Invariant::Liveness, None, Some(1), 45_000));
        let html = render(&result);
        let window = view(&html, "window");
        // s1 lives on n1 only: its lane and row are lit, and n1's crash at 35 s is the cause.
        assert!(window.contains("class=\"node hl-node\" id=\"w-lane-n1\""));
        assert_eq!(window.matches("hl-node").count(), 1);
        assert!(window.contains("class=\"shard-row hl-shard\" data-shard=\"s1\""));
        assert_eq!(window.matches("hl-shard").count(), 1);
        assert!(window.contains("data-start-ms=\"34750\" data-end-ms=\"45250\""));
        let lines = excerpt(&html);
        assert!(lines.contains("<span class=\"cause-line\">   35.000s -    fault crash n1</span>"));
        assert!(
            lines.contains("<span class=\"hl-line\">   34.000s n1   "),
            "{lines}"
        );
    }

    #[test]
    fn the_window_is_bounded_but_the_excerpt_starts_at_the_cause() {
        let result = long_sample(violation(Invariant::Liveness, Some(2), None, 200_000));
        let html = render(&result);
        let window = view(&html, "window");
        // At most MAX_SPAN back (plus 1.5 s of padding), not from the cause at 31 s.
        assert!(
            window.contains("data-start-ms=\"138500\""),
            "{}",
            &window[..200]
        );
        assert!(!window.contains("(cause)"));
        assert!(html.contains("lies before it"));
        let lines = excerpt(&html);
        assert!(lines.contains("fault restart n2"));
        assert!(lines.contains("harness heal"));
    }

    #[test]
    fn the_violation_label_stays_inside_the_picture() {
        let rows = Rows {
            top: 50.0,
            blocks: vec![(NodeId(0), 60.0, 80.0)],
            bottom: 100.0,
        };
        for (t, start, end) in [(1_000, 0, 1_000), (0, 0, 1_000), (500, 0, 1_000)] {
            let mut out = String::new();
            let v = violation(Invariant::LockedShardRewritten, Some(0), None, t);
            draw_violation(&mut out, &Scale { start, end }, &v, &rows);
            let rect = &out[out.find("<rect").expect("label box")..];
            let number = |attr: &str| -> f64 {
                let at = rect.find(&format!(" {attr}=\"")).expect("attribute") + attr.len() + 3;
                rect[at..at + rect[at..].find('"').expect("quote")]
                    .parse()
                    .expect("number")
            };
            let (x, w) = (number("x"), number("width"));
            assert!(x >= 0.0 && x + w <= WIDTH, "t={t}: box {x}+{w}");
            assert!(
                w >= v.invariant.name().len() as f64 * 6.0,
                "room for the label"
            );
        }
    }

    #[test]
    fn segments_follow_status_changes_and_drops() {
        let model = Timeline::build(&sample());
        let n0 = &model.nodes[&NodeId(0)];
        assert_eq!(
            n0.statuses
                .iter()
                .map(|s| (s.start, s.end, s.class))
                .collect::<Vec<_>>(),
            [(0, 5, "ns-standby"), (5, model.end, "ns-active")]
        );
        assert_eq!(n0.shards.len(), 1);
        assert!(n0.down.is_empty());
        let n2 = &model.nodes[&NodeId(2)];
        assert_eq!(n2.down, [(2500, 4000)]);
        assert_eq!(
            n2.shards[&ShardIndex(2)].last().map(|s| s.class),
            Some("ss-locked")
        );
        assert_eq!(
            model.faults[0].scope,
            Scope::Nodes([NodeId(0), NodeId(1)].into_iter().collect())
        );
        assert_eq!(model.faults[0].duration, Some(2000));
        assert_eq!(model.epochs, [(500, "e1".to_string())]);
    }
}
