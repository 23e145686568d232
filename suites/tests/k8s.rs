//! The Kubernetes Indexed Job of `ci/k8s/campaign.yaml`: parsed, rendered for every completion
//! index, and checked against the CLI: each index runs a valid `explore` command line on its
//! own `--shard I/N` slice with N the job's completions, the exit code of a violation (1) fails
//! only its index (no retry) and that of bad usage (2) the whole job.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn manifest() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/k8s/campaign.yaml");
    let text = std::fs::read_to_string(&path).expect("ci/k8s/campaign.yaml");
    serde_norway::from_str(&text).expect("the manifest is YAML")
}

/// The `shardstorm` arguments of the container's shell command for completion `index`.
fn rendered_args(job: &Value, index: u64) -> Vec<String> {
    let script = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .expect("one shell script");
    let script = script.replace("${JOB_COMPLETION_INDEX}", &index.to_string());
    let command = script
        .split("exec /usr/local/bin/shardstorm ")
        .nth(1)
        .expect("the script execs shardstorm (so SIGTERM reaches it)");
    let command = command
        .split('>')
        .next()
        .expect("command before the redirect");
    command
        .split_whitespace()
        .map(|a| a.trim_matches('"').to_string())
        .collect()
}

#[test]
fn the_job_is_indexed_and_never_restarts_pods_in_place() {
    let job = manifest();
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert!(
        spec["backoffLimitPerIndex"].as_u64().is_some(),
        "FailIndex needs it"
    );
    assert!(spec["parallelism"].as_u64() <= spec["completions"].as_u64());
}

#[test]
fn exit_codes_map_to_fail_index_and_fail_job() {
    let job = manifest();
    let container = job["spec"]["template"]["spec"]["containers"][0]["name"].clone();
    let rules = job["spec"]["podFailurePolicy"]["rules"]
        .as_array()
        .expect("rules")
        .clone();
    let codes = |action: &str| -> Vec<Value> {
        rules
            .iter()
            .filter(|r| r["action"] == action)
            .map(|r| {
                assert_eq!(r["onExitCodes"]["containerName"], container, "{r}");
                assert_eq!(r["onExitCodes"]["operator"], "In", "{r}");
                r["onExitCodes"]["values"].clone()
            })
            .collect()
    };
    // The CLI's exit codes: 1 a violation (suites/src/cli/error.rs `Outcome::Failed`), 2 usage.
    assert_eq!(codes("FailIndex"), [serde_json::json!([1])]);
    assert_eq!(codes("FailJob"), [serde_json::json!([2])]);
    assert!(
        rules
            .iter()
            .any(|r| r["action"] == "Ignore"
                && r["onPodConditions"][0]["type"] == "DisruptionTarget"),
        "evicted pods are retried without counting"
    );
}

#[test]
fn every_index_renders_a_valid_explore_command_on_its_own_slice() {
    let job = manifest();
    let completions = job["spec"]["completions"].as_u64().expect("completions");
    for index in [0, 1, completions / 2, completions - 1] {
        let args = rendered_args(&job, index);
        assert_eq!(args[0], "explore", "{args:?}");
        let shard = args
            .iter()
            .position(|a| a == "--shard")
            .map(|i| args[i + 1].clone())
            .expect("--shard");
        assert_eq!(shard, format!("{index}/{completions}"), "{args:?}");
        assert!(args.contains(&"--json".to_string()), "{args:?}");
        // Valid for the CLI: `--help` after a valid command line prints help and exits 0.
        let o = Command::new(env!("CARGO_BIN_EXE_shardstorm"))
            .args(&args)
            .arg("--help")
            .output()
            .expect("runs");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // One index past the end would not be a slice: the CLI refuses it (exit 2).
    let o = Command::new(env!("CARGO_BIN_EXE_shardstorm"))
        .args(rendered_args(&job, completions))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
}
