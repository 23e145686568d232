//! Bad input of every kind, fed to the `shardstorm` binary: the command line, run files (sizes
//! out of range, schedules naming nodes or fail points the cluster lacks, generated values at
//! and past every boundary), an unwritable stdout and `--out`. Each must end with exit 2 and
//! one line on stderr, never a panic, a hang or an invented violation. Also: Ctrl-C during
//! `explore` still prints the summary, `merge` counts a file given twice once, the committed
//! regressions replay through the CLI as the suite expects, every command of the README
//! parses and names files that exist, and the wire decoder survives hostile bytes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn shardstorm<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardstorm"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Exit 2, exactly one line on stderr starting `shardstorm: error:`, no panic; returns the line.
fn assert_usage_error(args: &[String], o: &Output) -> String {
    let err = text(&o.stderr);
    let what = format!("{args:?}: exit {:?}, stderr:\n{err}", o.status.code());
    assert_eq!(o.status.code(), Some(2), "{what}");
    assert_eq!(err.lines().count(), 1, "{what}");
    assert!(err.starts_with("shardstorm: error: "), "{what}");
    assert!(!err.contains("panicked"), "{what}");
    err.trim_end().to_string()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The small scenario of these tests: `--blobs 5 --epochs 1`.
const SMALL: [&str; 4] = ["--blobs", "5", "--epochs", "1"];

#[test]
fn bad_command_lines_are_one_line_usage_errors() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["explore", "--shards", "3"],
            "shards must be from 4 to 32768",
        ),
        (
            vec!["explore", "--shards", "32769"],
            "shards must be from 4 to 32768",
        ),
        (
            vec!["explore", "--shards", "1"],
            "shards must be from 4 to 32768",
        ),
        (vec!["replay", "--seed", "1", "--shards", "2"], "shards"),
        (vec!["report", "--seed", "1", "--shards", "40000"], "shards"),
        (vec!["check-determinism", "--shards", "3"], "shards"),
        (vec!["shrink", "--seed", "1", "--shards", "3"], "shards"),
        (
            vec!["explore", "--nodes", "0"],
            "nodes must be from 1 to 64",
        ),
        (vec!["replay", "--seed", "1", "--nodes", "65535"], "nodes"),
        (
            vec!["explore", "--blobs", "4000000000"],
            "blobs must be from 0 to 100000",
        ),
        (vec!["explore", "--epochs", "4000000"], "epochs"),
        (vec!["explore", "--epochs", "500"], "simulation's limit"),
        (vec!["explore", "--seeds", "0"], "at least 1, found 0"),
        (vec!["explore", "--seeds", "-1"], "a negative number"),
        (vec!["explore", "--start", "-5"], "a negative number"),
        (vec!["explore", "--duration", "0s"], "longer than zero"),
        (vec!["explore", "--duration", "0"], "longer than zero"),
        (vec!["explore", "--jobs", "0"], "at least 1"),
        (vec!["explore", "--bug", "nope"], "possible values"),
        (vec!["replay", "--seed", "-1"], "a negative number"),
        (vec!["replay", "--seed", "1e3"], "not a whole number"),
        (vec!["check-determinism", "--seeds", "0"], "at least 1"),
        (vec!["explore", "--nodes", "-3"], "a negative number"),
    ];
    for (args, needle) in cases {
        let args = strings(&args);
        let line = assert_usage_error(&args, &shardstorm(&args));
        assert!(line.contains(needle), "{args:?}: {line}");
    }
}

/// Generated values for each size option: at and past each boundary, and junk.
#[test]
fn generated_size_values_are_accepted_or_rejected_cleanly() {
    let options: [(&str, &[&str]); 4] = [
        ("--nodes", &["0", "65", "65535", "65536", "-1", "x", ""]),
        ("--shards", &["0", "3", "32769", "65535", "70000", "-0x1"]),
        ("--blobs", &["100001", "4294967295", "4294967296", "1.5"]),
        ("--epochs", &["113", "1001", "4294967296", " "]),
    ];
    for (option, values) in options {
        for value in values {
            let args = strings(&["replay", "--seed", "1", option, value, "--hash-only"]);
            assert_usage_error(&args, &shardstorm(&args));
        }
    }
}

/// A run file made of the standard keys plus `extra`.
fn run_file(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let version = env!("CARGO_PKG_VERSION");
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("shardstorm-version = {version}\nseed = 1\nblobs = 5\nepochs = 1\n{extra}"),
    )
    .expect("write run file");
    path
}

#[test]
fn bad_run_files_are_one_line_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, &str)> = vec![
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
        ("tick-ms = 100000000\n", "tick-ms"),
        ("tick-ms = 1e8\n", "bad number"),
        ("blobs = 5\n", "given twice"),
        ("seed = -1\n", "given twice"),
        ("colour = blue\n", "unknown key"),
        ("[nemesis]\n", "unknown section"),
        (
            "\n[schedule]\n1.000s crash n99\n",
            "names node `n99`, but the cluster has n0 to n4",
        ),
        (
            "\n[schedule]\n1.000s partition n0 n1,n5 for 1.000s\n",
            "node `n5`",
        ),
        (
            "\n[schedule]\n1.000s failpoint * no.such.point return\n",
            "unknown fail point",
        ),
        (
            "\n[schedule]\nat no.such.point@n1 crash n1\n",
            "unknown fail point",
        ),
        (
            "\n[schedule]\n1.000s failpoint n1 sync.fetch_sliver frob\n",
            "unknown action",
        ),
        (
            "\n[schedule]\n1.000s status n1 Exploded\n",
            "writes status `Exploded`",
        ),
        ("\n[schedule]\n1.000s explode n1\n", "[schedule] section"),
        ("\n[knobs]\nepoch_ms=1\n", "[knobs] section"),
    ];
    for (i, (extra, needle)) in cases.into_iter().enumerate() {
        let file = run_file(dir.path(), &format!("bad-{i}.run"), extra);
        for command in ["replay", "report", "shrink"] {
            let args = strings(&[command, path_str(&file)]);
            let line = assert_usage_error(&args, &shardstorm(&args));
            assert!(line.contains(needle), "{extra:?} in {command}: {line}");
        }
    }
}

#[test]
fn a_huge_epoch_length_is_rejected_not_run_for_an_hour() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The knobs of a real file with the epoch length raised to 20 simulated minutes.
    let knobs: String = knobs_text()
        .lines()
        .map(|l| match l.starts_with("epoch_ms=") {
            true => "epoch_ms=1200000\n".to_string(),
            false => format!("{l}\n"),
        })
        .collect();
    let file = run_file(dir.path(), "long.run", &format!("\n[knobs]\n{knobs}"));
    let args = strings(&["replay", path_str(&file)]);
    let started = Instant::now();
    let line = assert_usage_error(&args, &shardstorm(&args));
    assert!(line.contains("simulation's limit"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// The `[knobs]` section of seed 1 as the harness writes it.
fn knobs_text() -> String {
    use shardstorm_harness::runfile::RunFile;
    use shardstorm_harness::RunSpec;
    let text = RunFile::from_spec(&RunSpec::standard(1)).to_string();
    let start = text.find("[knobs]\n").expect("knobs section") + "[knobs]\n".len();
    let end = text.find("\n[schedule]").expect("schedule section");
    text[start..end].to_string()
}

#[test]
fn a_full_stdout_is_one_error_line() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    let Ok(full) = full else {
        return; // no /dev/full on this system
    };
    let o = Command::new(env!("CARGO_BIN_EXE_shardstorm"))
        .args([&["replay", "--seed", "1"][..], &SMALL].concat())
        .stdout(full)
        .output()
        .expect("runs");
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "shardstorm: error: cannot write to stdout: No space left on device (os error 28)"
    );
}

#[test]
fn an_unwritable_out_dir_is_refused_before_the_campaign() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("write");
    let out = file.join("failures");
    let args = strings(&["explore", "--seeds", "1000000", "--out", path_str(&out)]);
    let started = Instant::now();
    let line = assert_usage_error(&args, &shardstorm(&args));
    assert!(line.contains("cannot write to"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(20), "no seed ran");
    // shrink checks its output directory before minutes of shrinking, too.
    let target = file.join("min.run");
    let args = strings(&["shrink", "--seed", "1", "-o", path_str(&target)]);
    let line = assert_usage_error(&args, &shardstorm(&args));
    assert!(line.contains("cannot write to"), "{line}");
}

#[test]
fn the_default_out_dir_is_outside_the_replayed_regressions() {
    let o = shardstorm(&["explore", "--help"]);
    let help = text(&o.stdout);
    assert!(help.contains("[default: out/failures]"), "{help}");
}

#[test]
fn too_many_jobs_are_capped_with_a_warning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        &["explore", "--seeds", "1", "--jobs", "100000", "--json"][..],
        &SMALL,
        &["--out", path_str(dir.path())],
    ]
    .concat();
    let o = shardstorm(&args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stderr).contains("warning: --jobs 100000 is more than 4 per core"),
        "{}",
        text(&o.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    assert_eq!(json["seeds"], 1);
}

#[test]
fn interrupting_explore_still_prints_its_summary() {
    interrupt_explore(&[]);
}

#[test]
fn interrupting_a_guided_campaign_still_prints_its_summary() {
    interrupt_explore(&["--guided"]);
}

/// Starts a campaign of 100,000 seeds, sends it SIGINT after 3 s and checks that it stops
/// with its summary.
fn interrupt_explore(mode: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardstorm"))
        .args(
            [
                &["explore", "--seeds", "100000", "--jobs", "1", "--json"][..],
                mode,
                &SMALL,
                &["--out", path_str(dir.path())],
            ]
            .concat(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(3));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sends SIGINT to the child this test started and still owns.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT sent");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("explore did not stop within 120 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}: {err}");
    assert!(err.contains("interrupted"), "{err}");
    let json: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?} {err}"));
    let seeds = json["seeds"].as_u64().expect("seeds");
    assert!(seeds < 100_000, "{json}");
}

#[test]
fn merge_counts_a_file_given_twice_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("s.json");
    std::fs::write(
        &file,
        r#"{"seeds":10,"wall_s":2.0,"seeds_per_min":300.0,"sim_s_per_wall_s":50.0,"sim_s":100.0,"violations":[]}"#,
    )
    .expect("write");
    let same = dir.path().join(".").join("s.json");
    let o = shardstorm(&["merge", path_str(&file), path_str(&same)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(json["seeds"], 10);
    assert!(
        text(&o.stderr).contains("counted once"),
        "{}",
        text(&o.stderr)
    );
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn committed_regressions_replay_through_the_cli_as_the_suite_expects() {
    let dir = workspace().join("regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("regressions/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "run"))
        .collect();
    files.sort();
    for file in files {
        let o = shardstorm(&["replay", path_str(&file)]);
        let out = text(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {out}{}",
            file.display(),
            text(&o.stderr)
        );
        assert!(out.contains("reproduced:"), "{}: {out}", file.display());
    }
}

/// Every `cargo run --release -- ...` command in the README's shell blocks.
fn readme_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README");
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = line.split(" #").next().unwrap_or_default();
        let Some((_, rest)) = code.split_once("cargo run --release -- ") else {
            continue;
        };
        // The command ends at a redirection or a pipe into another program.
        let rest = rest.split(['>', '|']).next().unwrap_or_default();
        commands.push(rest.split_whitespace().map(str::to_string).collect());
    }
    commands
}

#[test]
fn every_readme_command_parses_and_names_files_that_exist() {
    let commands = readme_commands();
    assert!(commands.len() >= 12, "{commands:?}");
    let root = workspace();
    for args in commands {
        // Files the README's own earlier commands write, or a shell variable.
        let produced = [
            "small.run",
            "out/*.json",
            "\"$f\"",
            "regressions/my-bug.run",
        ];
        for arg in args
            .iter()
            .filter(|a| a.ends_with(".run") || a.ends_with(".json"))
        {
            let after_output = args
                .iter()
                .position(|a| a == arg)
                .and_then(|i| i.checked_sub(1))
                .is_some_and(|i| args[i] == "-o");
            if after_output || produced.contains(&arg.as_str()) {
                continue;
            }
            assert!(
                root.join(arg).exists(),
                "README names {arg}, which does not exist"
            );
        }
        // `--help` after a valid command line prints help (exit 0); a bad option or value
        // before it is an error.
        let with_help: Vec<String> = args
            .iter()
            .filter(|a| *a != "\"$f\"")
            .cloned()
            .chain(["--help".to_string()])
            .collect();
        let o = shardstorm(&with_help);
        assert_eq!(
            o.status.code(),
            Some(0),
            "README command {args:?} does not parse: {}",
            text(&o.stderr)
        );
    }
}

/// The wire decoder on hostile bytes: truncations, bit flips and huge length prefixes of real
/// messages, and seeded random bytes, all decode to an error or a value, never a panic or an
/// allocation past the limit.
#[test]
fn the_wire_decoder_rejects_bad_bytes_without_panicking() {
    use shardstorm_node::wire::{decode, encode, Envelope, Request, Response, ServiceError};
    use shardstorm_node::{BlobId, ShardIndex, SliverType};
    const LIMIT: usize = 1 << 16;
    let request = Request::SyncShard {
        shard: ShardIndex(3),
        ty: SliverType::Primary,
        start: BlobId([7; 32]),
        count: 10,
        epoch: 2,
    };
    let envelope = Envelope {
        sender: Some(shardstorm_node::NodeId(1)),
        payload: encode(&request, LIMIT).expect("encode"),
        signature: Some(vec![9; 64]),
    };
    let responses = [
        Response::Slivers(vec![(BlobId([1; 32]), vec![1, 2, 3])]),
        Response::Error(ServiceError::Internal("x".into())),
    ];
    let mut samples: Vec<Vec<u8>> = vec![encode(&envelope, LIMIT).expect("encode")];
    samples.extend(responses.iter().map(|r| encode(r, LIMIT).expect("encode")));
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for sample in &samples {
        inputs.extend((0..sample.len()).map(|n| sample[..n].to_vec()));
        for i in 0..sample.len() {
            for bit in [0x01u8, 0x80, 0xff] {
                let mut flipped = sample.clone();
                flipped[i] ^= bit;
                inputs.push(flipped);
            }
        }
        // A length prefix claiming u64::MAX bytes at every position.
        for i in 0..sample.len().saturating_sub(8) {
            let mut huge = sample.clone();
            huge[i..i + 8].copy_from_slice(&u64::MAX.to_le_bytes());
            inputs.push(huge);
        }
    }
    let mut state = 0x5eed_u64;
    for len in 0..300 {
        let bytes = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        inputs.push(bytes);
    }
    for input in &inputs {
        let outcome = std::panic::catch_unwind(|| {
            let _ = decode::<Envelope>(input, LIMIT);
            let _ = decode::<Request>(input, LIMIT);
            let _ = decode::<Response>(input, LIMIT);
        });
        assert!(outcome.is_ok(), "the decoder panicked on {input:?}");
    }
    assert!(decode::<Envelope>(&samples[0][..5], LIMIT).is_err());
}
