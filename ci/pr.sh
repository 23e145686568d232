#!/usr/bin/env bash
# Pull-request gate: the CI entry point plus a short blind campaign on the fixed node and a
# determinism sample. Fails on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
./.ci/run
# --require-reached: a catalogued fail point that no seed reaches fails the gate (a point the
# nemesis can never aim at is dead weight or a sign that the node's code moved).
cargo run --release --quiet -- explore --seeds "${PR_SEEDS:-100}" --out regressions/pr --json \
    --require-reached
cargo run --release --quiet -- check-determinism --seeds "${PR_DETERMINISM_SEEDS:-10}" --fresh-process
