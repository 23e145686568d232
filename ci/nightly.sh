#!/usr/bin/env bash
# Nightly campaign on one machine of a sharded matrix: explore for a time budget over this
# machine's slice of the seed space, then shrink every failure and render its report. Outputs
# (JSON summary, run files, shrunk run files, HTML reports) land in $OUT for the CI artifacts.
# With WALRUS_SEEDS=N (one shard of the matrix sets it) the machine then also explores N seeds
# of the Walrus-scale preset (25 nodes, 1000 shards, 1000 blobs, 4 epochs; 10 to 70 CPU s and
# up to 5 GB of memory a seed, so one worker), summary in walrus-summary.json (not merged with
# the standard slices' summaries).
# Usage: ci/nightly.sh SHARD_INDEX SHARD_COUNT [DURATION]
set -uo pipefail
cd "$(dirname "$0")/.."
index=${1:?shard index}; count=${2:?shard count}; duration=${3:-30m}
out=${OUT:-out/nightly-$index}
mkdir -p "$out/runs" "$out/shrunk" "$out/reports"
cargo build --release --quiet
./target/release/shardstorm explore --duration "$duration" --shard "$index/$count" \
  --start "${NIGHTLY_START:-$(date +%Y%m%d)000000}" --out "$out/runs" --json > "$out/summary.json"
status=$?
if [ "${WALRUS_SEEDS:-0}" -gt 0 ]; then
  ./target/release/shardstorm explore --preset walrus --seeds "$WALRUS_SEEDS" --jobs 1 \
    --start "${NIGHTLY_START:-$(date +%Y%m%d)000000}" --out "$out/runs" --json \
    > "$out/walrus-summary.json"
  walrus=$?
  [ "$walrus" -gt "$status" ] && status=$walrus
fi
for run in "$out"/runs/*.run; do
  [ -e "$run" ] || continue
  name=$(basename "$run" .run)
  ./target/release/shardstorm shrink "$run" -o "$out/shrunk/$name.run" || true
  ./target/release/shardstorm report "$out/shrunk/$name.run" -o "$out/reports/$name.html" \
    || ./target/release/shardstorm report "$run" -o "$out/reports/$name.html" || true
done
exit $status
