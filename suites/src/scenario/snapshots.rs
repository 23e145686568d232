//! Where the regression snapshots live and how they are named.
//!
//! Every regression scenario snapshots its condensed trace (simulated times only, stable order)
//! into the workspace's `snapshots/` directory, one file per scenario, named
//! `<suite>__<scenario>.snap` (insta's module prefix is turned off, so names are unique across
//! suites by their `<suite>` part). Review workflow: `cargo insta test -p shardstorm-suites`
//! then `cargo insta review` (or `INSTA_UPDATE=always cargo test ...` to accept everything);
//! CI runs with `CI=true` (insta then writes nothing and fails on a mismatch) and fails on any
//! pending `.snap.new` file.

use std::path::PathBuf;

/// The workspace's `snapshots/` directory.
pub fn snapshot_dir() -> PathBuf {
    let suites = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    suites
        .parent()
        .map_or_else(|| suites.join("snapshots"), |root| root.join("snapshots"))
}

/// `<suite>__<scenario>` with characters insta dislikes replaced.
pub fn snapshot_name(suite: &str, scenario: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    format!("{}__{}", clean(suite), clean(scenario))
}
