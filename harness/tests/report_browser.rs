//! The HTML report in a real browser: render a small run's report, take a screenshot with
//! headless chromium (when `/usr/bin/chromium` exists; CI installs it) and check that the page
//! drew something substantial; a failing run's page zooms to the causal window of its
//! violation with the violating node highlighted. Set `SHARDSTORM_REPORT_DIR` to keep the pages
//! and screenshots.

use shardstorm_faults::{Knobs, Schedule};
use shardstorm_harness::{report, run, RunResult, RunSpec};
use shardstorm_node::Bug;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(90);
/// A blank 1400x900 PNG is a few KB; a drawn timeline is far larger.
const MIN_PNG_BYTES: u64 = 10 * 1024;

/// A small passing run with a partition, a crash and a restart over three epochs.
fn passing_spec() -> RunSpec {
    let mut spec = RunSpec::standard(7);
    spec.nodes = 4;
    spec.shards = 8;
    spec.epochs = 3;
    spec.blobs = 20;
    let mut knobs = Knobs::quiet();
    knobs.epoch_ms = 8_000;
    knobs.churn_move = 0.5;
    spec.knobs = Some(knobs);
    let schedule: Schedule =
        "3.000s partition n0 n2 for 4.000s\n9.000s crash-restart n1 for 5.000s\n20.000s latency 200ms for 3.000s\n"
            .parse()
            .expect("the schedule parses");
    spec.schedule = Some(schedule);
    spec
}

/// A small failing run: n4 joins the committee at the first epoch change, its metadata
/// recovery is held at `sync.metadata.pause` while lag detection moves it to
/// `RecoveryCatchUp`, and bug C flips it back to `Active` once the gate opens.
fn failing_spec() -> RunSpec {
    let mut spec = passing_spec();
    spec.nodes = 5;
    spec.shards = 10;
    spec.bugs.insert(Bug::StaleStatusClobber);
    if let Some(knobs) = spec.knobs.as_mut() {
        knobs.churn_membership = 1.0;
    }
    let schedule: Schedule = "1.000s failpoint n4 sync.metadata.pause pause\n\
         at sync.metadata.pause@n4 status n4 RecoveryCatchUp\n\
         3.000s partition n0 n2 for 4.000s\n\
         14.000s open-gate n4 sync.metadata.pause\n"
        .parse()
        .expect("the schedule parses");
    spec.schedule = Some(schedule);
    spec
}

/// A fresh directory for this test's files.
fn work_dir() -> PathBuf {
    let dir = match std::env::var_os("SHARDSTORM_REPORT_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("shardstorm-report-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).expect("creates the work directory");
    dir
}

fn screenshot(page: &Path, png: &Path, profile: &Path) -> Child {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1400,900")
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts")
}

/// Waits for the child, killing it after `TIMEOUT`.
fn wait(mut child: Child) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("polls chromium") {
            assert!(status.success(), "chromium failed: {status}");
            return;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `data-<name>-ms` attribute of the first timeline of class `class`.
fn bound(html: &str, class: &str, name: &str) -> u64 {
    let svg = &html[html
        .find(&format!("class=\"timeline {class}\""))
        .unwrap_or_else(|| panic!("no {class} timeline"))..];
    let key = format!("data-{name}-ms=\"");
    let at = svg.find(&key).expect("the bound is there") + key.len();
    svg[at..at + svg[at..].find('"').expect("quoted")]
        .parse()
        .expect("a number")
}

/// A failing run's page: the first timeline is the causal window, it ends just after the
/// violation and starts at least `LEAD` and at most about `MAX_SPAN` before it, the violating
/// node's lane (and shard row, if named) is highlighted, and the whole run follows.
fn check_causal_window(result: &RunResult, html: &str) {
    let v = result.violation.as_ref().expect("a violation");
    let (start, end) = (bound(html, "window", "start"), bound(html, "window", "end"));
    let lead = report::LEAD.as_millis() as u64;
    let max = report::MAX_SPAN.as_millis() as u64;
    assert!(
        start < v.t_ms && v.t_ms < end,
        "{start}..{end} holds {}",
        v.t_ms
    );
    assert!(
        end - v.t_ms <= (max / 40).max(100),
        "ends just after the violation"
    );
    assert!(v.t_ms - start >= lead.min(v.t_ms), "at least LEAD back");
    assert!(
        v.t_ms - start <= max + max / 40,
        "at most about MAX_SPAN back"
    );
    assert!(end - start < result.sim_ms, "a zoom, not the whole run");
    let window = &html[html.find("class=\"timeline window\"").expect("window")..];
    let window = &window[..window.find("</svg>").expect("svg ends")];
    if let Some(node) = v.node {
        let lane = format!("class=\"node hl-node\" id=\"w-lane-{node}\"");
        assert!(window.contains(&lane), "{lane}");
    }
    if let Some(shard) = v.shard {
        let row = format!("class=\"shard-row hl-shard\" data-shard=\"{shard}\"");
        assert!(window.contains(&row), "{row}");
    }
    assert!(window.contains("class=\"violation\""));
    assert!(html.contains("<pre class=\"excerpt\">"));
    assert_eq!(bound(html, "whole-run", "start"), 0);
}

/// Renders `spec`'s report, screenshots it as `<name>.png` and checks the picture.
fn screenshot_report(spec: &RunSpec, name: &str, dir: &Path) -> bool {
    let result = run(spec);
    let html = report::render(&result);
    assert!(html.contains("<svg"));
    if result.violation.is_some() {
        check_causal_window(&result, &html);
    }
    let page = dir.join(format!("{name}.html"));
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    std::fs::write(&page, &html).expect("writes the page");
    let profile =
        std::env::temp_dir().join(format!("shardstorm-chromium-{}-{name}", std::process::id()));
    wait(screenshot(&page, &png, &profile));
    let _ = std::fs::remove_dir_all(&profile);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    println!("{name}: {} ({size} bytes)", png.display());
    assert!(
        size > MIN_PNG_BYTES,
        "{name}: screenshot too small: {size} bytes"
    );
    result.passed()
}

#[test]
fn reports_render_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        println!("skipped: no chromium");
        return;
    }
    let dir = work_dir();
    assert!(
        screenshot_report(&passing_spec(), "passing", &dir),
        "the passing run passes"
    );
    assert!(
        !screenshot_report(&failing_spec(), "failing", &dir),
        "the failing run fails"
    );
    if std::env::var_os("SHARDSTORM_REPORT_DIR").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_same_run_renders_to_the_same_bytes() {
    let spec = failing_spec();
    assert_eq!(report::render(&run(&spec)), report::render(&run(&spec)));
}
