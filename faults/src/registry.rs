//! The per-simulation fail-point registry: rules keyed by (selector, point), the seeded RNG for
//! `p%`, pause gates, the ledger, the queue of driver commands and the observer hook.
//!
//! Rules and counts:
//! - A rule is `(selector, point) -> action chain`. For a node the most specific matching rule
//!   wins: `Node` > `Pattern` (more literal characters first, then pattern order) > `All`.
//! - A rule's counts (`3*return`) are shared by every node the rule matches, as in fail-rs:
//!   `configure(All, "db.put.before", "1*crash")` crashes exactly one node.
//! - Re-configuring or clearing a rule releases every task paused on it (as fail-rs does).
//!
//! Gates: every rule has a gate, closed when the rule is configured. `open_gate(selector,
//! point)` opens it, for the nodes the selector matches, on every rule of the point: tasks
//! paused there resume (as a pass), and later hits of `pause` on that rule for those nodes are
//! skipped (the chain falls through to its next action, usually none, so the point passes)
//! until the rule is configured again.
//!
//! Sync call sites: `pause` and `delay` cannot wait without an executor; when one fires at
//! [`crate::FailPoints::eval_sync`] it consumes its count, is recorded in the ledger as ignored,
//! and the point passes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use crate::action::{parse_actions, Action, ActionError, Task};
use crate::fault::Fault;
use crate::hit::Hit;
use crate::ledger::{Counts, FiredEvent, Ledger, LedgerEntry};
use crate::lock::LockExt;
use crate::process::ProcessLife;
use crate::selector::{glob_match, Selector};

/// The RNG stream of fail-point probability draws (distinct from the nemesis streams).
const RNG_STREAM: u64 = 0xfa11;

/// A process-level fault a fail point asked the driver loop to carry out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DriverCommand {
    /// Crash the node (`sim.crash`) at the next step boundary.
    Crash { node: String },
    /// Crash the node now and bounce it `after_ms` of simulated time later.
    Restart { node: String, after_ms: u64 },
}

/// The hook [`Registry::set_hit_observer`] installs: `(node, point, action)` per fired action.
pub type HitObserver = Box<dyn Fn(&str, &str, &str) + Send + Sync>;
type SharedObserver = Arc<dyn Fn(&str, &str, &str) + Send + Sync>;

/// Which nodes have the gate of a rule open.
#[derive(Debug, Default)]
struct Gate {
    all: bool,
    nodes: BTreeSet<String>,
    patterns: BTreeSet<String>,
}

impl Gate {
    fn open(&mut self, selector: &Selector) {
        match selector {
            Selector::All => self.all = true,
            Selector::Node(n) => {
                self.nodes.insert(n.clone());
            }
            Selector::Pattern(p) => {
                self.patterns.insert(p.clone());
            }
        }
    }

    fn is_open(&self, node: &str) -> bool {
        self.all || self.nodes.contains(node) || self.patterns.iter().any(|p| glob_match(p, node))
    }
}

#[derive(Debug)]
struct Rule {
    id: u64,
    selector: Selector,
    actions: Vec<Action>,
    remaining: Vec<Option<u64>>,
    gate: Gate,
}

impl Rule {
    /// Picks the first action that fires for `node`, consuming its count.
    fn select(&mut self, node: &str, rng: &mut ChaCha8Rng) -> Option<&Action> {
        for (i, action) in self.actions.iter().enumerate() {
            if action.task == Task::Pause && self.gate.is_open(node) {
                continue;
            }
            if self.remaining[i] == Some(0) {
                continue;
            }
            if let Some(p) = action.percent {
                // fail-rs: 100% or more is always (no draw), below 0% never (no draw).
                if p < 0.0 || (p < 100.0 && !rng.random_bool(p / 100.0)) {
                    continue;
                }
            }
            if let Some(left) = self.remaining[i].as_mut() {
                *left -= 1;
            }
            return Some(action);
        }
        None
    }
}

/// What the evaluating task must do once the registry lock is released.
enum Decision {
    Pass,
    Return(Option<String>),
    Panic(Option<String>),
    Delay(u64),
    Pause(u64),
    Yield,
    /// The crash/restart command is already queued.
    Crash,
}

struct State {
    rules: BTreeMap<String, Vec<Rule>>,
    next_rule: u64,
    rng: ChaCha8Rng,
    ledger: Ledger,
    commands: Vec<DriverCommand>,
    paused: BTreeMap<(String, String), usize>,
    observer: Option<SharedObserver>,
    /// Per node: a crash fired and the driver has not taken it yet. The node's process is
    /// dead from that instant: its tasks must make no further progress.
    halted: BTreeMap<String, Arc<ProcessLife>>,
}

impl State {
    fn halt_flag(&mut self, node: &str) -> Arc<ProcessLife> {
        self.halted.entry(node.to_string()).or_default().clone()
    }

    fn rule_for(&mut self, node: &str, point: &str) -> Option<&mut Rule> {
        best_rule(self.rules.get_mut(point)?, node)
    }

    fn find_rule(&self, point: &str, id: u64) -> Option<&Rule> {
        self.rules.get(point)?.iter().find(|r| r.id == id)
    }
}

/// The most specific rule matching `node`; ties go to the first in selector order.
fn best_rule<'a>(rules: &'a mut [Rule], node: &str) -> Option<&'a mut Rule> {
    let mut best: Option<usize> = None;
    for (i, rule) in rules.iter().enumerate() {
        let better = best.is_none_or(|b| rule.selector.rank() > rules[b].selector.rank());
        if rule.selector.matches(node) && better {
            best = Some(i);
        }
    }
    best.map(move |i| &mut rules[i])
}

struct Inner {
    state: Mutex<State>,
    /// Bumped whenever a gate opens or a rule changes; paused tasks re-check on every change.
    gates: watch::Sender<u64>,
}

/// The fail-point registry of one simulation. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        let rules: usize = state.rules.values().map(Vec::len).sum();
        f.debug_struct("Registry")
            .field("rules", &rules)
            .field("queued_commands", &state.commands.len())
            .finish()
    }
}

impl Registry {
    /// A registry whose `p%` draws come from `seed` (the simulation seed).
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(RNG_STREAM);
        let state = State {
            rules: BTreeMap::new(),
            next_rule: 0,
            rng,
            ledger: Ledger::default(),
            commands: Vec::new(),
            paused: BTreeMap::new(),
            observer: None,
            halted: BTreeMap::new(),
        };
        let (gates, _) = watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                gates,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock_ok()
    }

    fn bump_gates(&self) {
        self.inner.gates.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The process life (halt flag and reaper) of `node`, shared by all its handles.
    pub(crate) fn life(&self, node: &str) -> Arc<ProcessLife> {
        self.state().halt_flag(node)
    }

    /// Sets (or replaces) the rule for `(selector, point)`; its gate starts closed and tasks
    /// paused on a replaced rule are released.
    pub fn configure(
        &self,
        selector: Selector,
        point: &str,
        actions: &str,
    ) -> Result<(), ActionError> {
        let parsed = parse_actions(actions)?;
        {
            let mut state = self.state();
            let id = state.next_rule;
            state.next_rule += 1;
            let remaining = parsed.0.iter().map(|a| a.count).collect();
            let rule = Rule {
                id,
                selector,
                actions: parsed.0,
                remaining,
                gate: Gate::default(),
            };
            let rules = state.rules.entry(point.to_string()).or_default();
            match rules.binary_search_by(|r| r.selector.cmp(&rule.selector)) {
                Ok(i) => rules[i] = rule,
                Err(i) => rules.insert(i, rule),
            }
        }
        self.bump_gates();
        Ok(())
    }

    /// Removes every rule of `point` (releasing tasks paused there).
    pub fn clear(&self, point: &str) {
        self.state().rules.remove(point);
        self.bump_gates();
    }

    /// Removes the rule of exactly `(selector, point)`, if any.
    pub fn clear_rule(&self, selector: &Selector, point: &str) {
        if let Some(rules) = self.state().rules.get_mut(point) {
            rules.retain(|r| &r.selector != selector);
        }
        self.bump_gates();
    }

    /// Removes every rule (releasing every paused task). The ledger is kept.
    pub fn clear_all(&self) {
        self.state().rules.clear();
        self.bump_gates();
    }

    /// Opens, for the nodes `selector` matches, the gate of every rule of `point`: paused tasks
    /// resume and later `pause` hits pass until the rule is configured again. Returns how many
    /// rules were touched (0 when the point has no rule).
    pub fn open_gate(&self, selector: Selector, point: &str) -> usize {
        let touched = match self.state().rules.get_mut(point) {
            Some(rules) => {
                rules.iter_mut().for_each(|r| r.gate.open(&selector));
                rules.len()
            }
            None => 0,
        };
        self.bump_gates();
        touched
    }

    /// Whether the gate of the rule that applies to `node` at `point` is open; `None` when no
    /// rule applies.
    pub fn gate_open(&self, node: &str, point: &str) -> Option<bool> {
        let mut state = self.state();
        state.rule_for(node, point).map(|r| r.gate.is_open(node))
    }

    /// How many tasks of `node` are currently waiting at the gate of `point`.
    pub fn paused(&self, node: &str, point: &str) -> usize {
        let key = (node.to_string(), point.to_string());
        self.state().paused.get(&key).copied().unwrap_or(0)
    }

    /// The configured rules as `(selector, point, canonical actions)`, in deterministic order.
    pub fn rules(&self) -> Vec<(Selector, String, String)> {
        let state = self.state();
        let mut out = Vec::new();
        for (point, rules) in &state.rules {
            for rule in rules {
                let text = crate::action::Actions(rule.actions.clone()).to_string();
                out.push((rule.selector.clone(), point.clone(), text));
            }
        }
        out
    }

    /// How often `point` was evaluated on `node`.
    pub fn reached(&self, node: &str, point: &str) -> u64 {
        self.counts(node, point).reached
    }

    /// How often a disruptive action fired at `point` on `node`.
    pub fn fired(&self, node: &str, point: &str) -> u64 {
        self.counts(node, point).fired
    }

    /// All counters of one (node, point) pair.
    pub fn counts(&self, node: &str, point: &str) -> Counts {
        self.state().ledger.counts(node, point)
    }

    /// Every (node, point) ever reached, ordered by node then point.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.state().ledger.entries()
    }

    /// Every fired action, in firing order.
    pub fn fired_log(&self) -> Vec<FiredEvent> {
        self.state().ledger.log().to_vec()
    }

    /// Marks `node`'s process dead (or alive again): the harness halts a node around
    /// `sim.crash` so its tasks are reaped in spawn order (see [`ProcessLife`]).
    pub fn set_halted(&self, node: &str, halted: bool) {
        self.state().halt_flag(node).set_halted(halted);
    }

    /// Drains the crash/restart requests queued by fail points, oldest first.
    pub fn take_commands(&self) -> Vec<DriverCommand> {
        let mut state = self.state();
        let commands = std::mem::take(&mut state.commands);
        for command in &commands {
            let node = match command {
                DriverCommand::Crash { node } | DriverCommand::Restart { node, .. } => node,
            };
            state.halt_flag(node).set_halted(false);
        }
        commands
    }

    /// True once `point` was reached at least `n` times on `node` (for step loops).
    pub fn has_reached(&self, node: &str, point: &str, n: u64) -> bool {
        self.reached(node, point) >= n
    }

    /// Waits (polling every simulated millisecond) until `point` was reached `n` times on `node`.
    pub async fn wait_reached(&self, node: &str, point: &str, n: u64) {
        while !self.has_reached(node, point, n) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Installs the hook called (outside the registry lock) for every fired action.
    pub fn set_hit_observer(&self, observer: HitObserver) {
        self.state().observer = Some(Arc::from(observer));
    }

    /// Applies the fail-point faults (`FailPoint`, `ClearFailPoint`, `OpenGate`); returns
    /// `Ok(false)` for every other fault, which the harness applies itself.
    pub fn apply(&self, fault: &Fault) -> Result<bool, ActionError> {
        match fault {
            Fault::FailPoint { point, action, .. } => {
                self.configure(fault.selector(), point, action)?;
            }
            Fault::ClearFailPoint { point } => self.clear(point),
            Fault::OpenGate { point, .. } => {
                self.open_gate(fault.selector(), point);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Evaluates `point` for `node` from synchronous code.
    pub(crate) fn eval_sync(&self, node: &str, point: &str) -> Hit {
        match self.decide(node, point, true) {
            Decision::Pass | Decision::Delay(_) | Decision::Pause(_) | Decision::Yield => Hit::Pass,
            Decision::Return(arg) => Hit::Return(arg),
            Decision::Panic(msg) => injected_panic(node, point, msg),
            Decision::Crash => Hit::Crash,
        }
    }

    /// Evaluates `point` for `node` from async code; a crash never returns.
    pub(crate) async fn eval_async(&self, node: &str, point: &str) -> Hit {
        match self.decide(node, point, false) {
            Decision::Pass => Hit::Pass,
            Decision::Return(arg) => Hit::Return(arg),
            Decision::Panic(msg) => injected_panic(node, point, msg),
            Decision::Delay(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Hit::Pass
            }
            Decision::Pause(rule) => {
                self.wait_gate(node, point, rule).await;
                Hit::Pass
            }
            Decision::Yield => {
                tokio::task::yield_now().await;
                Hit::Pass
            }
            Decision::Crash => std::future::pending::<Hit>().await,
        }
    }

    /// Records the hit, picks the action and queues driver commands, all under one lock.
    fn decide(&self, node: &str, point: &str, sync: bool) -> Decision {
        let mut state = self.state();
        state.ledger.reach(node, point);
        let State { rules, rng, .. } = &mut *state;
        let picked = rules
            .get_mut(point)
            .and_then(|rules| best_rule(rules, node))
            .and_then(|rule| rule.select(node, rng).cloned().map(|a| (rule.id, a)));
        let Some((rule_id, action)) = picked else {
            return Decision::Pass;
        };
        let (decision, ignored) = match (&action.task, sync) {
            (Task::Off, _) => return Decision::Pass,
            (Task::Pause | Task::Delay(_) | Task::Sleep(_) | Task::Yield, true) => {
                (Decision::Pass, true)
            }
            (task, _) => (to_decision(task, rule_id), false),
        };
        self.record(state, node, point, &action, ignored);
        decision
    }

    /// Writes the ledger, queues crash commands, and calls the observer after unlocking.
    fn record(
        &self,
        mut state: MutexGuard<'_, State>,
        node: &str,
        point: &str,
        action: &Action,
        ignored: bool,
    ) {
        let at = turmoil::sim_elapsed().unwrap_or_default();
        let text = action.to_string();
        if ignored {
            state.ledger.ignore(at, node, point, text);
            return;
        }
        match action.task {
            Task::Crash => state
                .commands
                .push(DriverCommand::Crash { node: node.into() }),
            Task::Restart(after_ms) => state.commands.push(DriverCommand::Restart {
                node: node.into(),
                after_ms,
            }),
            _ => {}
        }
        if matches!(action.task, Task::Crash | Task::Restart(_)) {
            state.halt_flag(node).set_halted(true);
        }
        state.ledger.fire(at, node, point, text.clone());
        let observer = state.observer.clone();
        drop(state);
        tracing::debug!(node, point, action = %text, "fail point fired");
        if let Some(observer) = observer {
            observer(node, point, &text);
        }
    }

    /// Waits until the rule's gate opens for `node` or the rule is replaced or cleared.
    async fn wait_gate(&self, node: &str, point: &str, rule: u64) {
        let _paused = PausedGuard::new(self, node, point);
        let mut changes = self.inner.gates.subscribe();
        while !self.released(node, point, rule) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    fn released(&self, node: &str, point: &str, rule: u64) -> bool {
        let state = self.state();
        state
            .find_rule(point, rule)
            .is_none_or(|r| r.gate.is_open(node))
    }
}

fn to_decision(task: &Task, rule_id: u64) -> Decision {
    match task {
        Task::Off => Decision::Pass,
        Task::Return(arg) => Decision::Return(arg.clone()),
        Task::Panic(msg) => Decision::Panic(msg.clone()),
        Task::Delay(ms) | Task::Sleep(ms) => Decision::Delay(*ms),
        Task::Print(msg) => {
            tracing::info!(
                message = msg.as_deref().unwrap_or_default(),
                "fail point print"
            );
            Decision::Pass
        }
        Task::Yield => Decision::Yield,
        Task::Pause => Decision::Pause(rule_id),
        Task::Crash | Task::Restart(_) => Decision::Crash,
    }
}

fn injected_panic(node: &str, point: &str, msg: Option<String>) -> ! {
    panic!(
        "fail point {point} panicked on {node}: {}",
        msg.unwrap_or_default()
    )
}

/// Counts a task as paused while it waits; the count drops even if the task is dropped
/// (its host crashed).
struct PausedGuard {
    registry: Registry,
    key: (String, String),
}

impl PausedGuard {
    fn new(registry: &Registry, node: &str, point: &str) -> Self {
        let key = (node.to_string(), point.to_string());
        *registry.state().paused.entry(key.clone()).or_default() += 1;
        Self {
            registry: registry.clone(),
            key,
        }
    }
}

impl Drop for PausedGuard {
    fn drop(&mut self) {
        let mut state = self.registry.state();
        if let Some(n) = state.paused.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                state.paused.remove(&self.key);
            }
        }
    }
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn evals(reg: &Registry, node: &str, point: &str, n: usize) -> Vec<Hit> {
        let fp = reg.handle(node);
        (0..n).map(|_| fp.eval_sync(point)).collect()
    }

    fn ret(s: &str) -> Hit {
        Hit::Return(Some(s.into()))
    }

    fn paused_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
    }

    #[test]
    fn unconfigured_points_pass_and_are_counted() {
        let reg = Registry::new(1);
        assert_eq!(evals(&reg, "n1", "p", 3), [Hit::Pass, Hit::Pass, Hit::Pass]);
        assert_eq!(reg.reached("n1", "p"), 3);
        assert_eq!(reg.fired("n1", "p"), 0);
        assert!(reg.has_reached("n1", "p", 3));
        assert!(!reg.has_reached("n1", "p", 4));
        assert!(reg.fired_log().is_empty());
    }

    #[test]
    fn counts_fall_through_in_order() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "2*return(x)->1*off->return(y)")
            .expect("valid");
        let hits = evals(&reg, "n1", "p", 5);
        assert_eq!(hits, [ret("x"), ret("x"), Hit::Pass, ret("y"), ret("y")]);
        assert_eq!(reg.fired("n1", "p"), 4, "`off` is not counted as fired");
        assert_eq!(reg.reached("n1", "p"), 5);
    }

    #[test]
    fn counts_are_shared_by_the_nodes_of_a_rule() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "1*return")
            .expect("valid");
        assert_eq!(reg.handle("n1").eval_sync("p"), Hit::Return(None));
        assert_eq!(reg.handle("n2").eval_sync("p"), Hit::Pass);
    }

    #[test]
    fn probabilities_are_seeded() {
        let draw = |seed| {
            let reg = Registry::new(seed);
            reg.configure(Selector::All, "p", "50%return")
                .expect("valid");
            evals(&reg, "n1", "p", 1000)
        };
        let a = draw(7);
        let fired = a.iter().filter(|h| **h != Hit::Pass).count();
        assert!((400..600).contains(&fired), "{fired}");
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let never = Registry::new(1);
        never
            .configure(Selector::All, "p", "0%return")
            .expect("valid");
        assert!(evals(&never, "n1", "p", 100)
            .iter()
            .all(|h| *h == Hit::Pass));
    }

    #[test]
    fn probabilities_beyond_the_range_are_always_or_never_as_in_fail_rs() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "125%2*return->print(x)->-5%panic")
            .expect("fail-rs grammar");
        let hits = evals(&reg, "n1", "p", 5);
        assert_eq!(&hits[..2], [Hit::Return(None), Hit::Return(None)]);
        assert!(hits[2..].iter().all(|h| *h == Hit::Pass), "{hits:?}");
    }

    #[test]
    fn most_specific_rule_wins() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "return(all)")
            .expect("valid");
        reg.configure(Selector::Pattern("n*".into()), "p", "return(n*)")
            .expect("valid");
        reg.configure(Selector::Pattern("n1*".into()), "p", "return(n1*)")
            .expect("valid");
        reg.configure(Selector::Node("n1".into()), "p", "return(n1)")
            .expect("valid");
        let hit = |node: &str| reg.handle(node).eval_sync("p");
        assert_eq!(hit("n1"), ret("n1"));
        assert_eq!(hit("n10"), ret("n1*"));
        assert_eq!(hit("n2"), ret("n*"));
        assert_eq!(hit("m1"), ret("all"));
        reg.clear_rule(&Selector::Node("n1".into()), "p");
        assert_eq!(hit("n1"), ret("n1*"));
        assert_eq!(reg.rules().len(), 3);
        reg.clear("p");
        assert_eq!(hit("n1"), Hit::Pass);
    }

    #[test]
    fn bad_actions_are_rejected() {
        let reg = Registry::new(1);
        let err = reg
            .configure(Selector::All, "p", "abc%return")
            .expect_err("bad");
        assert!(err.to_string().contains("abc"));
        assert!(reg.rules().is_empty());
    }

    #[test]
    fn sync_crash_and_restart_queue_commands() {
        let reg = Registry::new(1);
        reg.configure(Selector::Node("n1".into()), "c", "1*crash->restart(500)")
            .expect("valid");
        assert_eq!(evals(&reg, "n1", "c", 2), [Hit::Crash, Hit::Crash]);
        assert_eq!(
            reg.take_commands(),
            [
                DriverCommand::Crash { node: "n1".into() },
                DriverCommand::Restart {
                    node: "n1".into(),
                    after_ms: 500
                }
            ]
        );
        assert!(reg.take_commands().is_empty());
        assert_eq!(reg.handle("n2").eval_sync("c"), Hit::Pass);
    }

    #[test]
    fn sync_pause_and_delay_are_ignored_and_recorded() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "1*pause->1*delay(10)->return")
            .expect("valid");
        assert_eq!(
            evals(&reg, "n1", "p", 3),
            [Hit::Pass, Hit::Pass, Hit::Return(None)]
        );
        let counts = reg.counts("n1", "p");
        assert_eq!((counts.fired, counts.ignored), (1, 2));
        let log: Vec<_> = reg.fired_log().into_iter().map(|e| e.action).collect();
        assert_eq!(
            log,
            [
                "1*pause [ignored: sync point]",
                "1*delay(10) [ignored: sync point]",
                "return"
            ]
        );
    }

    #[test]
    fn panic_action_panics_with_its_message() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "panic(boom)")
            .expect("valid");
        let fp = reg.handle("n1");
        let err = std::panic::catch_unwind(|| fp.eval_sync("p")).expect_err("panics");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(msg, "fail point p panicked on n1: boom");
        assert_eq!(reg.fired("n1", "p"), 1, "the registry lock is not poisoned");
    }

    #[test]
    fn ledger_and_observer() {
        let reg = Registry::new(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        reg.set_hit_observer(Box::new(move |node, point, action| {
            sink.lock()
                .expect("observer lock")
                .push(format!("{node} {point} {action}"));
        }));
        reg.configure(Selector::Node("n2".into()), "b", "return(e)")
            .expect("valid");
        reg.handle("n2").eval_sync("b");
        reg.handle("n1").eval_sync("b");
        reg.handle("n1").eval_sync("a");
        let rows: Vec<_> = reg
            .ledger()
            .into_iter()
            .map(|e| (e.node, e.point, e.counts.reached, e.counts.fired))
            .collect();
        assert_eq!(
            rows,
            [
                ("n1".into(), "a".into(), 1, 0),
                ("n1".into(), "b".into(), 1, 0),
                ("n2".into(), "b".into(), 1, 1)
            ]
        );
        assert_eq!(*seen.lock().expect("lock"), ["n2 b return(e)"]);
        let log = reg.fired_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].at, Duration::ZERO, "outside a simulation");
    }

    #[test]
    fn apply_handles_fail_point_faults_only() {
        let reg = Registry::new(1);
        let arm: Fault = "failpoint n1 p return(x)".parse().expect("fault");
        assert_eq!(reg.apply(&arm), Ok(true));
        assert_eq!(reg.handle("n1").eval_sync("p"), ret("x"));
        let crash: Fault = "crash n1".parse().expect("fault");
        assert_eq!(reg.apply(&crash), Ok(false));
        let clear: Fault = "clear-failpoint p".parse().expect("fault");
        assert_eq!(reg.apply(&clear), Ok(true));
        assert_eq!(reg.handle("n1").eval_sync("p"), Hit::Pass);
    }

    #[test]
    fn async_pause_waits_for_its_gate() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "pause").expect("valid");
        let rt = paused_runtime();
        let local = tokio::task::LocalSet::new();
        let done = Arc::new(AtomicUsize::new(0));
        for node in ["n1", "n2"] {
            let (fp, done) = (reg.handle(node), done.clone());
            local.spawn_local(async move {
                assert_eq!(fp.eval("p").await, Hit::Pass);
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let settle = || {
            local.block_on(&rt, async {
                tokio::time::sleep(Duration::from_millis(50)).await;
            });
        };
        settle();
        assert_eq!((reg.paused("n1", "p"), reg.paused("n2", "p")), (1, 1));
        assert_eq!(reg.gate_open("n1", "p"), Some(false));
        assert_eq!(reg.open_gate(Selector::Node("n2".into()), "p"), 1);
        settle();
        assert_eq!(done.load(Ordering::SeqCst), 1, "only n2 resumed");
        assert_eq!(reg.gate_open("n2", "p"), Some(true));
        assert_eq!(reg.gate_open("n1", "p"), Some(false));
        assert_eq!(reg.handle("n2").eval_sync("p"), Hit::Pass);
        reg.configure(Selector::All, "p", "return").expect("valid");
        settle();
        assert_eq!(done.load(Ordering::SeqCst), 2, "reconfiguring released n1");
        assert_eq!(reg.paused("n1", "p"), 0);
        assert_eq!(reg.gate_open("n9", "q"), None);
    }

    #[test]
    fn open_gate_makes_later_pauses_pass_until_reconfigured() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "pause").expect("valid");
        reg.open_gate(Selector::All, "p");
        let rt = paused_runtime();
        let fp = reg.handle("n1");
        assert_eq!(rt.block_on(fp.eval("p")), Hit::Pass);
        assert_eq!(reg.fired("n1", "p"), 0, "an open pause does not fire");
        reg.configure(Selector::All, "p", "pause").expect("valid");
        let paused =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), fp.eval("p")).await });
        assert!(paused.is_err(), "the new rule's gate is closed");
        assert_eq!(
            reg.paused("n1", "p"),
            0,
            "a dropped waiter is no longer counted"
        );
    }

    #[test]
    fn async_delay_sleeps_in_tokio_time() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "1*delay(300)")
            .expect("valid");
        let fp = reg.handle("n1");
        let rt = paused_runtime();
        let waited = rt.block_on(async {
            let start = tokio::time::Instant::now();
            assert_eq!(fp.eval("p").await, Hit::Pass);
            start.elapsed()
        });
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert_eq!(reg.fired("n1", "p"), 1);
    }

    #[test]
    fn async_crash_never_returns() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "p", "crash").expect("valid");
        let fp = reg.handle("n1");
        let rt = paused_runtime();
        let out = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), fp.eval("p")).await });
        assert!(out.is_err());
        assert_eq!(
            reg.take_commands(),
            [DriverCommand::Crash { node: "n1".into() }]
        );
    }

    #[test]
    fn check_flag_and_arg_helpers() {
        let reg = Registry::new(1);
        reg.configure(Selector::All, "e", "return(disk full)")
            .expect("valid");
        reg.configure(Selector::All, "a", "return(7)")
            .expect("valid");
        let fp = reg.handle("n1");
        let rt = paused_runtime();
        rt.block_on(async {
            let err = fp.check("e").await.expect_err("injected");
            assert_eq!(err.to_string(), "injected failure at e: disk full");
            assert!(fp.flag("e").await);
            assert!(!fp.flag("x").await);
            assert_eq!(fp.arg("a").await.as_deref(), Some("7"));
            assert_eq!(fp.check("x").await, Ok(()));
        });
    }
}
