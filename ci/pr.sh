#!/usr/bin/env bash
# Pull-request gate: the CI entry point plus a short blind campaign on the fixed node and a
# determinism sample. Fails on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
./.ci/run
# PR_REQUIRE_REACHED=1: a catalogued fail point that no seed reaches fails the gate too (a
# point the nemesis can never aim at is dead weight, or the node's code moved). Off by default:
# node.incomplete_history is not reached within 100 seeds today.
reached=()
if [[ "${PR_REQUIRE_REACHED:-0}" == 1 ]]; then reached=(--require-reached); fi
cargo run --release --quiet -- explore --seeds "${PR_SEEDS:-100}" --out out/pr --json \
    "${reached[@]}"
cargo run --release --quiet -- check-determinism --seeds "${PR_DETERMINISM_SEEDS:-10}" --fresh-process
