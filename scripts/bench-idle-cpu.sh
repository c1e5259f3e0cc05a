#!/usr/bin/env bash
# Idle CPU of the whole process (TUI at its frame rate + demo audio analysis + dry-run transport),
# measured from /proc over a window, in a real terminal (tmux). Prints one line per run.
#   scripts/bench-idle-cpu.sh [seconds] [runs]
# SETTLE=50 waits past the demo's first 47 s cycle (synthesised once, then looped from memory).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
runs="${2:-3}"
cargo build --release --quiet
tmp=$(mktemp -d)
sock="idle-cpu-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$tmp"' EXIT
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$runs"); do
  tmux -L "$sock" -f /dev/null new-session -d -s t -x 120 -y 40 \
    "env XDG_STATE_HOME=$tmp/state $PWD/target/release/scope-deck --dry-run --config-dir $tmp/cfg-$r"
  pid=""
  for _ in $(seq 1 100); do
    pid=$(pgrep -f -- "--config-dir $tmp/cfg-$r" | while read -r p; do
      [ "$(cat /proc/$p/comm 2>/dev/null)" = scope-deck ] && echo "$p"; done | head -1)
    [ -n "$pid" ] && break
    sleep 0.1
  done
  [ -n "$pid" ] || { echo "scope-deck did not start" >&2; exit 1; }
  sleep "${SETTLE:-3}" # let it settle (window sized, analysis running)
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  sleep "$secs"
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  echo "run $r: $(awk -v a="$t0" -v b="$t1" -v s="$secs" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz/s*100}') % of one core over ${secs}s (120x40, 30 fps, demo audio, dry run)"
  tmux -L "$sock" send-keys -t t q q
  sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
done
