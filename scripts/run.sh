#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, and start the dashboard on the
# built-in demo track. Without --server it is a dry run (nothing leaves this machine).
#   scripts/run.sh                              rehearse on the demo, no server
#   scripts/run.sh --server http://host:8000    steer a real Scope server
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
if [ ! -x target/release/scope-deck ]; then
  echo "run: first build of scope-deck (release; about 5–10 minutes on 2 cores)…" >&2
fi
cargo build --release
echo "run: the binary is target/release/scope-deck (\`cargo install --path .\` puts it on your PATH)" >&2
args=("$@")
if ! printf '%s\n' "${args[@]}" | grep -q -- '--server'; then
  args=(--dry-run "${args[@]}")
fi
exec target/release/scope-deck "${args[@]}"
