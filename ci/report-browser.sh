#!/usr/bin/env bash
# Renders run reports and screenshots them in headless chromium (harness/tests/report_browser.rs).
# Installs Debian's chromium when it is missing; keeps the pages and screenshots in $1
# (default target/report-browser) for upload as CI artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/report-browser}"
if [ ! -x /usr/bin/chromium ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium
fi
mkdir -p "$out"
SHARDSTORM_REPORT_DIR="$(realpath "$out")" \
    cargo test -p shardstorm-harness --test report_browser -- --nocapture
ls -l "$out"/*.png
