//! The names of the node's fail points (spec 11), one constant each. Call sites in `node/` use
//! these constants, never string literals, and the harness builds its catalogue from [`ALL`],
//! so a misspelt name does not compile and a point missing from the catalogue fails a test.

/// Test-only: ends a failing sync as if the node crashed (spec 4.3).
pub const SYNC_NO_RETRY: &str = "sync.no_retry";
pub const SYNC_METADATA_ERROR_BEFORE_FETCH: &str = "sync.metadata.error_before_fetch";
pub const SYNC_METADATA_PAUSE: &str = "sync.metadata.pause";
pub const SYNC_METADATA_ERROR_DURING_FETCH: &str = "sync.metadata.error_during_fetch";
pub const SYNC_METADATA_UNAVAILABLE: &str = "sync.metadata.unavailable";
pub const SYNC_FETCH_SLIVER: &str = "sync.fetch_sliver";
pub const SYNC_DIRECT_RECOVERY: &str = "sync.direct_recovery";
pub const SYNC_RECOVERY_START: &str = "sync.recovery.start";
pub const SYNC_RECOVERY_AFTER_START: &str = "sync.recovery.after_start";
pub const SYNC_RECOVERY_RECOVER_BLOB: &str = "sync.recovery.recover_blob";
pub const SYNC_RECOVERY_SKIP_INITIAL_CERT_CHECK: &str = "sync.recovery.skip_initial_cert_check";
pub const SOURCE_RETURN_EMPTY: &str = "source.return_empty";
pub const SOURCE_RETURN_ERROR: &str = "source.return_error";
pub const NODE_ENTER_RECOVERY_MODE: &str = "node.enter_recovery_mode";
pub const NODE_INCOMPLETE_HISTORY: &str = "node.incomplete_history";
pub const EVENTS_BEFORE_PROCESS: &str = "events.before_process";
pub const EVENTS_PROCESS: &str = "events.process";
pub const EVENTS_INITIAL_CURSOR: &str = "events.initial_cursor";
pub const EVENTS_EPOCH_CHECK: &str = "events.epoch_check";
pub const EVENTS_FLUSH_PENDING_CACHES: &str = "events.flush_pending_caches";
pub const EPOCH_CHANGE_START_ENTRY: &str = "epoch.change_start.entry";
pub const EPOCH_FINISHER_BLOCK: &str = "epoch.finisher.block";
pub const NODE_RECOVERY_ENTRY: &str = "node_recovery.entry";
pub const NODE_RECOVERY_START_SYNC: &str = "node_recovery.start_sync";
pub const BLOB_SYNC_CERTIFIED_EVENT: &str = "blob_sync.certified_event";
pub const BLOB_SYNC_BEFORE_PUT_SLIVER: &str = "blob_sync.before_put_sliver";
/// Test-only: certified events start no blob sync.
pub const BLOB_SYNC_SKIP_NON_EXTENSION: &str = "blob_sync.skip_non_extension";
pub const DB_WRITE_BATCH_BEFORE: &str = "db.write_batch.before";
pub const DB_WRITE_BATCH_AFTER: &str = "db.write_batch.after";
pub const DB_PUT_BEFORE: &str = "db.put.before";
pub const DB_PUT_AFTER: &str = "db.put.after";
pub const DB_DELETE_BEFORE: &str = "db.delete.before";
pub const DB_DELETE_AFTER: &str = "db.delete.after";
pub const DB_CREATE_SHARD_BEFORE: &str = "db.create_shard.before";
pub const EVENTS_HANDLE_BEFORE: &str = "events.handle.before";
pub const EVENTS_HANDLE_AFTER: &str = "events.handle.after";
pub const EVENTS_WRITE_BEFORE: &str = "events.write.before";
pub const EVENTS_WRITE_AFTER: &str = "events.write.after";
/// Before every attempt of a request to the chain (an error fails the attempt).
pub const CHAIN_REQUEST: &str = "chain.request";

/// Every fail point of the node, in catalogue order.
pub const ALL: &[&str] = &[
    SYNC_NO_RETRY,
    SYNC_METADATA_ERROR_BEFORE_FETCH,
    SYNC_METADATA_PAUSE,
    SYNC_METADATA_ERROR_DURING_FETCH,
    SYNC_METADATA_UNAVAILABLE,
    SYNC_FETCH_SLIVER,
    SYNC_DIRECT_RECOVERY,
    SYNC_RECOVERY_START,
    SYNC_RECOVERY_AFTER_START,
    SYNC_RECOVERY_RECOVER_BLOB,
    SYNC_RECOVERY_SKIP_INITIAL_CERT_CHECK,
    SOURCE_RETURN_EMPTY,
    SOURCE_RETURN_ERROR,
    NODE_ENTER_RECOVERY_MODE,
    NODE_INCOMPLETE_HISTORY,
    EVENTS_BEFORE_PROCESS,
    EVENTS_PROCESS,
    EVENTS_INITIAL_CURSOR,
    EVENTS_EPOCH_CHECK,
    EVENTS_FLUSH_PENDING_CACHES,
    EPOCH_CHANGE_START_ENTRY,
    EPOCH_FINISHER_BLOCK,
    NODE_RECOVERY_ENTRY,
    NODE_RECOVERY_START_SYNC,
    BLOB_SYNC_CERTIFIED_EVENT,
    BLOB_SYNC_BEFORE_PUT_SLIVER,
    BLOB_SYNC_SKIP_NON_EXTENSION,
    DB_WRITE_BATCH_BEFORE,
    DB_WRITE_BATCH_AFTER,
    DB_PUT_BEFORE,
    DB_PUT_AFTER,
    DB_DELETE_BEFORE,
    DB_DELETE_AFTER,
    DB_CREATE_SHARD_BEFORE,
    EVENTS_HANDLE_BEFORE,
    EVENTS_HANDLE_AFTER,
    EVENTS_WRITE_BEFORE,
    EVENTS_WRITE_AFTER,
    CHAIN_REQUEST,
];

#[cfg(test)]
mod tests {
    use super::ALL;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every `.rs` file under `dir`, recursively, in path order.
    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read node/src")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((path.display().to_string(), text));
            }
        }
    }

    fn node_sources() -> Vec<(String, String)> {
        let mut out = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
        out.retain(|(path, _)| !path.ends_with("fail_points.rs"));
        out
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let set: BTreeSet<&str> = ALL.iter().copied().collect();
        assert_eq!(set.len(), ALL.len(), "a fail point is listed twice");
        for name in ALL {
            assert!(
                name.contains('.')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || "._".contains(c)),
                "{name}"
            );
        }
    }

    /// What in `text` names a fail point by a string literal.
    fn literal_uses(text: &str) -> Vec<String> {
        let mut out: Vec<String> = ALL
            .iter()
            .filter(|name| text.contains(&format!("\"{name}\"")))
            .map(|name| format!("the literal \"{name}\""))
            .collect();
        for call in [".check(\"", ".eval(\"", ".flag(\"", ".eval_sync(\""] {
            if text.contains(call) {
                out.push(format!("a call `{call}...`"));
            }
        }
        out
    }

    #[test]
    fn no_call_site_names_a_fail_point_by_a_literal() {
        for (path, text) in node_sources() {
            let uses = literal_uses(&text);
            assert!(uses.is_empty(), "{path}: {uses:?}; use fail_points::*");
        }
    }

    #[test]
    fn the_literal_check_catches_a_literal_name() {
        let bad = "self.ctx.fail.check(\"sync.metadata.pause\").await?;";
        assert_eq!(literal_uses(bad).len(), 2, "{:?}", literal_uses(bad));
        let typo = "self.ctx.fail.flag(\"sync.metadata.pase\").await";
        assert_eq!(literal_uses(typo).len(), 1);
        assert!(literal_uses("self.ctx.fail.check(fail_points::SYNC_METADATA_PAUSE)").is_empty());
    }

    #[test]
    fn every_fail_point_has_a_call_site() {
        let sources = node_sources();
        let text = super::tests_support::constant_names();
        for (constant, name) in text {
            let used = sources.iter().any(|(_, src)| src.contains(constant));
            assert!(
                used,
                "fail point {name} ({constant}) is never evaluated in node/"
            );
        }
    }
}

#[cfg(test)]
mod tests_support {
    /// (constant name, fail-point name) for every constant of this module, read from its own
    /// source so the list cannot drift from [`super::ALL`].
    pub fn constant_names() -> Vec<(&'static str, &'static str)> {
        let src = include_str!("fail_points.rs");
        let mut out = Vec::new();
        for line in src.lines() {
            let Some(rest) = line.strip_prefix("pub const ") else {
                continue;
            };
            let Some((constant, value)) = rest.split_once(": &str = \"") else {
                continue;
            };
            let name = value.trim_end_matches("\";");
            out.push((constant, name));
        }
        assert_eq!(out.len(), super::ALL.len(), "every constant is in ALL");
        for (_, name) in &out {
            assert!(super::ALL.contains(name), "{name} missing from ALL");
        }
        out
    }
}
