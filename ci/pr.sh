#!/usr/bin/env bash
# Pull-request gate: the CI entry point plus a short blind campaign on the fixed node and a
# determinism sample. Fails on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."
./.ci/run
cargo run --release --quiet -- explore --seeds "${PR_SEEDS:-100}" --out out/pr --json
cargo run --release --quiet -- check-determinism --seeds "${PR_DETERMINISM_SEEDS:-10}" --fresh-process
