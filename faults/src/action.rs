//! The fail-point action grammar (fail-rs's `[p%][n*]task[(arg)]`, chained with `->`): parsing,
//! validation with one-line errors, and the canonical text form. Everything fail-rs 0.5.1
//! accepts parses here with the same meaning (its own `test_parse` cases are in
//! `faults/tests/fail_rs_grammar.rs`): a probability of 100% or more means always, one of 0%
//! or less never; `sleep(ms)` is `delay(ms)` in simulated time, `print(msg)` logs and passes,
//! `yield` yields to the scheduler and passes. On top of fail-rs: `crash` and `restart(ms)`.

use std::fmt;
use std::str::FromStr;

/// What an action does when it fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// Fires and does nothing (the point passes; later actions are not tried).
    Off,
    /// `return` / `return(arg)`: the point evaluates to [`crate::Hit::Return`].
    Return(Option<String>),
    /// `panic` / `panic(msg)`: the evaluating task panics.
    Panic(Option<String>),
    /// `delay(ms)`: sleep in simulated time, then pass.
    Delay(u64),
    /// `sleep(ms)`: fail-rs's thread sleep; here, like `delay`, in simulated time.
    Sleep(u64),
    /// `print` / `print(msg)`: log the message (`tracing`, level info), then pass.
    Print(Option<String>),
    /// `yield`: yield to the scheduler once, then pass.
    Yield,
    /// `pause`: wait at the point's gate until a test opens it.
    Pause,
    /// `crash`: the driver crashes the node; the hitting task never resumes.
    Crash,
    /// `restart(ms)`: like `crash`, and the driver restarts the node `ms` later.
    Restart(u64),
}

impl Task {
    /// True for every task that changes what the node does (not `off`, `print`, `yield`).
    pub fn disrupts(&self) -> bool {
        !matches!(self, Task::Off | Task::Print(_) | Task::Yield)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Off => f.write_str("off"),
            Task::Return(None) => f.write_str("return"),
            Task::Return(Some(arg)) => write!(f, "return({arg})"),
            Task::Panic(None) => f.write_str("panic"),
            Task::Panic(Some(msg)) => write!(f, "panic({msg})"),
            Task::Delay(ms) => write!(f, "delay({ms})"),
            Task::Sleep(ms) => write!(f, "sleep({ms})"),
            Task::Print(None) => f.write_str("print"),
            Task::Print(Some(msg)) => write!(f, "print({msg})"),
            Task::Yield => f.write_str("yield"),
            Task::Pause => f.write_str("pause"),
            Task::Crash => f.write_str("crash"),
            Task::Restart(ms) => write!(f, "restart({ms})"),
        }
    }
}

/// One `[p%][n*]task[(arg)]` element of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Probability in percent (fail-rs accepts any number: 100 or more means always, 0 or
    /// less never); `None` means always.
    pub percent: Option<f64>,
    /// How many times the action may fire; `None` means unlimited.
    pub count: Option<u64>,
    pub task: Task,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.percent {
            write!(f, "{p}%")?;
        }
        if let Some(n) = self.count {
            write!(f, "{n}*")?;
        }
        write!(f, "{}", self.task)
    }
}

/// A parsed action chain; the first action that fires wins, exhausted counts fall through.
#[derive(Debug, Clone, PartialEq)]
pub struct Actions(pub Vec<Action>);

impl Actions {
    /// The actions in chain order.
    pub fn actions(&self) -> &[Action] {
        &self.0
    }

    /// True if some action would do something other than pass.
    pub fn disrupts(&self) -> bool {
        self.0.iter().any(|a| a.task.disrupts())
    }

    /// The most times a disruptive action can fire in total, or `None` if unbounded.
    pub fn fire_capacity(&self) -> Option<u64> {
        self.0
            .iter()
            .filter(|a| a.task.disrupts())
            .try_fold(0u64, |sum, a| a.count.map(|c| sum.saturating_add(c)))
    }

    /// True if every disruptive action is a `pause` (an open gate then ends the fault).
    pub fn only_pauses(&self) -> bool {
        self.0
            .iter()
            .filter(|a| a.task.disrupts())
            .all(|a| a.task == Task::Pause)
    }

    /// True if some action is `crash` (the node stays down until restarted by someone).
    pub fn has_crash(&self) -> bool {
        self.0.iter().any(|a| a.task == Task::Crash)
    }

    /// The longest time a firing action keeps the node affected after the rule is gone:
    /// the largest `restart(ms)`, `delay(ms)` or `sleep(ms)` argument, zero when there is none.
    pub fn tail_ms(&self) -> u64 {
        self.0
            .iter()
            .map(|a| match a.task {
                Task::Restart(ms) | Task::Delay(ms) | Task::Sleep(ms) => ms,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, action) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("->")?;
            }
            write!(f, "{action}")?;
        }
        Ok(())
    }
}

/// A fail-point action string that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fail-point action {spec:?}: {reason}")]
pub struct ActionError {
    /// The offending element of the chain (or the whole string when it is empty).
    pub spec: String,
    pub reason: String,
}

impl ActionError {
    fn new(spec: &str, reason: impl Into<String>) -> Self {
        Self {
            spec: spec.to_string(),
            reason: reason.into(),
        }
    }
}

impl FromStr for Actions {
    type Err = ActionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_actions(s)
    }
}

/// Parses an action chain such as `20%3*return(eio)->delay(10)`.
pub fn parse_actions(s: &str) -> Result<Actions, ActionError> {
    if s.trim().is_empty() {
        return Err(ActionError::new(s, "empty action"));
    }
    s.split("->")
        .map(parse_action)
        .collect::<Result<Vec<_>, _>>()
        .map(Actions)
}

/// Parses one `[p%][n*]task[(arg)]` element.
pub fn parse_action(raw: &str) -> Result<Action, ActionError> {
    let spec = raw.trim();
    if spec.is_empty() {
        return Err(ActionError::new(raw, "empty action in chain"));
    }
    let err = |reason: String| ActionError::new(spec, reason);
    // '%' and '*' only count before the argument, which may contain anything.
    let head_end = spec.find('(').unwrap_or(spec.len());
    let (percent, rest) = split_percent(spec, head_end).map_err(err)?;
    let head_end = rest.find('(').unwrap_or(rest.len());
    let (count, rest) = split_count(rest, head_end).map_err(err)?;
    let (name, arg) = split_arg(rest).map_err(err)?;
    let task = make_task(name, arg).map_err(err)?;
    Ok(Action {
        percent,
        count,
        task,
    })
}

fn split_percent(spec: &str, head_end: usize) -> Result<(Option<f64>, &str), String> {
    let Some(pos) = spec[..head_end].find('%') else {
        return Ok((None, spec));
    };
    let text = &spec[..pos];
    // fail-rs reads any f32 here; 125% is as good as 100% (always) and -5% as 0% (never).
    let p: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|p: &f64| p.is_finite())
        .ok_or_else(|| format!("bad probability {text:?} (expected a number then '%')"))?;
    Ok((Some(p), &spec[pos + 1..]))
}

fn split_count(rest: &str, head_end: usize) -> Result<(Option<u64>, &str), String> {
    let Some(pos) = rest[..head_end].find('*') else {
        return Ok((None, rest));
    };
    let text = &rest[..pos];
    let n: u64 = text
        .parse()
        .map_err(|_| format!("bad count {text:?} (expected a whole number then '*')"))?;
    Ok((Some(n), &rest[pos + 1..]))
}

fn split_arg(rest: &str) -> Result<(&str, Option<&str>), String> {
    let Some(open) = rest.find('(') else {
        return Ok((rest, None));
    };
    let Some(inner) = rest[open + 1..].strip_suffix(')') else {
        return Err(format!("unclosed '(' or text after ')' in {rest:?}"));
    };
    Ok((&rest[..open], Some(inner)))
}

fn make_task(name: &str, arg: Option<&str>) -> Result<Task, String> {
    let no_arg = |task: Task| match arg {
        None => Ok(task),
        Some(a) => Err(format!("{name} takes no argument, found ({a})")),
    };
    match name {
        "off" => no_arg(Task::Off),
        "pause" => no_arg(Task::Pause),
        "crash" => no_arg(Task::Crash),
        "return" => Ok(Task::Return(arg.map(str::to_string))),
        "panic" => Ok(Task::Panic(arg.map(str::to_string))),
        "delay" => millis(name, arg).map(Task::Delay),
        "sleep" => millis(name, arg).map(Task::Sleep),
        "print" => Ok(Task::Print(arg.map(str::to_string))),
        "yield" => no_arg(Task::Yield),
        "restart" => millis(name, arg).map(Task::Restart),
        other => Err(format!(
            "unknown action {other:?} (expected off, return, panic, print, sleep, delay, pause, \
             yield, crash or restart)"
        )),
    }
}

fn millis(name: &str, arg: Option<&str>) -> Result<u64, String> {
    let text = arg.ok_or_else(|| format!("{name} needs a duration in ms, e.g. {name}(100)"))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{name}({text}) needs a whole number of ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Action {
        let actions = parse_actions(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(actions.0.len(), 1);
        actions.0[0].clone()
    }

    #[test]
    fn parses_every_task() {
        assert_eq!(one("off").task, Task::Off);
        assert_eq!(one("return").task, Task::Return(None));
        assert_eq!(one("return(eio)").task, Task::Return(Some("eio".into())));
        assert_eq!(one("panic(boom)").task, Task::Panic(Some("boom".into())));
        assert_eq!(one("delay(250)").task, Task::Delay(250));
        assert_eq!(one("pause").task, Task::Pause);
        assert_eq!(one("crash").task, Task::Crash);
        assert_eq!(one("restart(500)").task, Task::Restart(500));
    }

    #[test]
    fn parses_probability_and_count() {
        let a = one("12.5%3*return(x)");
        assert_eq!(a.percent, Some(12.5));
        assert_eq!(a.count, Some(3));
        assert_eq!(a.task, Task::Return(Some("x".into())));
        let b = one(" 1*crash ");
        assert_eq!((b.percent, b.count), (None, Some(1)));
    }

    #[test]
    fn probabilities_beyond_the_range_mean_always_or_never() {
        let a = one("125%2*return");
        assert_eq!((a.percent, a.count), (Some(125.0), Some(2)));
        assert_eq!(a.to_string(), "125%2*return");
        assert_eq!(one("-5%return").percent, Some(-5.0));
        assert_eq!(one("sleep(30)").task, Task::Sleep(30));
        assert_eq!(one("print(hi)").task, Task::Print(Some("hi".into())));
        assert_eq!(one("yield").task, Task::Yield);
        assert!(!parse_actions("print->yield").expect("valid").disrupts());
        assert_eq!(parse_actions("sleep(40)").expect("valid").tail_ms(), 40);
    }

    #[test]
    fn argument_may_contain_grammar_characters() {
        let a = one("return(50%*x)");
        assert_eq!(a.task, Task::Return(Some("50%*x".into())));
        assert_eq!(a.percent, None);
    }

    #[test]
    fn chains_and_canonical_text() {
        let chain = parse_actions("1*pause -> 50%return(e)->off").expect("valid");
        assert_eq!(chain.0.len(), 3);
        assert_eq!(chain.to_string(), "1*pause->50%return(e)->off");
        let again = parse_actions(&chain.to_string()).expect("canonical text parses");
        assert_eq!(again, chain);
    }

    #[test]
    fn chain_properties() {
        let chain = parse_actions("2*restart(300)->1*delay(20)->off").expect("valid");
        assert_eq!(chain.fire_capacity(), Some(3));
        assert_eq!(chain.tail_ms(), 300);
        assert!(!chain.only_pauses());
        assert_eq!(
            parse_actions("return").expect("valid").fire_capacity(),
            None
        );
        assert!(parse_actions("pause->off").expect("valid").only_pauses());
        assert!(!parse_actions("off").expect("valid").disrupts());
    }

    fn bad(s: &str) -> ActionError {
        match parse_actions(s) {
            Ok(a) => panic!("{s:?} parsed as {a:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn rejects_bad_specs_with_named_part() {
        let cases = [
            ("x*return", "bad count \"x\""),
            ("return(", "unclosed"),
            ("frobnicate", "unknown action \"frobnicate\""),
            ("", "empty action"),
            ("   ", "empty action"),
            ("12%%return", "unknown action \"%return\""),
            ("nan%return", "bad probability"),
            ("abc%return", "bad probability"),
            ("delay", "needs a duration"),
            ("delay(soon)", "whole number"),
            ("restart", "needs a duration"),
            ("pause(3)", "takes no argument"),
            ("return->", "empty action in chain"),
            ("return(a)b", "text after"),
        ];
        for (spec, needle) in cases {
            let e = bad(spec);
            let text = e.to_string();
            assert!(text.contains(needle), "{spec:?}: {text}");
            assert!(text.starts_with("bad fail-point action"), "{text}");
        }
        assert_eq!(
            bad("return->12%%return").spec,
            "12%%return",
            "the error names the bad element, not the whole chain"
        );
    }
}
