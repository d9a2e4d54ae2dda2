#!/usr/bin/env bash
# mamori's flow collector and DDoS detection beside FastNetMon 1.2.4 (Debian) in one run; see
# bench/flow/run.py and BENCHMARKS.md "Flows and DDoS (issue 7)". Arguments go to run.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v fastnetmon >/dev/null || { echo "installing fastnetmon"; apt-get install -y -qq fastnetmon; }
cargo build --release -p mamori-bench --bin flow_collect --bin flow_send
exec python3 bench/flow/run.py "$@"
