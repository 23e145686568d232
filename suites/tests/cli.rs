//! The `shardstorm` binary end to end: explore's JSON summary and exit codes, bad usage as one
//! line with exit 2, replay of a written run file, the determinism check and merge.

use shardstorm_harness::runfile::{RunFile, BUILD};
use shardstorm_harness::{run, RunResult, RunSpec};
use std::path::PathBuf;
use std::process::{Command, Output};

fn shardstorm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardstorm"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON summary on stdout, checked for the documented keys.
fn summary(o: &Output) -> serde_json::Value {
    let text = stdout(o);
    let json: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"));
    for key in [
        "seeds",
        "wall_s",
        "seeds_per_min",
        "sim_s_per_wall_s",
        "violations",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    for v in json["violations"].as_array().expect("violations is a list") {
        for key in ["seed", "invariant", "node", "replay"] {
            assert!(v.get(key).is_some(), "violation misses {key}: {v}");
        }
    }
    json
}

/// Exit 1 exactly when the summary lists a violation.
fn assert_exit_matches(o: &Output, json: &serde_json::Value) {
    let found = json["violations"].as_array().is_some_and(|v| !v.is_empty());
    assert_eq!(
        o.status.code(),
        Some(if found { 1 } else { 0 }),
        "{}",
        stderr(o)
    );
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Asserts the exit code, showing both streams otherwise.
fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}{}", stdout(o), stderr(o));
}

/// The small scenario of these tests on the command line: `--blobs 10 --epochs 2`.
const SMALL: [&str; 4] = ["--blobs", "10", "--epochs", "2"];

/// `args` followed by `more`.
fn with<S: AsRef<str>>(args: &[S], more: &[&str]) -> Vec<String> {
    let args = args.iter().map(|a| a.as_ref());
    args.chain(more.iter().copied())
        .map(str::to_string)
        .collect()
}

/// The small scenario (`SMALL`) of `seed`.
fn small_spec(seed: u64) -> RunSpec {
    RunSpec {
        blobs: 10,
        epochs: 2,
        ..RunSpec::standard(seed)
    }
}

/// Runs the small scenario of seed 5 and saves its run file, changed by `edit`, as
/// `dir/name`; returns the run and the path.
fn written_run_file(
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut RunFile),
) -> (RunResult, PathBuf) {
    let result = run(&small_spec(5));
    let mut file = RunFile::from_result(&result);
    edit(&mut file);
    let path = dir.join(name);
    file.save(&path).expect("save");
    (result, path)
}

#[test]
fn explore_json_summary_has_the_keys() {
    let out = tempfile::tempdir().expect("tempdir");
    let o = shardstorm(&[
        "explore",
        "--seeds",
        "4",
        "--json",
        "--jobs",
        "2",
        "--out",
        path_str(out.path()),
    ]);
    let json = summary(&o);
    assert_eq!(json["seeds"], 4);
    assert_exit_matches(&o, &json);
}

#[test]
fn explore_with_a_catalogue_bug_exits_0_or_1_with_well_formed_json() {
    let out = tempfile::tempdir().expect("tempdir");
    let args = [
        "explore",
        "--bug",
        "abort-drops-metadata-recovery",
        "--seeds",
        "3",
        "--epochs",
        "3",
    ];
    let o = shardstorm(
        &[
            &args[..],
            &["--blobs", "20", "--json", "--out", path_str(out.path())],
        ]
        .concat(),
    );
    let json = summary(&o);
    assert_exit_matches(&o, &json);
    for v in json["violations"].as_array().into_iter().flatten() {
        let replay = v["replay"].as_str().unwrap_or_default();
        assert!(
            replay.contains("--bug abort-drops-metadata-recovery"),
            "{v}"
        );
        let file = v["file"].as_str().expect("a run file was written");
        assert!(std::path::Path::new(file).exists(), "{file}");
    }
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    let out = tempfile::tempdir().expect("tempdir");
    let malformed = out.path().join("malformed.run");
    std::fs::write(&malformed, "seed = 1\nnodes = many\n").expect("write");
    let old = out.path().join("old.run");
    std::fs::write(&old, "shardstorm-version = 0.0.0\nseed = 1\n").expect("write");
    let missing = out.path().join("missing.run");
    let cases: Vec<Vec<&str>> = vec![
        vec!["frobnicate"],
        vec!["explore", "--shard", "3/2"],
        vec!["explore", "--bug", "no-such-bug"],
        vec!["explore", "--seeds", "many"],
        vec!["explore", "--duration", "soon"],
        vec!["replay"],
        vec!["replay", path_str(&malformed)],
        vec!["replay", path_str(&old)],
        vec!["replay", path_str(&missing)],
        vec!["replay", path_str(&old), "--bug", "completion-window"],
        vec!["replay", "--seed", "3", "--log", "shardstorm_node=loud"],
        vec!["explore", "--log", "[{"],
        vec!["shrink", "--seed", "3", "--log", ""],
        vec!["check-determinism", "--log", "=debug=info"],
        vec!["merge", path_str(&missing)],
        vec!["merge", path_str(&old)],
    ];
    for args in cases {
        let o = shardstorm(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("shardstorm: error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn replay_of_a_written_run_file_reproduces_its_hash() {
    let out = tempfile::tempdir().expect("tempdir");
    let (result, path) = written_run_file(out.path(), "seed-5.run", |_| {});
    let o = shardstorm(&["replay", path_str(&path)]);
    assert_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.contains(&format!("trace {}", result.trace_hash)),
        "{text}"
    );
    assert!(text.contains("reproduced:"), "{text}");
    let hash = shardstorm(&with(&["replay", "--seed", "5", "--hash-only"], &SMALL));
    assert_eq!(stdout(&hash).trim(), result.trace_hash);
}

/// A build fingerprint other than this build's.
fn another_build() -> String {
    let other = "0000000000000000";
    if BUILD == other {
        "0000000000000001".into()
    } else {
        other.into()
    }
}

#[test]
fn replay_of_a_file_from_another_build_warns_and_replays() {
    let out = tempfile::tempdir().expect("tempdir");
    let other = |f: &mut RunFile| f.build = Some(another_build());
    let (_, path) = written_run_file(out.path(), "other-build.run", other);
    let o = shardstorm(&["replay", path_str(&path)]);
    assert_code(&o, 0);
    let warning = format!(
        "shardstorm: warning: run file written by build {}, this is build {BUILD}: the replay \
         may differ\n",
        another_build()
    );
    assert_eq!(stderr(&o), warning);
    assert!(stdout(&o).contains("reproduced:"), "{}", stdout(&o));

    let (_, path) = written_run_file(out.path(), "other-build.run", |f| {
        other(f);
        f.expect_hash = Some("0123456789abcdef".into());
    });
    // Same verdict, another trace: reproduced, with a warning (the suite's meaning too) ...
    let o = shardstorm(&["replay", path_str(&path)]);
    assert_code(&o, 0);
    assert!(stderr(&o).starts_with(&warning), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("differs from the recorded 0123456789abcdef"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("reproduced:"), "{}", stdout(&o));
    // ... and a failure with --strict-hash, naming both builds.
    let o = shardstorm(&["replay", path_str(&path), "--strict-hash"]);
    assert_code(&o, 1);
    assert_eq!(stderr(&o), warning);
    let report = stdout(&o);
    let line = report
        .lines()
        .find(|l| l.starts_with("NOT reproduced:"))
        .unwrap_or_else(|| panic!("no mismatch report: {report}"));
    assert!(
        line.contains("expected trace 0123456789abcdef")
            && line.contains(&format!("run file written by build {}", another_build())),
        "{line}"
    );
}

#[test]
fn replay_of_a_file_without_a_build_line_loads_quietly() {
    let out = tempfile::tempdir().expect("tempdir");
    let (_, path) = written_run_file(out.path(), "old.run", |f| f.build = None);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("build ="), "{text}");
    let o = shardstorm(&["replay", path_str(&path)]);
    assert_code(&o, 0);
    assert_eq!(stderr(&o), "");
    assert!(stdout(&o).contains("reproduced:"), "{}", stdout(&o));
}

#[test]
fn replay_with_log_shows_the_node_logs_and_the_same_trace() {
    let args = with(&["replay", "--seed", "3"], &SMALL);
    let quiet = shardstorm(&args);
    let logged = shardstorm(&with(&args, &["--log", "shardstorm_node=debug"]));
    assert_eq!(
        quiet.status.code(),
        logged.status.code(),
        "{}",
        stderr(&logged)
    );
    assert_eq!(
        stdout(&quiet),
        stdout(&logged),
        "logging changes nothing on stdout"
    );
    let logs = stderr(&logged);
    assert!(
        logs.lines()
            .any(|l| l.contains("shardstorm_node") && l.contains("node status")),
        "no node status line in:\n{logs}"
    );
    assert!(
        !logs.lines().any(|l| l.starts_with("20")),
        "a wall-clock timestamp in:\n{logs}"
    );
    assert_eq!(stderr(&quiet), "", "no --log, no logs");
}

#[test]
fn check_determinism_passes_on_two_seeds() {
    let o = shardstorm(&[
        "check-determinism",
        "--seeds",
        "2",
        "--blobs",
        "20",
        "--epochs",
        "3",
    ]);
    let text = stdout(&o);
    assert_code(&o, 0);
    assert!(
        text.contains("2 seeds run twice in this process, 0 divergences"),
        "{text}"
    );
}

#[test]
fn merge_combines_sharded_summaries() {
    let out = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for shard in ["0/2", "1/2"] {
        let args = with(&["explore", "--seeds", "2", "--shard", shard], &SMALL);
        let o = shardstorm(&with(&args, &["--json", "--out", path_str(out.path())]));
        assert_eq!(summary(&o)["seeds"], 1);
        let file = out.path().join(format!("{}.json", shard.replace('/', "-")));
        std::fs::write(&file, stdout(&o)).expect("write summary");
        files.push(file);
    }
    let paths: Vec<&str> = files.iter().map(|f| path_str(f)).collect();
    let o = shardstorm(&[&["merge"][..], &paths].concat());
    let merged = summary(&o);
    assert_eq!(merged["seeds"], 2);
    assert_exit_matches(&o, &merged);
}

#[test]
fn report_writes_a_self_contained_page() {
    let out = tempfile::tempdir().expect("tempdir");
    let page = out.path().join("seed-3.html");
    let o = shardstorm(&with(
        &["report", "--seed", "3", "-o", path_str(&page)],
        &SMALL,
    ));
    assert_code(&o, 0);
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{}",
        &html[..200.min(html.len())]
    );
}

#[test]
fn shrink_of_a_passing_run_says_so_and_exits_1() {
    let out = tempfile::tempdir().expect("tempdir");
    let result = run(&small_spec(5));
    if !result.passed() {
        return; // this seed fails on the current node; nothing to check here
    }
    let min = out.path().join("min.run");
    let o = shardstorm(&with(
        &["shrink", "--seed", "5", "-o", path_str(&min)],
        &SMALL,
    ));
    assert_code(&o, 1);
    assert!(stderr(&o).contains("does not fail"), "{}", stderr(&o));
    assert!(!min.exists());
}
