#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, and start the dashboard on the
# built-in demo track. Without --server it is a dry run (nothing leaves this machine).
#   scripts/run.sh                              rehearse on the demo, no server
#   scripts/run.sh --server http://host:8000    steer a real Scope server
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
cargo build --release --quiet
args=("$@")
if ! printf '%s\n' "${args[@]}" | grep -q -- '--server'; then
  args=(--dry-run "${args[@]}")
fi
exec target/release/scope-deck "${args[@]}"
