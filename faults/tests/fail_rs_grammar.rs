//! Compatibility with fail-rs 0.5.1's action grammar: its own `test_parse` cases (src/lib.rs of
//! tikv/fail-rs at v0.5.1), ported with fail-rs's frequency (a fraction, 1.25 = 125%) written
//! as our percent, plus a cross-check against the `fail` crate itself: every string one of
//! the two accepts, the other accepts too.

use shardstorm_faults::{parse_action, parse_actions, Action, Task};

/// `Action::new(task, freq, count)` of fail-rs's test, in our terms: freq 1.0 is no `p%`.
fn action(task: Task, freq: f64, count: Option<u64>) -> Action {
    Action {
        percent: (freq != 1.0).then_some(freq * 100.0),
        count,
        task,
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn fail_rs_test_parse_cases() {
    let cases = vec![
        ("return", action(Task::Return(None), 1.0, None)),
        ("return(64)", action(Task::Return(some("64")), 1.0, None)),
        ("5*return", action(Task::Return(None), 1.0, Some(5))),
        ("25%return", action(Task::Return(None), 0.25, None)),
        ("125%2*return", action(Task::Return(None), 1.25, Some(2))),
        ("return(2%5)", action(Task::Return(some("2%5")), 1.0, None)),
        ("125%2*off", action(Task::Off, 1.25, Some(2))),
        ("125%2*sleep(100)", action(Task::Sleep(100), 1.25, Some(2))),
        (" 125%2*off ", action(Task::Off, 1.25, Some(2))),
        ("125%2*panic", action(Task::Panic(None), 1.25, Some(2))),
        (
            "125%2*panic(msg)",
            action(Task::Panic(some("msg")), 1.25, Some(2)),
        ),
        ("125%2*print", action(Task::Print(None), 1.25, Some(2))),
        (
            "125%2*print(msg)",
            action(Task::Print(some("msg")), 1.25, Some(2)),
        ),
        ("125%2*pause", action(Task::Pause, 1.25, Some(2))),
        ("125%2*yield", action(Task::Yield, 1.25, Some(2))),
        ("125%2*delay(2)", action(Task::Delay(2), 1.25, Some(2))),
    ];
    for (expr, expected) in cases {
        let parsed = parse_action(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        assert_eq!(parsed, expected, "{expr:?}");
        // The canonical text parses back to the same action.
        let again = parse_action(&parsed.to_string()).expect("canonical text parses");
        assert_eq!(again, parsed, "{expr:?}");
    }

    let fail_cases = vec![
        "delay",
        "sleep",
        "Return",
        "ab%return",
        "ab*return",
        "return(msg",
        "unknown",
    ];
    for case in fail_cases {
        assert!(parse_action(case).is_err(), "{case:?} must not parse");
    }
}

#[test]
fn the_fail_crate_and_this_parser_agree() {
    let strings = [
        "return",
        "return(64)",
        "5*return",
        "25%return",
        "125%2*return",
        "return(2%5)",
        "125%2*off",
        "125%2*sleep(100)",
        " 125%2*off ",
        "125%2*panic(msg)",
        "125%2*print(msg)",
        "125%2*pause",
        "125%2*yield",
        "125%2*delay(2)",
        "-5%return",
        "0%return",
        "1*return->off",
        "50%return(a)->2*delay(3)->off",
        "delay",
        "sleep",
        "Return",
        "ab%return",
        "ab*return",
        "return(msg",
        "unknown",
        "-1*return",
    ];
    for (i, s) in strings.iter().enumerate() {
        let name = format!("shardstorm.faults.compat.{i}");
        let theirs = fail::cfg(&name, s).is_ok();
        fail::remove(&name);
        let ours = parse_actions(s).is_ok();
        assert_eq!(ours, theirs, "{s:?}: ours {ours}, fail-rs {theirs}");
    }
}
