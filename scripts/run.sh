#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, and start the dashboard on the
# built-in demo track. Without --server it is a dry run (nothing leaves this machine).
#   scripts/run.sh                              rehearse on the demo, no server
#   scripts/run.sh --server http://host:8000    steer a real Scope server
#   scripts/run.sh --features link              build with cargo features (link = Ableton Link,
#                                               a GPL build; see the README)
set -euo pipefail
cd "$(dirname "$0")/.."
# --features LIST / --features=LIST go to cargo, everything else to scope-deck.
features=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --features) features="${2:-}"; shift 2 || shift ;;
    --features=*) features="${1#--features=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [[ ",${features// /,}," == *,link,* ]]; then
  scripts/setup.sh run link
else
  scripts/setup.sh run
fi
if [ ! -x target/release/scope-deck ]; then
  echo "run: first build of scope-deck (release; about 5–10 minutes on 2 cores)…" >&2
fi
if [ -n "$features" ]; then
  cargo build --release --features "$features"
else
  cargo build --release
fi
echo "run: the binary is target/release/scope-deck (\`cargo install --path .\` puts it on your PATH)" >&2
if ! printf '%s\n' "${args[@]+"${args[@]}"}" | grep -q -- '--server'; then
  args=(--dry-run "${args[@]+"${args[@]}"}")
fi
exec target/release/scope-deck "${args[@]}"
