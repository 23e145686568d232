//! Where the regression snapshots live and how they are named.
//!
//! Every regression scenario snapshots its condensed trace (simulated times only, stable order)
//! into `suites/tests/snapshots/`, one file per scenario, named `<suite>__<scenario>.snap`
//! (insta's module prefix is turned off, so names are unique across suites by their `<suite>`
//! part). The directory must lie inside the `shardstorm-suites` package: `cargo insta` looks
//! for pending snapshots only under the packages' directories, so a pending `.snap.new`
//! elsewhere (the workspace root, say) is never reported and `cargo insta test` passes on a
//! mismatch. Review workflow: `cargo insta test -p shardstorm-suites` then `cargo insta review`
//! (or `INSTA_UPDATE=always cargo test ...` to accept everything); CI runs with `CI=true` (insta
//! then writes nothing and fails on a mismatch) and fails on any pending `.snap.new` file.
//!
//! [`assert_outcome_snapshot!`](crate::assert_outcome_snapshot) is the one assertion the suites
//! use. It is a macro, not a function, so that insta records the calling test file as the
//! snapshot's `source` and so that `insta` stays a dev-dependency (the caller's).

use std::path::PathBuf;

/// `suites/tests/snapshots/`, where insta puts the snapshots of `suites/tests/*.rs` by default.
pub fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("snapshots")
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

/// Asserts a scenario outcome's snapshot text against
/// `suites/tests/snapshots/<suite>__<scenario>.snap`
/// (no module prefix, no expression). The calling crate must depend on `insta`.
///
/// ```ignore
/// shardstorm_suites::assert_outcome_snapshot!("pr_3462", &outcome);
/// ```
#[macro_export]
macro_rules! assert_outcome_snapshot {
    ($suite:expr, $outcome:expr) => {{
        let outcome: &$crate::scenario::Outcome = $outcome;
        let mut settings = ::insta::Settings::clone_current();
        settings.set_snapshot_path($crate::scenario::snapshots::snapshot_dir());
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.bind(|| {
            ::insta::assert_snapshot!(
                $crate::scenario::snapshots::snapshot_name($suite, &outcome.name),
                outcome.snapshot_text()
            )
        });
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_live_where_cargo_insta_looks_for_pending_ones() {
        let dir = snapshot_dir();
        assert!(
            dir.starts_with(env!("CARGO_MANIFEST_DIR")),
            "{}",
            dir.display()
        );
        assert!(dir
            .join("pr_3462__t1_new_epoch_does_not_cancel_metadata_recovery.snap")
            .is_file());
    }
}
